//! Any OpenAI-compatible chat-completions endpoint (OpenAI, vLLM, llama.cpp
//! server, hosted gateways) through async-openai, streaming.

use async_openai::Client;
use async_openai::config::OpenAIConfig;
use async_openai::types::chat::CreateChatCompletionRequest;
use async_trait::async_trait;
use futures::StreamExt;
use serde::{Deserialize, Serialize};

use super::{Llm, LlmError, LlmRequest, Role, TokenStream};

/// Where and what to call.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenAiConfig {
    /// Base URL including the version path, e.g. `https://api.openai.com/v1` or `http://127.0.0.1:8080/v1`.
    pub base_url: String,
    /// Model name.
    pub model: String,
    /// API key (sent as a bearer token; may be empty for local servers).
    pub api_key: String,
}

impl std::fmt::Debug for OpenAiConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiConfig")
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field(
                "api_key",
                &if self.api_key.is_empty() {
                    ""
                } else {
                    "<redacted>"
                },
            )
            .finish()
    }
}

/// The backend. async-openai itself retries HTTP 429, 5xx and connection
/// errors (3 times, exponential backoff from 100 ms); [`super::generate`]
/// bounds the whole exchange with its timeouts and retries timeouts.
#[derive(Debug, Clone)]
pub struct OpenAiLlm {
    client: Client<OpenAIConfig>,
    model: String,
}

impl OpenAiLlm {
    /// A client for `config`. Installs rustls' ring provider for the process
    /// if none is installed yet (async-openai is built without its own).
    pub fn new(config: &OpenAiConfig) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let cfg = OpenAIConfig::new()
            .with_api_base(config.base_url.trim_end_matches('/'))
            .with_api_key(config.api_key.clone());
        Self {
            client: Client::with_config(cfg),
            model: config.model.clone(),
        }
    }

    fn request(&self, request: &LlmRequest) -> Result<CreateChatCompletionRequest, LlmError> {
        let messages: Vec<serde_json::Value> = request
            .messages
            .iter()
            .map(|m| {
                let role = match m.role {
                    Role::System => "system",
                    Role::User => "user",
                    Role::Assistant => "assistant",
                };
                serde_json::json!({ "role": role, "content": m.content })
            })
            .collect();
        serde_json::from_value(serde_json::json!({
            "model": self.model,
            "messages": messages,
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
            "stream": true,
        }))
        .map_err(|e| LlmError::Backend(format!("building request: {e}")))
    }
}

#[async_trait]
impl Llm for OpenAiLlm {
    fn name(&self) -> String {
        format!("openai:{}", self.model)
    }

    async fn stream(&self, request: LlmRequest) -> Result<TokenStream, LlmError> {
        let req = self.request(&request)?;
        let stream = self
            .client
            .chat()
            .create_stream(req)
            .await
            .map_err(|e| LlmError::Backend(e.to_string()))?;
        Ok(stream
            .filter_map(|chunk| async move {
                match chunk {
                    Err(e) => Some(Err(LlmError::Backend(e.to_string()))),
                    Ok(c) => {
                        let text: String = c
                            .choices
                            .into_iter()
                            .filter_map(|ch| ch.delta.content)
                            .collect();
                        if text.is_empty() {
                            None
                        } else {
                            Some(Ok(text))
                        }
                    }
                }
            })
            .boxed())
    }
}
