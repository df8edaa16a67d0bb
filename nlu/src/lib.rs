//! # switchboard-nlu
//!
//! The virtual agent (LLM IVR) of Switchboard: channel-agnostic, text in,
//! text and actions out.
//!
//! Every turn runs the same pipeline ([`Agent::turn`]):
//!
//! 1. **Mask** personal data ([`pii`]): cards (Luhn), IBANs (mod-97), e-mail,
//!    phone. Nothing downstream — retrieval, prompts, transcripts, traces —
//!    sees the raw values.
//! 2. **Understand** ([`understand`]): language, intent, topic, sentiment,
//!    urgency, a request for a human, account-specific actions, manipulation
//!    attempts ([`guard`]). Rule-based and bilingual (English, Chinese).
//! 3. **Retrieve** passages through the [`Retriever`] trait.
//! 4. **Decide** ([`policy`]): answer, clarify, escalate (with a
//!    [`switchboard_bus::HandoffReason`] and a [`switchboard_bus::Skill`]) or
//!    decline. Pure and deterministic.
//! 5. **Respond**: by default by *extraction* ([`extract`]) — the passage
//!    sentences that answer, verbatim, with the citation — which needs no
//!    model and fits a voice turn. In [`GenerationMode::Llm`] a model
//!    ([`llm`]) phrases the answer; each sentence must pass the grounding
//!    check ([`ground`]) before it is streamed, and the agent falls back to
//!    extraction on any failure. Facts never come from the model.
//!
//! Each turn returns a [`TurnOutcome`]: the reply, citations, an optional
//! [`Handoff`] (reason, skill and a [`switchboard_bus::HandoffContext`]) and a
//! serializable [`TurnTrace`] to record on the bus. Per-conversation memory
//! (language, clarification and misunderstanding counters, transcript) is the
//! caller's [`ConversationState`].

pub mod agent;
pub mod eval;
pub mod extract;
pub mod ground;
pub mod guard;
pub mod keyword;
pub mod lang;
pub mod llm;
pub mod pii;
pub mod policy;
pub mod reply;
pub mod retrieve;
pub mod text;
pub mod understand;

pub use agent::{
    Agent, AgentConfig, AnswerSource, ConversationState, GenerationMode, Handoff, PassageTrace,
    TurnOutcome, TurnTrace,
};
pub use lang::Lang;
pub use llm::{Llm, LlmError, LlmLimits, LlmRequest};
pub use policy::{Action, Decision};
pub use retrieve::{Citation, Passage, RetrieveError, Retriever};
