//! Queue rules: FIFO within priority, requirements, business hours,
//! configuration changes.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use switchboard_bus::Channel;
use switchboard_router::*;

// 2024-01-01 00:00:00 UTC was a Monday.
const MONDAY_MS: u64 = 1_704_067_200_000;

#[test]
fn fifo_within_priority_and_higher_priority_first() {
    let mut h = Harness::default();
    h.queue(voice_queue("q"));
    let req = |n: u128, p: u8| {
        let mut r = ContactRequest::new(contact_id(n), "q", Channel::Voice);
        r.priority = Priority(p);
        r
    };
    let reqs = [req(1, 0), req(2, 5), req(3, 0), req(4, 5), req(5, 1)];
    for r in reqs {
        h.advance(secs(1));
        h.arrive_req(r);
    }
    let order = [2, 4, 5, 1, 3].map(contact_id).to_vec();
    assert_eq!(h.waiting("q"), order);
    let a = h.available(agent(1));
    let mut served = Vec::new();
    for _ in 0..5 {
        let snap = h.router.agent_snapshot(&a).unwrap();
        let offer = snap.offer.expect("offer pending");
        let out = h.accept(offer);
        let c = out
            .iter()
            .find_map(|o| match o {
                Output::Assigned { contact, .. } => Some(*contact),
                _ => None,
            })
            .unwrap();
        served.push(c);
        h.end(c);
    }
    assert_eq!(served, order);
}

#[test]
fn agent_takes_highest_priority_then_oldest_across_queues() {
    let mut h = Harness::default();
    h.queue(voice_queue("a"));
    h.queue(voice_queue("b"));
    h.arrive(1, "a", Channel::Voice);
    h.advance(secs(1));
    h.arrive(2, "b", Channel::Voice);
    let mut r = ContactRequest::new(contact_id(3), "b", Channel::Voice);
    r.priority = Priority(2);
    h.advance(secs(1));
    h.arrive_req(r);
    let a1 = h.available(agent(1));
    let snap = h.router.contact_snapshot(&contact_id(3)).unwrap();
    assert_eq!(snap.queue, QueueId::new("b"));
    assert!(
        matches!(snap.state, ContactState::Offered { agent, .. } if agent == a1),
        "priority 2 first"
    );
    // Next free agent: the oldest of equal priority, c1 in queue a.
    let a2 = h.available(agent(2));
    let snap = h.router.contact_snapshot(&contact_id(1)).unwrap();
    assert!(matches!(snap.state, ContactState::Offered { agent, .. } if agent == a2));
    assert_eq!(h.waiting("b"), vec![contact_id(2)]);
}

#[test]
fn required_skills_language_and_teams_filter_agents() {
    let mut h = Harness::default();
    let mut q = voice_queue("de-billing").require(skill("billing"), 3);
    q.language = Some(Language::new("de"));
    q.teams = [Team::new("tier2")].into_iter().collect();
    h.queue(q);
    let in_team = |p: AgentProfile| {
        let mut p = p;
        p.teams.insert(Team::new("tier2"));
        p
    };
    h.available(in_team(agent(1).skill(skill("billing"), 2).language("de"))); // too weak
    h.available(in_team(agent(2).skill(skill("billing"), 4).language("en"))); // wrong language
    h.available(agent(3).skill(skill("billing"), 5).language("de")); // wrong team
    h.available(in_team(agent(4).skill(skill("sales"), 5).language("de"))); // wrong skill
    let (c, out) = h.arrive(1, "de-billing", Channel::Voice);
    assert!(offers(&out).is_empty());
    let ok = h.available(in_team(agent(5).skill(skill("billing"), 3).language("DE")));
    let snap = h.router.contact_snapshot(&c).unwrap();
    assert_eq!(
        snap.state,
        ContactState::Offered {
            offer: OfferId(1),
            agent: ok
        }
    );
}

#[test]
fn contact_language_and_extra_skills_filter_agents() {
    let mut h = Harness::default();
    h.queue(chat_queue("support"));
    let en = h.available(agent(1).language("en"));
    let zh = h.available(agent(2).language("zh").skill(skill("refunds"), 2));
    let mut r = ContactRequest::new(contact_id(1), "support", Channel::WeChat);
    r.language = Some(Language::new("zh"));
    let out = h.arrive_req(r);
    assert_eq!(only_offer(&out).2, zh);
    let mut r = ContactRequest::new(contact_id(2), "support", Channel::WebChat);
    r.required_skills = vec![SkillRequirement::new(skill("refunds"), 3)];
    let out = h.arrive_req(r);
    assert!(offers(&out).is_empty(), "nobody has refunds ≥ 3");
    let (_, out) = h.arrive(3, "support", Channel::WebChat);
    assert_eq!(
        only_offer(&out).2,
        en,
        "plain contact passes the waiting one"
    );
    assert_eq!(h.waiting("support"), vec![contact_id(2)]);
}

#[test]
fn channel_must_match_queue_kind() {
    let mut h = Harness::default();
    h.queue(voice_queue("v"));
    let r = ContactRequest::new(contact_id(1), "v", Channel::Sms);
    assert_eq!(
        h.try_send(Input::ContactArrived(r)),
        Err(RouterError::ChannelMismatch {
            queue: QueueId::new("v"),
            kind: ChannelKind::Voice,
            channel: Channel::Sms,
        })
    );
}

fn office_hours(action: ClosedAction) -> QueueConfig {
    let mut q = voice_queue("office");
    q.business_hours = Some(BusinessHours::weekdays(60, OpenInterval::hm(9, 0, 17, 0)));
    q.closed_action = action;
    q
}

#[test]
fn closed_queue_rejects_or_offers_voicemail_or_callback() {
    let saturday = Timestamp(MONDAY_MS + 5 * 86_400_000 + 10 * 3_600_000);
    for (action, expected) in [
        (
            ClosedAction::Reject,
            Output::Rejected {
                contact: contact_id(1),
                queue: QueueId::new("office"),
                reason: RejectReason::Closed,
            },
        ),
        (
            ClosedAction::Voicemail,
            Output::OfferVoicemail {
                contact: contact_id(1),
                queue: QueueId::new("office"),
            },
        ),
        (
            ClosedAction::Callback,
            Output::OfferCallback {
                contact: contact_id(1),
                queue: QueueId::new("office"),
            },
        ),
    ] {
        let mut h = Harness::at(saturday);
        h.queue(office_hours(action));
        h.available(agent(1));
        let (_, out) = h.arrive(1, "office", Channel::Voice);
        assert_eq!(out, vec![expected]);
        assert_eq!(h.router.contact_count(), 0);
        let snap = h.router.queue_snapshot(&QueueId::new("office")).unwrap();
        assert!(!snap.open);
    }
}

#[test]
fn open_queue_accepts_and_closed_queue_can_forward() {
    // Monday 08:30 UTC = 09:30 at UTC+1: open.
    let mut h = Harness::at(Timestamp(MONDAY_MS + 8 * 3_600_000 + 1_800_000));
    h.queue(office_hours(ClosedAction::MoveToQueue {
        queue: QueueId::new("night"),
    }));
    h.queue(voice_queue("night"));
    let (c1, _) = h.arrive(1, "office", Channel::Voice);
    assert_eq!(h.waiting("office"), vec![c1]);
    // 16:00 UTC = 17:00 local: closed, forwarded to the night queue.
    h.now = Timestamp(MONDAY_MS + 16 * 3_600_000);
    let (c2, _) = h.arrive(2, "office", Channel::Voice);
    assert_eq!(h.waiting("night"), vec![c2]);
    assert_eq!(h.waiting("office"), vec![c1], "already waiting: stays");
}

#[test]
fn closed_queues_forwarding_in_a_circle_reject() {
    let mut h = Harness::at(Timestamp(MONDAY_MS + 5 * 86_400_000));
    let mut a = office_hours(ClosedAction::MoveToQueue {
        queue: QueueId::new("b"),
    });
    a.id = QueueId::new("a");
    let mut b = office_hours(ClosedAction::MoveToQueue {
        queue: QueueId::new("a"),
    });
    b.id = QueueId::new("b");
    h.queue(a);
    h.queue(b);
    let (_, out) = h.arrive(1, "a", Channel::Voice);
    assert!(matches!(
        out[0],
        Output::Rejected {
            reason: RejectReason::TooManyMoves,
            ..
        }
    ));
}

#[test]
fn changing_a_queue_reindexes_agents_and_keeps_contacts() {
    let mut h = Harness::default();
    h.queue(voice_queue("q").require(skill("billing"), 4));
    let a = h.available(agent(1).skill(skill("billing"), 2));
    let (c, out) = h.arrive(1, "q", Channel::Voice);
    assert!(offers(&out).is_empty());
    let out = h.queue(voice_queue("q").require(skill("billing"), 2));
    let (_, contact, to) = only_offer(&out);
    assert_eq!((contact, to), (c, a));
    let snap = h.router.queue_snapshot(&QueueId::new("q")).unwrap();
    assert_eq!(snap.counters.entered, 1, "counters survive the change");
}

#[test]
fn remove_queue_and_agent() {
    let mut h = Harness::default();
    h.queue(voice_queue("q"));
    let (c, _) = h.arrive(1, "q", Channel::Voice);
    assert_eq!(
        h.try_send(Input::RemoveQueue {
            queue: QueueId::new("q")
        }),
        Err(RouterError::QueueNotEmpty {
            queue: QueueId::new("q"),
            contacts: 1
        })
    );
    let a = h.available(agent(1));
    let snap = h.router.contact_snapshot(&c).unwrap();
    let ContactState::Offered { offer, .. } = snap.state else {
        panic!("offered")
    };
    h.accept(offer);
    assert_eq!(
        h.try_send(Input::RemoveAgent { agent: a }),
        Err(RouterError::AgentBusy(a))
    );
    // Removing the queue while its contact is in conversation is fine.
    h.send(Input::RemoveQueue {
        queue: QueueId::new("q"),
    });
    let snap = h.router.contact_snapshot(&c).unwrap();
    assert_eq!(snap.queue, QueueId::new("q"));
    assert_eq!(snap.state, ContactState::Handling { agent: a });
    assert_eq!(
        h.try_send(Input::ContactArrived(ContactRequest::new(
            contact_id(2),
            "q",
            Channel::Voice
        ))),
        Err(RouterError::UnknownQueue(QueueId::new("q")))
    );
    h.end(c);
    h.send(Input::RemoveAgent { agent: a });
    assert!(h.router.agent_snapshots().is_empty());
    assert!(h.router.queue_snapshots().is_empty());
}
