//! Matching contacts and agents, and making offers.
//!
//! Two directions, both driven by the indexes in [`crate::state`]:
//!
//! * **contact → agent** (a contact arrives, is requeued, relaxes or moves):
//!   walk the queue's available-agent sets from level 0 up to the contact's
//!   relaxation level, in strategy order, and take the first agent that also
//!   meets the contact's own language and skills. The predictive strategy
//!   scores the first `max_candidates` such agents instead.
//! * **agent → contact** (an agent becomes available or frees a slot): look
//!   at the head of each priority FIFO the agent may serve (its queues, from
//!   its level up) and take the best — highest priority, then earliest
//!   arrival — that the agent fits.
//!
//! The agent that had a contact's previous offer is passed over while any
//! other agent can take it; if no other can, it gets the offer again.

use switchboard_bus::Skill;

use crate::config::Strategy;
use crate::io::{Explanation, Output, SkillMatch};
use crate::predictive::{self, ScoreBreakdown, ScoreInput};
use crate::router::Router;
use crate::state::{AgentIx, ContactIx, OfferState, Phase, QueueIx, Timer, WaitKey};
use crate::time::Timestamp;
use crate::types::OfferId;

/// The outcome of a search for an agent.
#[derive(Debug)]
pub(crate) struct Choice {
    pub agent: AgentIx,
    pub level: u8,
    pub considered: u32,
    pub skipped_previous: bool,
    pub repeated_alone: bool,
    pub score: Option<ScoreBreakdown>,
    pub runner_up: Option<(AgentIx, f64)>,
}

impl Choice {
    fn plain(agent: AgentIx, level: u8) -> Self {
        Choice {
            agent,
            level,
            considered: 1,
            skipped_previous: false,
            repeated_alone: false,
            score: None,
            runner_up: None,
        }
    }
}

enum Found {
    Contact(ContactIx),
    /// Only contacts whose previous offer went to this agent.
    Previous(ContactIx),
    Nothing,
}

impl Router {
    /// Whether agent `ax` could take waiting contact `cx` right now
    /// (ignoring the previous-offer rule).
    pub(crate) fn could_take(&self, ax: AgentIx, cx: ContactIx) -> Option<u8> {
        let a = self.agents.get(ax)?;
        let c = &self.contacts[cx];
        let m = a.membership(c.queue)?;
        (m.level <= c.level && a.can_take(c.kind) && a.fits(c)).then_some(m.level)
    }

    fn required_skills(&self, cx: ContactIx) -> Vec<&Skill> {
        let c = &self.contacts[cx];
        let q = &self.queues[c.queue];
        q.cfg
            .required_skills
            .iter()
            .map(|r| &r.skill)
            .chain(c.req.required_skills.iter().map(|r| &r.skill))
            .collect()
    }

    fn score_input<'a>(
        &'a self,
        cx: ContactIx,
        required: &'a [&'a Skill],
    ) -> Option<(&'a predictive::PredictiveConfig, ScoreInput<'a>)> {
        let c = &self.contacts[cx];
        let q = &self.queues[c.queue];
        let Strategy::Predictive(p) = &q.cfg.strategy else {
            return None;
        };
        Some((
            p,
            ScoreInput {
                weights: p.weights_for(&c.req.tags),
                topic: c.req.topic.as_ref().or(q.cfg.default_topic.as_ref()),
                required,
                queue_handle_ms: q.handle.ms(),
            },
        ))
    }

    /// Finds the agent for a waiting contact, never `exclude`.
    pub(crate) fn find_agent(&self, cx: ContactIx, exclude: Option<AgentIx>) -> Option<Choice> {
        let c = &self.contacts[cx];
        let q = &self.queues[c.queue];
        let prev = c.last_agent.filter(|&a| Some(a) != exclude);
        let prev_level = prev.and_then(|a| self.could_take(a, cx));
        let max = match &q.cfg.strategy {
            Strategy::Predictive(p) => usize::from(p.max_candidates),
            _ => 1,
        };
        let mut candidates: Vec<(AgentIx, u8)> = Vec::new();
        let mut considered = 0u32;
        'levels: for level in 0..=c.level {
            for key in &q.avail[usize::from(level)] {
                considered += 1;
                let a = key.agent;
                if Some(a) == exclude || Some(a) == prev || !self.agents[a].fits(c) {
                    continue;
                }
                candidates.push((a, level));
                if candidates.len() >= max {
                    break 'levels;
                }
            }
        }
        if candidates.is_empty() {
            let (agent, level) = (prev?, prev_level?);
            let mut choice = Choice::plain(agent, level);
            choice.considered = considered.max(1);
            choice.repeated_alone = true;
            return Some(choice);
        }
        let required = if max > 1 && candidates.len() > 1 {
            self.required_skills(cx)
        } else {
            Vec::new()
        };
        let mut choice = match self.score_input(cx, &required) {
            Some((p, input)) if candidates.len() > 1 => {
                let mut scored: Vec<(usize, f64)> = candidates
                    .iter()
                    .enumerate()
                    .map(|(i, (a, _))| (i, predictive::score(p, &self.agents[*a].profile, &input)))
                    .collect();
                // Highest score first; the sort is stable, so ties keep idle order.
                scored.sort_by(|x, y| y.1.total_cmp(&x.1));
                let (best, _) = scored[0];
                let (agent, level) = candidates[best];
                let mut choice = Choice::plain(agent, level);
                choice.runner_up = scored.get(1).map(|(i, s)| (candidates[*i].0, *s));
                choice
            }
            _ => {
                let (agent, level) = candidates[0];
                Choice::plain(agent, level)
            }
        };
        choice.considered = considered;
        // The previous agent could have taken it (or was excluded by the caller).
        choice.skipped_previous =
            prev_level.is_some() || (c.last_agent.is_some() && c.last_agent == exclude);
        Some(choice)
    }

    /// Finds the next contact for an agent that can take one more.
    fn find_contact(&self, ax: AgentIx) -> Found {
        let a = &self.agents[ax];
        let mut best: Option<WaitKey> = None;
        let mut previous: Option<WaitKey> = None;
        for m in &a.memberships {
            let q = &self.queues[m.queue];
            if !a.can_take(q.cfg.kind) {
                continue;
            }
            for set in &q.waiting[usize::from(m.level)..] {
                for key in set {
                    if best.is_some_and(|b| *key >= b) {
                        break;
                    }
                    let c = &self.contacts[key.contact];
                    if !a.fits(c) {
                        continue;
                    }
                    if c.last_agent == Some(ax) {
                        if previous.is_none_or(|p| *key < p) {
                            previous = Some(*key);
                        }
                        continue;
                    }
                    best = Some(*key);
                    break;
                }
            }
        }
        match (best, previous) {
            (Some(k), _) => Found::Contact(k.contact),
            (None, Some(k)) => Found::Previous(k.contact),
            (None, None) => Found::Nothing,
        }
    }

    /// Gives work to an agent that may have become able to take some.
    pub(crate) fn dispatch_agent(&mut self, now: Timestamp, ax: AgentIx, out: &mut Vec<Output>) {
        loop {
            let Some(a) = self.agents.get(ax) else {
                return;
            };
            if !a.presence.is_routable() || a.offer.is_some() {
                return;
            }
            match self.find_contact(ax) {
                Found::Contact(cx) => {
                    let level = self.could_take(ax, cx).unwrap_or(0);
                    self.make_offer(now, cx, Choice::plain(ax, level), out);
                    return;
                }
                Found::Previous(cx) => {
                    if let Some(choice) = self.find_agent(cx, Some(ax)) {
                        self.make_offer(now, cx, choice, out);
                        continue;
                    }
                    let level = self.could_take(ax, cx).unwrap_or(0);
                    let mut choice = Choice::plain(ax, level);
                    choice.repeated_alone = true;
                    self.make_offer(now, cx, choice, out);
                    return;
                }
                Found::Nothing => return,
            }
        }
    }

    fn add_score(&self, cx: ContactIx, choice: &mut Choice) {
        let required = self.required_skills(cx);
        if let Some((p, input)) = self.score_input(cx, &required) {
            choice.score = Some(predictive::breakdown(
                p,
                &self.agents[choice.agent].profile,
                &input,
            ));
        }
    }

    /// Looks for an agent for one waiting contact.
    pub(crate) fn dispatch_contact(
        &mut self,
        now: Timestamp,
        cx: ContactIx,
        out: &mut Vec<Output>,
    ) {
        if self
            .contacts
            .get(cx)
            .is_none_or(|c| c.phase != Phase::Waiting)
        {
            return;
        }
        if let Some(choice) = self.find_agent(cx, None) {
            self.make_offer(now, cx, choice, out);
        }
    }

    /// Matches a whole queue after a change that may free many agents at
    /// once (configuration), contact by contact in queue order, so each
    /// contact gets the agent its strategy prefers.
    pub(crate) fn dispatch_queue(&mut self, now: Timestamp, qx: QueueIx, out: &mut Vec<Output>) {
        let q = &self.queues[qx];
        let mut keys: Vec<WaitKey> = q.waiting.iter().flat_map(|s| s.iter().copied()).collect();
        keys.sort_unstable();
        let top = u8::try_from(q.levels().saturating_sub(1)).unwrap_or(u8::MAX);
        for key in keys {
            let Some(q) = self.queues.get(qx) else {
                return;
            };
            if !q.has_avail_up_to(top) {
                return;
            }
            if self
                .contacts
                .get(key.contact)
                .is_some_and(|c| c.queue == qx)
            {
                self.dispatch_contact(now, key.contact, out);
            }
        }
    }

    /// Offers a waiting contact to the chosen agent.
    pub(crate) fn make_offer(
        &mut self,
        now: Timestamp,
        cx: ContactIx,
        mut choice: Choice,
        out: &mut Vec<Output>,
    ) {
        if choice.score.is_none() {
            self.add_score(cx, &mut choice);
        }
        let offer = OfferId(self.next_offer);
        self.next_offer += 1;
        let explanation = self.explain(now, cx, &choice);
        let ax = choice.agent;
        let c = &mut self.contacts[cx];
        let (qx, key, level, kind) = (c.queue, c.key(cx), c.level, c.kind);
        c.phase = Phase::Offered { offer, agent: ax };
        let contact = c.req.contact;
        if let Some(at) = c.overflow_at.take() {
            self.clear_timer(at, Timer::Overflow(cx));
        }
        let q = &mut self.queues[qx];
        q.remove_waiting(level, key);
        q.offered_count += 1;
        let expires_at = now + q.cfg.offer_timeout;
        let queue = q.cfg.id.clone();
        self.offers.insert(
            offer,
            OfferState {
                contact: cx,
                agent: ax,
                expires: expires_at,
            },
        );
        self.set_timer(expires_at, Timer::Offer(offer));
        let a = &mut self.agents[ax];
        a.offer = Some(offer);
        *a.load_mut(kind) += 1;
        let agent = a.profile.id;
        self.reindex_agent(now, ax);
        self.mark_estimates(now, qx);
        out.push(Output::Offered {
            offer,
            contact,
            agent,
            queue,
            expires_at,
            explanation: Box::new(explanation),
        });
    }

    fn explain(&self, now: Timestamp, cx: ContactIx, choice: &Choice) -> Explanation {
        let c = &self.contacts[cx];
        let q = &self.queues[c.queue];
        let a = &self.agents[choice.agent];
        let skills = q
            .cfg
            .required_skills
            .iter()
            .map(|r| SkillMatch {
                skill: r.skill.clone(),
                required: q.min_at(r.min_proficiency, choice.level),
                agent: a.proficiency(&r.skill),
            })
            .chain(c.req.required_skills.iter().map(|r| SkillMatch {
                skill: r.skill.clone(),
                required: r.min_proficiency,
                agent: a.proficiency(&r.skill),
            }))
            .collect();
        Explanation {
            strategy: q.cfg.strategy.kind(),
            queue: q.cfg.id.clone(),
            relaxation_level: choice.level,
            skills,
            agent_idle_for: now.since(a.idle_since),
            agent_load: (a.load(c.kind), a.profile.capacity.of(c.kind)),
            candidates_considered: choice.considered,
            previous_agent_skipped: choice.skipped_previous,
            repeated_because_alone: choice.repeated_alone,
            score: choice.score.clone(),
            runner_up: choice
                .runner_up
                .map(|(ax, s)| (self.agents[ax].profile.id, s)),
        }
    }
}
