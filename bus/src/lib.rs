//! # switchboard-bus
//!
//! The conversation bus and the domain it carries.
//!
//! Every inbound contact becomes a [`Conversation`]; every participant
//! appends [`Event`]s to it. Events travel in [`Envelope`]s (id, conversation,
//! per-conversation `seq`, time) over a [`Bus`]: [`MemoryBus`] in one process,
//! [`NatsBus`] (JetStream) across nodes. State is never stored on its own: it
//! is folded from events with [`Conversation::apply`].
//!
//! This crate does no I/O other than the bus itself.

mod bus;
pub mod conformance;
mod event;
mod ids;
mod memory;
mod model;
#[cfg(feature = "nats")]
mod nats;

pub use bus::{Bus, BusError, Cursor, Delivery, StartAt, Subscription};
pub use event::{
    ApplyError, Conversation, ConversationStatus, Envelope, Event, HandoffContext, PendingOffer,
    TranscriptLine,
};
pub use ids::{AgentId, ContactId, ConversationId, EventId, InvalidId};
pub use memory::{DEFAULT_RETENTION, MemoryBus};
pub use model::{
    Attachment, Channel, Contact, Disposition, HandoffReason, InvalidPhoneNumber, InvalidSkill,
    Participant, PhoneNumber, Skill, UnknownValue,
};
#[cfg(feature = "nats")]
pub use nats::{NatsBus, NatsConfig};
