//! The product's knowledge base (switchboard-knowledge) as a [`Retriever`],
//! loaded with the sample articles; shared by the `eval` example and the
//! evaluation test.
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use sqlx::any::AnyPoolOptions;
use switchboard_knowledge::embed::BertEmbedder;
use switchboard_knowledge::import::ImportOptions;
use switchboard_knowledge::kb::{KbConfig, KnowledgeBase, Query};
use switchboard_knowledge::store::ArticleStore;
use switchboard_models::Models;
use switchboard_nlu::Lang;
use switchboard_nlu::retrieve::{Passage, RetrieveError, Retriever};

const SCHEMA: &str = include_str!("../../../gateway/migrations/sqlite/0002_knowledge.sql");

/// The adapter.
pub struct Knowledge {
    kb: KnowledgeBase,
    /// Knowledge article id → file stem, so results compare with questions.toml.
    stems: HashMap<String, String>,
    _dir: tempfile::TempDir,
}

/// Imports `kb_dir` into a fresh SQLite-backed knowledge base (MiniLM from the model cache).
pub async fn open(kb_dir: &Path) -> Result<Knowledge, Box<dyn std::error::Error>> {
    sqlx::any::install_default_drivers();
    let dir = tempfile::tempdir()?;
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("kb.sqlite").display()
    );
    let pool = AnyPoolOptions::new()
        .max_connections(4)
        .connect(&url)
        .await?;
    sqlx::raw_sql(SCHEMA).execute(&pool).await?;
    let embedder = Arc::new(BertEmbedder::minilm(&Models::from_env())?);
    let kb = KnowledgeBase::open(ArticleStore::new(pool), embedder, KbConfig::default()).await?;
    let opts = ImportOptions {
        publish: true,
        tags: Vec::new(),
        lang: None,
    };
    kb.import_dir(kb_dir, "eval", &opts, &mut |_, _, _| {})
        .await?;
    let mut stems = HashMap::new();
    for entry in std::fs::read_dir(kb_dir)? {
        let path = entry?.path();
        let (Some(name), Some(stem)) = (path.file_name(), path.file_stem()) else {
            continue;
        };
        if let Some(article) = kb.store().find_by_source(&name.to_string_lossy()).await? {
            stems.insert(article.id.to_string(), stem.to_string_lossy().into_owned());
        }
    }
    Ok(Knowledge {
        kb,
        stems,
        _dir: dir,
    })
}

#[async_trait]
impl Retriever for Knowledge {
    async fn search(
        &self,
        query: &str,
        _lang: Option<Lang>,
        k: usize,
    ) -> Result<Vec<Passage>, RetrieveError> {
        // No language filter: the agent prefers passages in the customer's language itself.
        let q = Query {
            text: query.to_string(),
            k,
            ..Query::default()
        };
        let hits = self
            .kb
            .search(&q)
            .await
            .map_err(|e| RetrieveError(e.to_string()))?;
        Ok(hits
            .into_iter()
            .map(|h| {
                let id = h.article_id.to_string();
                Passage {
                    article_id: self.stems.get(&id).cloned().unwrap_or(id),
                    version: h.version,
                    chunk_id: h.chunk_id,
                    title: h.title,
                    text: if h.heading.is_empty() {
                        h.text
                    } else {
                        format!("## {}\n{}", h.heading, h.text)
                    },
                    score: h.score,
                    lang: Lang::from_code(&h.lang),
                }
            })
            .collect())
    }
}
