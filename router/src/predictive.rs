//! The predictive strategy: score each candidate agent for *this* contact.
//!
//! # Formula
//!
//! For a contact with topic `t` (its own, else the queue's default topic)
//! and tags `T`, and a candidate agent with measured figures on `t` (the
//! agent's per-topic figures, else their overall figures, else none):
//!
//! ```text
//! n = samples behind the agent's figures (0 when there are none)
//! k = prior_strength                       (how many samples the prior is worth)
//! H = the queue's observed average handle time (its expected handle time until observed)
//!
//! resolution   = (n·r + k·r₀) / (n + k)                 r = agent's resolution rate, r₀ = prior
//! satisfaction = ((n·c + k·c₀) / (n + k) − 1) / 4       c = agent's mean CSAT (1–5), c₀ = prior
//! speed        = H / (H + h),  h = (n·hₐ + k·H) / (n + k) hₐ = agent's mean handle time
//! proficiency  = mean over required skills of (p − 1) / 4   (0.5 if none are required)
//!
//! w     = base + Σ tag_weights[τ] for every tag τ in T   (per term)
//! score = w.resolution·resolution + w.satisfaction·satisfaction
//!       + w.speed·speed + w.proficiency·proficiency
//! ```
//!
//! Every term lies in 0..=1; `speed` is ½ for an agent as fast as the queue
//! average and rises towards 1 for faster agents. Shrinking towards the prior
//! keeps an agent with three lucky contacts from outranking one with three
//! hundred good ones. Tags shift the weights: by default a `vip` contact
//! weighs satisfaction more and a `churn_risk` contact weighs resolution
//! more. The customer's language and the queue's skills, language and teams
//! are hard filters applied *before* scoring, so they are not score terms.
//!
//! The router scores at most `max_candidates` able agents, taken in
//! longest-idle order, and offers the contact to the highest score (ties go
//! to the longer idle). The bound keeps a decision's cost fixed however many
//! agents are free and keeps some fairness between agents. Each offer carries
//! the winner's terms (weight, value, contribution) and the runner-up's
//! total, so every decision can be explained.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use switchboard_bus::Skill;

use crate::config::{AgentProfile, TopicPerformance};
use crate::types::{Tag, Topic};

/// One weight per score term.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Weights {
    /// Weight of the (shrunk) first-contact resolution rate.
    #[serde(default)]
    pub resolution: f64,
    /// Weight of the (shrunk, normalised) CSAT.
    #[serde(default)]
    pub satisfaction: f64,
    /// Weight of handle-time efficiency.
    #[serde(default)]
    pub speed: f64,
    /// Weight of proficiency in the required skills.
    #[serde(default)]
    pub proficiency: f64,
}

impl Weights {
    fn add(&mut self, o: &Weights) {
        self.resolution += o.resolution;
        self.satisfaction += o.satisfaction;
        self.speed += o.speed;
        self.proficiency += o.proficiency;
    }

    fn all(&self) -> [f64; 4] {
        [
            self.resolution,
            self.satisfaction,
            self.speed,
            self.proficiency,
        ]
    }
}

/// Settings of the predictive strategy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PredictiveConfig {
    /// Most agents scored per decision (taken in longest-idle order).
    pub max_candidates: u16,
    /// Weights for every contact.
    pub base: Weights,
    /// Weights added for contacts carrying a tag.
    #[serde(default)]
    pub tag_weights: BTreeMap<Tag, Weights>,
    /// How many samples the prior counts for.
    pub prior_strength: f64,
    /// Resolution rate assumed without data.
    pub prior_resolution_rate: f64,
    /// CSAT assumed without data.
    pub prior_csat: f64,
}

impl Default for PredictiveConfig {
    fn default() -> Self {
        let mut tag_weights = BTreeMap::new();
        tag_weights.insert(
            Tag::new("vip"),
            Weights {
                satisfaction: 1.5,
                ..Weights::default()
            },
        );
        tag_weights.insert(
            Tag::new("churn_risk"),
            Weights {
                resolution: 2.0,
                ..Weights::default()
            },
        );
        PredictiveConfig {
            max_candidates: 32,
            base: Weights {
                resolution: 1.0,
                satisfaction: 1.0,
                speed: 0.5,
                proficiency: 0.5,
            },
            tag_weights,
            prior_strength: 10.0,
            prior_resolution_rate: 0.7,
            prior_csat: 4.0,
        }
    }
}

impl PredictiveConfig {
    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.max_candidates == 0 {
            return Err("predictive.max_candidates is zero".into());
        }
        if !(self.prior_strength > 0.0 && self.prior_strength.is_finite()) {
            return Err("predictive.prior_strength must be positive".into());
        }
        if !(0.0..=1.0).contains(&self.prior_resolution_rate) {
            return Err("predictive.prior_resolution_rate not in 0..=1".into());
        }
        if !(1.0..=5.0).contains(&self.prior_csat) {
            return Err("predictive.prior_csat not in 1..=5".into());
        }
        let finite = |w: &Weights| w.all().iter().all(|x| x.is_finite());
        if !finite(&self.base) || !self.tag_weights.values().all(finite) {
            return Err("predictive weights must be finite".into());
        }
        Ok(())
    }

    /// The weights for a contact with these tags.
    pub fn weights_for(&self, tags: &BTreeSet<Tag>) -> Weights {
        let mut w = self.base;
        for tag in tags {
            if let Some(extra) = self.tag_weights.get(tag) {
                w.add(extra);
            }
        }
        w
    }
}

/// A score term's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Term {
    /// Shrunk first-contact resolution rate.
    Resolution,
    /// Shrunk CSAT, normalised to 0..=1.
    Satisfaction,
    /// Handle-time efficiency against the queue average.
    Speed,
    /// Mean normalised proficiency in the required skills.
    Proficiency,
}

/// One term of a score: `contribution = weight × value`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ScoreTerm {
    /// Which term.
    pub term: Term,
    /// Its weight for this contact (after tags).
    pub weight: f64,
    /// The agent's value, 0..=1.
    pub value: f64,
    /// `weight × value`.
    pub contribution: f64,
}

/// An agent's score for a contact, term by term.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoreBreakdown {
    /// Sum of the contributions.
    pub total: f64,
    /// The four terms.
    pub terms: [ScoreTerm; 4],
    /// The topic the figures were looked up for.
    pub topic: Option<Topic>,
    /// Samples behind the agent's figures (0: prior only).
    pub samples: u32,
}

/// What the scorer needs to know about the contact and queue.
#[derive(Debug)]
pub(crate) struct ScoreInput<'a> {
    pub weights: Weights,
    pub topic: Option<&'a Topic>,
    pub required: &'a [&'a Skill],
    pub queue_handle_ms: f64,
}

/// Computes the four term values (not yet weighted) and the sample count.
fn values(cfg: &PredictiveConfig, agent: &AgentProfile, input: &ScoreInput<'_>) -> ([f64; 4], u32) {
    let perf: Option<&TopicPerformance> = input
        .topic
        .and_then(|t| agent.performance.get(t))
        .or(agent.overall.as_ref());
    let k = cfg.prior_strength;
    let big_h = input.queue_handle_ms.max(1.0);
    let (n, r, c, h) = match perf {
        Some(p) => (
            f64::from(p.samples),
            p.resolution_rate,
            p.csat,
            p.handle_time.as_secs_f64() * 1000.0,
        ),
        None => (0.0, 0.0, 0.0, 0.0),
    };
    let shrink = |x: f64, prior: f64| (n * x + k * prior) / (n + k);
    let resolution = shrink(r, cfg.prior_resolution_rate);
    let satisfaction = (shrink(c, cfg.prior_csat) - 1.0) / 4.0;
    let h_hat = shrink(h, big_h);
    let speed = big_h / (big_h + h_hat.max(0.0));
    let proficiency = if input.required.is_empty() {
        0.5
    } else {
        let sum: f64 = input
            .required
            .iter()
            .map(|skill| {
                let p = agent.skills.get(*skill).copied().unwrap_or(1);
                f64::from(p.saturating_sub(1)) / 4.0
            })
            .sum();
        sum / input.required.len() as f64
    };
    let samples = perf.map_or(0, |p| p.samples);
    ([resolution, satisfaction, speed, proficiency], samples)
}

/// The total score only (used to rank candidates without allocating).
pub(crate) fn score(cfg: &PredictiveConfig, agent: &AgentProfile, input: &ScoreInput<'_>) -> f64 {
    let (v, _) = values(cfg, agent, input);
    let w = input.weights.all();
    v.iter().zip(w.iter()).map(|(v, w)| v * w).sum()
}

/// The full breakdown, for the chosen agent's explanation.
pub(crate) fn breakdown(
    cfg: &PredictiveConfig,
    agent: &AgentProfile,
    input: &ScoreInput<'_>,
) -> ScoreBreakdown {
    let (v, samples) = values(cfg, agent, input);
    let w = input.weights.all();
    let names = [
        Term::Resolution,
        Term::Satisfaction,
        Term::Speed,
        Term::Proficiency,
    ];
    let terms: [ScoreTerm; 4] = std::array::from_fn(|i| ScoreTerm {
        term: names[i],
        weight: w[i],
        value: v[i],
        contribution: w[i] * v[i],
    });
    ScoreBreakdown {
        total: terms.iter().map(|t| t.contribution).sum(),
        terms,
        topic: input.topic.cloned(),
        samples,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use switchboard_bus::AgentId;

    use super::*;

    fn skill(s: &str) -> Skill {
        Skill::new(s).expect("valid skill")
    }

    #[test]
    fn prior_only_agent_scores_the_prior() {
        let cfg = PredictiveConfig::default();
        let agent = AgentProfile::new(AgentId::new()).skill(skill("billing"), 3);
        let billing = skill("billing");
        let required = [&billing];
        let input = ScoreInput {
            weights: cfg.weights_for(&BTreeSet::new()),
            topic: None,
            required: &required,
            queue_handle_ms: 300_000.0,
        };
        let b = breakdown(&cfg, &agent, &input);
        assert_eq!(b.samples, 0);
        assert!((b.terms[0].value - 0.7).abs() < 1e-12);
        assert!((b.terms[1].value - 0.75).abs() < 1e-12);
        assert!((b.terms[2].value - 0.5).abs() < 1e-12);
        assert!((b.terms[3].value - 0.5).abs() < 1e-12);
        // 1.0·0.7 + 1.0·0.75 + 0.5·0.5 + 0.5·0.5
        assert!((b.total - 1.95).abs() < 1e-12);
        assert!((score(&cfg, &agent, &input) - b.total).abs() < 1e-12);
    }

    #[test]
    fn tags_shift_weights_and_data_shrinks_to_prior() {
        let cfg = PredictiveConfig::default();
        let topic = Topic::new("refund");
        let mut agent = AgentProfile::new(AgentId::new());
        agent.performance.insert(
            topic.clone(),
            TopicPerformance {
                resolution_rate: 0.9,
                csat: 5.0,
                handle_time: Duration::from_secs(150),
                samples: 10,
            },
        );
        let tags: BTreeSet<Tag> = [Tag::new("VIP")].into_iter().collect();
        let input = ScoreInput {
            weights: cfg.weights_for(&tags),
            topic: Some(&topic),
            required: &[],
            queue_handle_ms: 300_000.0,
        };
        let b = breakdown(&cfg, &agent, &input);
        assert_eq!(b.samples, 10);
        // (10·0.9 + 10·0.7) / 20 = 0.8
        assert!((b.terms[0].value - 0.8).abs() < 1e-12);
        // ((10·5 + 10·4) / 20 − 1) / 4 = 0.875, weight 1 + 1.5
        assert!((b.terms[1].value - 0.875).abs() < 1e-12);
        assert!((b.terms[1].weight - 2.5).abs() < 1e-12);
        // h = (10·150 + 10·300) / 20 = 225 s; speed = 300 / 525
        assert!((b.terms[2].value - 300.0 / 525.0).abs() < 1e-12);
    }
}
