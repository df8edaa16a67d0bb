//! Fans bus events out to this node's WebSocket connections.
//!
//! One bus subscription per node, started before the HTTP listener, feeds a
//! broadcast channel. A connection that falls behind the channel, or a hub
//! that lost its place on the bus, does not lose events: connections fill
//! gaps from the database (see `api::ws`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ws::Utf8Bytes;
use futures::StreamExt;
use switchboard_bus::{Bus, BusError, ConversationId, Envelope, StartAt};
use tokio::sync::broadcast;

/// An event from the bus with its WebSocket frame, serialised once for every socket.
#[derive(Debug)]
pub struct LiveEvent {
    /// The event.
    pub envelope: Envelope,
    /// `{"type":"event","envelope":…}` as sent to clients.
    pub frame: Utf8Bytes,
}

impl LiveEvent {
    /// Wraps an envelope, serialising its frame.
    pub fn new(envelope: Envelope) -> Self {
        let frame = crate::api::ws::event_json(&envelope);
        Self { envelope, frame }
    }
}

/// What the hub broadcasts.
#[derive(Debug, Clone)]
pub enum HubMsg {
    /// An event from the bus.
    Event(Arc<LiveEvent>),
    /// The hub may have skipped events: consumers must re-read from the database.
    Resync,
}

type Rooms = Arc<Mutex<HashMap<ConversationId, broadcast::Sender<HubMsg>>>>;

/// Subscribe to this node's live event feed: everything (staff sockets) or
/// one conversation (customer sockets), so a customer's socket only wakes up
/// for its own conversation.
#[derive(Debug, Clone)]
pub struct Hub {
    tx: broadcast::Sender<HubMsg>,
    rooms: Rooms,
}

const ROOM_CAPACITY: usize = 1024;

fn fan_out(tx: &broadcast::Sender<HubMsg>, rooms: &Rooms, msg: HubMsg) {
    let mut rooms = rooms.lock().unwrap_or_else(|p| p.into_inner());
    match &msg {
        HubMsg::Event(env) => {
            let id = env.envelope.conversation_id;
            if let Some(room) = rooms.get(&id)
                && room.send(msg.clone()).is_err()
            {
                rooms.remove(&id); // nobody listens any more
            }
        }
        HubMsg::Resync => {
            rooms.retain(|_, room| room.send(HubMsg::Resync).is_ok());
        }
    }
    drop(rooms);
    let _ = tx.send(msg);
}

impl Hub {
    /// Subscribes to the bus from its current head and starts fanning out.
    pub async fn start(bus: Arc<dyn Bus>, capacity: usize) -> (Self, tokio::task::JoinHandle<()>) {
        let (tx, _) = broadcast::channel(capacity);
        let rooms: Rooms = Arc::default();
        let mut start = match bus.head().await {
            Ok(head) => StartAt::After(head),
            Err(_) => StartAt::Live,
        };
        let hub = Self {
            tx: tx.clone(),
            rooms: rooms.clone(),
        };
        let task = tokio::spawn(async move {
            let mut backoff = Duration::from_millis(100);
            loop {
                let mut sub = match bus.subscribe(start).await {
                    Ok(sub) => sub,
                    Err(BusError::CursorExpired { .. }) => {
                        fan_out(&tx, &rooms, HubMsg::Resync);
                        start = StartAt::Live;
                        continue;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, ?backoff, "hub cannot subscribe to the bus; retrying");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                        continue;
                    }
                };
                backoff = Duration::from_millis(100);
                while let Some(item) = sub.next().await {
                    match item {
                        Ok(d) => {
                            start = StartAt::After(d.cursor);
                            fan_out(
                                &tx,
                                &rooms,
                                HubMsg::Event(Arc::new(LiveEvent::new(d.envelope))),
                            );
                        }
                        Err(BusError::CursorExpired { .. }) => {
                            fan_out(&tx, &rooms, HubMsg::Resync);
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "hub lost its bus subscription; resuming");
                            break;
                        }
                    }
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        (hub, task)
    }

    /// A receiver of everything from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<HubMsg> {
        self.tx.subscribe()
    }

    /// A receiver of one conversation's events (and resyncs) from now on.
    pub fn subscribe_conversation(&self, id: ConversationId) -> broadcast::Receiver<HubMsg> {
        let mut rooms = self.rooms.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(room) = rooms.get(&id) {
            return room.subscribe();
        }
        let (room, rx) = broadcast::channel(ROOM_CAPACITY);
        rooms.insert(id, room);
        rx
    }
}
