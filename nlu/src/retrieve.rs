//! The retrieval seam: the agent asks a [`Retriever`] for passages and never
//! knows which index answers (the knowledge crate's hybrid index in the
//! product, a keyword index in tests).

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::lang::Lang;

/// A chunk of a knowledge article returned by retrieval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Passage {
    /// The article's id.
    pub article_id: String,
    /// The article version the chunk comes from.
    pub version: i64,
    /// The chunk's id within the index.
    pub chunk_id: String,
    /// The article's title.
    pub title: String,
    /// The chunk's text.
    pub text: String,
    /// The retriever's relevance score (higher is better; scale is backend-specific).
    pub score: f32,
    /// The chunk's language, when known.
    pub lang: Option<Lang>,
}

/// A reference to a passage, as cited in replies and recorded in traces.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Citation {
    /// The article's id.
    pub article_id: String,
    /// The article version.
    pub version: i64,
    /// The chunk's id.
    pub chunk_id: String,
    /// The article's title.
    pub title: String,
}

impl From<&Passage> for Citation {
    fn from(p: &Passage) -> Self {
        Self {
            article_id: p.article_id.clone(),
            version: p.version,
            chunk_id: p.chunk_id.clone(),
            title: p.title.clone(),
        }
    }
}

/// Why retrieval failed.
#[derive(Debug, thiserror::Error)]
#[error("retrieval failed: {0}")]
pub struct RetrieveError(pub String);

/// Searches the knowledge base.
#[async_trait]
pub trait Retriever: Send + Sync {
    /// The `k` best passages for `query`, best first. `lang` is the customer's
    /// language: a retriever may prefer passages in it, but should still return
    /// others when nothing in that language matches.
    async fn search(
        &self,
        query: &str,
        lang: Option<Lang>,
        k: usize,
    ) -> Result<Vec<Passage>, RetrieveError>;
}
