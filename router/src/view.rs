//! Read-only views for supervisors and for the glue: queues, agents,
//! contacts and estimates. None of them changes the router; times in them
//! ("waited", "longest wait", "free for") are as of the latest time the
//! router has seen ([`Router::now`]), so call `handle(now, Input::Tick)`
//! first for up-to-the-moment figures.

use std::ops::Bound;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use switchboard_bus::{AgentId, ConversationId};

use crate::config::{Capacity, ServiceLevelTarget, StrategyKind};
use crate::erlang;
use crate::error::RouterError;
use crate::router::Router;
use crate::state::{ContactIx, Phase, QueueIx, WaitKey};
use crate::stats::QueueCounters;
use crate::time::Timestamp;
use crate::types::{ChannelKind, OfferId, Presence, Priority, QueueId};

/// A forecast for the next contact from Erlang C, with the current
/// arrival rate, observed handle time and staffing.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Forecast {
    /// Offered load in Erlangs (arrivals per second × AHT in seconds).
    pub load_erlangs: f64,
    /// Whole servers used for the forecast (staffed servers, rounded down).
    pub servers: u32,
    /// Probability of waiting at all.
    pub wait_probability: f64,
    /// Average wait over all contacts; `None` when overloaded.
    pub average_speed_of_answer: Option<Duration>,
    /// Share answered within the SLA threshold.
    pub service_level: f64,
}

/// One queue, as a supervisor sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueueSnapshot {
    /// The queue.
    pub id: QueueId,
    /// Its channel kind.
    pub kind: ChannelKind,
    /// Its strategy.
    pub strategy: StrategyKind,
    /// Open now, by its business hours.
    pub open: bool,
    /// Contacts waiting.
    pub waiting: usize,
    /// Contacts being offered.
    pub offered: usize,
    /// Waiting contacts per priority, highest first.
    pub waiting_by_priority: Vec<(Priority, u32)>,
    /// Wait so far of the longest-waiting contact (from first arrival).
    pub longest_wait: Option<Duration>,
    /// Agents who serve the queue (at any relaxation level).
    pub agents_eligible: usize,
    /// Agents able to take a contact of the queue right now.
    pub agents_available: usize,
    /// Staffed servers used for estimates (shared agents count in part).
    pub staffed_servers: f64,
    /// Counters since the queue was created.
    pub counters: QueueCounters,
    /// Service level so far (see [`QueueCounters::service_level`]).
    pub service_level: Option<f64>,
    /// The target.
    pub sla_target: ServiceLevelTarget,
    /// Observed average handle time (talk plus wrap-up).
    pub average_handle_time: Duration,
    /// Completed contacts behind that average.
    pub handle_time_samples: u64,
    /// Arrivals per hour over the last 15 minutes.
    pub arrivals_per_hour: f64,
    /// Erlang C forecast for the next arrival.
    pub forecast: Forecast,
}

/// What an agent is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activity {
    /// No contact and no offer.
    Idle,
    /// An offer is pending.
    Offered,
    /// At least one contact in conversation.
    Handling,
    /// Only after-contact work left.
    WrapUp,
}

/// One agent, as a supervisor sees them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentSnapshot {
    /// The agent.
    pub id: AgentId,
    /// Presence.
    pub presence: Presence,
    /// Time since the presence last changed.
    pub in_presence_for: Duration,
    /// Activity.
    pub activity: Activity,
    /// Calls held (including an offer and wrap-up).
    pub voice_load: u16,
    /// Chats held (including an offer and wrap-up).
    pub chat_load: u16,
    /// Capacity.
    pub capacity: Capacity,
    /// The pending offer.
    pub offer: Option<OfferId>,
    /// Contacts assigned (in conversation or wrap-up).
    pub contacts: Vec<ConversationId>,
    /// Time since the agent last became free (last contact ended or became available).
    pub free_for: Duration,
    /// Queues served, with the relaxation level needed (0: fully qualified).
    pub queues: Vec<(QueueId, u8)>,
}

/// Where a contact is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ContactState {
    /// In its queue.
    Waiting,
    /// Offered to an agent.
    Offered {
        /// The offer.
        offer: OfferId,
        /// The agent.
        agent: AgentId,
    },
    /// In conversation with an agent.
    Handling {
        /// The agent.
        agent: AgentId,
    },
    /// Ended; the agent is in wrap-up until `until`.
    WrapUp {
        /// The agent.
        agent: AgentId,
        /// End of wrap-up.
        until: Timestamp,
    },
}

/// One contact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContactSnapshot {
    /// The contact.
    pub contact: ConversationId,
    /// Its current queue.
    pub queue: QueueId,
    /// Where it is.
    pub state: ContactState,
    /// Its priority.
    pub priority: Priority,
    /// Time since it arrived.
    pub waited: Duration,
    /// Relaxation level reached in its queue.
    pub relaxation_level: u8,
}

impl Router {
    fn queue_view(&self, qx: QueueIx) -> QueueSnapshot {
        let now = self.now;
        let q = &self.queues[qx];
        let longest_wait = self
            .oldest_waiting(qx)
            .map(|cx| now.since(self.contacts[cx].arrived));
        let aht = q.handle.get();
        let per_sec = q.arrivals.per_second(now);
        let load = per_sec * aht.as_secs_f64();
        let servers = q.servers().floor() as u32;
        QueueSnapshot {
            id: q.cfg.id.clone(),
            kind: q.cfg.kind,
            strategy: q.cfg.strategy.kind(),
            open: q.cfg.business_hours.as_ref().is_none_or(|h| h.is_open(now)),
            waiting: q.waiting_count,
            offered: q.offered_count,
            waiting_by_priority: q
                .prio_counts
                .iter()
                .map(|(p, n)| (Priority(p.0), *n))
                .collect(),
            longest_wait,
            agents_eligible: q.members.len(),
            agents_available: q.avail.iter().map(|s| s.len()).sum(),
            staffed_servers: q.servers(),
            counters: q.counters,
            service_level: q.counters.service_level(),
            sla_target: q.cfg.sla,
            average_handle_time: aht,
            handle_time_samples: q.handle.samples(),
            arrivals_per_hour: per_sec * 3600.0,
            forecast: Forecast {
                load_erlangs: load,
                servers,
                wait_probability: erlang::erlang_c(servers, load),
                average_speed_of_answer: erlang::mean_wait(servers, load, aht),
                service_level: erlang::service_level(servers, load, aht, q.cfg.sla.threshold),
            },
        }
    }

    /// The earliest-arrived waiting contact: the head of each priority
    /// group of each level, not a scan of the queue.
    fn oldest_waiting(&self, qx: QueueIx) -> Option<ContactIx> {
        let q = &self.queues[qx];
        let mut best: Option<WaitKey> = None;
        for set in &q.waiting {
            let mut next = set.first().copied();
            while let Some(head) = next {
                if best.is_none_or(|b| head.seq < b.seq) {
                    best = Some(head);
                }
                let end = WaitKey {
                    prio: head.prio,
                    seq: u64::MAX,
                    contact: u32::MAX,
                };
                next = set
                    .range((Bound::Excluded(end), Bound::Unbounded))
                    .next()
                    .copied();
            }
        }
        best.map(|k| k.contact)
    }

    /// A queue's snapshot.
    pub fn queue_snapshot(&self, queue: &QueueId) -> Result<QueueSnapshot, RouterError> {
        Ok(self.queue_view(self.queue(queue)?))
    }

    /// Every queue's snapshot, by id.
    pub fn queue_snapshots(&self) -> Vec<QueueSnapshot> {
        let mut v: Vec<_> = self
            .queues
            .iter()
            .map(|(qx, _)| self.queue_view(qx))
            .collect();
        v.sort_by(|a, b| a.id.cmp(&b.id));
        v
    }

    /// An agent's snapshot.
    pub fn agent_snapshot(&self, agent: &AgentId) -> Result<AgentSnapshot, RouterError> {
        let a = &self.agents[self.agent(agent)?];
        let handling = a
            .contacts
            .iter()
            .any(|&cx| matches!(self.contacts[cx].phase, Phase::Handling { .. }));
        let activity = if a.offer.is_some() {
            Activity::Offered
        } else if handling {
            Activity::Handling
        } else if !a.contacts.is_empty() {
            Activity::WrapUp
        } else {
            Activity::Idle
        };
        Ok(AgentSnapshot {
            id: a.profile.id,
            presence: a.presence.clone(),
            in_presence_for: self.now.since(a.presence_since),
            activity,
            voice_load: a.voice,
            chat_load: a.chat,
            capacity: a.profile.capacity,
            offer: a.offer,
            contacts: a
                .contacts
                .iter()
                .map(|&cx| self.contacts[cx].req.contact)
                .collect(),
            free_for: self.now.since(a.idle_since),
            queues: a
                .memberships
                .iter()
                .map(|m| (self.queues[m.queue].cfg.id.clone(), m.level))
                .collect(),
        })
    }

    /// Every agent's snapshot, by id.
    pub fn agent_snapshots(&self) -> Vec<AgentSnapshot> {
        let mut ids: Vec<AgentId> = self.agent_ix.keys().copied().collect();
        ids.sort();
        ids.iter()
            .filter_map(|id| self.agent_snapshot(id).ok())
            .collect()
    }

    fn contact_view(&self, cx: ContactIx) -> ContactSnapshot {
        let c = &self.contacts[cx];
        let id = |ax| self.agents[ax].profile.id;
        ContactSnapshot {
            contact: c.req.contact,
            queue: c.queue_id.clone(),
            state: match c.phase {
                Phase::Waiting => ContactState::Waiting,
                Phase::Offered { offer, agent } => ContactState::Offered {
                    offer,
                    agent: id(agent),
                },
                Phase::Handling { agent, .. } => ContactState::Handling { agent: id(agent) },
                Phase::WrapUp { agent, until, .. } => ContactState::WrapUp {
                    agent: id(agent),
                    until,
                },
            },
            priority: c.req.priority,
            waited: self.now.since(c.arrived),
            relaxation_level: c.level,
        }
    }

    /// A contact's snapshot.
    pub fn contact_snapshot(
        &self,
        contact: &ConversationId,
    ) -> Result<ContactSnapshot, RouterError> {
        Ok(self.contact_view(self.contact(contact)?))
    }

    /// The waiting contacts of a queue in the order they will be served.
    /// Costs a walk of the queue.
    pub fn waiting_contacts(&self, queue: &QueueId) -> Result<Vec<ContactSnapshot>, RouterError> {
        let qx = self.queue(queue)?;
        Ok(self
            .waiting_in_order(qx)
            .iter()
            .map(|k| self.contact_view(k.contact))
            .collect())
    }

    /// A waiting contact's current position and estimated wait, computed
    /// now (costs a walk of the queue up to the contact).
    pub fn estimate(
        &self,
        contact: &ConversationId,
    ) -> Result<(u32, Option<Duration>), RouterError> {
        let cx = self.contact(contact)?;
        let c = &self.contacts[cx];
        if c.phase != Phase::Waiting {
            return Err(RouterError::WrongContactState {
                contact: *contact,
                expected: "waiting",
                actual: c.phase.name(),
            });
        }
        let key = c.key(cx);
        let q = &self.queues[c.queue];
        let ahead: usize = q.waiting.iter().map(|s| s.range(..key).count()).sum();
        let position = u32::try_from(ahead + 1).unwrap_or(u32::MAX);
        Ok((position, self.wait_estimate(c.queue, position)))
    }

    /// Contacts in the router (waiting, offered, assigned or in wrap-up).
    pub fn contact_count(&self) -> usize {
        self.contacts.len()
    }
}
