//! Bad input is refused with an error and changes nothing.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use switchboard_bus::Channel;
use switchboard_router::*;

#[test]
fn unknown_ids_are_refused() {
    let mut h = Harness::default();
    h.queue(voice_queue("q"));
    let ghost = agent_id(99);
    let c = contact_id(99);
    let cases = [
        (
            Input::AgentPresence {
                agent: ghost,
                presence: Presence::Available,
            },
            RouterError::UnknownAgent(ghost),
        ),
        (
            Input::ContactArrived(ContactRequest::new(c, "nope", Channel::Voice)),
            RouterError::UnknownQueue(QueueId::new("nope")),
        ),
        (
            Input::OfferAccepted { offer: OfferId(7) },
            RouterError::UnknownOffer(OfferId(7)),
        ),
        (
            Input::OfferDeclined { offer: OfferId(7) },
            RouterError::UnknownOffer(OfferId(7)),
        ),
        (
            Input::ContactEnded { contact: c },
            RouterError::UnknownContact(c),
        ),
        (
            Input::ContactAbandoned { contact: c },
            RouterError::UnknownContact(c),
        ),
        (
            Input::WrapUpDone { contact: c },
            RouterError::UnknownContact(c),
        ),
        (
            Input::RemoveQueue {
                queue: QueueId::new("nope"),
            },
            RouterError::UnknownQueue(QueueId::new("nope")),
        ),
        (
            Input::RemoveAgent { agent: ghost },
            RouterError::UnknownAgent(ghost),
        ),
    ];
    for (input, err) in cases {
        assert_eq!(h.try_send(input), Err(err));
    }
}

#[test]
fn duplicate_contact_is_refused_and_nothing_changes() {
    let mut h = Harness::default();
    h.queue(voice_queue("q"));
    let (c, _) = h.arrive(1, "q", Channel::Voice);
    let before = h.router.queue_snapshot(&QueueId::new("q")).unwrap();
    assert_eq!(
        h.try_send(Input::ContactArrived(ContactRequest::new(
            c,
            "q",
            Channel::Voice
        ))),
        Err(RouterError::DuplicateContact(c))
    );
    assert_eq!(h.router.queue_snapshot(&QueueId::new("q")).unwrap(), before);
}

#[test]
fn wrong_state_is_refused() {
    let mut h = Harness::default();
    h.queue(voice_queue("q"));
    let (c, _) = h.arrive(1, "q", Channel::Voice);
    assert_eq!(
        h.try_send(Input::WrapUpDone { contact: c }),
        Err(RouterError::WrongContactState {
            contact: c,
            expected: "in wrap-up",
            actual: "waiting",
        })
    );
    assert!(h.router.estimate(&c).is_ok());
}

#[test]
fn invalid_configuration_is_refused() {
    let mut h = Harness::default();
    let mut q = voice_queue("q");
    q.offer_timeout = secs(0);
    assert!(matches!(
        h.try_send(Input::UpsertQueue(q)),
        Err(RouterError::InvalidConfig(_))
    ));
    let bad_agents = [agent(1).skill(skill("x"), 6), agent(1).capacity(2, 0), {
        let mut a = agent(1);
        a.overall = Some(TopicPerformance {
            resolution_rate: 1.5,
            csat: 4.0,
            handle_time: secs(60),
            samples: 1,
        });
        a
    }];
    for a in bad_agents {
        assert!(matches!(
            h.try_send(Input::UpsertAgent(a)),
            Err(RouterError::InvalidConfig(_))
        ));
    }
    let mut q = voice_queue("q");
    q.business_hours = Some(BusinessHours {
        utc_offset_minutes: 0,
        weekly: std::array::from_fn(|_| {
            vec![OpenInterval {
                start: 600,
                end: 500,
            }]
        }),
    });
    assert!(h.try_send(Input::UpsertQueue(q)).is_err());
    let mut q = voice_queue("q");
    q.strategy = Strategy::Predictive(PredictiveConfig {
        max_candidates: 0,
        ..PredictiveConfig::default()
    });
    assert!(h.try_send(Input::UpsertQueue(q)).is_err());
    assert!(h.router.queue_snapshots().is_empty());
    assert!(
        Router::new(RouterConfig {
            handle_time_smoothing: 0.0,
            ..RouterConfig::default()
        })
        .is_err()
    );
}

#[test]
fn changing_the_kind_of_a_busy_queue_is_refused() {
    let mut h = Harness::default();
    h.queue(voice_queue("q"));
    h.arrive(1, "q", Channel::Voice);
    assert_eq!(
        h.try_send(Input::UpsertQueue(chat_queue("q"))),
        Err(RouterError::QueueNotEmpty {
            queue: QueueId::new("q"),
            contacts: 1,
        })
    );
}

#[test]
fn time_never_goes_backwards() {
    let mut h = Harness::default();
    h.queue(voice_queue("q"));
    let (c, _) = h.arrive(1, "q", Channel::Voice);
    let earlier = Timestamp(h.now.as_millis() - 5_000);
    h.router.handle(earlier, Input::Tick).unwrap();
    assert_eq!(h.router.now(), h.now);
    assert_eq!(h.router.contact_snapshot(&c).unwrap().waited, secs(0));
}

#[test]
fn inputs_and_outputs_round_trip_through_json() {
    let input = Input::ContactArrived(ContactRequest::new(contact_id(1), "q", Channel::Voice));
    let json = serde_json::to_string(&input).unwrap();
    assert!(json.contains("\"type\":\"contact_arrived\""));
    let back: Input = serde_json::from_str(&json).unwrap();
    assert_eq!(back, input);
    let q: QueueConfig = serde_json::from_value(serde_json::json!({
        "id": "billing",
        "kind": "voice",
        "required_skills": [{"skill": "billing", "min_proficiency": 3}],
        "strategy": {"kind": "skills_weighted"},
        "wrap_up": 30,
        "offer_timeout": 15.5,
        "overflow": [{"after": 60, "action": {"kind": "relax_proficiency", "min_proficiency": 1}}],
        "closed_action": {"kind": "voicemail"},
        "expected_handle_time": 240
    }))
    .unwrap();
    assert_eq!(q.offer_timeout, std::time::Duration::from_millis(15_500));
    assert!(q.validate().is_ok());
}
