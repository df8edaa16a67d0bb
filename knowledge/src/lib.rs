//! # switchboard-knowledge
//!
//! The knowledge base behind Switchboard's bot and agents: articles with a
//! full version history, and hybrid retrieval of passages from the published
//! ones.
//!
//! ## Pieces
//!
//! * [`store`]: articles and immutable versions in SQL (SQLite or PostgreSQL
//!   through sqlx's `Any` driver): draft / published / archived, publish a
//!   chosen version, roll back (a new version restoring an old one), diffs.
//! * [`chunk`]: Markdown → passages that never cross a heading and end at
//!   sentence boundaries (Latin and Chinese punctuation), each with the
//!   SHA-256 of the text that gets embedded.
//! * [`embed`]: the [`embed::Embedder`] trait; all-MiniLM-L6-v2 on candle
//!   (batched, mean pooling, L2 normalised); a content-hash cache persisted
//!   next to the index so an unchanged passage is never embedded twice.
//! * [`vector`]: the [`vector::VectorIndex`] trait; [`vector::FlatIndex`], the
//!   embedded default — an exact scan over int8 copies of the vectors with f32
//!   re-scoring, on all cores, with an append-only log on disk; and
//!   `qdrant::QdrantIndex` (feature `qdrant`) for scale-out.
//! * [`lexical`]: BM25 on tantivy with a tokenizer that stems English and
//!   indexes Chinese as character bigrams.
//! * [`kb`]: the [`kb::KnowledgeBase`] facade tying them together: lifecycle
//!   operations re-index only the passages whose content changed, search
//!   fuses BM25 and vector rankings with reciprocal rank fusion, filters by
//!   language and tags, and only ever sees live versions of published articles.
//! * [`import`]: a folder (or uploaded files) of Markdown, HTML and text.
//!
//! ## Languages
//!
//! Chinese and English both go through the lexical side (stemmed words,
//! character bigrams). The vector side depends on the model:
//!
//! * all-MiniLM-L6-v2 ([`embed::BertEmbedder::minilm`], the default) is
//!   English-only: Chinese questions find Chinese passages (lexical) and
//!   English ones only through shared tokens (numbers, names such as "PayPal").
//! * multilingual-e5-small ([`embed::BertEmbedder::e5_small`], converted by
//!   `switchboard-models`) puts both languages in one space: a Chinese
//!   question finds the English article on its topic and vice versa. Fusion
//!   then stops counting the lexical side's silence against a passage in the
//!   other language (it could never have matched), see [`kb::KnowledgeBase::search`].
//!   It is twice as deep as MiniLM, so query embedding costs about twice as much.
//!
//! ## Consistency
//!
//! The SQL store is the source of truth; the indexes are derived. On open,
//! [`kb::KnowledgeBase::sync_index`] reconciles them with the store (adding and
//! removing only the difference), so a lost, partial or stale index — or
//! articles published by another node while this one was down — is repaired
//! at start-up, with vectors from the cache.

pub mod chunk;
pub mod embed;
pub mod error;
pub mod import;
pub mod kb;
pub mod lexical;
#[cfg(feature = "qdrant")]
pub mod qdrant;
pub mod store;
pub mod vector;

pub use error::{KbError, Result};
pub use kb::{IndexStats, KbConfig, KnowledgeBase, Passage, Query};
pub use store::{Article, ArticleId, ArticleStore, Draft, Status};
