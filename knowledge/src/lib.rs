//! # switchboard-knowledge
//!
//! The knowledge base: articles and versions, chunking, embeddings, an
//! embedded vector index (Qdrant for scale) and hybrid retrieval.

pub mod chunk;
pub mod embed;
pub mod error;
pub mod lexical;
pub mod vector;

pub use error::{KbError, Result};
pub mod import;
pub mod kb;
pub mod store;
