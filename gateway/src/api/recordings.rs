//! Call recordings and voicemail: search and playback.
//!
//! Supervisors, analysts and admins search every recording; agents see only
//! their own: recordings of calls they took (the `agent` column) and of
//! conversations assigned to them (a voicemail they are handling). Every playback is
//! written to `recording_access` (who, role, when) and logged.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::error::{ApiError, ErrorBody};
use crate::auth::{Role, Staff};
use crate::db::{DbError, from_ms, ms};
use crate::voice::RecordingRow;

/// Search filters; all optional.
#[derive(Debug, Default, Deserialize, IntoParams)]
pub struct RecordingQuery {
    /// Caller or called number contains this.
    pub number: Option<String>,
    /// Agent id (supervisors, analysts, admins).
    pub agent: Option<String>,
    /// Started at or after (RFC 3339).
    pub from: Option<DateTime<Utc>>,
    /// Started before (RFC 3339).
    pub to: Option<DateTime<Utc>>,
    /// At least this many seconds long.
    pub min_secs: Option<i64>,
    /// At most this many seconds long.
    pub max_secs: Option<i64>,
    /// `call` or `voicemail`.
    pub kind: Option<String>,
    /// Only this conversation's recordings.
    pub conversation: Option<String>,
}

/// Search results, newest first (at most 200).
#[derive(Debug, Serialize, ToSchema)]
pub struct RecordingList {
    /// The recordings.
    pub recordings: Vec<RecordingRow>,
}

fn row_to_recording(r: &sqlx::any::AnyRow) -> Result<RecordingRow, DbError> {
    Ok(RecordingRow {
        id: r.try_get("id")?,
        conversation_id: r.try_get("conversation_id")?,
        call_id: r.try_get("call_id")?,
        kind: r.try_get("kind")?,
        caller: r.try_get("caller")?,
        called: r.try_get("called")?,
        agent: r.try_get("agent")?,
        started_at: from_ms(r.try_get("started_at")?),
        duration_ms: r.try_get("duration_ms")?,
        path: r.try_get("path")?,
    })
}

const COLUMNS: &str =
    "id, conversation_id, call_id, kind, caller, called, agent, started_at, duration_ms, path";

fn sees_all(role: Role) -> bool {
    matches!(role, Role::Supervisor | Role::Analyst | Role::Admin)
}

#[utoipa::path(get, path = "/api/recordings", tag = "recordings", params(RecordingQuery),
    responses((status = 200, body = RecordingList), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
/// Searches call recordings and voicemail (supervisors, analysts, admins; agents: their own calls).
pub async fn search(
    State(state): State<AppState>,
    staff: Staff,
    Query(q): Query<RecordingQuery>,
) -> Result<Json<RecordingList>, ApiError> {
    let (agent, own) = if sees_all(staff.user.role) {
        (q.agent.filter(|a| !a.is_empty()), None)
    } else if staff.user.role == Role::Agent {
        (None, Some(staff.user.id.to_string()))
    } else {
        return Err(ApiError::forbidden(
            "supervisors, analysts, admins and agents only",
        ));
    };
    if let Some(k) = &q.kind
        && !matches!(k.as_str(), "call" | "voicemail")
    {
        return Err(ApiError::validation("kind is call or voicemail"));
    }
    let mut sql = format!("SELECT {COLUMNS} FROM recordings WHERE 1 = 1");
    let mut n = 0;
    let mut next = || {
        n += 1;
        format!("${n}")
    };
    let number = q
        .number
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty());
    if number.is_some() {
        let (a, b) = (next(), next());
        sql += &format!(" AND (caller LIKE {a} OR called LIKE {b})");
    }
    if agent.is_some() {
        sql += &format!(" AND agent = {}", next());
    }
    if own.is_some() {
        let (a, b) = (next(), next());
        sql += &format!(
            " AND (agent = {a} OR conversation_id IN (SELECT id FROM conversations WHERE assignee = {b}))"
        );
    }
    if q.from.is_some() {
        sql += &format!(" AND started_at >= {}", next());
    }
    if q.to.is_some() {
        sql += &format!(" AND started_at < {}", next());
    }
    if q.min_secs.is_some() {
        sql += &format!(" AND duration_ms >= {}", next());
    }
    if q.max_secs.is_some() {
        sql += &format!(" AND duration_ms <= {}", next());
    }
    if q.kind.is_some() {
        sql += &format!(" AND kind = {}", next());
    }
    if q.conversation.is_some() {
        sql += &format!(" AND conversation_id = {}", next());
    }
    sql += " ORDER BY started_at DESC LIMIT 200";
    // Built from constants and numbered placeholders only; values are bound.
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    if let Some(num) = &number {
        let pattern = format!("%{}%", num.replace(['%', '_'], ""));
        query = query.bind(pattern.clone()).bind(pattern);
    }
    if let Some(a) = agent {
        query = query.bind(a);
    }
    if let Some(me) = own {
        query = query.bind(me.clone()).bind(me);
    }
    if let Some(f) = q.from {
        query = query.bind(ms(f));
    }
    if let Some(t) = q.to {
        query = query.bind(ms(t));
    }
    if let Some(s) = q.min_secs {
        query = query.bind(s.saturating_mul(1000));
    }
    if let Some(s) = q.max_secs {
        query = query.bind(s.saturating_mul(1000));
    }
    if let Some(k) = q.kind {
        query = query.bind(k);
    }
    if let Some(c) = q.conversation {
        query = query.bind(c);
    }
    let rows = query
        .fetch_all(state.db.pool())
        .await
        .map_err(DbError::from)?;
    let recordings = rows
        .iter()
        .map(row_to_recording)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Json(RecordingList { recordings }))
}

/// An agent's own recording: a call they took, or a conversation assigned to them.
async fn is_own(state: &AppState, staff: &Staff, rec: &RecordingRow) -> Result<bool, ApiError> {
    let me = staff.user.id.to_string();
    if rec.agent.as_deref() == Some(me.as_str()) {
        return Ok(true);
    }
    let Ok(id) = rec
        .conversation_id
        .parse::<switchboard_bus::ConversationId>()
    else {
        return Ok(false);
    };
    Ok(state
        .db
        .conversation(id)
        .await?
        .is_some_and(|c| c.assignee == Some(staff.user.id)))
}

#[utoipa::path(get, path = "/api/recordings/{id}/audio", tag = "recordings",
    params(("id" = String, Path, description = "Recording id")),
    responses((status = 200, content_type = "audio/wav", description = "The WAV file"),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
/// The recording's WAV. Every access is audited.
pub async fn audio(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM recordings WHERE id = $1"
    )))
    .bind(&id)
    .fetch_optional(state.db.pool())
    .await
    .map_err(DbError::from)?
    .ok_or_else(|| ApiError::not_found("recording"))?;
    let rec = row_to_recording(&row)?;
    let allowed = sees_all(staff.user.role)
        || (staff.user.role == Role::Agent && is_own(&state, &staff, &rec).await?);
    if !allowed {
        tracing::warn!(recording = %id, user = %staff.user.id, role = %staff.user.role, "recording access refused");
        return Err(ApiError::forbidden("not your recording"));
    }
    sqlx::query(
        "INSERT INTO recording_access (recording_id, user_id, role, at) VALUES ($1, $2, $3, $4)",
    )
    .bind(&id)
    .bind(staff.user.id.to_string())
    .bind(staff.user.role.to_string())
    .bind(ms(Utc::now()))
    .execute(state.db.pool())
    .await
    .map_err(DbError::from)?;
    tracing::info!(recording = %id, conversation = %rec.conversation_id, user = %staff.user.id, role = %staff.user.role, "recording accessed");
    let bytes = tokio::fs::read(&rec.path)
        .await
        .map_err(|_| ApiError::not_found("recording file"))?;
    let mut resp = Body::from(bytes).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("audio/wav"));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    Ok(resp)
}

/// One playback of a recording.
#[derive(Debug, Serialize, ToSchema)]
pub struct Access {
    /// Who listened.
    pub user_id: String,
    /// Their role then.
    pub role: String,
    /// When.
    pub at: DateTime<Utc>,
}

/// Playbacks of a recording, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccessList {
    /// The playbacks.
    pub access: Vec<Access>,
}

#[utoipa::path(get, path = "/api/recordings/{id}/access", tag = "recordings",
    params(("id" = String, Path, description = "Recording id")),
    responses((status = 200, body = AccessList), (status = 403, body = ErrorBody)))]
/// Who played a recording and when (supervisors and admins).
pub async fn access(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
) -> Result<Json<AccessList>, ApiError> {
    if !matches!(staff.user.role, Role::Supervisor | Role::Admin) {
        return Err(ApiError::forbidden("supervisors and admins only"));
    }
    let rows = sqlx::query(
        "SELECT user_id, role, at FROM recording_access WHERE recording_id = $1 ORDER BY at DESC LIMIT 1000",
    )
    .bind(&id)
    .fetch_all(state.db.pool())
    .await
    .map_err(DbError::from)?;
    let access = rows
        .iter()
        .map(|r| {
            Ok(Access {
                user_id: r.try_get("user_id")?,
                role: r.try_get("role")?,
                at: from_ms(r.try_get("at")?),
            })
        })
        .collect::<Result<Vec<_>, DbError>>()?;
    Ok(Json(AccessList { access }))
}
