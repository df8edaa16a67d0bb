//! WebSockets: the agent feed and the ordered, resumable per-conversation watch
//! shared with the customer socket.
//!
//! A *watch* delivers one conversation's stored events in seq order, each
//! exactly once, starting after a seq the client names. It reads the backlog
//! from the database, then follows the live hub; whenever the hub skips (a gap
//! in seq, a lagging receiver, a bus resubscription) it fills from the
//! database again. Because the database is the system of record, a reconnect
//! with the last seen seq never misses or repeats a message.

use std::collections::HashMap;
use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;
use switchboard_bus::{ConversationId, Envelope};
use tokio::sync::broadcast::error::RecvError;

use super::AppState;
use super::error::ApiError;
use crate::auth::{Permission, Staff};
use crate::hub::{HubMsg, LiveEvent};

/// Largest frame a client may send.
pub const MAX_FRAME_BYTES: usize = 64 * 1024;
const BACKLOG_PAGE: i64 = 1000;

/// Close code sent to clients when the server shuts down ("service restart").
pub const CLOSE_RESTART: u16 = 1012;

/// One conversation followed in order.
#[derive(Debug, Clone, Copy)]
pub struct Watch {
    /// The conversation.
    pub conversation: ConversationId,
    /// Last seq delivered (or skipped as not visible).
    pub last: u64,
    /// Deliver only what customers may see.
    pub customer_view: bool,
}

impl Watch {
    fn visible(&self, env: &Envelope) -> bool {
        !self.customer_view || env.event.visible_to_customer()
    }

    /// Reads stored events after `last` and returns the frames to deliver.
    pub async fn fill(&mut self, state: &AppState) -> Result<Vec<Message>, ApiError> {
        Ok(self
            .fill_events(state)
            .await?
            .iter()
            .map(event_frame)
            .collect())
    }

    /// Reads stored events after `last` and returns those to deliver.
    pub async fn fill_events(&mut self, state: &AppState) -> Result<Vec<Envelope>, ApiError> {
        let mut out = Vec::new();
        loop {
            let page = state
                .db
                .events_after(self.conversation, self.last, BACKLOG_PAGE)
                .await?;
            let n = page.len();
            for env in page {
                self.last = env.seq;
                if self.visible(&env) {
                    out.push(env);
                }
            }
            if (n as i64) < BACKLOG_PAGE {
                return Ok(out);
            }
        }
    }

    /// Decides what to deliver for a live event of this conversation.
    pub async fn on_live(
        &mut self,
        state: &AppState,
        live: &LiveEvent,
    ) -> Result<Vec<Message>, ApiError> {
        let env = &live.envelope;
        let this = |w: &Self| {
            if w.visible(env) {
                vec![Message::Text(live.frame.clone())]
            } else {
                vec![]
            }
        };
        if env.event.is_ephemeral() {
            return Ok(this(self));
        }
        if env.seq <= self.last {
            return Ok(vec![]); // already delivered: at-least-once upstream, exactly-once here
        }
        if env.seq == self.last + 1 {
            self.last = env.seq;
            return Ok(this(self));
        }
        metrics::counter!("switchboard_ws_gap_fills_total").increment(1);
        self.fill(state).await
    }
}

/// Serialises an event frame.
pub fn event_frame(env: &Envelope) -> Message {
    Message::Text(event_json(env))
}

#[derive(serde::Serialize)]
struct EventFrame<'a> {
    r#type: &'static str,
    envelope: &'a Envelope,
}

/// The JSON text of an event frame, `{"type":"event","envelope":…}`: serialised
/// once per event by the hub and shared by every socket that delivers it.
pub fn event_json(env: &Envelope) -> Utf8Bytes {
    let frame = EventFrame {
        r#type: "event",
        envelope: env,
    };
    match serde_json::to_string(&frame) {
        Ok(text) => Utf8Bytes::from(text),
        Err(e) => Utf8Bytes::from(
            json!({"type": "error", "error": {"code": "internal", "message": e.to_string()}})
                .to_string(),
        ),
    }
}

/// Serialises any JSON frame.
pub fn frame(v: serde_json::Value) -> Message {
    Message::Text(Utf8Bytes::from(v.to_string()))
}

/// An error frame.
pub fn error_frame(e: &ApiError) -> Message {
    frame(json!({"type": "error", "error": {"code": e.code, "message": e.message}}))
}

/// The close frame for shutdown.
pub fn restart_close() -> Message {
    Message::Close(Some(CloseFrame {
        code: CLOSE_RESTART,
        reason: Utf8Bytes::from_static("server restarting; reconnect"),
    }))
}

/// Rejects cross-site WebSocket hijacking: a browser always sends Origin, and
/// it must name this server.
fn check_origin(headers: &HeaderMap, state: &AppState) -> Result<(), ApiError> {
    let Some(origin) = headers
        .get(axum::http::header::ORIGIN)
        .and_then(|v| v.to_str().ok())
    else {
        return Ok(()); // not a browser (no ambient cookies were sent by a page)
    };
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let origin_host = origin.split("://").nth(1).unwrap_or("");
    let public_ok = state
        .config
        .public_url
        .as_deref()
        .is_some_and(|u| u.trim_end_matches('/') == origin.trim_end_matches('/'));
    if origin_host == host || public_ok {
        Ok(())
    } else {
        Err(ApiError::forbidden("cross-origin WebSocket refused"))
    }
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum AgentFrame {
    Watch {
        conversation_id: ConversationId,
        after: Option<u64>,
    },
    Unwatch {
        conversation_id: ConversationId,
    },
    Typing {
        conversation_id: ConversationId,
        active: bool,
    },
}

/// `GET /api/ws`: the staff live feed.
pub async fn agent_socket(
    State(state): State<AppState>,
    staff: Staff,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    staff.require(Permission::ReadConversations)?;
    check_origin(&headers, &state)?;
    Ok(upgrade
        .max_message_size(MAX_FRAME_BYTES)
        .on_upgrade(move |socket| agent_loop(socket, state, staff)))
}

async fn agent_loop(mut socket: WebSocket, state: AppState, staff: Staff) {
    metrics::gauge!("switchboard_ws_connections", "kind" => "agent").increment(1.0);
    let mut hub = state.hub.subscribe();
    let mut shutdown = state.shutdown.clone();
    let mut watches: HashMap<ConversationId, Watch> = HashMap::new();
    tracing::debug!(user = %staff.user.id, "agent socket open");
    let result: Result<(), ApiError> = async {
        loop {
            tokio::select! {
                _ = shutdown.changed() => {
                    let _ = socket.send(restart_close()).await;
                    return Ok(());
                }
                msg = hub.recv() => {
                    let deliver = match msg {
                        Ok(HubMsg::Event(live)) => match watches.get_mut(&live.envelope.conversation_id) {
                            Some(w) => w.on_live(&state, &live).await?,
                            None => vec![Message::Text(live.frame.clone())],
                        },
                        Ok(HubMsg::Resync) | Err(RecvError::Lagged(_)) => {
                            socket.send(frame(json!({"type": "resync"}))).await.map_err(closed)?;
                            let mut all = Vec::new();
                            for w in watches.values_mut() {
                                all.extend(w.fill(&state).await?);
                            }
                            all
                        }
                        Err(RecvError::Closed) => return Ok(()),
                    };
                    for m in deliver {
                        socket.send(m).await.map_err(closed)?;
                    }
                }
                incoming = socket.recv() => {
                    let Some(Ok(msg)) = incoming else { return Ok(()) };
                    let text = match msg {
                        Message::Text(t) => t,
                        Message::Close(_) => return Ok(()),
                        _ => continue,
                    };
                    match serde_json::from_str::<AgentFrame>(&text) {
                        Ok(AgentFrame::Watch { conversation_id, after }) => {
                            if state.db.conversation(conversation_id).await?.is_none() {
                                socket.send(error_frame(&ApiError::not_found("conversation"))).await.map_err(closed)?;
                                continue;
                            }
                            let mut w = Watch { conversation: conversation_id, last: after.unwrap_or(0), customer_view: false };
                            let backlog = w.fill(&state).await?;
                            watches.insert(conversation_id, w);
                            for m in backlog {
                                socket.send(m).await.map_err(closed)?;
                            }
                            socket.send(frame(json!({"type": "watching", "conversation_id": conversation_id, "last_seq": w.last}))).await.map_err(closed)?;
                        }
                        Ok(AgentFrame::Unwatch { conversation_id }) => {
                            watches.remove(&conversation_id);
                        }
                        Ok(AgentFrame::Typing { conversation_id, active }) => {
                            // Shown to the customer as "Agent is typing…"; never stored.
                            if !staff.user.role.can(Permission::WorkConversations) {
                                socket.send(error_frame(&ApiError::forbidden("this role cannot write to conversations"))).await.map_err(closed)?;
                                continue;
                            }
                            if state.db.conversation(conversation_id).await?.is_none() {
                                socket.send(error_frame(&ApiError::not_found("conversation"))).await.map_err(closed)?;
                                continue;
                            }
                            publish_typing(&state, conversation_id, switchboard_bus::Participant::Agent(staff.agent_id()), active).await;
                        }
                        Err(e) => {
                            let err = ApiError::bad_request(format!("unreadable frame: {e}"));
                            socket.send(error_frame(&err)).await.map_err(closed)?;
                        }
                    }
                }
            }
        }
    }
    .await;
    if let Err(e) = result
        && e.code != "closed"
    {
        tracing::warn!(error = %e.message, "agent socket ended with an error");
        let _ = socket.send(error_frame(&e)).await;
    }
    metrics::gauge!("switchboard_ws_connections", "kind" => "agent").decrement(1.0);
}

/// Publishes an ephemeral typing event (seq 0, never stored). Best effort: a
/// lost indicator is not worth an error to the typist.
pub async fn publish_typing(
    state: &AppState,
    conversation: ConversationId,
    by: switchboard_bus::Participant,
    active: bool,
) {
    publish_typing_on(state.bus.as_ref(), conversation, by, active).await;
}

/// [`publish_typing`] for callers that hold only the bus (the virtual agent).
pub async fn publish_typing_on(
    bus: &dyn switchboard_bus::Bus,
    conversation: ConversationId,
    by: switchboard_bus::Participant,
    active: bool,
) {
    let env = Envelope::new(
        conversation,
        0,
        switchboard_bus::Event::Typing { by, active },
    );
    if let Err(e) = bus.publish(&env).await {
        tracing::debug!(error = %e, "typing indicator not published");
    }
}

/// Maps a send failure (peer gone) to a quiet error.
pub fn closed(_: axum::Error) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::GONE,
        "closed",
        "peer closed the socket",
    )
}

/// How long a customer socket may wait before saying hello.
pub const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
