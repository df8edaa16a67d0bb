//! Retrieval quality with the real model (all-MiniLM-L6-v2 via candle) over the
//! bilingual fixture knowledge base: English and Chinese questions must find
//! their article in the top 3. Needs `SWITCHBOARD_MINILM_DIR` (skipped loudly
//! without it; mandatory with `CI=true`).
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use switchboard_knowledge::embed::{BertEmbedder, Embedder};
use switchboard_knowledge::import::ImportOptions;
use switchboard_knowledge::kb::{KbConfig, KnowledgeBase, Query};
use switchboard_knowledge::store::ArticleStore;
use switchboard_knowledge::vector::dot;

const QUESTIONS: &[(&str, &str)] = &[
    (
        "How long does standard delivery take?",
        "Shipping and delivery",
    ),
    (
        "Is shipping free if I spend 70 dollars?",
        "Shipping and delivery",
    ),
    (
        "Can I send back a chair I bought three weeks ago?",
        "Returns and refunds",
    ),
    ("When will I get my money back?", "Returns and refunds"),
    ("Are you open on Saturday?", "Opening hours"),
    (
        "I forgot my password and can't log in",
        "Resetting your password",
    ),
    ("My account is locked", "Resetting your password"),
    ("The leg of my table broke, is it covered?", "Warranty"),
    (
        "How much does Plus cost per year?",
        "Membership plans and prices",
    ),
    ("Can I pay with Alipay?", "Payment methods"),
    ("Can I pay in installments?", "Payment methods"),
    ("退货期限是多久？", "退货与退款"),
    ("多久能收到退款", "退货与退款"),
    ("忘记密码怎么办", "如何重置密码"),
    ("运费多少钱", "配送说明"),
    ("加急配送要多久", "配送说明"),
    ("你们的门店在哪里", "门店地址"),
    // Cross-language through shared tokens: a Chinese question naming a brand finds the English article.
    ("可以用PayPal付款吗？", "Payment methods"),
];

#[tokio::test]
async fn bilingual_questions_find_their_article_in_top_3() {
    let Some(dir) = common::minilm_dir() else {
        return;
    };
    let model: Arc<dyn Embedder> = Arc::new(BertEmbedder::from_dir(&dir).unwrap());
    // The model itself: similar sentences are closer than unrelated ones.
    let v = model
        .embed_documents(&[
            "How do I reset my password?",
            "I forgot my password",
            "Delivery takes 3 days",
        ])
        .unwrap();
    assert!((dot(&v[0], &v[0]) - 1.0).abs() < 1e-4, "unit length");
    assert!(dot(&v[0], &v[1]) > dot(&v[0], &v[2]) + 0.2);

    let (pool, _db) = common::sqlite().await;
    let kb = KnowledgeBase::open(ArticleStore::new(pool), model, KbConfig::default())
        .await
        .unwrap();
    let opts = ImportOptions {
        publish: true,
        ..Default::default()
    };
    kb.import_dir(&common::fixtures(), "test", &opts, &mut |_, _, _| {})
        .await
        .unwrap();

    let mut misses = Vec::new();
    for (question, expected) in QUESTIONS {
        let hits = kb
            .search(&Query {
                text: question.to_string(),
                k: 3,
                ..Default::default()
            })
            .await
            .unwrap();
        let titles: Vec<&str> = hits.iter().map(|p| p.title.as_str()).collect();
        println!("{question} -> {titles:?}");
        if !titles.contains(expected) {
            misses.push(format!("{question}: expected {expected}, got {titles:?}"));
        }
    }
    assert!(misses.is_empty(), "recall@3 misses:\n{}", misses.join("\n"));

    // Language and tag filters narrow the same question.
    let zh_only = kb
        .search(&Query {
            text: "30 days return".into(),
            lang: Some("zh".into()),
            k: 3,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(!zh_only.is_empty() && zh_only.iter().all(|p| p.lang == "zh"));
}
