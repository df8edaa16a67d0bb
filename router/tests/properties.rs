//! Property tests: random event sequences against an independent mirror
//! built only from the router's outputs.
//!
//! Invariants checked on every offer and after every call:
//! * never beyond capacity (voice excludes chat, chats up to capacity, one
//!   pending offer per agent);
//! * never to an agent who is not `Available`;
//! * never to an agent lacking a required skill, language or proficiency,
//!   unless an announced relaxation allows the lower proficiency, and
//!   relaxations and moves only once their wait has passed;
//! * FIFO within priority: no contact ahead in the same queue that the
//!   agent could have taken was passed over (except the one the agent had
//!   the previous offer of);
//! * no contact lost or duplicated: the mirror and the router agree on
//!   every contact's state, and the router's own consistency check passes
//!   (which includes "no contact waits while an agent could take it");
//! * every announced queue position is the contact's true position;
//! * the same inputs give the same outputs.
//!
//! Events: arrivals (priorities, languages, extra skills), presence changes,
//! accept, decline, end, abandon, wrap-up done, time passing, agent skill
//! changes, agent removal and return, and queue strategy changes.
#![allow(clippy::unwrap_used)]

mod common;
#[path = "properties/mirror.rs"]
mod mirror;

use std::collections::{BTreeMap, BTreeSet};

use common::*;
use mirror::{MContact, MPhase, Mirror};
use proptest::prelude::*;
use switchboard_bus::{Channel, ConversationId};
use switchboard_router::{
    AgentProfile, ChannelKind, ContactRequest, Input, Language, Output, OverflowAction,
    PredictiveConfig, Presence, Priority, QueueConfig, QueueId, RouterConfig, RouterError,
    SkillRequirement,
};

const AGENTS: usize = 5;

#[derive(Debug, Clone)]
struct AgentSpec {
    a: u8,
    b: u8,
    en: bool,
    de: bool,
    voice: u16,
    chat: u16,
}

#[derive(Debug, Clone)]
enum Op {
    Arrive {
        queue: usize,
        prio: u8,
        lang: usize,
        extra_b: u8,
    },
    Presence {
        agent: usize,
        state: usize,
    },
    Accept(usize),
    Decline(usize),
    End(usize),
    Abandon(usize),
    WrapDone(usize),
    Advance(u64),
    UpdateAgent(usize, AgentSpec),
    RemoveAgent(usize),
    ReplaceQueue(usize, usize),
}

fn agent_spec() -> impl Strategy<Value = AgentSpec> {
    (
        0u8..=5,
        0u8..=5,
        any::<bool>(),
        any::<bool>(),
        0u16..=1,
        0u16..=3,
    )
        .prop_map(|(a, b, en, de, voice, chat)| AgentSpec {
            a,
            b,
            en,
            de,
            voice,
            chat,
        })
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0usize..3, 0u8..3, 0usize..3, prop_oneof![3 => Just(0u8), 1 => 1u8..=4])
            .prop_map(|(queue, prio, lang, extra_b)| Op::Arrive { queue, prio, lang, extra_b }),
        2 => (0..AGENTS, 0usize..4).prop_map(|(agent, state)| Op::Presence { agent, state }),
        3 => any::<usize>().prop_map(Op::Accept),
        1 => any::<usize>().prop_map(Op::Decline),
        2 => any::<usize>().prop_map(Op::End),
        1 => any::<usize>().prop_map(Op::Abandon),
        1 => any::<usize>().prop_map(Op::WrapDone),
        3 => (0u64..45).prop_map(Op::Advance),
        1 => (0..AGENTS, agent_spec()).prop_map(|(i, s)| Op::UpdateAgent(i, s)),
        1 => (0..AGENTS).prop_map(Op::RemoveAgent),
        1 => (0usize..3, 0usize..4).prop_map(|(q, s)| Op::ReplaceQueue(q, s)),
    ]
}

fn strategy(i: usize) -> switchboard_router::Strategy {
    match i % 4 {
        0 => switchboard_router::Strategy::LongestIdle,
        1 => switchboard_router::Strategy::LeastOccupied,
        2 => switchboard_router::Strategy::SkillsWeighted,
        _ => switchboard_router::Strategy::Predictive(PredictiveConfig::default()),
    }
}

const QUEUES: [&str; 3] = ["v1", "v2", "c1"];

fn queue_config(i: usize, strat: usize) -> QueueConfig {
    let mut q = match i {
        0 => voice_queue("v1")
            .require(skill("a"), 3)
            .overflow(
                secs(30),
                OverflowAction::RelaxProficiency { min_proficiency: 1 },
            )
            .overflow(
                secs(90),
                OverflowAction::MoveToQueue {
                    queue: QueueId::new("v2"),
                },
            ),
        1 => voice_queue("v2")
            .require(skill("b"), 2)
            .overflow(secs(200), OverflowAction::Voicemail),
        _ => {
            let mut q = chat_queue("c1")
                .require(skill("a"), 2)
                .overflow(
                    secs(20),
                    OverflowAction::RelaxProficiency { min_proficiency: 1 },
                )
                .overflow(secs(150), OverflowAction::Callback);
            q.language = Some(Language::new("en"));
            q
        }
    };
    q.wrap_up = secs([10, 0, 5][i]);
    q.offer_timeout = secs(15);
    q.strategy = strategy(strat);
    q
}

fn profile(i: usize, s: &AgentSpec) -> AgentProfile {
    let mut p = agent(i as u128).capacity(s.voice, s.chat);
    if s.a > 0 {
        p = p.skill(skill("a"), s.a);
    }
    if s.b > 0 {
        p = p.skill(skill("b"), s.b);
    }
    if s.en {
        p = p.language("en");
    }
    if s.de {
        p = p.language("de");
    }
    p
}

/// Runs a scenario, checking everything; returns all outputs.
fn run(strategies: [usize; 3], agents: &[AgentSpec], ops: &[Op]) -> Vec<Output> {
    let mut h = Harness::new(RouterConfig::default());
    let mut all = Vec::new();
    let mut m = Mirror {
        queue_cfg: (0..3).map(|i| queue_config(i, strategies[i])).collect(),
        agents: BTreeMap::new(),
        removed: BTreeSet::new(),
        contacts: BTreeMap::new(),
        next_order: 0,
    };
    for cfg in &m.queue_cfg {
        h.queue(cfg.clone());
    }
    for (i, s) in agents.iter().enumerate() {
        let p = profile(i, s);
        m.agents.insert(p.id, (p.clone(), Presence::Offline));
        h.add_agent(p);
    }
    let mut contact_n = 0u128;
    for op in ops {
        let now = h.now;
        let pick = |v: Vec<ConversationId>, k: usize| (!v.is_empty()).then(|| v[k % v.len()]);
        let in_phase = |m: &Mirror, f: &dyn Fn(&MPhase) -> bool| -> Vec<ConversationId> {
            m.contacts
                .iter()
                .filter(|(_, c)| f(&c.phase))
                .map(|(id, _)| *id)
                .collect()
        };
        let mut after: Option<ConversationId> = None;
        let input = match op {
            Op::Arrive {
                queue,
                prio,
                lang,
                extra_b,
            } => {
                contact_n += 1;
                let id = contact_id(contact_n);
                let kind = m.queue_cfg[*queue].kind;
                let channel = if kind == ChannelKind::Voice {
                    Channel::Voice
                } else {
                    Channel::WebChat
                };
                let mut r = ContactRequest::new(id, QUEUES[*queue], channel);
                r.priority = Priority(*prio);
                r.language =
                    [None, Some(Language::new("en")), Some(Language::new("de"))][*lang].clone();
                if *extra_b > 0 {
                    r.required_skills = vec![SkillRequirement::new(skill("b"), *extra_b)];
                }
                m.next_order += 1;
                m.contacts.insert(
                    id,
                    MContact {
                        queue: *queue,
                        prio: *prio,
                        order: m.next_order,
                        arrived: now,
                        entered: now,
                        level: 0,
                        last: None,
                        phase: MPhase::Waiting,
                        lang: r.language.clone(),
                        extra_b: *extra_b,
                        kind,
                    },
                );
                Input::ContactArrived(r)
            }
            Op::Presence { agent, state } => {
                let presence = match state {
                    0 => Presence::Available,
                    1 => Presence::Busy,
                    2 => Presence::Away {
                        reason: "break".into(),
                    },
                    _ => Presence::Offline,
                };
                let id = agent_id(*agent as u128);
                if m.removed.contains(&id) {
                    continue;
                }
                m.agents.get_mut(&id).unwrap().1 = presence.clone();
                Input::AgentPresence {
                    agent: id,
                    presence,
                }
            }
            Op::Accept(k) | Op::Decline(k) => {
                let offered = in_phase(&m, &|p| matches!(p, MPhase::Offered(..)));
                let Some(c) = pick(offered, *k) else { continue };
                let MPhase::Offered(offer, _) = m.contacts[&c].phase else {
                    unreachable!()
                };
                if matches!(op, Op::Accept(_)) {
                    Input::OfferAccepted { offer }
                } else {
                    Input::OfferDeclined { offer }
                }
            }
            Op::End(k) => {
                let live = in_phase(&m, &|p| !matches!(p, MPhase::WrapUp(_)));
                let Some(c) = pick(live, *k) else { continue };
                after = Some(c);
                Input::ContactEnded { contact: c }
            }
            Op::Abandon(k) => {
                let queued = in_phase(&m, &|p| matches!(p, MPhase::Waiting | MPhase::Offered(..)));
                let Some(c) = pick(queued, *k) else { continue };
                after = Some(c);
                Input::ContactAbandoned { contact: c }
            }
            Op::WrapDone(k) => {
                let wrapping = in_phase(&m, &|p| matches!(p, MPhase::WrapUp(_)));
                let Some(c) = pick(wrapping, *k) else {
                    continue;
                };
                Input::WrapUpDone { contact: c }
            }
            Op::Advance(s) => {
                h.advance(secs(*s));
                Input::Tick
            }
            Op::UpdateAgent(i, s) => {
                let id = agent_id(*i as u128);
                // Capacity stays as it was; skills and languages change.
                let old = m.agents[&id].0.capacity;
                let mut p = profile(*i, s);
                p.capacity = old;
                let entry = m.agents.get_mut(&id).unwrap();
                entry.0 = p.clone();
                // A removed agent comes back as a new, offline one.
                if m.removed.remove(&id) {
                    entry.1 = Presence::Offline;
                }
                Input::UpsertAgent(p)
            }
            Op::RemoveAgent(i) => {
                let id = agent_id(*i as u128);
                if m.removed.contains(&id) {
                    continue;
                }
                let holds = m
                    .contacts
                    .values()
                    .any(|c| matches!(c.phase, MPhase::Handling(a) | MPhase::WrapUp(a) if a == id));
                if holds {
                    let r = h.try_send(Input::RemoveAgent { agent: id });
                    assert_eq!(r, Err(RouterError::AgentBusy(id)));
                    continue;
                }
                m.agents.get_mut(&id).unwrap().1 = Presence::Offline;
                m.removed.insert(id);
                Input::RemoveAgent { agent: id }
            }
            Op::ReplaceQueue(q, s) => {
                let cfg = queue_config(*q, *s);
                m.queue_cfg[*q] = cfg.clone();
                for c in m.contacts.values_mut() {
                    if c.queue == *q && matches!(c.phase, MPhase::Waiting | MPhase::Offered(..)) {
                        c.level = 0;
                    }
                }
                Input::UpsertQueue(cfg)
            }
        };
        // A waiting contact that ends or is abandoned leaves silently (after
        // any timer outputs, which come first); an offered one leaves with
        // its offer's revocation.
        let was_waiting = after.filter(|c| {
            m.contacts
                .get(c)
                .is_some_and(|c| c.phase == MPhase::Waiting)
        });
        let out = h.send(input);
        for o in &out {
            m.apply(h.now, o);
        }
        if let Some(c) = was_waiting {
            m.contacts.remove(&c);
        }
        m.compare(&h.router);
        all.extend(out);
    }
    all
}

fn scenario() -> impl Strategy<Value = ([usize; 3], Vec<AgentSpec>, Vec<Op>)> {
    (
        [0usize..4, 0usize..4, 0usize..4],
        proptest::collection::vec(agent_spec(), AGENTS),
        proptest::collection::vec(op(), 1..120),
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn invariants_hold_for_any_event_sequence((strategies, agents, ops) in scenario()) {
        run(strategies, &agents, &ops);
    }

    #[test]
    fn same_inputs_same_outputs((strategies, agents, ops) in scenario()) {
        let first = run(strategies, &agents, &ops);
        let second = run(strategies, &agents, &ops);
        prop_assert_eq!(first, second);
    }
}

#[test]
fn busy_day_with_everything_on() {
    // A long fixed sequence as a smoke test of the same checks.
    let agents: Vec<AgentSpec> = (0..AGENTS)
        .map(|i| AgentSpec {
            a: (i as u8 % 5) + 1,
            b: ((i as u8 + 2) % 5) + 1,
            en: i % 2 == 0,
            de: i % 3 == 0,
            voice: 1,
            chat: 2,
        })
        .collect();
    let mut ops = Vec::new();
    for i in 0..400usize {
        ops.push(match i % 9 {
            0 | 4 => Op::Arrive {
                queue: i % 3,
                prio: (i % 3) as u8,
                lang: i % 3,
                extra_b: 0,
            },
            1 => Op::Presence {
                agent: i % AGENTS,
                state: if i % 27 == 1 { 2 } else { 0 },
            },
            2 | 6 => Op::Accept(i),
            3 => Op::Advance(7),
            5 => Op::End(i),
            7 => Op::Decline(i),
            _ => Op::Advance(13),
        });
    }
    let out = run([0, 2, 3], &agents, &ops);
    let assigned = out
        .iter()
        .filter(|o| matches!(o, Output::Assigned { .. }))
        .count();
    assert!(assigned >= 10, "only {assigned} assigned");
}

/// The generated sequences reach every rule: the properties above are not
/// checked on empty runs.
#[test]
fn generated_sequences_exercise_every_rule() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]),
    );
    let mut seen = BTreeMap::new();
    for _ in 0..200 {
        let (strategies, agents, ops) = scenario().new_tree(&mut runner).unwrap().current();
        for o in run(strategies, &agents, &ops) {
            let name = match &o {
                Output::Requeued { reason, .. } => format!("requeued/{reason:?}"),
                Output::OfferRevoked { reason, .. } => format!("revoked/{reason:?}"),
                Output::Offered { explanation, .. } if explanation.repeated_because_alone => {
                    "offered/alone".into()
                }
                Output::Offered { explanation, .. } if explanation.relaxation_level > 0 => {
                    "offered/relaxed".into()
                }
                other => serde_json::to_value(other).unwrap()["type"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            };
            *seen.entry(name).or_insert(0u32) += 1;
        }
    }
    for name in [
        "offered",
        "offered/alone",
        "offered/relaxed",
        "assigned",
        "requeued/Declined",
        "requeued/TimedOut",
        "requeued/AgentUnavailable",
        "revoked/ContactAbandoned",
        "revoked/ContactWithdrawn",
        "relaxed",
        "overflowed",
        "offer_voicemail",
        "offer_callback",
        "wrap_up_started",
        "wrap_up_ended",
        "presence_changed",
        "estimate_changed",
    ] {
        assert!(
            seen.get(name).copied().unwrap_or(0) > 0,
            "{name} never happened: {seen:?}"
        );
    }
}
