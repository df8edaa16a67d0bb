//! # switchboard-nlu
//!
//! The virtual agent (LLM IVR): understanding, retrieval-grounded answers with
//! citations, escalation rules and guardrails.
//!
//! Not built yet: this crate is reserved by the workspace layout and exports
//! nothing. Until it lands, every conversation waits for a human agent.
