//! A chat turn with the virtual agent, end to end: the customer's WebSocket
//! frame → writer (committed) → bus → virtual agent (understanding,
//! retrieval with the real MiniLM embeddings over the sample knowledge base,
//! decision, extractive answer) → writer → bus → the customer's WebSocket.
//!
//! `cargo bench -p switchboard-gateway --bench chat_turn` starts the real
//! binary (SQLite, in-process bus, `--bot extractive`), imports `nlu/eval/kb`
//! with `switchboard kb import --publish`, then asks questions one at a time
//! (a new conversation each) and prints the latency from the customer's send
//! to the bot's reply arriving on the customer's socket.
//!
//! Env: `BENCH_TURNS` (default 100), `BENCH_BOT` (`extractive`, `local`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_debug_implementations
)]

use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

const QUESTIONS: &[&str] = &[
    "How much does the World Pass cost per day?",
    "Is roaming in the EU included in my plan?",
    "When is my bill due?",
    "How do I reset my password?",
    "What are the opening hours of your shops?",
    "How long is the warranty on a phone?",
    "Can I keep my number when I switch to you?",
    "How do I activate an eSIM?",
    "世界通行证每天多少钱？",
    "账单什么时候到期？",
];

#[tokio::main]
async fn main() {
    let turns: usize = std::env::var("BENCH_TURNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let bot = std::env::var("BENCH_BOT").unwrap_or_else(|_| "extractive".into());
    let dir = tempfile::tempdir().unwrap();
    let bin = env!("CARGO_BIN_EXE_switchboard");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let kb = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../nlu/eval/kb");
    let env: Vec<(&str, String)> = vec![
        ("SWITCHBOARD_DATA_DIR", dir.path().display().to_string()),
        ("SWITCHBOARD_LISTEN", format!("127.0.0.1:{port}")),
        ("SWITCHBOARD_BOT", bot.clone()),
        (
            "RUST_LOG",
            std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
        ),
    ];
    let imported = std::process::Command::new(bin)
        .args(["kb", "import", "--publish"])
        .arg(&kb)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .status()
        .unwrap();
    assert!(imported.success(), "kb import failed");
    let mut child = std::process::Command::new(bin)
        .arg("serve")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .spawn()
        .unwrap();
    let base = format!("127.0.0.1:{port}");
    for _ in 0..300 {
        if reqwest::get(format!("http://{base}/healthz")).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let http = reqwest::Client::new();
    let mut latencies = Vec::with_capacity(turns);
    for n in 0..turns {
        let question = QUESTIONS[n % QUESTIONS.len()];
        let start: Value = http
            .post(format!("http://{base}/api/webchat/conversations"))
            .json(&json!({"display_name": "Bench"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let (id, token) = (
            start["conversation_id"].as_str().unwrap(),
            start["token"].as_str().unwrap(),
        );
        let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{base}/api/webchat/ws"))
            .await
            .unwrap();
        ws.send(Message::text(
            json!({"type": "hello", "conversation_id": id, "token": token, "after": 0}).to_string(),
        ))
        .await
        .unwrap();
        // Wait until the socket is ready before timing.
        loop {
            let Some(Ok(Message::Text(t))) = ws.next().await else {
                panic!("socket closed")
            };
            let v: Value = serde_json::from_str(&t).unwrap();
            if v["type"] == "ready" {
                break;
            }
        }
        let sent = Instant::now();
        ws.send(Message::text(
            json!({"type": "message", "text": question, "client_msg_id": format!("b{n}")})
                .to_string(),
        ))
        .await
        .unwrap();
        loop {
            let frame = tokio::time::timeout(Duration::from_secs(60), ws.next())
                .await
                .expect("bot reply within 60 s");
            let Some(Ok(Message::Text(t))) = frame else {
                panic!("socket closed")
            };
            let v: Value = serde_json::from_str(&t).unwrap();
            if v["type"] == "event"
                && v["envelope"]["event"]["type"] == "message_added"
                && v["envelope"]["event"]["from"]["kind"] == "bot"
            {
                latencies.push(sent.elapsed());
                break;
            }
        }
        let _ = ws.close(None).await;
    }
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 - 1.0) * p).round() as usize];
    println!(
        "chat turn with the virtual agent ({bot}), {} turns: p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        latencies.len(),
        pct(0.5).as_secs_f64() * 1e3,
        pct(0.9).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
        latencies.last().unwrap().as_secs_f64() * 1e3,
    );
    let _ = std::process::Command::new("kill")
        .arg(child.id().to_string())
        .status();
    let _ = child.wait();
}
