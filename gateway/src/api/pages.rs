//! The web UI: pages and assets embedded in the binary (no CDN, works offline).

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use super::AppState;

struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static str,
}

macro_rules! asset {
    ($path:literal, $file:literal, $ct:literal) => {
        Asset {
            path: $path,
            content_type: $ct,
            body: include_str!(concat!("../../web/", $file)),
        }
    };
}

const HTML: &str = "text/html; charset=utf-8";

static ASSETS: &[Asset] = &[
    asset!("/", "index.html", "text/html; charset=utf-8"),
    asset!("/login", "login.html", "text/html; charset=utf-8"),
    asset!("/inbox", "inbox.html", "text/html; charset=utf-8"),
    asset!("/admin/users", "admin.html", "text/html; charset=utf-8"),
    asset!("/demo", "demo.html", "text/html; charset=utf-8"),
    asset!("/supervisor", "supervisor.html", "text/html; charset=utf-8"),
    asset!("/kb", "kb.html", "text/html; charset=utf-8"),
    asset!("/kb/gaps", "gaps.html", "text/html; charset=utf-8"),
    asset!("/recordings", "recordings.html", "text/html; charset=utf-8"),
    asset!(
        "/static/recordings.js",
        "recordings.js",
        "text/javascript; charset=utf-8"
    ),
    asset!(
        "/static/gaps.js",
        "gaps.js",
        "text/javascript; charset=utf-8"
    ),
    asset!("/static/kb.js", "kb.js", "text/javascript; charset=utf-8"),
    asset!(
        "/admin/routing",
        "routing-admin.html",
        "text/html; charset=utf-8"
    ),
    asset!(
        "/static/routing.js",
        "routing.js",
        "text/javascript; charset=utf-8"
    ),
    asset!(
        "/static/supervisor.js",
        "supervisor.js",
        "text/javascript; charset=utf-8"
    ),
    asset!(
        "/static/routing-admin.js",
        "routing-admin.js",
        "text/javascript; charset=utf-8"
    ),
    asset!("/widget.js", "widget.js", "text/javascript; charset=utf-8"),
    asset!(
        "/static/widget.js",
        "widget.js",
        "text/javascript; charset=utf-8"
    ),
    asset!("/static/api.js", "api.js", "text/javascript; charset=utf-8"),
    asset!(
        "/static/inbox.js",
        "inbox.js",
        "text/javascript; charset=utf-8"
    ),
    asset!(
        "/static/admin.js",
        "admin.js",
        "text/javascript; charset=utf-8"
    ),
    asset!("/static/app.css", "app.css", "text/css; charset=utf-8"),
];

/// Content-Security-Policy for staff pages: no inline script, nothing from elsewhere.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

fn serve(asset: &'static Asset) -> Response {
    let mut resp = (StatusCode::OK, asset.body).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    if asset.content_type == HTML {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        h.insert("referrer-policy", HeaderValue::from_static("same-origin"));
        // The demo page is meant to be framed and to load the widget; staff pages are not.
        if asset.path != "/demo" {
            h.insert("content-security-policy", HeaderValue::from_static(CSP));
        }
    } else {
        h.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=300"),
        );
    }
    if asset.path == "/widget.js" || asset.path == "/static/widget.js" {
        // The widget is embedded on customers' sites.
        h.insert("access-control-allow-origin", HeaderValue::from_static("*"));
    }
    resp
}

/// Routes for every page and asset, plus the form login.
pub fn routes() -> Router<AppState> {
    let mut router = Router::new().route("/login", post(super::users::login_form));
    for asset in ASSETS {
        router = router.route(asset.path, get(move || async move { serve(asset) }));
    }
    router
}
