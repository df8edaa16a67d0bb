//! Latency figures for the virtual agent:
//!
//! ```text
//! cargo run -p switchboard-nlu --release --example bench
//! ```
//!
//! 1. Extraction-mode turn latency (understand + keyword retrieval + policy +
//!    extraction + grounding) over the answerable evaluation questions.
//! 2. With the local model prepared in the model cache: load time, time to
//!    first token for a RAG answer prompt (cold, then with the system prefix
//!    cached), decode tokens per second, and a whole model-mode turn.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use switchboard_bus::ContactId;
use switchboard_models::{ModelId, Models};
use switchboard_nlu::eval::{Kind, QuestionSet};
use switchboard_nlu::extract::extract;
use switchboard_nlu::keyword::{KeywordIndex, load_dir};
use switchboard_nlu::llm::Llm;
use switchboard_nlu::llm::local::LocalLlm;
use switchboard_nlu::{Agent, AgentConfig, ConversationState, GenerationMode, Lang, reply};

fn pct(v: &mut [Duration], p: f64) -> f64 {
    v.sort_unstable();
    let i = ((p / 100.0) * (v.len().saturating_sub(1)) as f64).round() as usize;
    v.get(i).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("eval");
    let set: QuestionSet = toml::from_str(&std::fs::read_to_string(root.join("questions.toml"))?)?;
    let index = Arc::new(KeywordIndex::new(&load_dir(&root.join("kb"))?));
    let questions: Vec<&str> = set
        .question
        .iter()
        .filter(|q| q.kind == Kind::Answerable)
        .filter_map(|q| q.turns.last().map(String::as_str))
        .collect();
    let config = AgentConfig {
        company: "Northwind Mobile".into(),
        ..AgentConfig::default()
    };
    let agent = Agent::new(config.clone(), index.clone(), None);

    let rounds = 50;
    let mut times = Vec::new();
    for _ in 0..rounds {
        for q in &questions {
            let mut s = ConversationState::new(ContactId::new());
            let t = Instant::now();
            let o = agent.turn(&mut s, q).await;
            times.push(t.elapsed());
            std::hint::black_box(o);
        }
    }
    println!(
        "extraction turn: {} turns, p50 {:.3} ms, p99 {:.3} ms",
        times.len(),
        pct(&mut times, 50.0),
        pct(&mut times, 99.0)
    );

    let dir = match Models::from_env().dir(ModelId::SmolLm2_135mInstruct) {
        Ok(d) => d,
        Err(e) => {
            println!(
                "local model: SKIPPED ({e}); prepare it with `cargo run -p switchboard-models --release -- fetch`"
            );
            return Ok(());
        }
    };
    let t = Instant::now();
    let llm = LocalLlm::load_dir(&dir)?;
    println!(
        "local model {}: loaded in {:.0} ms",
        llm.name(),
        t.elapsed().as_secs_f64() * 1000.0
    );
    let passages = index.query("How much does the World Pass cost?", Some(Lang::En), 1);
    let passage = passages.first().ok_or("no passage")?;
    for (label, question) in [
        ("cold", "How much does the World Pass cost?"),
        ("warm", "What does the World Pass include?"),
    ] {
        let facts = extract(question, std::slice::from_ref(passage), Lang::En, 2)
            .map(|e| e.sentences.join(" "))
            .unwrap_or_default();
        let request =
            reply::answer_request("Northwind Mobile", Lang::En, question, passage, &facts, 64);
        let prompt_tokens: usize = request
            .messages
            .iter()
            .map(|m| llm.token_count(&m.content).unwrap_or(0))
            .sum();
        let t = Instant::now();
        let mut stream = llm.stream(request).await?;
        let mut first = None;
        let mut text = String::new();
        while let Some(piece) = stream.next().await {
            if first.is_none() {
                first = Some(t.elapsed());
            }
            text.push_str(&piece?);
        }
        let total = t.elapsed();
        let first = first.unwrap_or(total);
        let generated = llm.token_count(&text).unwrap_or(0);
        let decode = (total - first).as_secs_f64();
        println!(
            "  {label} (system prefix {}): ~{prompt_tokens} prompt tokens, first token {:.0} ms, {generated} tokens at {:.1} tokens/s: {:?}",
            if label == "cold" {
                "computed"
            } else {
                "cached"
            },
            first.as_secs_f64() * 1000.0,
            if decode > 0.0 {
                generated.saturating_sub(1) as f64 / decode
            } else {
                0.0
            },
            text
        );
    }
    let agent = Agent::new(
        AgentConfig {
            mode: GenerationMode::Llm,
            ..config
        },
        index,
        Some(Arc::new(llm)),
    );
    let mut s = ConversationState::new(ContactId::new());
    let t = Instant::now();
    let o = agent
        .turn(&mut s, "How much does the World Pass cost?")
        .await;
    println!(
        "model-mode turn: {:.0} ms, source {:?}, reply {:?}",
        t.elapsed().as_secs_f64() * 1000.0,
        o.trace.answer_source,
        o.reply
    );
    Ok(())
}
