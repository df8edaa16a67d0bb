//! Errors. The router refuses bad input with one of these and leaves its
//! state as it was; it never panics on input.

use switchboard_bus::{AgentId, Channel, ConversationId};

use crate::types::{ChannelKind, OfferId, QueueId};

/// Why an input was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RouterError {
    /// No queue with this id.
    #[error("unknown queue {0}")]
    UnknownQueue(QueueId),
    /// No agent with this id.
    #[error("unknown agent {0}")]
    UnknownAgent(AgentId),
    /// The router has no contact with this id.
    #[error("unknown contact {0}")]
    UnknownContact(ConversationId),
    /// No pending offer with this id (never made, or already answered, expired or revoked).
    #[error("unknown or closed offer {0}")]
    UnknownOffer(OfferId),
    /// A contact with this id is already in the router.
    #[error("contact {0} is already being routed")]
    DuplicateContact(ConversationId),
    /// The contact's channel is not the queue's kind.
    #[error("queue {queue} serves {kind} contacts, not {channel}")]
    ChannelMismatch {
        /// The queue.
        queue: QueueId,
        /// The queue's kind.
        kind: ChannelKind,
        /// The contact's channel.
        channel: Channel,
    },
    /// The queue still has contacts waiting or offered.
    #[error("queue {queue} still has {contacts} contacts waiting or offered")]
    QueueNotEmpty {
        /// The queue.
        queue: QueueId,
        /// How many.
        contacts: usize,
    },
    /// The agent still holds contacts or an offer.
    #[error("agent {0} still has contacts or an offer")]
    AgentBusy(AgentId),
    /// The input does not fit the contact's current state.
    #[error("contact {contact} is {actual}, expected {expected}")]
    WrongContactState {
        /// The contact.
        contact: ConversationId,
        /// The state it would need.
        expected: &'static str,
        /// The state it is in.
        actual: &'static str,
    },
    /// A configuration was refused.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
}
