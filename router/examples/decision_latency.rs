//! Prints decision latency percentiles on the benchmark population
//! (10,000 agents, 200 queues, 100,000 waiting contacts), per strategy.
//!
//! ```text
//! cargo run --release -p switchboard-router --example decision_latency [-- DECISIONS]
//! ```
//!
//! Each decision is one `Router::handle` call, timed alone; the clock moves
//! 1 ms between decisions and due timers (estimate refreshes, which only
//! run on `Tick`) are fired by `Tick` calls before each decision, as the
//! glue does. Those calls are timed and reported on their own line.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../benches/support/population.rs"]
mod population;
#[path = "../benches/support/rng.rs"]
mod rng;

use std::time::{Duration, Instant};

use population::Population;

fn percentiles(name: &str, mut v: Vec<Duration>) {
    v.sort_unstable();
    let p = |q: f64| {
        let i = ((v.len() as f64 * q).ceil() as usize).clamp(1, v.len()) - 1;
        v[i].as_secs_f64() * 1e6
    };
    println!(
        "  {name:<18} n={:<7} p50 {:>7.2} µs  p90 {:>7.2} µs  p99 {:>7.2} µs  p99.9 {:>8.2} µs  max {:>9.2} µs",
        v.len(),
        p(0.5),
        p(0.9),
        p(0.99),
        p(0.999),
        p(1.0),
    );
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000);
    println!(
        "population: {} agents, {} queues, {} waiting contacts; {n} decisions of each kind",
        population::AGENTS,
        population::QUEUES,
        population::WAITING
    );
    for (name, strategy) in population::strategies() {
        let t = Instant::now();
        let mut pop = Population::build(&strategy, 42);
        println!(
            "{name}: built in {:.1} s, {} waiting",
            t.elapsed().as_secs_f64(),
            pop.waiting()
        );
        let mut ticks = Vec::new();
        let mut timed_tick = |pop: &mut Population| {
            pop.step();
            while pop.due() {
                let t = Instant::now();
                pop.tick_once();
                ticks.push(t.elapsed());
            }
        };
        let mut free = Vec::with_capacity(n);
        let mut arrival = Vec::with_capacity(n);
        let mut enqueue = Vec::with_capacity(n);
        for _ in 0..n {
            timed_tick(&mut pop);
            let (i, input) = pop.prepare_free_agent();
            let t = Instant::now();
            let out = pop.handle(input);
            free.push(t.elapsed());
            pop.restore_free_agent(i, out);

            timed_tick(&mut pop);
            let input = pop.prepare_arrival();
            let t = Instant::now();
            let out = pop.handle(input);
            arrival.push(t.elapsed());
            pop.restore_arrival(out);

            timed_tick(&mut pop);
            let input = pop.prepare_enqueue();
            let t = Instant::now();
            let out = pop.handle(input.clone());
            enqueue.push(t.elapsed());
            drop(out);
            pop.restore_enqueue(&input);
        }
        percentiles("free_agent", free);
        percentiles("arrival_match", arrival);
        percentiles("arrival_enqueue", enqueue);
        if !ticks.is_empty() {
            percentiles("tick (estimates)", ticks);
        }
        println!("  still waiting: {}", pop.waiting());
    }
}
