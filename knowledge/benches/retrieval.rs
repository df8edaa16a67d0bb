//! Retrieval latency with 100 000 published passages, query embedding included.
//!
//! `cargo bench -p switchboard-knowledge --bench retrieval`
//! (queries are embedded by all-MiniLM-L6-v2 from the prepared model cache or
//! `SWITCHBOARD_MINILM_DIR`; `KB_BENCH_MODEL=e5` uses multilingual-e5-small;
//! `KB_BENCH_CHUNKS` changes the corpus size).
//!
//! The corpus is 20 000 articles × 5 sections, stored in SQLite and indexed by
//! the real `KnowledgeBase` (BM25 + flat vector index + fusion). Passage
//! vectors are synthetic (a brute-force scan costs the same whatever the
//! vectors mean, and embedding 100k passages would take the better part of an
//! hour on two cores); query vectors come from the model. Prints p50/p90/p99.

use std::sync::Arc;
use std::time::{Duration, Instant};

use switchboard_knowledge::Result;
use switchboard_knowledge::embed::{BertEmbedder, Embedder, HashEmbedder};
use switchboard_knowledge::kb::{KbConfig, KnowledgeBase, Query};
use switchboard_knowledge::store::{ArticleStore, Draft};

/// Documents get cheap synthetic vectors; queries go to the real model.
#[derive(Debug)]
struct BenchEmbedder {
    query: Arc<dyn Embedder>,
    docs: HashEmbedder,
}

impl Embedder for BenchEmbedder {
    fn model_id(&self) -> &str {
        "bench"
    }
    fn dim(&self) -> usize {
        self.query.dim()
    }
    fn embed_documents(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        self.docs.embed_documents(texts)
    }
    fn embed_query(&self, text: &str) -> Result<Vec<f32>> {
        self.query.embed_query(text)
    }
}

const WORDS: &[&str] = &[
    "delivery",
    "parcel",
    "refund",
    "return",
    "warranty",
    "password",
    "account",
    "store",
    "hours",
    "payment",
    "card",
    "installment",
    "membership",
    "price",
    "discount",
    "order",
    "invoice",
    "assembly",
    "sofa",
    "table",
    "chair",
    "mattress",
    "lamp",
    "shelf",
    "kitchen",
    "garden",
    "express",
    "standard",
    "tracking",
    "courier",
    "address",
    "phone",
    "email",
    "locked",
    "reset",
    "days",
    "weeks",
    "free",
    "cost",
    "plan",
    "yearly",
    "monthly",
    "customer",
    "service",
    "repair",
    "配送",
    "退货",
    "退款",
    "密码",
    "门店",
    "营业",
    "时间",
    "会员",
    "价格",
    "支付",
    "保修",
    "发票",
];

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    /// A topic word one time in four, else one of 20 000 filler words drawn
    /// with a Zipf-like skew (real text has a long vocabulary tail; a tiny
    /// vocabulary would make every term match every passage).
    fn word(&mut self) -> String {
        if self.next().is_multiple_of(4) {
            return WORDS[(self.next() % WORDS.len() as u64) as usize].to_string();
        }
        let r = (self.next() % 1_000_000) as f64 / 1_000_000.0;
        format!("w{}", (r * r * r * 20_000.0) as u64)
    }
}

fn sentence(rng: &mut Rng, n: usize) -> String {
    let mut s: Vec<String> = (0..n).map(|_| rng.word()).collect();
    s.push("42".into());
    format!("{}.", s.join(" "))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    let chunks: usize = std::env::var("KB_BENCH_CHUNKS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    // KB_BENCH_MODEL=e5 measures multilingual-e5-small instead of all-MiniLM-L6-v2.
    let e5 = std::env::var("KB_BENCH_MODEL").is_ok_and(|m| m == "e5");
    let dir = if e5 {
        switchboard_models::Models::from_env()
            .dir(switchboard_models::ModelId::E5SmallMultilingual)
            .ok()
    } else {
        std::env::var_os("SWITCHBOARD_MINILM_DIR")
            .map(std::path::PathBuf::from)
            .or_else(|| {
                switchboard_models::Models::from_env()
                    .dir(switchboard_models::ModelId::MiniLmL6V2)
                    .ok()
            })
    };
    let query_model: Arc<dyn Embedder> = match dir {
        Some(dir) if e5 => Arc::new(
            BertEmbedder::from_dir(&dir)
                .expect("load multilingual-e5-small")
                .with_prefixes("query: ", "passage: ")
                .with_cross_lingual(true),
        ),
        Some(dir) => Arc::new(BertEmbedder::from_dir(&dir).expect("load all-MiniLM-L6-v2")),
        None => {
            eprintln!(
                "!!!!!!!! all-MiniLM-L6-v2 not prepared (run `cargo run -p switchboard-models --release -- fetch`): queries use the hash embedder, so query embedding is NOT in these figures !!!!!!!!"
            );
            Arc::new(HashEmbedder::new(384))
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        sqlx::any::install_default_drivers();
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("kb.sqlite").display());
        // One connection without fsync: building the corpus is not what is measured.
        let pool = sqlx::any::AnyPoolOptions::new()
            .max_connections(1)
            .after_connect(|conn, _| {
                Box::pin(async move {
                    use sqlx::Executor;
                    conn.execute("PRAGMA journal_mode = WAL").await?;
                    conn.execute("PRAGMA synchronous = OFF").await?;
                    Ok(())
                })
            })
            .connect(&url)
            .await
            .expect("sqlite");
        sqlx::raw_sql(include_str!("../../gateway/migrations/sqlite/0002_knowledge.sql"))
            .execute(&pool)
            .await
            .expect("schema");
        let store = ArticleStore::new(pool);
        let t = Instant::now();
        let mut rng = Rng(0x5eed);
        let articles = chunks / 5;
        for a in 0..articles {
            let mut body = String::new();
            for s in 0..5 {
                body.push_str(&format!("# Section {s} {}\n{} {}\n\n", rng.word(), sentence(&mut rng, 14), sentence(&mut rng, 14)));
            }
            let lang = if a % 4 == 0 { "zh" } else { "en" };
            let d = Draft {
                title: format!("Article {a} about {} and {}", rng.word(), rng.word()),
                body,
                lang: Some(lang.into()),
                tags: vec![format!("t{}", a % 20)],
            };
            let art = store.create(&d, "bench", None).await.expect("create");
            store.publish(art.id, None, "bench").await.expect("publish");
        }
        eprintln!("stored {articles} articles in {:.1?}", t.elapsed());
        let t = Instant::now();
        let embedder: Arc<dyn Embedder> = Arc::new(BenchEmbedder {
            query: query_model.clone(),
            docs: HashEmbedder::new(384),
        });
        let kb = KnowledgeBase::open(store, embedder, KbConfig::default()).await.expect("open");
        eprintln!("indexed {} passages in {:.1?}", kb.passages(), t.elapsed());

        let questions = [
            "How long does express delivery take?",
            "I want a refund for a broken chair",
            "reset my account password",
            "what are the store opening hours on sunday",
            "can I pay the sofa in monthly installments",
            "退货以后多久退款",
            "会员价格是多少",
            "does the warranty cover the mattress",
        ];
        for q in &questions {
            kb.search(&Query { text: q.to_string(), k: 5, ..Default::default() }).await.expect("warm-up");
        }
        let mut embed_only = Vec::new();
        for i in 0..400 {
            let t = Instant::now();
            query_model.embed_query(questions[i % questions.len()]).expect("embed");
            embed_only.push(t.elapsed());
        }
        let mut times = Vec::new();
        let mut filtered = Vec::new();
        for i in 0..400 {
            let text = questions[i % questions.len()].to_string();
            let t = Instant::now();
            let hits = kb.search(&Query { text: text.clone(), k: 5, ..Default::default() }).await.expect("search");
            times.push(t.elapsed());
            assert!(!hits.is_empty());
            let t = Instant::now();
            kb.search(&Query { text, k: 5, lang: Some("en".into()), tags: vec![format!("t{}", i % 20)] })
                .await
                .expect("search");
            filtered.push(t.elapsed());
        }
        for (name, mut v) in [("query embedding only", embed_only), ("unfiltered", times), ("lang+tag filter", filtered)] {
            v.sort();
            println!(
                "{name:>22} over {} passages (k=5; search figures include query embedding): p50 {:.2?}  p90 {:.2?}  p99 {:.2?}  max {:.2?}  ({} queries, {} cores)",
                kb.passages(),
                percentile(&v, 0.5),
                percentile(&v, 0.9),
                percentile(&v, 0.99),
                v[v.len() - 1],
                v.len(),
                std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            );
        }
    });
}
