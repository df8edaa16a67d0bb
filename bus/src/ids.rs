//! Typed identifiers. Every id is a UUID (v7, so ids sort by creation time)
//! wrapped in its own type so a `ConversationId` can never be passed where an
//! `AgentId` is expected.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Error returned when a string is not a valid id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind}: {input:?} is not a UUID")]
pub struct InvalidId {
    /// Which kind of id was being parsed.
    pub kind: &'static str,
    /// The rejected input (truncated to 64 characters).
    pub input: String,
}

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A fresh, time-ordered id.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }
            /// Wraps an existing UUID.
            pub const fn from_uuid(id: Uuid) -> Self {
                Self(id)
            }
            /// The underlying UUID.
            pub const fn as_uuid(&self) -> &Uuid {
                &self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }

        impl FromStr for $name {
            type Err = InvalidId;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self).map_err(|_| InvalidId {
                    kind: $kind,
                    input: s.chars().take(64).collect(),
                })
            }
        }
    };
}

uuid_id!(
    /// Identifies one conversation (one contact's thread on one channel).
    ConversationId,
    "conversation id"
);
uuid_id!(
    /// Identifies one event on the bus; used for idempotent handling.
    EventId,
    "event id"
);
uuid_id!(
    /// Identifies a customer (contact).
    ContactId,
    "contact id"
);
uuid_id!(
    /// Identifies a staff user; agents are users with the agent role.
    AgentId,
    "agent id"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_string_and_json() {
        let id = ConversationId::new();
        let parsed: ConversationId = id.to_string().parse().expect("parse");
        assert_eq!(parsed, id);
        let json = serde_json::to_string(&id).expect("json");
        assert_eq!(json, format!("\"{id}\""));
    }

    #[test]
    fn rejects_garbage_with_kind_in_message() {
        let err = "not-an-id".parse::<AgentId>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid agent id: \"not-an-id\" is not a UUID"
        );
    }

    #[test]
    fn ids_are_time_ordered() {
        let a = EventId::new();
        let b = EventId::new();
        assert!(a < b);
    }
}
