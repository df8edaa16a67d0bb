//! A contact's way through the router: arrival, business hours, overflow
//! steps, offers answered or lost, the end of the conversation and wrap-up.

use switchboard_bus::AgentId;

use crate::config::{ClosedAction, OverflowAction};
use crate::io::{ContactRequest, Output, RejectReason, RequeueReason, RevokeReason};
use crate::router::Router;
use crate::state::{ContactIx, ContactState, Phase, QueueIx, Timer};
use crate::time::Timestamp;
use crate::types::{ChannelKind, OfferId, Presence};

/// Most queues a closed queue's `MoveToQueue` chain is followed through.
const MAX_CLOSED_MOVES: usize = 8;

enum Exit {
    Voicemail,
    Callback,
}

impl Router {
    pub(crate) fn contact_arrived(
        &mut self,
        now: Timestamp,
        req: ContactRequest,
        out: &mut Vec<Output>,
    ) {
        let Ok(mut qx) = self.queue(&req.queue) else {
            return;
        };
        let kind = ChannelKind::of(req.channel);
        let mut moves = 0;
        loop {
            let q = &mut self.queues[qx];
            if q.cfg.business_hours.as_ref().is_none_or(|h| h.is_open(now)) {
                break;
            }
            let queue = q.cfg.id.clone();
            let contact = req.contact;
            match q.cfg.closed_action.clone() {
                ClosedAction::Reject => {
                    q.counters.rejected += 1;
                    out.push(Output::Rejected {
                        contact,
                        queue,
                        reason: RejectReason::Closed,
                    });
                    return;
                }
                ClosedAction::Voicemail => {
                    q.counters.voicemail += 1;
                    out.push(Output::OfferVoicemail { contact, queue });
                    return;
                }
                ClosedAction::Callback => {
                    q.counters.callback += 1;
                    out.push(Output::OfferCallback { contact, queue });
                    return;
                }
                ClosedAction::MoveToQueue { queue: target } => {
                    let next = self
                        .queue(&target)
                        .ok()
                        .filter(|&t| self.queues[t].cfg.kind == kind);
                    match next {
                        Some(t) if moves < MAX_CLOSED_MOVES => {
                            moves += 1;
                            qx = t;
                        }
                        other => {
                            let q = &mut self.queues[qx];
                            q.counters.rejected += 1;
                            let reason = if other.is_some() {
                                RejectReason::TooManyMoves
                            } else {
                                RejectReason::Closed
                            };
                            out.push(Output::Rejected {
                                contact,
                                queue,
                                reason,
                            });
                            return;
                        }
                    }
                }
            }
        }

        let seq = self.next_seq;
        self.next_seq += 1;
        let id = req.contact;
        let prio = req.priority.0;
        let queue_id = self.queues[qx].cfg.id.clone();
        let cx = self.contacts.insert(ContactState {
            req,
            kind,
            queue: qx,
            queue_id,
            seq,
            arrived: now,
            entered: now,
            level: 0,
            next_rule: 0,
            overflow_at: None,
            phase: Phase::Waiting,
            last_agent: None,
            announced: None,
            wrap_up: std::time::Duration::ZERO,
        });
        self.contact_ix.insert(id, cx);
        let key = self.contacts[cx].key(cx);
        let q = &mut self.queues[qx];
        q.counters.entered += 1;
        q.arrivals.record(now);
        q.insert_waiting(0, key);
        self.mark_estimates(now, qx);
        self.settle(now, cx, out);
        // Still waiting: tell the customer where they stand right away. The
        // newest arrival is behind every waiting contact of its priority or
        // higher, so its position is a count, not a walk.
        if let Some(c) = self.contacts.get(cx)
            && c.phase == Phase::Waiting
        {
            let position = self.queues[c.queue].count_at_or_above(prio);
            self.announce(cx, position, out);
        }
    }

    /// Records a contact that is already with an agent (see
    /// [`Input::ContactAttached`](crate::Input::ContactAttached)).
    pub(crate) fn contact_attached(&mut self, now: Timestamp, req: ContactRequest, agent: AgentId) {
        let (Ok(qx), Ok(ax)) = (self.queue(&req.queue), self.agent(&agent)) else {
            return;
        };
        let kind = ChannelKind::of(req.channel);
        let seq = self.next_seq;
        self.next_seq += 1;
        let id = req.contact;
        let queue_id = self.queues[qx].cfg.id.clone();
        let wrap_up = self.queues[qx].cfg.wrap_up;
        let cx = self.contacts.insert(ContactState {
            req,
            kind,
            queue: qx,
            queue_id,
            seq,
            arrived: now,
            entered: now,
            level: 0,
            next_rule: 0,
            overflow_at: None,
            phase: Phase::Handling {
                agent: ax,
                since: now,
            },
            last_agent: Some(ax),
            announced: None,
            wrap_up,
        });
        self.contact_ix.insert(id, cx);
        let a = &mut self.agents[ax];
        a.contacts.push(cx);
        *a.load_mut(kind) += 1;
        self.reindex_agent(now, ax);
    }

    /// Applies due overflow steps, then looks for an agent.
    pub(crate) fn settle(&mut self, now: Timestamp, cx: ContactIx, out: &mut Vec<Output>) {
        self.run_overflow(now, cx, out);
        if self
            .contacts
            .get(cx)
            .is_some_and(|c| c.phase == Phase::Waiting)
        {
            self.dispatch_contact(now, cx, out);
        }
    }

    /// Applies every overflow step that is due for a waiting contact and
    /// sets the timer for the next one.
    pub(crate) fn run_overflow(&mut self, now: Timestamp, cx: ContactIx, out: &mut Vec<Output>) {
        loop {
            let Some(c) = self.contacts.get(cx) else {
                return;
            };
            if c.phase != Phase::Waiting {
                return;
            }
            let qx = c.queue;
            let q = &self.queues[qx];
            let Some(rule) = q.cfg.overflow.get(c.next_rule) else {
                return;
            };
            let at = c.entered + rule.after;
            if at > now {
                if let Some(old) = c.overflow_at {
                    self.clear_timer(old, Timer::Overflow(cx));
                }
                self.contacts[cx].overflow_at = Some(at);
                self.set_timer(at, Timer::Overflow(cx));
                return;
            }
            let action = rule.action.clone();
            let c = &mut self.contacts[cx];
            c.next_rule += 1;
            if let Some(old) = c.overflow_at.take() {
                self.clear_timer(old, Timer::Overflow(cx));
            }
            match action {
                OverflowAction::RelaxProficiency { min_proficiency } => {
                    let c = &mut self.contacts[cx];
                    let key = c.key(cx);
                    let old = c.level;
                    c.level += 1;
                    let level = c.level;
                    let contact = c.req.contact;
                    let q = &mut self.queues[qx];
                    q.remove_waiting(old, key);
                    q.insert_waiting(level, key);
                    out.push(Output::Relaxed {
                        contact,
                        queue: q.cfg.id.clone(),
                        level,
                        min_proficiency,
                    });
                }
                OverflowAction::MoveToQueue { queue } => {
                    let kind = self.contacts[cx].kind;
                    if let Ok(tx) = self.queue(&queue)
                        && self.queues[tx].cfg.kind == kind
                    {
                        self.move_contact(now, cx, tx, out);
                    }
                }
                OverflowAction::Voicemail => {
                    self.exit(now, cx, Exit::Voicemail, out);
                    return;
                }
                OverflowAction::Callback => {
                    self.exit(now, cx, Exit::Callback, out);
                    return;
                }
            }
        }
    }

    fn move_contact(&mut self, now: Timestamp, cx: ContactIx, tx: QueueIx, out: &mut Vec<Output>) {
        let c = &mut self.contacts[cx];
        let key = c.key(cx);
        let (from, level) = (c.queue, c.level);
        c.queue = tx;
        c.level = 0;
        c.next_rule = 0;
        c.entered = now;
        let contact = c.req.contact;
        let fq = &mut self.queues[from];
        fq.remove_waiting(level, key);
        fq.counters.overflowed_out += 1;
        let from_id = fq.cfg.id.clone();
        let tq = &mut self.queues[tx];
        self.contacts[cx].queue_id = tq.cfg.id.clone();
        tq.insert_waiting(0, key);
        tq.counters.entered += 1;
        tq.arrivals.record(now);
        out.push(Output::Overflowed {
            contact,
            from: from_id,
            to: tq.cfg.id.clone(),
        });
        self.mark_estimates(now, from);
        self.mark_estimates(now, tx);
    }

    fn exit(&mut self, now: Timestamp, cx: ContactIx, exit: Exit, out: &mut Vec<Output>) {
        let c = &self.contacts[cx];
        let (qx, key, level, contact) = (c.queue, c.key(cx), c.level, c.req.contact);
        let q = &mut self.queues[qx];
        q.remove_waiting(level, key);
        let queue = q.cfg.id.clone();
        match exit {
            Exit::Voicemail => {
                q.counters.voicemail += 1;
                out.push(Output::OfferVoicemail { contact, queue });
            }
            Exit::Callback => {
                q.counters.callback += 1;
                out.push(Output::OfferCallback { contact, queue });
            }
        }
        self.mark_estimates(now, qx);
        self.forget_contact(cx);
    }

    /// Drops a contact that is in no queue set, offer or agent list any more.
    fn forget_contact(&mut self, cx: ContactIx) {
        if let Some(c) = self.contacts.remove(cx) {
            if let Some(at) = c.overflow_at {
                self.clear_timer(at, Timer::Overflow(cx));
            }
            self.contact_ix.remove(&c.req.contact);
        }
    }

    pub(crate) fn offer_accepted(&mut self, now: Timestamp, offer: OfferId, out: &mut Vec<Output>) {
        let Some(o) = self.offers.remove(&offer) else {
            return;
        };
        self.clear_timer(o.expires, Timer::Offer(offer));
        let a = &mut self.agents[o.agent];
        a.offer = None;
        a.missed = 0;
        a.contacts.push(o.contact);
        let agent = a.profile.id;
        let c = &mut self.contacts[o.contact];
        c.phase = Phase::Handling {
            agent: o.agent,
            since: now,
        };
        let waited = now.since(c.arrived);
        let contact = c.req.contact;
        let q = &mut self.queues[c.queue];
        c.wrap_up = q.cfg.wrap_up;
        q.offered_count -= 1;
        q.counters.answered += 1;
        q.counters.total_wait_ms += crate::time::millis(waited);
        if waited <= q.cfg.sla.threshold {
            q.counters.answered_in_threshold += 1;
        }
        out.push(Output::Assigned {
            contact,
            agent,
            queue: q.cfg.id.clone(),
            waited,
        });
        self.reindex_agent(now, o.agent);
        self.dispatch_agent(now, o.agent, out);
    }

    /// An offer ended without an answer: declined, expired or the agent left.
    pub(crate) fn offer_returned(
        &mut self,
        now: Timestamp,
        offer: OfferId,
        reason: RequeueReason,
        out: &mut Vec<Output>,
    ) {
        let Some(o) = self.offers.remove(&offer) else {
            return;
        };
        self.clear_timer(o.expires, Timer::Offer(offer));
        let (ax, cx) = (o.agent, o.contact);
        let kind = self.contacts[cx].kind;
        let a = &mut self.agents[ax];
        a.offer = None;
        *a.load_mut(kind) -= 1;
        if reason == RequeueReason::TimedOut {
            a.missed += 1;
        }
        let (agent, missed) = (a.profile.id, a.missed);
        let c = &mut self.contacts[cx];
        let contact = c.req.contact;
        if let Some(reason) = Self::revoke_reason(reason) {
            out.push(Output::OfferRevoked {
                offer,
                contact,
                agent,
                reason,
            });
        }
        c.phase = Phase::Waiting;
        c.last_agent = Some(ax);
        let (key, level, qx) = (c.key(cx), c.level, c.queue);
        let q = &mut self.queues[qx];
        q.offered_count -= 1;
        q.insert_waiting(level, key);
        out.push(Output::Requeued {
            contact,
            queue: q.cfg.id.clone(),
            reason,
        });
        self.mark_estimates(now, qx);
        let limit = self.cfg.away_after_missed_offers;
        if reason == RequeueReason::TimedOut && limit.is_some_and(|n| missed >= n) {
            let presence = Presence::Away {
                reason: "missed offers".into(),
            };
            self.set_presence(now, ax, presence.clone(), out);
            out.push(Output::PresenceChanged { agent, presence });
        } else {
            self.reindex_agent(now, ax);
        }
        self.run_overflow(now, cx, out);
        // The agent first (they may take other work, never this contact
        // again unless nobody else can), then the contact.
        self.dispatch_agent(now, ax, out);
        if self
            .contacts
            .get(cx)
            .is_some_and(|c| c.phase == Phase::Waiting)
        {
            self.dispatch_contact(now, cx, out);
        }
    }

    /// The conversation ended (`abandoned`: the customer left). Waiting or
    /// offered contacts leave the router; handled ones go to wrap-up.
    pub(crate) fn contact_ended(
        &mut self,
        now: Timestamp,
        cx: ContactIx,
        abandoned: bool,
        out: &mut Vec<Output>,
    ) {
        let c = &self.contacts[cx];
        let (qx, key, level, contact, waited) = (
            c.queue,
            c.key(cx),
            c.level,
            c.req.contact,
            now.since(c.arrived),
        );
        match c.phase {
            Phase::Waiting | Phase::Offered { .. } => {
                if let Phase::Offered { offer, agent: ax } = c.phase {
                    let kind = c.kind;
                    if let Some(o) = self.offers.remove(&offer) {
                        self.clear_timer(o.expires, Timer::Offer(offer));
                    }
                    let a = &mut self.agents[ax];
                    a.offer = None;
                    *a.load_mut(kind) -= 1;
                    out.push(Output::OfferRevoked {
                        offer,
                        contact,
                        agent: a.profile.id,
                        reason: if abandoned {
                            RevokeReason::ContactAbandoned
                        } else {
                            RevokeReason::ContactWithdrawn
                        },
                    });
                    self.queues[qx].offered_count -= 1;
                    self.forget_contact(cx);
                    self.count_exit(qx, abandoned, waited);
                    self.reindex_agent(now, ax);
                    self.dispatch_agent(now, ax, out);
                } else {
                    self.queues[qx].remove_waiting(level, key);
                    self.forget_contact(cx);
                    self.count_exit(qx, abandoned, waited);
                }
                self.mark_estimates(now, qx);
            }
            Phase::Handling { agent: ax, since } => {
                let until = now + c.wrap_up;
                let agent = self.agents[ax].profile.id;
                self.contacts[cx].phase = Phase::WrapUp {
                    agent: ax,
                    since,
                    until,
                };
                out.push(Output::WrapUpStarted {
                    agent,
                    contact,
                    until,
                });
                if until <= now {
                    self.finish_wrap_up(now, cx, out);
                } else {
                    self.set_timer(until, Timer::WrapUp(cx));
                }
            }
            Phase::WrapUp { .. } => {}
        }
    }

    fn count_exit(&mut self, qx: QueueIx, abandoned: bool, waited: std::time::Duration) {
        let q = &mut self.queues[qx];
        if abandoned {
            q.counters.abandoned += 1;
            if waited < q.cfg.sla.threshold {
                q.counters.abandoned_in_threshold += 1;
            }
        } else {
            q.counters.withdrawn += 1;
        }
    }

    pub(crate) fn finish_wrap_up(&mut self, now: Timestamp, cx: ContactIx, out: &mut Vec<Output>) {
        let Some(c) = self.contacts.get(cx) else {
            return;
        };
        let Phase::WrapUp {
            agent: ax,
            since,
            until,
        } = c.phase
        else {
            return;
        };
        let (qx, kind, contact) = (c.queue, c.kind, c.req.contact);
        self.clear_timer(until, Timer::WrapUp(cx));
        let a = &mut self.agents[ax];
        a.contacts.retain(|&x| x != cx);
        *a.load_mut(kind) -= 1;
        a.idle_since = now;
        let agent = a.profile.id;
        let alpha = self.cfg.handle_time_smoothing;
        if let Some(q) = self.queues.get_mut(qx) {
            q.handle.record(now.since(since), alpha);
            self.mark_estimates(now, qx);
        }
        out.push(Output::WrapUpEnded { agent, contact });
        self.forget_contact(cx);
        self.reindex_agent(now, ax);
        self.dispatch_agent(now, ax, out);
    }
}
