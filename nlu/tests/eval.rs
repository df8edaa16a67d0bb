//! Runs the evaluation (eval/questions.toml over eval/kb) in extraction mode
//! with the built-in keyword index, and fails when any figure drops below
//! eval/thresholds.toml.

use std::path::Path;
use std::sync::Arc;

use switchboard_nlu::eval::{QuestionSet, Thresholds, run};
use switchboard_nlu::keyword::{KeywordIndex, load_dir};
use switchboard_nlu::{Agent, AgentConfig};

#[tokio::test]
async fn extraction_mode_meets_the_thresholds() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("eval");
    let set: QuestionSet =
        toml::from_str(&std::fs::read_to_string(root.join("questions.toml")).unwrap()).unwrap();
    let thresholds: Thresholds =
        toml::from_str(&std::fs::read_to_string(root.join("thresholds.toml")).unwrap()).unwrap();
    assert!(
        set.question.len() >= 80,
        "the question set shrank to {}",
        set.question.len()
    );
    let index = Arc::new(KeywordIndex::new(&load_dir(&root.join("kb")).unwrap()));
    let agent = Agent::new(
        AgentConfig {
            company: "Northwind Mobile".into(),
            ..AgentConfig::default()
        },
        index,
        None,
    );
    let report = run(&agent, &set.question).await;
    let failing: Vec<String> = report
        .cases
        .iter()
        .filter(|c| !c.passed)
        .map(|c| {
            format!(
                "{}: {} -> {:?} {:?}",
                c.id, c.outcome.trace.text, c.outcome.trace.decision, c.outcome.reply
            )
        })
        .collect();
    println!("{}", report.render());
    let failures = report.failures(&thresholds);
    assert!(
        failures.is_empty(),
        "{failures:#?}\nfailing cases:\n{}",
        failing.join("\n")
    );
    assert_eq!(report.overall.unsupported_answers, 0);
}

#[path = "support/knowledge.rs"]
mod knowledge;

/// The same evaluation against the product's knowledge base (hybrid BM25 +
/// MiniLM retrieval). Needs MiniLM in the model cache; skips loudly without it.
#[tokio::test]
async fn extraction_mode_meets_the_thresholds_with_the_knowledge_base() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("eval");
    let kb = match knowledge::open(&root.join("kb")).await {
        Ok(kb) => kb,
        Err(e) => {
            eprintln!("SKIPPED knowledge-base evaluation: {e}");
            return;
        }
    };
    let set: QuestionSet =
        toml::from_str(&std::fs::read_to_string(root.join("questions.toml")).unwrap()).unwrap();
    let thresholds: Thresholds =
        toml::from_str(&std::fs::read_to_string(root.join("thresholds.toml")).unwrap()).unwrap();
    let agent = Agent::new(
        AgentConfig {
            company: "Northwind Mobile".into(),
            ..AgentConfig::default()
        },
        Arc::new(kb),
        None,
    );
    let report = run(&agent, &set.question).await;
    println!("{}", report.render());
    let failures = report.failures(&thresholds);
    assert!(failures.is_empty(), "{failures:#?}");
}
