//! What goes into the router and what comes out.

use std::collections::BTreeSet;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use switchboard_bus::{AgentId, Channel, ConversationId, Skill};

use crate::config::{AgentProfile, QueueConfig, SkillRequirement, StrategyKind, TopicPerformance};
use crate::predictive::ScoreBreakdown;
use crate::time::{Timestamp, serde_secs};
use crate::types::{Language, OfferId, Presence, Priority, QueueId, Tag, Topic};

/// A contact to be routed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactRequest {
    /// The conversation; it names the contact in every output.
    pub contact: ConversationId,
    /// The queue it enters.
    pub queue: QueueId,
    /// The channel it came in on (must match the queue's kind).
    pub channel: Channel,
    /// Priority within the queue, higher first.
    #[serde(default)]
    pub priority: Priority,
    /// Customer tags (`vip`, `churn_risk`, …), used by the predictive strategy.
    #[serde(default)]
    pub tags: BTreeSet<Tag>,
    /// The customer's language: only agents speaking it are offered the contact.
    #[serde(default)]
    pub language: Option<Language>,
    /// Skills needed on top of the queue's (never relaxed by overflow rules).
    #[serde(default)]
    pub required_skills: Vec<SkillRequirement>,
    /// What it is about, for the predictive strategy.
    #[serde(default)]
    pub topic: Option<Topic>,
}

impl ContactRequest {
    /// A plain contact: priority 0, no tags, language, extra skills or topic.
    pub fn new(contact: ConversationId, queue: impl Into<QueueId>, channel: Channel) -> Self {
        ContactRequest {
            contact,
            queue: queue.into(),
            channel,
            priority: Priority::default(),
            tags: BTreeSet::new(),
            language: None,
            required_skills: Vec::new(),
            topic: None,
        }
    }
}

/// Everything the router reacts to. Each comes with the current time in
/// [`Router::handle`](crate::Router::handle).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
// An input is built once and moved once per call; boxing the configuration
// variants would only make callers write `Box::new`.
#[allow(clippy::large_enum_variant)]
pub enum Input {
    /// Adds a queue or replaces its configuration. Waiting contacts stay, and
    /// the overflow rules are re-applied to them from the start.
    UpsertQueue(QueueConfig),
    /// Removes a queue that has no contacts waiting or offered.
    RemoveQueue {
        /// The queue.
        queue: QueueId,
    },
    /// Adds an agent (offline) or replaces their profile, keeping presence and contacts.
    UpsertAgent(AgentProfile),
    /// Updates one agent's measured figures for a topic (`None`: overall figures).
    AgentPerformance {
        /// The agent.
        agent: AgentId,
        /// The topic, or `None` for the overall figures.
        topic: Option<Topic>,
        /// The figures.
        performance: TopicPerformance,
    },
    /// Removes an agent who holds no contacts and no offer.
    RemoveAgent {
        /// The agent.
        agent: AgentId,
    },
    /// An agent's presence changed.
    AgentPresence {
        /// The agent.
        agent: AgentId,
        /// The new presence.
        presence: Presence,
    },
    /// A contact needs an agent.
    ContactArrived(ContactRequest),
    /// The contact is already with this agent, without an offer from the
    /// router: assigned by hand, or being rebuilt after a restart. It counts
    /// against the agent's capacity (even beyond it: this reports a fact, it
    /// is not a decision) until [`Input::ContactEnded`], then wrap-up follows
    /// as for a routed contact.
    ContactAttached {
        /// The contact and the queue it belongs to.
        request: ContactRequest,
        /// The agent who has it.
        agent: AgentId,
    },
    /// The agent accepted the offer.
    OfferAccepted {
        /// The offer.
        offer: OfferId,
    },
    /// The agent declined the offer.
    OfferDeclined {
        /// The offer.
        offer: OfferId,
    },
    /// The conversation with the agent ended; after-contact work starts.
    /// For a contact still waiting or offered it means the contact was
    /// withdrawn (e.g. resolved elsewhere) and it leaves the queue.
    ContactEnded {
        /// The contact.
        contact: ConversationId,
    },
    /// The agent finished after-contact work early.
    WrapUpDone {
        /// The contact whose wrap-up is done.
        contact: ConversationId,
    },
    /// The customer gave up while waiting or while being offered. For an
    /// assigned contact it counts as [`Input::ContactEnded`].
    ContactAbandoned {
        /// The contact.
        contact: ConversationId,
    },
    /// Nothing but the passage of time: fires due timers. The only input
    /// that runs estimate refreshes (see [`RouterConfig::estimate_budget`](crate::RouterConfig::estimate_budget)).
    Tick,
}

/// Why a contact went back into its queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequeueReason {
    /// The agent declined.
    Declined,
    /// The offer expired unanswered.
    TimedOut,
    /// The agent left `Available` (or was removed) before answering.
    AgentUnavailable,
}

/// Why an offer was withdrawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RevokeReason {
    /// The offer expired.
    TimedOut,
    /// The agent left `Available`.
    AgentUnavailable,
    /// The customer left.
    ContactAbandoned,
    /// The contact was withdrawn (ended before being answered).
    ContactWithdrawn,
}

/// Why a contact was turned away at arrival.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectReason {
    /// Outside business hours, and the queue's closed action is to reject.
    Closed,
    /// Closed queues sent it on to each other more than the router follows.
    TooManyMoves,
}

/// Why the router picked this agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Explanation {
    /// The queue's strategy.
    pub strategy: StrategyKind,
    /// The queue the contact is in.
    pub queue: QueueId,
    /// 0 when the agent meets the queue's requirements as configured; `n`
    /// when they qualify only under the `n`-th proficiency relaxation.
    pub relaxation_level: u8,
    /// Lowest proficiency accepted at that level (per required skill, the
    /// lower of its own minimum and the relaxation's).
    pub skills: Vec<SkillMatch>,
    /// How long the agent had been free.
    #[serde(with = "serde_secs")]
    pub agent_idle_for: Duration,
    /// Contacts of this kind the agent held before the offer, and their capacity.
    pub agent_load: (u16, u16),
    /// Agents looked at.
    pub candidates_considered: u32,
    /// The agent who had the previous offer was passed over for this one.
    pub previous_agent_skipped: bool,
    /// The same agent as the previous offer, because no other could take it.
    pub repeated_because_alone: bool,
    /// Predictive score of the chosen agent, term by term.
    pub score: Option<ScoreBreakdown>,
    /// Predictive score of the best other candidate, if any.
    pub runner_up: Option<(AgentId, f64)>,
}

/// A required skill and how the agent meets it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkillMatch {
    /// The skill.
    pub skill: Skill,
    /// The lowest proficiency accepted for this decision.
    pub required: u8,
    /// The agent's proficiency.
    pub agent: u8,
}

/// Something the router decided; the glue carries it out (notify the agent,
/// play an announcement, append a bus event).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Output {
    /// Offer the contact to the agent until `expires_at`.
    Offered {
        /// The offer.
        offer: OfferId,
        /// The contact.
        contact: ConversationId,
        /// The agent.
        agent: AgentId,
        /// The queue.
        queue: QueueId,
        /// When it times out.
        expires_at: Timestamp,
        /// Why this agent.
        explanation: Box<Explanation>,
    },
    /// The offer is no longer valid; the agent's UI should drop it.
    OfferRevoked {
        /// The offer.
        offer: OfferId,
        /// The contact.
        contact: ConversationId,
        /// The agent.
        agent: AgentId,
        /// Why.
        reason: RevokeReason,
    },
    /// The agent has the contact.
    Assigned {
        /// The contact.
        contact: ConversationId,
        /// The agent.
        agent: AgentId,
        /// The queue it was answered from.
        queue: QueueId,
        /// Time from arrival to answer.
        #[serde(with = "serde_secs")]
        waited: Duration,
    },
    /// The contact is back in its queue at its original place.
    Requeued {
        /// The contact.
        contact: ConversationId,
        /// The queue.
        queue: QueueId,
        /// Why.
        reason: RequeueReason,
    },
    /// An overflow rule lowered the proficiency the contact accepts.
    Relaxed {
        /// The contact.
        contact: ConversationId,
        /// The queue.
        queue: QueueId,
        /// The new relaxation level (1 for the first relaxation).
        level: u8,
        /// The proficiency now accepted.
        min_proficiency: u8,
    },
    /// The contact moved to another queue.
    Overflowed {
        /// The contact.
        contact: ConversationId,
        /// From.
        from: QueueId,
        /// To.
        to: QueueId,
    },
    /// The contact left routing: offer voicemail.
    OfferVoicemail {
        /// The contact.
        contact: ConversationId,
        /// The queue it left.
        queue: QueueId,
    },
    /// The contact left routing: offer a callback.
    OfferCallback {
        /// The contact.
        contact: ConversationId,
        /// The queue it left.
        queue: QueueId,
    },
    /// The contact was not queued.
    Rejected {
        /// The contact.
        contact: ConversationId,
        /// The queue.
        queue: QueueId,
        /// Why.
        reason: RejectReason,
    },
    /// A new position or wait estimate to announce to the customer.
    EstimateChanged {
        /// The contact.
        contact: ConversationId,
        /// The queue.
        queue: QueueId,
        /// 1 for the next contact to be served.
        position: u32,
        /// Estimated wait from now; `None` when nobody staffs the queue.
        #[serde(default, with = "opt_secs")]
        ewt: Option<Duration>,
    },
    /// After-contact work started; the slot frees at `until` at the latest.
    WrapUpStarted {
        /// The agent.
        agent: AgentId,
        /// The contact.
        contact: ConversationId,
        /// When it ends by itself.
        until: Timestamp,
    },
    /// After-contact work ended; the contact has left the router.
    WrapUpEnded {
        /// The agent.
        agent: AgentId,
        /// The contact.
        contact: ConversationId,
    },
    /// The router changed an agent's presence (after missed offers).
    PresenceChanged {
        /// The agent.
        agent: AgentId,
        /// The new presence.
        presence: Presence,
    },
}

impl Output {
    /// The contact an output is about, if any.
    pub fn contact(&self) -> Option<ConversationId> {
        match self {
            Output::Offered { contact, .. }
            | Output::OfferRevoked { contact, .. }
            | Output::Assigned { contact, .. }
            | Output::Requeued { contact, .. }
            | Output::Relaxed { contact, .. }
            | Output::Overflowed { contact, .. }
            | Output::OfferVoicemail { contact, .. }
            | Output::OfferCallback { contact, .. }
            | Output::Rejected { contact, .. }
            | Output::EstimateChanged { contact, .. }
            | Output::WrapUpStarted { contact, .. }
            | Output::WrapUpEnded { contact, .. } => Some(*contact),
            Output::PresenceChanged { .. } => None,
        }
    }
}

mod opt_secs {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&d.as_secs_f64()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Option::<f64>::deserialize(d)?
            .map(|secs| Duration::try_from_secs_f64(secs).map_err(serde::de::Error::custom))
            .transpose()
    }
}
