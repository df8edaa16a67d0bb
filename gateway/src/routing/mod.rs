//! Routing glue: runs the [`switchboard_router`] state machine against the
//! conversation bus, the database and the clock.
//!
//! ## One router per installation
//! Exactly one gateway node — the *leader* — runs the router. With SQLite
//! (one node) that is always this node; with PostgreSQL the leader holds a
//! session advisory lock on a dedicated connection, so when it dies its lock
//! goes with its connection and another node takes over within seconds.
//! Every node may serve agents and customers: what they do reaches the
//! leader as stored conversation events on the bus (a handoff, an agent's
//! answer to an offer, an assignment by hand, a close) or as rows it polls
//! (presence, configuration). The leader appends what the router decides
//! (offers, assignments, queue positions) through the writer, whose
//! per-conversation optimistic check makes each decision take effect once:
//! an assignment is only stored while the conversation has no assignee.
//!
//! ## Restart
//! A new leader rebuilds the router from the database: configuration and
//! presence from their tables, assigned conversations as load on their
//! agents, and conversations awaiting an agent in their original order.
//! Offers made by a previous leader are withdrawn and made again.

pub mod store;

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use futures::future::join_all;
use serde_json::json;
use switchboard_bus::{
    AgentId, Bus, Conversation, ConversationId, ConversationStatus, Envelope, Event, Participant,
    Skill, StartAt,
};
use switchboard_router::{
    ChannelKind, ContactRequest, Explanation, Input, Language, OfferId, Output, Presence, Priority,
    QueueId, RejectReason, RequeueReason, RevokeReason, Router, RouterConfig, RouterError, Tag,
    Timestamp, Topic,
};
use tokio::sync::watch;

use crate::auth::Permission;
use crate::db::{Db, DbError};
use crate::lease::Leadership;
use crate::writer::{AppendError, Decide, Writer};
pub use store::{DEFAULT_QUEUE, PresenceRow, StoredSnapshot};

/// Advisory lock key held by the routing leader (PostgreSQL).
const LEADER_LOCK: i64 = 0x5357_4244_5254; // "SWBDRT"
/// How often the leader polls presence and configuration.
const POLL_EVERY: Duration = Duration::from_millis(400);
/// How often the leader publishes its snapshot and checks its lock.
const SNAPSHOT_EVERY: Duration = Duration::from_secs(1);
/// How long a follower waits before trying to become leader again.
const RETRY_LEADERSHIP: Duration = Duration::from_secs(2);

/// Starts the routing task: it becomes leader when it can and routes until
/// shutdown.
pub fn spawn(
    db: Db,
    writer: Writer,
    bus: Arc<dyn Bus>,
    node: String,
    mut shutdown: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            if *shutdown.borrow() {
                return;
            }
            match Leadership::acquire(&db, LEADER_LOCK).await {
                Ok(Some(lease)) => {
                    tracing::info!(node = %node, "this node now routes conversations (routing leader)");
                    metrics::gauge!("switchboard_routing_leader").set(1.0);
                    match Leader::new(db.clone(), writer.clone(), node.clone()) {
                        Ok(mut leader) => {
                            if let Err(e) = leader.run(lease, bus.as_ref(), &mut shutdown).await {
                                tracing::warn!(error = %e, "routing leader stopped; retrying");
                            }
                        }
                        Err(e) => tracing::error!(error = %e, "routing configuration is invalid"),
                    }
                    metrics::gauge!("switchboard_routing_leader").set(0.0);
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "cannot check routing leadership"),
            }
            tokio::select! {
                _ = tokio::time::sleep(RETRY_LEADERSHIP) => {}
                _ = shutdown.changed() => return,
            }
        }
    })
}

/// Why the leader stopped.
#[derive(Debug, thiserror::Error)]
pub enum RoutingError {
    /// Database trouble.
    #[error("database: {0}")]
    Db(#[from] DbError),
    /// Bus trouble.
    #[error("bus: {0}")]
    Bus(#[from] switchboard_bus::BusError),
    /// The advisory lock's connection was lost: another node may lead now.
    #[error("lost routing leadership")]
    LostLeadership,
}

fn now() -> Timestamp {
    Timestamp::from_millis(u64::try_from(Utc::now().timestamp_millis()).unwrap_or(0))
}

fn to_utc(t: Timestamp) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(i64::try_from(t.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or_else(Utc::now)
}

/// The router, fed and obeyed.
struct Leader {
    db: Db,
    writer: Writer,
    node: String,
    router: Router,
    /// Prefix making offer ids unique across leaders.
    epoch: u64,
    /// Offer ids on the bus → the router's.
    offers: HashMap<String, OfferId>,
    /// Per conversation, the last seq already reflected in the router.
    seen: HashMap<ConversationId, u64>,
    presence_versions: HashMap<AgentId, i64>,
    presence_polled_at: i64,
    config_version: i64,
    /// Languages some agent lists (see `reload_config`).
    languages: std::collections::BTreeSet<Language>,
    /// Inputs produced by carrying out outputs (e.g. an assignment that lost a race).
    followups: VecDeque<Input>,
}

impl Leader {
    fn new(db: Db, writer: Writer, node: String) -> Result<Self, RouterError> {
        let router = Router::new(RouterConfig::default())?;
        Ok(Leader {
            db,
            writer,
            node,
            router,
            epoch: now().as_millis(),
            offers: HashMap::new(),
            seen: HashMap::new(),
            presence_versions: HashMap::new(),
            presence_polled_at: 0,
            config_version: -1,
            languages: std::collections::BTreeSet::new(),
            followups: VecDeque::new(),
        })
    }

    async fn run(
        &mut self,
        mut lease: Leadership,
        bus: &dyn Bus,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<(), RoutingError> {
        // Subscribe first, then read the database: whatever happens in
        // between arrives on the subscription and is skipped by seq if the
        // scan already saw it.
        let mut sub = bus.subscribe(StartAt::Live).await?;
        self.reload_config().await?;
        self.poll_presence().await?;
        self.rebuild().await?;
        let mut poll = tokio::time::interval(POLL_EVERY);
        let mut snap = tokio::time::interval(SNAPSHOT_EVERY);
        loop {
            let deadline = self.router.next_deadline();
            let sleep = async {
                match deadline {
                    Some(at) => {
                        let wait =
                            Duration::from_millis(at.as_millis().saturating_sub(now().as_millis()));
                        tokio::time::sleep(wait).await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = shutdown.changed() => return Ok(()),
                delivery = sub.next() => {
                    match delivery {
                        Some(Ok(d)) => self.on_event(&d.envelope).await?,
                        // Fell behind the bus's retention: events were missed, so
                        // start over and rebuild from the database (the record).
                        Some(Err(e @ switchboard_bus::BusError::CursorExpired { .. })) => {
                            return Err(RoutingError::Bus(e));
                        }
                        Some(Err(e)) => tracing::warn!(error = %e, "routing: bus delivery failed"),
                        None => return Err(RoutingError::Bus(switchboard_bus::BusError::Unavailable("bus subscription ended".into()))),
                    }
                }
                _ = sleep => self.feed(Input::Tick).await,
                _ = poll.tick() => {
                    if let Err(e) = self.poll_config_and_presence().await {
                        tracing::warn!(error = %e, "routing: cannot read presence or configuration");
                    }
                }
                _ = snap.tick() => {
                    if !lease.check().await {
                        return Err(RoutingError::LostLeadership);
                    }
                    if let Err(e) = self.publish_snapshot().await {
                        tracing::debug!(error = %e, "routing: snapshot not written");
                    }
                }
            }
        }
    }

    // ---- inputs --------------------------------------------------------------

    /// Feeds one input and carries out the outputs, then any follow-ups.
    async fn feed(&mut self, input: Input) {
        self.followups.push_back(input);
        while let Some(input) = self.followups.pop_front() {
            let started = std::time::Instant::now();
            let result = self.router.handle(now(), input);
            metrics::histogram!("switchboard_routing_decision_seconds")
                .record(started.elapsed().as_secs_f64());
            match result {
                Ok(outputs) => self.carry_out(outputs).await,
                Err(e) => tracing::debug!(error = %e, "routing: input refused"),
            }
        }
    }

    /// Feeds an input whose refusal is expected in some states (and harmless).
    async fn feed_quiet(&mut self, input: Input) {
        match self.router.handle(now(), input) {
            Ok(outputs) => self.carry_out(outputs).await,
            Err(RouterError::UnknownContact(_) | RouterError::WrongContactState { .. }) => {}
            Err(e) => tracing::debug!(error = %e, "routing: input refused"),
        }
        while let Some(input) = self.followups.pop_front() {
            Box::pin(self.feed(input)).await;
        }
    }

    async fn reload_config(&mut self) -> Result<(), DbError> {
        let version = self.db.routing_config_version().await?;
        if version == self.config_version {
            return Ok(());
        }
        let queues = self.db.routing_queues().await?;
        let wanted: std::collections::BTreeSet<QueueId> =
            queues.iter().map(|q| q.id.clone()).collect();
        for q in self.router.queue_snapshots() {
            if !wanted.contains(&q.id) {
                self.feed(Input::RemoveQueue { queue: q.id }).await;
            }
        }
        for q in queues {
            self.feed(Input::UpsertQueue(q)).await;
        }
        let profiles: HashMap<AgentId, _> = self
            .db
            .agent_profiles()
            .await?
            .into_iter()
            .map(|p| (p.id, p))
            .collect();
        // Language routing is on for the languages some agent lists; an agent
        // who lists none takes any of them.
        self.languages = profiles
            .values()
            .flat_map(|p| p.languages.iter().cloned())
            .collect();
        for user in self.db.users().await? {
            if !user.active || !user.role.can(Permission::WorkConversations) {
                if self.router.agent_snapshot(&user.id).is_ok() {
                    self.feed(Input::AgentPresence {
                        agent: user.id,
                        presence: Presence::Offline,
                    })
                    .await;
                }
                continue;
            }
            let mut profile = profiles
                .get(&user.id)
                .cloned()
                .unwrap_or_else(|| switchboard_router::AgentProfile::new(user.id));
            if profile.languages.is_empty() {
                profile.languages = self.languages.clone();
            }
            self.feed(Input::UpsertAgent(profile)).await;
        }
        self.config_version = version;
        Ok(())
    }

    async fn poll_presence(&mut self) -> Result<(), DbError> {
        // Re-read a window, not just "since last poll": rows committed late
        // by another node still carry an earlier `changed_at`.
        let since = self.presence_polled_at.saturating_sub(10_000);
        let polled_at = Utc::now().timestamp_millis();
        let rows = self.db.presences_since(since).await?;
        for row in rows {
            if self
                .presence_versions
                .get(&row.agent)
                .is_some_and(|&v| v >= row.version)
            {
                continue;
            }
            if self.router.agent_snapshot(&row.agent).is_err() {
                // Someone new: pick up the user list and profiles first.
                self.config_version = -1;
                self.reload_config().await?;
                if self.router.agent_snapshot(&row.agent).is_err() {
                    self.presence_versions.insert(row.agent, row.version);
                    continue;
                }
            }
            self.presence_versions.insert(row.agent, row.version);
            self.feed(Input::AgentPresence {
                agent: row.agent,
                presence: row.presence,
            })
            .await;
        }
        self.presence_polled_at = polled_at;
        Ok(())
    }

    async fn poll_config_and_presence(&mut self) -> Result<(), DbError> {
        self.reload_config().await?;
        self.poll_presence().await
    }

    /// Puts every open conversation the router must hold back into it.
    async fn rebuild(&mut self) -> Result<(), DbError> {
        let candidates = self.db.routing_candidates().await?;
        let (mut attached, mut queued) = (0, 0);
        for c in candidates {
            self.seen.insert(c.id, c.last_seq);
            if let Some(agent) = c.assignee {
                let Some(queue) = self.queue_for(c.requested_skill.as_ref(), c.channel) else {
                    continue;
                };
                let request = ContactRequest::new(c.id, queue, c.channel);
                self.feed(Input::ContactAttached { request, agent }).await;
                attached += 1;
                continue;
            }
            if let Some(pending) = c.offer.clone() {
                let offer = pending.offer.clone();
                let agent = pending.agent;
                self.append(
                    c.id,
                    Box::new(move |c| {
                        let c = existing(c)?;
                        Ok(match &c.offer {
                            Some(p) if p.offer == offer => vec![Event::OfferWithdrawn {
                                offer: offer.clone(),
                                agent,
                                reason: "router_restarted".into(),
                            }],
                            _ => vec![],
                        })
                    }),
                )
                .await
                .ok();
            }
            self.enqueue(&c, None, None).await;
            queued += 1;
        }
        tracing::info!(
            attached,
            queued,
            "routing state rebuilt from stored conversations"
        );
        Ok(())
    }

    fn queue_for(
        &self,
        skill: Option<&Skill>,
        channel: switchboard_bus::Channel,
    ) -> Option<QueueId> {
        let kind = ChannelKind::of(channel);
        let fits = |id: &str| {
            self.router
                .queue_snapshot(&QueueId::new(id))
                .is_ok_and(|q| q.kind == kind)
        };
        if let Some(s) = skill
            && fits(s.as_str())
        {
            return Some(QueueId::new(s.as_str()));
        }
        if fits(DEFAULT_QUEUE) {
            return Some(QueueId::new(DEFAULT_QUEUE));
        }
        self.router
            .queue_snapshots()
            .into_iter()
            .find(|q| q.kind == kind)
            .map(|q| q.id)
    }

    /// Puts a conversation awaiting an agent into its queue.
    async fn enqueue(&mut self, c: &Conversation, language: Option<&str>, intent: Option<&str>) {
        if self.router.contact_snapshot(&c.id).is_ok() {
            return;
        }
        let Some(queue) = self.queue_for(c.requested_skill.as_ref(), c.channel) else {
            let reason = "no_queue";
            self.dequeue(c.id, String::new(), reason).await;
            return;
        };
        let mut req = ContactRequest::new(c.id, queue, c.channel);
        req.tags = c.tags.iter().map(Tag::new).collect();
        if c.tags.iter().any(|t| t.eq_ignore_ascii_case("vip")) {
            req.priority = Priority(1);
        }
        // A language no agent lists is not a requirement (nobody could ever take the contact).
        req.language = language
            .filter(|l| !l.is_empty())
            .map(Language::new)
            .filter(|l| self.languages.contains(l));
        req.topic = intent.filter(|i| !i.is_empty()).map(Topic::new);
        self.feed(Input::ContactArrived(req)).await;
    }

    async fn on_event(&mut self, env: &Envelope) -> Result<(), RoutingError> {
        if env.event.is_ephemeral() {
            return Ok(());
        }
        let id = env.conversation_id;
        if self.seen.get(&id).is_some_and(|&s| env.seq <= s) {
            return Ok(());
        }
        self.seen.insert(id, env.seq);
        match &env.event {
            Event::HandoffRequested { context, .. } => {
                let Some(c) = self.db.conversation(id).await? else {
                    return Ok(());
                };
                if c.status == ConversationStatus::Open && c.assignee.is_none() && c.awaiting_agent
                {
                    self.enqueue(&c, context.language.as_deref(), context.intent.as_deref())
                        .await;
                }
            }
            Event::Assigned { agent, by } if *by != Participant::System => {
                // By hand (or a supervisor's reassignment): the contact leaves
                // any queue or previous agent and counts against this agent.
                self.release(id).await;
                let Some(c) = self.db.conversation(id).await? else {
                    return Ok(());
                };
                if c.status == ConversationStatus::Open
                    && let Some(queue) = self.queue_for(c.requested_skill.as_ref(), c.channel)
                {
                    let request = ContactRequest::new(id, queue, c.channel);
                    self.feed(Input::ContactAttached {
                        request,
                        agent: *agent,
                    })
                    .await;
                }
            }
            Event::Unassigned { .. } => self.release(id).await,
            Event::ConversationClosed { by, .. } => {
                let input = if matches!(by, Participant::Customer(_)) {
                    Input::ContactAbandoned { contact: id }
                } else {
                    Input::ContactEnded { contact: id }
                };
                self.feed_quiet(input).await;
                self.seen.remove(&id);
            }
            Event::OfferAnswered {
                offer, accepted, ..
            } => {
                if let Some(offer) = self.offers.remove(offer) {
                    let input = if *accepted {
                        Input::OfferAccepted { offer }
                    } else {
                        Input::OfferDeclined { offer }
                    };
                    self.feed(input).await;
                }
            }
            Event::WrapUpDone { .. } => {
                self.feed_quiet(Input::WrapUpDone { contact: id }).await;
            }
            // A caller who hangs up leaves the queue (counted as abandoned) or ends the contact.
            Event::CallEnded { .. } => {
                self.feed_quiet(Input::ContactAbandoned { contact: id })
                    .await;
            }
            _ => {}
        }
        Ok(())
    }

    /// Takes a contact out of routing entirely (queue, offer, agent, wrap-up).
    async fn release(&mut self, id: ConversationId) {
        self.feed_quiet(Input::ContactEnded { contact: id }).await;
        self.feed_quiet(Input::WrapUpDone { contact: id }).await;
    }

    // ---- outputs -------------------------------------------------------------

    async fn append(&self, id: ConversationId, decide: Decide) -> Result<(), AppendError> {
        self.writer.append(id, None, decide).await.map(|_| ())
    }

    async fn dequeue(&mut self, id: ConversationId, queue: String, reason: &'static str) {
        let text = match reason {
            "closed" => {
                "Our team is not available right now. Leave your message here and we will reply as soon as we are back."
            }
            "voicemail" | "callback" => {
                "All our agents are busy. Leave your message and contact details here and we will get back to you."
            }
            _ => {
                "Your request is waiting for our team; an agent will pick it up as soon as possible."
            }
        };
        let result = self
            .append(
                id,
                Box::new(move |c| {
                    let c = existing(c)?;
                    if c.status != ConversationStatus::Open || c.assignee.is_some() {
                        return Ok(vec![]);
                    }
                    Ok(vec![
                        Event::Dequeued {
                            queue: queue.clone(),
                            reason: reason.into(),
                        },
                        Event::MessageAdded {
                            from: Participant::System,
                            text: text.into(),
                            attachments: vec![],
                            client_msg_id: None,
                        },
                    ])
                }),
            )
            .await;
        if let Err(e) = result {
            tracing::warn!(conversation = %id, error = %e, "routing: could not record leaving the queue");
        }
    }

    fn offer_name(&self, offer: OfferId) -> String {
        format!("{}-{}", self.epoch, offer.0)
    }

    async fn carry_out(&mut self, outputs: Vec<Output>) {
        let mut pending = Vec::new();
        for out in outputs {
            tracing::debug!(output = ?out, "routing decision");
            match out {
                Output::Offered {
                    offer,
                    contact,
                    agent,
                    queue,
                    expires_at,
                    explanation,
                } => {
                    metrics::counter!("switchboard_routing_offers_total").increment(1);
                    let name = self.offer_name(offer);
                    self.offers.insert(name.clone(), offer);
                    let why = explain(&explanation);
                    let queue = queue.as_str().to_string();
                    let expires_at = to_utc(expires_at);
                    let decide: Decide = Box::new(move |c| {
                        let c = existing(c)?;
                        if c.status != ConversationStatus::Open || c.assignee.is_some() {
                            return Err(AppendError::Conflict(
                                "no longer awaiting an agent".into(),
                            ));
                        }
                        Ok(vec![Event::Offered {
                            offer: name.clone(),
                            agent,
                            queue: queue.clone(),
                            expires_at,
                            why: why.clone(),
                        }])
                    });
                    pending.push((contact, decide, Some(Input::ContactEnded { contact })));
                }
                Output::OfferRevoked {
                    offer,
                    contact,
                    agent,
                    reason,
                } => {
                    let name = self.offer_name(offer);
                    self.offers.remove(&name);
                    let reason = match reason {
                        RevokeReason::TimedOut => "timed_out",
                        RevokeReason::AgentUnavailable => "agent_unavailable",
                        RevokeReason::ContactAbandoned | RevokeReason::ContactWithdrawn => {
                            "contact_left"
                        }
                    };
                    pending.push((contact, withdraw(name, agent, reason), None));
                }
                Output::Requeued {
                    contact,
                    reason: RequeueReason::Declined,
                    ..
                } => {
                    tracing::debug!(conversation = %contact, "offer declined; back in queue");
                }
                Output::Requeued { .. } | Output::Relaxed { .. } => {}
                Output::Assigned {
                    contact,
                    agent,
                    queue,
                    waited,
                } => {
                    metrics::counter!("switchboard_routing_assigned_total").increment(1);
                    metrics::histogram!("switchboard_routing_wait_seconds", "queue" => queue.as_str().to_string())
                        .record(waited.as_secs_f64());
                    // Customers do not see assignments (they carry staff ids), so
                    // they are told in words who joined.
                    let first_name = match self.db.user(agent).await {
                        Ok(Some(u)) => u
                            .name
                            .split_whitespace()
                            .next()
                            .unwrap_or("An agent")
                            .to_string(),
                        _ => "An agent".to_string(),
                    };
                    let joined = format!("{first_name} joined the conversation.");
                    let decide: Decide = Box::new(move |c| {
                        let c = existing(c)?;
                        if c.status != ConversationStatus::Open {
                            return Err(AppendError::Conflict("the conversation is closed".into()));
                        }
                        if c.assignee.is_some() {
                            return Err(AppendError::Conflict("already assigned".into()));
                        }
                        Ok(vec![
                            Event::Assigned {
                                agent,
                                by: Participant::System,
                            },
                            Event::MessageAdded {
                                from: Participant::System,
                                text: joined.clone(),
                                attachments: vec![],
                                client_msg_id: None,
                            },
                        ])
                    });
                    // Lost the race (assigned by hand, closed): the agent's slot frees at once.
                    pending.push((contact, decide, Some(Input::ContactEnded { contact })));
                }
                Output::EstimateChanged {
                    contact,
                    queue,
                    position,
                    ewt,
                } => {
                    let queue = queue.as_str().to_string();
                    let ewt_secs = ewt.map(|d| d.as_secs());
                    let decide: Decide = Box::new(move |c| {
                        let c = existing(c)?;
                        let same = c.queue.as_deref() == Some(queue.as_str())
                            && c.queue_position == Some(position)
                            && c.queue_ewt_secs == ewt_secs;
                        if c.status != ConversationStatus::Open || c.assignee.is_some() || same {
                            return Ok(vec![]);
                        }
                        Ok(vec![Event::Queued {
                            queue: queue.clone(),
                            position: Some(position),
                            ewt_secs,
                        }])
                    });
                    pending.push((contact, decide, None));
                }
                Output::Overflowed { contact, to, .. } => {
                    let queue = to.as_str().to_string();
                    let decide: Decide = Box::new(move |c| {
                        let c = existing(c)?;
                        if c.status != ConversationStatus::Open || c.assignee.is_some() {
                            return Ok(vec![]);
                        }
                        Ok(vec![Event::Queued {
                            queue: queue.clone(),
                            position: None,
                            ewt_secs: None,
                        }])
                    });
                    pending.push((contact, decide, None));
                }
                Output::OfferVoicemail { contact, queue } => {
                    self.dequeue(contact, queue.as_str().to_string(), "voicemail")
                        .await;
                }
                Output::OfferCallback { contact, queue } => {
                    self.dequeue(contact, queue.as_str().to_string(), "callback")
                        .await;
                }
                Output::Rejected {
                    contact,
                    queue,
                    reason,
                } => {
                    let reason = match reason {
                        RejectReason::Closed | RejectReason::TooManyMoves => "closed",
                    };
                    self.dequeue(contact, queue.as_str().to_string(), reason)
                        .await;
                }
                Output::WrapUpStarted { .. } | Output::WrapUpEnded { .. } => {}
                Output::PresenceChanged { agent, presence } => {
                    match self.db.set_presence(agent, &presence).await {
                        Ok(row) => {
                            self.presence_versions.insert(agent, row.version);
                        }
                        Err(e) => {
                            tracing::warn!(%agent, error = %e, "routing: presence change not stored")
                        }
                    }
                }
            }
        }
        // Queue every append first (the writer commits them together), then
        // collect the outcomes.
        let mut futures = Vec::with_capacity(pending.len());
        let mut on_fail = Vec::with_capacity(pending.len());
        for (contact, decide, fallback) in pending {
            match self.writer.enqueue(contact, None, decide).await {
                Ok(f) => {
                    futures.push(f);
                    on_fail.push((contact, fallback));
                }
                Err(e) => {
                    tracing::warn!(conversation = %contact, error = %e, "routing: decision not stored")
                }
            }
        }
        for (result, (contact, fallback)) in join_all(futures).await.into_iter().zip(on_fail) {
            match result {
                Ok(_) => {}
                Err(AppendError::Conflict(why)) => {
                    tracing::info!(conversation = %contact, why, "routing decision overtaken; releasing the contact");
                    if let Some(input) = fallback {
                        self.followups.push_back(input);
                        self.followups.push_back(Input::WrapUpDone { contact });
                    }
                }
                Err(e) => {
                    tracing::warn!(conversation = %contact, error = %e, "routing: decision not stored");
                    if let Some(input) = fallback {
                        self.followups.push_back(input);
                        self.followups.push_back(Input::WrapUpDone { contact });
                    }
                }
            }
        }
    }

    async fn publish_snapshot(&self) -> Result<(), DbError> {
        let queues: Vec<serde_json::Value> = self
            .router
            .queue_snapshots()
            .into_iter()
            .map(|q| {
                let waiting = self.router.waiting_contacts(&q.id).unwrap_or_default();
                json!({"queue": q, "waiting_contacts": waiting})
            })
            .collect();
        let doc = json!({
            "leader": self.node,
            "at": now().as_millis(),
            "queues": queues,
            "agents": self.router.agent_snapshots(),
        });
        self.db
            .write_routing_snapshot(&self.node, &doc.to_string())
            .await
    }
}

fn existing(c: Option<&Conversation>) -> Result<&Conversation, AppendError> {
    c.ok_or(AppendError::NotFound)
}

fn withdraw(offer: String, agent: AgentId, reason: &'static str) -> Decide {
    Box::new(move |c| {
        let c = existing(c)?;
        Ok(match &c.offer {
            Some(p) if p.offer == offer => vec![Event::OfferWithdrawn {
                offer: offer.clone(),
                agent,
                reason: reason.into(),
            }],
            _ => vec![],
        })
    })
}

/// "Why this agent", in one line for the agent and the supervisor.
fn explain(e: &Explanation) -> String {
    let strategy = serde_json::to_value(e.strategy)
        .ok()
        .and_then(|v| v.as_str().map(|s| s.replace('_', " ")))
        .unwrap_or_else(|| "routing".into());
    let mut parts = vec![format!("{strategy} strategy")];
    if !e.skills.is_empty() {
        let skills: Vec<String> = e
            .skills
            .iter()
            .map(|s| format!("{} {} (needs {})", s.skill, s.agent, s.required))
            .collect();
        parts.push(format!("skills {}", skills.join(", ")));
    }
    parts.push(format!("free for {} s", e.agent_idle_for.as_secs()));
    parts.push(format!("load {}/{}", e.agent_load.0, e.agent_load.1));
    if e.relaxation_level > 0 {
        parts.push(format!("overflow level {}", e.relaxation_level));
    }
    if e.previous_agent_skipped {
        parts.push("previous agent skipped".into());
    }
    if let Some(score) = &e.score {
        parts.push(format!("predictive score {:.2}", score.total));
    }
    parts.join("; ")
}
