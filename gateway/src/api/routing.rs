//! Routing endpoints: presence, offers, wrap-up, transfers, escalation by the
//! customer, the supervisor's live view and the routing configuration.
//!
//! Nothing here calls the router directly: agents' answers, transfers and
//! handoffs are stored as conversation events, presence and configuration
//! as rows, and the routing leader (see [`crate::routing`]) acts on them,
//! whichever node it runs on.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use switchboard_bus::{
    AgentId, Conversation, ConversationStatus, Event, HandoffContext, HandoffReason, Participant,
    Skill, TranscriptLine,
};
use switchboard_router::{AgentProfile, Capacity, Language, Presence, QueueConfig, Team};
use utoipa::ToSchema;

use super::conversations::{EventList, append, existing};
use super::error::{ApiError, ApiJson, ErrorBody};
use super::{AppState, parse_conversation_id};
use crate::auth::{Customer, Permission, Staff};
use crate::writer::AppendError;

// ---- presence ----------------------------------------------------------------

/// An agent's presence as the API shows and takes it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PresenceBody {
    /// `available`, `busy`, `away` or `offline`.
    pub state: String,
    /// Why away (e.g. `lunch`); only for `away`.
    #[serde(default)]
    pub reason: Option<String>,
}

impl PresenceBody {
    fn parse(&self) -> Result<Presence, ApiError> {
        Ok(match self.state.as_str() {
            "available" => Presence::Available,
            "busy" => Presence::Busy,
            "offline" => Presence::Offline,
            "away" => {
                let reason = self.reason.as_deref().unwrap_or("away").trim();
                if reason.is_empty() || reason.chars().count() > 60 {
                    return Err(ApiError::validation("reason must be 1–60 characters"));
                }
                Presence::Away {
                    reason: reason.to_string(),
                }
            }
            other => {
                return Err(ApiError::validation(format!(
                    "unknown state {other:?}; use available, busy, away or offline"
                )));
            }
        })
    }

    fn from_presence(p: &Presence) -> Self {
        match p {
            Presence::Available => PresenceBody {
                state: "available".into(),
                reason: None,
            },
            Presence::Busy => PresenceBody {
                state: "busy".into(),
                reason: None,
            },
            Presence::Offline => PresenceBody {
                state: "offline".into(),
                reason: None,
            },
            Presence::Away { reason } => PresenceBody {
                state: "away".into(),
                reason: Some(reason.clone()),
            },
        }
    }
}

/// What an agent's inbox needs about routing.
#[derive(Debug, Serialize, ToSchema)]
pub struct MyRouting {
    /// Presence.
    pub presence: PresenceBody,
    /// Pending offers to this agent.
    #[schema(value_type = Vec<Object>)]
    pub offers: Vec<OfferView>,
    /// The agent's activity and load as the router last reported it
    /// (`null` before the router has seen the agent).
    #[schema(value_type = Object)]
    pub router: Option<serde_json::Value>,
}

/// A pending offer.
#[derive(Debug, Serialize)]
pub struct OfferView {
    /// The conversation.
    pub conversation_id: String,
    /// The offer.
    pub offer: String,
    /// When it lapses.
    pub expires_at: chrono::DateTime<Utc>,
    /// The queue.
    pub queue: Option<String>,
    /// The conversation as it stands.
    pub conversation: Conversation,
}

#[utoipa::path(get, path = "/api/routing/me", tag = "routing",
    responses((status = 200, body = MyRouting), (status = 401, body = ErrorBody)))]
/// The caller's presence, pending offers and routing activity.
pub async fn me(State(state): State<AppState>, staff: Staff) -> Result<Json<MyRouting>, ApiError> {
    staff.require(Permission::WorkConversations)?;
    let me = staff.agent_id();
    let presence = state.db.presence(me).await?;
    let offers = state
        .db
        .routing_candidates()
        .await?
        .into_iter()
        .filter_map(|c| {
            let o = c.offer.clone()?;
            (o.agent == me).then(|| OfferView {
                conversation_id: c.id.to_string(),
                offer: o.offer,
                expires_at: o.expires_at,
                queue: c.queue.clone(),
                conversation: c,
            })
        })
        .collect();
    let router = snapshot_doc(&state).await?.and_then(|doc| {
        doc["agents"]
            .as_array()?
            .iter()
            .find(|a| a["id"].as_str() == Some(me.to_string().as_str()))
            .cloned()
    });
    Ok(Json(MyRouting {
        presence: PresenceBody::from_presence(&presence),
        offers,
        router,
    }))
}

#[utoipa::path(put, path = "/api/routing/me/presence", tag = "routing", request_body = PresenceBody,
    responses((status = 200, body = PresenceBody), (status = 422, body = ErrorBody)))]
/// Sets the caller's presence.
pub async fn set_my_presence(
    State(state): State<AppState>,
    staff: Staff,
    ApiJson(body): ApiJson<PresenceBody>,
) -> Result<Json<PresenceBody>, ApiError> {
    staff.require(Permission::WorkConversations)?;
    let p = body.parse()?;
    state.db.set_presence(staff.agent_id(), &p).await?;
    Ok(Json(PresenceBody::from_presence(&p)))
}

#[utoipa::path(put, path = "/api/routing/agents/{id}/presence", tag = "routing", request_body = PresenceBody,
    params(("id" = String, Path, description = "Agent (user) id")),
    responses((status = 200, body = PresenceBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
/// Sets another agent's presence (supervisors and admins).
pub async fn set_agent_presence(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<PresenceBody>,
) -> Result<Json<PresenceBody>, ApiError> {
    staff.require(Permission::ActForOthers)?;
    let agent = parse_agent(&state, &id).await?;
    let p = body.parse()?;
    state.db.set_presence(agent, &p).await?;
    Ok(Json(PresenceBody::from_presence(&p)))
}

async fn parse_agent(state: &AppState, raw: &str) -> Result<AgentId, ApiError> {
    let id: AgentId = raw.parse().map_err(|_| ApiError::not_found("agent"))?;
    match state.db.user(id).await? {
        Some(u) if u.role.can(Permission::WorkConversations) => Ok(id),
        _ => Err(ApiError::not_found("agent")),
    }
}

// ---- offers, wrap-up, transfer ---------------------------------------------------

#[utoipa::path(post, path = "/api/conversations/{id}/offers/{offer}/accept", tag = "routing",
    params(("id" = String, Path, description = "Conversation id"), ("offer" = String, Path, description = "Offer id")),
    responses((status = 200, body = EventList), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
/// Accepts an offer made to the caller. 409 when it lapsed or went elsewhere.
pub async fn accept(
    State(state): State<AppState>,
    staff: Staff,
    Path((id, offer)): Path<(String, String)>,
) -> Result<Json<EventList>, ApiError> {
    answer(state, staff, id, offer, true).await
}

#[utoipa::path(post, path = "/api/conversations/{id}/offers/{offer}/decline", tag = "routing",
    params(("id" = String, Path, description = "Conversation id"), ("offer" = String, Path, description = "Offer id")),
    responses((status = 200, body = EventList), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
/// Declines an offer made to the caller; the router offers it to someone else.
pub async fn decline(
    State(state): State<AppState>,
    staff: Staff,
    Path((id, offer)): Path<(String, String)>,
) -> Result<Json<EventList>, ApiError> {
    answer(state, staff, id, offer, false).await
}

async fn answer(
    state: AppState,
    staff: Staff,
    id: String,
    offer: String,
    accepted: bool,
) -> Result<Json<EventList>, ApiError> {
    staff.require(Permission::WorkConversations)?;
    let id = parse_conversation_id(&id)?;
    let agent = staff.agent_id();
    append(
        &state,
        id,
        None,
        Box::new(move |c| {
            let c = existing(c)?;
            match &c.offer {
                Some(p) if p.offer == offer && p.agent == agent => {
                    if p.expires_at < Utc::now() {
                        return Err(AppendError::Conflict("the offer has expired".into()));
                    }
                    Ok(vec![Event::OfferAnswered {
                        offer: offer.clone(),
                        agent,
                        accepted,
                    }])
                }
                _ => Err(AppendError::Conflict(
                    "this offer is no longer open (it expired or went to someone else)".into(),
                )),
            }
        }),
    )
    .await
}

#[utoipa::path(post, path = "/api/conversations/{id}/wrap-up-done", tag = "routing",
    params(("id" = String, Path, description = "Conversation id")),
    responses((status = 200, body = EventList), (status = 404, body = ErrorBody)))]
/// Ends the caller's after-contact work on a conversation early.
pub async fn wrap_up_done(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
) -> Result<Json<EventList>, ApiError> {
    staff.require(Permission::WorkConversations)?;
    let id = parse_conversation_id(&id)?;
    let agent = staff.agent_id();
    append(
        &state,
        id,
        None,
        Box::new(move |c| {
            existing(c)?;
            Ok(vec![Event::WrapUpDone { agent }])
        }),
    )
    .await
}

/// Where to transfer a conversation.
#[derive(Debug, Deserialize, ToSchema)]
pub struct TransferBody {
    /// A queue to put it back into (it keeps its history).
    #[serde(default)]
    pub queue: Option<String>,
    /// Or an agent to hand it to directly.
    #[serde(default)]
    pub agent_id: Option<String>,
    /// Optional note for the next agent (internal).
    #[serde(default)]
    pub note: Option<String>,
}

#[utoipa::path(post, path = "/api/conversations/{id}/transfer", tag = "routing", request_body = TransferBody,
    params(("id" = String, Path, description = "Conversation id")),
    responses((status = 200, body = EventList), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
/// Transfers a conversation to a queue or an agent, keeping its history.
pub async fn transfer(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<TransferBody>,
) -> Result<Json<EventList>, ApiError> {
    staff.require(Permission::WorkConversations)?;
    let id = parse_conversation_id(&id)?;
    let me = staff.agent_id();
    let others = staff.user.role.can(Permission::ActForOthers);
    let note = body.note.as_deref().map(super::check_text).transpose()?;
    enum Target {
        Queue(Skill),
        Agent(AgentId),
    }
    let target = match (body.queue.as_deref(), body.agent_id.as_deref()) {
        (Some(q), None) => {
            let exists = state
                .db
                .routing_queues()
                .await?
                .iter()
                .any(|c| c.id.as_str() == q);
            if !exists {
                return Err(ApiError::validation(format!("no queue named {q:?}")));
            }
            Target::Queue(Skill::new(q).map_err(|e| ApiError::validation(e.to_string()))?)
        }
        (None, Some(a)) => Target::Agent(
            parse_agent(&state, a)
                .await
                .map_err(|_| ApiError::validation("no such agent"))?,
        ),
        _ => return Err(ApiError::validation("give either queue or agent_id")),
    };
    let by = Participant::Agent(me);
    append(
        &state,
        id,
        None,
        Box::new(move |c| {
            let c = existing(c)?;
            if c.status == ConversationStatus::Closed {
                return Err(AppendError::Conflict("the conversation is closed".into()));
            }
            if let Some(a) = c.assignee
                && a != me
                && !others
            {
                return Err(AppendError::Forbidden(
                    "only the assignee or a supervisor can transfer this conversation".into(),
                ));
            }
            let mut events = Vec::new();
            if let Some(text) = &note {
                events.push(Event::NoteAdded {
                    by: me,
                    text: text.clone(),
                });
            }
            if let Some(a) = c.assignee {
                events.push(Event::Unassigned { agent: a, by });
            }
            match &target {
                Target::Queue(skill) => events.push(Event::HandoffRequested {
                    reason: HandoffReason::Transfer,
                    skill: Some(skill.clone()),
                    context: HandoffContext {
                        summary: note.clone(),
                        ..HandoffContext::default()
                    },
                }),
                Target::Agent(agent) => events.push(Event::Assigned { agent: *agent, by }),
            }
            Ok(events)
        }),
    )
    .await
}

// ---- the customer asks for a person -------------------------------------------------

/// A customer's request for a person.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct HumanBody {
    /// Optional topic hint (a queue/skill name such as `billing`).
    #[serde(default)]
    pub topic: Option<String>,
}

#[utoipa::path(post, path = "/api/webchat/conversations/{id}/handoff", tag = "webchat",
    params(("id" = String, Path, description = "Conversation id")), request_body = HumanBody,
    responses((status = 202, body = EventList), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("customer_token" = [])))]
/// The customer asks to talk to a person: the conversation is queued for an agent.
pub async fn customer_handoff(
    State(state): State<AppState>,
    customer: Customer,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<EventList>), ApiError> {
    let id = parse_conversation_id(&id)?;
    customer.require(id)?;
    let body: HumanBody = super::error::optional_json(&body)?;
    let skill = match body.topic.as_deref() {
        Some(t) => Some(Skill::new(t).map_err(|e| ApiError::validation(e.to_string()))?),
        None => None,
    };
    let transcript = transcript_of(&state, id).await?;
    let appended = state
        .writer
        .append(
            id,
            None,
            Box::new(move |c| {
                let c = existing(c)?;
                if c.status == ConversationStatus::Closed {
                    return Err(AppendError::Conflict("the conversation is closed".into()));
                }
                if c.assignee.is_some() || c.awaiting_agent {
                    return Ok(vec![]); // already with, or waiting for, a person
                }
                Ok(vec![Event::HandoffRequested {
                    reason: HandoffReason::CustomerRequest,
                    skill: skill.clone(),
                    context: HandoffContext {
                        transcript: transcript.clone(),
                        ..HandoffContext::default()
                    },
                }])
            }),
        )
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(EventList {
            events: appended.events,
        }),
    ))
}

/// The messages of a conversation, as the context a handoff carries.
pub async fn transcript_of(
    state: &AppState,
    id: switchboard_bus::ConversationId,
) -> Result<Vec<TranscriptLine>, ApiError> {
    Ok(state
        .db
        .events_after(id, 0, 10_000)
        .await?
        .into_iter()
        .filter_map(|e| match e.event {
            Event::MessageAdded { from, text, .. } => Some(TranscriptLine {
                from,
                text,
                at: e.at,
            }),
            _ => None,
        })
        .collect())
}

// ---- supervisor view ----------------------------------------------------------------------

async fn snapshot_doc(state: &AppState) -> Result<Option<serde_json::Value>, ApiError> {
    let Some(s) = state.db.routing_snapshot().await? else {
        return Ok(None);
    };
    let mut doc: serde_json::Value = serde_json::from_str(&s.snapshot)
        .map_err(|e| ApiError::internal(format!("routing snapshot unreadable: {e}")))?;
    doc["age_ms"] = serde_json::json!(Utc::now().timestamp_millis() - s.updated_at);
    Ok(Some(doc))
}

#[utoipa::path(get, path = "/api/routing/snapshot", tag = "routing",
    responses((status = 200, body = Object), (status = 403, body = ErrorBody), (status = 503, body = ErrorBody)))]
/// The live routing view: queues (waiting, longest wait, service level) and
/// agents (presence, activity, load, time in state), with agents' names.
pub async fn snapshot(
    State(state): State<AppState>,
    staff: Staff,
) -> Result<Json<serde_json::Value>, ApiError> {
    if !(staff.user.role.can(Permission::ActForOthers)
        || staff.user.role == crate::auth::Role::Analyst)
    {
        return Err(ApiError::forbidden("supervisors, analysts and admins only"));
    }
    let Some(mut doc) = snapshot_doc(&state).await? else {
        return Err(ApiError::unavailable("routing has not started yet"));
    };
    let users = state.db.users().await?;
    if let Some(agents) = doc["agents"].as_array_mut() {
        for a in agents {
            let id = a["id"].as_str().unwrap_or_default().to_string();
            if let Some(u) = users.iter().find(|u| u.id.to_string() == id) {
                a["name"] = serde_json::json!(u.name);
                a["email"] = serde_json::json!(u.email);
            }
        }
    }
    Ok(Json(doc))
}

// ---- configuration ------------------------------------------------------------------------

/// Queues as stored.
#[derive(Debug, Serialize, ToSchema)]
pub struct QueueList {
    /// Each queue's configuration (see the router crate's `QueueConfig`).
    #[schema(value_type = Vec<Object>)]
    pub queues: Vec<QueueConfig>,
}

#[utoipa::path(get, path = "/api/routing/queues", tag = "routing",
    responses((status = 200, body = QueueList)))]
/// Lists the routing queues (any staff member).
pub async fn queues(
    State(state): State<AppState>,
    staff: Staff,
) -> Result<Json<QueueList>, ApiError> {
    let _ = staff;
    Ok(Json(QueueList {
        queues: state.db.routing_queues().await?,
    }))
}

#[utoipa::path(put, path = "/api/routing/queues/{id}", tag = "routing",
    params(("id" = String, Path, description = "Queue id: lowercase letters, digits, - and _; a handoff for skill S goes to queue S")),
    request_body(content = Object, description = "A QueueConfig; `id` is taken from the path. Durations are seconds."),
    responses((status = 200, body = Object), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
/// Creates or replaces a queue (admins).
pub async fn put_queue(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
    ApiJson(mut body): ApiJson<serde_json::Value>,
) -> Result<Json<QueueConfig>, ApiError> {
    staff.require(Permission::ManageUsers)?;
    let skill = Skill::new(&id).map_err(|e| ApiError::validation(format!("queue id: {e}")))?;
    if let Some(obj) = body.as_object_mut() {
        obj.insert("id".into(), serde_json::json!(skill.as_str()));
    }
    let mut base = serde_json::to_value(QueueConfig::new(
        skill.as_str(),
        switchboard_router::ChannelKind::Chat,
    ))
    .map_err(|e| ApiError::internal(e.to_string()))?;
    merge(&mut base, body);
    let cfg: QueueConfig = serde_json::from_value(base)
        .map_err(|e| ApiError::validation(format!("queue configuration: {e}")))?;
    cfg.validate()
        .map_err(|e| ApiError::validation(e.to_string()))?;
    state.db.put_routing_queue(&cfg).await?;
    Ok(Json(cfg))
}

fn merge(base: &mut serde_json::Value, patch: serde_json::Value) {
    match (base, patch) {
        (serde_json::Value::Object(b), serde_json::Value::Object(p)) => {
            for (k, v) in p {
                b.insert(k, v);
            }
        }
        (b, p) => *b = p,
    }
}

#[utoipa::path(delete, path = "/api/routing/queues/{id}", tag = "routing",
    params(("id" = String, Path, description = "Queue id")),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
/// Deletes a queue (admins). Contacts waiting in it are routed to the default queue.
pub async fn delete_queue(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    staff.require(Permission::ManageUsers)?;
    if state.db.delete_routing_queue(&id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("queue"))
    }
}

/// An agent's routing profile as the API takes it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AgentRoutingBody {
    /// Skill name → proficiency 1–5.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub skills: std::collections::BTreeMap<String, u8>,
    /// Languages spoken (e.g. `en`, `zh`).
    #[serde(default)]
    pub languages: Vec<String>,
    /// Teams.
    #[serde(default)]
    pub teams: Vec<String>,
    /// Calls at once (0 or 1).
    #[serde(default = "one")]
    pub voice_capacity: u16,
    /// Chats at once.
    #[serde(default = "three")]
    pub chat_capacity: u16,
}

fn one() -> u16 {
    1
}
fn three() -> u16 {
    3
}

impl AgentRoutingBody {
    fn from_profile(p: &AgentProfile) -> Self {
        AgentRoutingBody {
            skills: p
                .skills
                .iter()
                .map(|(s, l)| (s.as_str().to_string(), *l))
                .collect(),
            languages: p.languages.iter().map(|l| l.as_str().to_string()).collect(),
            teams: p.teams.iter().map(|t| t.as_str().to_string()).collect(),
            voice_capacity: p.capacity.voice,
            chat_capacity: p.capacity.chat,
        }
    }
}

#[utoipa::path(get, path = "/api/routing/agents/{id}", tag = "routing",
    params(("id" = String, Path, description = "Agent (user) id")),
    responses((status = 200, body = AgentRoutingBody), (status = 404, body = ErrorBody)))]
/// An agent's skills, languages, teams and capacity.
pub async fn get_agent(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
) -> Result<Json<AgentRoutingBody>, ApiError> {
    staff.require(Permission::ReadConversations)?;
    let agent = parse_agent(&state, &id).await?;
    Ok(Json(AgentRoutingBody::from_profile(
        &state.db.agent_profile(agent).await?,
    )))
}

#[utoipa::path(put, path = "/api/routing/agents/{id}", tag = "routing", request_body = AgentRoutingBody,
    params(("id" = String, Path, description = "Agent (user) id")),
    responses((status = 200, body = AgentRoutingBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
/// Sets an agent's skills, languages, teams and capacity (admins).
pub async fn put_agent(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<AgentRoutingBody>,
) -> Result<Json<AgentRoutingBody>, ApiError> {
    staff.require(Permission::ManageUsers)?;
    let agent = parse_agent(&state, &id).await?;
    let mut profile = state.db.agent_profile(agent).await?;
    profile.skills.clear();
    for (name, level) in &body.skills {
        let skill =
            Skill::new(name).map_err(|e| ApiError::validation(format!("skill {name:?}: {e}")))?;
        profile.skills.insert(skill, *level);
    }
    profile.languages = body.languages.iter().map(Language::new).collect();
    profile.teams = body.teams.iter().map(Team::new).collect();
    profile.capacity = Capacity {
        voice: body.voice_capacity,
        chat: body.chat_capacity,
    };
    profile
        .validate()
        .map_err(|e| ApiError::validation(e.to_string()))?;
    state.db.put_agent_profile(&profile).await?;
    Ok(Json(AgentRoutingBody::from_profile(&profile)))
}
