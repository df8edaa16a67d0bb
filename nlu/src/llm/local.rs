//! The local model: SmolLM2-135M-Instruct (llama architecture, GGUF) on CPU
//! with candle's `quantized_llama`, streaming tokens from a blocking thread.
//!
//! The system message of a prompt is fixed per company and language, so its
//! key/value cache is computed once and reused: each request clones the
//! cached model state (tensors are shared, not copied) and only processes the
//! passage and the question.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use candle_core::quantized::gguf_file;
use candle_core::{Device, Tensor};
use candle_transformers::generation::{LogitsProcessor, Sampling};
use candle_transformers::models::quantized_llama::ModelWeights;
use futures::StreamExt;
use tokenizers::Tokenizer;

use super::{Llm, LlmError, LlmRequest, Role, TokenStream};

/// Prefix caches kept at most (one per company × language in practice).
const PREFIX_CACHE: usize = 8;

/// The files of a local model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalModelFiles {
    /// The GGUF weights.
    pub gguf: PathBuf,
    /// The `tokenizer.json`.
    pub tokenizer: PathBuf,
}

impl LocalModelFiles {
    /// The files in a prepared model directory: `model-q8_0.gguf` when present
    /// (faster on CPU), else `model.gguf`, and `tokenizer.json`.
    pub fn in_dir(dir: &Path) -> Self {
        let q8 = dir.join("model-q8_0.gguf");
        let gguf = if q8.is_file() {
            q8
        } else {
            dir.join("model.gguf")
        };
        Self {
            gguf,
            tokenizer: dir.join("tokenizer.json"),
        }
    }
}

struct Inner {
    base: ModelWeights,
    tokenizer: Tokenizer,
    stops: Vec<u32>,
    prefixes: Mutex<HashMap<String, (ModelWeights, usize)>>,
    name: String,
}

/// The local backend.
#[derive(Clone)]
pub struct LocalLlm {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for LocalLlm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalLlm")
            .field("name", &self.inner.name)
            .finish_non_exhaustive()
    }
}

fn unavailable(e: impl std::fmt::Display) -> LlmError {
    LlmError::Unavailable(e.to_string())
}
fn inference(e: impl std::fmt::Display) -> LlmError {
    LlmError::Inference(e.to_string())
}

/// The SmolLM2 chat template (ChatML).
fn chatml(role: Role, content: &str) -> String {
    let role = match role {
        Role::System => "system",
        Role::User => "user",
        Role::Assistant => "assistant",
    };
    format!("<|im_start|>{role}\n{content}<|im_end|>\n")
}

impl LocalLlm {
    /// Loads a prepared model directory (see [`LocalModelFiles::in_dir`]).
    pub fn load_dir(dir: &Path) -> Result<Self, LlmError> {
        Self::load(&LocalModelFiles::in_dir(dir))
    }

    /// Loads the weights and tokenizer (blocking; takes a fraction of a second for 135M parameters).
    pub fn load(files: &LocalModelFiles) -> Result<Self, LlmError> {
        let mut file = std::fs::File::open(&files.gguf)
            .map_err(|e| unavailable(format!("{}: {e}", files.gguf.display())))?;
        let content = gguf_file::Content::read(&mut file).map_err(unavailable)?;
        let base =
            ModelWeights::from_gguf(content, &mut file, &Device::Cpu).map_err(unavailable)?;
        let tokenizer = Tokenizer::from_file(&files.tokenizer)
            .map_err(|e| unavailable(format!("{}: {e}", files.tokenizer.display())))?;
        let stops: Vec<u32> = ["<|im_end|>", "<|endoftext|>"]
            .iter()
            .filter_map(|t| tokenizer.token_to_id(t))
            .collect();
        if stops.is_empty() {
            return Err(unavailable("tokenizer has no <|im_end|> token"));
        }
        let name = format!(
            "local:{}",
            files
                .gguf
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "model".into())
        );
        Ok(Self {
            inner: Arc::new(Inner {
                base,
                tokenizer,
                stops,
                prefixes: Mutex::new(HashMap::new()),
                name,
            }),
        })
    }

    /// Number of tokens `text` encodes to (for measurements).
    pub fn token_count(&self, text: &str) -> Result<usize, LlmError> {
        Ok(self.encode(text)?.len())
    }

    fn encode(&self, text: &str) -> Result<Vec<u32>, LlmError> {
        Ok(self
            .inner
            .tokenizer
            .encode(text, false)
            .map_err(inference)?
            .get_ids()
            .to_vec())
    }

    /// The model state after the system prefix, cached.
    fn prefixed(&self, prefix: &str) -> Result<(ModelWeights, usize), LlmError> {
        if let Some(hit) = self.inner.prefixes.lock().map_err(inference)?.get(prefix) {
            return Ok(hit.clone());
        }
        let tokens = self.encode(prefix)?;
        let mut model = self.inner.base.clone();
        if !tokens.is_empty() {
            let input = Tensor::new(tokens.as_slice(), &Device::Cpu)
                .and_then(|t| t.unsqueeze(0))
                .map_err(inference)?;
            model.forward(&input, 0).map_err(inference)?;
        }
        let mut cache = self.inner.prefixes.lock().map_err(inference)?;
        if cache.len() >= PREFIX_CACHE {
            cache.clear();
        }
        cache.insert(prefix.to_string(), (model.clone(), tokens.len()));
        Ok((model, tokens.len()))
    }

    /// Generates on the current thread, sending decoded text pieces to `tx` until
    /// a stop token, `max_tokens`, or the receiver goes away.
    fn run(
        &self,
        request: &LlmRequest,
        tx: &tokio::sync::mpsc::Sender<Result<String, LlmError>>,
    ) -> Result<(), LlmError> {
        let mut prefix = String::new();
        let mut rest = String::new();
        for m in &request.messages {
            if m.role == Role::System && rest.is_empty() {
                prefix.push_str(&chatml(m.role, &m.content));
            } else {
                rest.push_str(&chatml(m.role, &m.content));
            }
        }
        rest.push_str("<|im_start|>assistant\n");
        let (mut model, mut pos) = self.prefixed(&prefix)?;
        let prompt = self.encode(&rest)?;
        let mut sampler = if request.temperature <= 0.0 {
            LogitsProcessor::from_sampling(0, Sampling::ArgMax)
        } else {
            LogitsProcessor::from_sampling(
                0,
                Sampling::All {
                    temperature: f64::from(request.temperature),
                },
            )
        };
        let mut generated: Vec<u32> = Vec::new();
        let mut emitted = 0usize;
        let mut input = prompt;
        for _ in 0..request.max_tokens {
            let x = Tensor::new(input.as_slice(), &Device::Cpu)
                .and_then(|t| t.unsqueeze(0))
                .map_err(inference)?;
            let logits = model
                .forward(&x, pos)
                .and_then(|l| l.squeeze(0))
                .map_err(inference)?;
            pos += input.len();
            let start = generated.len().saturating_sub(64);
            let logits =
                candle_transformers::utils::apply_repeat_penalty(&logits, 1.1, &generated[start..])
                    .map_err(inference)?;
            let next = sampler.sample(&logits).map_err(inference)?;
            if self.inner.stops.contains(&next) {
                break;
            }
            generated.push(next);
            let text = self
                .inner
                .tokenizer
                .decode(&generated, true)
                .map_err(inference)?;
            // Emit only complete characters (a multi-byte character may span tokens).
            if text.len() > emitted && !text.ends_with('\u{FFFD}') {
                let piece = text[emitted..].to_string();
                emitted = text.len();
                if tx.blocking_send(Ok(piece)).is_err() {
                    return Ok(()); // the caller stopped listening
                }
            }
            input = vec![next];
        }
        Ok(())
    }
}

#[async_trait]
impl Llm for LocalLlm {
    fn name(&self) -> String {
        self.inner.name.clone()
    }

    async fn stream(&self, request: LlmRequest) -> Result<TokenStream, LlmError> {
        let (tx, mut rx) = tokio::sync::mpsc::channel(64);
        let this = self.clone();
        tokio::task::spawn_blocking(move || {
            if let Err(e) = this.run(&request, &tx) {
                let _ = tx.blocking_send(Err(e));
            }
        });
        Ok(futures::stream::poll_fn(move |cx| rx.poll_recv(cx)).boxed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefers_the_q8_file_and_reports_missing_models() {
        let dir = std::env::temp_dir().join(format!("nlu-local-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert_eq!(LocalModelFiles::in_dir(&dir).gguf, dir.join("model.gguf"));
        std::fs::write(dir.join("model-q8_0.gguf"), b"not a gguf").unwrap();
        assert_eq!(
            LocalModelFiles::in_dir(&dir).gguf,
            dir.join("model-q8_0.gguf")
        );
        let err = LocalLlm::load_dir(&dir).unwrap_err();
        assert!(matches!(err, LlmError::Unavailable(_)), "{err:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn chat_template_is_chatml() {
        assert_eq!(chatml(Role::User, "hi"), "<|im_start|>user\nhi<|im_end|>\n");
    }
}
