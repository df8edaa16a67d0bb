//! Accounts, roles, sessions and customer tokens.
//!
//! - Passwords: argon2id (PHC strings).
//! - Staff sessions: a random 256-bit token in an HttpOnly, SameSite=Strict
//!   cookie; only its SHA-256 is stored. Unsafe requests must echo the
//!   session's CSRF token in `X-CSRF-Token`.
//! - Customers: a random token scoped to one conversation, sent as a bearer token.

use std::fmt;
use std::str::FromStr;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::extract::FromRequestParts;
use axum::http::{Method, request::Parts};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use switchboard_bus::{AgentId, ContactId, ConversationId};

use crate::api::AppState;
use crate::api::error::ApiError;
use crate::db::User;

/// Name of the staff session cookie.
pub const SESSION_COOKIE: &str = "sb_session";

/// Staff roles. Customers are not users: they hold per-conversation tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Handles conversations.
    Agent,
    /// Oversees agents and queues; may assign anyone.
    Supervisor,
    /// Curates the knowledge base.
    KnowledgeManager,
    /// Reads conversations and reports, changes nothing.
    Analyst,
    /// Everything, including user management.
    Admin,
}

impl Role {
    /// All roles.
    pub const ALL: [Role; 5] = [
        Role::Agent,
        Role::Supervisor,
        Role::KnowledgeManager,
        Role::Analyst,
        Role::Admin,
    ];

    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Agent => "agent",
            Role::Supervisor => "supervisor",
            Role::KnowledgeManager => "knowledge_manager",
            Role::Analyst => "analyst",
            Role::Admin => "admin",
        }
    }

    /// Whether this role holds a permission. The single source of truth for authorization.
    pub fn can(self, p: Permission) -> bool {
        use Permission::*;
        use Role::*;
        match p {
            ReadConversations => matches!(self, Agent | Supervisor | Analyst | Admin),
            WorkConversations => matches!(self, Agent | Supervisor | Admin),
            ActForOthers => matches!(self, Supervisor | Admin),
            ManageUsers => matches!(self, Admin),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("unknown role {s:?}; use one of agent, supervisor, knowledge_manager, analyst, admin"))
    }
}

/// What a role may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// See conversation lists, histories and notes.
    ReadConversations,
    /// Reply, add notes, assign to self, close, reopen.
    WorkConversations,
    /// Assign to others; reply to or close conversations assigned to someone else.
    ActForOthers,
    /// Create and change users.
    ManageUsers,
}

/// Hashes a password with argon2id.
pub fn hash_password(password: &str) -> Result<String, ApiError> {
    let mut salt_bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut salt_bytes);
    let salt = SaltString::encode_b64(&salt_bytes)
        .map_err(|e| ApiError::internal(format!("salt: {e}")))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| ApiError::internal(format!("password hashing failed: {e}")))
}

/// Checks a password against a stored hash (constant-time inside argon2).
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

/// Rules for new passwords.
pub fn check_password_strength(password: &str) -> Result<(), ApiError> {
    if password.chars().count() < 10 {
        return Err(ApiError::validation(
            "password must be at least 10 characters",
        ));
    }
    if password.len() > 1024 {
        return Err(ApiError::validation("password must be at most 1024 bytes"));
    }
    Ok(())
}

/// A fresh random token (256 bits, hex).
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// What is stored for a token: its SHA-256, hex.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn cookie_value<'a>(parts: &'a Parts, name: &str) -> Option<&'a str> {
    parts
        .headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The `Set-Cookie` value for a new session.
pub fn session_cookie(token: &str, max_age_secs: i64, secure: bool) -> String {
    format!(
        "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age_secs}{}",
        if secure { "; Secure" } else { "" }
    )
}

/// The `Set-Cookie` value that removes the session cookie.
pub fn clear_session_cookie(secure: bool) -> String {
    session_cookie("", 0, secure)
}

/// An authenticated staff user (cookie session). For unsafe methods the CSRF
/// token has been checked already.
#[derive(Debug, Clone)]
pub struct Staff {
    /// The user.
    pub user: User,
    /// The session's CSRF token.
    pub csrf_token: String,
    /// Hash of the session token (for logout).
    pub session_hash: String,
}

impl Staff {
    /// Fails with 403 unless the user's role has the permission.
    pub fn require(&self, p: Permission) -> Result<(), ApiError> {
        if self.user.role.can(p) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "the {} role may not do this",
                self.user.role
            )))
        }
    }

    /// The user as an agent id.
    pub fn agent_id(&self) -> AgentId {
        self.user.id
    }
}

impl FromRequestParts<AppState> for Staff {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = cookie_value(parts, SESSION_COOKIE)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| ApiError::unauthenticated("log in first"))?;
        let hash = token_hash(token);
        let session = state.db.session(&hash).await?.ok_or_else(|| {
            ApiError::unauthenticated("your session is unknown or was ended; log in again")
        })?;
        if session.expires_at < chrono::Utc::now() {
            return Err(ApiError::session_expired());
        }
        let unsafe_method = !matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
        if unsafe_method {
            let sent = parts
                .headers
                .get("x-csrf-token")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if !constant_time_eq(sent.as_bytes(), session.csrf_token.as_bytes()) {
                return Err(ApiError::csrf_failed());
            }
        }
        Ok(Staff {
            user: session.user,
            csrf_token: session.csrf_token,
            session_hash: hash,
        })
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A customer holding a token for exactly one conversation.
#[derive(Debug, Clone, Copy)]
pub struct Customer {
    /// The only conversation this token opens.
    pub conversation: ConversationId,
    /// The customer.
    pub contact: ContactId,
}

impl Customer {
    /// Looks up a raw token.
    pub async fn from_token(state: &AppState, token: &str) -> Result<Self, ApiError> {
        let (conversation, contact) = state
            .db
            .customer_token(&token_hash(token))
            .await?
            .ok_or_else(|| ApiError::unauthenticated("unknown or expired conversation token"))?;
        Ok(Self {
            conversation,
            contact,
        })
    }

    /// Fails with 404 (not 403, so ids cannot be probed) unless the token is for `id`.
    pub fn require(&self, id: ConversationId) -> Result<(), ApiError> {
        if self.conversation == id {
            Ok(())
        } else {
            Err(ApiError::not_found("conversation"))
        }
    }
}

impl FromRequestParts<AppState> for Customer {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| {
                ApiError::unauthenticated("send Authorization: Bearer <conversation token>")
            })?;
        Customer::from_token(state, token.trim()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_round_trip() {
        let h = hash_password("correct horse battery").expect("hash");
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery", &h));
        assert!(!verify_password("wrong", &h));
        assert!(!verify_password("x", "not a hash"));
    }

    #[test]
    fn tokens_are_random_and_hashed() {
        let a = new_token();
        assert_eq!(a.len(), 64);
        assert_ne!(a, new_token());
        assert_ne!(token_hash(&a), a);
    }

    #[test]
    fn role_permissions_matrix() {
        use Permission::*;
        let table = [
            (Role::Agent, [true, true, false, false]),
            (Role::Supervisor, [true, true, true, false]),
            (Role::KnowledgeManager, [false, false, false, false]),
            (Role::Analyst, [true, false, false, false]),
            (Role::Admin, [true, true, true, true]),
        ];
        for (role, expect) in table {
            let got = [
                role.can(ReadConversations),
                role.can(WorkConversations),
                role.can(ActForOthers),
                role.can(ManageUsers),
            ];
            assert_eq!(got, expect, "{role}");
        }
    }

    #[test]
    fn cookie_is_httponly_strict() {
        let c = session_cookie("abc", 60, true);
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Strict") && c.ends_with("Secure"));
    }
}
