//! The knowledge base facade: publishing, incremental re-indexing, visibility
//! rules, restart and repair, import — with the deterministic hash embedder,
//! so these run without model files.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use switchboard_knowledge::embed::{Embedder, HashEmbedder};
use switchboard_knowledge::import::ImportOptions;
use switchboard_knowledge::kb::{KbConfig, KnowledgeBase, Query};
use switchboard_knowledge::store::{ArticleStore, Draft};

fn embedder() -> Arc<dyn Embedder> {
    Arc::new(HashEmbedder::new(64))
}

fn draft(title: &str, body: &str) -> Draft {
    Draft {
        title: title.into(),
        body: body.into(),
        lang: None,
        tags: vec!["help".into()],
    }
}

fn q(text: &str) -> Query {
    Query {
        text: text.into(),
        k: 5,
        ..Default::default()
    }
}

const BODY: &str = "# Delivery\nParcels arrive in 3 days.\n\n# Costs\nShipping costs 5 dollars.\n\n# Tracking\nA tracking number is e-mailed.";

#[tokio::test]
async fn publishing_an_edit_embeds_only_changed_chunks() {
    let (pool, _db) = common::sqlite().await;
    let kb = KnowledgeBase::open(ArticleStore::new(pool), embedder(), KbConfig::default())
        .await
        .unwrap();
    let a = kb.create(&draft("Shipping", BODY), "alice").await.unwrap();
    let (_, s) = kb.publish(a.id, None, "alice").await.unwrap();
    assert_eq!((s.added, s.removed, s.kept, s.embedded), (3, 0, 0, 3));
    let model_texts = || kb.embedder().stats().texts.load(Ordering::Relaxed);
    assert_eq!(model_texts(), 3);

    let edited = BODY.replace("5 dollars", "7 dollars");
    kb.update(a.id, &draft("Shipping", &edited), "bob", None)
        .await
        .unwrap();
    let (_, s) = kb.publish(a.id, None, "bob").await.unwrap();
    assert_eq!((s.added, s.removed, s.kept, s.embedded), (1, 1, 2, 1));
    assert_eq!(
        model_texts(),
        4,
        "only the changed section reached the model"
    );

    // Publishing the same content again touches nothing.
    let (_, s) = kb.publish(a.id, None, "bob").await.unwrap();
    assert_eq!((s.added, s.removed, s.embedded), (0, 0, 0));

    // Rolling back to v1: its chunks are in the cache, nothing is embedded.
    let (a2, s) = kb.rollback(a.id, 1, "alice").await.unwrap();
    assert_eq!((a2.version, s.added, s.removed, s.embedded), (3, 1, 1, 0));
    assert_eq!(model_texts(), 4);
    let hits = kb.search(&q("how much does shipping cost")).await.unwrap();
    assert_eq!(hits[0].version, 3);
    assert!(hits.iter().any(|p| p.text.contains("5 dollars")));
    assert!(hits.iter().all(|p| !p.text.contains("7 dollars")));
}

#[tokio::test]
async fn search_never_returns_drafts_or_archived_text() {
    let (pool, _db) = common::sqlite().await;
    let kb = KnowledgeBase::open(ArticleStore::new(pool), embedder(), KbConfig::default())
        .await
        .unwrap();
    let a = kb
        .create(
            &draft("Warranty", "Furniture has a two year warranty."),
            "alice",
        )
        .await
        .unwrap();
    assert!(
        kb.search(&q("warranty")).await.unwrap().is_empty(),
        "draft is not searchable"
    );
    kb.publish(a.id, None, "alice").await.unwrap();
    let hits = kb.search(&q("warranty")).await.unwrap();
    assert_eq!(
        (hits.len(), hits[0].article_id, hits[0].version),
        (1, a.id, 1)
    );
    assert_eq!(hits[0].title, "Warranty");

    // An unpublished edit is invisible; the live text keeps being served.
    kb.update(
        a.id,
        &draft("Warranty", "Mattresses: zebracorn coverage for ten years."),
        "bob",
        None,
    )
    .await
    .unwrap();
    let hits = kb.search(&q("zebracorn")).await.unwrap();
    assert!(
        hits.iter()
            .all(|p| !p.text.contains("zebracorn") && p.version == 1)
    );
    assert!(
        kb.search(&q("two year warranty")).await.unwrap()[0]
            .text
            .contains("two year")
    );

    // Archived: gone.
    kb.archive(a.id, "alice").await.unwrap();
    assert!(kb.search(&q("warranty")).await.unwrap().is_empty());
    assert_eq!(kb.passages(), 0);
    // Unpublish takes a published article out too.
    let b = kb
        .create(&draft("Hours", "Open from nine to six."), "alice")
        .await
        .unwrap();
    kb.publish(b.id, None, "alice").await.unwrap();
    assert_eq!(kb.search(&q("open nine")).await.unwrap().len(), 1);
    kb.unpublish(b.id, "alice").await.unwrap();
    assert!(kb.search(&q("open nine")).await.unwrap().is_empty());
}

#[tokio::test]
async fn filters_by_language_and_tags() {
    let (pool, _db) = common::sqlite().await;
    let kb = KnowledgeBase::open(ArticleStore::new(pool), embedder(), KbConfig::default())
        .await
        .unwrap();
    let mk = |title: &str, body: &str, lang: &str, tags: &[&str]| Draft {
        title: title.into(),
        body: body.into(),
        lang: Some(lang.into()),
        tags: tags.iter().map(|t| t.to_string()).collect(),
    };
    for d in [
        mk("Returns", "Return within 30 days.", "en", &["returns"]),
        mk("退货", "30天内可以退货。", "zh", &["returns"]),
        mk("Shipping", "Delivery in 30 hours.", "en", &["shipping"]),
    ] {
        let a = kb.create(&d, "x").await.unwrap();
        kb.publish(a.id, None, "x").await.unwrap();
    }
    let search = |lang: Option<&str>, tags: &[&str]| {
        let query = Query {
            text: "30".into(),
            lang: lang.map(str::to_string),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            k: 10,
        };
        let kb = &kb;
        async move {
            let mut titles: Vec<String> = kb
                .search(&query)
                .await
                .unwrap()
                .into_iter()
                .map(|p| p.title)
                .collect();
            titles.sort();
            titles
        }
    };
    assert_eq!(search(None, &[]).await, vec!["Returns", "Shipping", "退货"]);
    assert_eq!(search(Some("zh"), &[]).await, vec!["退货"]);
    assert_eq!(search(None, &["returns"]).await, vec!["Returns", "退货"]);
    assert_eq!(search(Some("en"), &["returns"]).await, vec!["Returns"]);
    assert!(search(Some("fr"), &[]).await.is_empty());
}

#[tokio::test]
async fn restart_reuses_index_and_cache_and_repairs_a_lost_index() {
    let (pool, _db) = common::sqlite().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = KbConfig {
        index_dir: Some(dir.path().to_path_buf()),
        ..Default::default()
    };
    {
        let kb = KnowledgeBase::open(ArticleStore::new(pool.clone()), embedder(), cfg.clone())
            .await
            .unwrap();
        let a = kb.create(&draft("Shipping", BODY), "alice").await.unwrap();
        kb.publish(a.id, None, "alice").await.unwrap();
    }
    // Reopen: index is current, nothing to add or embed.
    {
        let kb = KnowledgeBase::open(ArticleStore::new(pool.clone()), embedder(), cfg.clone())
            .await
            .unwrap();
        assert_eq!(kb.embedder().stats().texts.load(Ordering::Relaxed), 0);
        assert_eq!(kb.passages(), 3);
        assert_eq!(
            kb.search(&q("tracking number")).await.unwrap()[0].heading,
            "Tracking"
        );
    }
    // Lose both indexes (keep the embedding cache): repaired on open without the model.
    std::fs::remove_dir_all(dir.path().join("lexical")).unwrap();
    std::fs::remove_dir_all(dir.path().join("vectors")).unwrap();
    {
        let kb = KnowledgeBase::open(ArticleStore::new(pool.clone()), embedder(), cfg.clone())
            .await
            .unwrap();
        assert_eq!(kb.embedder().stats().texts.load(Ordering::Relaxed), 0);
        assert_eq!(
            kb.search(&q("tracking number")).await.unwrap()[0].heading,
            "Tracking"
        );
        let s = kb.rebuild_index().await.unwrap();
        assert_eq!((s.added, s.embedded), (3, 0));
    }
    // Articles changed while the process was down (another node published): picked up on open.
    let store = ArticleStore::new(pool.clone());
    let a = store.list(&Default::default()).await.unwrap().remove(0);
    store
        .update(
            a.id,
            &draft("Shipping", "# Delivery\nParcels arrive by drone."),
            "bob",
            None,
        )
        .await
        .unwrap();
    store.publish(a.id, None, "bob").await.unwrap();
    let kb = KnowledgeBase::open(ArticleStore::new(pool), embedder(), cfg)
        .await
        .unwrap();
    assert_eq!(kb.embedder().stats().texts.load(Ordering::Relaxed), 1);
    assert_eq!(kb.passages(), 1);
    assert!(
        kb.search(&q("drone")).await.unwrap()[0]
            .text
            .contains("drone")
    );
}

#[tokio::test]
async fn import_folder_is_idempotent_and_reports_progress() {
    let (pool, _db) = common::sqlite().await;
    let kb = KnowledgeBase::open(ArticleStore::new(pool), embedder(), KbConfig::default())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(common::fixtures()).unwrap() {
        let p = entry.unwrap().path();
        std::fs::copy(&p, dir.path().join(p.file_name().unwrap())).unwrap();
    }
    std::fs::write(dir.path().join("binary.txt"), [0xff, 0xfe, 0x00]).unwrap();
    std::fs::write(dir.path().join("ignored.png"), b"x").unwrap();
    let opts = ImportOptions {
        publish: true,
        ..Default::default()
    };
    let mut seen = Vec::new();
    let report = kb
        .import_dir(dir.path(), "importer", &opts, &mut |done, total, _p| {
            seen.push((done, total))
        })
        .await
        .unwrap();
    let n = common::fixtures().read_dir().unwrap().count();
    assert_eq!(report.created.len(), n);
    assert_eq!(report.skipped.len(), 1, "{:?}", report.skipped);
    assert_eq!(seen.len(), n + 1);
    assert_eq!(seen.last(), Some(&(n + 1, n + 1)));
    let zh = kb.list(&Default::default()).await.unwrap();
    assert!(zh.iter().any(|a| a.lang == "zh" && a.title == "退货与退款"));

    // Second import: nothing new. Change one file: one new version.
    let report = kb
        .import_dir(dir.path(), "importer", &opts, &mut |_, _, _| {})
        .await
        .unwrap();
    assert_eq!(
        (report.created.len(), report.updated.len(), report.unchanged),
        (0, 0, n)
    );
    let before = kb.embedder().stats().texts.load(Ordering::Relaxed);
    let hours = std::fs::read_to_string(dir.path().join("hours.md")).unwrap();
    std::fs::write(dir.path().join("hours.md"), hours.replace("22:00", "23:00")).unwrap();
    let report = kb
        .import_dir(dir.path(), "importer", &opts, &mut |_, _, _| {})
        .await
        .unwrap();
    assert_eq!(report.updated.len(), 1);
    assert_eq!(
        kb.embedder().stats().texts.load(Ordering::Relaxed) - before,
        1
    );
    let hits = kb.search(&q("phone support line hours")).await.unwrap();
    assert!(hits.iter().any(|p| p.text.contains("23:00")));
    assert!(hits.iter().all(|p| !p.text.contains("22:00")));
}

#[tokio::test]
async fn import_uploaded_files() {
    let (pool, _db) = common::sqlite().await;
    let kb = KnowledgeBase::open(ArticleStore::new(pool), embedder(), KbConfig::default())
        .await
        .unwrap();
    let files = vec![
        (
            "faq/gift-cards.md".to_string(),
            "# Gift cards\n\nGift cards never expire.".to_string(),
        ),
        ("tool.exe".to_string(), "MZ".to_string()),
        (
            "empty-title.md".to_string(),
            "---\ntitle: \n---\nBody only.".to_string(),
        ),
    ];
    let opts = ImportOptions {
        publish: true,
        ..Default::default()
    };
    let report = kb.import_files(&files, "uploader", &opts).await.unwrap();
    assert_eq!(report.created.len(), 2);
    assert_eq!(report.skipped.len(), 1);
    assert_eq!(report.skipped[0].0, "tool.exe");
    let hits = kb.search(&q("do gift cards expire")).await.unwrap();
    assert_eq!(hits[0].title, "Gift cards");
    let titles: Vec<String> = kb
        .list(&Default::default())
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.title)
        .collect();
    assert!(titles.contains(&"empty title".to_string()), "{titles:?}");
}
