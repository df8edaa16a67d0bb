//! Recall@3 on the product's evaluation set (`nlu/eval`: the Northwind Mobile
//! knowledge base and its answerable questions, English and Chinese), with
//! both embedding models. Prints the figures; fails below the floors measured
//! when this test was written. Skipped loudly when a model is not prepared.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::PathBuf;
use std::sync::Arc;

use switchboard_knowledge::embed::{BertEmbedder, Embedder};
use switchboard_knowledge::import::ImportOptions;
use switchboard_knowledge::{ArticleStore, KbConfig, KnowledgeBase, Query};

fn eval_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../nlu/eval")
}

/// (question, language, expected article file stem) of the answerable questions.
fn questions() -> Vec<(String, String, String)> {
    let text = std::fs::read_to_string(eval_dir().join("questions.toml")).unwrap();
    let doc: toml::Value = toml::from_str(&text).unwrap();
    doc["question"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|q| q["kind"].as_str() == Some("answerable"))
        .map(|q| {
            let turns = q["turns"].as_array().unwrap();
            (
                turns.last().unwrap().as_str().unwrap().to_string(),
                q["lang"].as_str().unwrap().to_string(),
                q["article"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Recall@3 per language: (hits, total) for en and zh.
async fn recall(model: Arc<dyn Embedder>) -> [(usize, usize); 2] {
    let (pool, _db) = common::sqlite().await;
    let kb = KnowledgeBase::open(ArticleStore::new(pool), model, KbConfig::default())
        .await
        .unwrap();
    let opts = ImportOptions {
        publish: true,
        ..Default::default()
    };
    let report = kb
        .import_dir(&eval_dir().join("kb"), "eval", &opts, &mut |_, _, _| {})
        .await
        .unwrap();
    assert!(report.skipped.is_empty(), "{:?}", report.skipped);
    let mut out = [(0, 0); 2];
    for (text, lang, article) in questions() {
        let hits = kb
            .search(&Query {
                text: text.clone(),
                k: 3,
                ..Default::default()
            })
            .await
            .unwrap();
        let mut sources = Vec::new();
        for p in &hits {
            let (a, _) = kb.get(p.article_id).await.unwrap();
            sources.push(
                a.source
                    .unwrap_or_default()
                    .trim_end_matches(".md")
                    .to_string(),
            );
        }
        let slot = usize::from(lang == "zh");
        out[slot].1 += 1;
        if sources.contains(&article) {
            out[slot].0 += 1;
        } else {
            println!("miss [{lang}] {text} -> expected {article}, got {sources:?}");
        }
    }
    out
}

fn report(name: &str, r: [(usize, usize); 2]) -> f64 {
    let total = (r[0].0 + r[1].0) as f64 / (r[0].1 + r[1].1) as f64;
    common::loud(&format!(
        "recall@3 {name}: en {}/{}  zh {}/{}  all {:.3}",
        r[0].0, r[0].1, r[1].0, r[1].1, total
    ));
    total
}

#[tokio::test]
async fn recall_at_3_on_the_eval_set() {
    if !eval_dir().join("questions.toml").exists() {
        common::loud(
            "\n!!!!!!!! SKIPPED: nlu/eval not present; eval recall not measured !!!!!!!!\n",
        );
        return;
    }
    if let Some(dir) = common::minilm_dir() {
        let model: Arc<dyn Embedder> = Arc::new(BertEmbedder::from_dir(&dir).unwrap());
        let r = report("all-MiniLM-L6-v2", recall(model).await);
        assert!(
            r >= 0.95,
            "recall@3 with MiniLM fell to {r} (measured 0.983)"
        );
    }
    match switchboard_models::Models::from_env()
        .dir(switchboard_models::ModelId::E5SmallMultilingual)
    {
        Ok(dir) => {
            let model: Arc<dyn Embedder> = Arc::new(
                BertEmbedder::from_dir(&dir)
                    .unwrap()
                    .with_prefixes("query: ", "passage: ")
                    .with_cross_lingual(true),
            );
            let r = report("multilingual-e5-small", recall(model).await);
            assert!(r >= 0.95, "recall@3 with e5 fell to {r} (measured 1.000)");
        }
        Err(_) => common::loud(
            "\n!!!!!!!! SKIPPED: multilingual-e5-small not prepared; its eval recall not measured !!!!!!!!\n",
        ),
    }
}
