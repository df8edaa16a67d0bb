//! One behavioural suite for every vector backend: the embedded flat index
//! always, Qdrant when `QDRANT_URL` is set (skipped loudly otherwise;
//! mandatory with `CI=true` only if `QDRANT_URL` is set).
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashSet;
use std::sync::Arc;

use switchboard_knowledge::vector::{Filter, FlatIndex, VectorEntry, VectorIndex, dot};

const DIM: usize = 32;

fn unit(seed: u64) -> Arc<[f32]> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut v: Vec<f32> = (0..DIM)
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

fn entry(key: u64) -> VectorEntry {
    VectorEntry {
        key,
        vector: unit(key),
        lang: if key.is_multiple_of(2) { "en" } else { "zh" }.into(),
        tags: if key.is_multiple_of(3) {
            vec!["billing".into(), "faq".into()]
        } else {
            vec!["faq".into()]
        },
    }
}

async fn conformance(index: &dyn VectorIndex) {
    assert_eq!(index.dim(), DIM);
    let entries: Vec<VectorEntry> = (1..=300).map(entry).collect();
    index.upsert(entries.clone()).await.unwrap();
    index.flush().await.unwrap();
    assert_eq!(
        index.keys().await.unwrap(),
        (1..=300).collect::<HashSet<u64>>()
    );

    // Exact nearest neighbours, best first, cosine scores.
    let q = unit(10_000);
    let mut expected: Vec<(u64, f32)> = entries
        .iter()
        .map(|e| (e.key, dot(&q, &e.vector)))
        .collect();
    expected.sort_by(|a, b| b.1.total_cmp(&a.1));
    let got = index.search(&q, &Filter::default(), 5).await.unwrap();
    assert_eq!(
        got.iter().map(|g| g.0).collect::<Vec<_>>(),
        expected.iter().take(5).map(|e| e.0).collect::<Vec<_>>()
    );
    for (g, e) in got.iter().zip(&expected) {
        assert!((g.1 - e.1).abs() < 1e-3, "score {} vs {}", g.1, e.1);
    }
    // The vector itself is its own best match.
    assert_eq!(
        index
            .search(&unit(42), &Filter::default(), 1)
            .await
            .unwrap()[0]
            .0,
        42
    );

    // Filters: language, all tags.
    let f = Filter {
        lang: Some("zh".into()),
        tags: vec!["billing".into()],
    };
    let got = index.search(&q, &f, 10).await.unwrap();
    assert_eq!(got.len(), 10);
    assert!(got.iter().all(|(k, _)| k % 2 == 1 && k % 3 == 0));
    let none = Filter {
        lang: Some("fr".into()),
        tags: vec![],
    };
    assert!(index.search(&q, &none, 10).await.unwrap().is_empty());

    // Replace and remove.
    let mut moved = entry(7);
    moved.vector = unit(10_000);
    index.upsert(vec![moved]).await.unwrap();
    assert_eq!(
        index.search(&q, &Filter::default(), 1).await.unwrap()[0].0,
        7
    );
    index.remove(&[7, 8, 9, 123_456]).await.unwrap();
    index.flush().await.unwrap();
    let keys = index.keys().await.unwrap();
    assert_eq!(keys.len(), 297);
    assert!(!keys.contains(&7));
    assert_ne!(
        index.search(&q, &Filter::default(), 1).await.unwrap()[0].0,
        7
    );
}

#[tokio::test]
async fn flat_index_conformance() {
    conformance(&FlatIndex::in_memory(DIM)).await;
    let dir = tempfile::tempdir().unwrap();
    conformance(&FlatIndex::open(dir.path(), DIM).unwrap()).await;
    let reopened = FlatIndex::open(dir.path(), DIM).unwrap();
    assert_eq!(reopened.len(), 297);
}

#[cfg(feature = "qdrant")]
#[tokio::test]
async fn qdrant_conformance() {
    use switchboard_knowledge::qdrant::QdrantIndex;
    let Ok(url) = std::env::var("QDRANT_URL") else {
        common::loud(
            "\n!!!!!!!! SKIPPED: QDRANT_URL not set; the Qdrant backend tests did NOT run !!!!!!!!\n",
        );
        return;
    };
    let collection = format!("kb_test_{}", uuid::Uuid::new_v4().simple());
    let index = QdrantIndex::connect(&url, std::env::var("QDRANT_API_KEY").ok(), &collection, DIM)
        .await
        .unwrap();
    conformance(&index).await;
    // Reconnecting to the same collection keeps its points; another dimension is refused.
    let again = QdrantIndex::connect(&url, None, &collection, DIM)
        .await
        .unwrap();
    assert_eq!(again.keys().await.unwrap().len(), 297);
    assert!(
        QdrantIndex::connect(&url, None, &collection, DIM + 1)
            .await
            .is_err()
    );
    again.drop_collection().await.unwrap();

    // The whole knowledge base on Qdrant: publish, search, archive.
    use switchboard_knowledge::embed::{Embedder, HashEmbedder};
    use switchboard_knowledge::{Draft, KbConfig, KnowledgeBase, Query};
    let collection = format!("kb_test_{}", uuid::Uuid::new_v4().simple());
    let vectors = Arc::new(
        QdrantIndex::connect(&url, None, &collection, DIM)
            .await
            .unwrap(),
    );
    let (pool, _db) = common::sqlite().await;
    let embedder: Arc<dyn Embedder> = Arc::new(HashEmbedder::new(DIM));
    let kb = KnowledgeBase::open_with_vectors(
        switchboard_knowledge::ArticleStore::new(pool),
        embedder,
        vectors.clone(),
        KbConfig::default(),
    )
    .await
    .unwrap();
    let d = Draft {
        title: "Gift cards".into(),
        body: "Gift cards never expire.".into(),
        lang: None,
        tags: vec![],
    };
    let a = kb.create(&d, "t").await.unwrap();
    kb.publish(a.id, None, "t").await.unwrap();
    let q = Query {
        text: "gift cards expire".into(),
        k: 3,
        ..Default::default()
    };
    let hits = kb.search(&q).await.unwrap();
    assert_eq!((hits[0].article_id, hits[0].vector_rank), (a.id, Some(1)));
    kb.archive(a.id, "t").await.unwrap();
    assert!(kb.search(&q).await.unwrap().is_empty());
    assert!(vectors.keys().await.unwrap().is_empty());
    drop(kb);
    Arc::try_unwrap(vectors)
        .unwrap()
        .drop_collection()
        .await
        .unwrap();
}
