//! In-process bus: the default for a single node. A bounded in-memory log
//! with an index per conversation; subscribers read it at their own pace,
//! so a slow subscriber never makes the publisher drop anything.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use futures::StreamExt;
use tokio::sync::watch;

use crate::bus::{Bus, BusError, Cursor, Delivery, StartAt, Subscription};
use crate::event::Envelope;
use crate::ids::{ConversationId, EventId};

/// Default number of events kept in memory.
pub const DEFAULT_RETENTION: usize = 1_000_000;
const READ_BATCH: usize = 512;

#[derive(Debug)]
struct Log {
    /// Cursor of `events[0]`.
    first: Cursor,
    events: VecDeque<Arc<Envelope>>,
    by_id: HashMap<EventId, Cursor>,
    by_conversation: HashMap<ConversationId, VecDeque<Cursor>>,
    retention: usize,
}

impl Log {
    fn head(&self) -> Cursor {
        self.first + self.events.len() as u64 - 1
    }

    fn get(&self, cursor: Cursor) -> Option<&Arc<Envelope>> {
        cursor
            .checked_sub(self.first)
            .and_then(|i| self.events.get(i as usize))
    }

    fn evict_over_retention(&mut self) {
        while self.events.len() > self.retention {
            let Some(old) = self.events.pop_front() else {
                break;
            };
            let cursor = self.first;
            self.first += 1;
            self.by_id.remove(&old.id);
            if let Some(list) = self.by_conversation.get_mut(&old.conversation_id) {
                if list.front() == Some(&cursor) {
                    list.pop_front();
                }
                if list.is_empty() {
                    self.by_conversation.remove(&old.conversation_id);
                }
            }
        }
    }
}

/// The in-process [`Bus`].
#[derive(Debug, Clone)]
pub struct MemoryBus {
    log: Arc<Mutex<Log>>,
    head_tx: Arc<watch::Sender<Cursor>>,
}

impl Default for MemoryBus {
    fn default() -> Self {
        Self::with_retention(DEFAULT_RETENTION)
    }
}

impl MemoryBus {
    /// A bus that keeps at most `retention` events (oldest evicted first).
    pub fn with_retention(retention: usize) -> Self {
        let (head_tx, _) = watch::channel(0);
        Self {
            log: Arc::new(Mutex::new(Log {
                first: 1,
                events: VecDeque::new(),
                by_id: HashMap::new(),
                by_conversation: HashMap::new(),
                retention: retention.max(1),
            })),
            head_tx: Arc::new(head_tx),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Log> {
        // A panic while holding the lock cannot leave the log half-updated in a
        // way readers would misinterpret, so recover the guard.
        self.log.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait::async_trait]
impl Bus for MemoryBus {
    async fn publish(&self, envelope: &Envelope) -> Result<Cursor, BusError> {
        let cursor = {
            let mut log = self.lock();
            if let Some(&existing) = log.by_id.get(&envelope.id) {
                return Ok(existing);
            }
            log.events.push_back(Arc::new(envelope.clone()));
            let cursor = log.head();
            log.by_id.insert(envelope.id, cursor);
            log.by_conversation
                .entry(envelope.conversation_id)
                .or_default()
                .push_back(cursor);
            log.evict_over_retention();
            cursor
        };
        self.head_tx.send_replace(cursor);
        Ok(cursor)
    }

    async fn subscribe(&self, start: StartAt) -> Result<Subscription, BusError> {
        let next = {
            let log = self.lock();
            match start {
                StartAt::Beginning => log.first,
                StartAt::Live => log.head() + 1,
                StartAt::After(c) => {
                    if c + 1 < log.first {
                        return Err(BusError::CursorExpired {
                            requested: c,
                            oldest: log.first,
                        });
                    }
                    c + 1
                }
            }
        };
        let reader = Reader {
            bus: self.clone(),
            next,
            head_rx: self.head_tx.subscribe(),
            pending: VecDeque::new(),
        };
        Ok(futures::stream::unfold(reader, |mut r| async move {
            loop {
                if let Some(item) = r.pending.pop_front() {
                    return Some((item, r));
                }
                // Mark the current head as seen *before* reading, so a publish
                // that lands after the read still wakes us.
                r.head_rx.borrow_and_update();
                r.fill();
                if r.pending.is_empty() && r.head_rx.changed().await.is_err() {
                    return None;
                }
            }
        })
        .boxed())
    }

    async fn replay(&self, conversation: ConversationId) -> Result<Vec<Envelope>, BusError> {
        let log = self.lock();
        Ok(log
            .by_conversation
            .get(&conversation)
            .map(|cursors| {
                cursors
                    .iter()
                    .filter_map(|c| log.get(*c).map(|e| Envelope::clone(e)))
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn head(&self) -> Result<Cursor, BusError> {
        Ok(self.lock().head())
    }

    fn backend(&self) -> &'static str {
        "memory"
    }
}

struct Reader {
    bus: MemoryBus,
    next: Cursor,
    head_rx: watch::Receiver<Cursor>,
    pending: VecDeque<Result<Delivery, BusError>>,
}

impl Reader {
    fn fill(&mut self) {
        let log = self.bus.lock();
        if self.next < log.first {
            // Evicted while this subscriber was slow: say so, then go on from the oldest.
            self.pending.push_back(Err(BusError::CursorExpired {
                requested: self.next,
                oldest: log.first,
            }));
            self.next = log.first;
        }
        while self.pending.len() < READ_BATCH {
            let Some(env) = log.get(self.next) else { break };
            self.pending.push_back(Ok(Delivery {
                cursor: self.next,
                envelope: Envelope::clone(env),
            }));
            self.next += 1;
        }
    }
}
