//! Replays one synthetic contact-centre day through the router, once per
//! strategy, on the same traffic, and prints service level, average speed
//! of answer, abandonment, occupancy, first-contact resolution and CSAT.
//!
//! ```text
//! cargo run --release -p switchboard-router --example simulate [-- SEED]
//! ```
//!
//! The day: 5 queues (billing, tech and general voice; billing and tech
//! chat) open 07:00–21:00, two shifts of agents with a break each, Poisson
//! arrivals whose rate follows an intraday curve, lognormal handle times,
//! exponential customer patience (callers hang up, chatters leave), agents
//! who now and then decline or miss an offer. Everything is drawn from one
//! seeded generator before the runs, so each strategy sees the same
//! contacts, patience and work content; only routing differs. An agent's
//! true first-contact resolution rate, CSAT and speed per topic depend on
//! proficiency plus individual variation; the router sees them only as
//! "measured" figures with sampling noise, as it would from analytics.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../benches/support/rng.rs"]
mod rng;
mod world;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::time::Duration;

use rng::Rng;
use switchboard_bus::{AgentId, Channel, ConversationId, Skill};
use switchboard_router::*;
use uuid::Uuid;
use world::{HOUR_MS, MIDNIGHT, QUEUES, QueueSpec, TOPICS, World, build_world, exp};

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Ev {
    Presence(usize, u8),
    Arrive(usize),
    Respond(OfferId, u8),
    End(usize),
    Abandon(usize),
    Sample,
}

#[derive(Default)]
struct Tally {
    answered: u64,
    resolved: u64,
    csat_sum: f64,
    busy_samples: u64,
    staffed_samples: u64,
}

fn agent_id(i: usize) -> AgentId {
    AgentId::from_uuid(Uuid::from_u128(0xA_0000 + i as u128))
}

fn contact_id(i: usize) -> ConversationId {
    ConversationId::from_uuid(Uuid::from_u128(0xC_0000 + i as u128))
}

fn queue_config(spec: &QueueSpec, strategy: &Strategy) -> QueueConfig {
    let mut q = QueueConfig::new(spec.name, spec.kind).strategy(strategy.clone());
    if let Some((s, p)) = spec.skill {
        q = q.require(Skill::new(s).unwrap(), p);
    }
    q.expected_handle_time = Duration::from_secs_f64(spec.aht_s);
    q.offer_timeout = Duration::from_secs(15);
    q.default_topic = Some(Topic::new(spec.topics[0]));
    match spec.kind {
        ChannelKind::Voice => {
            q.wrap_up = Duration::from_secs(30);
            q.sla = ServiceLevelTarget {
                fraction: 0.8,
                threshold: Duration::from_secs(20),
            };
        }
        ChannelKind::Chat => {
            q.wrap_up = Duration::from_secs(15);
            q.sla = ServiceLevelTarget {
                fraction: 0.8,
                threshold: Duration::from_secs(60),
            };
        }
    }
    if spec.name == "tech-voice" {
        q = q
            .overflow(
                Duration::from_secs(45),
                OverflowAction::RelaxProficiency { min_proficiency: 1 },
            )
            .overflow(
                Duration::from_secs(150),
                OverflowAction::MoveToQueue {
                    queue: QueueId::new("general-voice"),
                },
            );
    }
    if spec.kind == ChannelKind::Voice {
        q.overflow.push(OverflowRule {
            after: Duration::from_secs(600),
            action: OverflowAction::Voicemail,
        });
        if spec.name == "tech-voice" {
            q.overflow.pop();
        }
    }
    q.business_hours = Some(BusinessHours::weekdays(0, OpenInterval::hm(7, 0, 21, 0)));
    q.closed_action = ClosedAction::Voicemail;
    q
}

struct Run {
    router: Router,
    events: BinaryHeap<Reverse<(u64, u64, Ev)>>,
    seq: u64,
    offers: HashMap<OfferId, (usize, usize)>,
    assigned: Vec<Option<usize>>,
    tally: Tally,
    rng: Rng,
}

impl Run {
    fn at(&mut self, t: u64, ev: Ev) {
        self.seq += 1;
        self.events.push(Reverse((t, self.seq, ev)));
    }

    fn send(&mut self, now: u64, input: Input, world: &World) {
        let out = match self.router.handle(Timestamp(now), input) {
            Ok(out) => out,
            Err(RouterError::UnknownOffer(_) | RouterError::UnknownContact(_)) => return,
            Err(e) => panic!("router refused input: {e}"),
        };
        for o in out {
            self.react(now, o, world);
        }
    }

    fn react(&mut self, now: u64, o: Output, world: &World) {
        match o {
            Output::Offered {
                offer,
                contact,
                agent,
                ..
            } => {
                let c = contact_index(contact);
                let a = agent_index(agent);
                self.offers.insert(offer, (c, a));
                let u = self.rng.unit();
                let (delay, how) = if u < 0.03 {
                    (3_000, 1)
                } else if u < 0.045 {
                    (0, 2)
                } else {
                    ((1_500.0 + exp(&mut self.rng, 2_500.0)) as u64, 0)
                };
                if how != 2 {
                    self.at(now + delay, Ev::Respond(offer, how));
                }
            }
            Output::Assigned { contact, agent, .. } => {
                let (c, a) = (contact_index(contact), agent_index(agent));
                self.offers.retain(|_, (oc, _)| *oc != c);
                self.assigned[c] = Some(a);
                let spec = &world.contacts[c];
                let (res, csat, speed) = world.agents[a].truth[spec.topic];
                let aht = QUEUES[spec.queue].aht_s * speed;
                // Lognormal with mean `aht` and sigma 0.5.
                let handle = aht * (0.5 * spec.work_z - 0.125).exp();
                self.at(now + (handle * 1000.0) as u64, Ev::End(c));
                self.tally.answered += 1;
                let resolved = spec.resolve_u < res;
                self.tally.resolved += u64::from(resolved);
                let adj = if resolved { 0.5 } else { -1.0 };
                self.tally.csat_sum += (csat + adj + spec.csat_noise).clamp(1.0, 5.0);
            }
            Output::Requeued { contact, .. } | Output::OfferRevoked { contact, .. } => {
                let c = contact_index(contact);
                self.offers.retain(|_, (oc, _)| *oc != c);
            }
            Output::PresenceChanged { agent, .. } => {
                // An agent set away for missed offers comes back a minute later.
                self.at(now + 60_000, Ev::Presence(agent_index(agent), 0));
            }
            _ => {}
        }
    }
}

fn contact_index(c: ConversationId) -> usize {
    (c.as_uuid().as_u128() - 0xC_0000) as usize
}

fn agent_index(a: AgentId) -> usize {
    (a.as_uuid().as_u128() - 0xA_0000) as usize
}

struct Summary {
    arrivals: usize,
    counters: QueueCounters,
    voice: QueueCounters,
    chat: QueueCounters,
    tally: Tally,
}

fn add(a: &mut QueueCounters, b: &QueueCounters) {
    a.entered += b.entered;
    a.answered += b.answered;
    a.answered_in_threshold += b.answered_in_threshold;
    a.abandoned += b.abandoned;
    a.abandoned_in_threshold += b.abandoned_in_threshold;
    a.voicemail += b.voicemail;
    a.overflowed_out += b.overflowed_out;
    a.callback += b.callback;
    a.rejected += b.rejected;
    a.total_wait_ms += b.total_wait_ms;
}

fn simulate(world: &World, strategy: &Strategy, seed: u64) -> Summary {
    let mut run = Run {
        router: Router::new(RouterConfig::default()).unwrap(),
        events: BinaryHeap::new(),
        seq: 0,
        offers: HashMap::new(),
        assigned: vec![None; world.contacts.len()],
        tally: Tally::default(),
        rng: Rng::new(seed ^ 0x5EED),
    };
    let t0 = MIDNIGHT + 6 * HOUR_MS;
    for spec in &QUEUES {
        run.send(t0, Input::UpsertQueue(queue_config(spec, strategy)), world);
    }
    for (i, a) in world.agents.iter().enumerate() {
        let mut p = AgentProfile::new(agent_id(i)).capacity(1, a.chat);
        for (s, lvl) in &a.skills {
            p = p.skill(Skill::new(*s).unwrap(), *lvl);
        }
        for (t, m) in a.measured.iter().enumerate() {
            p.performance.insert(Topic::new(TOPICS[t]), *m);
        }
        run.send(t0, Input::UpsertAgent(p), world);
        run.at(a.shift.0, Ev::Presence(i, 0));
        run.at(a.break_at, Ev::Presence(i, 2));
        run.at(a.break_at + 15 * 60_000, Ev::Presence(i, 0));
        run.at(a.shift.1, Ev::Presence(i, 3));
    }
    for (i, c) in world.contacts.iter().enumerate() {
        run.at(c.at, Ev::Arrive(i));
        run.at(c.at + c.patience_ms, Ev::Abandon(i));
    }
    let mut t = t0;
    while t < MIDNIGHT + 22 * HOUR_MS {
        t += 30_000;
        run.at(t, Ev::Sample);
    }
    let mut off_shift = vec![true; world.agents.len()];
    loop {
        let next_ev = run.events.peek().map(|Reverse((t, _, _))| *t);
        let next_timer = run.router.next_deadline().map(|t| t.0);
        match (next_ev, next_timer) {
            (None, None) => break,
            (e, Some(r)) if e.is_none_or(|e| r < e) => {
                run.send(r, Input::Tick, world);
                continue;
            }
            _ => {}
        }
        let Some(Reverse((now, _, ev))) = run.events.pop() else {
            break;
        };
        match ev {
            Ev::Arrive(i) => {
                let c = &world.contacts[i];
                let q = &QUEUES[c.queue];
                let channel = if q.kind == ChannelKind::Voice {
                    Channel::Voice
                } else {
                    Channel::WebChat
                };
                let mut req = ContactRequest::new(contact_id(i), q.name, channel);
                req.topic = Some(Topic::new(TOPICS[c.topic]));
                req.tags = c.tags.iter().map(Tag::new).collect();
                run.send(now, Input::ContactArrived(req), world);
            }
            Ev::Respond(offer, how) => {
                if run.offers.contains_key(&offer) {
                    let input = if how == 0 {
                        Input::OfferAccepted { offer }
                    } else {
                        Input::OfferDeclined { offer }
                    };
                    run.send(now, input, world);
                }
            }
            Ev::End(i) => run.send(
                now,
                Input::ContactEnded {
                    contact: contact_id(i),
                },
                world,
            ),
            Ev::Abandon(i) => {
                if run.assigned[i].is_none() {
                    run.send(
                        now,
                        Input::ContactAbandoned {
                            contact: contact_id(i),
                        },
                        world,
                    );
                }
            }
            Ev::Presence(a, state) => {
                let (start, end) = world.agents[a].shift;
                let on_shift = now >= start && now < end;
                off_shift[a] = !on_shift;
                let presence = match state {
                    0 if on_shift => Presence::Available,
                    2 => Presence::Away {
                        reason: "break".into(),
                    },
                    _ => Presence::Offline,
                };
                run.send(
                    now,
                    Input::AgentPresence {
                        agent: agent_id(a),
                        presence,
                    },
                    world,
                );
            }
            Ev::Sample => {
                for s in run.router.agent_snapshots() {
                    let working = s.activity != Activity::Idle;
                    if s.presence == Presence::Available || working {
                        run.tally.staffed_samples += 1;
                        run.tally.busy_samples += u64::from(working);
                    }
                }
            }
        }
    }
    let mut counters = QueueCounters::default();
    let mut voice = QueueCounters::default();
    let mut chat = QueueCounters::default();
    for q in run.router.queue_snapshots() {
        add(&mut counters, &q.counters);
        add(
            if q.kind == ChannelKind::Voice {
                &mut voice
            } else {
                &mut chat
            },
            &q.counters,
        );
    }
    run.router
        .check_invariants()
        .expect("consistent at the end of the day");
    Summary {
        arrivals: world.contacts.len(),
        counters,
        voice,
        chat,
        tally: run.tally,
    }
}

fn pct(x: Option<f64>) -> String {
    x.map_or("-".into(), |x| format!("{:.1} %", 100.0 * x))
}

fn secs(d: Option<Duration>) -> String {
    d.map_or("-".into(), |d| format!("{:.1} s", d.as_secs_f64()))
}

fn main() {
    let seed: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(7);
    let world = build_world(seed);
    println!(
        "synthetic day (seed {seed}): {} contacts on {} queues, {} agents in two shifts, 07:00–21:00",
        world.contacts.len(),
        QUEUES.len(),
        world.agents.len()
    );
    println!(
        "| strategy | SL voice (80/20) | SL chat (80/60) | ASA voice | ASA chat | abandoned | overflowed | occupancy | FCR | CSAT |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let strategies = [
        ("longest idle", Strategy::LongestIdle),
        ("least occupied", Strategy::LeastOccupied),
        ("skills-weighted", Strategy::SkillsWeighted),
        (
            "predictive",
            Strategy::Predictive(PredictiveConfig::default()),
        ),
    ];
    for (name, strategy) in strategies {
        let s = simulate(&world, &strategy, seed);
        let t = &s.tally;
        println!(
            "| {name} | {} | {} | {} | {} | {:.1} % | {} | {:.1} % | {:.1} % | {:.2} |",
            pct(s.voice.service_level()),
            pct(s.chat.service_level()),
            secs(s.voice.average_speed_of_answer()),
            secs(s.chat.average_speed_of_answer()),
            100.0 * s.counters.abandoned as f64 / s.arrivals as f64,
            s.counters.overflowed_out,
            100.0 * t.busy_samples as f64 / t.staffed_samples.max(1) as f64,
            100.0 * t.resolved as f64 / t.answered.max(1) as f64,
            t.csat_sum / t.answered.max(1) as f64,
        );
    }
    println!(
        "SL: answered within threshold ÷ (answered + abandoned after threshold). Occupancy: share of \
         30-s samples in which a staffed agent held at least one contact (offer, conversation or wrap-up). \
         FCR and CSAT come from each agent's true per-topic figures, which the router never sees."
    );
}
