//! The OpenAI-compatible backend against a tiny local server speaking the
//! documented chat-completions streaming wire format (server-sent events,
//! `chat.completion.chunk` objects, terminated by `data: [DONE]`).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use switchboard_nlu::llm::openai::{OpenAiConfig, OpenAiLlm};
use switchboard_nlu::llm::{ChatMessage, LlmError, LlmLimits, LlmRequest, Role, generate};
use tokio::sync::Mutex;

/// The Authorization header and JSON body of a request.
type Recorded = (Option<String>, serde_json::Value);

#[derive(Clone, Default)]
struct Server {
    calls: Arc<AtomicUsize>,
    /// Answer with HTTP 503 for this many calls first.
    fail_first: usize,
    /// Never answer.
    hang: bool,
    bodies: Arc<Mutex<Vec<Recorded>>>,
}

fn chunk(content: Option<&str>, finish: Option<&str>) -> String {
    let delta = match content {
        Some(c) => serde_json::json!({ "role": "assistant", "content": c }),
        None => serde_json::json!({}),
    };
    let v = serde_json::json!({
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": "test-model",
        "choices": [{ "index": 0, "delta": delta, "finish_reason": finish }]
    });
    format!("data: {v}\n\n")
}

async fn completions(State(s): State<Server>, headers: HeaderMap, body: String) -> Response {
    let n = s.calls.fetch_add(1, Ordering::SeqCst);
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    s.bodies
        .lock()
        .await
        .push((auth, serde_json::from_str(&body).unwrap_or_default()));
    if s.hang {
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
    if n < s.fail_first {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "{\"error\":{\"message\":\"overloaded\",\"type\":\"server_error\"}}",
        )
            .into_response();
    }
    let mut sse = String::new();
    for piece in ["The World Pass", " costs €5", " per day."] {
        sse.push_str(&chunk(Some(piece), None));
    }
    sse.push_str(&chunk(None, Some("stop")));
    sse.push_str("data: [DONE]\n\n");
    ([(header::CONTENT_TYPE, "text/event-stream")], sse).into_response()
}

async fn serve(state: Server) -> String {
    let app = Router::new()
        .route("/v1/chat/completions", post(completions))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
    format!("http://{addr}/v1")
}

fn request() -> LlmRequest {
    LlmRequest {
        messages: vec![
            ChatMessage {
                role: Role::System,
                content: "Answer from the passage.".into(),
            },
            ChatMessage {
                role: Role::User,
                content: "How much is the World Pass?".into(),
            },
        ],
        max_tokens: 32,
        temperature: 0.0,
    }
}

fn llm(base_url: String) -> OpenAiLlm {
    OpenAiLlm::new(&OpenAiConfig {
        base_url,
        model: "test-model".into(),
        api_key: "sk-test".into(),
    })
}

#[tokio::test]
async fn streams_the_answer_and_sends_a_proper_request() {
    let server = Server::default();
    let url = serve(server.clone()).await;
    let mut pieces = Vec::new();
    let text = generate(&llm(url), &request(), LlmLimits::default(), &mut |p| {
        pieces.push(p.to_string());
        true
    })
    .await
    .unwrap();
    assert_eq!(text, "The World Pass costs €5 per day.");
    assert_eq!(pieces, vec!["The World Pass", " costs €5", " per day."]);
    let bodies = server.bodies.lock().await;
    let (auth, body) = &bodies[0];
    assert_eq!(auth.as_deref(), Some("Bearer sk-test"));
    assert_eq!(body["model"], "test-model");
    assert_eq!(body["stream"], true);
    assert_eq!(body["messages"][0]["role"], "system");
    assert_eq!(
        body["messages"][1]["content"],
        "How much is the World Pass?"
    );
    assert_eq!(body["max_tokens"], 32);
}

#[tokio::test]
async fn retries_a_server_error() {
    let server = Server {
        fail_first: 1,
        ..Server::default()
    };
    let url = serve(server.clone()).await;
    let limits = LlmLimits {
        retries: 2,
        backoff: Duration::from_millis(1),
        ..LlmLimits::default()
    };
    let text = generate(&llm(url), &request(), limits, &mut |_| true)
        .await
        .unwrap();
    assert_eq!(text, "The World Pass costs €5 per day.");
    assert_eq!(server.calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn gives_up_on_persistent_errors() {
    let server = Server {
        fail_first: usize::MAX,
        ..Server::default()
    };
    let url = serve(server.clone()).await;
    let limits = LlmLimits {
        retries: 1,
        backoff: Duration::from_millis(1),
        ..LlmLimits::default()
    };
    let err = generate(&llm(url), &request(), limits, &mut |_| true)
        .await
        .unwrap_err();
    assert!(matches!(err, LlmError::Backend(_)), "{err:?}");
    // async-openai retries 5xx itself (3 times); our layer adds one more round.
    let calls = server.calls.load(Ordering::SeqCst);
    assert!(calls >= 2 && calls.is_multiple_of(2), "{calls} calls");
}

#[tokio::test]
async fn times_out_on_a_silent_server() {
    let server = Server {
        hang: true,
        ..Server::default()
    };
    let url = serve(server.clone()).await;
    let limits = LlmLimits {
        first_token_timeout: Duration::from_millis(200),
        total_timeout: Duration::from_secs(1),
        retries: 0,
        backoff: Duration::from_millis(1),
    };
    let err = generate(&llm(url), &request(), limits, &mut |_| true)
        .await
        .unwrap_err();
    assert_eq!(err, LlmError::Timeout(Duration::from_millis(200)));
}

#[tokio::test]
async fn unreachable_endpoint_is_a_backend_error() {
    let limits = LlmLimits {
        retries: 0,
        ..LlmLimits::default()
    };
    let err = generate(
        &llm("http://127.0.0.1:9/v1".into()),
        &request(),
        limits,
        &mut |_| true,
    )
    .await
    .unwrap_err();
    assert!(err.is_transient(), "{err:?}");
}
