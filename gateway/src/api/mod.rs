//! The HTTP/WebSocket edge: routes, shared state and middleware.

pub mod conversations;
pub mod error;
pub mod gaps;
pub mod knowledge;
pub mod openapi;
pub mod pages;
pub mod phones;
pub mod recordings;
pub mod routing;
pub mod users;
pub mod webchat;
pub mod ws;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use metrics_exporter_prometheus::PrometheusHandle;
use switchboard_bus::Bus;
use tokio::sync::watch;

use crate::config::Config;
use crate::db::Db;
use crate::hub::Hub;
use crate::writer::Writer;
use error::ApiError;

/// Longest message text accepted, in characters.
pub const MAX_TEXT_CHARS: usize = 4000;

/// Everything handlers share.
#[derive(Clone, Debug)]
pub struct AppState {
    /// Storage.
    pub db: Db,
    /// The event writer.
    pub writer: Writer,
    /// The bus (for ephemeral events).
    pub bus: Arc<dyn Bus>,
    /// This node's live feed.
    pub hub: Hub,
    /// Configuration.
    pub config: Arc<Config>,
    /// Prometheus exporter.
    pub metrics: Option<PrometheusHandle>,
    /// Flips to true when the server is shutting down (long-lived connections close).
    pub shutdown: watch::Receiver<bool>,
    /// The knowledge base.
    pub kb: Arc<switchboard_knowledge::KnowledgeBase>,
    /// The virtual agent (`None` when switched off).
    pub bot: Option<Arc<switchboard_nlu::Agent>>,
    /// Agents' SIP accounts as the registrar sees them.
    pub phones: crate::phones::Phones,
}

/// Largest knowledge-base request (an article or an import of several files).
pub const KNOWLEDGE_BODY_BYTES: usize = 8 * 1024 * 1024;

/// Builds the full router.
pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/auth/login", post(users::login))
        .route("/auth/logout", post(users::logout))
        .route("/me", get(users::me))
        .route("/directory", get(users::directory))
        .route("/users", get(users::list).post(users::create))
        .route("/users/{id}", axum::routing::patch(users::update))
        .route(
            "/users/{id}/sip",
            axum::routing::put(phones::provision).delete(phones::revoke),
        )
        .route("/phones", get(phones::list))
        .route("/conversations", get(conversations::list))
        .route("/conversations/{id}", get(conversations::get_one))
        .route("/conversations/{id}/events", get(conversations::events))
        .route("/conversations/{id}/messages", post(conversations::reply))
        .route("/conversations/{id}/notes", post(conversations::note))
        .route("/conversations/{id}/assign", post(conversations::assign))
        .route(
            "/conversations/{id}/unassign",
            post(conversations::unassign),
        )
        .route("/conversations/{id}/close", post(conversations::close))
        .route("/conversations/{id}/reopen", post(conversations::reopen))
        .route(
            "/conversations/{id}/offers/{offer}/accept",
            post(routing::accept),
        )
        .route(
            "/conversations/{id}/offers/{offer}/decline",
            post(routing::decline),
        )
        .route(
            "/conversations/{id}/wrap-up-done",
            post(routing::wrap_up_done),
        )
        .route("/conversations/{id}/transfer", post(routing::transfer))
        .route("/kb/gaps", get(gaps::gaps))
        .route("/recordings", get(recordings::search))
        .route("/recordings/{id}/audio", get(recordings::audio))
        .route("/recordings/{id}/access", get(recordings::access))
        .route("/kb/try", post(gaps::try_question))
        .route("/routing/me", get(routing::me))
        .route(
            "/routing/me/presence",
            axum::routing::put(routing::set_my_presence),
        )
        .route("/routing/snapshot", get(routing::snapshot))
        .route("/routing/queues", get(routing::queues))
        .route(
            "/routing/queues/{id}",
            axum::routing::put(routing::put_queue).delete(routing::delete_queue),
        )
        .route(
            "/routing/agents/{id}",
            get(routing::get_agent).put(routing::put_agent),
        )
        .route(
            "/routing/agents/{id}/presence",
            axum::routing::put(routing::set_agent_presence),
        )
        .route("/ws", get(ws::agent_socket))
        .route("/openapi.json", get(openapi::document))
        .merge(webchat_routes())
        // Articles and folder imports are larger than chat messages.
        .merge(
            knowledge::routes(state.kb.clone()).layer(DefaultBodyLimit::max(KNOWLEDGE_BODY_BYTES)),
        )
        .fallback(|| async { ApiError::not_found("API route") });

    Router::new()
        .nest("/api", api)
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_endpoint))
        .merge(pages::routes())
        .layer(DefaultBodyLimit::max(state.config.max_body_bytes))
        .layer(middleware::from_fn(track_metrics))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(30),
        ))
        .with_state(state)
}

/// Customer endpoints: callable from any site that embeds the widget. They
/// use bearer tokens, never cookies, so a permissive CORS policy is safe.
fn webchat_routes() -> Router<AppState> {
    use axum::http::{Method, header};
    let cors = tower_http::cors::CorsLayer::new()
        .allow_origin(tower_http::cors::Any)
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([header::CONTENT_TYPE, header::AUTHORIZATION])
        .max_age(Duration::from_secs(3600));
    Router::new()
        .route("/webchat/conversations", post(webchat::start))
        .route("/webchat/conversations/{id}/events", get(webchat::events))
        .route("/webchat/conversations/{id}/messages", post(webchat::send))
        .route(
            "/webchat/conversations/{id}/handoff",
            post(routing::customer_handoff),
        )
        .route("/webchat/ws", get(webchat::socket))
        .layer(cors)
}

async fn healthz() -> &'static str {
    "ok"
}

/// Ready when the database answers.
async fn readyz(State(state): State<AppState>) -> Response {
    match state.db.ping().await {
        Ok(()) => (
            StatusCode::OK,
            Json(serde_json::json!({"status": "ready", "bus": state.bus.backend()})),
        )
            .into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

async fn metrics_endpoint(State(state): State<AppState>) -> Response {
    match &state.metrics {
        Some(h) => (
            [(
                axum::http::header::CONTENT_TYPE,
                "text/plain; version=0.0.4",
            )],
            h.render(),
        )
            .into_response(),
        None => ApiError::not_found("metrics exporter").into_response(),
    }
}

async fn track_metrics(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".into());
    let method = req.method().to_string();
    let resp = next.run(req).await;
    let status = resp.status().as_u16().to_string();
    metrics::counter!("switchboard_http_requests_total", "route" => route.clone(), "method" => method.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("switchboard_http_request_seconds", "route" => route, "method" => method)
        .record(started.elapsed().as_secs_f64());
    resp
}

/// Checks a message text: not blank, not too long.
pub fn check_text(text: &str) -> Result<String, ApiError> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(ApiError::validation("text must not be empty"));
    }
    if trimmed.chars().count() > MAX_TEXT_CHARS {
        return Err(ApiError::validation(format!(
            "text is longer than {MAX_TEXT_CHARS} characters"
        )));
    }
    Ok(trimmed.to_string())
}

/// Idempotency-key prefixes Switchboard's own writers use (the virtual
/// agent's turns, calls); a client may not use them.
const RESERVED_KEY_PREFIXES: [&str; 2] = ["bot:", "call:"];

/// Checks a client message id: 1–100 visible ASCII characters, not starting
/// with a reserved prefix (`bot:`, `call:`).
pub fn check_client_msg_id(id: &str) -> Result<String, ApiError> {
    if id.is_empty() || id.len() > 100 || !id.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::validation(
            "client_msg_id must be 1-100 visible ASCII characters",
        ));
    }
    if RESERVED_KEY_PREFIXES.iter().any(|p| id.starts_with(p)) {
        return Err(ApiError::validation(
            "client_msg_id may not start with bot: or call: (reserved)",
        ));
    }
    Ok(id.to_string())
}

/// Parses a conversation id from a path segment (404 for garbage, so ids cannot be probed).
pub fn parse_conversation_id(raw: &str) -> Result<switchboard_bus::ConversationId, ApiError> {
    raw.parse().map_err(|_| ApiError::not_found("conversation"))
}
