//! Position and wait estimates, SLA counters and supervisor snapshots.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;
use switchboard_bus::Channel;
use switchboard_router::*;

fn estimates(out: &[Output]) -> Vec<(u32, Option<Duration>)> {
    out.iter()
        .filter_map(|o| match o {
            Output::EstimateChanged { position, ewt, .. } => Some((*position, *ewt)),
            _ => None,
        })
        .collect()
}

/// Two agents on one 120 s voice queue, both busy.
fn busy_queue() -> (Harness, Vec<switchboard_bus::ConversationId>) {
    let mut h = Harness::default();
    let mut q = voice_queue("q");
    q.expected_handle_time = secs(120);
    h.queue(q);
    h.available(agent(1));
    h.available(agent(2));
    let mut busy = Vec::new();
    for n in 1..=2 {
        let (c, out) = h.arrive(n, "q", Channel::Voice);
        h.accept(only_offer(&out).0);
        busy.push(c);
    }
    (h, busy)
}

#[test]
fn arrival_gets_position_and_wait_at_once() {
    let (mut h, _) = busy_queue();
    let (_, out) = h.arrive(10, "q", Channel::Voice);
    // Position 1, 2 servers, 120 s: 60 s.
    assert_eq!(estimates(&out), vec![(1, Some(secs(60)))]);
    let (_, out) = h.arrive(11, "q", Channel::Voice);
    assert_eq!(estimates(&out), vec![(2, Some(secs(120)))]);
    let mut vip = ContactRequest::new(contact_id(12), "q", Channel::Voice);
    vip.priority = Priority(9);
    let out = h.arrive_req(vip);
    assert_eq!(estimates(&out), vec![(1, Some(secs(60)))], "jumps the line");
    assert_eq!(
        h.router.estimate(&contact_id(11)).unwrap(),
        (3, Some(secs(180)))
    );
}

#[test]
fn refresh_announces_changed_positions() {
    let (mut h, busy) = busy_queue();
    let (c10, _) = h.arrive(10, "q", Channel::Voice);
    let (c11, _) = h.arrive(11, "q", Channel::Voice);
    h.tick(secs(10)); // settle the refresh timer
    // An agent frees up: c10 is offered, c11 moves to position 1.
    h.advance(secs(1));
    let out = h.end(busy[0]);
    assert_eq!(only_offer(&out).1, c10);
    let deadline = h.router.next_deadline().unwrap();
    let out = h.tick(deadline.since(h.now));
    // The first completed call (11 s) moved the average handle time:
    // 120 + 0.05 × (11 − 120) = 114.55 s, over 2 servers.
    assert_eq!(
        out,
        vec![Output::EstimateChanged {
            contact: c11,
            queue: QueueId::new("q"),
            position: 1,
            ewt: Some(Duration::from_millis(57_275)),
        }]
    );
    // Nothing changed: nothing announced.
    let out = h.tick(secs(60));
    assert!(estimates(&out).is_empty());
}

#[test]
fn no_staff_means_no_wait_estimate() {
    let mut h = Harness::default();
    h.queue(voice_queue("q"));
    let (_, out) = h.arrive(1, "q", Channel::Voice);
    assert_eq!(estimates(&out), vec![(1, None)]);
}

#[test]
fn shared_agents_count_in_part() {
    let mut h = Harness::default();
    h.queue(voice_queue("a"));
    h.queue(voice_queue("b"));
    h.queue(chat_queue("c"));
    h.add_agent(agent(1).capacity(1, 4));
    h.presence(agent_id(1), Presence::Available);
    let a = h.router.queue_snapshot(&QueueId::new("a")).unwrap();
    let c = h.router.queue_snapshot(&QueueId::new("c")).unwrap();
    assert_eq!(
        a.staffed_servers, 0.5,
        "one voice slot over two voice queues"
    );
    assert_eq!(c.staffed_servers, 4.0, "four chat slots, one chat queue");
    h.presence(agent_id(1), Presence::Offline);
    let a = h.router.queue_snapshot(&QueueId::new("a")).unwrap();
    assert_eq!(a.staffed_servers, 0.0);
}

#[test]
fn sla_counters_and_snapshot() {
    let mut h = Harness::default();
    let mut q = voice_queue("q");
    q.sla = ServiceLevelTarget {
        fraction: 0.8,
        threshold: secs(20),
    };
    h.queue(q);
    let (c1, _) = h.arrive(1, "q", Channel::Voice);
    let (c2, _) = h.arrive(2, "q", Channel::Voice);
    let (c3, _) = h.arrive(3, "q", Channel::Voice);
    h.advance(secs(5));
    h.send(Input::ContactAbandoned { contact: c3 }); // short abandon
    h.advance(secs(10));
    let a = h.available(agent(1));
    let snap = h.router.queue_snapshot(&QueueId::new("q")).unwrap();
    assert_eq!(snap.waiting, 1);
    assert_eq!(snap.offered, 1);
    assert_eq!(snap.longest_wait, Some(secs(15)));
    let offer = h.router.agent_snapshot(&a).unwrap().offer.unwrap();
    h.accept(offer); // c1 answered at 15 s
    h.end(c1);
    h.advance(secs(19));
    let offer = h.router.agent_snapshot(&a).unwrap().offer.unwrap();
    h.accept(offer); // c2 answered at 34 s
    let snap = h.router.queue_snapshot(&QueueId::new("q")).unwrap();
    let c = snap.counters;
    assert_eq!((c.entered, c.answered, c.answered_in_threshold), (3, 2, 1));
    assert_eq!((c.abandoned, c.abandoned_in_threshold), (1, 1));
    assert_eq!(snap.service_level, Some(0.5));
    assert_eq!(
        c.average_speed_of_answer(),
        Some(Duration::from_millis(24_500))
    );
    assert_eq!(snap.strategy, StrategyKind::LongestIdle);
    assert!(snap.arrivals_per_hour > 0.0);
    let agent = h.router.agent_snapshot(&a).unwrap();
    assert_eq!(agent.contacts, vec![c2]);
    assert_eq!(agent.queues, vec![(QueueId::new("q"), 0)]);
}

#[test]
fn waiting_by_priority_and_longest_wait() {
    let mut h = Harness::default();
    h.queue(voice_queue("q"));
    for (n, p) in [(1, 0), (2, 3), (3, 3), (4, 0)] {
        let mut r = ContactRequest::new(contact_id(n), "q", Channel::Voice);
        r.priority = Priority(p);
        h.arrive_req(r);
        h.tick(secs(10));
    }
    let snap = h.router.queue_snapshot(&QueueId::new("q")).unwrap();
    assert_eq!(
        snap.waiting_by_priority,
        vec![(Priority(3), 2), (Priority(0), 2)]
    );
    assert_eq!(
        snap.longest_wait,
        Some(secs(40)),
        "the first, lowest-priority arrival"
    );
}

#[test]
fn forecast_uses_erlang_c() {
    let mut h = Harness::new(RouterConfig {
        away_after_missed_offers: None,
        ..RouterConfig::default()
    });
    let mut q = chat_queue("q");
    q.expected_handle_time = secs(600);
    h.queue(q);
    for n in 1..=3 {
        h.available(agent(n).capacity(0, 2)); // 6 servers
    }
    // 15 arrivals in 15 minutes: 1/min × 10 min AHT = 10 Erlangs > 6: overloaded.
    for n in 1..=15 {
        h.arrive(n, "q", Channel::WebChat);
        h.tick(secs(60));
    }
    let snap = h.router.queue_snapshot(&QueueId::new("q")).unwrap();
    assert_eq!(snap.forecast.servers, 6);
    assert!(
        (snap.forecast.load_erlangs - 10.0).abs() < 0.8,
        "{:?}",
        snap.forecast
    );
    assert_eq!(snap.forecast.wait_probability, 1.0);
    assert_eq!(snap.forecast.average_speed_of_answer, None);
}

#[test]
fn refreshes_run_on_tick_within_budget() {
    let mut h = Harness::new(RouterConfig {
        estimate_budget: 3,
        ..RouterConfig::default()
    });
    for q in ["a", "b", "c"] {
        h.queue(voice_queue(q));
    }
    let mut n = 0;
    for q in ["a", "a", "b", "b", "c", "c"] {
        n += 1;
        h.arrive(n, q, Channel::Voice);
    }
    let drain = |h: &mut Harness| {
        while h.router.next_deadline().is_some_and(|t| t <= h.now) {
            h.send(Input::Tick);
        }
    };
    drain(&mut h);
    // An urgent contact jumps each queue: everyone else moves back one.
    for q in ["a", "b", "c"] {
        n += 1;
        let mut r = ContactRequest::new(contact_id(n), q, Channel::Voice);
        r.priority = Priority(9);
        h.arrive_req(r);
    }
    h.advance(secs(10));
    // Decision calls never refresh.
    let (_, out) = h.arrive(100, "c", Channel::Voice);
    assert_eq!(estimates(&out).len(), 1, "only the newcomer's own estimate");
    // A tick walks queue a (3 contacts) and stops at the budget.
    let out = h.send(Input::Tick);
    assert_eq!(estimates(&out), vec![(2, None), (3, None)]);
    assert!(
        out.iter()
            .all(|o| matches!(o, Output::EstimateChanged { queue, .. } if queue.as_str() == "a"))
    );
    assert_eq!(h.router.next_deadline(), Some(h.now), "more refreshes due");
    let out = h.send(Input::Tick);
    assert!(
        out.iter()
            .all(|o| matches!(o, Output::EstimateChanged { queue, .. } if queue.as_str() == "b"))
    );
    assert_eq!(out.len(), 2);
}
