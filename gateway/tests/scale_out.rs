//! Scale-out behaviour: two gateway nodes on one PostgreSQL and one JetStream
//! stream, and a bus outage in the middle of a conversation.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;
use futures::SinkExt;
use serde_json::json;
use switchboard_gateway::auth::Role;
use switchboard_gateway::config::{BotMode, BusKind, Config};
use tokio_tungstenite::tungstenite::Message;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_serve_one_conversation() {
    if !scaled_available() {
        return;
    }
    // Transport only: the virtual agent would add its own replies.
    let node_a = TestServer::start_configured(Stack::Scaled, |c| c.bot = BotMode::Off).await;
    let node_b = node_a.second_node().await;
    node_a.add_user("a@x.io", Role::Agent).await;

    // The customer is connected to node B; the agent works on node A.
    let (customer, id, token) = node_b.customer("Two").await;
    let mut ws = customer_ws(&node_b, &id, &token, 1).await;
    let agent = node_a.staff("a@x.io").await;
    for t in ["from node A 1", "from node A 2"] {
        let (s, _) = agent
            .post(
                &format!("/api/conversations/{id}/messages"),
                json!({"text": t}),
            )
            .await;
        assert_eq!(s, 201);
    }
    // The auto-assignment is staff-only, so the customer sees exactly the two replies.
    let got = events(&mut ws, 2).await;
    assert_eq!(texts(&got), vec!["from node A 1", "from node A 2"]);
    quiet(&mut ws).await;
    // Customer writes through node B; node A's state sees it.
    let (s, _) = customer
        .post(
            &format!("/api/webchat/conversations/{id}/messages"),
            json!({"text": "via B", "client_msg_id": "b1"}),
        )
        .await;
    assert_eq!(s, 201);
    let (_, c) = agent.get(&format!("/api/conversations/{id}")).await;
    assert_eq!(c["last_message_preview"], "via B");
}

struct NatsServer {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl NatsServer {
    fn start(port: u16, dir: tempfile::TempDir) -> Self {
        let child = Command::new("/usr/sbin/nats-server")
            .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nats-server");
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Self { child, port, dir }
    }

    fn stop(mut self) -> (u16, tempfile::TempDir) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        (self.port, self.dir)
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The bus goes away mid-conversation: messages are still accepted (they are
/// stored), and once the bus is back every one of them reaches the watching
/// socket, in order, exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bus_outage_delays_but_loses_nothing() {
    if !std::path::Path::new("/usr/sbin/nats-server").exists() {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("CI=true requires /usr/sbin/nats-server (Debian package nats-server)");
        }
        eprintln!("\n*** SKIPPED: /usr/sbin/nats-server not installed ***\n");
        return;
    }
    let nats = NatsServer::start(free_port(), tempfile::tempdir().unwrap());
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let config = Config {
        data_dir: dir.path().to_path_buf(),
        bus: BusKind::Nats,
        nats_url: format!("nats://127.0.0.1:{}", nats.port),
        shutdown_grace_secs: 5,
        bot: BotMode::Off,
        ..Config::default()
    };
    let server = TestServer::start_with(config, Some(dir)).await;
    let (customer, id, token) = server.customer("Outage").await;
    let mut ws = customer_ws(&server, &id, &token, 0).await;
    assert_eq!(
        events(&mut ws, 1).await[0]["event"]["type"],
        "conversation_opened"
    );

    let (port, store) = nats.stop();
    for i in 0..5 {
        let (s, b) = customer
            .post(
                &format!("/api/webchat/conversations/{id}/messages"),
                json!({"text": format!("during outage {i}"), "client_msg_id": format!("o{i}")}),
            )
            .await;
        assert_eq!(s, 201, "accepted while the bus is down: {b}");
    }
    // Also over the socket.
    ws.send(Message::text(
        json!({"type": "message", "text": "socket during outage", "client_msg_id": "o5"})
            .to_string(),
    ))
    .await
    .unwrap();
    let nats = NatsServer::start(port, store);
    let mut got = Vec::new();
    while got.len() < 6 {
        let f = next_frame(&mut ws).await;
        if f["type"] == "event" {
            got.push(f["envelope"].clone());
        }
    }
    let mut want: Vec<String> = (0..5).map(|i| format!("during outage {i}")).collect();
    want.push("socket during outage".into());
    assert_eq!(texts(&got), want);
    let seqs: Vec<u64> = got.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (2..=7).collect::<Vec<_>>());
    quiet(&mut ws).await;
    drop(server);
    nats.stop();
}

/// The database goes away: requests get a clear 503 (and the socket a nack),
/// nothing half-stored; when it is back, the retried message is stored once
/// and every message that was acknowledged is there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_outage_is_refused_clearly_and_loses_nothing() {
    if !scaled_available() {
        return;
    }
    use sqlx::Executor;
    let url = fresh_postgres().await;
    let name = url.rsplit('/').next().unwrap().to_string();
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let config = Config {
        data_dir: dir.path().to_path_buf(),
        database_url: Some(url),
        bot: BotMode::Off,
        ..Config::default()
    };
    let server = TestServer::start_with(config, Some(dir)).await;
    let (customer, id, token) = server.customer("Dora").await;
    let path = format!("/api/webchat/conversations/{id}/messages");
    let (s, _) = customer
        .post(&path, json!({"text": "before", "client_msg_id": "d1"}))
        .await;
    assert_eq!(s, 201);
    let mut ws = customer_ws(&server, &id, &token, 2).await;

    let admin = sqlx::AnyPool::connect("postgres://postgres@127.0.0.1:5432/postgres")
        .await
        .unwrap();
    admin
        .execute(sqlx::AssertSqlSafe(format!(
            "ALTER DATABASE {name} ALLOW_CONNECTIONS false"
        )))
        .await
        .unwrap();
    admin
        .execute(sqlx::AssertSqlSafe(format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
        )))
        .await
        .unwrap();

    let (s, body) = customer
        .post(&path, json!({"text": "during", "client_msg_id": "d2"}))
        .await;
    assert_eq!(
        (s, body["error"]["code"].as_str()),
        (503, Some("store_unavailable")),
        "{body}"
    );
    ws.send(Message::text(
        json!({"type": "message", "text": "socket during", "client_msg_id": "d3"}).to_string(),
    ))
    .await
    .unwrap();
    let nack = loop {
        let f = next_frame(&mut ws).await;
        if f["type"] != "event" {
            break f;
        }
    };
    assert_eq!(
        (nack["type"].as_str(), nack["client_msg_id"].as_str()),
        (Some("nack"), Some("d3")),
        "{nack}"
    );

    admin
        .execute(sqlx::AssertSqlSafe(format!(
            "ALTER DATABASE {name} ALLOW_CONNECTIONS true"
        )))
        .await
        .unwrap();
    // The clients retry the same ids; each is stored exactly once.
    let (s, _) = customer
        .post(&path, json!({"text": "during", "client_msg_id": "d2"}))
        .await;
    assert_eq!(s, 201);
    let (s, again) = customer
        .post(&path, json!({"text": "during", "client_msg_id": "d2"}))
        .await;
    assert_eq!((s, again["duplicate"].as_bool()), (201, Some(true)));
    let (s, _) = customer
        .post(
            &path,
            json!({"text": "socket during", "client_msg_id": "d3"}),
        )
        .await;
    assert_eq!(s, 201);
    let (_, ev) = customer
        .get(&format!("/api/webchat/conversations/{id}/events"))
        .await;
    assert_eq!(
        texts(ev["events"].as_array().unwrap()),
        vec!["before", "during", "socket during"]
    );
}
