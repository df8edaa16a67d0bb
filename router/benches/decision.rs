//! Routing decision latency on 10,000 agents, 200 queues and 100,000
//! waiting contacts (see `support/population.rs`), per strategy:
//!
//! * `free_agent`: an agent's contact ends → the agent is offered the next
//!   waiting contact;
//! * `arrival_match`: a contact arrives on a queue with idle agents → offered;
//! * `arrival_enqueue`: a contact arrives, nobody is free → queued.
//!
//! Only the decision call is timed; restoring the population after it is not.
//! Criterion reports means; `examples/decision_latency.rs` prints percentiles.
#![allow(missing_docs)]

#[path = "support/population.rs"]
mod population;
#[path = "support/rng.rs"]
mod rng;

use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use population::Population;

fn bench(c: &mut Criterion) {
    for (name, strategy) in population::strategies() {
        let mut pop = Population::build(&strategy, 42);
        let mut group = c.benchmark_group(format!("decision/{name}"));
        group.sample_size(50);
        group.warm_up_time(Duration::from_secs(1));
        group.measurement_time(Duration::from_secs(3));
        group.bench_function("free_agent", |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    pop.step();
                    pop.tick();
                    let (i, input) = pop.prepare_free_agent();
                    let t = Instant::now();
                    let out = pop.handle(input);
                    total += t.elapsed();
                    pop.restore_free_agent(i, out);
                }
                total
            })
        });
        group.bench_function("arrival_match", |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    pop.step();
                    pop.tick();
                    let input = pop.prepare_arrival();
                    let t = Instant::now();
                    let out = pop.handle(input);
                    total += t.elapsed();
                    pop.restore_arrival(out);
                }
                total
            })
        });
        group.bench_function("arrival_enqueue", |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    pop.step();
                    pop.tick();
                    let input = pop.prepare_enqueue();
                    let t = Instant::now();
                    let out = pop.handle(input.clone());
                    total += t.elapsed();
                    drop(out);
                    pop.restore_enqueue(&input);
                }
                total
            })
        });
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
