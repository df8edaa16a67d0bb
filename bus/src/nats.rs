//! NATS JetStream bus: the scale-out backend. One durable stream holds every
//! conversation's events under `<prefix>.<conversation id>`; the JetStream
//! stream sequence is the [`Cursor`]. Publishes carry `Nats-Msg-Id` = event id,
//! so a retried publish inside the duplicate window is stored once.

use std::time::Duration;

use async_nats::jetstream::{self, consumer::DeliverPolicy, stream::StorageType};
use futures::StreamExt;

use crate::bus::{Bus, BusError, Cursor, Delivery, StartAt, Subscription};
use crate::event::Envelope;
use crate::ids::ConversationId;

/// Expiry of each pull request of the ordered consumers (heartbeats are half of it).
const PULL_EXPIRY: Duration = Duration::from_secs(2);

/// How to reach and lay out the JetStream stream.
#[derive(Debug, Clone)]
pub struct NatsConfig {
    /// Server URL, e.g. `nats://127.0.0.1:4222`.
    pub url: String,
    /// Stream name.
    pub stream: String,
    /// Subject prefix; events go to `<prefix>.<conversation id>`.
    pub subject_prefix: String,
    /// Window in which a re-published event id is recognised as a duplicate.
    pub duplicate_window: Duration,
    /// Stream replicas (1 for a single server, 3 for a cluster).
    pub replicas: usize,
    /// How long events are kept in the stream (zero: forever). The database
    /// is the system of record; the stream only needs to cover consumers' lag.
    pub max_age: Duration,
}

impl Default for NatsConfig {
    fn default() -> Self {
        Self {
            url: "nats://127.0.0.1:4222".into(),
            stream: "SWITCHBOARD_EVENTS".into(),
            subject_prefix: "switchboard.events".into(),
            duplicate_window: Duration::from_secs(120),
            replicas: 1,
            max_age: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

/// The JetStream [`Bus`].
#[derive(Clone)]
pub struct NatsBus {
    js: jetstream::Context,
    config: NatsConfig,
}

impl std::fmt::Debug for NatsBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsBus")
            .field("config", &self.config)
            .finish()
    }
}

fn unavailable(e: impl std::fmt::Display) -> BusError {
    BusError::Unavailable(e.to_string())
}

impl NatsBus {
    /// Connects and creates the stream if it does not exist.
    pub async fn connect(config: NatsConfig) -> Result<Self, BusError> {
        let client = async_nats::ConnectOptions::new()
            .connection_timeout(Duration::from_secs(5))
            .retry_on_initial_connect()
            .name("switchboard")
            .connect(&config.url)
            .await
            .map_err(|e| BusError::Unavailable(format!("connect {}: {e}", config.url)))?;
        let mut js = jetstream::new(client);
        js.set_timeout(Duration::from_secs(5));
        let bus = Self { js, config };
        // With retry_on_initial_connect the first request waits for the server.
        tokio::time::timeout(Duration::from_secs(10), bus.ensure_stream())
            .await
            .map_err(|_| BusError::Unavailable(format!("no JetStream at {}", bus.config.url)))??;
        Ok(bus)
    }

    async fn ensure_stream(&self) -> Result<jetstream::stream::Stream, BusError> {
        self.js
            .get_or_create_stream(jetstream::stream::Config {
                name: self.config.stream.clone(),
                subjects: vec![format!("{}.>", self.config.subject_prefix)],
                storage: StorageType::File,
                duplicate_window: self.config.duplicate_window,
                num_replicas: self.config.replicas,
                max_age: self.config.max_age,
                ..Default::default()
            })
            .await
            .map_err(unavailable)
    }

    fn subject(&self, conversation: ConversationId) -> String {
        format!("{}.{}", self.config.subject_prefix, conversation)
    }

    async fn stream(&self) -> Result<jetstream::stream::Stream, BusError> {
        self.js
            .get_stream(&self.config.stream)
            .await
            .map_err(unavailable)
    }

    /// Deletes the stream (tests and `switchboard` admin tooling).
    pub async fn delete_stream(&self) -> Result<(), BusError> {
        self.js
            .delete_stream(&self.config.stream)
            .await
            .map(|_| ())
            .map_err(unavailable)
    }
}

fn decode(msg: &jetstream::Message) -> Result<Delivery, BusError> {
    let info = msg.info().map_err(unavailable)?;
    let cursor = info.stream_sequence;
    let envelope = serde_json::from_slice(&msg.payload).map_err(|e| BusError::Corrupt {
        cursor,
        reason: e.to_string(),
    })?;
    Ok(Delivery { cursor, envelope })
}

#[async_trait::async_trait]
impl Bus for NatsBus {
    async fn publish(&self, envelope: &Envelope) -> Result<Cursor, BusError> {
        let payload = serde_json::to_vec(envelope).map_err(|e| BusError::Corrupt {
            cursor: 0,
            reason: e.to_string(),
        })?;
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", envelope.id.to_string().as_str());
        let ack = self
            .js
            .publish_with_headers(
                self.subject(envelope.conversation_id),
                headers,
                payload.into(),
            )
            .await
            .map_err(unavailable)?
            .await
            .map_err(unavailable)?;
        Ok(ack.sequence)
    }

    async fn publish_batch(&self, envelopes: &[Envelope]) -> Result<Vec<Cursor>, BusError> {
        // Send every message first, then collect the acks: one round trip per
        // batch instead of one per event. JetStream keeps the order of one connection.
        let mut acks = Vec::with_capacity(envelopes.len());
        for envelope in envelopes {
            let payload = serde_json::to_vec(envelope).map_err(|e| BusError::Corrupt {
                cursor: 0,
                reason: e.to_string(),
            })?;
            let mut headers = async_nats::HeaderMap::new();
            headers.insert("Nats-Msg-Id", envelope.id.to_string().as_str());
            acks.push(
                self.js
                    .publish_with_headers(
                        self.subject(envelope.conversation_id),
                        headers,
                        payload.into(),
                    )
                    .await
                    .map_err(unavailable)?,
            );
        }
        let mut cursors = Vec::with_capacity(acks.len());
        for ack in acks {
            cursors.push(ack.await.map_err(unavailable)?.sequence);
        }
        Ok(cursors)
    }

    async fn subscribe(&self, start: StartAt) -> Result<Subscription, BusError> {
        let mut stream = self.stream().await?;
        let state = stream.info().await.map_err(unavailable)?.state.clone();
        let next = match start {
            StartAt::Beginning => state.first_sequence.max(1),
            StartAt::Live => state.last_sequence + 1,
            StartAt::After(c) => {
                if state.messages > 0 && c + 1 < state.first_sequence {
                    return Err(BusError::CursorExpired {
                        requested: c,
                        oldest: state.first_sequence,
                    });
                }
                c + 1
            }
        };
        let follower = Follower {
            bus: self.clone(),
            next,
            messages: None,
            backoff: Duration::from_millis(100),
        };
        Ok(futures::stream::unfold(follower, |mut f| async move {
            let item = f.next_delivery().await;
            Some((item, f))
        })
        .boxed())
    }

    async fn replay(&self, conversation: ConversationId) -> Result<Vec<Envelope>, BusError> {
        let stream = self.stream().await?;
        let mut consumer = stream
            .create_consumer(jetstream::consumer::pull::OrderedConfig {
                deliver_policy: DeliverPolicy::All,
                filter_subject: self.subject(conversation),
                max_expires: PULL_EXPIRY,
                ..Default::default()
            })
            .await
            .map_err(unavailable)?;
        let pending = consumer.info().await.map_err(unavailable)?.num_pending;
        let mut out = Vec::with_capacity(pending as usize);
        if pending == 0 {
            return Ok(out);
        }
        let mut messages = consumer.messages().await.map_err(unavailable)?;
        while let Some(m) = tokio::time::timeout(Duration::from_secs(10), messages.next())
            .await
            .map_err(|_| BusError::Unavailable("replay timed out".into()))?
        {
            let m = m.map_err(unavailable)?;
            let remaining = m.info().map_err(unavailable)?.pending;
            out.push(decode(&m)?.envelope);
            if remaining == 0 {
                break;
            }
        }
        Ok(out)
    }

    async fn head(&self) -> Result<Cursor, BusError> {
        let mut stream = self.stream().await?;
        Ok(stream
            .info()
            .await
            .map_err(unavailable)?
            .state
            .last_sequence)
    }

    fn backend(&self) -> &'static str {
        "nats"
    }
}

/// How long a subscription may sit idle before it checks the stream for
/// messages it should have received (a consumer lost in a server restart).
const STALL_CHECK: Duration = Duration::from_secs(2);

/// A self-healing ordered subscription: it remembers the next stream
/// sequence it needs and recreates its consumer from there whenever the
/// consumer errors, ends, or stalls while the stream has moved on.
struct Follower {
    bus: NatsBus,
    next: Cursor,
    messages: Option<jetstream::consumer::pull::Ordered>,
    backoff: Duration,
}

impl Follower {
    async fn open(&mut self) -> Result<(), BusError> {
        let stream = self.bus.stream().await?;
        let consumer = stream
            .create_consumer(jetstream::consumer::pull::OrderedConfig {
                deliver_policy: DeliverPolicy::ByStartSequence {
                    start_sequence: self.next,
                },
                // Short pull expiry → 1 s idle heartbeats.
                max_expires: PULL_EXPIRY,
                ..Default::default()
            })
            .await
            .map_err(unavailable)?;
        self.messages = Some(consumer.messages().await.map_err(unavailable)?);
        Ok(())
    }

    async fn next_delivery(&mut self) -> Result<Delivery, BusError> {
        loop {
            let Some(messages) = self.messages.as_mut() else {
                if let Err(e) = self.open().await {
                    tracing::warn!(error = %e, backoff = ?self.backoff, "bus subscription cannot (re)open; retrying");
                    tokio::time::sleep(self.backoff).await;
                    self.backoff = (self.backoff * 2).min(Duration::from_secs(5));
                }
                continue;
            };
            match tokio::time::timeout(STALL_CHECK, messages.next()).await {
                Ok(Some(Ok(msg))) => {
                    self.backoff = Duration::from_millis(100);
                    let delivery = match decode(&msg) {
                        Ok(d) => d,
                        Err(e) => {
                            if let BusError::Corrupt { cursor, .. } = &e {
                                self.next = self.next.max(cursor + 1);
                            }
                            return Err(e);
                        }
                    };
                    if delivery.cursor < self.next {
                        continue; // replayed after a recreate
                    }
                    self.next = delivery.cursor + 1;
                    return Ok(delivery);
                }
                Ok(Some(Err(e))) => {
                    tracing::debug!(error = %e, "bus consumer error; recreating from {}", self.next);
                    self.messages = None;
                }
                Ok(None) => self.messages = None,
                Err(_idle) => {
                    if stalled(self.bus.clone(), self.next).await {
                        tracing::info!(next = self.next, "bus consumer stalled; recreating");
                        self.messages = None;
                    }
                }
            }
        }
    }
}

/// Whether the stream holds messages at or after `next` (so an idle consumer is stuck).
async fn stalled(bus: NatsBus, next: Cursor) -> bool {
    let Ok(mut stream) = bus.stream().await else {
        return false;
    };
    match tokio::time::timeout(STALL_CHECK, stream.info()).await {
        Ok(Ok(info)) => info.state.last_sequence >= next,
        _ => false,
    }
}
