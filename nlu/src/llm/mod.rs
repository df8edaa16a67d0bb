//! Language-model backends behind one streaming trait.
//!
//! The model only *phrases*: it is given the question and the passages, and
//! whatever it writes goes through the grounding check before anyone sees it.
//! Backends: [`local::LocalLlm`] (candle, SmolLM2 GGUF on CPU, the default) and
//! [`openai::OpenAiLlm`] (any OpenAI-compatible chat-completions endpoint).
//! [`generate`] adds timeouts and retries around any backend.

pub mod local;
pub mod openai;

use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use futures::stream::BoxStream;
use serde::{Deserialize, Serialize};

/// Who wrote a chat message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Instructions.
    System,
    /// The customer's turn (data, never instructions).
    User,
    /// A previous model turn.
    Assistant,
}

/// One chat message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// Author.
    pub role: Role,
    /// Text.
    pub content: String,
}

/// A generation request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LlmRequest {
    /// The conversation, system message first.
    pub messages: Vec<ChatMessage>,
    /// Upper bound on generated tokens.
    pub max_tokens: u32,
    /// Sampling temperature (0 = greedy).
    pub temperature: f32,
}

/// Why generation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LlmError {
    /// The model files are missing or unreadable.
    #[error("model unavailable: {0}")]
    Unavailable(String),
    /// The backend answered with an error or broke the protocol.
    #[error("backend error: {0}")]
    Backend(String),
    /// No answer in time.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// Inference itself failed.
    #[error("inference failed: {0}")]
    Inference(String),
}

impl LlmError {
    /// Whether trying again may help (timeouts and backend errors, not missing models).
    pub fn is_transient(&self) -> bool {
        matches!(self, LlmError::Timeout(_) | LlmError::Backend(_))
    }
}

/// A stream of generated text pieces.
pub type TokenStream = BoxStream<'static, Result<String, LlmError>>;

/// A language model that streams its answer.
#[async_trait]
pub trait Llm: Send + Sync {
    /// A short name for traces, e.g. `local:smollm2-135m` or `openai:gpt-4o-mini`.
    fn name(&self) -> String;
    /// Starts generating; pieces arrive on the returned stream.
    async fn stream(&self, request: LlmRequest) -> Result<TokenStream, LlmError>;
}

/// Timeouts and retries around a backend.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LlmLimits {
    /// Longest wait for the first piece (covers connection and prompt processing).
    pub first_token_timeout: Duration,
    /// Longest wait for the whole answer.
    pub total_timeout: Duration,
    /// Extra attempts after a transient failure before any text arrived.
    pub retries: u32,
    /// Pause before a retry (doubles each time).
    pub backoff: Duration,
}

impl Default for LlmLimits {
    fn default() -> Self {
        Self {
            first_token_timeout: Duration::from_secs(8),
            total_timeout: Duration::from_secs(20),
            retries: 1,
            backoff: Duration::from_millis(200),
        }
    }
}

/// Runs `request` on `llm` with `limits`, calling `on_piece` for each piece as
/// it arrives (return `false` to stop early), and returns the text produced.
/// Retries only while nothing has been produced yet, so a caller never sees a
/// piece twice.
pub async fn generate(
    llm: &dyn Llm,
    request: &LlmRequest,
    limits: LlmLimits,
    on_piece: &mut (dyn FnMut(&str) -> bool + Send),
) -> Result<String, LlmError> {
    let started = tokio::time::Instant::now();
    let mut attempt = 0;
    let mut backoff = limits.backoff;
    loop {
        match generate_once(llm, request, limits, started, on_piece).await {
            Ok(text) => return Ok(text),
            Err((err, produced)) => {
                attempt += 1;
                if produced || !err.is_transient() || attempt > limits.retries {
                    return Err(err);
                }
                tracing::warn!(backend = %llm.name(), error = %err, attempt, "retrying language model");
                tokio::time::sleep(backoff).await;
                backoff *= 2;
            }
        }
    }
}

async fn generate_once(
    llm: &dyn Llm,
    request: &LlmRequest,
    limits: LlmLimits,
    started: tokio::time::Instant,
    on_piece: &mut (dyn FnMut(&str) -> bool + Send),
) -> Result<String, (LlmError, bool)> {
    let deadline = started + limits.total_timeout;
    let first_deadline = (tokio::time::Instant::now() + limits.first_token_timeout).min(deadline);
    let mut stream = tokio::time::timeout_at(first_deadline, llm.stream(request.clone()))
        .await
        .map_err(|_| (LlmError::Timeout(limits.first_token_timeout), false))?
        .map_err(|e| (e, false))?;
    let mut text = String::new();
    loop {
        let until = if text.is_empty() {
            first_deadline
        } else {
            deadline
        };
        let next = tokio::time::timeout_at(until, stream.next()).await;
        match next {
            Err(_) => {
                let limit = if text.is_empty() {
                    limits.first_token_timeout
                } else {
                    limits.total_timeout
                };
                return Err((LlmError::Timeout(limit), !text.is_empty()));
            }
            Ok(None) => return Ok(text),
            Ok(Some(Err(e))) => return Err((e, !text.is_empty())),
            Ok(Some(Ok(piece))) => {
                if !piece.is_empty() {
                    text.push_str(&piece);
                    if !on_piece(&piece) {
                        return Ok(text);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! Scripted backends for tests.
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// One scripted attempt.
    #[derive(Debug, Clone)]
    pub enum Script {
        /// Stream these pieces.
        Pieces(Vec<&'static str>),
        /// Fail at start with this error.
        Fail(LlmError),
        /// Never answer.
        Hang,
    }

    /// A backend that plays scripts in order (the last one repeats) and records prompts.
    #[derive(Debug)]
    pub struct Scripted {
        pub scripts: Vec<Script>,
        pub calls: AtomicUsize,
        pub prompts: Mutex<Vec<LlmRequest>>,
    }

    impl Scripted {
        pub fn new(scripts: Vec<Script>) -> Self {
            Self {
                scripts,
                calls: AtomicUsize::new(0),
                prompts: Mutex::new(Vec::new()),
            }
        }
    }

    #[async_trait]
    impl Llm for Scripted {
        fn name(&self) -> String {
            "scripted".into()
        }
        async fn stream(&self, request: LlmRequest) -> Result<TokenStream, LlmError> {
            self.prompts
                .lock()
                .map_err(|e| LlmError::Backend(e.to_string()))?
                .push(request);
            let n = self.calls.fetch_add(1, Ordering::SeqCst);
            let script = self
                .scripts
                .get(n)
                .or(self.scripts.last())
                .cloned()
                .unwrap_or(Script::Hang);
            match script {
                Script::Pieces(p) => {
                    Ok(futures::stream::iter(p.into_iter().map(|s| Ok(s.to_string()))).boxed())
                }
                Script::Fail(e) => Err(e),
                Script::Hang => Ok(futures::stream::pending().boxed()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use super::testing::{Script, Scripted};
    use super::*;

    fn req() -> LlmRequest {
        LlmRequest {
            messages: vec![ChatMessage {
                role: Role::User,
                content: "hi".into(),
            }],
            max_tokens: 16,
            temperature: 0.0,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn streams_pieces_in_order() {
        let llm = Scripted::new(vec![Script::Pieces(vec!["Hel", "lo", "!"])]);
        let mut seen = Vec::new();
        let text = generate(&llm, &req(), LlmLimits::default(), &mut |p| {
            seen.push(p.to_string());
            true
        })
        .await
        .unwrap();
        assert_eq!(text, "Hello!");
        assert_eq!(seen, vec!["Hel", "lo", "!"]);
    }

    #[tokio::test(start_paused = true)]
    async fn retries_transient_failures_then_succeeds() {
        let llm = Scripted::new(vec![
            Script::Fail(LlmError::Backend("503".into())),
            Script::Pieces(vec!["ok"]),
        ]);
        let text = generate(&llm, &req(), LlmLimits::default(), &mut |_| true)
            .await
            .unwrap();
        assert_eq!(text, "ok");
        assert_eq!(llm.calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn times_out_and_gives_up_after_retries() {
        let llm = Scripted::new(vec![Script::Hang]);
        let limits = LlmLimits {
            retries: 2,
            ..LlmLimits::default()
        };
        let err = generate(&llm, &req(), limits, &mut |_| true)
            .await
            .unwrap_err();
        assert_eq!(err, LlmError::Timeout(limits.first_token_timeout));
        assert_eq!(llm.calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn does_not_retry_missing_models() {
        let llm = Scripted::new(vec![Script::Fail(LlmError::Unavailable("no file".into()))]);
        let err = generate(&llm, &req(), LlmLimits::default(), &mut |_| true)
            .await
            .unwrap_err();
        assert!(matches!(err, LlmError::Unavailable(_)));
        assert_eq!(llm.calls.load(Ordering::SeqCst), 1);
    }
}
