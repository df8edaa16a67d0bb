//! The [`Bus`] trait: an ordered, replayable log of conversation events.

use std::fmt;

use futures::stream::BoxStream;

use crate::event::Envelope;
use crate::ids::ConversationId;

/// Position of an event in the bus log (1-based). In-process: an offset;
/// NATS JetStream: the stream sequence.
pub type Cursor = u64;

/// Where a subscription starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartAt {
    /// From the oldest retained event.
    Beginning,
    /// From the event after this cursor (resume after the last one handled).
    After(Cursor),
    /// Only events published from now on.
    Live,
}

/// One event delivered to a subscriber, with its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Position in the log; store it to resume with [`StartAt::After`].
    pub cursor: Cursor,
    /// The event.
    pub envelope: Envelope,
}

/// A live stream of deliveries in log order.
pub type Subscription = BoxStream<'static, Result<Delivery, BusError>>;

/// What can go wrong on the bus. Every variant says whether retrying can help.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// The backend could not be reached or timed out; retry with backoff.
    #[error("bus unavailable: {0}")]
    Unavailable(String),
    /// The requested cursor is older than what the backend retains.
    #[error("cursor {requested} is no longer retained (oldest is {oldest})")]
    CursorExpired {
        /// Cursor asked for.
        requested: Cursor,
        /// Oldest cursor still available.
        oldest: Cursor,
    },
    /// A stored payload could not be decoded (never retried).
    #[error("undecodable event at cursor {cursor}: {reason}")]
    Corrupt {
        /// Where.
        cursor: Cursor,
        /// Decoder message.
        reason: String,
    },
}

impl BusError {
    /// Whether retrying the same call later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, BusError::Unavailable(_))
    }
}

/// The conversation bus.
///
/// Guarantees every backend must keep (checked by [`crate::conformance`]):
/// - events are delivered in publish order, so per conversation in `seq` order
///   when each conversation has one publisher at a time;
/// - a subscription started with [`StartAt::After`] delivers every retained
///   event after that cursor exactly once, then live events;
/// - publishing an envelope whose [`crate::EventId`] was already published is a no-op
///   that returns the original cursor (idempotent producers);
/// - delivery is at-least-once across reconnects, so consumers dedupe by event id or seq.
#[async_trait::async_trait]
pub trait Bus: Send + Sync + fmt::Debug {
    /// Appends an event; returns its cursor once the backend has it durably (for its durability level).
    async fn publish(&self, envelope: &Envelope) -> Result<Cursor, BusError>;
    /// Appends several events in order; returns their cursors. Backends that
    /// can pipeline (JetStream) override this; on error some prefix of the
    /// batch may be stored, and re-publishing the whole batch is safe
    /// (publishing is idempotent by event id).
    async fn publish_batch(&self, envelopes: &[Envelope]) -> Result<Vec<Cursor>, BusError> {
        let mut out = Vec::with_capacity(envelopes.len());
        for e in envelopes {
            out.push(self.publish(e).await?);
        }
        Ok(out)
    }
    /// Streams events from a position.
    async fn subscribe(&self, start: StartAt) -> Result<Subscription, BusError>;
    /// All retained events of one conversation, in order.
    async fn replay(&self, conversation: ConversationId) -> Result<Vec<Envelope>, BusError>;
    /// Cursor of the newest event (0 when empty).
    async fn head(&self) -> Result<Cursor, BusError>;
    /// Backend name for logs and metrics (`memory`, `nats`).
    fn backend(&self) -> &'static str;
}
