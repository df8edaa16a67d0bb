//! Staff endpoints on conversations: list, read, reply, note, assign, close.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use switchboard_bus::{
    AgentId, Conversation, ConversationId, ConversationStatus, Disposition, Envelope, Event,
    Participant,
};
use utoipa::{IntoParams, ToSchema};

use super::error::{ApiError, ApiJson, ErrorBody};
use super::{AppState, check_client_msg_id, check_text, parse_conversation_id};
use crate::auth::{Permission, Staff};
use crate::db::ListFilter;
use crate::writer::AppendError;

/// List filters.
#[derive(Debug, Deserialize, IntoParams)]
pub struct ListQuery {
    /// `unassigned`, `mine` or `all` (default).
    pub view: Option<String>,
    /// `open` (default), `closed` or `any`.
    pub status: Option<String>,
    /// Max results (1–500, default 100).
    pub limit: Option<i64>,
}

/// A page of conversations.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConversationList {
    /// Conversations, most recent activity first.
    #[schema(value_type = Vec<Object>)]
    pub conversations: Vec<Conversation>,
}

/// Events of a conversation.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventList {
    /// Envelopes in seq order.
    #[schema(value_type = Vec<Object>)]
    pub events: Vec<Envelope>,
}

/// Range of events to read.
#[derive(Debug, Deserialize, IntoParams)]
pub struct EventsQuery {
    /// Return events with seq greater than this (default 0).
    pub after: Option<u64>,
    /// Max events (1–10000, default 1000).
    pub limit: Option<i64>,
}

/// An agent's reply.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ReplyBody {
    /// Plain text (never rendered as HTML).
    pub text: String,
    /// Optional idempotency key; a repeat is stored once.
    pub client_msg_id: Option<String>,
}

/// An internal note.
#[derive(Debug, Deserialize, ToSchema)]
pub struct NoteBody {
    /// Plain text.
    pub text: String,
}

/// Assignment target.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct AssignBody {
    /// The agent to assign; default: the caller.
    pub agent_id: Option<String>,
}

/// Close with an outcome.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CloseBody {
    /// One of `resolved`, `resolved_by_bot`, `follow_up`, `abandoned`, `spam`, `transferred`.
    #[schema(value_type = String)]
    pub disposition: Disposition,
}

fn me(staff: &Staff) -> Participant {
    Participant::Agent(staff.agent_id())
}

pub(crate) fn existing(state: Option<&Conversation>) -> Result<&Conversation, AppendError> {
    state.ok_or(AppendError::NotFound)
}

/// May `staff` act on a conversation with this assignee? (Assignee, unassigned, or supervisor/admin.)
fn may_act(staff_id: AgentId, acts_for_others: bool, c: &Conversation) -> Result<(), AppendError> {
    match c.assignee {
        Some(a) if a != staff_id && !acts_for_others => Err(AppendError::Forbidden(
            "this conversation is assigned to another agent; ask a supervisor to reassign it"
                .into(),
        )),
        _ => Ok(()),
    }
}

#[utoipa::path(get, path = "/api/conversations", tag = "conversations", params(ListQuery),
    responses((status = 200, body = ConversationList), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
/// Lists conversations.
pub async fn list(
    State(state): State<AppState>,
    staff: Staff,
    Query(q): Query<ListQuery>,
) -> Result<Json<ConversationList>, ApiError> {
    staff.require(Permission::ReadConversations)?;
    let assignee = match q.view.as_deref().unwrap_or("all") {
        "all" => None,
        "unassigned" => Some(None),
        "mine" => Some(Some(staff.agent_id())),
        other => {
            return Err(ApiError::validation(format!(
                "unknown view {other:?}: use unassigned, mine or all"
            )));
        }
    };
    let status = match q.status.as_deref().unwrap_or("open") {
        "open" => Some("open"),
        "closed" => Some("closed"),
        "any" => None,
        other => {
            return Err(ApiError::validation(format!(
                "unknown status {other:?}: use open, closed or any"
            )));
        }
    };
    let conversations = state
        .db
        .conversations(&ListFilter {
            assignee,
            status,
            limit: q.limit.unwrap_or(100),
        })
        .await?;
    Ok(Json(ConversationList { conversations }))
}

#[utoipa::path(get, path = "/api/conversations/{id}", tag = "conversations",
    params(("id" = String, Path, description = "Conversation id")),
    responses((status = 200, body = Object), (status = 404, body = ErrorBody)))]
/// One conversation's state.
pub async fn get_one(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
) -> Result<Json<Conversation>, ApiError> {
    staff.require(Permission::ReadConversations)?;
    let id = parse_conversation_id(&id)?;
    state
        .db
        .conversation(id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found("conversation"))
}

#[utoipa::path(get, path = "/api/conversations/{id}/events", tag = "conversations",
    params(("id" = String, Path, description = "Conversation id"), EventsQuery),
    responses((status = 200, body = EventList), (status = 404, body = ErrorBody)))]
/// A conversation's stored events (including notes), in seq order.
pub async fn events(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
    Query(q): Query<EventsQuery>,
) -> Result<Json<EventList>, ApiError> {
    staff.require(Permission::ReadConversations)?;
    let id = parse_conversation_id(&id)?;
    if state.db.conversation(id).await?.is_none() {
        return Err(ApiError::not_found("conversation"));
    }
    let events = state
        .db
        .events_after(id, q.after.unwrap_or(0), q.limit.unwrap_or(1000))
        .await?;
    Ok(Json(EventList { events }))
}

/// Appends what `decide` returns and answers with the stored events.
pub(crate) async fn append(
    state: &AppState,
    id: ConversationId,
    key: Option<String>,
    decide: crate::writer::Decide,
) -> Result<Json<EventList>, ApiError> {
    let appended = state.writer.append(id, key, decide).await?;
    Ok(Json(EventList {
        events: appended.events,
    }))
}

#[utoipa::path(post, path = "/api/conversations/{id}/messages", tag = "conversations",
    params(("id" = String, Path, description = "Conversation id")), request_body = ReplyBody,
    responses((status = 201, body = EventList), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 503, body = ErrorBody)))]
/// Replies to the customer. Replying to an unassigned conversation assigns it to the caller.
pub async fn reply(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ReplyBody>,
) -> Result<(StatusCode, Json<EventList>), ApiError> {
    staff.require(Permission::WorkConversations)?;
    let id = parse_conversation_id(&id)?;
    let text = check_text(&body.text)?;
    let key = body
        .client_msg_id
        .as_deref()
        .map(check_client_msg_id)
        .transpose()?;
    let agent = staff.agent_id();
    let others = staff.user.role.can(Permission::ActForOthers);
    let key2 = key.clone();
    let resp = append(
        &state,
        id,
        key,
        Box::new(move |c| {
            let c = existing(c)?;
            if c.status == ConversationStatus::Closed {
                return Err(AppendError::Conflict(
                    "the conversation is closed; reopen it to reply".into(),
                ));
            }
            may_act(agent, others, c)?;
            let mut events = Vec::new();
            if c.assignee.is_none() {
                events.push(Event::Assigned {
                    agent,
                    by: Participant::Agent(agent),
                });
            }
            events.push(Event::MessageAdded {
                from: Participant::Agent(agent),
                text: text.clone(),
                attachments: vec![],
                client_msg_id: key2.clone(),
            });
            Ok(events)
        }),
    )
    .await?;
    Ok((StatusCode::CREATED, resp))
}

#[utoipa::path(post, path = "/api/conversations/{id}/notes", tag = "conversations",
    params(("id" = String, Path, description = "Conversation id")), request_body = NoteBody,
    responses((status = 201, body = EventList), (status = 404, body = ErrorBody)))]
/// Adds an internal note (never shown to the customer).
pub async fn note(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<NoteBody>,
) -> Result<(StatusCode, Json<EventList>), ApiError> {
    staff.require(Permission::WorkConversations)?;
    let id = parse_conversation_id(&id)?;
    let text = check_text(&body.text)?;
    let by = staff.agent_id();
    let resp = append(
        &state,
        id,
        None,
        Box::new(move |c| {
            existing(c)?;
            Ok(vec![Event::NoteAdded {
                by,
                text: text.clone(),
            }])
        }),
    )
    .await?;
    Ok((StatusCode::CREATED, resp))
}

#[utoipa::path(post, path = "/api/conversations/{id}/assign", tag = "conversations",
    params(("id" = String, Path, description = "Conversation id")), request_body = AssignBody,
    responses((status = 200, body = EventList), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
/// Assigns the conversation (to the caller by default; to others: supervisors and admins).
pub async fn assign(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<EventList>, ApiError> {
    staff.require(Permission::WorkConversations)?;
    let id = parse_conversation_id(&id)?;
    let body: AssignBody = super::error::optional_json(&body)?;
    let me_id = staff.agent_id();
    let target = match body.agent_id.as_deref() {
        None => me_id,
        Some(raw) => raw
            .parse()
            .map_err(|_| ApiError::validation("agent_id is not a valid id"))?,
    };
    let others = staff.user.role.can(Permission::ActForOthers);
    if target != me_id {
        if !others {
            return Err(ApiError::forbidden(
                "only supervisors and admins assign conversations to others",
            ));
        }
        let user = state
            .db
            .user(target)
            .await?
            .ok_or_else(|| ApiError::validation("no such agent"))?;
        if !user.active || !user.role.can(Permission::WorkConversations) {
            return Err(ApiError::validation("that user cannot take conversations"));
        }
    }
    let by = me(&staff);
    append(
        &state,
        id,
        None,
        Box::new(move |c| {
            let c = existing(c)?;
            if c.status == ConversationStatus::Closed {
                return Err(AppendError::Conflict("the conversation is closed".into()));
            }
            if c.assignee == Some(target) {
                return Ok(vec![]);
            }
            may_act(me_id, others, c)?;
            Ok(vec![Event::Assigned { agent: target, by }])
        }),
    )
    .await
}

#[utoipa::path(post, path = "/api/conversations/{id}/unassign", tag = "conversations",
    params(("id" = String, Path, description = "Conversation id")),
    responses((status = 200, body = EventList), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
/// Removes the assignee (the assignee themself, supervisors and admins).
pub async fn unassign(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
) -> Result<Json<EventList>, ApiError> {
    staff.require(Permission::WorkConversations)?;
    let id = parse_conversation_id(&id)?;
    let me_id = staff.agent_id();
    let others = staff.user.role.can(Permission::ActForOthers);
    let by = me(&staff);
    append(
        &state,
        id,
        None,
        Box::new(move |c| {
            let c = existing(c)?;
            let Some(agent) = c.assignee else {
                return Ok(vec![]);
            };
            may_act(me_id, others, c)?;
            Ok(vec![Event::Unassigned { agent, by }])
        }),
    )
    .await
}

#[utoipa::path(post, path = "/api/conversations/{id}/close", tag = "conversations",
    params(("id" = String, Path, description = "Conversation id")), request_body = CloseBody,
    responses((status = 200, body = EventList), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
/// Closes the conversation with a disposition.
pub async fn close(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<CloseBody>,
) -> Result<Json<EventList>, ApiError> {
    staff.require(Permission::WorkConversations)?;
    let id = parse_conversation_id(&id)?;
    let me_id = staff.agent_id();
    let others = staff.user.role.can(Permission::ActForOthers);
    let by = me(&staff);
    let disposition = body.disposition;
    append(
        &state,
        id,
        None,
        Box::new(move |c| {
            let c = existing(c)?;
            if c.status == ConversationStatus::Closed {
                return Err(AppendError::Conflict(
                    "the conversation is already closed".into(),
                ));
            }
            may_act(me_id, others, c)?;
            Ok(vec![Event::ConversationClosed { disposition, by }])
        }),
    )
    .await
}

#[utoipa::path(post, path = "/api/conversations/{id}/reopen", tag = "conversations",
    params(("id" = String, Path, description = "Conversation id")),
    responses((status = 200, body = EventList), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
/// Reopens a closed conversation.
pub async fn reopen(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
) -> Result<Json<EventList>, ApiError> {
    staff.require(Permission::WorkConversations)?;
    let id = parse_conversation_id(&id)?;
    let by = me(&staff);
    append(
        &state,
        id,
        None,
        Box::new(move |c| {
            let c = existing(c)?;
            if c.status == ConversationStatus::Open {
                return Err(AppendError::Conflict(
                    "the conversation is already open".into(),
                ));
            }
            Ok(vec![Event::ConversationReopened { by }])
        }),
    )
    .await
}
