//! The local SmolLM2 backend with the real weights. Runs only when the model
//! cache has the model (`cargo run -p switchboard-models --release -- fetch`);
//! otherwise it says so loudly and passes.

use std::path::Path;
use std::sync::Arc;

use futures::StreamExt;
use switchboard_bus::ContactId;
use switchboard_models::{ModelId, Models};
use switchboard_nlu::keyword::{KeywordIndex, load_dir};
use switchboard_nlu::llm::Llm;
use switchboard_nlu::llm::local::LocalLlm;
use switchboard_nlu::{
    Agent, AgentConfig, AnswerSource, ConversationState, GenerationMode, Lang, reply,
};

fn model() -> Option<LocalLlm> {
    match Models::from_env().dir(ModelId::SmolLm2_135mInstruct) {
        Ok(dir) => Some(LocalLlm::load_dir(&dir).expect("prepared model loads")),
        Err(e) => {
            eprintln!("SKIPPED local model test: SmolLM2 not in the model cache ({e})");
            None
        }
    }
}

#[tokio::test]
async fn local_model_streams_and_every_answer_is_grounded() {
    let Some(llm) = model() else { return };
    let kb = Path::new(env!("CARGO_MANIFEST_DIR")).join("eval/kb");
    let index = Arc::new(KeywordIndex::new(&load_dir(&kb).unwrap()));
    let passage = index
        .query("How much does the World Pass cost?", Some(Lang::En), 1)
        .remove(0);
    let request = reply::answer_request(
        "Northwind Mobile",
        Lang::En,
        "How much does the World Pass cost?",
        &passage,
        "The World Pass costs €5 per day and includes 500 MB of data, 60 minutes of calls and 60 texts.",
        24,
    );
    let pieces: Vec<String> = llm
        .stream(request)
        .await
        .unwrap()
        .map(|p| p.unwrap())
        .collect()
        .await;
    assert!(pieces.len() > 1, "tokens arrive one by one: {pieces:?}");
    assert!(!pieces.concat().contains("<|im_end|>"));

    let agent = Agent::new(
        AgentConfig {
            company: "Northwind Mobile".into(),
            mode: GenerationMode::Llm,
            ..AgentConfig::default()
        },
        index,
        Some(Arc::new(llm)),
    );
    let o = agent
        .turn(
            &mut ConversationState::new(ContactId::new()),
            "How much does the World Pass cost?",
        )
        .await;
    assert!(
        matches!(
            o.trace.answer_source,
            Some(AnswerSource::Llm { .. } | AnswerSource::Fallback { .. })
        ),
        "{:?}",
        o.trace.answer_source
    );
    assert!(o.trace.grounding.unwrap().is_grounded(), "{}", o.reply);
    assert!(o.reply.contains("Source: Roaming abroad"));
}
