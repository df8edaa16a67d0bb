//! The OpenAPI document, served at `/api/openapi.json`.

use axum::Json;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{conversations, error, gaps, knowledge, phones, recordings, routing, users, webchat};

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "session_cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(
                crate::auth::SESSION_COOKIE,
            ))),
        );
        components.add_security_scheme(
            "customer_token",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The API description.
#[derive(Debug, OpenApi)]
#[openapi(
    info(title = "Switchboard API", description = "Omnichannel contact-center gateway. Errors are always {\"error\":{\"code\",\"message\"}}. Staff requests use the session cookie and, for unsafe methods, X-CSRF-Token. WebSockets: /api/ws (staff) and /api/webchat/ws (customers); see docs/api.md."),
    paths(
        users::login, users::logout, users::me, users::directory, users::list, users::create, users::update,
        phones::provision, phones::revoke, phones::list,
        conversations::list, conversations::get_one, conversations::events, conversations::reply,
        conversations::note, conversations::assign, conversations::unassign, conversations::close, conversations::reopen,
        webchat::start, webchat::events, webchat::send, routing::customer_handoff,
        routing::me, routing::set_my_presence, routing::set_agent_presence, routing::accept, routing::decline,
        routing::wrap_up_done, routing::transfer, routing::snapshot, routing::queues, routing::put_queue,
        routing::delete_queue, routing::get_agent, routing::put_agent, gaps::gaps, gaps::try_question,
        knowledge::list, knowledge::create, knowledge::get_one, knowledge::update, knowledge::publish,
        knowledge::unpublish, knowledge::archive, knowledge::rollback, knowledge::versions, knowledge::version,
        knowledge::diff, knowledge::search, knowledge::import, knowledge::reindex,
        recordings::search, recordings::audio, recordings::access,
    ),
    components(schemas(error::ErrorBody, error::ErrorDetail)),
    modifiers(&Security),
    security(("session_cookie" = [])),
)]
pub struct ApiDoc;

/// `GET /api/openapi.json`.
pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
