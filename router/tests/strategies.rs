//! Strategies: longest idle, least occupied, skills-weighted, predictive,
//! and their explanations.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;
use switchboard_bus::{AgentId, Channel};
use switchboard_router::*;

#[test]
fn longest_idle_picks_who_has_been_free_longest() {
    let mut h = Harness::default();
    h.queue(voice_queue("q"));
    let a1 = h.available(agent(1));
    h.advance(secs(10));
    let a2 = h.available(agent(2));
    h.advance(secs(10));
    let (c1, out) = h.arrive(1, "q", Channel::Voice);
    let (o, _, to) = only_offer(&out);
    assert_eq!(to, a1);
    let e = explanation(&out);
    assert_eq!(e.strategy, StrategyKind::LongestIdle);
    assert_eq!(e.agent_idle_for, secs(20));
    h.accept(o);
    h.advance(secs(5));
    h.end(c1); // a1 free again, but just now
    let (_, out) = h.arrive(2, "q", Channel::Voice);
    assert_eq!(only_offer(&out).2, a2);
}

#[test]
fn least_occupied_spreads_chats() {
    let mut h = Harness::default();
    h.queue(chat_queue("q").strategy(Strategy::LeastOccupied));
    let a1 = h.available(agent(1).capacity(0, 4));
    h.advance(secs(1));
    let a2 = h.available(agent(2).capacity(0, 2));
    let mut got = Vec::new();
    for n in 1..=4 {
        let (_, out) = h.arrive(n, "q", Channel::WebChat);
        let (o, _, to) = only_offer(&out);
        got.push(to);
        h.accept(o);
    }
    // a1 (0/4, idle longer), a2 (0/2), a1 (1/4=250‰ < a2 1/2), a1 (2/4=500‰ = a2 500‰, a1 idle longer)
    assert_eq!(got, vec![a1, a2, a1, a1]);
    let (_, out) = h.arrive(5, "q", Channel::WebChat);
    assert_eq!(only_offer(&out).2, a2, "a1 at 750‰, a2 at 500‰");
}

#[test]
fn skills_weighted_picks_best_proficiency() {
    let mut h = Harness::default();
    h.queue(
        voice_queue("q")
            .require(skill("billing"), 1)
            .require(skill("spanish"), 1)
            .strategy(Strategy::SkillsWeighted),
    );
    h.available(
        agent(1)
            .skill(skill("billing"), 5)
            .skill(skill("spanish"), 1),
    );
    let best = h.available(
        agent(2)
            .skill(skill("billing"), 4)
            .skill(skill("spanish"), 4),
    );
    h.available(
        agent(3)
            .skill(skill("billing"), 3)
            .skill(skill("spanish"), 3),
    );
    let (_, out) = h.arrive(1, "q", Channel::Voice);
    assert_eq!(only_offer(&out).2, best);
    let e = explanation(&out);
    assert_eq!(e.strategy, StrategyKind::SkillsWeighted);
    assert_eq!(
        e.skills.iter().map(|s| s.agent).collect::<Vec<_>>(),
        vec![4, 4]
    );
}

fn perf(resolution_rate: f64, csat: f64, handle: u64, samples: u32) -> TopicPerformance {
    TopicPerformance {
        resolution_rate,
        csat,
        handle_time: Duration::from_secs(handle),
        samples,
    }
}

fn predictive_setup() -> (Harness, AgentId, AgentId) {
    let mut h = Harness::default();
    let mut q = voice_queue("q").strategy(Strategy::Predictive(PredictiveConfig::default()));
    q.expected_handle_time = secs(300);
    h.queue(q);
    let refund = Topic::new("refund");
    // The resolver: fixes things, customers are lukewarm.
    let mut resolver = agent(1);
    resolver
        .performance
        .insert(refund.clone(), perf(0.95, 3.0, 300, 200));
    // The charmer: delighted customers, fewer fixes.
    let mut charmer = agent(2);
    charmer
        .performance
        .insert(refund.clone(), perf(0.55, 4.9, 300, 200));
    let r = h.available(resolver);
    let c = h.available(charmer);
    (h, r, c)
}

fn refund_request(n: u128, tags: &[&str]) -> ContactRequest {
    let mut r = ContactRequest::new(contact_id(n), "q", Channel::Voice);
    r.topic = Some(Topic::new("refund"));
    r.tags = tags.iter().map(Tag::new).collect();
    r
}

#[test]
fn predictive_uses_tags_to_weigh_agent_performance() {
    let (mut h, resolver, charmer) = predictive_setup();
    // Churn risk weighs resolution: the resolver.
    let out = h.arrive_req(refund_request(1, &["churn_risk"]));
    assert_eq!(only_offer(&out).2, resolver);
    let e = explanation(&out);
    assert_eq!(e.strategy, StrategyKind::Predictive);
    assert_eq!(e.candidates_considered, 2);
    let score = e.score.unwrap();
    assert_eq!(score.topic, Some(Topic::new("refund")));
    assert_eq!(score.samples, 200);
    let res = score
        .terms
        .iter()
        .find(|t| t.term == Term::Resolution)
        .unwrap();
    assert!((res.weight - 3.0).abs() < 1e-12, "base 1 + churn_risk 2");
    let sum: f64 = score.terms.iter().map(|t| t.contribution).sum();
    assert!((sum - score.total).abs() < 1e-12);
    let (runner_up, runner_score) = e.runner_up.unwrap();
    assert_eq!(runner_up, charmer);
    assert!(runner_score < score.total);

    // A VIP weighs satisfaction: the charmer (fresh router, both free).
    let (mut h, _, charmer) = predictive_setup();
    let out = h.arrive_req(refund_request(2, &["vip"]));
    assert_eq!(only_offer(&out).2, charmer);
}

#[test]
fn predictive_shrinks_thin_data_towards_the_prior() {
    let mut h = Harness::default();
    h.queue(voice_queue("q").strategy(Strategy::Predictive(PredictiveConfig::default())));
    let topic = Topic::new("refund");
    let mut lucky = agent(1);
    lucky
        .performance
        .insert(topic.clone(), perf(1.0, 5.0, 300, 2));
    let mut proven = agent(2);
    proven
        .performance
        .insert(topic.clone(), perf(0.9, 4.6, 300, 400));
    h.available(lucky);
    let proven = h.available(proven);
    let out = h.arrive_req(refund_request(1, &[]));
    assert_eq!(only_offer(&out).2, proven);
}

#[test]
fn predictive_without_data_falls_back_to_idle_order() {
    let mut h = Harness::default();
    h.queue(voice_queue("q").strategy(Strategy::Predictive(PredictiveConfig::default())));
    let first = h.available(agent(1));
    h.advance(secs(1));
    h.available(agent(2));
    let out = h.arrive_req(refund_request(1, &["vip"]));
    assert_eq!(only_offer(&out).2, first, "equal scores: longest idle");
}

#[test]
fn predictive_scores_at_most_max_candidates() {
    let mut h = Harness::default();
    let cfg = PredictiveConfig {
        max_candidates: 2,
        ..PredictiveConfig::default()
    };
    h.queue(voice_queue("q").strategy(Strategy::Predictive(cfg)));
    h.available(agent(1));
    h.advance(secs(1));
    h.available(agent(2));
    h.advance(secs(1));
    let mut star = agent(3);
    star.overall = Some(perf(1.0, 5.0, 60, 1000));
    h.available(star);
    let out = h.arrive_req(refund_request(1, &[]));
    let e = explanation(&out);
    assert_eq!(e.candidates_considered, 2);
    assert_ne!(
        only_offer(&out).2,
        agent_id(3),
        "third in idle order: not scored"
    );
}

#[test]
fn performance_updates_take_effect() {
    let (mut h, _, charmer) = predictive_setup();
    h.send(Input::AgentPerformance {
        agent: charmer,
        topic: Some(Topic::new("refund")),
        performance: perf(0.99, 5.0, 200, 500),
    });
    let out = h.arrive_req(refund_request(1, &["churn_risk"]));
    assert_eq!(only_offer(&out).2, charmer);
}

#[test]
fn explanation_serialises_to_json() {
    let (mut h, _, _) = predictive_setup();
    let out = h.arrive_req(refund_request(1, &["vip"]));
    let json = serde_json::to_value(&out[0]).unwrap();
    assert_eq!(json["type"], "offered");
    assert_eq!(json["explanation"]["strategy"], "predictive");
    assert_eq!(
        json["explanation"]["score"]["terms"][1]["term"],
        "satisfaction"
    );
}
