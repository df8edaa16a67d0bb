//! Error types of the knowledge base.

/// Everything that can fail in the knowledge base.
#[derive(Debug, thiserror::Error)]
pub enum KbError {
    /// No article (or version) with that id.
    #[error("not found: {0}")]
    NotFound(String),
    /// The request is invalid (empty title, unknown status, bad version …).
    #[error("invalid: {0}")]
    Invalid(String),
    /// A concurrent edit won (optimistic concurrency on the article version).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The SQL store failed.
    #[error("storage: {0}")]
    Storage(String),
    /// The embedding model failed to load or run.
    #[error("embedding: {0}")]
    Embedding(String),
    /// The vector or lexical index failed.
    #[error("index: {0}")]
    Index(String),
    /// File system failure (index directory, import).
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}

impl From<sqlx::Error> for KbError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::RowNotFound => KbError::NotFound("row".into()),
            sqlx::Error::Database(d) if d.is_unique_violation() => {
                KbError::Conflict(d.message().to_string())
            }
            _ => KbError::Storage(e.to_string()),
        }
    }
}

impl From<tantivy::TantivyError> for KbError {
    fn from(e: tantivy::TantivyError) -> Self {
        KbError::Index(format!("lexical: {e}"))
    }
}

impl From<candle_core::Error> for KbError {
    fn from(e: candle_core::Error) -> Self {
        KbError::Embedding(e.to_string())
    }
}

/// Result alias.
pub type Result<T, E = KbError> = std::result::Result<T, E>;
