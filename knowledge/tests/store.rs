//! The article store against SQLite and PostgreSQL: versions, publish, rollback, diff, filters, conflicts.
#![allow(clippy::unwrap_used)]

mod common;

use switchboard_knowledge::KbError;
use switchboard_knowledge::store::{ArticleFilter, ArticleStore, Draft, Status};

fn draft(title: &str, body: &str, tags: &[&str]) -> Draft {
    Draft {
        title: title.into(),
        body: body.into(),
        lang: None,
        tags: tags.iter().map(|t| t.to_string()).collect(),
    }
}

async fn exercise(store: ArticleStore) {
    // Create: version 1, draft, language detected, tags normalised.
    let a = store
        .create(
            &draft(
                "Returns",
                "You have 30 days.",
                &["Returns", "policy", "returns"],
            ),
            "alice",
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        (a.version, a.status, a.published_version),
        (1, Status::Draft, None)
    );
    assert_eq!(a.lang, "en");
    assert_eq!(a.tags, vec!["returns", "policy"]);
    let zh = store
        .create(&draft("退货", "收货后30天内可以退货。", &[]), "bob", None)
        .await
        .unwrap();
    assert_eq!(zh.lang, "zh");

    // Publish v1, then edit: the edit is v2 and the live version stays 1.
    let a = store.publish(a.id, None, "alice").await.unwrap();
    assert_eq!(
        (a.status, a.published_version),
        (Status::Published, Some(1))
    );
    let a = store
        .update(
            a.id,
            &draft(
                "Returns",
                "You have 45 days.\nKeep the receipt.",
                &["returns"],
            ),
            "bob",
            Some(1),
        )
        .await
        .unwrap();
    assert_eq!(
        (a.version, a.published_version, a.updated_by.as_str()),
        (2, Some(1), "bob")
    );
    assert!(a.has_unpublished_changes());
    assert_eq!(
        store.live(a.id).await.unwrap().unwrap().body,
        "You have 30 days."
    );

    // Stale edit is refused.
    let err = store
        .update(a.id, &draft("Returns", "x", &[]), "carol", Some(1))
        .await
        .unwrap_err();
    assert!(matches!(err, KbError::Conflict(_)), "{err:?}");

    // Versions, newest first, with authors and notes.
    let vs = store.versions(a.id).await.unwrap();
    assert_eq!(vs.iter().map(|v| v.version).collect::<Vec<_>>(), vec![2, 1]);
    assert_eq!(
        (vs[1].author.as_str(), vs[1].note.as_str(), vs[1].published),
        ("alice", "created", true)
    );
    assert_eq!(vs[0].note, "edited");

    // Diff.
    let d = store.diff(a.id, 1, 2).await.unwrap();
    assert!(d.unified.contains("-You have 30 days."), "{}", d.unified);
    assert!(d.unified.contains("+You have 45 days."));
    assert!(
        d.lines
            .iter()
            .any(|l| l.op == "insert" && l.text == "Keep the receipt.")
    );
    assert!(
        d.lines
            .iter()
            .any(|l| l.op == "delete" && l.text == "tags: returns, policy")
    );

    // Publish v2, roll back to v1: v3 has v1's content and goes live at once.
    store.publish(a.id, Some(2), "alice").await.unwrap();
    let a = store.rollback(a.id, 1, "alice").await.unwrap();
    assert_eq!((a.version, a.published_version), (3, Some(3)));
    let v3 = store.get_version(a.id, 3).await.unwrap();
    assert_eq!(v3.body, "You have 30 days.");
    assert_eq!(v3.tags, vec!["returns", "policy"]);
    assert_eq!(v3.note, "rolled back to v1");

    // Rolling back a draft article does not publish it.
    let z = store
        .update(zh.id, &draft("退货", "七天。", &[]), "bob", None)
        .await
        .unwrap();
    let z = store.rollback(z.id, 1, "bob").await.unwrap();
    assert_eq!(
        (z.status, z.version, z.published_version),
        (Status::Draft, 3, None)
    );
    assert!(store.live(z.id).await.unwrap().is_none());

    // Archive keeps history; live() is empty.
    let arch = store.archive(a.id, "alice").await.unwrap();
    assert_eq!(arch.status, Status::Archived);
    assert!(store.live(a.id).await.unwrap().is_none());
    assert_eq!(store.versions(a.id).await.unwrap().len(), 3);

    // Lists and filters.
    let all = store.list(&ArticleFilter::default()).await.unwrap();
    assert_eq!(all.len(), 2);
    let f = |status, lang: Option<&str>, tag: Option<&str>, title: Option<&str>| ArticleFilter {
        status,
        lang: lang.map(str::to_string),
        tag: tag.map(str::to_string),
        title: title.map(str::to_string),
        ..Default::default()
    };
    assert_eq!(
        store
            .list(&f(Some(Status::Archived), None, None, None))
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        store.list(&f(None, Some("zh"), None, None)).await.unwrap()[0].id,
        zh.id
    );
    assert_eq!(
        store
            .list(&f(None, None, Some("policy"), None))
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        store
            .list(&f(None, None, Some("pol"), None))
            .await
            .unwrap()
            .len(),
        0,
        "tag match is exact"
    );
    assert_eq!(
        store
            .list(&f(None, None, None, Some("RETU")))
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        store
            .list(&f(None, None, None, Some("%")))
            .await
            .unwrap()
            .len(),
        0,
        "LIKE wildcards are escaped"
    );

    // all_live: nothing is published any more; publish zh and see it.
    assert!(store.all_live().await.unwrap().is_empty());
    store.publish(zh.id, Some(1), "bob").await.unwrap();
    let live = store.all_live().await.unwrap();
    assert_eq!((live.len(), live[0].version), (1, 1));

    // Errors.
    assert!(matches!(
        store.get_version(a.id, 99).await,
        Err(KbError::NotFound(_))
    ));
    assert!(matches!(
        store.publish(a.id, Some(9), "x").await,
        Err(KbError::NotFound(_))
    ));
    assert!(matches!(
        store.create(&draft("  ", "b", &[]), "x", None).await,
        Err(KbError::Invalid(_))
    ));
    assert!(matches!(
        store
            .create(&draft("t", "b", &["bad\"tag"]), "x", None)
            .await,
        Err(KbError::Invalid(_))
    ));
    assert!(matches!(
        store
            .get("0190f0e0-0000-7000-8000-000000000000".parse().unwrap())
            .await,
        Err(KbError::NotFound(_))
    ));

    // Import key is unique.
    store
        .create(&draft("A", "a", &[]), "x", Some("dir/a.md"))
        .await
        .unwrap();
    assert!(store.find_by_source("dir/a.md").await.unwrap().is_some());
    assert!(matches!(
        store
            .create(&draft("A", "a", &[]), "x", Some("dir/a.md"))
            .await,
        Err(KbError::Conflict(_))
    ));
}

#[tokio::test]
async fn store_on_sqlite() {
    let (pool, _dir) = common::sqlite().await;
    exercise(ArticleStore::new(pool)).await;
}

#[tokio::test]
async fn store_on_postgres() {
    let Some(db) = common::postgres().await else {
        return;
    };
    exercise(ArticleStore::new(db.pool.clone())).await;
    db.drop_db().await;
}
