//! Login, logout, the current user, and user management (admins).

use axum::Json;
use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use switchboard_bus::AgentId;
use utoipa::ToSchema;

use super::AppState;
use super::error::{ApiError, ApiJson, ErrorBody};
use crate::auth::{self, Permission, Role, Staff};
use crate::db::{DbError, User};

/// Credentials.
#[derive(Debug, Deserialize, ToSchema)]
pub struct LoginBody {
    /// E-mail.
    pub email: String,
    /// Password.
    pub password: String,
}

/// The logged-in user and the CSRF token to echo.
#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    /// The user.
    pub user: User,
    /// Send as `X-CSRF-Token` on unsafe requests.
    pub csrf_token: String,
}

/// A short view of a user for display.
#[derive(Debug, Serialize, ToSchema)]
pub struct DirectoryEntry {
    /// Id.
    #[schema(value_type = String, format = Uuid)]
    pub id: AgentId,
    /// Name.
    pub name: String,
    /// Role.
    pub role: Role,
}

/// Everyone, for showing names.
#[derive(Debug, Serialize, ToSchema)]
pub struct Directory {
    /// Active users.
    pub users: Vec<DirectoryEntry>,
}

/// All users (admin view).
#[derive(Debug, Serialize, ToSchema)]
pub struct UserList {
    /// Users.
    pub users: Vec<User>,
}

/// A new user.
#[derive(Debug, Deserialize, ToSchema)]
pub struct NewUser {
    /// E-mail (login).
    pub email: String,
    /// Display name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// Initial password (10+ characters).
    pub password: String,
}

/// Fields to change.
#[derive(Debug, Deserialize, ToSchema)]
pub struct UserPatch {
    /// New name.
    pub name: Option<String>,
    /// New role.
    pub role: Option<Role>,
    /// Activate / deactivate (deactivating ends their sessions).
    pub active: Option<bool>,
    /// New password (ends their sessions).
    pub password: Option<String>,
}

/// Checks credentials and opens a session. Same answer for unknown e-mail and wrong password.
async fn open_session(
    state: &AppState,
    email: &str,
    password: &str,
) -> Result<(User, String, String), ApiError> {
    let invalid = || {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
            "wrong e-mail or password",
        )
    };
    let found = state.db.user_by_email(email).await?;
    let Some((user, hash)) = found else {
        // Spend the same time as a real check so e-mails cannot be probed by timing.
        let _ = auth::verify_password(password, dummy_hash());
        return Err(invalid());
    };
    if !auth::verify_password(password, &hash) || !user.active {
        return Err(invalid());
    }
    let token = auth::new_token();
    let csrf = auth::new_token();
    let ttl = chrono::Duration::seconds(state.config.session_ttl_secs as i64);
    state
        .db
        .create_session(&auth::token_hash(&token), user.id, &csrf, Utc::now() + ttl)
        .await?;
    tracing::info!(user = %user.id, role = %user.role, "login");
    metrics::counter!("switchboard_logins_total").increment(1);
    Ok((user, token, csrf))
}

fn dummy_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| auth::hash_password("not a real password").unwrap_or_default())
}

fn cookie_header(state: &AppState, token: &str) -> String {
    auth::session_cookie(
        token,
        state.config.session_ttl_secs as i64,
        state.config.cookie_secure(),
    )
}

#[utoipa::path(post, path = "/api/auth/login", tag = "auth", request_body = LoginBody,
    responses((status = 200, body = Me), (status = 401, body = ErrorBody)))]
/// Logs in; sets the session cookie.
pub async fn login(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<LoginBody>,
) -> Result<Response, ApiError> {
    let (user, token, csrf_token) = open_session(&state, &body.email, &body.password).await?;
    Ok((
        [(header::SET_COOKIE, cookie_header(&state, &token))],
        Json(Me { user, csrf_token }),
    )
        .into_response())
}

/// Login form fields.
#[derive(Debug, Deserialize)]
pub struct LoginForm {
    email: String,
    password: String,
}

/// `POST /login`: the no-JavaScript login form. Refuses cross-site posts (login CSRF).
pub async fn login_form(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    if let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        let host = headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if origin != "null" && origin.split("://").nth(1) != Some(host) {
            return ApiError::csrf_failed().into_response();
        }
    }
    match open_session(&state, &form.email, &form.password).await {
        Ok((_, token, _)) => (
            [(header::SET_COOKIE, cookie_header(&state, &token))],
            Redirect::to("/inbox"),
        )
            .into_response(),
        Err(e) if e.status == StatusCode::UNAUTHORIZED => {
            Redirect::to("/login?error=1").into_response()
        }
        Err(e) => e.into_response(),
    }
}

#[utoipa::path(post, path = "/api/auth/logout", tag = "auth",
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
/// Ends the session.
pub async fn logout(State(state): State<AppState>, staff: Staff) -> Result<Response, ApiError> {
    state.db.delete_session(&staff.session_hash).await?;
    Ok((
        StatusCode::NO_CONTENT,
        [(
            header::SET_COOKIE,
            auth::clear_session_cookie(state.config.cookie_secure()),
        )],
    )
        .into_response())
}

#[utoipa::path(get, path = "/api/me", tag = "auth", responses((status = 200, body = Me), (status = 401, body = ErrorBody)))]
/// The current user and CSRF token.
pub async fn me(staff: Staff) -> Json<Me> {
    Json(Me {
        user: staff.user,
        csrf_token: staff.csrf_token,
    })
}

#[utoipa::path(get, path = "/api/directory", tag = "auth", responses((status = 200, body = Directory), (status = 401, body = ErrorBody)))]
/// Names and roles of active users (any staff member).
pub async fn directory(
    State(state): State<AppState>,
    _staff: Staff,
) -> Result<Json<Directory>, ApiError> {
    let users = state
        .db
        .users()
        .await?
        .into_iter()
        .filter(|u| u.active)
        .map(|u| DirectoryEntry {
            id: u.id,
            name: u.name,
            role: u.role,
        })
        .collect();
    Ok(Json(Directory { users }))
}

#[utoipa::path(get, path = "/api/users", tag = "users", responses((status = 200, body = UserList), (status = 403, body = ErrorBody)))]
/// All users (admins).
pub async fn list(State(state): State<AppState>, staff: Staff) -> Result<Json<UserList>, ApiError> {
    staff.require(Permission::ManageUsers)?;
    Ok(Json(UserList {
        users: state.db.users().await?,
    }))
}

fn check_email(email: &str) -> Result<(), ApiError> {
    let e = email.trim();
    let ok = e.len() <= 254
        && e.split_once('@').is_some_and(|(l, d)| {
            !l.is_empty() && d.contains('.') && !e.contains(char::is_whitespace)
        });
    if ok {
        Ok(())
    } else {
        Err(ApiError::validation("email is not a valid address"))
    }
}

fn check_name(name: &str) -> Result<(), ApiError> {
    let n = name.trim();
    if n.is_empty() || n.chars().count() > 80 {
        return Err(ApiError::validation("name must be 1-80 characters"));
    }
    Ok(())
}

/// Creates a user (shared by the API and the CLI).
pub async fn create_user(
    db: &crate::db::Db,
    email: &str,
    name: &str,
    role: Role,
    password: &str,
) -> Result<User, ApiError> {
    check_email(email)?;
    check_name(name)?;
    auth::check_password_strength(password)?;
    let hash = auth::hash_password(password)?;
    db.create_user(email, name, role, &hash)
        .await
        .map_err(|e| match e {
            DbError::Conflict(_) => ApiError::conflict("a user with this e-mail exists"),
            other => other.into(),
        })
}

#[utoipa::path(post, path = "/api/users", tag = "users", request_body = NewUser,
    responses((status = 201, body = User), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
/// Creates a user (admins).
pub async fn create(
    State(state): State<AppState>,
    staff: Staff,
    ApiJson(body): ApiJson<NewUser>,
) -> Result<(StatusCode, Json<User>), ApiError> {
    staff.require(Permission::ManageUsers)?;
    let user = create_user(
        &state.db,
        &body.email,
        &body.name,
        body.role,
        &body.password,
    )
    .await?;
    tracing::info!(admin = %staff.user.id, user = %user.id, role = %user.role, "user created");
    Ok((StatusCode::CREATED, Json(user)))
}

#[utoipa::path(patch, path = "/api/users/{id}", tag = "users", request_body = UserPatch,
    params(("id" = String, Path, description = "User id")),
    responses((status = 200, body = User), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
/// Changes a user (admins). Admins cannot demote or deactivate themselves.
pub async fn update(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<UserPatch>,
) -> Result<Json<User>, ApiError> {
    staff.require(Permission::ManageUsers)?;
    let id: AgentId = id.parse().map_err(|_| ApiError::not_found("user"))?;
    if id == staff.user.id
        && (body.active == Some(false) || body.role.is_some_and(|r| r != Role::Admin))
    {
        return Err(ApiError::conflict(
            "you cannot demote or deactivate yourself; ask another admin",
        ));
    }
    if let Some(n) = &body.name {
        check_name(n)?;
    }
    let hash = match &body.password {
        Some(p) => {
            auth::check_password_strength(p)?;
            Some(auth::hash_password(p)?)
        }
        None => None,
    };
    let user = state
        .db
        .update_user(
            id,
            body.name.as_deref(),
            body.role,
            body.active,
            hash.as_deref(),
        )
        .await?
        .ok_or_else(|| ApiError::not_found("user"))?;
    if body.active.is_some()
        && let Err(e) = state.phones.reload(&state.db).await
    {
        // Deactivated users' phones cannot register; other nodes reload within seconds.
        tracing::warn!(error = %e, "SIP accounts not reloaded");
    }
    tracing::info!(admin = %staff.user.id, user = %user.id, "user changed");
    Ok(Json(user))
}
