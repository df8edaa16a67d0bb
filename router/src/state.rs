//! The router's internal records and the indexes kept over them.
//!
//! * Each queue keeps, **per relaxation level**, a `BTreeSet` of waiting
//!   contacts ordered by (priority descending, arrival sequence) — a
//!   priority FIFO — and a `BTreeSet` of agents able to take one more
//!   contact right now, ordered by the queue's strategy key (idle-since,
//!   occupancy or proficiency). An agent sits in level `l` of a queue when
//!   `l` is the lowest relaxation level at which they qualify.
//! * Each agent keeps its memberships (queue, level, the key under which it
//!   is currently indexed). A change of an agent's state touches only the
//!   sets of the queues it serves; no decision scans all agents.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use switchboard_bus::Skill;

use crate::config::{AgentProfile, MAX_PROFICIENCY, OverflowAction, QueueConfig, Strategy};
use crate::io::ContactRequest;
use crate::stats::{ArrivalRate, HandleTime, QueueCounters};
use crate::time::Timestamp;
use crate::types::{ChannelKind, OfferId, Presence};

pub(crate) type AgentIx = u32;
pub(crate) type QueueIx = u32;
pub(crate) type ContactIx = u32;

/// Position of a waiting contact: higher priority first, then arrival order.
/// `seq` is unique router-wide, so keys from different queues compare too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct WaitKey {
    pub prio: Reverse<u8>,
    pub seq: u64,
    pub contact: ContactIx,
}

/// Position of an available agent in a queue, by the queue's strategy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct AgentKey {
    pub k1: u64,
    pub k2: u64,
    pub agent: AgentIx,
}

/// Millionths of a server, so staffing sums add and subtract exactly.
pub(crate) const MICRO: u64 = 1_000_000;

#[derive(Debug)]
pub(crate) struct QueueState {
    pub cfg: QueueConfig,
    /// Minimum proficiency per relaxation level: index 0 is `MAX_PROFICIENCY`
    /// (each skill's own minimum applies), index `l` the `l`-th relaxation.
    pub level_min: Vec<u8>,
    pub waiting: Vec<BTreeSet<WaitKey>>,
    pub avail: Vec<BTreeSet<AgentKey>>,
    pub members: Vec<AgentIx>,
    pub waiting_count: usize,
    pub offered_count: usize,
    pub prio_counts: BTreeMap<Reverse<u8>, u32>,
    pub counters: QueueCounters,
    pub handle: HandleTime,
    pub arrivals: ArrivalRate,
    /// Sum of the staffed agents' shares, in millionths of a server.
    pub staffed_micro: u64,
    pub estimate_due: Option<Timestamp>,
    pub last_estimate: Option<Timestamp>,
}

impl QueueState {
    pub fn new(cfg: QueueConfig, now: Timestamp) -> Self {
        let level_min = level_mins(&cfg);
        let n = level_min.len();
        QueueState {
            handle: HandleTime::new(cfg.expected_handle_time),
            cfg,
            level_min,
            waiting: vec![BTreeSet::new(); n],
            avail: vec![BTreeSet::new(); n],
            members: Vec::new(),
            waiting_count: 0,
            offered_count: 0,
            prio_counts: BTreeMap::new(),
            counters: QueueCounters::default(),
            arrivals: ArrivalRate::new(now),
            staffed_micro: 0,
            estimate_due: None,
            last_estimate: None,
        }
    }

    pub fn levels(&self) -> usize {
        self.level_min.len()
    }

    /// The proficiency accepted for `min` (a skill's own minimum) at `level`.
    pub fn min_at(&self, min: u8, level: u8) -> u8 {
        let cap = self
            .level_min
            .get(usize::from(level))
            .copied()
            .unwrap_or(MAX_PROFICIENCY);
        min.min(cap)
    }

    pub fn insert_waiting(&mut self, level: u8, key: WaitKey) {
        if self.waiting[usize::from(level)].insert(key) {
            self.waiting_count += 1;
            *self.prio_counts.entry(key.prio).or_default() += 1;
        }
    }

    pub fn remove_waiting(&mut self, level: u8, key: WaitKey) -> bool {
        let removed = self.waiting[usize::from(level)].remove(&key);
        if removed {
            self.waiting_count -= 1;
            if let Some(n) = self.prio_counts.get_mut(&key.prio) {
                *n -= 1;
                if *n == 0 {
                    self.prio_counts.remove(&key.prio);
                }
            }
        }
        removed
    }

    /// Waiting contacts served before or with a contact of priority `prio`
    /// that arrived after all of them.
    pub fn count_at_or_above(&self, prio: u8) -> u32 {
        self.prio_counts
            .range(..=Reverse(prio))
            .map(|(_, n)| *n)
            .sum()
    }

    /// Staffed servers (possibly fractional).
    pub fn servers(&self) -> f64 {
        self.staffed_micro as f64 / MICRO as f64
    }

    pub fn has_avail_up_to(&self, level: u8) -> bool {
        self.avail
            .iter()
            .take(usize::from(level) + 1)
            .any(|s| !s.is_empty())
    }
}

/// The proficiency cap for each relaxation level of a queue.
fn level_mins(cfg: &QueueConfig) -> Vec<u8> {
    let mut v = vec![MAX_PROFICIENCY];
    for rule in &cfg.overflow {
        if let OverflowAction::RelaxProficiency { min_proficiency } = rule.action {
            v.push(min_proficiency);
        }
    }
    v
}

/// The lowest level at which an agent serves a queue, and their total
/// proficiency in its skills; `None` if they never do.
pub(crate) fn eligibility(profile: &AgentProfile, q: &QueueState) -> Option<(u8, u32)> {
    let cfg = &q.cfg;
    if profile.capacity.of(cfg.kind) == 0 {
        return None;
    }
    if let Some(lang) = &cfg.language
        && !profile.languages.contains(lang)
    {
        return None;
    }
    if !cfg.teams.is_empty() && cfg.teams.is_disjoint(&profile.teams) {
        return None;
    }
    let mut level = 0u8;
    let mut prof_sum = 0u32;
    for req in &cfg.required_skills {
        let p = *profile.skills.get(&req.skill)?;
        prof_sum += u32::from(p);
        let needed = (0..q.levels()).find(|&l| {
            let l = u8::try_from(l).unwrap_or(u8::MAX);
            p >= q.min_at(req.min_proficiency, l)
        })?;
        level = level.max(u8::try_from(needed).unwrap_or(u8::MAX));
    }
    Some((level, prof_sum))
}

#[derive(Debug, Clone)]
pub(crate) struct Membership {
    pub queue: QueueIx,
    pub level: u8,
    pub prof_sum: u32,
    /// The key under which the agent is in `avail[level]` now, if it is.
    pub key: Option<AgentKey>,
    /// What the agent adds to the queue's `staffed_micro` now.
    pub staffed: u64,
}

#[derive(Debug)]
pub(crate) struct AgentState {
    pub profile: AgentProfile,
    pub presence: Presence,
    pub presence_since: Timestamp,
    pub idle_since: Timestamp,
    pub voice: u16,
    pub chat: u16,
    pub offer: Option<OfferId>,
    pub contacts: Vec<ContactIx>,
    pub memberships: Vec<Membership>,
    pub missed: u32,
}

impl AgentState {
    pub fn new(profile: AgentProfile, now: Timestamp) -> Self {
        AgentState {
            profile,
            presence: Presence::Offline,
            presence_since: now,
            idle_since: now,
            voice: 0,
            chat: 0,
            offer: None,
            contacts: Vec::new(),
            memberships: Vec::new(),
            missed: 0,
        }
    }

    pub fn load(&self, kind: ChannelKind) -> u16 {
        match kind {
            ChannelKind::Voice => self.voice,
            ChannelKind::Chat => self.chat,
        }
    }

    pub fn load_mut(&mut self, kind: ChannelKind) -> &mut u16 {
        match kind {
            ChannelKind::Voice => &mut self.voice,
            ChannelKind::Chat => &mut self.chat,
        }
    }

    /// Whether the agent could take one more contact of `kind` now.
    pub fn can_take(&self, kind: ChannelKind) -> bool {
        if !self.presence.is_routable() || self.offer.is_some() {
            return false;
        }
        let cap = self.profile.capacity;
        match kind {
            ChannelKind::Voice => cap.voice > 0 && self.voice == 0 && self.chat == 0,
            ChannelKind::Chat => self.voice == 0 && self.chat < cap.chat,
        }
    }

    /// The agent's key in a queue with this strategy and kind.
    pub fn key(
        &self,
        strategy: &Strategy,
        kind: ChannelKind,
        m: &Membership,
        ix: AgentIx,
    ) -> AgentKey {
        let idle = self.idle_since.as_millis();
        let (k1, k2) = match strategy {
            Strategy::LongestIdle | Strategy::Predictive(_) => (idle, 0),
            Strategy::LeastOccupied => {
                let cap = u64::from(self.profile.capacity.of(kind).max(1));
                (u64::from(self.load(kind)) * 1000 / cap, idle)
            }
            Strategy::SkillsWeighted => (u64::from(u32::MAX - m.prof_sum), idle),
        };
        AgentKey { k1, k2, agent: ix }
    }

    /// Whether the agent meets a contact's own language and skill needs.
    pub fn fits(&self, c: &ContactState) -> bool {
        if let Some(lang) = &c.req.language
            && !self.profile.languages.contains(lang)
        {
            return false;
        }
        c.req.required_skills.iter().all(|r| {
            self.profile
                .skills
                .get(&r.skill)
                .is_some_and(|p| *p >= r.min_proficiency)
        })
    }

    pub fn membership(&self, q: QueueIx) -> Option<&Membership> {
        self.memberships.iter().find(|m| m.queue == q)
    }

    pub fn proficiency(&self, skill: &Skill) -> u8 {
        self.profile.skills.get(skill).copied().unwrap_or(0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    Waiting,
    Offered {
        offer: OfferId,
        agent: AgentIx,
    },
    Handling {
        agent: AgentIx,
        since: Timestamp,
    },
    WrapUp {
        agent: AgentIx,
        since: Timestamp,
        until: Timestamp,
    },
}

impl Phase {
    pub fn name(&self) -> &'static str {
        match self {
            Phase::Waiting => "waiting",
            Phase::Offered { .. } => "offered",
            Phase::Handling { .. } => "handling",
            Phase::WrapUp { .. } => "in wrap-up",
        }
    }
}

#[derive(Debug)]
pub(crate) struct ContactState {
    pub req: ContactRequest,
    pub kind: ChannelKind,
    pub queue: QueueIx,
    /// The current queue's id, kept here as the queue may be removed while
    /// the contact is still in conversation.
    pub queue_id: crate::types::QueueId,
    pub seq: u64,
    pub arrived: Timestamp,
    pub entered: Timestamp,
    pub level: u8,
    pub next_rule: usize,
    pub overflow_at: Option<Timestamp>,
    pub phase: Phase,
    pub last_agent: Option<AgentIx>,
    pub announced: Option<(u32, Option<Duration>)>,
    pub wrap_up: Duration,
}

impl ContactState {
    pub fn key(&self, ix: ContactIx) -> WaitKey {
        WaitKey {
            prio: Reverse(self.req.priority.0),
            seq: self.seq,
            contact: ix,
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct OfferState {
    pub contact: ContactIx,
    pub agent: AgentIx,
    pub expires: Timestamp,
}

/// A pending deadline. Every timer in the set belongs to a live object and
/// is removed when that object no longer needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Timer {
    Offer(OfferId),
    Overflow(ContactIx),
    WrapUp(ContactIx),
}

/// A slab: stable indexes, freed slots reused.
#[derive(Debug)]
pub(crate) struct Slab<T> {
    items: Vec<Option<T>>,
    free: Vec<u32>,
    len: usize,
    reuse: bool,
}

impl<T> Slab<T> {
    /// A slab that reuses freed slots (contacts: millions a day).
    pub fn reusing() -> Self {
        Slab {
            items: Vec::new(),
            free: Vec::new(),
            len: 0,
            reuse: true,
        }
    }

    /// A slab that never reuses a slot, so a stale index can never name a
    /// newer item (queues and agents: few, long-lived).
    pub fn append_only() -> Self {
        Slab {
            reuse: false,
            ..Slab::reusing()
        }
    }

    pub fn insert(&mut self, item: T) -> u32 {
        self.len += 1;
        if let Some(ix) = self.free.pop() {
            self.items[ix as usize] = Some(item);
            ix
        } else {
            self.items.push(Some(item));
            u32::try_from(self.items.len() - 1).unwrap_or(u32::MAX)
        }
    }

    pub fn remove(&mut self, ix: u32) -> Option<T> {
        let item = self.items.get_mut(ix as usize)?.take();
        if item.is_some() {
            if self.reuse {
                self.free.push(ix);
            }
            self.len -= 1;
        }
        item
    }

    pub fn get(&self, ix: u32) -> Option<&T> {
        self.items.get(ix as usize)?.as_ref()
    }

    pub fn get_mut(&mut self, ix: u32) -> Option<&mut T> {
        self.items.get_mut(ix as usize)?.as_mut()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn iter(&self) -> impl Iterator<Item = (u32, &T)> {
        self.items.iter().enumerate().filter_map(|(i, t)| {
            t.as_ref()
                .map(|t| (u32::try_from(i).unwrap_or(u32::MAX), t))
        })
    }
}

impl<T> std::ops::Index<u32> for Slab<T> {
    type Output = T;
    fn index(&self, ix: u32) -> &T {
        self.get(ix).expect("router index refers to a live slot")
    }
}

impl<T> std::ops::IndexMut<u32> for Slab<T> {
    fn index_mut(&mut self, ix: u32) -> &mut T {
        self.get_mut(ix)
            .expect("router index refers to a live slot")
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use switchboard_bus::AgentId;

    use super::*;
    use crate::config::QueueConfig;
    use crate::types::{Language, Team};

    fn skill(s: &str) -> Skill {
        Skill::new(s).expect("valid skill")
    }

    fn queue() -> QueueState {
        let mut cfg = QueueConfig::new("q", ChannelKind::Voice)
            .require(skill("a"), 4)
            .require(skill("b"), 2)
            .overflow(
                Duration::from_secs(10),
                OverflowAction::RelaxProficiency { min_proficiency: 3 },
            )
            .overflow(
                Duration::from_secs(20),
                OverflowAction::RelaxProficiency { min_proficiency: 1 },
            );
        cfg.language = Some(Language::new("en"));
        QueueState::new(cfg, Timestamp::ZERO)
    }

    #[test]
    fn eligibility_level_is_the_lowest_that_fits_every_skill() {
        let q = queue();
        assert_eq!(q.level_min, vec![5, 3, 1]);
        let agent = |a: u8, b: u8| {
            AgentProfile::new(AgentId::new())
                .skill(skill("a"), a)
                .skill(skill("b"), b)
                .language("en")
        };
        assert_eq!(eligibility(&agent(4, 2), &q), Some((0, 6)));
        // a = 3 needs the first relaxation; b's own minimum (2) is below it.
        assert_eq!(eligibility(&agent(3, 2), &q), Some((1, 5)));
        assert_eq!(eligibility(&agent(1, 5), &q), Some((2, 6)));
        // b = 1 is below b's own minimum until the second relaxation.
        assert_eq!(eligibility(&agent(5, 1), &q), Some((2, 6)));
        let no_b = AgentProfile::new(AgentId::new())
            .skill(skill("a"), 5)
            .language("en");
        assert_eq!(
            eligibility(&no_b, &q),
            None,
            "a missing skill is never relaxed"
        );
        assert_eq!(
            eligibility(&agent(5, 5).capacity(0, 3), &q),
            None,
            "no voice"
        );
        let mut german = agent(5, 5);
        german.languages = [Language::new("de")].into_iter().collect();
        assert_eq!(eligibility(&german, &q), None);
    }

    #[test]
    fn teams_restrict_membership() {
        let mut q = queue();
        q.cfg.teams = [Team::new("tier2")].into_iter().collect();
        let mut p = AgentProfile::new(AgentId::new())
            .skill(skill("a"), 5)
            .skill(skill("b"), 5)
            .language("en");
        assert_eq!(eligibility(&p, &q), None);
        p.teams.insert(Team::new("tier2"));
        assert_eq!(eligibility(&p, &q), Some((0, 10)));
    }

    #[test]
    fn wait_keys_order_by_priority_then_arrival() {
        let k = |prio: u8, seq: u64| WaitKey {
            prio: Reverse(prio),
            seq,
            contact: 0,
        };
        let mut keys = vec![k(0, 1), k(5, 3), k(0, 2), k(5, 2)];
        keys.sort();
        assert_eq!(keys, vec![k(5, 2), k(5, 3), k(0, 1), k(0, 2)]);
        let mut q = queue();
        for key in &keys {
            q.insert_waiting(0, *key);
        }
        assert_eq!(q.count_at_or_above(5), 2);
        assert_eq!(q.count_at_or_above(0), 4);
        assert!(q.remove_waiting(0, k(5, 2)));
        assert!(!q.remove_waiting(0, k(5, 2)));
        assert_eq!(q.count_at_or_above(9), 0);
        assert_eq!(q.waiting_count, 3);
    }

    #[test]
    fn append_only_slab_never_reuses() {
        let mut s: Slab<u8> = Slab::append_only();
        let a = s.insert(1);
        s.remove(a);
        assert_ne!(s.insert(2), a);
        let mut r: Slab<u8> = Slab::reusing();
        let a = r.insert(1);
        r.remove(a);
        assert_eq!(r.insert(2), a);
        assert_eq!(r.len(), 1);
    }
}
