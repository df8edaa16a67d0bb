//! The event writer: the one place events are appended.
//!
//! Requests arrive on a channel; the writer takes whatever is queued (up to
//! [`MAX_BATCH`]), decides each request against the conversation's current
//! state, and commits the whole batch in one transaction (group commit). Only
//! after the commit does anyone hear "accepted", and only then are the events
//! handed to the publisher for the bus. A failed commit is retried with
//! backoff; if the database stays away the callers get
//! [`AppendError::Unavailable`] and nothing was accepted.
//!
//! Several gateway nodes may share one PostgreSQL: each conversation row is
//! updated with `WHERE last_seq = <expected>`, so a stale cache is detected,
//! reloaded and the request decided again.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use std::sync::Arc;
use switchboard_bus::{ApplyError, Conversation, ConversationId, Envelope, Event};

use switchboard_bus::Bus;
use tokio::sync::{mpsc, oneshot};

use crate::db::{Db, DbError, ms};
use crate::publisher::PublisherHandle;

/// Most requests committed in one transaction.
pub const MAX_BATCH: usize = 512;
/// Open conversations whose state the writer keeps in memory (a few KB each).
const CACHE_CAPACITY: usize = 20_000;
const RECENT_KEYS: usize = 256;
/// Attempts per batch before callers are told storage is unavailable
/// (with the pool's 2 s acquire timeout: under ~10 s in all).
const COMMIT_ATTEMPTS: u32 = 4;

/// Why a request was refused. Domain errors are the caller's to fix; `Unavailable` is worth a retry.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AppendError {
    /// No such conversation.
    #[error("conversation not found")]
    NotFound,
    /// The conversation's state does not allow this (e.g. closing a closed conversation).
    #[error("{0}")]
    Conflict(String),
    /// The request itself is not acceptable.
    #[error("{0}")]
    Invalid(String),
    /// The caller may not do this to this conversation.
    #[error("{0}")]
    Forbidden(String),
    /// Storage is down; nothing was stored.
    #[error("storage unavailable, nothing was stored: {0}")]
    Unavailable(String),
}

/// What the writer did with a request.
#[derive(Debug, Clone)]
pub struct Appended {
    /// The events stored (empty for an idempotent repeat).
    pub events: Vec<Envelope>,
    /// For a repeated idempotency key: the seq stored the first time.
    pub duplicate_of: Option<u64>,
    /// State after the request.
    pub conversation: Conversation,
}

/// Decides which events a request produces given the current state
/// (`None`: the conversation does not exist yet). May be called more than once.
pub type Decide =
    Box<dyn Fn(Option<&Conversation>) -> Result<Vec<Event>, AppendError> + Send + Sync>;

struct Request {
    conversation: ConversationId,
    idempotency_key: Option<String>,
    decide: Decide,
    reply: oneshot::Sender<Result<Appended, AppendError>>,
}

/// Handle to submit appends.
#[derive(Clone, Debug)]
pub struct Writer {
    tx: mpsc::Sender<Request>,
}

impl Writer {
    /// Starts the writer, and the publisher that moves its commits onto the
    /// bus, on a thread of their own with their own connection pool to `url`.
    /// Under heavy socket load the shared runtime's run queue would delay every
    /// database round trip of the writer; on its own thread its commits keep
    /// their pace. `done` resolves once both have drained and stopped.
    pub async fn spawn_dedicated(
        url: String,
        max_connections: u32,
        bus: Arc<dyn Bus>,
    ) -> Result<(Self, oneshot::Receiver<()>), DbError> {
        let (tx, rx) = mpsc::channel(8192);
        let (ready_tx, ready_rx) = oneshot::channel::<Result<(), DbError>>();
        let (done_tx, done_rx) = oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("switchboard-writer".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx
                            .send(Err(DbError::Unavailable(format!("writer runtime: {e}"))));
                        return;
                    }
                };
                runtime.block_on(async move {
                    let db = match Db::connect(&url, max_connections).await {
                        Ok(db) => db,
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                            return;
                        }
                    };
                    let _ = ready_tx.send(Ok(()));
                    let (publisher, publisher_task) = crate::publisher::spawn(db.clone(), bus);
                    run(db.clone(), publisher, rx).await;
                    // The writer dropped its handle: the publisher drains and stops.
                    let _ = publisher_task.await;
                    db.close().await;
                });
                let _ = done_tx.send(());
            })
            .map_err(|e| DbError::Unavailable(format!("writer thread: {e}")))?;
        ready_rx
            .await
            .map_err(|_| DbError::Unavailable("writer thread failed to start".into()))??;
        Ok((Self { tx }, done_rx))
    }

    /// Appends the events `decide` returns, atomically with respect to other appends
    /// to the same conversation. With an `idempotency_key` already used in this
    /// conversation, nothing is stored and `duplicate_of` tells the original seq.
    pub async fn append(
        &self,
        conversation: ConversationId,
        idempotency_key: Option<String>,
        decide: Decide,
    ) -> Result<Appended, AppendError> {
        self.enqueue(conversation, idempotency_key, decide)
            .await?
            .await
    }

    /// Queues an append and returns at once with a future of its outcome.
    /// Requests queued from one task are decided and stored in queue order, so
    /// a client can pipeline several messages and still keep their order.
    pub async fn enqueue(
        &self,
        conversation: ConversationId,
        idempotency_key: Option<String>,
        decide: Decide,
    ) -> Result<impl Future<Output = Result<Appended, AppendError>> + Send + 'static, AppendError>
    {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Request {
                conversation,
                idempotency_key,
                decide,
                reply,
            })
            .await
            .map_err(|_| AppendError::Unavailable("writer is shutting down".into()))?;
        Ok(async move {
            rx.await
                .map_err(|_| AppendError::Unavailable("writer stopped".into()))?
        })
    }
}

struct Cached {
    state: Conversation,
    recent: HashMap<String, u64>,
}

struct WriterState {
    db: Db,
    publisher: PublisherHandle,
    outbox: bool,
    cache: HashMap<ConversationId, Cached>,
}

async fn run(db: Db, publisher: PublisherHandle, mut rx: mpsc::Receiver<Request>) {
    let mut w = WriterState {
        db,
        outbox: publisher.tracks_outbox(),
        publisher,
        cache: HashMap::new(),
    };
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(r) => batch.push(r),
                Err(_) => break,
            }
        }
        w.process(batch).await;
    }
    tracing::info!("event writer drained and stopped");
}

/// One conversation's in-flight state within a batch.
struct Touched {
    /// last_seq in the database before this batch (None: new conversation).
    stored_seq: Option<u64>,
    state: Option<Conversation>,
    recent: HashMap<String, u64>,
    new_events: Vec<Envelope>,
    /// Idempotency keys of this batch's requests, stored with the first
    /// event each request wrote (its `client_msg_id` column), so a repeat is
    /// recognised after the cache forgot it or the process restarted.
    keys: HashMap<switchboard_bus::EventId, String>,
}

type Outcome = Result<Appended, AppendError>;

impl WriterState {
    async fn load(&mut self, id: ConversationId) -> Result<Touched, DbError> {
        // Taken out of the cache while in flight; put back only after a commit,
        // so a failed batch can never leave the cache ahead of the database.
        if let Some(c) = self.cache.remove(&id) {
            return Ok(Touched {
                stored_seq: Some(c.state.last_seq),
                state: Some(c.state),
                recent: c.recent,
                new_events: Vec::new(),
                keys: HashMap::new(),
            });
        }
        let state = self.db.conversation(id).await?;
        let recent = match &state {
            Some(_) => self
                .db
                .recent_client_ids(id, RECENT_KEYS as i64)
                .await?
                .into_iter()
                .collect(),
            None => HashMap::new(),
        };
        Ok(Touched {
            stored_seq: state.as_ref().map(|s| s.last_seq),
            state,
            recent,
            new_events: Vec::new(),
            keys: HashMap::new(),
        })
    }

    async fn process(&mut self, mut batch: Vec<Request>) {
        let started = Instant::now();
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.try_batch(&batch).await {
                Ok((outcomes, conflicts)) => {
                    if conflicts.is_empty() || attempt >= COMMIT_ATTEMPTS {
                        self.reply(batch, outcomes, &conflicts).await;
                        break;
                    }
                    // Another node moved these conversations on: forget what we
                    // cached, answer what committed, decide the rest again.
                    for id in &conflicts {
                        self.cache.remove(id);
                    }
                    let (retry, done): (Vec<_>, Vec<_>) = batch
                        .into_iter()
                        .zip(outcomes)
                        .partition(|(r, _)| conflicts.contains(&r.conversation));
                    let (done_req, done_out): (Vec<_>, Vec<_>) = done.into_iter().unzip();
                    self.reply(done_req, done_out, &[]).await;
                    batch = retry.into_iter().map(|(r, _)| r).collect();
                    metrics::counter!("switchboard_writer_conflicts_total").increment(1);
                }
                Err(e) => {
                    for r in &batch {
                        self.cache.remove(&r.conversation);
                    }
                    if attempt >= COMMIT_ATTEMPTS {
                        tracing::error!(error = %e, requests = batch.len(), "event batch not stored; callers told to retry");
                        metrics::counter!("switchboard_writer_failed_batches_total").increment(1);
                        for r in batch {
                            let _ = r.reply.send(Err(AppendError::Unavailable(e.to_string())));
                        }
                        break;
                    }
                    let backoff = Duration::from_millis(50 << attempt.min(5));
                    tracing::warn!(error = %e, attempt, ?backoff, "event batch commit failed; retrying");
                    tokio::time::sleep(backoff).await;
                }
            }
        }
        metrics::histogram!("switchboard_writer_batch_seconds")
            .record(started.elapsed().as_secs_f64());
    }

    async fn reply(
        &mut self,
        batch: Vec<Request>,
        outcomes: Vec<Outcome>,
        conflicts: &[ConversationId],
    ) {
        let mut published = Vec::new();
        for (req, outcome) in batch.into_iter().zip(outcomes) {
            let result = if conflicts.contains(&req.conversation) {
                Err(AppendError::Conflict(
                    "conversation changed concurrently too many times; try again".into(),
                ))
            } else {
                outcome
            };
            if let Ok(a) = &result {
                published.extend(a.events.iter().cloned());
            }
            let _ = req.reply.send(result);
        }
        if !published.is_empty() {
            metrics::counter!("switchboard_events_appended_total")
                .increment(published.len() as u64);
            self.publisher.hand_off(published).await;
        }
        if self.cache.len() > CACHE_CAPACITY {
            self.cache
                .retain(|_, c| c.state.status == switchboard_bus::ConversationStatus::Open);
            if self.cache.len() > CACHE_CAPACITY {
                self.cache.clear();
            }
        }
    }

    /// Decides every request and commits. Returns per-request outcomes and the
    /// conversations whose optimistic check failed (their outcomes are void).
    async fn try_batch(
        &mut self,
        batch: &[Request],
    ) -> Result<(Vec<Outcome>, Vec<ConversationId>), DbError> {
        let t_start = Instant::now();
        let mut touched: HashMap<ConversationId, Touched> = HashMap::new();
        let mut order: Vec<ConversationId> = Vec::new();
        let mut outcomes = Vec::with_capacity(batch.len());
        for req in batch {
            let t = match touched.entry(req.conversation) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(e) => {
                    order.push(req.conversation);
                    e.insert(self.load(req.conversation).await?)
                }
            };
            outcomes.push(decide_one(req, t));
        }

        let t_decided = Instant::now();
        let mut tx = self.db.pool().begin().await?;
        let (conflicts, rows) =
            match write_projections(&self.db, &mut tx, &order, &touched, true).await? {
                Some(done) => done,
                None => {
                    // Someone else moved a conversation on: find out which, row by row.
                    tx.rollback().await?;
                    tx = self.db.pool().begin().await?;
                    write_projections(&self.db, &mut tx, &order, &touched, false)
                        .await?
                        .unwrap_or_default()
                }
            };
        let t_projected = Instant::now();
        // All events of the batch in a few multi-row statements.
        let keys: HashMap<switchboard_bus::EventId, &str> = touched
            .values()
            .flat_map(|t| t.keys.iter().map(|(id, k)| (*id, k.as_str())))
            .collect();
        for chunk in self.db.row_chunks(&rows) {
            insert_events(&mut tx, chunk, &keys, self.outbox).await?;
        }
        let t_inserted = Instant::now();
        tx.commit().await?;
        tracing::debug!(
            decide_us = (t_decided - t_start).as_micros() as u64,
            project_us = (t_projected - t_decided).as_micros() as u64,
            insert_us = (t_inserted - t_projected).as_micros() as u64,
            commit_us = t_inserted.elapsed().as_micros() as u64,
            requests = batch.len(),
            "batch committed"
        );

        // Committed: the cache now reflects the database.
        for id in order {
            if let Some(t) = touched.remove(&id)
                && !conflicts.contains(&id)
                && let Some(state) = t.state
                // Closed conversations rarely get another write (a reopen
                // reloads them), so they leave the cache: memory follows the
                // open conversations, not every conversation ever written.
                && state.status == switchboard_bus::ConversationStatus::Open
            {
                self.cache.insert(
                    id,
                    Cached {
                        state,
                        recent: t.recent,
                    },
                );
            }
        }
        Ok((outcomes, conflicts))
    }
}

fn decide_one(req: &Request, t: &mut Touched) -> Outcome {
    if let Some(key) = &req.idempotency_key
        && let Some(&seq) = t.recent.get(key)
        && let Some(state) = &t.state
    {
        return Ok(Appended {
            events: Vec::new(),
            duplicate_of: Some(seq),
            conversation: state.clone(),
        });
    }
    let events = (req.decide)(t.state.as_ref())?;
    if events.iter().any(Event::is_ephemeral) {
        return Err(AppendError::Invalid(
            "ephemeral events are published, not stored".into(),
        ));
    }
    let mut next = t.state.clone();
    let mut envelopes = Vec::with_capacity(events.len());
    for event in events {
        let seq = next.as_ref().map_or(1, |s| s.last_seq + 1);
        let env = Envelope::new(req.conversation, seq, event);
        let applied: Result<(), ApplyError> = match next.as_mut() {
            None => Conversation::open(&env).map(|c| next = Some(c)),
            Some(s) => s.apply(&env),
        };
        if let Err(e) = applied {
            return Err(AppendError::Conflict(e.to_string()));
        }
        envelopes.push(env);
    }
    let Some(state) = next else {
        return Err(AppendError::NotFound);
    };
    if let Some(key) = &req.idempotency_key
        && let Some(first) = envelopes.first()
    {
        t.recent.insert(key.clone(), first.seq);
        // Unless one of the events carries it already (a message's own
        // client_msg_id), the key goes with the first event.
        if envelopes.iter().all(|e| client_msg_id(&e.event).is_none()) {
            t.keys.insert(first.id, key.clone());
        }
        if t.recent.len() > RECENT_KEYS * 2 {
            let cutoff = state.last_seq.saturating_sub(RECENT_KEYS as u64 * 4);
            t.recent.retain(|_, s| *s > cutoff);
        }
    }
    t.state = Some(state.clone());
    t.new_events.extend(envelopes.iter().cloned());
    Ok(Appended {
        events: envelopes,
        duplicate_of: None,
        conversation: state,
    })
}

fn client_msg_id(event: &Event) -> Option<&str> {
    match event {
        Event::MessageAdded { client_msg_id, .. } => client_msg_id.as_deref(),
        _ => None,
    }
}

fn status_str(state: &Conversation) -> &'static str {
    match state.status {
        switchboard_bus::ConversationStatus::Open => "open",
        switchboard_bus::ConversationStatus::Closed => "closed",
    }
}

/// Writes the projections of the touched conversations and returns the
/// conversations whose optimistic check failed plus the events to insert.
///
/// `fast`: update all existing conversations in a few multi-row statements;
/// returns `None` if any row did not match (the caller rolls back and retries
/// with `fast = false`, which checks row by row to find the conflicts).
async fn write_projections<'a>(
    db: &Db,
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    order: &[ConversationId],
    touched: &'a HashMap<ConversationId, Touched>,
    fast: bool,
) -> Result<Option<(Vec<ConversationId>, Vec<&'a Envelope>)>, DbError> {
    let mut conflicts = Vec::new();
    let mut rows: Vec<&Envelope> = Vec::new();
    let mut updates: Vec<(ConversationId, u64, &Conversation, String)> = Vec::new();
    for id in order {
        let Some(t) = touched.get(id) else { continue };
        let Some(state) = &t.state else { continue };
        if t.new_events.is_empty() {
            continue;
        }
        let state_json =
            serde_json::to_string(state).map_err(|e| DbError::Corrupt(e.to_string()))?;
        let affected = match t.stored_seq {
            None => sqlx::query(
                "INSERT INTO conversations (id, channel, status, assignee, contact_id, waiting_since, opened_at, updated_at, last_seq, state) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (id) DO NOTHING",
            )
            .bind(id.to_string())
            .bind(state.channel.as_str())
            .bind(status_str(state))
            .bind(state.assignee.map(|a| a.to_string()))
            .bind(state.contact.id.to_string())
            .bind(state.waiting_since.map(ms))
            .bind(ms(state.opened_at))
            .bind(ms(state.updated_at))
            .bind(state.last_seq as i64)
            .bind(state_json)
            .execute(&mut **tx)
            .await?
            .rows_affected(),
            Some(expected) if fast => {
                updates.push((*id, expected, state, state_json));
                rows.extend(t.new_events.iter());
                continue;
            }
            Some(expected) => sqlx::query(
                "UPDATE conversations SET status = $1, assignee = $2, waiting_since = $3, updated_at = $4, last_seq = $5, state = $6 \
                 WHERE id = $7 AND last_seq = $8",
            )
            .bind(status_str(state))
            .bind(state.assignee.map(|a| a.to_string()))
            .bind(state.waiting_since.map(ms))
            .bind(ms(state.updated_at))
            .bind(state.last_seq as i64)
            .bind(state_json)
            .bind(id.to_string())
            .bind(expected as i64)
            .execute(&mut **tx)
            .await?
            .rows_affected(),
        };
        if affected == 0 {
            conflicts.push(*id);
            continue;
        }
        rows.extend(t.new_events.iter());
    }
    for chunk in db.row_chunks(&updates) {
        let mut sql = String::from(
            "UPDATE conversations SET status = v.status, assignee = v.assignee, waiting_since = v.waiting_since, updated_at = v.updated_at, last_seq = v.last_seq, state = v.state FROM (",
        );
        for i in 0..chunk.len() {
            let b = i * 8;
            if i > 0 {
                sql.push_str(" UNION ALL ");
            }
            sql.push_str(&format!(
                "SELECT CAST(${} AS TEXT) AS id, CAST(${} AS BIGINT) AS expected, CAST(${} AS TEXT) AS status, CAST(${} AS TEXT) AS assignee, \
                 CAST(${} AS BIGINT) AS waiting_since, CAST(${} AS BIGINT) AS updated_at, CAST(${} AS BIGINT) AS last_seq, CAST(${} AS TEXT) AS state",
                b + 1, b + 2, b + 3, b + 4, b + 5, b + 6, b + 7, b + 8
            ));
        }
        sql.push_str(
            ") AS v WHERE conversations.id = v.id AND conversations.last_seq = v.expected",
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (id, expected, state, json) in chunk {
            q = q
                .bind(id.to_string())
                .bind(*expected as i64)
                .bind(status_str(state))
                .bind(state.assignee.map(|a| a.to_string()))
                .bind(state.waiting_since.map(ms))
                .bind(ms(state.updated_at))
                .bind(state.last_seq as i64)
                .bind(json.as_str());
        }
        if q.execute(&mut **tx).await?.rows_affected() != chunk.len() as u64 {
            return Ok(None);
        }
    }
    Ok(Some((conflicts, rows)))
}

/// Inserts events; `keys` gives the idempotency key stored in the
/// `client_msg_id` column of an event that has none of its own.
async fn insert_events(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    events: &[&Envelope],
    keys: &HashMap<switchboard_bus::EventId, &str>,
    outbox: bool,
) -> Result<(), DbError> {
    const COLS: usize = 7;
    let mut sql = String::from(
        "INSERT INTO events (event_id, conversation_id, seq, at, kind, client_msg_id, body, published) VALUES ",
    );
    // With a durable bus the publisher marks rows once the bus has them; with
    // the in-process bus there is nothing to re-publish after a restart.
    let published = if outbox { "0" } else { "1" };
    for i in 0..events.len() {
        if i > 0 {
            sql.push_str(", ");
        }
        let b = i * COLS;
        sql.push_str(&format!(
            "(${}, ${}, ${}, ${}, ${}, ${}, ${}, {published})",
            b + 1,
            b + 2,
            b + 3,
            b + 4,
            b + 5,
            b + 6,
            b + 7
        ));
    }
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for e in events {
        let body =
            serde_json::to_string(&e.event).map_err(|err| DbError::Corrupt(err.to_string()))?;
        q = q
            .bind(e.id.to_string())
            .bind(e.conversation_id.to_string())
            .bind(e.seq as i64)
            .bind(ms(e.at))
            .bind(e.event.kind())
            .bind(
                client_msg_id(&e.event)
                    .or_else(|| keys.get(&e.id).copied())
                    .map(str::to_owned),
            )
            .bind(body);
    }
    q.execute(&mut **tx).await?;
    Ok(())
}
