//! Bus throughput: publish N events (in batches, as the gateway's publisher
//! does) while one subscriber reads them; prints publish rate, delivery rate
//! and publish-to-delivery latency for each backend.
//!
//! `cargo bench -p switchboard-bus --bench bus_throughput` (JetStream part needs
//! NATS at 127.0.0.1:4222). Env: `BENCH_EVENTS` (default 100000), `BENCH_BATCH` (default 64).
#![allow(clippy::unwrap_used, missing_debug_implementations)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use switchboard_bus::{
    AgentId, Bus, ConversationId, Envelope, Event, MemoryBus, NatsBus, NatsConfig, StartAt,
};

fn env_or(k: &str, d: usize) -> usize {
    std::env::var(k)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(d)
}

async fn run(name: &str, bus: Arc<dyn Bus>, events: usize, batch: usize) {
    let conversations: Vec<ConversationId> = (0..100).map(|_| ConversationId::new()).collect();
    let all: Vec<Envelope> = (0..events)
        .map(|i| {
            Envelope::new(
                conversations[i % conversations.len()],
                (i / conversations.len() + 1) as u64,
                Event::NoteAdded {
                    by: AgentId::new(),
                    text: "a realistic message of some sixty characters in length......".into(),
                },
            )
        })
        .collect();
    let mut sub = bus.subscribe(StartAt::Live).await.unwrap();
    let reader = tokio::spawn(async move {
        let mut lat = Vec::with_capacity(events);
        let mut n = 0;
        while n < events {
            let Ok(Some(Ok(d))) = tokio::time::timeout(Duration::from_secs(20), sub.next()).await
            else {
                break;
            };
            let ms = (chrono::Utc::now() - d.envelope.at)
                .num_microseconds()
                .unwrap_or(0) as f64
                / 1000.0;
            lat.push(ms);
            n += 1;
        }
        (n, Instant::now(), lat)
    });
    let start = Instant::now();
    for chunk in all.chunks(batch) {
        // Stamp the send time so latency is publish → delivery.
        let now = chrono::Utc::now();
        let stamped: Vec<Envelope> = chunk
            .iter()
            .cloned()
            .map(|mut e| {
                e.at = now;
                e
            })
            .collect();
        bus.publish_batch(&stamped).await.unwrap();
    }
    let published = start.elapsed();
    let (n, done, mut lat) = reader.await.unwrap();
    lat.sort_by(f64::total_cmp);
    let p = |q: f64| {
        lat.get(((lat.len() as f64 - 1.0) * q) as usize)
            .copied()
            .unwrap_or(f64::NAN)
    };
    println!(
        "{name:<10} {events:>8} events  publish {:>9.0}/s  delivered {:>9.0}/s  ({n} received)  latency p50 {:.2} ms  p99 {:.2} ms",
        events as f64 / published.as_secs_f64(),
        n as f64 / (done - start).as_secs_f64(),
        p(0.5),
        p(0.99)
    );
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let events = env_or("BENCH_EVENTS", 100_000);
        let batch = env_or("BENCH_BATCH", 64);
        println!("bus throughput, batches of {batch}, one subscriber");
        run("memory", Arc::new(MemoryBus::default()), events, batch).await;
        if std::net::TcpStream::connect("127.0.0.1:4222").is_ok() {
            let unique = ConversationId::new().to_string().replace('-', "");
            let bus = NatsBus::connect(NatsConfig {
                stream: format!("SB_BENCH_{unique}"),
                subject_prefix: format!("sbbench.{unique}"),
                max_age: Duration::from_secs(600),
                ..Default::default()
            })
            .await
            .unwrap();
            run("nats", Arc::new(bus.clone()), events.min(50_000), batch).await;
            let _ = bus.delete_stream().await;
        } else {
            println!("nats       skipped: no NATS at 127.0.0.1:4222");
        }
    });
}
