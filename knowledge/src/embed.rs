//! Sentence embeddings: the [`Embedder`] trait, the candle BERT implementation
//! (all-MiniLM-L6-v2 by default: mean pooling and L2 normalisation, batched),
//! and [`CachedEmbedder`], which keys vectors by the content hash of the text so
//! that unchanged passages are never embedded twice — across publishes and
//! across restarts (the cache is an append-only file in the index directory).

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config as BertConfig};
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

use crate::chunk::ContentHash;
use crate::error::{KbError, Result};

/// Turns texts into unit-length vectors whose dot product is their cosine similarity.
pub trait Embedder: Send + Sync + std::fmt::Debug {
    /// Stable identifier of the model (part of the cache key and the index manifest).
    fn model_id(&self) -> &str;
    /// Vector dimension.
    fn dim(&self) -> usize;
    /// Embeds passages (one model call per batch given).
    fn embed_documents(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>>;
    /// Whether texts in different languages share one vector space (e5), so a
    /// vector match across languages is evidence. English-only models: `false`.
    fn cross_lingual(&self) -> bool {
        false
    }
    /// Embeds a search query. Models trained with query prefixes (e5) override this.
    fn embed_query(&self, text: &str) -> Result<Vec<f32>> {
        self.embed_documents(&[text])?
            .pop()
            .ok_or_else(|| KbError::Embedding("no vector returned".into()))
    }
}

/// A BERT sentence-embedding model run with candle on the CPU.
pub struct BertEmbedder {
    model: BertModel,
    tokenizer: Tokenizer,
    device: Device,
    dim: usize,
    id: String,
    query_prefix: String,
    passage_prefix: String,
    cross_lingual: bool,
}

impl std::fmt::Debug for BertEmbedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BertEmbedder")
            .field("id", &self.id)
            .field("dim", &self.dim)
            .finish()
    }
}

/// Word pieces fed to the model at most (all-MiniLM-L6-v2 was trained on 128; its limit is 256).
const MAX_TOKENS: usize = 256;

impl BertEmbedder {
    /// Loads `model.safetensors`, `tokenizer.json` and `config.json` from `dir`
    /// (what `switchboard_models::Models::ensure(ModelId::MiniLmL6V2)` returns).
    pub fn from_dir(dir: &Path) -> Result<Self> {
        let read = |name: &str| -> Result<Vec<u8>> {
            std::fs::read(dir.join(name))
                .map_err(|e| KbError::Embedding(format!("{}: {e}", dir.join(name).display())))
        };
        let config: BertConfig = serde_json::from_slice(&read("config.json")?)
            .map_err(|e| KbError::Embedding(format!("config.json: {e}")))?;
        let mut tokenizer = Tokenizer::from_bytes(read("tokenizer.json")?)
            .map_err(|e| KbError::Embedding(format!("tokenizer.json: {e}")))?;
        tokenizer.with_padding(Some(PaddingParams {
            strategy: PaddingStrategy::BatchLongest,
            ..Default::default()
        }));
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: MAX_TOKENS,
                ..Default::default()
            }))
            .map_err(|e| KbError::Embedding(format!("truncation: {e}")))?;
        let device = Device::Cpu;
        let vb =
            VarBuilder::from_buffered_safetensors(read("model.safetensors")?, DType::F32, &device)?;
        let model = BertModel::load(vb, &config)?;
        let dim = config.hidden_size;
        let id = format!(
            "bert:{}:{}",
            dir.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            dim
        );
        Ok(Self {
            model,
            tokenizer,
            device,
            dim,
            id,
            query_prefix: String::new(),
            passage_prefix: String::new(),
            cross_lingual: false,
        })
    }

    /// Loads multilingual-e5-small (Chinese and English in one vector space)
    /// from the model cache, preparing it first if needed. Texts get the
    /// `query: ` / `passage: ` prefixes the model was trained with.
    pub fn e5_small(models: &switchboard_models::Models) -> Result<Self> {
        let dir = models
            .ensure(switchboard_models::ModelId::E5SmallMultilingual)
            .map_err(|e| KbError::Embedding(e.to_string()))?;
        Ok(Self::from_dir(&dir)?
            .with_id("multilingual-e5-small")
            .with_prefixes("query: ", "passage: ")
            .with_cross_lingual(true))
    }

    /// Declares the model multilingual (one vector space across languages).
    pub fn with_cross_lingual(mut self, yes: bool) -> Self {
        self.cross_lingual = yes;
        self
    }

    /// Sets the prefixes put before queries and passages (e5 models need them).
    pub fn with_prefixes(mut self, query: &str, passage: &str) -> Self {
        self.query_prefix = query.to_string();
        self.passage_prefix = passage.to_string();
        self
    }

    /// Loads all-MiniLM-L6-v2 from the model cache, preparing it first if needed
    /// (`switchboard_models::Models::ensure`).
    pub fn minilm(models: &switchboard_models::Models) -> Result<Self> {
        let dir = models
            .ensure(switchboard_models::ModelId::MiniLmL6V2)
            .map_err(|e| KbError::Embedding(e.to_string()))?;
        Ok(Self::from_dir(&dir)?.with_id("all-MiniLM-L6-v2"))
    }

    /// Overrides the model id (e.g. `all-MiniLM-L6-v2`), which keys the cache and manifest.
    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.id = id.into();
        self
    }

    fn run(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let enc = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| KbError::Embedding(format!("tokenize: {e}")))?;
        let len = enc.first().map(|e| e.get_ids().len()).unwrap_or(0);
        let n = enc.len();
        let mut ids = Vec::with_capacity(n * len);
        let mut mask = Vec::with_capacity(n * len);
        for e in &enc {
            ids.extend(e.get_ids().iter().map(|&v| v as i64));
            mask.extend(e.get_attention_mask().iter().map(|&v| v as i64));
        }
        let ids = Tensor::from_vec(ids, (n, len), &self.device)?;
        let mask = Tensor::from_vec(mask, (n, len), &self.device)?;
        let types = ids.zeros_like()?;
        let hidden = self.model.forward(&ids, &types, Some(&mask))?; // (n, len, dim)
        // Mean pooling over real tokens, then L2 normalisation.
        let m = mask.to_dtype(DType::F32)?.unsqueeze(2)?; // (n, len, 1)
        let summed = hidden.broadcast_mul(&m)?.sum(1)?; // (n, dim)
        let counts = m.sum(1)?.clamp(1e-9, f64::MAX)?; // (n, 1)
        let mean = summed.broadcast_div(&counts)?;
        let norm = mean.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-12, f64::MAX)?;
        let out = mean.broadcast_div(&norm)?;
        Ok(out.to_vec2::<f32>()?)
    }
}

impl Embedder for BertEmbedder {
    fn model_id(&self) -> &str {
        &self.id
    }
    fn cross_lingual(&self) -> bool {
        self.cross_lingual
    }
    fn dim(&self) -> usize {
        self.dim
    }
    fn embed_documents(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        if self.passage_prefix.is_empty() {
            return self.run(texts);
        }
        let prefixed: Vec<String> = texts
            .iter()
            .map(|t| format!("{}{t}", self.passage_prefix))
            .collect();
        self.run(&prefixed.iter().map(String::as_str).collect::<Vec<_>>())
    }
    fn embed_query(&self, text: &str) -> Result<Vec<f32>> {
        let q = format!("{}{text}", self.query_prefix);
        self.run(&[q.as_str()])?
            .pop()
            .ok_or_else(|| KbError::Embedding("no vector returned".into()))
    }
}

/// Counts what reached the model, for tests and metrics.
#[derive(Debug, Default)]
pub struct EmbedStats {
    /// Texts embedded by the model (cache misses).
    pub texts: AtomicU64,
    /// Batches sent to the model.
    pub batches: AtomicU64,
    /// Texts served from the cache.
    pub hits: AtomicU64,
}

/// An [`Embedder`] in front of a content-hash cache, batching misses.
///
/// The cache key is the SHA-256 of the model id and the text, so switching
/// models never serves stale vectors. With a directory, new vectors are
/// appended to `embeddings-<model>.bin` and reloaded on start.
#[derive(Debug)]
pub struct CachedEmbedder {
    inner: Arc<dyn Embedder>,
    cache: Mutex<HashMap<ContentHash, Arc<[f32]>>>,
    file: Option<Mutex<BufWriter<File>>>,
    batch: usize,
    stats: EmbedStats,
}

const CACHE_MAGIC: &[u8; 8] = b"SBEMB001";

impl CachedEmbedder {
    /// A cache held in memory only.
    pub fn in_memory(inner: Arc<dyn Embedder>) -> Self {
        Self {
            inner,
            cache: Mutex::new(HashMap::new()),
            file: None,
            batch: 32,
            stats: EmbedStats::default(),
        }
    }

    /// A cache persisted in `dir` (created if missing). A torn last record
    /// (crash mid-write) is ignored and overwritten.
    pub fn persistent(inner: Arc<dyn Embedder>, dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir)?;
        let safe: String = inner
            .model_id()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        let path: PathBuf = dir.join(format!("embeddings-{safe}.bin"));
        let dim = inner.dim();
        let mut cache = HashMap::new();
        let mut valid_len = 0u64;
        if path.exists() {
            let mut r = BufReader::new(File::open(&path)?);
            let mut magic = [0u8; 8];
            if r.read_exact(&mut magic).is_ok() && &magic == CACHE_MAGIC {
                valid_len = 8;
                let mut rec = vec![0u8; 32 + dim * 4];
                while r.read_exact(&mut rec).is_ok() {
                    let mut h = [0u8; 32];
                    h.copy_from_slice(&rec[..32]);
                    let v: Vec<f32> = rec[32..]
                        .chunks_exact(4)
                        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                        .collect();
                    cache.insert(ContentHash(h), Arc::from(v));
                    valid_len += rec.len() as u64;
                }
            }
        }
        let mut f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)?;
        if valid_len == 0 {
            f.set_len(0)?;
            f.write_all(CACHE_MAGIC)?;
            f.flush()?;
            valid_len = 8;
        } else {
            f.set_len(valid_len)?;
        }
        use std::io::Seek;
        f.seek(std::io::SeekFrom::Start(valid_len))?;
        tracing::debug!(entries = cache.len(), path = %path.display(), "embedding cache loaded");
        Ok(Self {
            inner,
            cache: Mutex::new(cache),
            file: Some(Mutex::new(BufWriter::new(f))),
            batch: 32,
            stats: EmbedStats::default(),
        })
    }

    /// Sets how many texts go to the model per call (default 32).
    pub fn with_batch(mut self, batch: usize) -> Self {
        self.batch = batch.max(1);
        self
    }

    /// The wrapped model.
    pub fn inner(&self) -> &Arc<dyn Embedder> {
        &self.inner
    }

    /// Model call counters.
    pub fn stats(&self) -> &EmbedStats {
        &self.stats
    }

    /// Number of cached vectors.
    pub fn cached(&self) -> usize {
        self.cache.lock().map(|c| c.len()).unwrap_or(0)
    }

    fn key(&self, text: &str) -> ContentHash {
        let mut s = String::with_capacity(text.len() + 64);
        s.push_str(self.inner.model_id());
        s.push('\u{0}');
        s.push_str(text);
        ContentHash::of(&s)
    }

    /// Embeds passages, serving repeats from the cache and batching the rest.
    pub fn embed_documents(&self, texts: &[&str]) -> Result<Vec<Arc<[f32]>>> {
        let keys: Vec<ContentHash> = texts.iter().map(|t| self.key(t)).collect();
        let mut out: Vec<Option<Arc<[f32]>>> = {
            let cache = self.lock_cache()?;
            keys.iter().map(|k| cache.get(k).cloned()).collect()
        };
        // Distinct misses, in order.
        let mut miss: Vec<usize> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (i, v) in out.iter().enumerate() {
            if v.is_none() && seen.insert(keys[i]) {
                miss.push(i);
            }
        }
        self.stats
            .hits
            .fetch_add((texts.len() - miss.len()) as u64, Ordering::Relaxed);
        for batch in miss.chunks(self.batch) {
            let batch_texts: Vec<&str> = batch.iter().map(|&i| texts[i]).collect();
            let vectors = self.inner.embed_documents(&batch_texts)?;
            if vectors.len() != batch.len() {
                return Err(KbError::Embedding(format!(
                    "model returned {} vectors for {} texts",
                    vectors.len(),
                    batch.len()
                )));
            }
            self.stats.batches.fetch_add(1, Ordering::Relaxed);
            self.stats
                .texts
                .fetch_add(batch.len() as u64, Ordering::Relaxed);
            let mut cache = self.lock_cache()?;
            for (&i, v) in batch.iter().zip(vectors) {
                if v.len() != self.inner.dim() {
                    return Err(KbError::Embedding(format!(
                        "vector of {} dims, expected {}",
                        v.len(),
                        self.inner.dim()
                    )));
                }
                let v: Arc<[f32]> = Arc::from(v);
                if let Some(file) = &self.file {
                    let mut w = file
                        .lock()
                        .map_err(|_| KbError::Embedding("cache file lock poisoned".into()))?;
                    w.write_all(&keys[i].0)?;
                    for x in v.iter() {
                        w.write_all(&x.to_le_bytes())?;
                    }
                }
                cache.insert(keys[i], v.clone());
            }
        }
        if let Some(file) = &self.file {
            file.lock()
                .map_err(|_| KbError::Embedding("cache file lock poisoned".into()))?
                .flush()?;
        }
        let cache = self.lock_cache()?;
        out.iter_mut()
            .zip(&keys)
            .map(|(v, k)| {
                v.take()
                    .or_else(|| cache.get(k).cloned())
                    .ok_or_else(|| KbError::Embedding("vector missing after embedding".into()))
            })
            .collect()
    }

    /// Embeds a query (not cached: queries rarely repeat exactly and are cheap).
    pub fn embed_query(&self, text: &str) -> Result<Vec<f32>> {
        self.inner.embed_query(text)
    }

    fn lock_cache(&self) -> Result<std::sync::MutexGuard<'_, HashMap<ContentHash, Arc<[f32]>>>> {
        self.cache
            .lock()
            .map_err(|_| KbError::Embedding("cache lock poisoned".into()))
    }
}

/// A deterministic embedder for tests and benchmarks that need no model
/// files: a hashed bag of word and CJK-bigram features, L2-normalised.
/// Texts sharing words get similar vectors, which is enough to exercise the
/// index and fusion code paths; it is not a semantic model.
#[derive(Debug, Clone)]
pub struct HashEmbedder {
    dim: usize,
}

impl HashEmbedder {
    /// A feature-hashing embedder of `dim` dimensions.
    pub fn new(dim: usize) -> Self {
        Self { dim: dim.max(8) }
    }

    /// Embeds one text.
    pub fn vector(&self, text: &str) -> Vec<f32> {
        let mut v = vec![0f32; self.dim];
        for term in crate::lexical::analyze_plain(text) {
            let h = ContentHash::of(&term).0;
            let idx = u64::from_le_bytes([h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7]]) as usize
                % self.dim;
            v[idx] += if h[8] & 1 == 0 { 1.0 } else { -1.0 };
        }
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        if n > 0.0 {
            v.iter_mut().for_each(|x| *x /= n);
        }
        v
    }
}

impl Embedder for HashEmbedder {
    fn model_id(&self) -> &str {
        "hash-bag-of-words"
    }
    fn dim(&self) -> usize {
        self.dim
    }
    fn embed_documents(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        Ok(texts.iter().map(|t| self.vector(t)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_serves_repeats_and_persists() {
        let dir = tempfile::tempdir().unwrap();
        let inner: Arc<dyn Embedder> = Arc::new(HashEmbedder::new(64));
        let e = CachedEmbedder::persistent(inner.clone(), dir.path()).unwrap();
        let a = e
            .embed_documents(&["alpha beta", "gamma", "alpha beta"])
            .unwrap();
        assert_eq!(a[0], a[2]);
        assert_eq!(e.stats().texts.load(Ordering::Relaxed), 2);
        e.embed_documents(&["gamma"]).unwrap();
        assert_eq!(e.stats().texts.load(Ordering::Relaxed), 2);
        drop(e);
        let e = CachedEmbedder::persistent(inner, dir.path()).unwrap();
        assert_eq!(e.cached(), 2);
        let b = e.embed_documents(&["alpha beta", "delta"]).unwrap();
        assert_eq!(b[0], a[0]);
        assert_eq!(e.stats().texts.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn batches_respect_size() {
        let inner: Arc<dyn Embedder> = Arc::new(HashEmbedder::new(16));
        let e = CachedEmbedder::in_memory(inner).with_batch(4);
        let texts: Vec<String> = (0..10).map(|i| format!("text {i}")).collect();
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        e.embed_documents(&refs).unwrap();
        assert_eq!(e.stats().batches.load(Ordering::Relaxed), 3);
        assert_eq!(e.stats().texts.load(Ordering::Relaxed), 10);
    }
}
