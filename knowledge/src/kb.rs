//! The [`KnowledgeBase`] facade: the article store plus the search indexes,
//! kept in step.
//!
//! Only the live version of published articles is ever indexed, so drafts,
//! unpublished edits and archived articles can never be returned. Each
//! passage has a key derived from its article, content hash, language and
//! tags; publishing diffs the article's new keys against its indexed ones and
//! touches only the difference, and vectors come from the content-hash cache,
//! so an edit to one paragraph embeds one passage.
//!
//! On open, the indexes are reconciled with the store ([`KnowledgeBase::sync_index`]):
//! a missing, partial or stale index is repaired, embedding only what the
//! cache does not hold.
//!
//! Search is hybrid: BM25 (English stemming, Chinese bigrams) and vector
//! similarity are each asked for their best candidates, fused by reciprocal
//! rank fusion, and mapped back to passages with their article, version and text.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};

use crate::chunk::{Chunk, ChunkerConfig, ContentHash, chunk_markdown};
use crate::embed::{CachedEmbedder, Embedder};
use crate::error::{KbError, Result};
use crate::lexical::{Filter, LexDoc, LexicalIndex};
use crate::store::{
    Article, ArticleFilter, ArticleId, ArticleStore, Diff, Draft, Version, VersionInfo,
};
use crate::vector::{FlatIndex, VectorEntry, VectorIndex};

/// Tuning of the knowledge base.
#[derive(Debug, Clone)]
pub struct KbConfig {
    /// Directory of the on-disk indexes and embedding cache; `None` keeps everything in memory.
    pub index_dir: Option<PathBuf>,
    /// Chunk sizes.
    pub chunker: ChunkerConfig,
    /// Candidates taken from each retriever before fusion (at least 4 × k).
    pub candidates: usize,
    /// The `k` constant of reciprocal rank fusion.
    pub rrf_k: f32,
    /// Vector candidates at or below this cosine similarity are dropped before
    /// fusion (nearest neighbours always exist, relevant or not).
    pub min_vector_score: f32,
}

impl Default for KbConfig {
    fn default() -> Self {
        Self {
            index_dir: None,
            chunker: ChunkerConfig::default(),
            candidates: 40,
            rrf_k: 60.0,
            min_vector_score: 0.0,
        }
    }
}

/// A search request.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Query {
    /// The question.
    pub text: String,
    /// Only passages in this language (`None`: all languages).
    #[serde(default)]
    pub lang: Option<String>,
    /// Only passages of articles carrying all these tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Number of passages wanted (1–50; 0 means 5).
    #[serde(default)]
    pub k: usize,
}

/// A retrieved passage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Passage {
    /// Article.
    pub article_id: ArticleId,
    /// Live version the passage comes from.
    pub version: i64,
    /// Stable id of the passage (same content, same id across versions).
    pub chunk_id: String,
    /// Article title.
    pub title: String,
    /// Heading path inside the article.
    pub heading: String,
    /// Passage text.
    pub text: String,
    /// Language.
    pub lang: String,
    /// Fused score (reciprocal rank fusion; higher is better).
    pub score: f32,
    /// Rank in the lexical list (1-based), if it was there.
    pub lexical_rank: Option<u32>,
    /// Rank in the vector list (1-based), if it was there.
    pub vector_rank: Option<u32>,
}

/// What an index update did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexStats {
    /// Passages added to the indexes.
    pub added: usize,
    /// Passages removed.
    pub removed: usize,
    /// Passages left untouched.
    pub kept: usize,
    /// Passages the model had to embed (cache misses).
    pub embedded: usize,
}

#[derive(Debug, Clone)]
struct ChunkMeta {
    key: u64,
    article_id: ArticleId,
    version: i64,
    title: String,
    heading: String,
    text: String,
    lang: String,
    tags: Vec<String>,
}

impl ChunkMeta {
    fn chunk_id(&self) -> String {
        format!("{}:{:016x}", self.article_id, self.key)
    }
    fn embed_text(&self) -> String {
        Chunk::embed_text(&self.title, &self.heading, &self.text)
    }
    fn lex_doc(&self) -> LexDoc {
        LexDoc {
            key: self.key,
            text: format!("{}\n{}\n{}", self.title, self.heading, self.text),
            lang: self.lang.clone(),
            tags: self.tags.clone(),
        }
    }
}

#[derive(Debug, Default)]
struct Catalog {
    chunks: HashMap<u64, Arc<ChunkMeta>>,
    by_article: HashMap<ArticleId, Vec<u64>>,
}

impl Catalog {
    fn replace(&mut self, article: ArticleId, metas: Vec<ChunkMeta>) {
        if let Some(old) = self.by_article.remove(&article) {
            for k in old {
                self.chunks.remove(&k);
            }
        }
        if metas.is_empty() {
            return;
        }
        let keys = metas.iter().map(|m| m.key).collect();
        for m in metas {
            self.chunks.insert(m.key, Arc::new(m));
        }
        self.by_article.insert(article, keys);
    }
}

/// Weight of a vector-only match in another language than the question (see
/// `KnowledgeBase::fuse`): between 1 (lexical silence counts fully against it)
/// and 2 (the vector rank stands in for the missing lexical one).
const CROSS_LINGUAL_BOOST: f32 = 2.0;

/// Splits a live version into passages with their index keys.
fn plan(v: &Version, cfg: &ChunkerConfig) -> Vec<ChunkMeta> {
    let mut seen: HashMap<ContentHash, u32> = HashMap::new();
    chunk_markdown(&v.title, &v.body, cfg)
        .into_iter()
        .map(|c| {
            let dup = seen.entry(c.hash).or_insert(0);
            *dup += 1;
            let mut key_src = format!(
                "{}\u{0}{}\u{0}{}\u{0}{}",
                v.article_id,
                c.hash.to_hex(),
                v.lang,
                dup
            );
            for t in &v.tags {
                key_src.push('\u{0}');
                key_src.push_str(t);
            }
            let h = ContentHash::of(&key_src).0;
            ChunkMeta {
                key: u64::from_le_bytes([h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7]]),
                article_id: v.article_id,
                version: v.version,
                title: v.title.clone(),
                heading: c.heading,
                text: c.text,
                lang: v.lang.clone(),
                tags: v.tags.clone(),
            }
        })
        .collect()
}

/// Reciprocal rank fusion of ranked key lists: `score(d) = Σ 1 / (k + rank)`.
/// Returns keys best first with their fused score and their rank in each list.
pub fn reciprocal_rank_fusion(lists: &[&[u64]], k: f32) -> Vec<(u64, f32, Vec<Option<u32>>)> {
    let mut acc: HashMap<u64, (f32, Vec<Option<u32>>)> = HashMap::new();
    for (li, list) in lists.iter().enumerate() {
        for (rank, key) in list.iter().enumerate() {
            let e = acc
                .entry(*key)
                .or_insert_with(|| (0.0, vec![None; lists.len()]));
            if e.1[li].is_none() {
                e.0 += 1.0 / (k + rank as f32 + 1.0);
                e.1[li] = Some(rank as u32 + 1);
            }
        }
    }
    let mut out: Vec<_> = acc.into_iter().map(|(key, (s, r))| (key, s, r)).collect();
    out.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    out
}

/// Articles, versions and hybrid search (see the module docs).
pub struct KnowledgeBase {
    store: ArticleStore,
    embedder: Arc<CachedEmbedder>,
    vectors: Arc<dyn VectorIndex>,
    lexical: Arc<LexicalIndex>,
    catalog: RwLock<Catalog>,
    index_lock: tokio::sync::Mutex<()>,
    cfg: KbConfig,
}

impl std::fmt::Debug for KnowledgeBase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KnowledgeBase")
            .field("vectors", &self.vectors)
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| KbError::Index(format!("background task: {e}")))?
}

impl KnowledgeBase {
    /// Opens the knowledge base with the embedded vector index: on disk in
    /// `cfg.index_dir` (with the lexical index and embedding cache), or in
    /// memory. Reconciles the indexes with the store before returning.
    pub async fn open(
        store: ArticleStore,
        embedder: Arc<dyn Embedder>,
        cfg: KbConfig,
    ) -> Result<Self> {
        let dim = embedder.dim();
        let vectors: Arc<dyn VectorIndex> = match &cfg.index_dir {
            Some(dir) => {
                let dir = dir.join("vectors");
                let model = embedder.model_id().to_string();
                Arc::new(
                    blocking(move || {
                        // Vectors of another model are useless: start over (the store re-fills it).
                        std::fs::create_dir_all(&dir)?;
                        let marker = dir.join("model");
                        let previous = std::fs::read_to_string(&marker).ok();
                        if previous.as_deref() != Some(model.as_str()) {
                            if previous.is_some() {
                                tracing::warn!(%model, "embedding model changed: re-indexing all passages");
                            }
                            let _ = std::fs::remove_file(dir.join("vectors.log"));
                            std::fs::write(&marker, &model)?;
                        }
                        FlatIndex::open(&dir, dim)
                    })
                    .await?,
                )
            }
            None => Arc::new(FlatIndex::in_memory(dim)),
        };
        Self::open_with_vectors(store, embedder, vectors, cfg).await
    }

    /// Like [`KnowledgeBase::open`] with another vector backend (e.g.
    /// `qdrant::QdrantIndex`); the lexical index and embedding cache still
    /// live in `cfg.index_dir`.
    pub async fn open_with_vectors(
        store: ArticleStore,
        embedder: Arc<dyn Embedder>,
        vectors: Arc<dyn VectorIndex>,
        cfg: KbConfig,
    ) -> Result<Self> {
        let (cached, lexical) = match &cfg.index_dir {
            Some(dir) => {
                let dir = dir.clone();
                blocking(move || {
                    let cached = CachedEmbedder::persistent(embedder, &dir.join("cache"))?;
                    let lexical = LexicalIndex::open(Some(&dir.join("lexical")))?;
                    Ok((cached, lexical))
                })
                .await?
            }
            None => (
                CachedEmbedder::in_memory(embedder),
                LexicalIndex::open(None)?,
            ),
        };
        Self::with_indexes(store, cached, vectors, lexical, cfg).await
    }

    /// Opens with explicit components (e.g. a Qdrant vector index). Reconciles the indexes with the store.
    pub async fn with_indexes(
        store: ArticleStore,
        embedder: CachedEmbedder,
        vectors: Arc<dyn VectorIndex>,
        lexical: LexicalIndex,
        cfg: KbConfig,
    ) -> Result<Self> {
        if vectors.dim() != embedder.inner().dim() {
            return Err(KbError::Invalid(format!(
                "vector index has {} dimensions, embedder {}",
                vectors.dim(),
                embedder.inner().dim()
            )));
        }
        let kb = Self {
            store,
            embedder: Arc::new(embedder),
            vectors,
            lexical: Arc::new(lexical),
            catalog: RwLock::new(Catalog::default()),
            index_lock: tokio::sync::Mutex::new(()),
            cfg,
        };
        let stats = kb.sync_index().await?;
        tracing::info!(?stats, "knowledge index reconciled");
        Ok(kb)
    }

    /// The article store.
    pub fn store(&self) -> &ArticleStore {
        &self.store
    }

    /// The caching embedder (for its statistics).
    pub fn embedder(&self) -> &CachedEmbedder {
        &self.embedder
    }

    /// Number of searchable passages.
    pub fn passages(&self) -> usize {
        self.catalog.read().map(|c| c.chunks.len()).unwrap_or(0)
    }

    fn catalog_read(&self) -> Result<std::sync::RwLockReadGuard<'_, Catalog>> {
        self.catalog
            .read()
            .map_err(|_| KbError::Index("catalog lock poisoned".into()))
    }

    fn catalog_write(&self) -> Result<std::sync::RwLockWriteGuard<'_, Catalog>> {
        self.catalog
            .write()
            .map_err(|_| KbError::Index("catalog lock poisoned".into()))
    }

    /// Makes both indexes hold exactly the live passages of the store, adding
    /// and removing only the difference. This is `rebuild_index` on start-up:
    /// a missing or stale index is repaired, vectors come from the cache.
    pub async fn sync_index(&self) -> Result<IndexStats> {
        let _guard = self.index_lock.lock().await;
        let live = self.store.all_live().await?;
        let cfg = self.cfg.chunker;
        let desired: Vec<ChunkMeta> =
            blocking(move || Ok(live.iter().flat_map(|v| plan(v, &cfg)).collect())).await?;
        let want: HashSet<u64> = desired.iter().map(|m| m.key).collect();
        let have_vec = self.vectors.keys().await?;
        let lexical = self.lexical.clone();
        let have_lex = blocking(move || lexical.keys()).await?;

        let vec_add: Vec<&ChunkMeta> = desired
            .iter()
            .filter(|m| !have_vec.contains(&m.key))
            .collect();
        let vec_del: Vec<u64> = have_vec.difference(&want).copied().collect();
        let lex_add: Vec<LexDoc> = desired
            .iter()
            .filter(|m| !have_lex.contains(&m.key))
            .map(ChunkMeta::lex_doc)
            .collect();
        let lex_del: Vec<u64> = have_lex.difference(&want).copied().collect();

        let before = self
            .embedder
            .stats()
            .texts
            .load(std::sync::atomic::Ordering::Relaxed);
        let entries = self.embed_entries(&vec_add).await?;
        let stats = IndexStats {
            added: vec_add.len().max(lex_add.len()),
            removed: vec_del.len().max(lex_del.len()),
            kept: want.len() - vec_add.len().max(lex_add.len()).min(want.len()),
            embedded: (self
                .embedder
                .stats()
                .texts
                .load(std::sync::atomic::Ordering::Relaxed)
                - before) as usize,
        };
        self.vectors.remove(&vec_del).await?;
        for batch in entries.chunks(1024) {
            self.vectors.upsert(batch.to_vec()).await?;
        }
        self.vectors.flush().await?;
        let lexical = self.lexical.clone();
        blocking(move || {
            lexical.remove(&lex_del)?;
            lexical.add(&lex_add)?;
            lexical.commit()
        })
        .await?;
        let mut catalog = Catalog::default();
        let mut grouped: HashMap<ArticleId, Vec<ChunkMeta>> = HashMap::new();
        for m in desired {
            grouped.entry(m.article_id).or_default().push(m);
        }
        for (id, metas) in grouped {
            catalog.replace(id, metas);
        }
        *self.catalog_write()? = catalog;
        Ok(stats)
    }

    /// Drops every indexed passage and re-indexes all live articles
    /// (vectors still come from the embedding cache).
    pub async fn rebuild_index(&self) -> Result<IndexStats> {
        {
            let _guard = self.index_lock.lock().await;
            let keys: Vec<u64> = self.vectors.keys().await?.into_iter().collect();
            self.vectors.remove(&keys).await?;
            self.vectors.flush().await?;
            let lexical = self.lexical.clone();
            blocking(move || {
                lexical.clear()?;
                lexical.commit()
            })
            .await?;
            *self.catalog_write()? = Catalog::default();
        }
        self.sync_index().await
    }

    async fn embed_entries(&self, metas: &[&ChunkMeta]) -> Result<Vec<VectorEntry>> {
        if metas.is_empty() {
            return Ok(Vec::new());
        }
        let texts: Vec<String> = metas.iter().map(|m| m.embed_text()).collect();
        let embedder = self.embedder.clone();
        let vectors = blocking(move || {
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            embedder.embed_documents(&refs)
        })
        .await?;
        Ok(metas
            .iter()
            .zip(vectors)
            .map(|(m, v)| VectorEntry {
                key: m.key,
                vector: v,
                lang: m.lang.clone(),
                tags: m.tags.clone(),
            })
            .collect())
    }

    /// Brings one article's passages in line with its live version (none
    /// unless published): removes vanished passages, embeds and adds new ones.
    pub async fn reindex_article(&self, id: ArticleId) -> Result<IndexStats> {
        let _guard = self.index_lock.lock().await;
        let live = match self.store.live(id).await {
            Ok(v) => v,
            Err(KbError::NotFound(_)) => None,
            Err(e) => return Err(e),
        };
        let desired = live
            .map(|v| plan(&v, &self.cfg.chunker))
            .unwrap_or_default();
        let old: HashSet<u64> = self
            .catalog_read()?
            .by_article
            .get(&id)
            .map(|v| v.iter().copied().collect())
            .unwrap_or_default();
        let want: HashSet<u64> = desired.iter().map(|m| m.key).collect();
        let removed: Vec<u64> = old.difference(&want).copied().collect();
        let added: Vec<&ChunkMeta> = desired.iter().filter(|m| !old.contains(&m.key)).collect();
        let before = self
            .embedder
            .stats()
            .texts
            .load(std::sync::atomic::Ordering::Relaxed);
        let entries = self.embed_entries(&added).await?;
        let embedded = (self
            .embedder
            .stats()
            .texts
            .load(std::sync::atomic::Ordering::Relaxed)
            - before) as usize;
        let lex_add: Vec<LexDoc> = added.iter().map(|m| m.lex_doc()).collect();
        let stats = IndexStats {
            added: added.len(),
            removed: removed.len(),
            kept: want.len() - added.len(),
            embedded,
        };
        self.vectors.remove(&removed).await?;
        self.vectors.upsert(entries).await?;
        self.vectors.flush().await?;
        let lexical = self.lexical.clone();
        let lex_del = removed.clone();
        blocking(move || {
            lexical.remove(&lex_del)?;
            lexical.add(&lex_add)?;
            lexical.commit()
        })
        .await?;
        self.catalog_write()?.replace(id, desired);
        tracing::debug!(article = %id, ?stats, "article re-indexed");
        Ok(stats)
    }

    // ---- articles -------------------------------------------------------

    /// Creates a draft article (not searchable until published).
    pub async fn create(&self, draft: &Draft, author: &str) -> Result<Article> {
        self.store.create(draft, author, None).await
    }

    /// Saves an edit as a new draft version (search keeps serving the live version).
    pub async fn update(
        &self,
        id: ArticleId,
        draft: &Draft,
        author: &str,
        base_version: Option<i64>,
    ) -> Result<Article> {
        self.store.update(id, draft, author, base_version).await
    }

    /// Publishes `version` (default: latest) and re-indexes what changed.
    pub async fn publish(
        &self,
        id: ArticleId,
        version: Option<i64>,
        author: &str,
    ) -> Result<(Article, IndexStats)> {
        let a = self.store.publish(id, version, author).await?;
        let s = self.reindex_article(id).await?;
        Ok((a, s))
    }

    /// Takes an article out of search and back to draft.
    pub async fn unpublish(&self, id: ArticleId, author: &str) -> Result<(Article, IndexStats)> {
        let a = self.store.unpublish(id, author).await?;
        let s = self.reindex_article(id).await?;
        Ok((a, s))
    }

    /// Archives an article (removed from search).
    pub async fn archive(&self, id: ArticleId, author: &str) -> Result<(Article, IndexStats)> {
        let a = self.store.archive(id, author).await?;
        let s = self.reindex_article(id).await?;
        Ok((a, s))
    }

    /// Restores `version` as a new version (live at once if the article is published).
    pub async fn rollback(
        &self,
        id: ArticleId,
        version: i64,
        author: &str,
    ) -> Result<(Article, IndexStats)> {
        let a = self.store.rollback(id, version, author).await?;
        let s = self.reindex_article(id).await?;
        Ok((a, s))
    }

    /// Lists articles.
    pub async fn list(&self, filter: &ArticleFilter) -> Result<Vec<Article>> {
        self.store.list(filter).await
    }

    /// An article head with its latest version's content.
    pub async fn get(&self, id: ArticleId) -> Result<(Article, Version)> {
        let a = self.store.get(id).await?;
        let v = self.store.get_version(id, a.version).await?;
        Ok((a, v))
    }

    /// One version.
    pub async fn version(&self, id: ArticleId, version: i64) -> Result<Version> {
        self.store.get_version(id, version).await
    }

    /// History, newest first.
    pub async fn versions(&self, id: ArticleId) -> Result<Vec<VersionInfo>> {
        self.store.versions(id).await
    }

    /// Diff between two versions.
    pub async fn diff(&self, id: ArticleId, from: i64, to: i64) -> Result<Diff> {
        self.store.diff(id, from, to).await
    }

    // ---- search ---------------------------------------------------------

    /// Hybrid search over published passages (see the module docs).
    pub async fn search(&self, q: &Query) -> Result<Vec<Passage>> {
        let text = q.text.trim().to_string();
        if text.is_empty() {
            return Ok(Vec::new());
        }
        let k = if q.k == 0 { 5 } else { q.k.min(50) };
        let n = self.cfg.candidates.max(4 * k);
        let filter = Filter {
            lang: q
                .lang
                .as_deref()
                .map(|l| l.trim().to_ascii_lowercase())
                .filter(|l| !l.is_empty()),
            tags: q
                .tags
                .iter()
                .map(|t| t.trim().to_lowercase())
                .filter(|t| !t.is_empty())
                .collect(),
        };
        // BM25 runs on another core while the query is embedded.
        let (lexical, f2, t2) = (self.lexical.clone(), filter.clone(), text.clone());
        let lex_task = blocking(move || lexical.search(&t2, &f2, n));
        let embedder = self.embedder.clone();
        let embed_task = blocking(move || embedder.embed_query(&text));
        let (lex, qv) = tokio::join!(lex_task, embed_task);
        let (lex, qv) = (lex?, qv?);
        let mut vec = self.vectors.search(&qv, &filter, n).await?;
        vec.retain(|(_, s)| *s > self.cfg.min_vector_score);
        let query_lang = self
            .embedder
            .inner()
            .cross_lingual()
            .then(|| crate::chunk::detect_lang(&q.text));
        Ok(self.fuse(&lex, &vec, k, query_lang))
    }

    /// Fuses the two rankings. With a cross-lingual model (`query_lang` set),
    /// a passage in another language than the question could never have
    /// matched lexically, so its vector-only score is raised by
    /// [`CROSS_LINGUAL_BOOST`] instead of the lexical silence counting fully against it.
    fn fuse(
        &self,
        lex: &[(u64, f32)],
        vec: &[(u64, f32)],
        k: usize,
        query_lang: Option<&str>,
    ) -> Vec<Passage> {
        let lex_keys: Vec<u64> = lex.iter().map(|x| x.0).collect();
        let vec_keys: Vec<u64> = vec.iter().map(|x| x.0).collect();
        let mut fused = reciprocal_rank_fusion(&[&lex_keys, &vec_keys], self.cfg.rrf_k);
        let Ok(catalog) = self.catalog_read() else {
            return Vec::new();
        };
        if let Some(ql) = query_lang {
            for (key, score, ranks) in fused.iter_mut() {
                let other_lang = catalog.chunks.get(key).is_some_and(|m| m.lang != ql);
                if other_lang && ranks[0].is_none() && ranks[1].is_some() {
                    *score *= CROSS_LINGUAL_BOOST;
                }
            }
            fused.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        }
        fused
            .into_iter()
            .filter_map(|(key, score, ranks)| {
                let m = catalog.chunks.get(&key)?;
                Some(Passage {
                    article_id: m.article_id,
                    version: m.version,
                    chunk_id: m.chunk_id(),
                    title: m.title.clone(),
                    heading: m.heading.clone(),
                    text: m.text.clone(),
                    lang: m.lang.clone(),
                    score,
                    lexical_rank: ranks[0],
                    vector_rank: ranks[1],
                })
            })
            .take(k)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rrf_rewards_agreement() {
        let fused = reciprocal_rank_fusion(&[&[1, 2, 3], &[3, 4, 1]], 60.0);
        let order: Vec<u64> = fused.iter().map(|x| x.0).collect();
        assert_eq!(order[..2], [1, 3]);
        assert_eq!(fused[0].2, vec![Some(1), Some(3)]);
        assert!(fused.iter().any(|x| x.0 == 4 && x.2 == vec![None, Some(2)]));
    }
}
