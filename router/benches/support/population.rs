//! The benchmark population: 10,000 agents, 200 queues, 100,000 waiting
//! contacts, and the decisions measured on it. Shared by the criterion
//! bench (`benches/decision.rs`) and the latency example
//! (`examples/decision_latency.rs`).
//!
//! * 180 "busy" queues (90 voice, 90 chat) hold the 100,000 waiting
//!   contacts; every one of their 9,000 agents who qualifies for one of
//!   them is at capacity (one call or three chats).
//! * 20 "quiet" queues (10 voice, 10 chat) have no backlog; their 1,000
//!   agents are idle, so a contact arriving there is matched at once.
//!
//! Every agent has 5 of its pool's skills at proficiency 1–5; a queue
//! requires one skill at proficiency 2 or better (1 after an hour's wait),
//! so each queue has about 200 agents and each agent about 4 queues.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use switchboard_bus::{AgentId, Channel, ConversationId, Skill};
use switchboard_router::{
    AgentProfile, ChannelKind, ContactRequest, Input, OfferId, Output, OverflowAction,
    PredictiveConfig, Presence, QueueConfig, QueueId, Router, RouterConfig, Strategy, Timestamp,
    Topic, TopicPerformance,
};
use uuid::Uuid;

use crate::rng::Rng;

pub const AGENTS: usize = 10_000;
pub const QUEUES: usize = 200;
pub const WAITING: usize = 100_000;
const QUIET_QUEUES: usize = 20;
const QUIET_AGENTS: usize = 1_000;
const SKILLS_PER_AGENT: usize = 5;
const TOPICS: usize = 8;

pub fn strategies() -> Vec<(&'static str, Strategy)> {
    vec![
        ("longest_idle", Strategy::LongestIdle),
        ("least_occupied", Strategy::LeastOccupied),
        ("skills_weighted", Strategy::SkillsWeighted),
        (
            "predictive",
            Strategy::Predictive(PredictiveConfig::default()),
        ),
    ]
}

fn queue_id(i: usize) -> QueueId {
    QueueId::new(format!("q{i}"))
}

fn kind(i: usize) -> ChannelKind {
    if i.is_multiple_of(2) {
        ChannelKind::Voice
    } else {
        ChannelKind::Chat
    }
}

fn channel(k: ChannelKind) -> Channel {
    match k {
        ChannelKind::Voice => Channel::Voice,
        ChannelKind::Chat => Channel::WebChat,
    }
}

fn skill(i: usize) -> Skill {
    Skill::new(format!("s{i}")).expect("valid skill")
}

fn is_quiet(queue: usize) -> bool {
    queue >= QUEUES - QUIET_QUEUES
}

/// A built population and the bookkeeping to keep it steady.
#[derive(Debug)]
pub struct Population {
    pub router: Router,
    pub now: Timestamp,
    rng: Rng,
    next_contact: u128,
    /// (agent, contact) pairs in conversation on busy queues.
    busy: Vec<(AgentId, ConversationId)>,
}

impl Population {
    pub fn build(strategy: &Strategy, seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let mut router = Router::new(RouterConfig {
            away_after_missed_offers: None,
            ..RouterConfig::default()
        })
        .expect("config");
        let now = Timestamp::from_secs(1_700_000_000);
        for q in 0..QUEUES {
            let mut cfg = QueueConfig::new(queue_id(q), kind(q))
                .require(skill(q), 2)
                .strategy(strategy.clone())
                .overflow(
                    Duration::from_secs(3600),
                    OverflowAction::RelaxProficiency { min_proficiency: 1 },
                );
            cfg.default_topic = Some(Topic::new(format!("t{}", q % TOPICS)));
            router.handle(now, Input::UpsertQueue(cfg)).expect("queue");
        }
        let busy_queues = QUEUES - QUIET_QUEUES;
        for a in 0..AGENTS {
            let quiet = a >= AGENTS - QUIET_AGENTS;
            let mut p = AgentProfile::new(agent_id(a)).capacity(1, 3).language("en");
            for _ in 0..SKILLS_PER_AGENT {
                let q = if quiet {
                    busy_queues + rng.below(QUIET_QUEUES)
                } else {
                    rng.below(busy_queues)
                };
                p = p.skill(skill(q), 1 + rng.below(5) as u8);
            }
            for t in 0..TOPICS {
                p.performance.insert(
                    Topic::new(format!("t{t}")),
                    TopicPerformance {
                        resolution_rate: 0.5 + 0.5 * rng.unit(),
                        csat: 3.0 + 2.0 * rng.unit(),
                        handle_time: Duration::from_secs(120 + rng.below(480) as u64),
                        samples: rng.below(300) as u32,
                    },
                );
            }
            let id = p.id;
            router.handle(now, Input::UpsertAgent(p)).expect("agent");
            router
                .handle(
                    now,
                    Input::AgentPresence {
                        agent: id,
                        presence: Presence::Available,
                    },
                )
                .expect("presence");
        }
        let mut pop = Population {
            router,
            now,
            rng,
            next_contact: 0,
            busy: Vec::new(),
        };
        // Fill the busy agents, then the backlog.
        while pop
            .router
            .queue_snapshots()
            .iter()
            .map(|q| q.waiting)
            .sum::<usize>()
            < WAITING
        {
            for _ in 0..1000 {
                let q = pop.rng.below(busy_queues);
                let out = pop.arrive(q);
                pop.accept_all(out);
            }
        }
        pop.tick();
        pop
    }

    fn arrive(&mut self, q: usize) -> Vec<Output> {
        self.next_contact += 1;
        let c = contact_id(self.next_contact);
        let mut req = ContactRequest::new(c, queue_id(q), channel(kind(q)));
        if self.rng.below(10) == 0 {
            req.tags.insert("vip".into());
        }
        self.router
            .handle(self.now, Input::ContactArrived(req))
            .expect("arrival")
    }

    /// Accepts every offer in `out` (and in what accepting produces),
    /// recording the new assignments.
    fn accept_all(&mut self, out: Vec<Output>) {
        let mut pending: Vec<(OfferId, ConversationId, AgentId)> = offers(&out);
        while let Some((offer, contact, agent)) = pending.pop() {
            let out = self
                .router
                .handle(self.now, Input::OfferAccepted { offer })
                .expect("accept");
            self.busy.push((agent, contact));
            pending.extend(offers(&out));
        }
    }

    /// Whether a timer is due.
    pub fn due(&self) -> bool {
        self.router.next_deadline().is_some_and(|t| t <= self.now)
    }

    /// Fires due timers (estimate refreshes) with `Tick` calls until none
    /// is due, as the glue does between inputs.
    pub fn tick(&mut self) {
        while self.due() {
            self.tick_once();
        }
    }

    /// One `Tick` call.
    pub fn tick_once(&mut self) {
        self.router.handle(self.now, Input::Tick).expect("tick");
    }

    /// Moves the clock on by one millisecond.
    pub fn step(&mut self) {
        self.now = self.now + Duration::from_millis(1);
    }

    /// Decision "agent becomes free → dispatch": ends a random busy
    /// agent's contact (no wrap-up), which offers them the next waiting
    /// contact. Returns the closure to time and the restore step.
    pub fn prepare_free_agent(&mut self) -> (usize, Input) {
        let i = self.rng.below(self.busy.len());
        let (_, contact) = self.busy[i];
        (i, Input::ContactEnded { contact })
    }

    /// Restores the population after a "free agent" decision: accepts the
    /// offer and tops the backlog up with one arrival on a busy queue.
    pub fn restore_free_agent(&mut self, i: usize, out: Vec<Output>) {
        self.busy.swap_remove(i);
        self.accept_all(out);
        let q = self.rng.below(QUEUES - QUIET_QUEUES);
        let out = self.arrive(q);
        self.accept_all(out);
    }

    /// Decision "contact arrives → dispatch" on a quiet queue with idle agents.
    pub fn prepare_arrival(&mut self) -> Input {
        let q = QUEUES - QUIET_QUEUES + self.rng.below(QUIET_QUEUES);
        self.next_contact += 1;
        let mut req =
            ContactRequest::new(contact_id(self.next_contact), queue_id(q), channel(kind(q)));
        if self.rng.below(10) == 0 {
            req.tags.insert("vip".into());
        }
        req.topic = Some(Topic::new(format!("t{}", self.rng.below(TOPICS))));
        Input::ContactArrived(req)
    }

    /// Restores the quiet pool: accepts and ends the contact at once.
    pub fn restore_arrival(&mut self, out: Vec<Output>) {
        for (offer, contact, _) in offers(&out) {
            self.router
                .handle(self.now, Input::OfferAccepted { offer })
                .expect("accept");
            self.router
                .handle(self.now, Input::ContactEnded { contact })
                .expect("end");
        }
    }

    /// Decision "contact arrives, nobody free → enqueue" on a busy queue.
    pub fn prepare_enqueue(&mut self) -> Input {
        let q = self.rng.below(QUEUES - QUIET_QUEUES);
        self.next_contact += 1;
        Input::ContactArrived(ContactRequest::new(
            contact_id(self.next_contact),
            queue_id(q),
            channel(kind(q)),
        ))
    }

    /// Keeps the backlog at its size after an enqueue: withdraws the contact.
    pub fn restore_enqueue(&mut self, input: &Input) {
        if let Input::ContactArrived(req) = input {
            self.router
                .handle(
                    self.now,
                    Input::ContactEnded {
                        contact: req.contact,
                    },
                )
                .expect("withdraw");
        }
    }

    pub fn handle(&mut self, input: Input) -> Vec<Output> {
        self.router.handle(self.now, input).expect("decision")
    }

    pub fn waiting(&self) -> usize {
        self.router
            .queue_snapshots()
            .iter()
            .map(|q| q.waiting)
            .sum()
    }
}

pub fn agent_id(i: usize) -> AgentId {
    AgentId::from_uuid(Uuid::from_u128(0xA_0000_0000 + i as u128))
}

pub fn contact_id(i: u128) -> ConversationId {
    ConversationId::from_uuid(Uuid::from_u128(0xC_0000_0000 + i))
}

pub fn offers(out: &[Output]) -> Vec<(OfferId, ConversationId, AgentId)> {
    out.iter()
        .filter_map(|o| match o {
            Output::Offered {
                offer,
                contact,
                agent,
                ..
            } => Some((*offer, *contact, *agent)),
            _ => None,
        })
        .collect()
}
