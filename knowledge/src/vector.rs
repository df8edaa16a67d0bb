//! Vector indexes behind one trait: [`FlatIndex`], the embedded default
//! (exact, on disk), and a Qdrant backend (see [`crate::qdrant`]).
//!
//! `FlatIndex` is a brute-force scan, made fast enough for 100k+ passages by
//! scanning an int8 copy of the vectors (one scale per vector, 4× less memory
//! traffic than f32) on all cores, then re-scoring the best few hundred
//! candidates with the exact f32 vectors. It returns exactly the same top k
//! as an f32 scan unless two passages are within int8 rounding of each other
//! at the cut-off, which does not change retrieval quality; in exchange it
//! needs no graph, supports deletes and filters natively and never degrades.
//!
//! On disk it is an append-only log (`vectors.log`: upserts and removals),
//! replayed on open and compacted when more than half of it is dead.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use async_trait::async_trait;

use crate::error::{KbError, Result};
pub use crate::lexical::Filter;

/// One passage vector with the fields searches filter on.
#[derive(Debug, Clone)]
pub struct VectorEntry {
    /// Chunk key (shared with the lexical index).
    pub key: u64,
    /// Unit-length embedding.
    pub vector: Arc<[f32]>,
    /// Language code.
    pub lang: String,
    /// Tags.
    pub tags: Vec<String>,
}

/// A store of passage vectors searchable by cosine similarity.
#[async_trait]
pub trait VectorIndex: Send + Sync + std::fmt::Debug {
    /// Vector dimension.
    fn dim(&self) -> usize;
    /// Inserts or replaces entries.
    async fn upsert(&self, entries: Vec<VectorEntry>) -> Result<()>;
    /// Removes entries by key (unknown keys are ignored).
    async fn remove(&self, keys: &[u64]) -> Result<()>;
    /// All keys present.
    async fn keys(&self) -> Result<HashSet<u64>>;
    /// The `k` most similar entries passing `filter`, best first (score = cosine).
    async fn search(&self, query: &[f32], filter: &Filter, k: usize) -> Result<Vec<(u64, f32)>>;
    /// Makes changes durable.
    async fn flush(&self) -> Result<()>;
}

#[derive(Debug, Default)]
struct Inner {
    dim: usize,
    keys: Vec<u64>,
    rows: HashMap<u64, usize>,
    vectors: Vec<f32>,
    quant: Vec<i8>,
    scales: Vec<f32>,
    langs: Vec<u32>,
    tags: Vec<Vec<u32>>,
    interned: HashMap<String, u32>,
    names: Vec<String>,
    /// Operations not yet appended to the log.
    pending: Vec<Op>,
}

#[derive(Debug, Clone)]
enum Op {
    Upsert(u64),
    Remove(u64),
}

/// Rows above which the int8 pre-scan and multi-threading pay off.
const QUANT_MIN_ROWS: usize = 4096;
const LOG_MAGIC: &[u8; 8] = b"SBVEC001";

/// The embedded brute-force vector index (see the module docs).
#[derive(Debug, Clone)]
pub struct FlatIndex {
    inner: Arc<RwLock<Inner>>,
    path: Option<PathBuf>,
    threads: usize,
}

fn quantize(v: &[f32], out: &mut Vec<i8>) -> f32 {
    let max = v.iter().fold(0f32, |m, x| m.max(x.abs()));
    let scale = if max > 0.0 { max / 127.0 } else { 1.0 };
    out.extend(
        v.iter()
            .map(|x| (x / scale).round().clamp(-127.0, 127.0) as i8),
    );
    scale
}

/// Dot product of f32 slices, written so that it vectorises.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let ca = a.chunks_exact(8);
    let cb = b.chunks_exact(8);
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    let mut s: f32 = acc.iter().sum();
    for (x, y) in ra.iter().zip(rb) {
        s += x * y;
    }
    s
}

/// Dot product of int8 slices through SimSIMD, which picks the widest
/// instruction set of the running CPU (AVX2, AVX-512 VNNI, NEON …) at run time.
fn dot_i8(a: &[i8], b: &[i8]) -> f32 {
    use simsimd::SpatialSimilarity;
    i8::dot(a, b).unwrap_or(0.0) as f32
}

/// Exact f32 dot product for re-scoring, through SimSIMD as well.
fn dot_fast(a: &[f32], b: &[f32]) -> f32 {
    use simsimd::SpatialSimilarity;
    f32::dot(a, b)
        .map(|d| d as f32)
        .unwrap_or_else(|| dot(a, b))
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Scored(f32, usize);
impl Eq for Scored {}
impl PartialOrd for Scored {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scored {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0).then(other.1.cmp(&self.1))
    }
}

fn push_top(heap: &mut BinaryHeap<Reverse<Scored>>, m: usize, s: Scored) {
    if heap.len() < m {
        heap.push(Reverse(s));
    } else if heap.peek().is_some_and(|Reverse(min)| s > *min) {
        heap.pop();
        heap.push(Reverse(s));
    }
}

impl Inner {
    fn intern(&mut self, s: &str) -> u32 {
        if let Some(&i) = self.interned.get(s) {
            return i;
        }
        let i = self.names.len() as u32;
        self.names.push(s.to_string());
        self.interned.insert(s.to_string(), i);
        i
    }

    fn upsert(&mut self, e: &VectorEntry) -> Result<()> {
        if e.vector.len() != self.dim {
            return Err(KbError::Index(format!(
                "vector of {} dims, index has {}",
                e.vector.len(),
                self.dim
            )));
        }
        let lang = self.intern(&e.lang);
        let tags: Vec<u32> = e.tags.iter().map(|t| self.intern(t)).collect();
        let mut q = Vec::with_capacity(self.dim);
        let scale = quantize(&e.vector, &mut q);
        let d = self.dim;
        match self.rows.get(&e.key) {
            Some(&row) => {
                self.vectors[row * d..(row + 1) * d].copy_from_slice(&e.vector);
                self.quant[row * d..(row + 1) * d].copy_from_slice(&q);
                self.scales[row] = scale;
                self.langs[row] = lang;
                self.tags[row] = tags;
            }
            None => {
                self.rows.insert(e.key, self.keys.len());
                self.keys.push(e.key);
                self.vectors.extend_from_slice(&e.vector);
                self.quant.extend_from_slice(&q);
                self.scales.push(scale);
                self.langs.push(lang);
                self.tags.push(tags);
            }
        }
        Ok(())
    }

    fn remove(&mut self, key: u64) -> bool {
        let Some(row) = self.rows.remove(&key) else {
            return false;
        };
        let last = self.keys.len() - 1;
        let d = self.dim;
        if row != last {
            let moved = self.keys[last];
            self.keys[row] = moved;
            self.rows.insert(moved, row);
            self.vectors.copy_within(last * d..(last + 1) * d, row * d);
            self.quant.copy_within(last * d..(last + 1) * d, row * d);
            self.scales[row] = self.scales[last];
            self.langs[row] = self.langs[last];
            self.tags.swap(row, last);
        }
        self.keys.pop();
        self.vectors.truncate(last * d);
        self.quant.truncate(last * d);
        self.scales.pop();
        self.langs.pop();
        self.tags.pop();
        true
    }

    fn entry(&self, row: usize) -> (u64, &[f32], &str, Vec<&str>) {
        let d = self.dim;
        (
            self.keys[row],
            &self.vectors[row * d..(row + 1) * d],
            &self.names[self.langs[row] as usize],
            self.tags[row]
                .iter()
                .map(|&t| self.names[t as usize].as_str())
                .collect(),
        )
    }

    /// Row predicate for a filter; `None` when the filter can match nothing.
    fn predicate(&self, filter: &Filter) -> Option<(Option<u32>, Vec<u32>)> {
        let lang = match &filter.lang {
            Some(l) => Some(*self.interned.get(l)?),
            None => None,
        };
        let mut tags = Vec::new();
        for t in &filter.tags {
            tags.push(*self.interned.get(t)?);
        }
        Some((lang, tags))
    }

    fn search(&self, query: &[f32], filter: &Filter, k: usize, threads: usize) -> Vec<(u64, f32)> {
        let n = self.keys.len();
        if k == 0 || n == 0 || query.len() != self.dim {
            return Vec::new();
        }
        let Some((lang, tags)) = self.predicate(filter) else {
            return Vec::new();
        };
        let pass = |row: usize| {
            lang.is_none_or(|l| self.langs[row] == l)
                && tags.iter().all(|t| self.tags[row].contains(t))
        };
        let d = self.dim;
        let exact = |row: usize| dot_fast(query, &self.vectors[row * d..(row + 1) * d]);
        let mut heap = BinaryHeap::with_capacity(k + 1);
        if n < QUANT_MIN_ROWS {
            for row in (0..n).filter(|&r| pass(r)) {
                push_top(&mut heap, k, Scored(exact(row), row));
            }
        } else {
            // Pre-scan in int8 keeping generous candidates, then re-score exactly.
            let m = (k * 8).max(128);
            let mut q = Vec::with_capacity(d);
            quantize(query, &mut q);
            let scan = |range: std::ops::Range<usize>| {
                let mut h = BinaryHeap::with_capacity(m + 1);
                for row in range {
                    if !pass(row) {
                        continue;
                    }
                    let s = dot_i8(&q, &self.quant[row * d..(row + 1) * d]) * self.scales[row];
                    push_top(&mut h, m, Scored(s, row));
                }
                h
            };
            let threads = threads.clamp(1, 16).min(n / QUANT_MIN_ROWS).max(1);
            let candidates: Vec<Reverse<Scored>> = if threads == 1 {
                scan(0..n).into_vec()
            } else {
                let per = n.div_ceil(threads);
                std::thread::scope(|s| {
                    let handles: Vec<_> = (0..threads)
                        .map(|t| {
                            let scan = &scan;
                            s.spawn(move || scan(t * per..((t + 1) * per).min(n)))
                        })
                        .collect();
                    handles
                        .into_iter()
                        .flat_map(|h| h.join().map(|h| h.into_vec()).unwrap_or_default())
                        .collect()
                })
            };
            for Reverse(Scored(_, row)) in candidates {
                push_top(&mut heap, k, Scored(exact(row), row));
            }
        }
        let mut out: Vec<Scored> = heap.into_iter().map(|Reverse(s)| s).collect();
        out.sort_by(|a, b| b.cmp(a));
        out.into_iter()
            .map(|Scored(s, r)| (self.keys[r], s))
            .collect()
    }
}

fn write_str(w: &mut impl Write, s: &str) -> std::io::Result<()> {
    let b = s.as_bytes();
    let len = u16::try_from(b.len()).unwrap_or(u16::MAX);
    w.write_all(&len.to_le_bytes())?;
    w.write_all(&b[..len as usize])
}

fn read_exact<const N: usize>(r: &mut impl Read) -> std::io::Result<[u8; N]> {
    let mut b = [0u8; N];
    r.read_exact(&mut b)?;
    Ok(b)
}

fn read_str(r: &mut impl Read) -> std::io::Result<String> {
    let len = u16::from_le_bytes(read_exact::<2>(r)?) as usize;
    let mut b = vec![0u8; len];
    r.read_exact(&mut b)?;
    String::from_utf8(b).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

impl FlatIndex {
    /// An empty index kept in memory only.
    pub fn in_memory(dim: usize) -> Self {
        Self {
            inner: Arc::new(RwLock::new(Inner {
                dim,
                ..Default::default()
            })),
            path: None,
            threads: default_threads(),
        }
    }

    /// Opens the index stored in `dir` (created if missing). A log written for
    /// another dimension is discarded (the caller re-indexes); a torn last
    /// record is dropped.
    pub fn open(dir: &Path, dim: usize) -> Result<Self> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join("vectors.log");
        let mut inner = Inner {
            dim,
            ..Default::default()
        };
        let mut valid = 0u64;
        if path.exists() {
            let mut r = BufReader::new(File::open(&path)?);
            let ok_header = read_exact::<8>(&mut r).is_ok_and(|m| &m == LOG_MAGIC)
                && read_exact::<4>(&mut r).is_ok_and(|d| u32::from_le_bytes(d) as usize == dim);
            if ok_header {
                valid = 12;
                while let Ok(Some((len, entry))) = Self::read_op(&mut r, dim) {
                    match entry {
                        Ok(e) => inner.upsert(&e)?,
                        Err(key) => {
                            inner.remove(key);
                        }
                    }
                    valid += len;
                }
            } else {
                tracing::warn!(path = %path.display(), "vector log of another format or dimension: starting empty");
            }
        }
        let f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)?;
        if valid == 0 {
            f.set_len(0)?;
            let mut w = BufWriter::new(f);
            w.write_all(LOG_MAGIC)?;
            w.write_all(&(dim as u32).to_le_bytes())?;
            w.flush()?;
        } else {
            f.set_len(valid)?;
        }
        tracing::debug!(rows = inner.keys.len(), "vector index opened");
        Ok(Self {
            inner: Arc::new(RwLock::new(inner)),
            path: Some(path),
            threads: default_threads(),
        })
    }

    /// Sets the number of scan threads (default: available cores).
    pub fn with_threads(mut self, threads: usize) -> Self {
        self.threads = threads.max(1);
        self
    }

    /// Reads one log record: its length and either an upsert or a removed key.
    #[allow(clippy::type_complexity)]
    fn read_op(
        r: &mut impl Read,
        dim: usize,
    ) -> std::io::Result<Option<(u64, std::result::Result<VectorEntry, u64>)>> {
        let op = match read_exact::<1>(r) {
            Ok(b) => b[0],
            Err(_) => return Ok(None),
        };
        let key = u64::from_le_bytes(read_exact::<8>(r)?);
        match op {
            2 => Ok(Some((9, Err(key)))),
            1 => {
                let lang = read_str(r)?;
                let ntags = u16::from_le_bytes(read_exact::<2>(r)?);
                let mut len = 9 + 2 + lang.len() as u64 + 2;
                let mut tags = Vec::with_capacity(ntags as usize);
                for _ in 0..ntags {
                    let t = read_str(r)?;
                    len += 2 + t.len() as u64;
                    tags.push(t);
                }
                let mut raw = vec![0u8; dim * 4];
                r.read_exact(&mut raw)?;
                len += raw.len() as u64;
                let v: Vec<f32> = raw
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect();
                Ok(Some((
                    len,
                    Ok(VectorEntry {
                        key,
                        vector: Arc::from(v),
                        lang,
                        tags,
                    }),
                )))
            }
            _ => Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "bad op",
            )),
        }
    }

    fn read(&self) -> Result<std::sync::RwLockReadGuard<'_, Inner>> {
        self.inner
            .read()
            .map_err(|_| KbError::Index("vector index lock poisoned".into()))
    }

    fn write(&self) -> Result<std::sync::RwLockWriteGuard<'_, Inner>> {
        self.inner
            .write()
            .map_err(|_| KbError::Index("vector index lock poisoned".into()))
    }

    /// Number of vectors.
    pub fn len(&self) -> usize {
        self.read().map(|i| i.keys.len()).unwrap_or(0)
    }

    /// Whether the index is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Inserts or replaces entries (synchronous form of [`VectorIndex::upsert`]).
    pub fn upsert_sync(&self, entries: &[VectorEntry]) -> Result<()> {
        let mut inner = self.write()?;
        for e in entries {
            inner.upsert(e)?;
            inner.pending.push(Op::Upsert(e.key));
        }
        Ok(())
    }

    /// Removes entries (synchronous form of [`VectorIndex::remove`]).
    pub fn remove_sync(&self, keys: &[u64]) -> Result<()> {
        let mut inner = self.write()?;
        for &k in keys {
            if inner.remove(k) {
                inner.pending.push(Op::Remove(k));
            }
        }
        Ok(())
    }

    /// Searches (synchronous form of [`VectorIndex::search`]).
    pub fn search_sync(&self, query: &[f32], filter: &Filter, k: usize) -> Result<Vec<(u64, f32)>> {
        Ok(self.read()?.search(query, filter, k, self.threads))
    }

    /// Appends pending operations to the log, compacting it when mostly dead.
    pub fn flush_sync(&self) -> Result<()> {
        let Some(path) = &self.path else {
            self.write()?.pending.clear();
            return Ok(());
        };
        let mut inner = self.write()?;
        if inner.pending.is_empty() {
            return Ok(());
        }
        let d = inner.dim;
        let live_bytes = (inner.keys.len() * (d * 4 + 32)) as u64;
        let file_bytes = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        let write_entry =
            |w: &mut BufWriter<File>, inner: &Inner, row: usize| -> std::io::Result<()> {
                let (key, v, lang, tags) = inner.entry(row);
                w.write_all(&[1])?;
                w.write_all(&key.to_le_bytes())?;
                write_str(w, lang)?;
                w.write_all(&(tags.len() as u16).to_le_bytes())?;
                for t in tags {
                    write_str(w, t)?;
                }
                for x in v {
                    w.write_all(&x.to_le_bytes())?;
                }
                Ok(())
            };
        if file_bytes > 2 * live_bytes + (1 << 20) {
            let tmp = path.with_extension("log.tmp");
            let mut w = BufWriter::new(File::create(&tmp)?);
            w.write_all(LOG_MAGIC)?;
            w.write_all(&(d as u32).to_le_bytes())?;
            for row in 0..inner.keys.len() {
                write_entry(&mut w, &inner, row)?;
            }
            w.into_inner()
                .map_err(|e| KbError::Io(e.into_error()))?
                .sync_all()?;
            std::fs::rename(&tmp, path)?;
        } else {
            let f = OpenOptions::new().append(true).open(path)?;
            let mut w = BufWriter::new(f);
            for op in &inner.pending {
                match *op {
                    Op::Upsert(key) => {
                        if let Some(&row) = inner.rows.get(&key) {
                            write_entry(&mut w, &inner, row)?;
                        }
                    }
                    Op::Remove(key) => {
                        w.write_all(&[2])?;
                        w.write_all(&key.to_le_bytes())?;
                    }
                }
            }
            w.into_inner()
                .map_err(|e| KbError::Io(e.into_error()))?
                .sync_data()?;
        }
        inner.pending.clear();
        Ok(())
    }
}

fn default_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

#[async_trait]
impl VectorIndex for FlatIndex {
    fn dim(&self) -> usize {
        self.read().map(|i| i.dim).unwrap_or(0)
    }
    async fn upsert(&self, entries: Vec<VectorEntry>) -> Result<()> {
        self.upsert_sync(&entries)
    }
    async fn remove(&self, keys: &[u64]) -> Result<()> {
        self.remove_sync(keys)
    }
    async fn keys(&self) -> Result<HashSet<u64>> {
        Ok(self.read()?.keys.iter().copied().collect())
    }
    async fn search(&self, query: &[f32], filter: &Filter, k: usize) -> Result<Vec<(u64, f32)>> {
        let me = self.clone();
        let query = query.to_vec();
        let filter = filter.clone();
        tokio::task::spawn_blocking(move || me.search_sync(&query, &filter, k))
            .await
            .map_err(|e| KbError::Index(format!("search task: {e}")))?
    }
    async fn flush(&self) -> Result<()> {
        let me = self.clone();
        tokio::task::spawn_blocking(move || me.flush_sync())
            .await
            .map_err(|e| KbError::Index(format!("flush task: {e}")))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(seed: u64, dim: usize) -> Arc<[f32]> {
        // xorshift, deterministic
        let mut x = seed.wrapping_mul(0x9E3779B97F4A7C15) | 1;
        let mut v: Vec<f32> = (0..dim)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x % 2000) as f32 / 1000.0 - 1.0
            })
            .collect();
        let n = v.iter().map(|a| a * a).sum::<f32>().sqrt();
        v.iter_mut().for_each(|a| *a /= n);
        Arc::from(v)
    }

    fn entry(key: u64, dim: usize) -> VectorEntry {
        VectorEntry {
            key,
            vector: unit(key, dim),
            lang: if key.is_multiple_of(2) {
                "en".into()
            } else {
                "zh".into()
            },
            tags: if key.is_multiple_of(3) {
                vec!["t3".into()]
            } else {
                vec![]
            },
        }
    }

    fn brute(
        entries: &[VectorEntry],
        q: &[f32],
        k: usize,
        f: impl Fn(&VectorEntry) -> bool,
    ) -> Vec<u64> {
        let mut s: Vec<(f32, u64)> = entries
            .iter()
            .filter(|e| f(e))
            .map(|e| (dot(q, &e.vector), e.key))
            .collect();
        s.sort_by(|a, b| b.0.total_cmp(&a.0));
        s.into_iter().take(k).map(|x| x.1).collect()
    }

    #[test]
    fn quantized_scan_matches_exact_top_k() {
        let dim = 64;
        let entries: Vec<_> = (0..10_000).map(|k| entry(k, dim)).collect();
        let idx = FlatIndex::in_memory(dim).with_threads(2);
        idx.upsert_sync(&entries).unwrap();
        for seed in 100_000..100_020 {
            let q = unit(seed, dim);
            let got: Vec<u64> = idx
                .search_sync(&q, &Filter::default(), 10)
                .unwrap()
                .iter()
                .map(|x| x.0)
                .collect();
            assert_eq!(got, brute(&entries, &q, 10, |_| true));
            let f = Filter {
                lang: Some("zh".into()),
                tags: vec!["t3".into()],
            };
            let got: Vec<u64> = idx
                .search_sync(&q, &f, 5)
                .unwrap()
                .iter()
                .map(|x| x.0)
                .collect();
            assert_eq!(
                got,
                brute(&entries, &q, 5, |e| e.lang == "zh" && e.tags == ["t3"])
            );
        }
        let none = Filter {
            lang: Some("fr".into()),
            tags: vec![],
        };
        assert!(idx.search_sync(&unit(1, dim), &none, 5).unwrap().is_empty());
    }

    #[test]
    fn persists_upserts_and_removals_and_compacts() {
        let dir = tempfile::tempdir().unwrap();
        let dim = 16;
        {
            let idx = FlatIndex::open(dir.path(), dim).unwrap();
            idx.upsert_sync(&(0..100).map(|k| entry(k, dim)).collect::<Vec<_>>())
                .unwrap();
            idx.flush_sync().unwrap();
            idx.remove_sync(&[5, 6, 7]).unwrap();
            let mut changed = entry(8, dim);
            changed.vector = unit(999, dim);
            idx.upsert_sync(&[changed]).unwrap();
            idx.flush_sync().unwrap();
        }
        let idx = FlatIndex::open(dir.path(), dim).unwrap();
        assert_eq!(idx.len(), 97);
        let top = idx
            .search_sync(&unit(999, dim), &Filter::default(), 1)
            .unwrap();
        assert_eq!(top[0].0, 8);
        assert!((top[0].1 - 1.0).abs() < 1e-5);
        // Churn until compaction happens, then reopen.
        for round in 1..200 {
            idx.upsert_sync(
                &(0..97)
                    .map(|k| entry(k + 1000 * round, dim))
                    .collect::<Vec<_>>(),
            )
            .unwrap();
            idx.flush_sync().unwrap();
            idx.remove_sync(&(0..97).map(|k| k + 1000 * round).collect::<Vec<_>>())
                .unwrap();
            idx.flush_sync().unwrap();
        }
        let size = std::fs::metadata(dir.path().join("vectors.log"))
            .unwrap()
            .len();
        assert!(size < 3 * 97 * (16 * 4 + 32) + (1 << 20) + 1);
        drop(idx);
        let idx = FlatIndex::open(dir.path(), dim).unwrap();
        assert_eq!(idx.len(), 97);
        // Another dimension starts empty.
        drop(idx);
        assert_eq!(FlatIndex::open(dir.path(), 32).unwrap().len(), 0);
    }
}
