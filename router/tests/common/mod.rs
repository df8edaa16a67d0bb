//! Test harness: a router plus simulated time, with the invariants checked
//! after every call.
#![allow(dead_code, clippy::unwrap_used)]

use std::time::Duration;

use switchboard_bus::{AgentId, Channel, ConversationId, Skill};
use switchboard_router::*;
use uuid::Uuid;

pub fn agent_id(n: u128) -> AgentId {
    AgentId::from_uuid(Uuid::from_u128(0xA000_0000 + n))
}

pub fn contact_id(n: u128) -> ConversationId {
    ConversationId::from_uuid(Uuid::from_u128(0xC000_0000 + n))
}

pub fn skill(s: &str) -> Skill {
    Skill::new(s).expect("valid skill")
}

pub fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

pub struct Harness {
    pub router: Router,
    pub now: Timestamp,
}

impl Default for Harness {
    fn default() -> Self {
        Self::new(RouterConfig::default())
    }
}

impl Harness {
    pub fn new(cfg: RouterConfig) -> Self {
        Harness {
            router: Router::new(cfg).expect("router config"),
            now: Timestamp::from_secs(1_000_000),
        }
    }

    /// A default router with the clock at `now`.
    pub fn at(now: Timestamp) -> Self {
        Harness {
            now,
            ..Harness::default()
        }
    }

    /// Moves the clock forward.
    pub fn advance(&mut self, d: Duration) {
        self.now = self.now + d;
    }

    pub fn try_send(&mut self, input: Input) -> Result<Vec<Output>, RouterError> {
        let r = self.router.handle(self.now, input);
        if let Err(e) = self.router.check_invariants() {
            panic!("invariant broken: {e}");
        }
        r
    }

    pub fn send(&mut self, input: Input) -> Vec<Output> {
        self.try_send(input).expect("input accepted")
    }

    /// Advances the clock and fires due timers.
    pub fn tick(&mut self, d: Duration) -> Vec<Output> {
        self.advance(d);
        self.send(Input::Tick)
    }

    pub fn queue(&mut self, cfg: QueueConfig) -> Vec<Output> {
        self.send(Input::UpsertQueue(cfg))
    }

    /// Adds an agent (offline).
    pub fn add_agent(&mut self, profile: AgentProfile) -> AgentId {
        let id = profile.id;
        self.send(Input::UpsertAgent(profile));
        id
    }

    pub fn presence(&mut self, agent: AgentId, presence: Presence) -> Vec<Output> {
        self.send(Input::AgentPresence { agent, presence })
    }

    /// Adds an agent and makes them available.
    pub fn available(&mut self, profile: AgentProfile) -> AgentId {
        let id = self.add_agent(profile);
        self.presence(id, Presence::Available);
        id
    }

    pub fn arrive(
        &mut self,
        n: u128,
        queue: &str,
        channel: Channel,
    ) -> (ConversationId, Vec<Output>) {
        let c = contact_id(n);
        let out = self.send(Input::ContactArrived(ContactRequest::new(
            c, queue, channel,
        )));
        (c, out)
    }

    pub fn arrive_req(&mut self, req: ContactRequest) -> Vec<Output> {
        self.send(Input::ContactArrived(req))
    }

    pub fn accept(&mut self, offer: OfferId) -> Vec<Output> {
        self.send(Input::OfferAccepted { offer })
    }

    pub fn decline(&mut self, offer: OfferId) -> Vec<Output> {
        self.send(Input::OfferDeclined { offer })
    }

    pub fn end(&mut self, contact: ConversationId) -> Vec<Output> {
        self.send(Input::ContactEnded { contact })
    }

    pub fn waiting(&self, queue: &str) -> Vec<ConversationId> {
        self.router
            .waiting_contacts(&QueueId::new(queue))
            .expect("queue")
            .into_iter()
            .map(|c| c.contact)
            .collect()
    }
}

/// The offers in a batch of outputs: (offer, contact, agent).
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

/// The single offer in a batch.
pub fn only_offer(out: &[Output]) -> (OfferId, ConversationId, AgentId) {
    let o = offers(out);
    assert_eq!(o.len(), 1, "expected one offer in {out:#?}");
    o[0]
}

/// The explanation of the single offer in a batch.
pub fn explanation(out: &[Output]) -> Explanation {
    out.iter()
        .find_map(|o| match o {
            Output::Offered { explanation, .. } => Some((**explanation).clone()),
            _ => None,
        })
        .expect("an offer")
}

/// Outputs other than estimates, for exact comparisons.
pub fn without_estimates(out: Vec<Output>) -> Vec<Output> {
    out.into_iter()
        .filter(|o| !matches!(o, Output::EstimateChanged { .. }))
        .collect()
}

/// A voice queue with defaults.
pub fn voice_queue(id: &str) -> QueueConfig {
    QueueConfig::new(id, ChannelKind::Voice)
}

/// A chat queue with defaults.
pub fn chat_queue(id: &str) -> QueueConfig {
    QueueConfig::new(id, ChannelKind::Chat)
}

/// An agent with default capacity (1 call or 3 chats).
pub fn agent(n: u128) -> AgentProfile {
    AgentProfile::new(agent_id(n))
}
