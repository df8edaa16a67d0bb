//! # switchboard-knowledge
//!
//! The knowledge base: articles and versions, chunking, embeddings, an
//! embedded vector index (Qdrant for scale) and hybrid retrieval.
//!
//! Not built yet: this crate is reserved by the workspace layout and exports nothing.
