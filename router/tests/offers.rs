//! Offers: one agent at a time; accept, decline, timeout; the previous
//! agent is passed over unless alone; an agent leaving mid-offer.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use switchboard_bus::Channel;
use switchboard_router::*;

#[test]
fn accept_assigns_and_reports_wait() {
    let mut h = Harness::default();
    h.queue(voice_queue("sales"));
    let a = h.available(agent(1));
    let (c, out) = h.arrive(1, "sales", Channel::Voice);
    let (offer, contact, to) = only_offer(&out);
    assert_eq!((contact, to), (c, a));
    let Output::Offered { expires_at, .. } = &out[0] else {
        panic!("offer first: {out:?}")
    };
    assert_eq!(*expires_at, h.now + secs(20));
    let deadline = h.router.next_deadline().expect("timers pending");
    assert!(deadline <= *expires_at);
    h.advance(secs(3));
    let out = h.accept(offer);
    assert_eq!(
        without_estimates(out),
        vec![Output::Assigned {
            contact: c,
            agent: a,
            queue: QueueId::new("sales"),
            waited: secs(3),
        }]
    );
    let snap = h.router.agent_snapshot(&a).unwrap();
    assert_eq!(snap.activity, Activity::Handling);
    assert_eq!(snap.voice_load, 1);
}

#[test]
fn decline_goes_to_next_agent_and_not_back() {
    let mut h = Harness::default();
    h.queue(voice_queue("sales"));
    let a1 = h.available(agent(1));
    h.advance(secs(1));
    let a2 = h.available(agent(2));
    let (c, out) = h.arrive(1, "sales", Channel::Voice);
    let (o1, _, to) = only_offer(&out);
    assert_eq!(to, a1, "longest idle first");
    let out = h.decline(o1);
    assert!(out.contains(&Output::Requeued {
        contact: c,
        queue: QueueId::new("sales"),
        reason: RequeueReason::Declined,
    }));
    let (o2, _, to) = only_offer(&out);
    assert_eq!(to, a2);
    assert!(explanation(&out).previous_agent_skipped);
    // a2 declines too: a1 is free again and a2 had the last offer, so a1.
    let out = h.decline(o2);
    let (_, _, to) = only_offer(&out);
    assert_eq!(to, a1);
}

#[test]
fn decline_when_alone_offers_again_to_same_agent() {
    let mut h = Harness::default();
    h.queue(voice_queue("sales"));
    let a = h.available(agent(1));
    let (_, out) = h.arrive(1, "sales", Channel::Voice);
    let (o1, _, _) = only_offer(&out);
    let out = h.decline(o1);
    let (o2, _, to) = only_offer(&out);
    assert_eq!(to, a);
    assert_ne!(o1, o2);
    let e = explanation(&out);
    assert!(e.repeated_because_alone);
    assert!(!e.previous_agent_skipped);
}

#[test]
fn decliner_gets_other_work_first() {
    let mut h = Harness::default();
    h.queue(chat_queue("chat"));
    let a = h.available(agent(1).capacity(0, 1));
    let (c1, out) = h.arrive(1, "chat", Channel::WebChat);
    let (o1, _, _) = only_offer(&out);
    let (c2, out) = h.arrive(2, "chat", Channel::WebChat);
    assert!(offers(&out).is_empty(), "agent has an offer pending");
    // Declining c1: the agent is offered c2 (behind c1), c1 waits.
    let out = h.decline(o1);
    let (_, contact, to) = only_offer(&out);
    assert_eq!((contact, to), (c2, a));
    assert_eq!(h.waiting("chat"), vec![c1]);
}

#[test]
fn timeout_revokes_and_moves_on() {
    let mut h = Harness::new(RouterConfig {
        away_after_missed_offers: None,
        ..RouterConfig::default()
    });
    h.queue(voice_queue("sales"));
    let a1 = h.available(agent(1));
    h.advance(secs(1));
    let a2 = h.available(agent(2));
    let (c, out) = h.arrive(1, "sales", Channel::Voice);
    let (o1, _, _) = only_offer(&out);
    assert!(h.tick(secs(19)).is_empty(), "not yet expired");
    let out = without_estimates(h.tick(secs(1)));
    assert_eq!(
        out[0],
        Output::OfferRevoked {
            offer: o1,
            contact: c,
            agent: a1,
            reason: RevokeReason::TimedOut,
        }
    );
    assert_eq!(
        out[1],
        Output::Requeued {
            contact: c,
            queue: QueueId::new("sales"),
            reason: RequeueReason::TimedOut,
        }
    );
    let (_, _, to) = only_offer(&out);
    assert_eq!(to, a2);
}

#[test]
fn missed_offers_set_agent_away() {
    let mut h = Harness::default(); // away after 2 missed offers
    h.queue(voice_queue("sales"));
    let a = h.available(agent(1));
    h.arrive(1, "sales", Channel::Voice);
    let out = h.tick(secs(20));
    assert_eq!(offers(&out).len(), 1, "alone: offered again");
    let out = h.tick(secs(20));
    let away = Presence::Away {
        reason: "missed offers".into(),
    };
    assert!(out.contains(&Output::PresenceChanged {
        agent: a,
        presence: away.clone()
    }));
    assert!(offers(&out).is_empty());
    assert_eq!(h.router.agent_snapshot(&a).unwrap().presence, away);
    assert_eq!(h.waiting("sales").len(), 1);
}

#[test]
fn accepting_resets_missed_count() {
    let mut h = Harness::default();
    h.queue(voice_queue("sales"));
    let a = h.available(agent(1));
    let (c1, _) = h.arrive(1, "sales", Channel::Voice);
    let out = h.tick(secs(20)); // missed once, offered again
    let (o, _, _) = only_offer(&out);
    h.accept(o);
    h.end(c1);
    let (_, _) = h.arrive(2, "sales", Channel::Voice);
    h.tick(secs(20)); // one miss after the reset: still available
    assert_eq!(
        h.router.agent_snapshot(&a).unwrap().presence,
        Presence::Available
    );
}

#[test]
fn agent_going_offline_mid_offer_requeues_at_original_position() {
    let mut h = Harness::default();
    h.queue(voice_queue("sales"));
    let a = h.available(agent(1));
    let (c1, out) = h.arrive(1, "sales", Channel::Voice);
    let (o1, _, _) = only_offer(&out);
    h.advance(secs(1));
    let (c2, _) = h.arrive(2, "sales", Channel::Voice);
    let (c3, _) = h.arrive(3, "sales", Channel::Voice);
    assert_eq!(h.waiting("sales"), vec![c2, c3]);
    let out = h.presence(a, Presence::Offline);
    assert_eq!(
        without_estimates(out),
        vec![
            Output::OfferRevoked {
                offer: o1,
                contact: c1,
                agent: a,
                reason: RevokeReason::AgentUnavailable,
            },
            Output::Requeued {
                contact: c1,
                queue: QueueId::new("sales"),
                reason: RequeueReason::AgentUnavailable,
            },
        ]
    );
    assert_eq!(h.waiting("sales"), vec![c1, c2, c3], "back at the head");
    // Another agent arrives: c1 first.
    let b = h.available(agent(2));
    let snap = h.router.contact_snapshot(&c1).unwrap();
    assert!(matches!(snap.state, ContactState::Offered { agent, .. } if agent == b));
}

#[test]
fn away_mid_offer_also_requeues() {
    let mut h = Harness::default();
    h.queue(voice_queue("sales"));
    let a = h.available(agent(1));
    let (c, _) = h.arrive(1, "sales", Channel::Voice);
    let out = h.presence(
        a,
        Presence::Away {
            reason: "lunch".into(),
        },
    );
    assert!(offers(&out).is_empty());
    assert_eq!(h.waiting("sales"), vec![c]);
}

#[test]
fn answer_to_an_offer_expired_in_the_same_call_is_ignored() {
    let mut h = Harness::new(RouterConfig {
        away_after_missed_offers: None,
        ..RouterConfig::default()
    });
    h.queue(voice_queue("sales"));
    h.available(agent(1));
    h.advance(secs(1));
    let a2 = h.available(agent(2));
    let (_, out) = h.arrive(1, "sales", Channel::Voice);
    let (o1, _, _) = only_offer(&out);
    h.advance(secs(25));
    let out = h.accept(o1);
    // The timer fired first: revoked, requeued, offered to a2; the accept is ignored.
    assert!(!out.iter().any(|o| matches!(o, Output::Assigned { .. })));
    let (_, _, to) = only_offer(&out);
    assert_eq!(to, a2);
    assert_eq!(
        h.try_send(Input::OfferAccepted { offer: o1 }),
        Err(RouterError::UnknownOffer(o1))
    );
}

#[test]
fn one_offer_per_contact_and_per_agent() {
    let mut h = Harness::default();
    h.queue(chat_queue("chat"));
    let a = h.available(agent(1).capacity(0, 3));
    let (_, out) = h.arrive(1, "chat", Channel::WebChat);
    let (o1, _, _) = only_offer(&out);
    let (c2, out) = h.arrive(2, "chat", Channel::WebChat);
    assert!(offers(&out).is_empty(), "one pending offer per agent");
    let out = h.accept(o1);
    let (_, contact, to) = only_offer(&out);
    assert_eq!(
        (contact, to),
        (c2, a),
        "next chat offered once the first is accepted"
    );
}

#[test]
fn abandon_during_offer_revokes_it() {
    let mut h = Harness::default();
    h.queue(voice_queue("sales"));
    let a = h.available(agent(1));
    let (c, out) = h.arrive(1, "sales", Channel::Voice);
    let (o, _, _) = only_offer(&out);
    let out = h.send(Input::ContactAbandoned { contact: c });
    assert_eq!(
        without_estimates(out),
        vec![Output::OfferRevoked {
            offer: o,
            contact: c,
            agent: a,
            reason: RevokeReason::ContactAbandoned,
        }]
    );
    assert_eq!(h.router.contact_count(), 0);
    let q = h.router.queue_snapshot(&QueueId::new("sales")).unwrap();
    assert_eq!(q.counters.abandoned, 1);
    assert_eq!(q.counters.abandoned_in_threshold, 1);
}

#[test]
fn removing_an_agent_with_a_pending_offer_requeues_it() {
    let mut h = Harness::default();
    h.queue(voice_queue("sales"));
    let a = h.available(agent(1));
    let (c, out) = h.arrive(1, "sales", Channel::Voice);
    let (o, _, _) = only_offer(&out);
    let out = h.send(Input::RemoveAgent { agent: a });
    assert!(out.contains(&Output::OfferRevoked {
        offer: o,
        contact: c,
        agent: a,
        reason: RevokeReason::AgentUnavailable,
    }));
    assert_eq!(h.waiting("sales"), vec![c]);
    assert_eq!(
        h.try_send(Input::AgentPresence {
            agent: a,
            presence: Presence::Available
        }),
        Err(RouterError::UnknownAgent(a))
    );
    // A new agent gets it; the removed one is never considered again.
    let b = h.available(agent(2));
    assert!(matches!(
        h.router.contact_snapshot(&c).unwrap().state,
        ContactState::Offered { agent, .. } if agent == b
    ));
}

#[test]
fn offer_made_when_an_agent_frees_up_is_explained_too() {
    let mut h = Harness::default();
    h.queue(voice_queue("q").strategy(Strategy::Predictive(PredictiveConfig::default())));
    let (c, _) = h.arrive(1, "q", Channel::Voice);
    let a = h.add_agent(agent(1));
    let out = h.presence(a, Presence::Available);
    assert_eq!(only_offer(&out), (OfferId(1), c, a));
    let e = explanation(&out);
    assert_eq!(e.strategy, StrategyKind::Predictive);
    assert!(e.score.is_some(), "the agent's score for this contact");
    assert_eq!(e.candidates_considered, 1);
}
