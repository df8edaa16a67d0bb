//! The web chat journey in headless Chromium against the real `switchboard`
//! binary: customer in the widget, agent in the inbox, a dropped connection,
//! stored-XSS attempts and a server restart mid-conversation — once on the
//! embedded stack (SQLite + in-process bus) and once on PostgreSQL + NATS JetStream.
//!
//! Needs Debian's `chromium` and `npm ci` in `tests/browser` (the README's test
//! command does both). With `CI=true` anything missing is a failure; elsewhere
//! the test says loudly that it skipped.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

const PASSWORD: &str = "correct horse battery";

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

fn skip(why: &str) -> bool {
    if ci() {
        panic!("CI=true requires it: {why}");
    }
    eprintln!("\n*** SKIPPED (browser journey): {why}. Set CI=true to make this a failure. ***\n");
    false
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The `switchboard` binary built alongside this test.
fn binary() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let dir = exe.parent()?.parent()?; // target/<profile>/deps/… → target/<profile>
    let bin = dir.join("switchboard");
    bin.exists().then_some(bin)
}

fn ready() -> Option<PathBuf> {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if !Path::new(&chromium).exists() {
        skip(&format!("{chromium} is missing (apt-get install chromium)"));
        return None;
    }
    if !root()
        .join("tests/browser/node_modules/playwright-core")
        .exists()
    {
        skip("tests/browser/node_modules is missing (cd tests/browser && npm ci)");
        return None;
    }
    match binary() {
        Some(b) => Some(b),
        None => {
            skip("the switchboard binary is not built (cargo build -p switchboard-gateway)");
            None
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn reachable(addr: &str) -> bool {
    std::net::TcpStream::connect_timeout(&addr.parse().unwrap(), std::time::Duration::from_secs(1))
        .is_ok()
}

fn journey(bin: &Path, extra_env: &[(&str, String)]) {
    let state = std::env::temp_dir().join(format!("sb-browser-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&state).unwrap();
    let port = free_port();
    let serve = root().join("tests/browser/serve.sh");
    let mut env: Vec<(&str, String)> = vec![
        ("SB_BIN", bin.display().to_string()),
        ("SB_STATE", state.display().to_string()),
        ("SB_PORT", port.to_string()),
        (
            "SWITCHBOARD_DATA_DIR",
            state.join("data").display().to_string(),
        ),
        // These journeys test chat transport and routing; the virtual agent has its own.
        ("SWITCHBOARD_BOT", "off".to_string()),
    ];
    env.extend_from_slice(extra_env);
    let run = |cmd: &mut Command| {
        for (k, v) in &env {
            cmd.env(k, v);
        }
        cmd.status().unwrap()
    };
    let added = run(Command::new(bin)
        .args([
            "user",
            "add",
            "--email",
            "agent@example.com",
            "--name",
            "Alex Agent",
            "--role",
            "agent",
        ])
        .env("SWITCHBOARD_PASSWORD", PASSWORD));
    assert!(added.success(), "user add failed");
    let admin = run(Command::new(bin)
        .args([
            "user",
            "add",
            "--email",
            "admin@example.com",
            "--name",
            "Ada Admin",
            "--role",
            "admin",
        ])
        .env("SWITCHBOARD_PASSWORD", PASSWORD));
    assert!(admin.success(), "admin add failed");
    assert!(
        run(Command::new(&serve).arg("start")).success(),
        "server did not start; see {}/server.log",
        state.display()
    );
    let status = run(Command::new("node")
        .arg("webchat.spec.mjs")
        .current_dir(root().join("tests/browser"))
        .env("SWITCHBOARD_URL", format!("http://127.0.0.1:{port}"))
        .env("AGENT_EMAIL", "agent@example.com")
        .env("AGENT_PASSWORD", PASSWORD)
        .env("ADMIN_EMAIL", "admin@example.com")
        .env("ADMIN_PASSWORD", PASSWORD)
        .env(
            "SWITCHBOARD_RESTART_CMD",
            format!("{} restart", serve.display()),
        ));
    let routing = run(Command::new("node")
        .arg("routing.spec.mjs")
        .current_dir(root().join("tests/browser"))
        .env("SWITCHBOARD_URL", format!("http://127.0.0.1:{port}"))
        .env("ADMIN_EMAIL", "admin@example.com")
        .env("ADMIN_PASSWORD", PASSWORD));
    let stopped = run(Command::new(&serve).arg("stop"));
    assert!(
        status.success(),
        "browser journey failed; server log: {}/server.log",
        state.display()
    );
    assert!(
        routing.success(),
        "routing browser journey failed; server log: {}/server.log",
        state.display()
    );
    assert!(stopped.success());
}

/// The knowledge base and the virtual agent in the browser (the bot is on here).
fn knowledge_journey(bin: &Path) {
    let state =
        std::env::temp_dir().join(format!("sb-browser-kb-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&state).unwrap();
    let port = free_port();
    let serve = root().join("tests/browser/serve.sh");
    let env: Vec<(&str, String)> = vec![
        ("SB_BIN", bin.display().to_string()),
        ("SB_STATE", state.display().to_string()),
        ("SB_PORT", port.to_string()),
        (
            "SWITCHBOARD_DATA_DIR",
            state.join("data").display().to_string(),
        ),
        ("SWITCHBOARD_BOT", "extractive".to_string()),
    ];
    let run = |cmd: &mut Command| {
        for (k, v) in &env {
            cmd.env(k, v);
        }
        cmd.status().unwrap()
    };
    for (email, name, role) in [
        ("kim@example.com", "Kim Knowledge", "knowledge_manager"),
        ("nia@example.com", "Nia Agent", "agent"),
    ] {
        let added = run(Command::new(bin)
            .args([
                "user", "add", "--email", email, "--name", name, "--role", role,
            ])
            .env("SWITCHBOARD_PASSWORD", PASSWORD));
        assert!(added.success(), "user add {email} failed");
    }
    assert!(
        run(Command::new(&serve).arg("start")).success(),
        "server did not start; see {}/server.log",
        state.display()
    );
    let status = run(Command::new("node")
        .arg("knowledge.spec.mjs")
        .current_dir(root().join("tests/browser"))
        .env("SWITCHBOARD_URL", format!("http://127.0.0.1:{port}"))
        .env("KM_EMAIL", "kim@example.com")
        .env("AGENT_EMAIL", "nia@example.com")
        .env("PASSWORD", PASSWORD));
    let stopped = run(Command::new(&serve).arg("stop"));
    assert!(
        status.success(),
        "knowledge browser journey failed; server log: {}/server.log",
        state.display()
    );
    assert!(stopped.success());
}

#[test]
fn knowledge_and_virtual_agent_journey() {
    let Some(bin) = ready() else { return };
    knowledge_journey(&bin);
}

#[test]
fn web_chat_journey_embedded() {
    let Some(bin) = ready() else { return };
    journey(&bin, &[]);
}

#[test]
fn web_chat_journey_postgres_nats() {
    let Some(bin) = ready() else { return };
    if !(reachable("127.0.0.1:5432") && reachable("127.0.0.1:4222")) {
        skip("PostgreSQL at 127.0.0.1:5432 and NATS at 127.0.0.1:4222");
        return;
    }
    let db = format!("sb_browser_{}", uuid::Uuid::new_v4().simple());
    let created = Command::new("psql")
        .args([
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-d",
            "postgres",
            "-c",
            &format!("CREATE DATABASE {db}"),
        ])
        .status()
        .expect("psql");
    assert!(created.success(), "could not create database {db}");
    journey(
        &bin,
        &[
            (
                "SWITCHBOARD_DATABASE_URL",
                format!("postgres://postgres@127.0.0.1:5432/{db}"),
            ),
            ("SWITCHBOARD_BUS", "nats".into()),
            (
                "SWITCHBOARD_NATS_STREAM",
                format!("SB_BROWSER_{}", uuid::Uuid::new_v4().simple()),
            ),
        ],
    );
}
