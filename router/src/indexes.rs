//! Configuration changes and the per-queue agent indexes: which agents
//! serve which queue at which relaxation level, and keeping each agent's
//! entry in its queues' available sets (and staffing shares) in step with
//! its state.

use crate::config::{AgentProfile, QueueConfig};
use crate::io::Output;
use crate::router::Router;
use crate::state::{
    AgentIx, AgentState, ContactIx, MICRO, Membership, QueueIx, QueueState, Timer, eligibility,
};
use crate::time::Timestamp;
use crate::types::{ChannelKind, QueueId};

impl Router {
    pub(crate) fn upsert_queue(&mut self, now: Timestamp, cfg: QueueConfig, out: &mut Vec<Output>) {
        let qx = match self.queue_ix.get(&cfg.id) {
            Some(&qx) => {
                self.detach_queue_members(qx);
                let old = std::mem::replace(&mut self.queues[qx], QueueState::new(cfg, now));
                let q = &mut self.queues[qx];
                q.counters = old.counters;
                q.arrivals = old.arrivals;
                q.offered_count = old.offered_count;
                q.estimate_due = old.estimate_due;
                q.last_estimate = old.last_estimate;
                if q.cfg.expected_handle_time == old.cfg.expected_handle_time {
                    q.handle = old.handle;
                }
                // Waiting contacts: back to level 0 and the first rule.
                let waiting: Vec<_> = old.waiting.iter().flat_map(|s| s.iter().copied()).collect();
                for key in &waiting {
                    let c = &mut self.contacts[key.contact];
                    c.level = 0;
                    c.next_rule = 0;
                    if let Some(at) = c.overflow_at.take() {
                        self.timers.remove(&(at, Timer::Overflow(key.contact)));
                    }
                    self.queues[qx].insert_waiting(0, *key);
                }
                // Offered contacts: same, once they come back.
                let offered: Vec<ContactIx> = self.offers.values().map(|o| o.contact).collect();
                for cx in offered {
                    let c = &mut self.contacts[cx];
                    if c.queue == qx {
                        c.level = 0;
                        c.next_rule = 0;
                    }
                }
                self.attach_queue_members(now, qx);
                for key in waiting {
                    self.run_overflow(now, key.contact, out);
                }
                qx
            }
            None => {
                let id = cfg.id.clone();
                let qx = self.queues.insert(QueueState::new(cfg, now));
                self.queue_ix.insert(id, qx);
                self.attach_queue_members(now, qx);
                qx
            }
        };
        self.mark_estimates(now, qx);
        self.dispatch_queue(now, qx, out);
    }

    pub(crate) fn remove_queue(&mut self, now: Timestamp, id: &QueueId) {
        let Some(qx) = self.queue_ix.remove(id) else {
            return;
        };
        self.detach_queue_members(qx);
        if let Some(q) = self.queues.remove(qx)
            && let Some(at) = q.estimate_due
        {
            self.estimate_timers.remove(&(at, qx));
        }
        // Agents' staffing shares change with their number of queues.
        let agents: Vec<AgentIx> = self.agents.iter().map(|(ax, _)| ax).collect();
        for ax in agents {
            self.reindex_agent(now, ax);
        }
    }

    pub(crate) fn upsert_agent(
        &mut self,
        now: Timestamp,
        profile: AgentProfile,
        out: &mut Vec<Output>,
    ) {
        let ax = match self.agent_ix.get(&profile.id) {
            Some(&ax) => {
                self.agents[ax].profile = profile;
                ax
            }
            None => {
                let id = profile.id;
                let ax = self.agents.insert(AgentState::new(profile, now));
                self.agent_ix.insert(id, ax);
                ax
            }
        };
        self.clear_memberships(now, ax);
        let queues: Vec<QueueIx> = self.queues.iter().map(|(qx, _)| qx).collect();
        for qx in queues {
            self.add_membership(ax, qx);
        }
        self.reindex_agent(now, ax);
        self.dispatch_agent(now, ax, out);
    }

    fn add_membership(&mut self, ax: AgentIx, qx: QueueIx) {
        if let Some((level, prof_sum)) = eligibility(&self.agents[ax].profile, &self.queues[qx]) {
            self.agents[ax].memberships.push(Membership {
                queue: qx,
                level,
                prof_sum,
                key: None,
                staffed: 0,
            });
            self.queues[qx].members.push(ax);
        }
    }

    /// Removes every membership of an agent from the queues' indexes.
    pub(crate) fn clear_memberships(&mut self, now: Timestamp, ax: AgentIx) {
        let memberships = std::mem::take(&mut self.agents[ax].memberships);
        for m in memberships {
            let q = &mut self.queues[m.queue];
            if let Some(k) = m.key {
                q.avail[usize::from(m.level)].remove(&k);
            }
            q.staffed_micro -= m.staffed;
            q.members.retain(|&a| a != ax);
            if m.staffed > 0 {
                self.mark_estimates(now, m.queue);
            }
        }
    }

    /// Takes a queue out of all its members' memberships.
    fn detach_queue_members(&mut self, qx: QueueIx) {
        let members = std::mem::take(&mut self.queues[qx].members);
        for ax in members {
            let a = &mut self.agents[ax];
            if let Some(i) = a.memberships.iter().position(|m| m.queue == qx) {
                let m = a.memberships.swap_remove(i);
                let q = &mut self.queues[qx];
                if let Some(k) = m.key {
                    q.avail[usize::from(m.level)].remove(&k);
                }
                q.staffed_micro -= m.staffed;
            }
        }
    }

    /// Computes which agents serve a (new or changed) queue and indexes them.
    fn attach_queue_members(&mut self, now: Timestamp, qx: QueueIx) {
        let agents: Vec<AgentIx> = self.agents.iter().map(|(ax, _)| ax).collect();
        for ax in agents {
            self.add_membership(ax, qx);
            self.reindex_agent(now, ax);
        }
    }

    /// Brings an agent's entries in its queues' available sets and staffing
    /// shares up to date with its state. Cost: a few set operations per
    /// queue the agent serves.
    pub(crate) fn reindex_agent(&mut self, now: Timestamp, ax: AgentIx) {
        let a = &self.agents[ax];
        let routable = a.presence.is_routable();
        let level0 = |kind: ChannelKind| {
            a.memberships
                .iter()
                .filter(|m| m.level == 0 && self.queues[m.queue].cfg.kind == kind)
                .count() as u64
        };
        let shares = [
            (ChannelKind::Voice, level0(ChannelKind::Voice)),
            (ChannelKind::Chat, level0(ChannelKind::Chat)),
        ];
        for i in 0..self.agents[ax].memberships.len() {
            let a = &self.agents[ax];
            let m = &a.memberships[i];
            let q = &self.queues[m.queue];
            let kind = q.cfg.kind;
            let key = a
                .can_take(kind)
                .then(|| a.key(&q.cfg.strategy, kind, m, ax));
            let n = shares
                .iter()
                .find(|(k, _)| *k == kind)
                .map_or(1, |(_, n)| *n);
            let staffed = if routable && m.level == 0 && n > 0 {
                u64::from(a.profile.capacity.of(kind)) * MICRO / n
            } else {
                0
            };
            let (old_key, old_staffed, level, qx) = (m.key, m.staffed, m.level, m.queue);
            if old_key != key {
                let q = &mut self.queues[qx];
                if let Some(k) = old_key {
                    q.avail[usize::from(level)].remove(&k);
                }
                if let Some(k) = key {
                    q.avail[usize::from(level)].insert(k);
                }
            }
            if old_staffed != staffed {
                let q = &mut self.queues[qx];
                q.staffed_micro = q.staffed_micro - old_staffed + staffed;
                self.mark_estimates(now, qx);
            }
            let m = &mut self.agents[ax].memberships[i];
            m.key = key;
            m.staffed = staffed;
        }
    }
}
