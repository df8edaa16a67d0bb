//! Agents' SIP phones: SIP accounts (admins) and where phones are registered
//! (supervisors and admins). See [`crate::phones`].

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use switchboard_bus::AgentId;
use utoipa::ToSchema;

use super::AppState;
use super::error::{ApiError, ErrorBody};
use crate::auth::{Permission, Staff};
use crate::db::DbError;
use crate::phones::{Phones, Registration, SipAccount, check_username};

/// What to set (every field optional; an empty body keeps the username).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SipAccountBody {
    /// SIP username, `[A-Za-z0-9._-]{1,32}`. Default: the current one, else
    /// the local part of the user's e-mail.
    pub username: Option<String>,
}

/// A SIP account with its new secret, shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProvisionedAccount {
    /// The account.
    pub account: SipAccount,
    /// The secret to enter in the phone (only its digest is kept).
    pub secret: String,
    /// Address of record to configure: `sip:username@domain`.
    pub aor: String,
    /// Where phones register (this node's SIP listener), if it has one.
    pub registrar: Option<String>,
}

/// One user's phone: the account and its live registrations.
#[derive(Debug, Serialize, ToSchema)]
pub struct Phone {
    /// The account.
    pub account: SipAccount,
    /// The user's display name.
    pub name: String,
    /// Bindings that have not lapsed (empty: the phone is not registered).
    pub registrations: Vec<Registration>,
}

/// Every SIP account and where each phone is registered.
#[derive(Debug, Serialize, ToSchema)]
pub struct PhoneList {
    /// Digest realm phones register in.
    pub realm: String,
    /// Accounts, by username.
    pub phones: Vec<Phone>,
}

fn user_id(raw: &str) -> Result<AgentId, ApiError> {
    raw.parse().map_err(|_| ApiError::not_found("user"))
}

#[utoipa::path(put, path = "/api/users/{id}/sip", tag = "phones", request_body = SipAccountBody,
    params(("id" = String, Path, description = "User id")),
    responses((status = 200, body = ProvisionedAccount), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
/// Gives a user a SIP account for their phone, or a new secret for the one
/// they have (admins). The secret is in this answer only; phones registered
/// with the old secret must be set up again when their registration lapses.
pub async fn provision(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<ProvisionedAccount>, ApiError> {
    staff.require(Permission::ManageUsers)?;
    let body: SipAccountBody = super::error::optional_json(&body)?;
    let id = user_id(&id)?;
    let user = state
        .db
        .user(id)
        .await?
        .ok_or_else(|| ApiError::not_found("user"))?;
    let username =
        Phones::username_for(&state.db, id, &user.email, body.username.as_deref()).await?;
    check_username(&username).map_err(|e| ApiError::validation(e.to_string()))?;
    let (account, secret) = state
        .phones
        .provision(&state.db, id, &username)
        .await
        .map_err(|e| match e {
            DbError::Conflict(_) => {
                ApiError::conflict(format!("another user has the SIP username {username}"))
            }
            other => other.into(),
        })?;
    tracing::info!(admin = %staff.user.id, user = %id, username = %account.username, "SIP account set");
    Ok(Json(ProvisionedAccount {
        aor: format!("sip:{}@{}", account.username, account.realm),
        registrar: state.config.sip_listen.map(|a| a.to_string()),
        account,
        secret,
    }))
}

#[utoipa::path(delete, path = "/api/users/{id}/sip", tag = "phones",
    params(("id" = String, Path, description = "User id")),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
/// Removes a user's SIP account: their phone can no longer register, and
/// its registrations are forgotten (admins).
pub async fn revoke(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    staff.require(Permission::ManageUsers)?;
    let id = user_id(&id)?;
    if !state.db.remove_sip_account(id).await? {
        return Err(ApiError::not_found("SIP account"));
    }
    if let Err(e) = state.phones.reload(&state.db).await {
        tracing::warn!(error = %e, "SIP accounts not reloaded; the registrar picks the change up within seconds");
    }
    tracing::info!(admin = %staff.user.id, user = %id, "SIP account removed");
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/phones", tag = "phones",
    responses((status = 200, body = PhoneList), (status = 403, body = ErrorBody)))]
/// Agents' SIP accounts and where their phones are registered (supervisors and admins).
pub async fn list(
    State(state): State<AppState>,
    staff: Staff,
) -> Result<Json<PhoneList>, ApiError> {
    staff.require(Permission::ActForOthers)?;
    let accounts = state.db.sip_accounts().await?;
    let mut registrations = state.db.registrations(Utc::now()).await?;
    let users = state.db.users().await?;
    let phones = accounts
        .into_iter()
        .map(|account| {
            let name = users
                .iter()
                .find(|u| u.id == account.user_id)
                .map(|u| u.name.clone())
                .unwrap_or_default();
            let (mine, rest): (Vec<_>, Vec<_>) = registrations
                .drain(..)
                .partition(|r| r.username == account.username);
            registrations = rest;
            Phone {
                account,
                name,
                registrations: mine,
            }
        })
        .collect();
    Ok(Json(PhoneList {
        realm: state.phones.realm().to_string(),
        phones,
    }))
}
