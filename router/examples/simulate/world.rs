//! The synthetic day: queues, traffic, agents and their true abilities,
//! all drawn from one seeded generator.

use std::time::Duration;

use switchboard_router::{ChannelKind, TopicPerformance};

use crate::rng::Rng;

pub const DAY_START_H: f64 = 7.0;
pub const DAY_END_H: f64 = 21.0;
pub const HOUR_MS: u64 = 3_600_000;
/// 2024-01-01, a Monday, 00:00 UTC.
pub const MIDNIGHT: u64 = 1_704_067_200_000;

pub struct QueueSpec {
    pub name: &'static str,
    pub kind: ChannelKind,
    pub skill: Option<(&'static str, u8)>,
    pub per_hour: f64,
    pub topics: [&'static str; 2],
    pub aht_s: f64,
    pub patience_s: f64,
}

pub const QUEUES: [QueueSpec; 5] = [
    QueueSpec {
        name: "billing-voice",
        kind: ChannelKind::Voice,
        skill: Some(("billing", 2)),
        per_hour: 100.0,
        topics: ["refund", "invoice"],
        aht_s: 280.0,
        patience_s: 150.0,
    },
    QueueSpec {
        name: "tech-voice",
        kind: ChannelKind::Voice,
        skill: Some(("tech", 3)),
        per_hour: 80.0,
        topics: ["outage", "setup"],
        aht_s: 380.0,
        patience_s: 180.0,
    },
    QueueSpec {
        name: "general-voice",
        kind: ChannelKind::Voice,
        skill: None,
        per_hour: 40.0,
        topics: ["other", "other"],
        aht_s: 220.0,
        patience_s: 150.0,
    },
    QueueSpec {
        name: "billing-chat",
        kind: ChannelKind::Chat,
        skill: Some(("billing", 2)),
        per_hour: 80.0,
        topics: ["refund", "invoice"],
        aht_s: 600.0,
        patience_s: 420.0,
    },
    QueueSpec {
        name: "tech-chat",
        kind: ChannelKind::Chat,
        skill: Some(("tech", 2)),
        per_hour: 70.0,
        topics: ["outage", "setup"],
        aht_s: 720.0,
        patience_s: 420.0,
    },
];
pub const TOPICS: [&str; 5] = ["refund", "invoice", "outage", "setup", "other"];
pub const AGENTS: usize = 64;

/// Arrival-rate multiplier over the day (hour of day, UTC).
pub fn intraday(h: f64) -> f64 {
    let peak = |c: f64, w: f64| (-(h - c) * (h - c) / (2.0 * w * w)).exp();
    0.35 + 0.75 * peak(10.5, 1.6) + 0.6 * peak(15.0, 1.8)
}

pub fn normal(rng: &mut Rng) -> f64 {
    let u1 = rng.unit().max(1e-12);
    let u2 = rng.unit();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

pub fn exp(rng: &mut Rng, mean: f64) -> f64 {
    -mean * (1.0 - rng.unit()).max(1e-12).ln()
}

pub struct ContactSpec {
    pub at: u64,
    pub queue: usize,
    pub topic: usize,
    pub tags: Vec<&'static str>,
    pub patience_ms: u64,
    pub work_z: f64,
    pub resolve_u: f64,
    pub csat_noise: f64,
}

pub struct AgentTruth {
    pub skills: Vec<(&'static str, u8)>,
    pub chat: u16,
    pub shift: (u64, u64),
    pub break_at: u64,
    /// Per topic: true resolution rate, CSAT, handle-time factor.
    pub truth: [(f64, f64, f64); 5],
    pub measured: [TopicPerformance; 5],
}

pub struct World {
    pub contacts: Vec<ContactSpec>,
    pub agents: Vec<AgentTruth>,
}

pub fn build_world(seed: u64) -> World {
    let mut rng = Rng::new(seed);
    let start = MIDNIGHT + (DAY_START_H * HOUR_MS as f64) as u64;
    let end = MIDNIGHT + (DAY_END_H * HOUR_MS as f64) as u64;
    let mut contacts = Vec::new();
    for (qi, q) in QUEUES.iter().enumerate() {
        // Poisson process by thinning at the peak rate.
        let max_rate = q.per_hour * 1.2 / HOUR_MS as f64;
        let mut t = start as f64;
        loop {
            t += exp(&mut rng, 1.0 / max_rate);
            if t >= end as f64 {
                break;
            }
            let h = (t - MIDNIGHT as f64) / HOUR_MS as f64;
            if rng.unit() * 1.2 > intraday(h) {
                continue;
            }
            let mut tags = Vec::new();
            if rng.unit() < 0.1 {
                tags.push("vip");
            }
            if rng.unit() < 0.12 {
                tags.push("churn_risk");
            }
            let topic_name = q.topics[rng.below(2)];
            contacts.push(ContactSpec {
                at: t as u64,
                queue: qi,
                topic: TOPICS.iter().position(|x| *x == topic_name).unwrap(),
                tags,
                patience_ms: (exp(&mut rng, q.patience_s) * 1000.0) as u64,
                work_z: normal(&mut rng),
                resolve_u: rng.unit(),
                csat_noise: 0.4 * normal(&mut rng),
            });
        }
    }
    contacts.sort_by_key(|c| c.at);
    let agents = (0..AGENTS)
        .map(|i| {
            let mut skills = Vec::new();
            if rng.unit() < 0.75 {
                skills.push(("billing", 1 + rng.below(5) as u8));
            }
            if rng.unit() < 0.6 {
                skills.push(("tech", 1 + rng.below(5) as u8));
            }
            let early = i % 2 == 0;
            let shift = if early { (7.0, 15.0) } else { (13.0, 21.0) };
            let ms = |h: f64| MIDNIGHT + (h * HOUR_MS as f64) as u64;
            let prof_for = |topic: usize| -> u8 {
                let s = match topic {
                    0 | 1 => "billing",
                    2 | 3 => "tech",
                    _ => return 3,
                };
                skills.iter().find(|(n, _)| *n == s).map_or(1, |(_, p)| *p)
            };
            let truth: [(f64, f64, f64); 5] = std::array::from_fn(|t| {
                let p = f64::from(prof_for(t)) - 3.0;
                let res = (0.62 + 0.07 * p + 0.1 * normal(&mut rng)).clamp(0.2, 0.98);
                let csat = (3.7 + 0.15 * p + 0.35 * normal(&mut rng)).clamp(1.5, 4.9);
                let speed = (1.0 - 0.06 * p) * (0.2 * normal(&mut rng)).exp();
                (res, csat, speed)
            });
            let measured = std::array::from_fn(|t| {
                let samples = 20 + rng.below(280) as u32;
                let noise = 1.0 / f64::from(samples).sqrt();
                let (res, csat, speed) = truth[t];
                let aht = QUEUES
                    .iter()
                    .find(|q| q.topics.contains(&TOPICS[t]))
                    .unwrap()
                    .aht_s;
                TopicPerformance {
                    resolution_rate: (res + 0.5 * noise * normal(&mut rng)).clamp(0.0, 1.0),
                    csat: (csat + 1.0 * noise * normal(&mut rng)).clamp(1.0, 5.0),
                    handle_time: Duration::from_secs_f64(
                        aht * speed * (1.0 + 0.3 * noise * normal(&mut rng)),
                    ),
                    samples,
                }
            });
            AgentTruth {
                skills,
                chat: 2 + rng.below(2) as u16,
                shift: (ms(shift.0), ms(shift.1)),
                break_at: ms(shift.0 + 3.5 + rng.unit()),
                truth,
                measured,
            }
        })
        .collect();
    World { contacts, agents }
}
