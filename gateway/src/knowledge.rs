//! Knowledge-base glue: opens the [`switchboard_knowledge::KnowledgeBase`]
//! on the gateway's database and data directory, imports folders for the
//! `switchboard kb import` command, and lets the virtual agent search it.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use switchboard_knowledge::embed::{BertEmbedder, Embedder, HashEmbedder};
use switchboard_knowledge::import::{ImportOptions, ImportReport};
use switchboard_knowledge::{ArticleStore, KbConfig, KbError, KnowledgeBase, Query};
use switchboard_models::Models;
use switchboard_nlu::{Lang, Passage, RetrieveError, Retriever};

use crate::config::{Config, EmbedderKind};
use crate::db::Db;

/// Dimensions of the model-free embedder (the size of MiniLM's vectors).
const HASH_DIM: usize = 384;

/// Why the knowledge base could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum KnowledgeError {
    /// The embedding model is missing or broken.
    #[error(
        "the knowledge base's embedding model could not be loaded: {0}. Run scripts/setup (or `cargo run -p switchboard-models --release -- fetch`) to prepare it, or start with --embedder hash"
    )]
    Model(String),
    /// Storage or index failure.
    #[error("knowledge base: {0}")]
    Kb(#[from] KbError),
}

/// The model cache configured for this node.
pub fn models(config: &Config) -> Models {
    match &config.models_dir {
        Some(dir) => Models::new(dir.clone()),
        None => Models::from_env(),
    }
}

/// Opens the knowledge base (its indexes live in `<data_dir>/knowledge`) and
/// brings the indexes in line with the stored articles.
pub async fn open(config: &Config, db: &Db) -> Result<Arc<KnowledgeBase>, KnowledgeError> {
    let embedder: Arc<dyn Embedder> = match config.embedder {
        EmbedderKind::Hash => Arc::new(HashEmbedder::new(HASH_DIM)),
        kind @ (EmbedderKind::Minilm | EmbedderKind::E5) => {
            let models = models(config);
            let loaded = tokio::task::spawn_blocking(move || match kind {
                EmbedderKind::E5 => BertEmbedder::e5_small(&models),
                _ => BertEmbedder::minilm(&models),
            })
            .await
            .map_err(|e| KnowledgeError::Model(e.to_string()))?
            .map_err(|e| KnowledgeError::Model(e.to_string()))?;
            Arc::new(loaded)
        }
    };
    let cfg = KbConfig {
        index_dir: Some(config.data_dir.join("knowledge")),
        ..KbConfig::default()
    };
    let kb = KnowledgeBase::open(ArticleStore::new(db.pool().clone()), embedder, cfg).await?;
    let stats = kb.sync_index().await?;
    tracing::info!(?stats, "knowledge base ready");
    Ok(Arc::new(kb))
}

/// Imports a folder, drawing a progress bar on the terminal.
pub async fn import_dir(
    kb: &KnowledgeBase,
    dir: &Path,
    author: &str,
    publish: bool,
) -> Result<ImportSummary, KnowledgeError> {
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} {wide_msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let opts = ImportOptions {
        publish,
        ..ImportOptions::default()
    };
    let progress_bar = bar.clone();
    let mut progress = move |done: usize, total: usize, path: &Path| {
        progress_bar.set_length(total as u64);
        progress_bar.set_position(done as u64);
        progress_bar.set_message(path.display().to_string());
    };
    let report = kb.import_dir(dir, author, &opts, &mut progress).await?;
    bar.finish_and_clear();
    Ok(ImportSummary { report, publish })
}

/// What an import did, printable for humans.
#[derive(Debug)]
pub struct ImportSummary {
    /// The import's report.
    pub report: ImportReport,
    /// Whether the articles were published.
    pub publish: bool,
}

impl std::fmt::Display for ImportSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let r = &self.report;
        writeln!(
            f,
            "imported: {} new, {} updated, {} unchanged, {} skipped ({})",
            r.created.len(),
            r.updated.len(),
            r.unchanged,
            r.skipped.len(),
            if self.publish {
                "published"
            } else {
                "kept as drafts; publish them in /kb"
            }
        )?;
        for (file, why) in &r.skipped {
            writeln!(f, "  skipped {file}: {why}")?;
        }
        Ok(())
    }
}

/// The knowledge base as the virtual agent's [`Retriever`]. It searches all
/// languages: a Chinese question may be answered by an English article.
#[derive(Debug, Clone)]
pub struct KbRetriever(pub Arc<KnowledgeBase>);

#[async_trait]
impl Retriever for KbRetriever {
    async fn search(
        &self,
        query: &str,
        _lang: Option<Lang>,
        k: usize,
    ) -> Result<Vec<Passage>, RetrieveError> {
        let q = Query {
            text: query.to_string(),
            lang: None,
            tags: Vec::new(),
            k,
        };
        let hits = self
            .0
            .search(&q)
            .await
            .map_err(|e| RetrieveError(e.to_string()))?;
        Ok(hits
            .into_iter()
            .map(|p| Passage {
                article_id: p.article_id.to_string(),
                version: p.version,
                chunk_id: p.chunk_id,
                title: p.title,
                // The section heading helps the agent judge what a passage is about.
                text: if p.heading.is_empty() {
                    p.text
                } else {
                    format!("## {}\n{}", p.heading, p.text)
                },
                score: p.score,
                lang: match p.lang.as_str() {
                    "zh" => Some(Lang::Zh),
                    "en" => Some(Lang::En),
                    _ => None,
                },
            })
            .collect())
    }
}
