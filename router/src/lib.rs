//! # switchboard-router
//!
//! Skills-based routing (ACD) for Switchboard as a **deterministic state
//! machine**: no I/O, no async runtime, no clock. The glue (the gateway)
//! feeds [`Input`]s together with the current [`Timestamp`] into
//! [`Router::handle`] and carries out the [`Output`]s it gets back; it calls
//! `handle(now, Input::Tick)` when [`Router::next_deadline`] comes. The same
//! calls always give the same outputs, so every rule is tested with exact,
//! simulated time.
//!
//! ## Model
//!
//! * **Queues** ([`QueueConfig`]) serve one channel kind (voice or chat) and
//!   require skills at a minimum proficiency (1–5), optionally a language
//!   and teams. Contacts wait in priority FIFOs: higher [`Priority`] first,
//!   first come first served within a priority. Each queue has a
//!   [`Strategy`], an SLA target, an offer timeout, wrap-up time, business
//!   hours ([`BusinessHours`], a weekly schedule in a fixed UTC offset) and
//!   overflow rules ([`OverflowRule`]): after a wait, relax the proficiency
//!   required, then move to another queue or offer voicemail or a callback.
//! * **Agents** ([`AgentProfile`]) have skills with proficiency, languages,
//!   teams, a [`Capacity`] per channel kind (one call *or* up to N chats —
//!   voice excludes chat) and measured performance per topic. Their
//!   [`Presence`] is available, busy, away (with a reason) or offline; only
//!   available agents get offers.
//! * **Offers** go to one agent at a time. Accept assigns the contact;
//!   decline or timeout puts it back at its original place and offers it
//!   to another agent — never to the same agent twice in a row unless no
//!   other agent can take it. An agent leaving `Available` mid-offer puts
//!   the contact back at its original place too. When a conversation ends,
//!   the agent's slot stays taken for the queue's wrap-up time.
//! * **Strategies**: longest idle, least occupied, skills-weighted (best
//!   proficiency first) and predictive (customer tags × measured agent
//!   performance per topic; formula in [`predictive`]). Every offer carries
//!   an [`Explanation`] of why that agent was chosen.
//! * **Estimates**: position and expected wait for each waiting contact
//!   ([`Output::EstimateChanged`], formula in [`erlang`] and the estimates
//!   module), plus Erlang C forecasts in [`QueueSnapshot`].
//!
//! ## Indexes and cost
//!
//! Every queue keeps, per relaxation level, a priority FIFO of waiting
//! contacts and an ordered set of the agents who can take one more contact
//! now (ordered by the strategy's key: idle-since, occupancy or
//! proficiency). An agent's state change updates only the sets of the
//! queues it serves; a contact arriving looks at the first entries of its
//! queue's agent sets; an agent freeing up looks at the head of each FIFO
//! it serves. Nothing scans all agents or all contacts per decision.
//!
//! ## Errors
//!
//! Input naming something unknown, or a bad configuration, is refused with
//! a [`RouterError`] and changes nothing. The router never panics on input.
//!
//! ## Example
//!
//! ```
//! use switchboard_bus::{AgentId, Channel, ConversationId, Skill};
//! use switchboard_router::*;
//!
//! let mut router = Router::new(RouterConfig::default()).expect("valid config");
//! let billing = Skill::new("billing").expect("valid skill");
//! let t = Timestamp::from_secs(1_000);
//! router
//!     .handle(t, Input::UpsertQueue(QueueConfig::new("billing", ChannelKind::Voice).require(billing.clone(), 2)))
//!     .expect("queue");
//! let agent = AgentId::new();
//! router.handle(t, Input::UpsertAgent(AgentProfile::new(agent).skill(billing, 4))).expect("agent");
//! router.handle(t, Input::AgentPresence { agent, presence: Presence::Available }).expect("presence");
//!
//! let contact = ConversationId::new();
//! let out = router
//!     .handle(t, Input::ContactArrived(ContactRequest::new(contact, "billing", Channel::Voice)))
//!     .expect("arrival");
//! let Some(Output::Offered { offer, agent: to, .. }) = out.first() else { panic!("no offer") };
//! assert_eq!(*to, agent);
//! let out = router.handle(t, Input::OfferAccepted { offer: *offer }).expect("accept");
//! assert!(matches!(out[0], Output::Assigned { .. }));
//! ```

mod audit;
pub mod config;
mod dispatch;
pub mod erlang;
mod error;
mod estimates;
mod flow;
pub mod hours;
mod indexes;
pub mod io;
pub mod predictive;
mod router;
mod state;
pub mod stats;
pub mod time;
pub mod types;
pub mod view;

pub use config::{
    AgentProfile, Capacity, ClosedAction, OverflowAction, OverflowRule, QueueConfig, RouterConfig,
    ServiceLevelTarget, SkillRequirement, Strategy, StrategyKind, TopicPerformance,
};
pub use error::RouterError;
pub use hours::{BusinessHours, OpenInterval};
pub use io::{
    ContactRequest, Explanation, Input, Output, RejectReason, RequeueReason, RevokeReason,
    SkillMatch,
};
pub use predictive::{PredictiveConfig, ScoreBreakdown, ScoreTerm, Term, Weights};
pub use router::Router;
pub use stats::QueueCounters;
pub use time::Timestamp;
pub use types::{ChannelKind, Language, OfferId, Presence, Priority, QueueId, Tag, Team, Topic};
pub use view::{Activity, AgentSnapshot, ContactSnapshot, ContactState, Forecast, QueueSnapshot};
