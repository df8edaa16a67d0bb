//! Overflow rules: relax proficiency, move to an overflow queue, voicemail
//! and callback, each after its wait.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;
use switchboard_bus::Channel;
use switchboard_router::*;

fn tiered() -> QueueConfig {
    voice_queue("tech")
        .require(skill("network"), 4)
        .overflow(
            secs(30),
            OverflowAction::RelaxProficiency { min_proficiency: 2 },
        )
        .overflow(
            secs(90),
            OverflowAction::MoveToQueue {
                queue: QueueId::new("general"),
            },
        )
}

#[test]
fn relaxes_proficiency_after_its_wait() {
    let mut h = Harness::default();
    h.queue(tiered());
    h.queue(voice_queue("general"));
    let junior = h.available(agent(1).skill(skill("network"), 2));
    h.available(agent(2).skill(skill("network"), 1)); // below even the relaxed level
    let (c, out) = h.arrive(1, "tech", Channel::Voice);
    assert!(offers(&out).is_empty());
    assert!(offers(&h.tick(secs(29))).is_empty());
    let out = h.tick(secs(1));
    assert_eq!(
        out[0],
        Output::Relaxed {
            contact: c,
            queue: QueueId::new("tech"),
            level: 1,
            min_proficiency: 2,
        }
    );
    let (_, _, to) = only_offer(&out);
    assert_eq!(to, junior);
    let e = explanation(&out);
    assert_eq!(e.relaxation_level, 1);
    assert_eq!(
        e.skills,
        vec![SkillMatch {
            skill: skill("network"),
            required: 2,
            agent: 2
        }]
    );
}

#[test]
fn qualified_agents_are_preferred_and_relaxed_agents_wait_for_relaxed_contacts() {
    let mut h = Harness::default();
    h.queue(tiered());
    h.queue(voice_queue("general"));
    let (c1, _) = h.arrive(1, "tech", Channel::Voice);
    h.advance(secs(10));
    let (c2, _) = h.arrive(2, "tech", Channel::Voice);
    h.tick(secs(20)); // c1 relaxed (30 s), c2 not (20 s)
    let junior = h.available(agent(1).skill(skill("network"), 3));
    let snap = h.router.contact_snapshot(&c1).unwrap();
    assert!(matches!(snap.state, ContactState::Offered { agent, .. } if agent == junior));
    // A senior agent takes c2 at once.
    let senior = h.available(agent(2).skill(skill("network"), 5));
    let snap = h.router.contact_snapshot(&c2).unwrap();
    assert!(matches!(snap.state, ContactState::Offered { agent, .. } if agent == senior));
}

#[test]
fn moves_to_overflow_queue_by_original_arrival() {
    let mut h = Harness::default();
    h.queue(tiered());
    h.queue(voice_queue("general"));
    let (c1, _) = h.arrive(1, "tech", Channel::Voice);
    h.advance(secs(5));
    let (g1, _) = h.arrive(2, "general", Channel::Voice);
    let out = h.tick(secs(85)); // c1 has waited 90 s
    assert!(out.contains(&Output::Overflowed {
        contact: c1,
        from: QueueId::new("tech"),
        to: QueueId::new("general"),
    }));
    assert_eq!(h.waiting("general"), vec![c1, g1], "c1 arrived first");
    assert!(h.waiting("tech").is_empty());
    let tech = h.router.queue_snapshot(&QueueId::new("tech")).unwrap();
    assert_eq!(tech.counters.overflowed_out, 1);
    let general = h.router.queue_snapshot(&QueueId::new("general")).unwrap();
    assert_eq!(general.counters.entered, 2);
    // Answered from the general queue; wait counted from first arrival.
    let a = h.available(agent(9));
    let out = h.accept(h.router.agent_snapshot(&a).unwrap().offer.unwrap());
    assert!(out.contains(&Output::Assigned {
        contact: c1,
        agent: a,
        queue: QueueId::new("general"),
        waited: secs(90),
    }));
}

#[test]
fn voicemail_and_callback_take_the_contact_out() {
    for (action, expect_voicemail) in [
        (OverflowAction::Voicemail, true),
        (OverflowAction::Callback, false),
    ] {
        let mut h = Harness::default();
        h.queue(voice_queue("q").overflow(secs(120), action));
        let (c, _) = h.arrive(1, "q", Channel::Voice);
        let out = h.tick(secs(120));
        let expected = if expect_voicemail {
            Output::OfferVoicemail {
                contact: c,
                queue: QueueId::new("q"),
            }
        } else {
            Output::OfferCallback {
                contact: c,
                queue: QueueId::new("q"),
            }
        };
        assert!(out.contains(&expected), "{out:?}");
        assert_eq!(h.router.contact_count(), 0);
    }
}

#[test]
fn overflow_due_during_an_offer_applies_on_requeue() {
    let mut h = Harness::new(RouterConfig {
        away_after_missed_offers: Some(1),
        ..RouterConfig::default()
    });
    h.queue(voice_queue("q").overflow(secs(10), OverflowAction::Callback));
    h.available(agent(1));
    let (c, _) = h.arrive(1, "q", Channel::Voice);
    // The offer runs 20 s, past the 10 s rule; on timeout the rule applies.
    let out = h.tick(secs(20));
    assert!(out.contains(&Output::OfferCallback {
        contact: c,
        queue: QueueId::new("q"),
    }));
}

#[test]
fn offered_contact_does_not_overflow() {
    let mut h = Harness::default();
    h.queue(voice_queue("q").overflow(secs(10), OverflowAction::Voicemail));
    let a = h.available(agent(1));
    let (c, out) = h.arrive(1, "q", Channel::Voice);
    let (o, _, _) = only_offer(&out);
    h.advance(secs(15));
    let out = h.accept(o);
    assert!(out.contains(&Output::Assigned {
        contact: c,
        agent: a,
        queue: QueueId::new("q"),
        waited: secs(15)
    }));
}

#[test]
fn rules_are_validated() {
    let mut h = Harness::default();
    let bad = [
        voice_queue("q")
            .overflow(secs(10), OverflowAction::Voicemail)
            .overflow(secs(20), OverflowAction::Callback),
        voice_queue("q")
            .overflow(
                secs(20),
                OverflowAction::RelaxProficiency { min_proficiency: 2 },
            )
            .overflow(
                secs(10),
                OverflowAction::RelaxProficiency { min_proficiency: 1 },
            ),
        voice_queue("q").overflow(
            secs(10),
            OverflowAction::MoveToQueue {
                queue: QueueId::new("q"),
            },
        ),
        voice_queue("q").overflow(
            secs(10),
            OverflowAction::RelaxProficiency { min_proficiency: 0 },
        ),
        voice_queue("q").overflow(
            secs(0),
            OverflowAction::MoveToQueue {
                queue: QueueId::new("other"),
            },
        ),
    ];
    for cfg in bad {
        assert!(matches!(
            h.try_send(Input::UpsertQueue(cfg)),
            Err(RouterError::InvalidConfig(_))
        ));
    }
}

#[test]
fn changing_rules_reapplies_them_to_waiting_contacts() {
    let mut h = Harness::default();
    h.queue(voice_queue("q"));
    let (c, _) = h.arrive(1, "q", Channel::Voice);
    h.advance(secs(60));
    let out = h.queue(voice_queue("q").overflow(secs(30), OverflowAction::Voicemail));
    assert!(out.contains(&Output::OfferVoicemail {
        contact: c,
        queue: QueueId::new("q"),
    }));
}

#[test]
fn next_deadline_names_the_overflow_step() {
    let mut h = Harness::default();
    h.queue(voice_queue("q").overflow(secs(45), OverflowAction::Callback));
    let (_, _) = h.arrive(1, "q", Channel::Voice);
    let arrived = h.now;
    // Estimate refreshes first (due at once), then nothing until the rule.
    while h.router.next_deadline().is_some_and(|t| t <= h.now) {
        h.send(Input::Tick);
    }
    assert_eq!(h.router.next_deadline(), Some(arrived + secs(45)));
}

#[test]
fn queues_overflowing_into_each_other_move_once_per_wait() {
    let mut h = Harness::default();
    let ab = |from: &str, to: &str| {
        voice_queue(from).overflow(
            Duration::from_millis(1),
            OverflowAction::MoveToQueue {
                queue: QueueId::new(to),
            },
        )
    };
    h.queue(ab("a", "b"));
    h.queue(ab("b", "a"));
    let (c, _) = h.arrive(1, "a", Channel::Voice);
    let out = h.tick(secs(60));
    let moves = out
        .iter()
        .filter(|o| matches!(o, Output::Overflowed { .. }))
        .count();
    assert_eq!(moves, 1, "one move per elapsed wait, not a loop");
    assert_eq!(h.waiting("b"), vec![c]);
}
