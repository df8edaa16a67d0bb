//! The virtual agent on the bus: answers customers' messages from the
//! knowledge base ([`switchboard_nlu::Agent`]) until a person is needed.
//!
//! It joins every web-chat conversation that has no agent and is not
//! waiting for one. For each customer message it runs one turn and appends,
//! in one atomic write, what staff need to see (`bot_turn`: intent, decision,
//! reason, citations, the full trace), the reply, and — when it escalates —
//! a `handoff_requested` with the context, which the router picks up.
//!
//! Like routing, one node runs it (a PostgreSQL advisory lock of its own;
//! always this node on SQLite). A turn's write carries the customer
//! message's event id as its idempotency key, so a message seen twice is
//! answered once. Each conversation's memory ([`ConversationState`]:
//! language, clarification and misunderstanding counts, transcript) is
//! stored with the turn, so a restart or a new leader carries on.
//!
//! If it falls so far behind that the bus no longer holds what it missed
//! (`CursorExpired`: the in-process bus keeps a bounded window), it reads
//! the customer messages it missed from the database, from the last one it
//! saw, and answers those not answered yet (the idempotency key is stored
//! with the turn); the ones the bus still delivers afterwards are skipped.
//! When a node starts running the virtual agent (start-up, restart, a new
//! leader), it first answers the customer messages of the last 10 minutes
//! that have no turn yet: those that arrived while nobody ran it.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use sqlx::Row;
use switchboard_bus::{
    Bus, BusError, Channel, Conversation, ConversationId, ConversationStatus, Envelope, Event,
    EventId, Participant, StartAt,
};
use switchboard_nlu::llm::local::LocalLlm;
use switchboard_nlu::llm::openai::{OpenAiConfig, OpenAiLlm};
use switchboard_nlu::{
    Action, Agent, AgentConfig, ConversationState, GenerationMode, Llm, TurnOutcome,
};
use tokio::sync::{Mutex, Semaphore, watch};

use crate::config::{BotMode, Config};
use crate::db::{Db, DbError, ms};
use crate::lease::Leadership;
use crate::writer::{AppendError, Writer};

/// Advisory lock key held by the node that runs the virtual agent.
const BOT_LOCK: i64 = 0x5357_4244_4254; // "SWBDBT"
/// Turns running at once (each is mostly retrieval; a local model uses both cores).
const CONCURRENT_TURNS: usize = 8;

/// Builds the virtual agent for this configuration (`None` when switched off).
pub async fn agent(
    config: &Config,
    retriever: Arc<dyn switchboard_nlu::Retriever>,
) -> Result<Option<Arc<Agent>>, BotError> {
    let mut cfg = AgentConfig {
        company: config.bot_company.clone(),
        ..AgentConfig::default()
    };
    let llm: Option<Arc<dyn Llm>> = match config.bot {
        BotMode::Off => return Ok(None),
        BotMode::Extractive => None,
        BotMode::Local => {
            let models = crate::knowledge::models(config);
            let llm = tokio::task::spawn_blocking(move || {
                let dir = models
                    .ensure(switchboard_models::ModelId::SmolLm2_135mInstruct)
                    .map_err(|e| e.to_string())?;
                LocalLlm::load_dir(&dir).map_err(|e| e.to_string())
            })
            .await
            .map_err(|e| BotError(e.to_string()))?
            .map_err(|e| {
                BotError(format!(
                    "the local language model could not be loaded: {e}. Run scripts/setup, or start with --bot extractive"
                ))
            })?;
            cfg.mode = GenerationMode::Llm;
            Some(Arc::new(llm))
        }
        BotMode::Openai => {
            let base_url = config
                .openai_base_url
                .clone()
                .ok_or_else(|| BotError("--bot openai needs --openai-base-url".into()))?;
            cfg.mode = GenerationMode::Llm;
            Some(Arc::new(OpenAiLlm::new(&OpenAiConfig {
                base_url,
                model: config.openai_model.clone(),
                api_key: config.openai_api_key.clone().unwrap_or_default(),
            })))
        }
    };
    Ok(Some(Arc::new(Agent::new(cfg, retriever, llm))))
}

/// Why the virtual agent could not start.
#[derive(Debug, thiserror::Error)]
#[error("virtual agent: {0}")]
pub struct BotError(pub String);

/// Starts the virtual agent's task: it takes the bot lock when it can and
/// answers until shutdown.
pub fn spawn(
    db: Db,
    writer: Writer,
    bus: Arc<dyn Bus>,
    agent: Arc<Agent>,
    scope: BotScope,
    mut shutdown: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            if *shutdown.borrow() {
                return;
            }
            match Leadership::acquire(&db, BOT_LOCK).await {
                Ok(Some(lease)) => {
                    tracing::info!("this node runs the virtual agent");
                    let runner = Runner {
                        db: db.clone(),
                        writer: writer.clone(),
                        agent: agent.clone(),
                        bus: bus.clone(),
                        scope: scope.clone(),
                        locks: Arc::new(Mutex::new(HashMap::new())),
                        slots: Arc::new(Semaphore::new(CONCURRENT_TURNS)),
                    };
                    if let Err(e) = runner.run(lease, bus.as_ref(), &mut shutdown).await {
                        tracing::warn!(error = %e, "virtual agent stopped; retrying");
                    }
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "cannot check the virtual agent's lock"),
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                _ = shutdown.changed() => return,
            }
        }
    })
}

/// Where the runner stands in the record, for catching up.
struct Place {
    /// Row id of the last stored event accounted for.
    row: i64,
    /// The last customer message delivered by the bus (its row is looked
    /// up only when needed).
    seen: Option<EventId>,
    /// Messages answered while catching up that the bus may still deliver.
    replayed: HashSet<EventId>,
}

/// Stored events read per query while catching up.
const CATCH_UP_PAGE: i64 = 500;
/// Most catch-up replays remembered (older ones were delivered long ago).
const MAX_REPLAYED: usize = 100_000;
/// On start, customer messages this recent without a turn are answered...
const STARTUP_WINDOW: chrono::TimeDelta = chrono::TimeDelta::minutes(10);
/// ...among the last this many stored events (a bounded scan).
const STARTUP_ROWS: i64 = 100_000;

/// Whether a customer message already has its turn: the turn's idempotency
/// key is stored with it. Turns written before keys were stored are
/// recognised as a `bot_turn` without a key after the message.
async fn answered_already(db: &Db, env: &Envelope) -> Result<bool, DbError> {
    let row = sqlx::query(
        "SELECT 1 AS found FROM events WHERE conversation_id = $1 \
         AND (client_msg_id = $2 OR (kind = 'bot_turn' AND seq > $3 AND client_msg_id IS NULL)) LIMIT 1",
    )
    .bind(env.conversation_id.to_string())
    .bind(turn_key(env))
    .bind(env.seq as i64)
    .fetch_optional(db.pool())
    .await?;
    Ok(row.is_some())
}

fn is_customer_message(env: &Envelope) -> bool {
    matches!(
        env.event,
        Event::MessageAdded {
            from: Participant::Customer(_),
            ..
        }
    )
}

/// The idempotency key of the turn that answers a customer message.
fn turn_key(env: &Envelope) -> String {
    format!("bot:{}", env.id)
}

#[derive(Clone)]
struct Runner {
    db: Db,
    writer: Writer,
    agent: Arc<Agent>,
    bus: Arc<dyn Bus>,
    scope: BotScope,
    /// One turn at a time per conversation, in message order.
    locks: Arc<Mutex<HashMap<ConversationId, Arc<Mutex<()>>>>>,
    slots: Arc<Semaphore>,
}

impl Runner {
    async fn run(
        &self,
        mut lease: Leadership,
        bus: &dyn Bus,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<(), String> {
        let mut sub = bus
            .subscribe(StartAt::Live)
            .await
            .map_err(|e| e.to_string())?;
        let last = self.db.last_event_row().await.map_err(|e| e.to_string())?;
        // Customer messages stored shortly before this runner started (while
        // no node ran the virtual agent: a restart, a new leader) that have
        // no turn yet are answered first.
        let mut place = Place {
            row: (last - STARTUP_ROWS).max(0),
            seen: None,
            replayed: HashSet::new(),
        };
        let since = chrono::Utc::now() - STARTUP_WINDOW;
        match self.catch_up(&mut place, Some(last), Some(since)).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                answered = n,
                "virtual agent answered messages that arrived while it was not running"
            ),
            Err(e) => return Err(format!("virtual agent cannot read recent messages: {e}")),
        }
        place.row = last;
        let mut check = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = shutdown.changed() => return Ok(()),
                _ = check.tick() => {
                    if !lease.check().await {
                        return Err("lost the virtual agent's lock".into());
                    }
                }
                delivery = sub.next() => match delivery {
                    Some(Ok(d)) => {
                        if place.replayed.remove(&d.envelope.id) {
                            continue; // answered while catching up
                        }
                        if is_customer_message(&d.envelope) {
                            place.seen = Some(d.envelope.id);
                        }
                        self.on_event(d.envelope).await;
                    }
                    Some(Err(e @ BusError::CursorExpired { .. })) => {
                        tracing::warn!(error = %e, "virtual agent fell behind the bus; catching up from the database");
                        loop {
                            match self.catch_up(&mut place, None, None).await {
                                Ok(n) => {
                                    tracing::info!(answered = n, "virtual agent caught up");
                                    break;
                                }
                                Err(e) => {
                                    tracing::warn!(error = %e, "virtual agent cannot catch up yet; retrying");
                                    tokio::select! {
                                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                                        _ = shutdown.changed() => return Ok(()),
                                    }
                                }
                            }
                        }
                    }
                    Some(Err(e)) => tracing::warn!(error = %e, "virtual agent: bus delivery failed"),
                    None => return Err("bus subscription ended".into()),
                },
            }
        }
    }

    /// Answers the customer messages stored after `place` (up to row
    /// `until`, and not older than `not_before`) that have no turn yet;
    /// returns how many. Each one answered is remembered, so its later
    /// delivery by the bus is skipped.
    async fn catch_up(
        &self,
        place: &mut Place,
        until: Option<i64>,
        not_before: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<usize, DbError> {
        if let Some(id) = place.seen {
            if let Some(row) = self.db.event_row(id).await? {
                place.row = row;
            }
            place.seen = None;
        }
        let mut answered = 0;
        loop {
            let page = self
                .db
                .events_of_kind_after_row("message_added", place.row, not_before, CATCH_UP_PAGE)
                .await?;
            let full = page.len() as i64 == CATCH_UP_PAGE;
            for (row, env) in page {
                if until.is_some_and(|u| row > u) {
                    return Ok(answered);
                }
                if is_customer_message(&env) && !answered_already(&self.db, &env).await? {
                    if place.replayed.len() >= MAX_REPLAYED {
                        place.replayed.clear();
                    }
                    place.replayed.insert(env.id);
                    metrics::counter!("switchboard_bot_caught_up_total").increment(1);
                    answered += 1;
                    self.on_event(env).await;
                }
                place.row = row;
            }
            if !full {
                return Ok(answered);
            }
        }
    }

    async fn on_event(&self, env: Envelope) {
        let Event::MessageAdded {
            from: Participant::Customer(_),
            text,
            ..
        } = &env.event
        else {
            return;
        };
        let text = text.clone();
        let me = self.clone();
        // Take the conversation's lock before spawning, so turns keep message order.
        let lock = {
            let mut locks = self.locks.lock().await;
            if locks.len() > 10_000 {
                locks.retain(|_, l| Arc::strong_count(l) > 1);
            }
            locks.entry(env.conversation_id).or_default().clone()
        };
        let guard = lock.lock_owned().await;
        tokio::spawn(async move {
            let _guard = guard;
            let Ok(_slot) = me.slots.acquire().await else {
                return;
            };
            if let Err(e) = me.turn(&env, &text).await {
                tracing::warn!(conversation = %env.conversation_id, error = %e, "virtual agent turn failed");
            }
        });
    }

    async fn turn(&self, env: &Envelope, text: &str) -> Result<(), String> {
        let id = env.conversation_id;
        let Some(c) = self.db.conversation(id).await.map_err(|e| e.to_string())? else {
            return Ok(());
        };
        if !bot_serves(&c, &self.scope.channels) {
            return Ok(());
        }
        if !self.scope.open_now() {
            return self.outside_hours(env, &c).await;
        }
        let mut state = match load_state(&self.db, id).await.map_err(|e| e.to_string())? {
            Some(s) => s,
            None => ConversationState::new(c.contact.id),
        };
        crate::api::ws::publish_typing_on(self.bus.as_ref(), id, Participant::Bot, true).await;
        let outcome = self.agent.turn(&mut state, text).await;
        crate::api::ws::publish_typing_on(self.bus.as_ref(), id, Participant::Bot, false).await;
        metrics::counter!("switchboard_bot_turns_total", "decision" => decision_name(&outcome))
            .increment(1);
        let events = turn_events(&outcome);
        let key = turn_key(env);
        let channels = self.scope.channels.clone();
        let appended = self
            .writer
            .append(
                id,
                Some(key),
                Box::new(move |c| {
                    let c = c.ok_or(AppendError::NotFound)?;
                    if !bot_serves(c, &channels) {
                        return Ok(vec![]); // a person took over meanwhile
                    }
                    Ok(events.clone())
                }),
            )
            .await
            .map_err(|e| e.to_string())?;
        if !appended.events.is_empty() {
            save_state(&self.db, id, &state)
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}

/// Where and when the virtual agent answers.
#[derive(Debug, Clone)]
pub struct BotScope {
    /// Channels it answers on.
    pub channels: Vec<Channel>,
    /// Its hours; `None`: always.
    pub hours: Option<switchboard_router::BusinessHours>,
}

impl BotScope {
    fn open_now(&self) -> bool {
        let now = switchboard_router::Timestamp::from_millis(
            u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or(0),
        );
        self.hours.as_ref().is_none_or(|h| h.is_open(now))
    }
}

/// Whether the virtual agent answers in this conversation (hours aside).
fn bot_serves(c: &Conversation, channels: &[Channel]) -> bool {
    c.status == ConversationStatus::Open
        && c.assignee.is_none()
        && !c.awaiting_agent
        && channels.contains(&c.channel)
}

impl Runner {
    /// Outside the virtual agent's hours the conversation goes to the agents'
    /// queues at once, with what the customer wrote as context.
    async fn outside_hours(&self, env: &Envelope, c: &Conversation) -> Result<(), String> {
        let transcript = self
            .db
            .events_after(c.id, 0, 10_000)
            .await
            .map_err(|e| e.to_string())?
            .into_iter()
            .filter_map(|e| match e.event {
                Event::MessageAdded { from, text, .. } => Some(switchboard_bus::TranscriptLine {
                    from,
                    text: switchboard_nlu::pii::mask(
                        &text,
                        switchboard_nlu::pii::PiiConfig::default(),
                    )
                    .text,
                    at: e.at,
                }),
                _ => None,
            })
            .collect::<Vec<_>>();
        let channels = self.scope.channels.clone();
        self.writer
            .append(
                c.id,
                Some(format!("bot:{}", env.id)),
                Box::new(move |c| {
                    let c = c.ok_or(AppendError::NotFound)?;
                    if !bot_serves(c, &channels) {
                        return Ok(vec![]);
                    }
                    Ok(vec![Event::HandoffRequested {
                        reason: switchboard_bus::HandoffReason::BotDisabled,
                        skill: None,
                        context: switchboard_bus::HandoffContext {
                            transcript: transcript.clone(),
                            summary: Some("outside the virtual agent's hours".into()),
                            ..Default::default()
                        },
                    }])
                }),
            )
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

fn decision_name(o: &TurnOutcome) -> &'static str {
    match o.trace.decision.action {
        Action::Answer => "answer",
        Action::Clarify => "clarify",
        Action::Escalate { .. } => "escalate",
        Action::Decline { .. } => "decline",
        Action::SmallTalk { .. } => "small_talk",
    }
}

/// The events of one turn: the trace for staff, the reply, the handoff.
fn turn_events(o: &TurnOutcome) -> Vec<Event> {
    let mut events = vec![Event::BotTurn {
        intent: o.trace.intent.clone(),
        decision: decision_name(o).to_string(),
        reason: o.trace.decision.reason.clone(),
        citations: o
            .citations
            .iter()
            .map(|c| format!("{} ({}, v{})", c.title, c.article_id, c.version))
            .collect(),
        trace: serde_json::to_value(&o.trace).unwrap_or(serde_json::Value::Null),
    }];
    events.extend(o.events());
    events
}

async fn load_state(db: &Db, id: ConversationId) -> Result<Option<ConversationState>, DbError> {
    let row = sqlx::query("SELECT state FROM bot_state WHERE conversation_id = $1")
        .bind(id.to_string())
        .fetch_optional(db.pool())
        .await?;
    match row {
        Some(r) => {
            let json: String = r.try_get("state")?;
            serde_json::from_str(&json)
                .map(Some)
                .map_err(|e| DbError::Corrupt(format!("bot state: {e}")))
        }
        None => Ok(None),
    }
}

async fn save_state(db: &Db, id: ConversationId, state: &ConversationState) -> Result<(), DbError> {
    let json = serde_json::to_string(state).map_err(|e| DbError::Corrupt(e.to_string()))?;
    sqlx::query(
        "INSERT INTO bot_state (conversation_id, state, updated_at) VALUES ($1, $2, $3) \
         ON CONFLICT (conversation_id) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at",
    )
    .bind(id.to_string())
    .bind(json)
    .bind(ms(chrono::Utc::now()))
    .execute(db.pool())
    .await?;
    Ok(())
}
