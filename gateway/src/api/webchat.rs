//! The web chat channel: customers start a conversation, chat over a
//! WebSocket (or plain HTTP), and resume after any disconnect.

use std::future::Future;

use axum::Json;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::Utc;
use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::FuturesOrdered;
use serde::{Deserialize, Serialize};
use serde_json::json;
use switchboard_bus::{
    Channel, Contact, ContactId, ConversationId, ConversationStatus, Event, Participant,
};
use tokio::sync::broadcast::error::RecvError;
use utoipa::ToSchema;

use super::conversations::{EventList, EventsQuery};
use super::error::{ApiError, ApiJson, ErrorBody};
use super::ws::{
    HELLO_TIMEOUT, MAX_FRAME_BYTES, Watch, closed, error_frame, frame, publish_typing,
    restart_close,
};
use super::{AppState, check_client_msg_id, check_text, parse_conversation_id};
use crate::auth::{Customer, new_token, token_hash};
use crate::hub::HubMsg;
use crate::writer::AppendError;

/// Messages a customer socket may have queued for storage before it stops reading.
const MAX_IN_FLIGHT: usize = 64;

/// How long a customer token stays valid.
pub const TOKEN_DAYS: i64 = 30;

/// What a customer may tell us when starting.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct StartBody {
    /// Name to show agents.
    pub display_name: Option<String>,
    /// E-mail for follow-up.
    pub email: Option<String>,
    /// Locale such as `en` or `zh-CN`.
    pub locale: Option<String>,
}

/// A started conversation and the token that opens it.
#[derive(Debug, Serialize, ToSchema)]
pub struct Started {
    /// The conversation.
    #[schema(value_type = String, format = Uuid)]
    pub conversation_id: ConversationId,
    /// The customer.
    #[schema(value_type = String, format = Uuid)]
    pub contact_id: ContactId,
    /// Bearer token for this conversation only (shown once).
    pub token: String,
}

/// A customer message.
#[derive(Debug, Deserialize, ToSchema)]
pub struct SendBody {
    /// Plain text.
    pub text: String,
    /// Client-chosen id; resending the same id stores the message once.
    pub client_msg_id: String,
}

/// Where the message landed.
#[derive(Debug, Serialize, ToSchema)]
pub struct Sent {
    /// Seq of the message in the conversation.
    pub seq: u64,
    /// True when this `client_msg_id` had been stored before.
    pub duplicate: bool,
}

fn clean_opt(v: Option<String>, max: usize, what: &str) -> Result<Option<String>, ApiError> {
    match v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty()) {
        Some(s) if s.chars().count() > max => Err(ApiError::validation(format!(
            "{what} is longer than {max} characters"
        ))),
        other => Ok(other),
    }
}

#[utoipa::path(post, path = "/api/webchat/conversations", tag = "webchat", request_body = StartBody,
    responses((status = 201, body = Started), (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
/// Starts a web chat conversation.
pub async fn start(
    State(state): State<AppState>,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<Started>), ApiError> {
    let body: StartBody = super::error::optional_json(&body)?;
    let mut contact = Contact::anonymous();
    contact.display_name = clean_opt(body.display_name, 80, "display_name")?;
    contact.email = clean_opt(body.email, 254, "email")?;
    contact.locale = clean_opt(body.locale, 35, "locale")?;
    let id = ConversationId::new();
    let contact_id = contact.id;
    state
        .writer
        .append(
            id,
            None,
            Box::new(move |c| match c {
                Some(_) => Err(AppendError::Conflict("conversation exists".into())),
                None => Ok(vec![Event::ConversationOpened {
                    channel: Channel::WebChat,
                    contact: contact.clone(),
                    subject: None,
                }]),
            }),
        )
        .await?;
    let token = new_token();
    state
        .db
        .create_customer_token(
            &token_hash(&token),
            id,
            contact_id,
            Utc::now() + chrono::Duration::days(TOKEN_DAYS),
        )
        .await?;
    metrics::counter!("switchboard_conversations_started_total", "channel" => "web_chat")
        .increment(1);
    Ok((
        StatusCode::CREATED,
        Json(Started {
            conversation_id: id,
            contact_id,
            token,
        }),
    ))
}

#[utoipa::path(get, path = "/api/webchat/conversations/{id}/events", tag = "webchat",
    params(("id" = String, Path, description = "Conversation id"), EventsQuery),
    responses((status = 200, body = EventList), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("customer_token" = [])))]
/// The customer's view of their conversation: messages and open/close, no internal notes.
pub async fn events(
    State(state): State<AppState>,
    customer: Customer,
    Path(id): Path<String>,
    Query(q): Query<EventsQuery>,
) -> Result<Json<EventList>, ApiError> {
    let id = parse_conversation_id(&id)?;
    customer.require(id)?;
    let mut w = Watch {
        conversation: id,
        last: q.after.unwrap_or(0),
        customer_view: true,
    };
    Ok(Json(EventList {
        events: w.fill_events(&state).await?,
    }))
}

/// Validates and queues a customer message; the returned future resolves once it is stored.
async fn submit_customer_message(
    state: &AppState,
    customer: Customer,
    text: &str,
    client_msg_id: &str,
) -> Result<impl Future<Output = Result<Sent, ApiError>> + Send + 'static, ApiError> {
    let text = check_text(text)?;
    let key = check_client_msg_id(client_msg_id)?;
    let from = Participant::Customer(customer.contact);
    let key2 = key.clone();
    let stored = state
        .writer
        .enqueue(
            customer.conversation,
            Some(key),
            Box::new(move |c| {
                let c = c.ok_or(AppendError::NotFound)?;
                let mut events = Vec::new();
                if c.status == ConversationStatus::Closed {
                    events.push(Event::ConversationReopened { by: from });
                }
                events.push(Event::MessageAdded {
                    from,
                    text: text.clone(),
                    attachments: vec![],
                    client_msg_id: Some(key2.clone()),
                });
                Ok(events)
            }),
        )
        .await?;
    Ok(async move {
        let appended = stored.await?;
        let seq = match appended.duplicate_of {
            Some(seq) => seq,
            None => appended.events.last().map_or(0, |e| e.seq),
        };
        metrics::counter!("switchboard_messages_received_total", "channel" => "web_chat")
            .increment(1);
        Ok(Sent {
            seq,
            duplicate: appended.duplicate_of.is_some(),
        })
    })
}

#[utoipa::path(post, path = "/api/webchat/conversations/{id}/messages", tag = "webchat",
    params(("id" = String, Path, description = "Conversation id")), request_body = SendBody,
    responses((status = 201, body = Sent), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("customer_token" = [])))]
/// Sends a customer message (idempotent by `client_msg_id`).
pub async fn send(
    State(state): State<AppState>,
    customer: Customer,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<SendBody>,
) -> Result<(StatusCode, Json<Sent>), ApiError> {
    let id = parse_conversation_id(&id)?;
    customer.require(id)?;
    let sent = submit_customer_message(&state, customer, &body.text, &body.client_msg_id)
        .await?
        .await?;
    Ok((StatusCode::CREATED, Json(sent)))
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum CustomerFrame {
    Hello {
        conversation_id: String,
        token: String,
        after: Option<u64>,
    },
    Message {
        text: String,
        client_msg_id: String,
    },
    Typing {
        active: bool,
    },
}

/// `GET /api/webchat/ws`: the customer socket (authenticated by its first frame).
pub async fn socket(State(state): State<AppState>, upgrade: WebSocketUpgrade) -> Response {
    upgrade
        .max_message_size(MAX_FRAME_BYTES)
        .on_upgrade(move |socket| customer_loop(socket, state))
}

async fn hello(socket: &mut WebSocket, state: &AppState) -> Result<(Customer, Watch), ApiError> {
    let first = tokio::time::timeout(HELLO_TIMEOUT, socket.recv())
        .await
        .map_err(|_| ApiError::unauthenticated("send a hello frame within 10 seconds"))?;
    let Some(Ok(Message::Text(text))) = first else {
        return Err(ApiError::bad_request("expected a hello frame"));
    };
    let Ok(CustomerFrame::Hello {
        conversation_id,
        token,
        after,
    }) = serde_json::from_str::<CustomerFrame>(&text)
    else {
        return Err(ApiError::bad_request(
            "first frame must be {\"type\":\"hello\",\"conversation_id\":…,\"token\":…,\"after\":N}",
        ));
    };
    let id = parse_conversation_id(&conversation_id)?;
    let customer = Customer::from_token(state, &token).await?;
    customer.require(id)?;
    Ok((
        customer,
        Watch {
            conversation: id,
            last: after.unwrap_or(0),
            customer_view: true,
        },
    ))
}

async fn customer_loop(mut socket: WebSocket, state: AppState) {
    let (customer, mut watch) = match hello(&mut socket, &state).await {
        Ok(v) => v,
        Err(e) => {
            let _ = socket.send(error_frame(&e)).await;
            let _ = socket.send(Message::Close(None)).await;
            return;
        }
    };
    // Subscribe before reading the backlog so nothing falls between the two.
    let mut hub = state.hub.subscribe_conversation(watch.conversation);
    metrics::gauge!("switchboard_ws_connections", "kind" => "customer").increment(1.0);
    let mut shutdown = state.shutdown.clone();
    // Messages stored in the order received; acks go out in the same order.
    let mut pending: FuturesOrdered<BoxFuture<'static, (String, Result<Sent, ApiError>)>> =
        FuturesOrdered::new();
    let result: Result<(), ApiError> = async {
        socket.send(frame(json!({"type": "ready"}))).await.map_err(closed)?;
        for m in watch.fill(&state).await? {
            socket.send(m).await.map_err(closed)?;
        }
        loop {
            tokio::select! {
                _ = shutdown.changed() => {
                    let _ = socket.send(restart_close()).await;
                    return Ok(());
                }
                msg = hub.recv() => {
                    let deliver: Vec<Message> = match msg {
                        Ok(HubMsg::Event(live)) if live.envelope.conversation_id == watch.conversation => watch.on_live(&state, &live).await?,
                        Ok(HubMsg::Event(_)) => continue,
                        Ok(HubMsg::Resync) | Err(RecvError::Lagged(_)) => watch.fill(&state).await?,
                        Err(RecvError::Closed) => return Ok(()),
                    };
                    for m in deliver {
                        socket.send(m).await.map_err(closed)?;
                    }
                }
                Some((client_msg_id, outcome)) = pending.next(), if !pending.is_empty() => {
                    let reply = match outcome {
                        Ok(sent) => json!({"type": "ack", "client_msg_id": client_msg_id, "seq": sent.seq}),
                        // Not stored: the widget keeps the message queued and sends it again.
                        Err(e) => json!({"type": "nack", "client_msg_id": client_msg_id, "error": {"code": e.code, "message": e.message}}),
                    };
                    socket.send(frame(reply)).await.map_err(closed)?;
                }
                incoming = socket.recv(), if pending.len() < MAX_IN_FLIGHT => {
                    let Some(Ok(msg)) = incoming else { return Ok(()) };
                    let text = match msg {
                        Message::Text(t) => t,
                        Message::Close(_) => return Ok(()),
                        _ => continue,
                    };
                    match serde_json::from_str::<CustomerFrame>(&text) {
                        Ok(CustomerFrame::Message { text, client_msg_id }) => {
                            match submit_customer_message(&state, customer, &text, &client_msg_id).await {
                                Ok(stored) => pending.push_back(Box::pin(async move { (client_msg_id, stored.await) })),
                                Err(e) => pending.push_back(Box::pin(async move { (client_msg_id, Err(e)) })),
                            }
                        }
                        Ok(CustomerFrame::Typing { active }) => {
                            publish_typing(&state, watch.conversation, Participant::Customer(customer.contact), active).await;
                        }
                        Ok(CustomerFrame::Hello { .. }) => {
                            socket.send(error_frame(&ApiError::bad_request("already said hello"))).await.map_err(closed)?;
                        }
                        Err(e) => {
                            socket.send(error_frame(&ApiError::bad_request(format!("unreadable frame: {e}")))).await.map_err(closed)?;
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
        tracing::warn!(error = %e.message, "customer socket ended with an error");
        let _ = socket.send(error_frame(&e)).await;
    }
    metrics::gauge!("switchboard_ws_connections", "kind" => "customer").decrement(1.0);
}
