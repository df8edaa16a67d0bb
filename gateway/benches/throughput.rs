//! Message throughput and latency, end to end: customer WebSocket → writer
//! (persisted, group commit) → bus → hub → agent WebSocket.
//!
//! `cargo bench -p switchboard-gateway --bench throughput` runs the embedded
//! stack (SQLite + in-process bus) and, when PostgreSQL and NATS answer on
//! 127.0.0.1, the scaled stack. For each offered rate it prints the achieved
//! rate and the latency from the customer's send to the agent socket's
//! receipt (p50/p99/max). Load is open-loop (sent on a schedule, not on
//! acknowledgement), so queueing delay shows up in the latency rather than
//! hiding as a lower rate.
//!
//! Env: `BENCH_RATES` (comma-separated msgs/s, default "2000,5000,10000,20000"),
//! `BENCH_SECONDS` (per rate, default 5), `BENCH_CONVERSATIONS` (default 100),
//! `BENCH_STACKS` (`embedded,scaled`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_debug_implementations
)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

const PASSWORD: &str = "correct horse battery";

fn env_or<T: std::str::FromStr>(k: &str, d: T) -> T {
    std::env::var(k)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(d)
}

/// The server under test runs as its own process (the real binary), so the
/// load generator here does not share its async runtime.
struct Server {
    base: String,
    child: std::process::Child,
    _dir: tempfile::TempDir,
}

impl Server {
    fn stop(mut self) {
        let _ = std::process::Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

async fn start(scaled: bool) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let bin = env!("CARGO_BIN_EXE_switchboard");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut env: Vec<(&str, String)> = vec![
        ("SWITCHBOARD_DATA_DIR", dir.path().display().to_string()),
        ("SWITCHBOARD_LISTEN", format!("127.0.0.1:{port}")),
        (
            "RUST_LOG",
            std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
        ),
        // Transport only: the virtual agent's turns are measured by the chat_turn bench.
        ("SWITCHBOARD_BOT", "off".into()),
    ];
    if scaled {
        use sqlx::Executor;
        sqlx::any::install_default_drivers();
        let name = format!("sb_bench_{}", uuid::Uuid::new_v4().simple());
        let admin = sqlx::AnyPool::connect("postgres://postgres@127.0.0.1:5432/postgres")
            .await
            .unwrap();
        admin
            .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .await
            .unwrap();
        env.push((
            "SWITCHBOARD_DATABASE_URL",
            format!("postgres://postgres@127.0.0.1:5432/{name}"),
        ));
        env.push((
            "SWITCHBOARD_BUS",
            std::env::var("BENCH_SCALED_BUS").unwrap_or_else(|_| "nats".into()),
        ));
        env.push((
            "SWITCHBOARD_NATS_STREAM",
            format!("SB_BENCH_{}", uuid::Uuid::new_v4().simple()),
        ));
    }
    let status = std::process::Command::new(bin)
        .args([
            "user",
            "add",
            "--email",
            "bench@example.com",
            "--name",
            "Bench",
            "--role",
            "agent",
        ])
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env("SWITCHBOARD_PASSWORD", PASSWORD)
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let child = std::process::Command::new(bin)
        .arg("serve")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .spawn()
        .unwrap();
    let base = format!("127.0.0.1:{port}");
    for _ in 0..100 {
        if reqwest::get(format!("http://{base}/healthz")).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Server {
        base,
        child,
        _dir: dir,
    }
}

type Sent = Arc<Mutex<HashMap<String, Instant>>>;

async fn run_rate(
    server: &Server,
    conversations: usize,
    rate: u64,
    seconds: u64,
    round: usize,
) -> (f64, Vec<Duration>, usize) {
    let http = reqwest::Client::new();
    // Agent socket: receives every event (the inbox feed).
    let login = http
        .post(format!("http://{}/api/auth/login", server.base))
        .json(&json!({"email": "bench@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    let cookie = login.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let mut req = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
        format!("ws://{}/api/ws", server.base),
    )
    .unwrap();
    req.headers_mut().insert("cookie", cookie.parse().unwrap());
    let (agent_ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();

    // Customers.
    let mut sockets = Vec::new();
    for _ in 0..conversations {
        let r: Value = http
            .post(format!("http://{}/api/webchat/conversations", server.base))
            .json(&json!({}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let (mut ws, _) =
            tokio_tungstenite::connect_async(format!("ws://{}/api/webchat/ws", server.base))
                .await
                .unwrap();
        ws.send(Message::text(json!({"type": "hello", "conversation_id": r["conversation_id"], "token": r["token"], "after": 1}).to_string()))
            .await
            .unwrap();
        sockets.push(ws);
    }

    let sent: Sent = Arc::new(Mutex::new(HashMap::new()));
    let total = (rate * seconds) as usize;
    let latencies = Arc::new(Mutex::new(Vec::with_capacity(total)));

    // Receiver: agent socket.
    let recv_sent = sent.clone();
    let recv_lat = latencies.clone();
    let receiver = tokio::spawn(async move {
        let mut ws = agent_ws;
        let mut got = 0usize;
        let deadline = Instant::now() + Duration::from_secs(seconds + 30);
        while got < total && Instant::now() < deadline {
            let Ok(Some(Ok(Message::Text(t)))) =
                tokio::time::timeout(Duration::from_secs(10), ws.next()).await
            else {
                break;
            };
            let v: Value = serde_json::from_str(&t).unwrap();
            let Some(id) = v["envelope"]["event"]["client_msg_id"].as_str() else {
                continue;
            };
            if let Some(t0) = recv_sent.lock().unwrap().remove(id) {
                recv_lat.lock().unwrap().push(t0.elapsed());
                got += 1;
            }
        }
        got
    });

    // Senders: one task per customer socket, each on its share of the schedule.
    let per_socket = rate as f64 / conversations as f64;
    let interval = Duration::from_secs_f64(1.0 / per_socket);
    let started = Instant::now();
    let mut senders = Vec::new();
    for (i, ws) in sockets.into_iter().enumerate() {
        let sent = sent.clone();
        let n = total / conversations;
        senders.push(tokio::spawn(async move {
            let (mut tx, mut rx) = ws.split();
            // Drain acks and echoes so the socket never backs up.
            let drain = tokio::spawn(async move { while let Some(Ok(_)) = rx.next().await {} });
            let offset = interval.mul_f64(i as f64 / conversations as f64);
            let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + offset, interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            for k in 0..n {
                ticker.tick().await;
                let id = format!("r{round}-c{i}-m{k}");
                sent.lock().unwrap().insert(id.clone(), Instant::now());
                let frame = json!({"type": "message", "text": "bench message with a realistic length of some sixty characters", "client_msg_id": id});
                if tx.send(Message::text(frame.to_string())).await.is_err() {
                    break;
                }
            }
            tokio::time::sleep(Duration::from_secs(3)).await;
            drain.abort();
        }));
    }
    let got = receiver.await.unwrap();
    let elapsed = started.elapsed().as_secs_f64();
    for s in senders {
        s.abort();
    }
    let mut lat = std::mem::take(&mut *latencies.lock().unwrap());
    lat.sort();
    (got as f64 / elapsed, lat, total - got)
}

fn pct(v: &[Duration], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i].as_secs_f64() * 1000.0
}

fn main() {
    if std::env::var("RUST_LOG").is_ok() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .init();
    }
    // `cargo bench` passes --bench; nothing else to parse.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let rates: Vec<u64> = std::env::var("BENCH_RATES")
            .unwrap_or_else(|_| "2000,5000,10000,20000".into())
            .split(',')
            .filter_map(|s| s.trim().parse().ok())
            .collect();
        let seconds = env_or("BENCH_SECONDS", 5u64);
        let conversations = env_or("BENCH_CONVERSATIONS", 100usize);
        let stacks = std::env::var("BENCH_STACKS").unwrap_or_else(|_| "embedded,scaled".into());
        let services = std::net::TcpStream::connect("127.0.0.1:5432").is_ok() && std::net::TcpStream::connect("127.0.0.1:4222").is_ok();
        println!("throughput: customer socket → stored → bus → agent socket; {conversations} conversations, {seconds} s per rate, {} cores", std::thread::available_parallelism().map_or(0, |n| n.get()));
        println!("{:<22} {:>9} {:>11} {:>9} {:>9} {:>9} {:>7}", "stack", "offered/s", "achieved/s", "p50 ms", "p99 ms", "max ms", "lost");
        for stack in stacks.split(',') {
            let scaled = stack.trim() == "scaled";
            if scaled && !services {
                println!("{:<22} skipped: PostgreSQL/NATS not reachable on 127.0.0.1", "postgres+nats");
                continue;
            }
            let server = start(scaled).await;
            let name = if scaled { "postgres+nats" } else { "sqlite+memory" };
            for (round, &rate) in rates.iter().enumerate() {
                let (achieved, lat, lost) = run_rate(&server, conversations, rate, seconds, round).await;
                println!(
                    "{:<22} {:>9} {:>11.0} {:>9.2} {:>9.2} {:>9.2} {:>7}",
                    name,
                    rate,
                    achieved,
                    pct(&lat, 0.5),
                    pct(&lat, 0.99),
                    lat.last().map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0),
                    lost
                );
            }
            where_time_goes(&server.base).await;
            server.stop();
        }
    });
}

/// Prints the server's own view: writer batches (count, mean size, mean commit time).
async fn where_time_goes(base: &str) {
    let text = reqwest::get(format!("http://{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let metric = |name: &str| -> f64 {
        text.lines()
            .filter(|l| l.starts_with(name) && !l.contains("{le="))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    let batches = metric("switchboard_writer_batch_seconds_count");
    let batch_secs = metric("switchboard_writer_batch_seconds_sum");
    let events = metric("switchboard_events_appended_total");
    let published = metric("switchboard_bus_published_total");
    let retries = metric("switchboard_bus_publish_retries_total");
    let overflows = metric("switchboard_publisher_overflows_total");
    let gaps = metric("switchboard_ws_gap_fills_total");
    println!(
        "    bus: {published:.0} events published ({retries:.0} retries, {overflows:.0} outbox overflows); {gaps:.0} socket gap fills from the database"
    );
    println!(
        "    writer: {batches:.0} batches, {:.1} events/batch, {:.2} ms/batch mean",
        events / batches.max(1.0),
        1000.0 * batch_secs / batches.max(1.0),
    );
}
