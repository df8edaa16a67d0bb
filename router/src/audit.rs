//! A full consistency check of the router's records and indexes. It walks
//! everything, so it is for tests and diagnostics, not for every call.

use std::collections::BTreeSet;

use crate::router::Router;
use crate::state::{AgentIx, Phase, Timer};
use crate::types::ChannelKind;

impl Router {
    /// Checks every invariant the router keeps and returns the first broken one:
    ///
    /// * each contact is in exactly one place: one queue's waiting set (at
    ///   its level), one offer, or one agent's list (conversation or wrap-up);
    /// * agents' loads equal their offers plus contacts, per kind; voice and
    ///   chat never mix; no offer beyond capacity;
    /// * only `Available` agents with a free slot and no pending offer are in
    ///   available sets, each under the key the strategy gives;
    /// * every timer belongs to a live offer, contact or queue, and every
    ///   deadline the records mention has its timer;
    /// * the router is work-conserving: no waiting contact has an agent who
    ///   could take it now.
    pub fn check_invariants(&self) -> Result<(), String> {
        self.check_contacts()?;
        self.check_agents()?;
        self.check_timers()?;
        self.check_work_conserving()
    }

    fn check_contacts(&self) -> Result<(), String> {
        if self.contacts.len() != self.contact_ix.len() {
            return Err("contact map and slab differ in size".into());
        }
        let mut in_sets = 0usize;
        for (qx, q) in self.queues.iter() {
            let mut count = 0;
            for (level, set) in q.waiting.iter().enumerate() {
                for key in set {
                    count += 1;
                    let c = self
                        .contacts
                        .get(key.contact)
                        .ok_or_else(|| format!("queue {} holds a dead contact", q.cfg.id))?;
                    if c.phase != Phase::Waiting
                        || c.queue != qx
                        || usize::from(c.level) != level
                        || c.key(key.contact) != *key
                    {
                        return Err(format!(
                            "contact {} misplaced in {}",
                            c.req.contact, q.cfg.id
                        ));
                    }
                }
            }
            if count != q.waiting_count {
                return Err(format!("queue {} waiting count is off", q.cfg.id));
            }
            let by_prio: u32 = q.prio_counts.values().sum();
            if by_prio as usize != count {
                return Err(format!("queue {} priority counts are off", q.cfg.id));
            }
            in_sets += count;
        }
        let mut waiting = 0usize;
        let mut offered = 0usize;
        for (cx, c) in self.contacts.iter() {
            if self.contact_ix.get(&c.req.contact) != Some(&cx) {
                return Err(format!("contact {} not in the id map", c.req.contact));
            }
            if self
                .queues
                .get(c.queue)
                .is_some_and(|q| q.cfg.id != c.queue_id)
            {
                return Err(format!("contact {} has a stale queue id", c.req.contact));
            }
            if self.queues.get(c.queue).is_none()
                && matches!(c.phase, Phase::Waiting | Phase::Offered { .. })
            {
                return Err(format!(
                    "contact {} queued in a removed queue",
                    c.req.contact
                ));
            }
            match c.phase {
                Phase::Waiting => waiting += 1,
                Phase::Offered { offer, agent } => {
                    offered += 1;
                    let o = self
                        .offers
                        .get(&offer)
                        .ok_or("offered contact without offer")?;
                    if o.contact != cx
                        || o.agent != agent
                        || self.agents[agent].offer != Some(offer)
                    {
                        return Err(format!("offer {offer} records disagree"));
                    }
                }
                Phase::Handling { agent, .. } | Phase::WrapUp { agent, .. } => {
                    if !self.agents[agent].contacts.contains(&cx) {
                        return Err(format!("contact {} missing from its agent", c.req.contact));
                    }
                }
            }
        }
        if waiting != in_sets {
            return Err(format!(
                "{waiting} contacts waiting but {in_sets} in queue sets"
            ));
        }
        if offered != self.offers.len() {
            return Err("offers and offered contacts differ".into());
        }
        let offered_by_queue: usize = self.queues.iter().map(|(_, q)| q.offered_count).sum();
        if offered_by_queue != offered {
            return Err("queue offered counts are off".into());
        }
        Ok(())
    }

    fn check_agents(&self) -> Result<(), String> {
        for (ax, a) in self.agents.iter() {
            let id = a.profile.id;
            let mut load = [0u16; 2];
            let slot = |k: ChannelKind| usize::from(k == ChannelKind::Chat);
            for &cx in &a.contacts {
                let c = self.contacts.get(cx).ok_or("agent holds a dead contact")?;
                match c.phase {
                    Phase::Handling { agent, .. } | Phase::WrapUp { agent, .. } if agent == ax => {}
                    _ => return Err(format!("agent {id} holds a contact not theirs")),
                }
                load[slot(c.kind)] += 1;
            }
            if let Some(offer) = a.offer {
                let o = self.offers.get(&offer).ok_or("agent offer missing")?;
                load[slot(self.contacts[o.contact].kind)] += 1;
            }
            if load != [a.voice, a.chat] {
                return Err(format!(
                    "agent {id} load {load:?} vs {:?}",
                    [a.voice, a.chat]
                ));
            }
            if a.voice > 0 && a.chat > 0 {
                return Err(format!("agent {id} mixes voice and chat"));
            }
            for m in &a.memberships {
                let q = self
                    .queues
                    .get(m.queue)
                    .ok_or("membership of a removed queue")?;
                if !q.members.contains(&ax) {
                    return Err(format!("agent {id} missing from members of {}", q.cfg.id));
                }
                let want = a
                    .can_take(q.cfg.kind)
                    .then(|| a.key(&q.cfg.strategy, q.cfg.kind, m, ax));
                if m.key != want {
                    return Err(format!("agent {id} stale key in {}", q.cfg.id));
                }
                let level = usize::from(m.level);
                for (l, set) in q.avail.iter().enumerate() {
                    let present = set.iter().any(|k| k.agent == ax);
                    let expected = l == level && m.key.is_some();
                    if present != expected {
                        return Err(format!(
                            "agent {id} wrongly indexed in {} level {l}",
                            q.cfg.id
                        ));
                    }
                }
            }
        }
        for (_, q) in self.queues.iter() {
            let members: BTreeSet<AgentIx> = q.members.iter().copied().collect();
            if members.len() != q.members.len() {
                return Err(format!("queue {} lists a member twice", q.cfg.id));
            }
            let staffed: u64 = members
                .iter()
                .filter_map(|&ax| self.agents.get(ax)?.membership(self.queue_ix[&q.cfg.id]))
                .map(|m| m.staffed)
                .sum();
            if staffed != q.staffed_micro {
                return Err(format!("queue {} staffing is off", q.cfg.id));
            }
        }
        Ok(())
    }

    fn check_timers(&self) -> Result<(), String> {
        for &(at, timer) in &self.timers {
            let ok = match timer {
                Timer::Offer(offer) => self.offers.get(&offer).is_some_and(|o| o.expires == at),
                Timer::Overflow(cx) => self
                    .contacts
                    .get(cx)
                    .is_some_and(|c| c.overflow_at == Some(at) && c.phase == Phase::Waiting),
                Timer::WrapUp(cx) => self
                    .contacts
                    .get(cx)
                    .is_some_and(|c| matches!(c.phase, Phase::WrapUp { until, .. } if until == at)),
            };
            if !ok {
                return Err(format!("stale timer {timer:?} at {at}"));
            }
        }
        for &(at, qx) in &self.estimate_timers {
            if self
                .queues
                .get(qx)
                .is_none_or(|q| q.estimate_due != Some(at))
            {
                return Err(format!("stale estimate timer for queue {qx} at {at}"));
            }
        }
        for (qx, q) in self.queues.iter() {
            if let Some(at) = q.estimate_due
                && !self.estimate_timers.contains(&(at, qx))
            {
                return Err(format!("queue {} lost its estimate timer", q.cfg.id));
            }
        }
        for (cx, c) in self.contacts.iter() {
            if let Some(at) = c.overflow_at
                && !self.timers.contains(&(at, Timer::Overflow(cx)))
            {
                return Err(format!("contact {} lost its overflow timer", c.req.contact));
            }
            if let Phase::WrapUp { until, .. } = c.phase
                && !self.timers.contains(&(until, Timer::WrapUp(cx)))
            {
                return Err(format!("contact {} lost its wrap-up timer", c.req.contact));
            }
            if c.phase == Phase::Waiting
                && c.overflow_at.is_none()
                && self
                    .queues
                    .get(c.queue)
                    .is_some_and(|q| c.next_rule < q.cfg.overflow.len())
            {
                return Err(format!(
                    "contact {} has a rule pending but no timer",
                    c.req.contact
                ));
            }
        }
        for (offer, o) in &self.offers {
            if !self.timers.contains(&(o.expires, Timer::Offer(*offer))) {
                return Err(format!("offer {offer} lost its timer"));
            }
        }
        Ok(())
    }

    fn check_work_conserving(&self) -> Result<(), String> {
        for (cx, c) in self.contacts.iter() {
            if c.phase == Phase::Waiting && self.find_agent(cx, None).is_some() {
                return Err(format!(
                    "contact {} waits although an agent could take it",
                    c.req.contact
                ));
            }
        }
        Ok(())
    }
}
