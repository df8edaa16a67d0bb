//! Presence, capacity per channel kind and wrap-up.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use switchboard_bus::Channel;
use switchboard_router::*;

fn setup() -> Harness {
    let mut h = Harness::default();
    h.queue(voice_queue("voice"));
    h.queue(chat_queue("chat"));
    h
}

#[test]
fn voice_excludes_chat_and_chat_excludes_voice() {
    let mut h = setup();
    let a = h.available(agent(1).capacity(1, 2));
    let (cv, out) = h.arrive(1, "voice", Channel::Voice);
    let (o, _, _) = only_offer(&out);
    h.accept(o);
    let (cc, out) = h.arrive(2, "chat", Channel::WhatsApp);
    assert!(offers(&out).is_empty(), "no chat while on a call");
    // Call ends (no wrap-up): the chat goes to the agent.
    let out = h.end(cv);
    let (o, contact, _) = only_offer(&out);
    assert_eq!(contact, cc);
    h.accept(o);
    let (_, out) = h.arrive(3, "voice", Channel::Voice);
    assert!(offers(&out).is_empty(), "no call while chatting");
    let snap = h.router.agent_snapshot(&a).unwrap();
    assert_eq!((snap.voice_load, snap.chat_load), (0, 1));
}

#[test]
fn chats_up_to_capacity() {
    let mut h = setup();
    let a = h.available(agent(1).capacity(0, 2));
    let mut accepted = 0;
    for n in 1..=3 {
        let (_, out) = h.arrive(n, "chat", Channel::WebChat);
        if let Some((o, _, _)) = offers(&out).first().copied() {
            h.accept(o);
            accepted += 1;
        }
    }
    assert_eq!(accepted, 2);
    assert_eq!(h.waiting("chat"), vec![contact_id(3)]);
    assert_eq!(h.router.agent_snapshot(&a).unwrap().chat_load, 2);
}

#[test]
fn agent_without_voice_capacity_gets_no_calls() {
    let mut h = setup();
    h.available(agent(1).capacity(0, 3));
    let (_, out) = h.arrive(1, "voice", Channel::Voice);
    assert!(offers(&out).is_empty());
    let q = h.router.queue_snapshot(&QueueId::new("voice")).unwrap();
    assert_eq!(q.agents_eligible, 0);
}

#[test]
fn never_to_busy_away_or_offline_agents() {
    let mut h = setup();
    let a = h.add_agent(agent(1));
    let (c, out) = h.arrive(1, "voice", Channel::Voice);
    assert!(offers(&out).is_empty(), "offline");
    h.presence(a, Presence::Busy);
    assert_eq!(h.waiting("voice"), vec![c], "busy");
    h.presence(
        a,
        Presence::Away {
            reason: "break".into(),
        },
    );
    assert_eq!(h.waiting("voice"), vec![c], "away");
    let out = h.presence(a, Presence::Available);
    let (_, contact, to) = only_offer(&out);
    assert_eq!((contact, to), (c, a));
}

#[test]
fn wrap_up_holds_the_slot_until_its_timer() {
    let mut h = Harness::default();
    let mut q = voice_queue("voice");
    q.wrap_up = secs(30);
    h.queue(q);
    let a = h.available(agent(1));
    let (c1, out) = h.arrive(1, "voice", Channel::Voice);
    h.accept(only_offer(&out).0);
    let (c2, _) = h.arrive(2, "voice", Channel::Voice);
    h.advance(secs(100));
    let out = h.end(c1);
    assert_eq!(
        without_estimates(out),
        vec![Output::WrapUpStarted {
            agent: a,
            contact: c1,
            until: h.now + secs(30),
        }]
    );
    assert_eq!(
        h.router.agent_snapshot(&a).unwrap().activity,
        Activity::WrapUp
    );
    assert!(offers(&h.tick(secs(29))).is_empty());
    let out = h.tick(secs(1));
    assert!(out.contains(&Output::WrapUpEnded {
        agent: a,
        contact: c1
    }));
    let (_, contact, _) = only_offer(&out);
    assert_eq!(contact, c2);
    // Handle time observed: 100 s talk + 30 s wrap-up, smoothed from the 300 s prior.
    let snap = h.router.queue_snapshot(&QueueId::new("voice")).unwrap();
    assert_eq!(snap.handle_time_samples, 1);
    let expected = 300.0 + 0.05 * (130.0 - 300.0);
    assert!((snap.average_handle_time.as_secs_f64() - expected).abs() < 0.01);
}

#[test]
fn wrap_up_done_frees_early() {
    let mut h = Harness::default();
    let mut q = voice_queue("voice");
    q.wrap_up = secs(60);
    h.queue(q);
    let a = h.available(agent(1));
    let (c1, out) = h.arrive(1, "voice", Channel::Voice);
    h.accept(only_offer(&out).0);
    h.end(c1);
    let (c2, out) = h.arrive(2, "voice", Channel::Voice);
    assert!(offers(&out).is_empty());
    h.advance(secs(5));
    let out = h.send(Input::WrapUpDone { contact: c1 });
    assert_eq!(
        out[0],
        Output::WrapUpEnded {
            agent: a,
            contact: c1
        }
    );
    assert_eq!(only_offer(&out).1, c2);
    let later = h.tick(secs(60));
    assert!(
        !later
            .iter()
            .any(|o| matches!(o, Output::WrapUpEnded { .. })),
        "the wrap-up timer is gone"
    );
    assert_eq!(
        h.try_send(Input::WrapUpDone { contact: c1 }),
        Err(RouterError::UnknownContact(c1))
    );
}

#[test]
fn contacts_stay_with_an_agent_who_goes_offline() {
    let mut h = setup();
    let a = h.available(agent(1));
    let (c, out) = h.arrive(1, "voice", Channel::Voice);
    h.accept(only_offer(&out).0);
    h.presence(a, Presence::Offline);
    let snap = h.router.agent_snapshot(&a).unwrap();
    assert_eq!(snap.contacts, vec![c]);
    h.end(c);
    assert_eq!(h.router.agent_snapshot(&a).unwrap().voice_load, 0);
    assert_eq!(h.router.contact_count(), 0);
}

#[test]
fn raising_capacity_lets_a_waiting_chat_through() {
    let mut h = setup();
    let a = h.available(agent(1).capacity(0, 1));
    let (c1, out) = h.arrive(1, "chat", Channel::WebChat);
    h.accept(only_offer(&out).0);
    let (c2, _) = h.arrive(2, "chat", Channel::WebChat);
    // Raising the capacity lets the waiting chat through.
    let out = h.send(Input::UpsertAgent(agent(1).capacity(0, 2)));
    let (_, contact, to) = only_offer(&out);
    assert_eq!((contact, to), (c2, a));
    assert_eq!(h.router.agent_snapshot(&a).unwrap().contacts, vec![c1]);
}

#[test]
fn skill_changes_move_agents_in_and_out_of_queues() {
    let mut h = Harness::default();
    h.queue(voice_queue("tech").require(skill("network"), 3));
    let a = h.available(agent(1).skill(skill("network"), 2));
    let (c, out) = h.arrive(1, "tech", Channel::Voice);
    assert!(offers(&out).is_empty());
    let out = h.send(Input::UpsertAgent(agent(1).skill(skill("network"), 4)));
    assert_eq!(only_offer(&out), (OfferId(1), c, a));
    assert_eq!(
        h.router.agent_snapshot(&a).unwrap().presence,
        Presence::Available,
        "an update keeps presence"
    );
    assert_eq!(
        h.router.agent_snapshot(&a).unwrap().queues,
        vec![(QueueId::new("tech"), 0)]
    );
    h.send(Input::UpsertAgent(agent(1)));
    assert!(h.router.agent_snapshot(&a).unwrap().queues.is_empty());
}

#[test]
fn attached_contacts_count_against_capacity_and_wrap_up_after() {
    let mut h = setup();
    let a = h.available(agent(1).capacity(0, 1));
    // A chat assigned by hand (or found at a restart) fills the only slot…
    let attached = contact_id(10);
    let out = h.send(Input::ContactAttached {
        request: ContactRequest::new(attached, "chat", Channel::WebChat),
        agent: a,
    });
    assert!(out.is_empty(), "attaching decides nothing: {out:?}");
    assert_eq!(h.router.agent_snapshot(&a).unwrap().chat_load, 1);
    assert_eq!(
        h.router.agent_snapshot(&a).unwrap().contacts,
        vec![attached]
    );
    // …so a new chat waits…
    let (waiting, out) = h.arrive(2, "chat", Channel::WebChat);
    assert!(offers(&out).is_empty());
    // …until the attached one ends (the chat queue has no wrap-up time).
    let out = h.end(attached);
    let (_, contact, to) = only_offer(&out);
    assert_eq!((contact, to), (waiting, a));
    // Attaching twice, or to an unknown agent, is refused and changes nothing.
    let again = h.try_send(Input::ContactAttached {
        request: ContactRequest::new(waiting, "chat", Channel::WebChat),
        agent: a,
    });
    assert!(matches!(again, Err(RouterError::DuplicateContact(_))));
    let stranger = h.try_send(Input::ContactAttached {
        request: ContactRequest::new(contact_id(11), "chat", Channel::WebChat),
        agent: agent_id(99),
    });
    assert!(matches!(stranger, Err(RouterError::UnknownAgent(_))));
}
