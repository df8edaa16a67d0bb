//! The [`Router`]: entry point, input validation, timers and configuration changes.

use std::collections::{BTreeSet, HashMap};

use switchboard_bus::{AgentId, ConversationId};

use crate::config::RouterConfig;
use crate::error::RouterError;
use crate::io::{Input, Output, RequeueReason, RevokeReason};
use crate::state::{
    AgentIx, AgentState, ContactIx, ContactState, OfferState, Phase, QueueIx, QueueState, Slab,
    Timer,
};
use crate::time::Timestamp;
use crate::types::{ChannelKind, OfferId, Presence, QueueId};

/// The skills-based router: a deterministic state machine.
///
/// Feed it [`Input`]s with the current time through [`Router::handle`]; it
/// answers with [`Output`]s. Call `handle(now, Input::Tick)` when
/// [`Router::next_deadline`] is due. The same sequence of calls always gives
/// the same outputs.
#[derive(Debug)]
pub struct Router {
    pub(crate) cfg: RouterConfig,
    pub(crate) now: Timestamp,
    pub(crate) queues: Slab<QueueState>,
    pub(crate) queue_ix: HashMap<QueueId, QueueIx>,
    pub(crate) agents: Slab<AgentState>,
    pub(crate) agent_ix: HashMap<AgentId, AgentIx>,
    pub(crate) contacts: Slab<ContactState>,
    pub(crate) contact_ix: HashMap<ConversationId, ContactIx>,
    pub(crate) offers: HashMap<OfferId, OfferState>,
    pub(crate) timers: BTreeSet<(Timestamp, Timer)>,
    /// Estimate refreshes, kept apart: they run only on `Tick`.
    pub(crate) estimate_timers: BTreeSet<(Timestamp, QueueIx)>,
    pub(crate) next_offer: u64,
    pub(crate) next_seq: u64,
    carry: Vec<Output>,
}

impl Router {
    /// An empty router: no queues, no agents.
    pub fn new(cfg: RouterConfig) -> Result<Self, RouterError> {
        cfg.validate()?;
        Ok(Router {
            cfg,
            now: Timestamp::ZERO,
            queues: Slab::append_only(),
            queue_ix: HashMap::new(),
            agents: Slab::append_only(),
            agent_ix: HashMap::new(),
            contacts: Slab::reusing(),
            contact_ix: HashMap::new(),
            offers: HashMap::new(),
            timers: BTreeSet::new(),
            estimate_timers: BTreeSet::new(),
            next_offer: 1,
            next_seq: 1,
            carry: Vec::new(),
        })
    }

    /// The router's settings.
    pub fn config(&self) -> &RouterConfig {
        &self.cfg
    }

    /// The latest time the router has seen.
    pub fn now(&self) -> Timestamp {
        self.now
    }

    /// When the router next needs `handle(_, Input::Tick)`: the earliest
    /// offer expiry, overflow step, wrap-up end or estimate refresh.
    pub fn next_deadline(&self) -> Option<Timestamp> {
        let routing = self.timers.first().map(|(t, _)| *t);
        let estimates = self.estimate_timers.first().map(|(t, _)| *t);
        match (routing, estimates) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Applies one input at time `now` and returns what to do.
    ///
    /// Timers due at `now` fire first, then the input is applied. Time never
    /// goes backwards: an earlier `now` than already seen is taken as the
    /// latest time seen. An input that names something unknown is refused
    /// with an error and changes nothing. An answer to an offer that expired
    /// in the same call (or a report about a contact that left through a
    /// timer) is ignored: the outputs already say what happened. In the rare
    /// case an input is refused *after* timers fired (removing a queue that
    /// an overflow just filled), those timers' outputs come first in the
    /// next call's result.
    pub fn handle(&mut self, now: Timestamp, input: Input) -> Result<Vec<Output>, RouterError> {
        self.validate(&input)?;
        let now = now.max(self.now);
        self.now = now;
        let mut out = std::mem::take(&mut self.carry);
        let tick = matches!(input, Input::Tick);
        self.fire_timers(now, tick, &mut out);
        match self.apply(now, input, &mut out) {
            Ok(()) => Ok(out),
            Err(e) => {
                self.carry = out;
                Err(e)
            }
        }
    }

    fn validate(&self, input: &Input) -> Result<(), RouterError> {
        match input {
            Input::UpsertQueue(cfg) => {
                cfg.validate()?;
                if let Some(&qx) = self.queue_ix.get(&cfg.id) {
                    let q = &self.queues[qx];
                    let busy = q.waiting_count + q.offered_count;
                    if q.cfg.kind != cfg.kind && busy > 0 {
                        return Err(RouterError::QueueNotEmpty {
                            queue: cfg.id.clone(),
                            contacts: busy,
                        });
                    }
                }
                Ok(())
            }
            Input::RemoveQueue { queue } => self.check_queue_empty(queue),
            Input::UpsertAgent(profile) => profile.validate(),
            Input::AgentPerformance {
                agent, performance, ..
            } => {
                self.agent(agent)?;
                performance.validate().map_err(RouterError::InvalidConfig)
            }
            Input::RemoveAgent { agent } => {
                let ax = self.agent(agent)?;
                if self.agents[ax].contacts.is_empty() {
                    Ok(())
                } else {
                    Err(RouterError::AgentBusy(*agent))
                }
            }
            Input::AgentPresence { agent, .. } => self.agent(agent).map(|_| ()),
            Input::ContactArrived(req) => {
                let qx = self.queue(&req.queue)?;
                if self.contact_ix.contains_key(&req.contact) {
                    return Err(RouterError::DuplicateContact(req.contact));
                }
                let kind = self.queues[qx].cfg.kind;
                if ChannelKind::of(req.channel) != kind {
                    return Err(RouterError::ChannelMismatch {
                        queue: req.queue.clone(),
                        kind,
                        channel: req.channel,
                    });
                }
                if let Some(r) = req
                    .required_skills
                    .iter()
                    .find(|r| !(1..=5).contains(&r.min_proficiency))
                {
                    return Err(RouterError::InvalidConfig(format!(
                        "contact {}: skill {} proficiency not in 1..=5",
                        req.contact, r.skill
                    )));
                }
                Ok(())
            }
            Input::ContactAttached { request, agent } => {
                self.agent(agent)?;
                let qx = self.queue(&request.queue)?;
                if self.contact_ix.contains_key(&request.contact) {
                    return Err(RouterError::DuplicateContact(request.contact));
                }
                let kind = self.queues[qx].cfg.kind;
                if ChannelKind::of(request.channel) != kind {
                    return Err(RouterError::ChannelMismatch {
                        queue: request.queue.clone(),
                        kind,
                        channel: request.channel,
                    });
                }
                Ok(())
            }
            Input::OfferAccepted { offer } | Input::OfferDeclined { offer } => {
                if self.offers.contains_key(offer) {
                    Ok(())
                } else {
                    Err(RouterError::UnknownOffer(*offer))
                }
            }
            Input::ContactEnded { contact } => {
                let cx = self.contact(contact)?;
                match self.contacts[cx].phase {
                    Phase::WrapUp { .. } => Err(RouterError::WrongContactState {
                        contact: *contact,
                        expected: "waiting, offered or handling",
                        actual: "in wrap-up",
                    }),
                    _ => Ok(()),
                }
            }
            Input::WrapUpDone { contact } => {
                let cx = self.contact(contact)?;
                match self.contacts[cx].phase {
                    Phase::WrapUp { .. } => Ok(()),
                    other => Err(RouterError::WrongContactState {
                        contact: *contact,
                        expected: "in wrap-up",
                        actual: other.name(),
                    }),
                }
            }
            Input::ContactAbandoned { contact } => self.contact(contact).map(|_| ()),
            Input::Tick => Ok(()),
        }
    }

    fn check_queue_empty(&self, queue: &QueueId) -> Result<(), RouterError> {
        let qx = self.queue(queue)?;
        let q = &self.queues[qx];
        let busy = q.waiting_count + q.offered_count;
        if busy > 0 {
            return Err(RouterError::QueueNotEmpty {
                queue: queue.clone(),
                contacts: busy,
            });
        }
        Ok(())
    }

    pub(crate) fn queue(&self, id: &QueueId) -> Result<QueueIx, RouterError> {
        self.queue_ix
            .get(id)
            .copied()
            .ok_or_else(|| RouterError::UnknownQueue(id.clone()))
    }

    pub(crate) fn agent(&self, id: &AgentId) -> Result<AgentIx, RouterError> {
        self.agent_ix
            .get(id)
            .copied()
            .ok_or(RouterError::UnknownAgent(*id))
    }

    pub(crate) fn contact(&self, id: &ConversationId) -> Result<ContactIx, RouterError> {
        self.contact_ix
            .get(id)
            .copied()
            .ok_or(RouterError::UnknownContact(*id))
    }

    fn apply(
        &mut self,
        now: Timestamp,
        input: Input,
        out: &mut Vec<Output>,
    ) -> Result<(), RouterError> {
        match input {
            Input::UpsertQueue(cfg) => self.upsert_queue(now, cfg, out),
            Input::RemoveQueue { queue } => {
                self.check_queue_empty(&queue)?;
                self.remove_queue(now, &queue);
            }
            Input::UpsertAgent(profile) => self.upsert_agent(now, profile, out),
            Input::AgentPerformance {
                agent,
                topic,
                performance,
            } => {
                let ax = self.agent(&agent)?;
                let p = &mut self.agents[ax].profile;
                match topic {
                    Some(t) => {
                        p.performance.insert(t, performance);
                    }
                    None => p.overall = Some(performance),
                }
            }
            Input::RemoveAgent { agent } => {
                let ax = self.agent(&agent)?;
                if !self.agents[ax].contacts.is_empty() {
                    return Err(RouterError::AgentBusy(agent));
                }
                self.set_presence(now, ax, Presence::Offline, out);
                self.clear_memberships(now, ax);
                self.agents.remove(ax);
                self.agent_ix.remove(&agent);
            }
            Input::AgentPresence { agent, presence } => {
                let ax = self.agent(&agent)?;
                self.set_presence(now, ax, presence, out);
            }
            Input::ContactArrived(req) => self.contact_arrived(now, req, out),
            Input::ContactAttached { request, agent } => self.contact_attached(now, request, agent),
            Input::OfferAccepted { offer } => self.offer_accepted(now, offer, out),
            Input::OfferDeclined { offer } => {
                if self.offers.contains_key(&offer) {
                    self.offer_returned(now, offer, RequeueReason::Declined, out);
                }
            }
            Input::ContactEnded { contact } => {
                if let Some(&cx) = self.contact_ix.get(&contact) {
                    self.contact_ended(now, cx, false, out);
                }
            }
            Input::WrapUpDone { contact } => {
                if let Some(&cx) = self.contact_ix.get(&contact)
                    && matches!(self.contacts[cx].phase, Phase::WrapUp { .. })
                {
                    self.finish_wrap_up(now, cx, out);
                }
            }
            Input::ContactAbandoned { contact } => {
                if let Some(&cx) = self.contact_ix.get(&contact) {
                    self.contact_ended(now, cx, true, out);
                }
            }
            Input::Tick => {}
        }
        Ok(())
    }

    /// Fires due timers in deadline order, then — in `Tick` calls only —
    /// due estimate refreshes up to the walk budget. Refreshes change
    /// nothing but announcements, so deferring them never changes a routing
    /// decision, and a decision call never pays for walking a queue.
    fn fire_timers(&mut self, now: Timestamp, tick: bool, out: &mut Vec<Output>) {
        while let Some(&(at, timer)) = self.timers.first() {
            if at > now {
                break;
            }
            self.timers.remove(&(at, timer));
            match timer {
                Timer::Offer(offer) => {
                    self.offer_returned(now, offer, RequeueReason::TimedOut, out);
                }
                Timer::Overflow(cx) => {
                    self.contacts[cx].overflow_at = None;
                    self.settle(now, cx, out);
                }
                Timer::WrapUp(cx) => self.finish_wrap_up(now, cx, out),
            }
        }
        if !tick {
            return;
        }
        let mut walked = 0usize;
        while walked < self.cfg.estimate_budget {
            let Some(&(at, qx)) = self.estimate_timers.first() else {
                break;
            };
            if at > now {
                break;
            }
            self.estimate_timers.remove(&(at, qx));
            walked += self.queues.get(qx).map_or(0, |q| q.waiting_count).max(1);
            self.refresh_estimates(now, qx, out);
        }
    }

    // ----- presence -----

    pub(crate) fn set_presence(
        &mut self,
        now: Timestamp,
        ax: AgentIx,
        presence: Presence,
        out: &mut Vec<Output>,
    ) {
        let a = &mut self.agents[ax];
        if a.presence == presence {
            return;
        }
        let was_routable = a.presence.is_routable();
        a.presence = presence;
        a.presence_since = now;
        if a.presence.is_routable() {
            a.missed = 0;
            if !was_routable && a.contacts.is_empty() {
                a.idle_since = now;
            }
            self.reindex_agent(now, ax);
            self.dispatch_agent(now, ax, out);
        } else {
            if let Some(offer) = self.agents[ax].offer {
                self.offer_returned(now, offer, RequeueReason::AgentUnavailable, out);
            }
            self.reindex_agent(now, ax);
        }
    }

    // ----- timers -----

    pub(crate) fn set_timer(&mut self, at: Timestamp, timer: Timer) {
        self.timers.insert((at, timer));
    }

    pub(crate) fn clear_timer(&mut self, at: Timestamp, timer: Timer) {
        self.timers.remove(&(at, timer));
    }

    pub(crate) fn revoke_reason(reason: RequeueReason) -> Option<RevokeReason> {
        match reason {
            RequeueReason::Declined => None,
            RequeueReason::TimedOut => Some(RevokeReason::TimedOut),
            RequeueReason::AgentUnavailable => Some(RevokeReason::AgentUnavailable),
        }
    }
}
