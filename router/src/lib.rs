//! # switchboard-router
//!
//! Skills-based routing (ACD): queues, skills, presence, capacity and
//! strategies as a deterministic state machine fed events and time.
//!
//! Not built yet: this crate is reserved by the workspace layout and exports
//! nothing. Today agents pick conversations from the inbox themselves.
