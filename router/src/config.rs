//! Configuration: queues, agents, strategies, overflow rules.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use switchboard_bus::{AgentId, Skill};

use crate::error::RouterError;
use crate::hours::BusinessHours;
use crate::predictive::PredictiveConfig;
use crate::time::serde_secs;
use crate::types::{ChannelKind, Language, QueueId, Team, Topic};

/// Lowest proficiency.
pub const MIN_PROFICIENCY: u8 = 1;
/// Highest proficiency.
pub const MAX_PROFICIENCY: u8 = 5;

/// A skill a queue (or a contact) needs, with the lowest acceptable proficiency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkillRequirement {
    /// The skill.
    pub skill: Skill,
    /// Lowest proficiency accepted, 1 to 5.
    pub min_proficiency: u8,
}

impl SkillRequirement {
    /// Requires `skill` at `min_proficiency` or better.
    pub fn new(skill: Skill, min_proficiency: u8) -> Self {
        SkillRequirement {
            skill,
            min_proficiency,
        }
    }
}

/// How a queue picks among the agents able to take a contact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Strategy {
    /// The agent who has been free the longest (since their last contact
    /// ended or since they became available).
    LongestIdle,
    /// The agent with the lowest share of their capacity in use for the
    /// queue's channel kind; ties go to the longest idle.
    LeastOccupied,
    /// The agent with the highest total proficiency in the queue's required
    /// skills; ties go to the longest idle.
    SkillsWeighted,
    /// The agent with the best predicted outcome for this contact; see
    /// [`crate::predictive`].
    Predictive(PredictiveConfig),
}

/// The name of a strategy, as shown in explanations and snapshots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StrategyKind {
    /// [`Strategy::LongestIdle`].
    LongestIdle,
    /// [`Strategy::LeastOccupied`].
    LeastOccupied,
    /// [`Strategy::SkillsWeighted`].
    SkillsWeighted,
    /// [`Strategy::Predictive`].
    Predictive,
}

impl Strategy {
    /// The strategy's name.
    pub fn kind(&self) -> StrategyKind {
        match self {
            Strategy::LongestIdle => StrategyKind::LongestIdle,
            Strategy::LeastOccupied => StrategyKind::LeastOccupied,
            Strategy::SkillsWeighted => StrategyKind::SkillsWeighted,
            Strategy::Predictive(_) => StrategyKind::Predictive,
        }
    }
}

/// What happens when a contact has waited `after` in a queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OverflowAction {
    /// Accept agents with at least this proficiency in every required skill
    /// (the skill itself stays required; language and team stay required).
    RelaxProficiency {
        /// The new lowest proficiency, 1 to 5.
        min_proficiency: u8,
    },
    /// Move the contact to another queue of the same channel kind. It keeps
    /// its original arrival time, so it queues there by when it first arrived.
    /// If, when the step comes, that queue does not exist or serves the
    /// other kind, the step is skipped. The target's business hours do not
    /// apply (they gate arrivals only).
    MoveToQueue {
        /// The overflow queue.
        queue: QueueId,
    },
    /// Take the contact out of the queue and offer voicemail.
    Voicemail,
    /// Take the contact out of the queue and offer a callback.
    Callback,
}

impl OverflowAction {
    fn is_exit(&self) -> bool {
        !matches!(self, OverflowAction::RelaxProficiency { .. })
    }
}

/// One overflow step: `action` once a contact has waited `after` in the queue
/// (counted from when it entered *this* queue).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OverflowRule {
    /// Wait in this queue after which the rule applies.
    #[serde(with = "serde_secs")]
    pub after: Duration,
    /// What to do.
    pub action: OverflowAction,
}

/// What a contact arriving outside business hours gets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ClosedAction {
    /// Not queued: [`Output::Rejected`](crate::Output::Rejected).
    Reject,
    /// Offered voicemail.
    Voicemail,
    /// Offered a callback.
    Callback,
    /// Sent to another queue (whose own hours then apply). If that queue
    /// does not exist or serves the other kind, the contact is rejected.
    MoveToQueue {
        /// Where to.
        queue: QueueId,
    },
}

/// A service-level target: `fraction` of contacts answered within `threshold`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ServiceLevelTarget {
    /// Target share answered in time, 0 to 1 (0.8 for "80/20").
    pub fraction: f64,
    /// Answer-time threshold.
    #[serde(with = "serde_secs")]
    pub threshold: Duration,
}

impl Default for ServiceLevelTarget {
    fn default() -> Self {
        ServiceLevelTarget {
            fraction: 0.8,
            threshold: Duration::from_secs(20),
        }
    }
}

/// One queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueueConfig {
    /// The queue's name.
    pub id: QueueId,
    /// The channel kind the queue serves; contacts of the other kind are refused.
    pub kind: ChannelKind,
    /// Skills an agent must have, each at a minimum proficiency.
    #[serde(default)]
    pub required_skills: Vec<SkillRequirement>,
    /// Language an agent must speak, if any.
    #[serde(default)]
    pub language: Option<Language>,
    /// If not empty, only members of one of these teams serve the queue.
    #[serde(default)]
    pub teams: BTreeSet<Team>,
    /// How agents are chosen.
    pub strategy: Strategy,
    /// Service-level target for reporting and forecasts.
    #[serde(default)]
    pub sla: ServiceLevelTarget,
    /// After-contact work time; the agent's slot stays taken this long after
    /// the contact ends (or until the agent reports wrap-up done).
    #[serde(with = "serde_secs")]
    pub wrap_up: Duration,
    /// How long an agent has to accept an offer.
    #[serde(with = "serde_secs")]
    pub offer_timeout: Duration,
    /// Overflow steps, in order of `after` (non-decreasing). Relaxations come
    /// first; at most one exit (move, voicemail, callback), and it is last.
    #[serde(default)]
    pub overflow: Vec<OverflowRule>,
    /// Opening hours; `None` means always open.
    #[serde(default)]
    pub business_hours: Option<BusinessHours>,
    /// What contacts arriving while closed get.
    pub closed_action: ClosedAction,
    /// Handle time (talk plus wrap-up) assumed before any is observed; the
    /// observed average takes over as contacts complete.
    #[serde(with = "serde_secs")]
    pub expected_handle_time: Duration,
    /// Topic assumed for contacts that carry none (used by the predictive strategy).
    #[serde(default)]
    pub default_topic: Option<Topic>,
}

impl QueueConfig {
    /// A queue with no requirements, longest-idle routing, 80/20 SLA, no
    /// wrap-up, a 20 s offer timeout, always open, 5 min expected handle time.
    pub fn new(id: impl Into<QueueId>, kind: ChannelKind) -> Self {
        QueueConfig {
            id: id.into(),
            kind,
            required_skills: Vec::new(),
            language: None,
            teams: BTreeSet::new(),
            strategy: Strategy::LongestIdle,
            sla: ServiceLevelTarget::default(),
            wrap_up: Duration::ZERO,
            offer_timeout: Duration::from_secs(20),
            overflow: Vec::new(),
            business_hours: None,
            closed_action: ClosedAction::Reject,
            expected_handle_time: Duration::from_secs(300),
            default_topic: None,
        }
    }

    /// Adds a required skill.
    pub fn require(mut self, skill: Skill, min_proficiency: u8) -> Self {
        self.required_skills
            .push(SkillRequirement::new(skill, min_proficiency));
        self
    }

    /// Sets the strategy.
    pub fn strategy(mut self, strategy: Strategy) -> Self {
        self.strategy = strategy;
        self
    }

    /// Adds an overflow rule.
    pub fn overflow(mut self, after: Duration, action: OverflowAction) -> Self {
        self.overflow.push(OverflowRule { after, action });
        self
    }

    /// Checks the configuration; the router refuses a queue that fails.
    pub fn validate(&self) -> Result<(), RouterError> {
        let bad = |msg: String| {
            Err(RouterError::InvalidConfig(format!(
                "queue {}: {msg}",
                self.id
            )))
        };
        if self.id.as_str().is_empty() {
            return bad("empty id".into());
        }
        let mut seen = BTreeSet::new();
        for req in &self.required_skills {
            if !(MIN_PROFICIENCY..=MAX_PROFICIENCY).contains(&req.min_proficiency) {
                return bad(format!("skill {}: proficiency not in 1..=5", req.skill));
            }
            if !seen.insert(&req.skill) {
                return bad(format!("skill {} listed twice", req.skill));
            }
        }
        if !(0.0..=1.0).contains(&self.sla.fraction) {
            return bad("sla.fraction not in 0..=1".into());
        }
        if self.offer_timeout.is_zero() {
            return bad("offer_timeout is zero".into());
        }
        if self.expected_handle_time.is_zero() {
            return bad("expected_handle_time is zero".into());
        }
        let mut last_after = Duration::ZERO;
        let mut exited = false;
        let mut last_min = MAX_PROFICIENCY;
        for rule in &self.overflow {
            if exited {
                return bad("overflow rule after an exit rule can never apply".into());
            }
            if rule.after < last_after {
                return bad("overflow rules not in order of `after`".into());
            }
            last_after = rule.after;
            match &rule.action {
                OverflowAction::RelaxProficiency { min_proficiency } => {
                    if !(MIN_PROFICIENCY..=MAX_PROFICIENCY).contains(min_proficiency) {
                        return bad("relaxed proficiency not in 1..=5".into());
                    }
                    if *min_proficiency > last_min {
                        return bad("a relaxation raises the proficiency again".into());
                    }
                    last_min = *min_proficiency;
                }
                OverflowAction::MoveToQueue { queue } if *queue == self.id => {
                    return bad("overflow to itself".into());
                }
                // A move after no wait could bounce a contact between two
                // queues forever within one instant.
                OverflowAction::MoveToQueue { .. } if rule.after.is_zero() => {
                    return bad("a move to another queue needs a wait above zero".into());
                }
                _ => {}
            }
            exited = rule.action.is_exit();
        }
        if let Some(hours) = &self.business_hours
            && let Err(e) = hours.validate()
        {
            return bad(e);
        }
        if let Strategy::Predictive(p) = &self.strategy
            && let Err(e) = p.validate()
        {
            return bad(e);
        }
        Ok(())
    }
}

/// How many contacts of each kind an agent can hold at once. Voice excludes
/// chat: an agent on a call takes no chats, an agent with a chat takes no call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capacity {
    /// Calls at once: 0 or 1.
    pub voice: u16,
    /// Chats at once.
    pub chat: u16,
}

impl Capacity {
    /// Slots for `kind`.
    pub fn of(&self, kind: ChannelKind) -> u16 {
        match kind {
            ChannelKind::Voice => self.voice,
            ChannelKind::Chat => self.chat,
        }
    }
}

impl Default for Capacity {
    fn default() -> Self {
        Capacity { voice: 1, chat: 3 }
    }
}

/// An agent's measured results on one topic (fed in from analytics).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TopicPerformance {
    /// Share of contacts resolved on first contact, 0 to 1.
    pub resolution_rate: f64,
    /// Mean customer-satisfaction score, 1 to 5.
    pub csat: f64,
    /// Mean handle time.
    #[serde(with = "serde_secs")]
    pub handle_time: Duration,
    /// How many contacts the figures are based on.
    pub samples: u32,
}

impl TopicPerformance {
    pub(crate) fn validate(&self) -> Result<(), String> {
        if !(0.0..=1.0).contains(&self.resolution_rate) {
            return Err("resolution_rate not in 0..=1".into());
        }
        if !(1.0..=5.0).contains(&self.csat) {
            return Err("csat not in 1..=5".into());
        }
        if self.handle_time.is_zero() {
            return Err("handle_time is zero".into());
        }
        Ok(())
    }
}

/// An agent as the router knows them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentProfile {
    /// The agent.
    pub id: AgentId,
    /// Skills with proficiency 1 (novice) to 5 (expert).
    #[serde(default)]
    pub skills: BTreeMap<Skill, u8>,
    /// Languages spoken.
    #[serde(default)]
    pub languages: BTreeSet<Language>,
    /// Teams the agent belongs to.
    #[serde(default)]
    pub teams: BTreeSet<Team>,
    /// Contacts at once, per channel kind.
    #[serde(default)]
    pub capacity: Capacity,
    /// Measured results per topic, for the predictive strategy.
    #[serde(default)]
    pub performance: BTreeMap<Topic, TopicPerformance>,
    /// Measured results over all topics; used for topics without their own figures.
    #[serde(default)]
    pub overall: Option<TopicPerformance>,
}

impl AgentProfile {
    /// An agent with no skills, no languages, default capacity (1 call or 3 chats).
    pub fn new(id: AgentId) -> Self {
        AgentProfile {
            id,
            skills: BTreeMap::new(),
            languages: BTreeSet::new(),
            teams: BTreeSet::new(),
            capacity: Capacity::default(),
            performance: BTreeMap::new(),
            overall: None,
        }
    }

    /// Adds a skill at a proficiency.
    pub fn skill(mut self, skill: Skill, proficiency: u8) -> Self {
        self.skills.insert(skill, proficiency);
        self
    }

    /// Adds a language.
    pub fn language(mut self, language: impl Into<Language>) -> Self {
        self.languages.insert(language.into());
        self
    }

    /// Sets the capacity.
    pub fn capacity(mut self, voice: u16, chat: u16) -> Self {
        self.capacity = Capacity { voice, chat };
        self
    }

    /// Checks the profile; the router refuses an agent that fails.
    pub fn validate(&self) -> Result<(), RouterError> {
        let bad = |msg: String| {
            Err(RouterError::InvalidConfig(format!(
                "agent {}: {msg}",
                self.id
            )))
        };
        for (skill, p) in &self.skills {
            if !(MIN_PROFICIENCY..=MAX_PROFICIENCY).contains(p) {
                return bad(format!("skill {skill}: proficiency {p} not in 1..=5"));
            }
        }
        if self.capacity.voice > 1 {
            return bad("voice capacity above 1".into());
        }
        for (topic, perf) in &self.performance {
            if let Err(e) = perf.validate() {
                return bad(format!("performance on {topic}: {e}"));
            }
        }
        if let Some(perf) = &self.overall
            && let Err(e) = perf.validate()
        {
            return bad(format!("overall performance: {e}"));
        }
        Ok(())
    }
}

/// Settings for the whole router. Missing fields take their defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RouterConfig {
    /// How often (at most) a queue's position and wait estimates are
    /// recomputed and announced after something changed.
    #[serde(with = "serde_secs")]
    pub estimate_interval: Duration,
    /// An estimate is announced again when the position changed or the
    /// estimated wait moved by at least this much.
    #[serde(with = "serde_secs")]
    pub estimate_min_change: Duration,
    /// Most waiting contacts walked for estimate refreshes in one `Tick`
    /// call; further due refreshes stay due for the next `Tick`, so one call
    /// never walks every queue at once. A queue is always walked whole, so a
    /// `Tick` walks at least one due queue. (Other inputs never run
    /// estimate refreshes.)
    pub estimate_budget: usize,
    /// After this many offers in a row expire unanswered, the agent is set
    /// away with reason `missed offers`. `None` never does.
    #[serde(default)]
    pub away_after_missed_offers: Option<u32>,
    /// Weight of the newest completed contact in a queue's average handle
    /// time (exponential moving average), 0 to 1.
    pub handle_time_smoothing: f64,
}

impl Default for RouterConfig {
    fn default() -> Self {
        RouterConfig {
            estimate_interval: Duration::from_secs(10),
            estimate_min_change: Duration::from_secs(15),
            estimate_budget: 2_000,
            away_after_missed_offers: Some(2),
            handle_time_smoothing: 0.05,
        }
    }
}

impl RouterConfig {
    /// Checks the settings.
    pub fn validate(&self) -> Result<(), RouterError> {
        if !(self.handle_time_smoothing > 0.0 && self.handle_time_smoothing <= 1.0) {
            return Err(RouterError::InvalidConfig(
                "handle_time_smoothing not in (0, 1]".into(),
            ));
        }
        if self.estimate_budget == 0 {
            return Err(RouterError::InvalidConfig(
                "estimate_budget must be at least 1".into(),
            ));
        }
        if self.away_after_missed_offers == Some(0) {
            return Err(RouterError::InvalidConfig(
                "away_after_missed_offers must be at least 1".into(),
            ));
        }
        Ok(())
    }
}
