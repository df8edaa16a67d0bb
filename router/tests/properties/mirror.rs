//! The mirror: an independent model of every contact's state, built only
//! from the router's outputs, that checks each output against the rules.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use switchboard_bus::{AgentId, ConversationId};
use switchboard_router::{
    AgentProfile, ChannelKind, ContactState, Language, OfferId, Output, OverflowAction, Presence,
    QueueConfig, QueueId, RevokeReason, Router, Timestamp,
};

use super::QUEUES;
use crate::common::skill;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MPhase {
    Waiting,
    Offered(OfferId, AgentId),
    Handling(AgentId),
    WrapUp(AgentId),
}

#[derive(Debug, Clone)]
pub struct MContact {
    pub queue: usize,
    pub prio: u8,
    pub order: u64,
    pub arrived: Timestamp,
    pub entered: Timestamp,
    pub level: u8,
    pub last: Option<AgentId>,
    pub phase: MPhase,
    pub lang: Option<Language>,
    pub extra_b: u8,
    pub kind: ChannelKind,
}

pub struct Mirror {
    pub queue_cfg: Vec<QueueConfig>,
    pub agents: BTreeMap<AgentId, (AgentProfile, Presence)>,
    /// Agents removed from the router (kept here to be added back).
    pub removed: BTreeSet<AgentId>,
    pub contacts: BTreeMap<ConversationId, MContact>,
    pub next_order: u64,
}

impl Mirror {
    fn queue_index(id: &QueueId) -> usize {
        QUEUES.iter().position(|q| *q == id.as_str()).unwrap()
    }

    /// Whether `agent` may serve contact `c` (relaxation as announced).
    pub fn eligible(&self, agent: &AgentId, c: &MContact) -> bool {
        let (p, _) = &self.agents[agent];
        let q = &self.queue_cfg[c.queue];
        if p.capacity.of(q.kind) == 0 {
            return false;
        }
        if let Some(l) = &q.language
            && !p.languages.contains(l)
        {
            return false;
        }
        if let Some(l) = &c.lang
            && !p.languages.contains(l)
        {
            return false;
        }
        if c.extra_b > 0 && p.skills.get(&skill("b")).copied().unwrap_or(0) < c.extra_b {
            return false;
        }
        let relaxed: Vec<u8> = q
            .overflow
            .iter()
            .filter_map(|r| match r.action {
                OverflowAction::RelaxProficiency { min_proficiency } => Some(min_proficiency),
                _ => None,
            })
            .collect();
        q.required_skills.iter().all(|r| {
            let have = p.skills.get(&r.skill).copied().unwrap_or(0);
            let min = if c.level == 0 {
                r.min_proficiency
            } else {
                r.min_proficiency.min(relaxed[usize::from(c.level) - 1])
            };
            have >= 1 && have >= min
        })
    }

    fn load(&self, agent: &AgentId) -> (u16, u16, bool) {
        let mut v = 0;
        let mut ch = 0;
        let mut offer = false;
        for c in self.contacts.values() {
            let who = match c.phase {
                MPhase::Offered(_, a) => {
                    if a == *agent {
                        offer = true;
                    }
                    Some(a)
                }
                MPhase::Handling(a) | MPhase::WrapUp(a) => Some(a),
                MPhase::Waiting => None,
            };
            if who == Some(*agent) {
                match c.kind {
                    ChannelKind::Voice => v += 1,
                    ChannelKind::Chat => ch += 1,
                }
            }
        }
        (v, ch, offer)
    }

    fn rule_after(
        &self,
        queue: usize,
        pred: impl Fn(&OverflowAction) -> bool,
        nth: usize,
    ) -> Duration {
        self.queue_cfg[queue]
            .overflow
            .iter()
            .filter(|r| pred(&r.action))
            .nth(nth)
            .unwrap()
            .after
    }

    fn check_offer(
        &self,
        now: Timestamp,
        contact: ConversationId,
        agent: AgentId,
        queue: &QueueId,
    ) {
        let c = &self.contacts[&contact];
        assert_eq!(c.phase, MPhase::Waiting, "offered contact was not waiting");
        assert_eq!(
            Self::queue_index(queue),
            c.queue,
            "offer from the wrong queue"
        );
        let (_, presence) = &self.agents[&agent];
        assert_eq!(
            *presence,
            Presence::Available,
            "offer to a non-available agent"
        );
        assert!(self.eligible(&agent, c), "offer to an ineligible agent");
        let (p, _) = &self.agents[&agent];
        let (v, ch, pending) = self.load(&agent);
        assert!(!pending, "second pending offer");
        match c.kind {
            ChannelKind::Voice => assert!(
                p.capacity.voice >= 1 && v == 0 && ch == 0,
                "voice over capacity"
            ),
            ChannelKind::Chat => assert!(v == 0 && ch < p.capacity.chat, "chat over capacity"),
        }
        // FIFO within priority (and priority order) among contacts this agent could take.
        for (id, d) in &self.contacts {
            if *id == contact || d.phase != MPhase::Waiting || d.queue != c.queue {
                continue;
            }
            let ahead = (std::cmp::Reverse(d.prio), d.order) < (std::cmp::Reverse(c.prio), c.order);
            if ahead && d.last != Some(agent) && self.eligible(&agent, d) {
                panic!("FIFO broken: {id} ahead of {contact} could go to {agent} at {now}");
            }
        }
    }

    /// Applies one output, checking it first.
    pub fn apply(&mut self, now: Timestamp, o: &Output) {
        match o {
            Output::Offered {
                offer,
                contact,
                agent,
                queue,
                expires_at,
                ..
            } => {
                self.check_offer(now, *contact, *agent, queue);
                assert!(*expires_at > now);
                self.contacts.get_mut(contact).unwrap().phase = MPhase::Offered(*offer, *agent);
            }
            Output::OfferRevoked {
                contact,
                agent,
                reason,
                ..
            } => {
                assert!(
                    matches!(self.contacts[contact].phase, MPhase::Offered(_, a) if a == *agent)
                );
                if matches!(
                    reason,
                    RevokeReason::ContactAbandoned | RevokeReason::ContactWithdrawn
                ) {
                    self.contacts.remove(contact);
                }
            }
            Output::Requeued { contact, .. } => {
                let c = self.contacts.get_mut(contact).unwrap();
                let MPhase::Offered(_, a) = c.phase else {
                    panic!("requeued but not offered")
                };
                c.last = Some(a);
                c.phase = MPhase::Waiting;
            }
            Output::Assigned {
                contact,
                agent,
                waited,
                ..
            } => {
                let c = self.contacts.get_mut(contact).unwrap();
                assert!(matches!(c.phase, MPhase::Offered(_, a) if a == *agent));
                assert_eq!(*waited, now.since(c.arrived));
                c.phase = MPhase::Handling(*agent);
            }
            Output::Relaxed { contact, level, .. } => {
                let c = &self.contacts[contact];
                assert_eq!(c.phase, MPhase::Waiting);
                let after = self.rule_after(
                    c.queue,
                    |a| matches!(a, OverflowAction::RelaxProficiency { .. }),
                    usize::from(*level) - 1,
                );
                assert!(c.entered + after <= now, "relaxed too early");
                self.contacts.get_mut(contact).unwrap().level = *level;
            }
            Output::Overflowed { contact, from, to } => {
                let c = &self.contacts[contact];
                assert_eq!(Self::queue_index(from), c.queue);
                let after = self.rule_after(
                    c.queue,
                    |a| matches!(a, OverflowAction::MoveToQueue { .. }),
                    0,
                );
                assert!(c.entered + after <= now, "moved too early");
                let c = self.contacts.get_mut(contact).unwrap();
                c.queue = Self::queue_index(to);
                c.entered = now;
                c.level = 0;
            }
            Output::OfferVoicemail { contact, .. } | Output::OfferCallback { contact, .. } => {
                let c = self.contacts.remove(contact).unwrap();
                assert_eq!(c.phase, MPhase::Waiting);
                let after = self.rule_after(
                    c.queue,
                    |a| matches!(a, OverflowAction::Voicemail | OverflowAction::Callback),
                    0,
                );
                assert!(c.entered + after <= now, "left too early");
            }
            Output::Rejected { contact, .. } => {
                self.contacts.remove(contact).unwrap();
            }
            Output::EstimateChanged {
                contact, position, ..
            } => {
                let c = &self.contacts[contact];
                assert_eq!(c.phase, MPhase::Waiting);
                let rank = |d: &MContact| (std::cmp::Reverse(d.prio), d.order);
                let ahead = self
                    .contacts
                    .values()
                    .filter(|d| {
                        d.phase == MPhase::Waiting && d.queue == c.queue && rank(d) < rank(c)
                    })
                    .count();
                assert_eq!(*position as usize, ahead + 1, "announced position is wrong");
            }
            Output::WrapUpStarted { contact, agent, .. } => {
                let c = self.contacts.get_mut(contact).unwrap();
                assert_eq!(c.phase, MPhase::Handling(*agent));
                c.phase = MPhase::WrapUp(*agent);
            }
            Output::WrapUpEnded { contact, agent } => {
                let c = self.contacts.remove(contact).unwrap();
                assert_eq!(c.phase, MPhase::WrapUp(*agent));
            }
            Output::PresenceChanged { agent, presence } => {
                self.agents.get_mut(agent).unwrap().1 = presence.clone();
            }
        }
    }

    /// The mirror and the router agree on every contact.
    pub fn compare(&self, router: &Router) {
        assert_eq!(
            router.contact_count(),
            self.contacts.len(),
            "contact lost or duplicated"
        );
        for (id, c) in &self.contacts {
            let snap = router.contact_snapshot(id).unwrap();
            assert_eq!(snap.queue.as_str(), QUEUES[c.queue]);
            let same = match (c.phase, snap.state) {
                (MPhase::Waiting, ContactState::Waiting) => true,
                (MPhase::Offered(o, a), ContactState::Offered { offer, agent }) => {
                    o == offer && a == agent
                }
                (MPhase::Handling(a), ContactState::Handling { agent }) => a == agent,
                (MPhase::WrapUp(a), ContactState::WrapUp { agent, .. }) => a == agent,
                _ => false,
            };
            assert!(same, "{id}: mirror {:?} router {:?}", c.phase, snap.state);
        }
        for (q, name) in QUEUES.iter().enumerate() {
            let waiting = router.waiting_contacts(&QueueId::new(name)).unwrap();
            let mirror = self
                .contacts
                .values()
                .filter(|c| c.queue == q && c.phase == MPhase::Waiting)
                .count();
            assert_eq!(waiting.len(), mirror);
        }
        for (id, (p, presence)) in &self.agents {
            if self.removed.contains(id) {
                assert!(
                    router.agent_snapshot(id).is_err(),
                    "removed agent still known"
                );
                continue;
            }
            let snap = router.agent_snapshot(id).unwrap();
            assert_eq!(snap.presence, *presence);
            assert!(snap.voice_load <= p.capacity.voice && snap.chat_load <= p.capacity.chat);
            assert!(snap.voice_load == 0 || snap.chat_load == 0);
        }
    }
}
