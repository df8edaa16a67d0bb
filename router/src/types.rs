//! Small value types shared by configuration, inputs and outputs.

use std::fmt;

use serde::{Deserialize, Serialize};
use switchboard_bus::Channel;

macro_rules! name_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Wraps a name; it is trimmed and lowercased so `VIP` and `vip` are one value.
            pub fn new(name: impl AsRef<str>) -> Self {
                Self(name.as_ref().trim().to_ascii_lowercase())
            }
            /// The normalised name.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl From<&str> for $name {
            fn from(value: &str) -> Self {
                Self::new(value)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

name_type!(
    /// Names a queue, e.g. `billing-en`. Chosen by whoever configures Switchboard.
    QueueId
);
name_type!(
    /// A customer tag such as `vip` or `churn_risk`, as set on the conversation.
    Tag
);
name_type!(
    /// What a contact is about (e.g. `refund`), usually the intent the virtual agent detected.
    Topic
);
name_type!(
    /// A language as a lowercase tag, e.g. `en`, `de`, `zh`.
    Language
);
name_type!(
    /// A team of agents, e.g. `tier2`.
    Team
);

/// Identifies one offer of one contact to one agent. Offers are numbered
/// 1, 2, 3, … by each router, so ids are deterministic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OfferId(pub u64);

impl fmt::Display for OfferId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "offer-{}", self.0)
    }
}

/// A contact's priority within its queue: **higher is more urgent**.
/// Contacts of equal priority are served first come, first served.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Priority(pub u8);

/// The kind of capacity a channel uses. Voice is a call; every messaging
/// channel (web chat, WhatsApp, WeChat, SMS, Telegram) is a chat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelKind {
    /// A phone call: exclusive, one at a time.
    Voice,
    /// A messaging conversation: several at a time, up to the agent's chat capacity.
    Chat,
}

impl ChannelKind {
    /// The kind a bus channel uses.
    pub fn of(channel: Channel) -> Self {
        match channel {
            Channel::Voice => ChannelKind::Voice,
            Channel::WebChat
            | Channel::WhatsApp
            | Channel::WeChat
            | Channel::Sms
            | Channel::Telegram => ChannelKind::Chat,
        }
    }
}

impl fmt::Display for ChannelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ChannelKind::Voice => "voice",
            ChannelKind::Chat => "chat",
        })
    }
}

/// An agent's presence, as the agent (or a supervisor) sets it.
///
/// Only [`Presence::Available`] agents receive offers. Leaving `Available`
/// while an offer is pending withdraws it and puts the contact back at its
/// original place in the queue. Contacts already assigned stay with the
/// agent until they end, whatever the presence.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Presence {
    /// Ready for routed contacts, up to capacity.
    Available,
    /// Logged in but not taking routed contacts (e.g. doing outbound work).
    Busy,
    /// Away from the desk, with a reason such as `lunch` or `missed offers`.
    Away {
        /// Why, as shown to supervisors.
        reason: String,
    },
    /// Logged out.
    Offline,
}

impl Presence {
    /// Whether the router may offer contacts to an agent in this state.
    pub fn is_routable(&self) -> bool {
        matches!(self, Presence::Available)
    }
}
