//! # switchboard-models
//!
//! The manifest of the local model files (Whisper, embeddings, LLM, TTS
//! voice) and the setup that fetches them from package registries into a
//! git-ignored cache.
//!
//! Not built yet: this crate is reserved by the workspace layout and exports nothing.
