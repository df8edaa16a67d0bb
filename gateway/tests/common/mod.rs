//! Test harness: a real Switchboard server in-process on a free port, backed
//! by SQLite (temp dir) or a fresh PostgreSQL database, with the in-process
//! or JetStream bus. PostgreSQL/NATS tests are mandatory with `CI=true` and
//! skipped loudly otherwise.
#![allow(dead_code, clippy::unwrap_used)]

use std::net::SocketAddr;
use std::path::PathBuf;

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use switchboard_gateway::auth::Role;
use switchboard_gateway::config::{BusKind, Config};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::Message;

pub const PASSWORD: &str = "correct horse battery";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stack {
    /// SQLite + in-process bus (the embedded default).
    Embedded,
    /// PostgreSQL + NATS JetStream (scale-out).
    Scaled,
}

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

fn reachable(addr: &str) -> bool {
    std::net::TcpStream::connect_timeout(&addr.parse().unwrap(), std::time::Duration::from_secs(1))
        .is_ok()
}

/// Whether the scaled stack's services are up; panics in CI when they are not.
pub fn scaled_available() -> bool {
    let pg = reachable("127.0.0.1:5432");
    let nats = reachable("127.0.0.1:4222");
    if pg && nats {
        return true;
    }
    let msg = format!(
        "PostgreSQL at 127.0.0.1:5432 reachable: {pg}; NATS at 127.0.0.1:4222 reachable: {nats}"
    );
    if ci() {
        panic!("CI=true requires PostgreSQL and NATS JetStream: {msg}");
    }
    eprintln!(
        "\n*** SKIPPED (PostgreSQL + NATS test): {msg}. Set CI=true to make this a failure. ***\n"
    );
    false
}

/// Creates a fresh PostgreSQL database and returns its URL.
pub async fn fresh_postgres() -> String {
    use sqlx::Executor;
    sqlx::any::install_default_drivers();
    let name = format!("sb_test_{}", uuid::Uuid::new_v4().simple());
    let admin = sqlx::AnyPool::connect("postgres://postgres@127.0.0.1:5432/postgres")
        .await
        .unwrap();
    admin
        .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .await
        .unwrap();
    admin.close().await;
    format!("postgres://postgres@127.0.0.1:5432/{name}")
}

pub struct TestServer {
    pub addr: SocketAddr,
    pub config: Config,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    _dir: Option<std::sync::Arc<tempfile::TempDir>>,
}

impl TestServer {
    pub fn config_for(
        stack: Stack,
        data_dir: PathBuf,
        database_url: Option<String>,
        stream: &str,
    ) -> Config {
        let base = Config {
            data_dir,
            shutdown_grace_secs: 5,
            ..Config::default()
        };
        match stack {
            Stack::Embedded => base,
            Stack::Scaled => Config {
                database_url,
                bus: BusKind::Nats,
                nats_stream: stream.to_string(),
                ..base
            },
        }
    }

    /// A new server on a new, empty store.
    pub async fn start(stack: Stack) -> Self {
        Self::start_configured(stack, |_| {}).await
    }

    /// Like [`TestServer::start`], with configuration changes.
    pub async fn start_configured(stack: Stack, change: impl FnOnce(&mut Config)) -> Self {
        let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
        let (url, stream) = match stack {
            Stack::Embedded => (None, String::new()),
            Stack::Scaled => (
                Some(fresh_postgres().await),
                format!("SBT_{}", uuid::Uuid::new_v4().simple()),
            ),
        };
        let mut config = Self::config_for(stack, dir.path().to_path_buf(), url, &stream);
        change(&mut config);
        Self::start_with(config, Some(dir)).await
    }

    /// A server on an existing configuration (restart, second node).
    pub async fn start_with(
        config: Config,
        dir: Option<std::sync::Arc<tempfile::TempDir>>,
    ) -> Self {
        if std::env::var("RUST_LOG").is_ok() {
            let _ = tracing_subscriber::fmt()
                .with_test_writer()
                .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
                .try_init();
        }
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let cfg = config.clone();
        let task = tokio::spawn(async move {
            switchboard_gateway::serve_on(listener, cfg, async move {
                let _ = stopped.await;
            })
            .await
            .expect("server failed");
        });
        // Wait until it answers.
        let http = reqwest::Client::new();
        for _ in 0..200 {
            if http
                .get(format!("http://{addr}/healthz"))
                .send()
                .await
                .is_ok()
            {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        Self {
            addr,
            config,
            stop: Some(stop),
            task: Some(task),
            _dir: dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn ws_url(&self, path: &str) -> String {
        format!("ws://{}{}", self.addr, path)
    }

    /// Graceful stop (as SIGTERM would).
    pub async fn stop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            t.await.unwrap();
        }
    }

    /// Stops and starts again on the same store (new port).
    /// Another node on the same database and bus, with a data directory of its own.
    pub async fn second_node(&self) -> Self {
        let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
        let config = Config {
            data_dir: dir.path().to_path_buf(),
            ..self.config.clone()
        };
        Self::start_with(config, Some(dir)).await
    }

    pub async fn restart(mut self) -> Self {
        self.stop().await;
        let dir = self._dir.take();
        Self::start_with(self.config.clone(), dir).await
    }

    pub async fn db(&self) -> switchboard_gateway::db::Db {
        switchboard_gateway::open_db(&self.config).await.unwrap()
    }

    pub async fn add_user(&self, email: &str, role: Role) -> String {
        let db = self.db().await;
        let u = switchboard_gateway::api::users::create_user(
            &db,
            email,
            email.split('@').next().unwrap(),
            role,
            PASSWORD,
        )
        .await
        .unwrap();
        db.close().await;
        u.id.to_string()
    }

    pub fn client(&self) -> Client {
        Client {
            http: reqwest::Client::builder()
                .cookie_store(true)
                .build()
                .unwrap(),
            base: format!("http://{}", self.addr),
            csrf: None,
            bearer: None,
        }
    }

    /// Logged-in staff client.
    pub async fn staff(&self, email: &str) -> Client {
        let mut c = self.client();
        let (status, body) = c
            .post(
                "/api/auth/login",
                json!({"email": email, "password": PASSWORD}),
            )
            .await;
        assert_eq!(status, 200, "login {email}: {body}");
        c.csrf = Some(body["csrf_token"].as_str().unwrap().to_string());
        c
    }

    /// A customer who started a web chat: (client with bearer token, conversation id, token).
    pub async fn customer(&self, name: &str) -> (Client, String, String) {
        let mut c = self.client();
        let (status, body) = c
            .post("/api/webchat/conversations", json!({"display_name": name}))
            .await;
        assert_eq!(status, 201, "{body}");
        let id = body["conversation_id"].as_str().unwrap().to_string();
        let token = body["token"].as_str().unwrap().to_string();
        c.bearer = Some(token.clone());
        (c, id, token)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

pub struct Client {
    pub http: reqwest::Client,
    pub base: String,
    pub csrf: Option<String>,
    pub bearer: Option<String>,
}

impl Client {
    fn req(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let mut r = self.http.request(method, format!("{}{}", self.base, path));
        if let Some(c) = &self.csrf {
            r = r.header("x-csrf-token", c);
        }
        if let Some(b) = &self.bearer {
            r = r.bearer_auth(b);
        }
        r
    }

    async fn finish(r: reqwest::RequestBuilder) -> (u16, Value) {
        let resp = r.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        let v = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, v)
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        Self::finish(self.req(reqwest::Method::GET, path)).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        Self::finish(self.req(reqwest::Method::POST, path).json(&body)).await
    }

    pub async fn put(&self, path: &str, body: Value) -> (u16, Value) {
        Self::finish(self.req(reqwest::Method::PUT, path).json(&body)).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> (u16, Value) {
        Self::finish(self.req(reqwest::Method::PATCH, path).json(&body)).await
    }

    pub async fn delete(&self, path: &str) -> (u16, Value) {
        Self::finish(self.req(reqwest::Method::DELETE, path)).await
    }

    /// Posts a body larger than the server accepts. The server answers 413
    /// as soon as it sees the length and closes the connection; when that
    /// happens before the client has written the whole body, the client sees
    /// a broken pipe instead of the answer, so the request is sent again
    /// (three tries) until the answer is read.
    pub async fn post_oversized(&self, path: &str, body: Vec<u8>) -> (u16, Value) {
        for _ in 0..3 {
            let sent = self
                .req(reqwest::Method::POST, path)
                .header("content-type", "application/json")
                .body(body.clone())
                .send()
                .await;
            match sent {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let text = resp.text().await.unwrap_or_default();
                    return (
                        status,
                        serde_json::from_str(&text).unwrap_or(Value::String(text)),
                    );
                }
                Err(e) if e.is_request() => eprintln!("oversized body cut off early ({e}); again"),
                Err(e) => panic!("{e}"),
            }
        }
        panic!("the server's answer to an oversized body was never read");
    }

    pub async fn post_raw(&self, path: &str, content_type: &str, body: Vec<u8>) -> (u16, Value) {
        Self::finish(
            self.req(reqwest::Method::POST, path)
                .header("content-type", content_type)
                .body(body),
        )
        .await
    }
}

pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens the customer socket and says hello; returns after `ready`.
pub async fn customer_ws(server: &TestServer, conversation: &str, token: &str, after: u64) -> Ws {
    let (mut ws, _) = tokio_tungstenite::connect_async(server.ws_url("/api/webchat/ws"))
        .await
        .unwrap();
    ws.send(Message::text(
        json!({"type": "hello", "conversation_id": conversation, "token": token, "after": after})
            .to_string(),
    ))
    .await
    .unwrap();
    let ready = next_frame(&mut ws).await;
    assert_eq!(ready["type"], "ready", "{ready}");
    ws
}

/// Next JSON frame (10 s timeout).
pub async fn next_frame(ws: &mut Ws) -> Value {
    loop {
        let msg = tokio::time::timeout(std::time::Duration::from_secs(10), ws.next())
            .await
            .expect("no frame within 10 s")
            .expect("socket ended")
            .expect("socket error");
        match msg {
            Message::Text(t) => return serde_json::from_str(&t).unwrap(),
            Message::Close(c) => return json!({"type": "closed", "frame": format!("{c:?}")}),
            _ => continue,
        }
    }
}

/// Collects `n` event frames (skipping typing and non-event frames), returning their envelopes.
pub async fn events(ws: &mut Ws, n: usize) -> Vec<Value> {
    let mut out = Vec::new();
    while out.len() < n {
        let f = next_frame(ws).await;
        if f["type"] == "event" && f["envelope"]["event"]["type"] != "typing" {
            out.push(f["envelope"].clone());
        } else if f["type"] == "closed" {
            panic!("socket closed after {} of {n} events", out.len());
        }
    }
    out
}

/// Asserts no further event frame arrives within 300 ms.
pub async fn quiet(ws: &mut Ws) {
    let r = tokio::time::timeout(std::time::Duration::from_millis(300), ws.next()).await;
    if let Ok(Some(Ok(Message::Text(t)))) = r {
        panic!("unexpected frame: {t}");
    }
}

/// The texts of the `message_added` events among `events`, in order.
pub fn texts(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["event"]["type"] == "message_added")
        .map(|e| e["event"]["text"].as_str().unwrap().to_string())
        .collect()
}

/// Runs a test body against both stacks: `embedded_*` always, `scaled_*` when services are there.
#[macro_export]
macro_rules! both_stacks {
    ($name:ident, $body:path) => {
        mod $name {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn embedded() {
                $body(Stack::Embedded).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn scaled() {
                if !scaled_available() {
                    return;
                }
                $body(Stack::Scaled).await;
            }
        }
    };
}

/// Whether a peer tool (sipp, baresip) is installed. With `CI=true` a
/// missing tool fails the test; otherwise it prints a loud SKIPPED line.
pub fn tool_present(command: &str, probe: &str, package: &str, what: &str) -> bool {
    let found = std::process::Command::new(command)
        .arg(probe)
        .output()
        .is_ok();
    if !found {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!(
                "{command} is required when CI=true: install Debian's {package} (scripts/setup --test)"
            );
        }
        eprintln!(
            "\n!!!!!!!! SKIPPED: {command} not installed (apt-get install {package}); {what} not tested !!!!!!!!\n"
        );
    }
    found
}

/// A free UDP port on loopback.
pub fn free_udp_port() -> u16 {
    let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    s.local_addr().unwrap().port()
}

/// A port free for both UDP and TCP: SIP listens on both (another test's HTTP
/// listener may hold the TCP side of a port whose UDP side is free).
pub fn free_sip_port() -> u16 {
    for _ in 0..50 {
        let p = free_udp_port();
        if std::net::TcpListener::bind(("127.0.0.1", p)).is_ok() {
            return p;
        }
    }
    panic!("no port free for UDP and TCP");
}
