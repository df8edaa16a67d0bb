//! The evaluation command:
//!
//! ```text
//! cargo run -p switchboard-nlu --release --example eval [-- --llm local|openai] [--verbose]
//! ```
//!
//! Runs eval/questions.toml against the sample knowledge base eval/kb and
//! prints, per language, containment, wrong-fact answers, escalation recall
//! and skill accuracy, out-of-scope handling, injection resistance, retrieval
//! recall@3 and turn latency. Exits 1 when a figure is below
//! eval/thresholds.toml.
//!
//! Retrieval: the built-in keyword index by default; `--retriever knowledge`
//! uses the product's knowledge base (switchboard-knowledge: SQLite store,
//! MiniLM embeddings from the model cache, BM25 + vector fusion) with the
//! same articles imported.
//!
//! Default: extraction mode (no model). `--llm local` phrases answers with the
//! local SmolLM2 model from the model cache (`switchboard-models fetch`);
//! `--llm openai` uses `SWITCHBOARD_LLM_BASE_URL`, `SWITCHBOARD_LLM_MODEL`,
//! `SWITCHBOARD_LLM_API_KEY`.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use switchboard_models::{ModelId, Models};
use switchboard_nlu::eval::{QuestionSet, Thresholds, run};
use switchboard_nlu::keyword::{KeywordIndex, load_dir};
use switchboard_nlu::llm::Llm;
use switchboard_nlu::llm::local::LocalLlm;
use switchboard_nlu::llm::openai::{OpenAiConfig, OpenAiLlm};
use switchboard_nlu::retrieve::Retriever;
use switchboard_nlu::{Agent, AgentConfig, GenerationMode};

fn fail(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("eval: {msg}");
    ExitCode::from(2)
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let verbose = args.iter().any(|a| a == "--verbose" || a == "-v");
    let llm_kind = args
        .iter()
        .position(|a| a == "--llm")
        .and_then(|i| args.get(i + 1))
        .cloned();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("eval");
    let read = |name: &str| std::fs::read_to_string(root.join(name));
    let set: QuestionSet = match read("questions.toml")
        .map_err(|e| e.to_string())
        .and_then(|t| toml::from_str(&t).map_err(|e| e.to_string()))
    {
        Ok(s) => s,
        Err(e) => return fail(format!("questions.toml: {e}")),
    };
    let thresholds: Thresholds = match read("thresholds.toml")
        .map_err(|e| e.to_string())
        .and_then(|t| toml::from_str(&t).map_err(|e| e.to_string()))
    {
        Ok(t) => t,
        Err(e) => return fail(format!("thresholds.toml: {e}")),
    };
    let articles = match load_dir(&root.join("kb")) {
        Ok(a) => a,
        Err(e) => return fail(e),
    };
    let retriever_kind = args
        .iter()
        .position(|a| a == "--retriever")
        .and_then(|i| args.get(i + 1))
        .cloned();
    let retriever: Arc<dyn Retriever> = match retriever_kind.as_deref() {
        None | Some("keyword") => Arc::new(KeywordIndex::new(&articles)),
        Some("knowledge") => match knowledge::open(&root.join("kb")).await {
            Ok(r) => Arc::new(r),
            Err(e) => return fail(format!("knowledge base: {e}")),
        },
        Some(other) => return fail(format!("unknown --retriever {other} (keyword, knowledge)")),
    };

    let llm: Option<Arc<dyn Llm>> = match llm_kind.as_deref() {
        None => None,
        Some("local") => {
            let dir = match Models::from_env().dir(ModelId::SmolLm2_135mInstruct) {
                Ok(d) => d,
                Err(e) => {
                    return fail(format!(
                        "local model not prepared ({e}); run `cargo run -p switchboard-models --release -- fetch`"
                    ));
                }
            };
            match LocalLlm::load_dir(&dir) {
                Ok(l) => Some(Arc::new(l)),
                Err(e) => return fail(e),
            }
        }
        Some("openai") => {
            let env = |k: &str| std::env::var(k).unwrap_or_default();
            Some(Arc::new(OpenAiLlm::new(&OpenAiConfig {
                base_url: env("SWITCHBOARD_LLM_BASE_URL"),
                model: env("SWITCHBOARD_LLM_MODEL"),
                api_key: env("SWITCHBOARD_LLM_API_KEY"),
            })))
        }
        Some(other) => return fail(format!("unknown --llm {other} (local, openai)")),
    };
    let mode = if llm.is_some() {
        GenerationMode::Llm
    } else {
        GenerationMode::Extraction
    };
    let agent = Agent::new(
        AgentConfig {
            company: "Northwind Mobile".into(),
            mode,
            ..AgentConfig::default()
        },
        retriever,
        llm,
    );

    println!(
        "switchboard-nlu eval: {} questions, {} articles, retriever: {}, mode: {:?}{}",
        set.question.len(),
        articles.len(),
        retriever_kind.as_deref().unwrap_or("keyword"),
        mode,
        llm_kind
            .as_deref()
            .map(|k| format!(" ({k})"))
            .unwrap_or_default()
    );
    let report = run(&agent, &set.question).await;
    print!("{}", report.render());
    if verbose {
        for c in report.cases.iter().filter(|c| !c.passed) {
            println!(
                "FAIL {}: {:?} -> {} ({}, confidence {:.2})\n     reply: {:?}",
                c.id,
                c.outcome.trace.text,
                c.outcome.trace.intent,
                c.outcome.trace.decision.reason,
                c.outcome.trace.decision.confidence,
                c.outcome.reply
            );
        }
    }
    let failures = report.failures(&thresholds);
    if failures.is_empty() {
        println!("PASS: every figure meets eval/thresholds.toml");
        ExitCode::SUCCESS
    } else {
        for f in &failures {
            println!("BELOW THRESHOLD {f}");
        }
        ExitCode::FAILURE
    }
}

#[path = "../tests/support/knowledge.rs"]
mod knowledge;
