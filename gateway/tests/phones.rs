//! Agents' SIP phones on the gateway's registrar: an admin gives an agent a
//! SIP account, a real softphone (Debian `baresip`) registers with its
//! secret, and `/api/phones` shows where the phone is. A wrong secret, a
//! revoked account and a deactivated user are refused. Runs on SQLite + the
//! in-process bus and on PostgreSQL + JetStream.
//!
//! With `CI=true` a missing baresip fails; otherwise the test prints a loud
//! SKIPPED line and passes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use common::*;
use serde_json::{Value, json};
use switchboard_gateway::auth::Role;
use switchboard_gateway::config::BotMode;

fn baresip_present() -> bool {
    tool_present("baresip", "-h", "baresip", "phone registration")
}

/// A running softphone with one account; killed on drop.
struct Phone {
    child: tokio::process::Child,
    _dir: tempfile::TempDir,
}

impl Phone {
    /// baresip without audio devices or UI, registering `user` with `secret`
    /// in the realm the registrar challenges with. Its own SIP port is
    /// chosen free, but another process may take it before baresip binds
    /// it: a phone that exits at once with "Address already in use" is
    /// started again on another port.
    async fn start(registrar: SocketAddr, user: &str, secret: &str) -> Self {
        for _ in 0..5 {
            let dir = tempfile::tempdir().unwrap();
            write_config(dir.path(), registrar, user, secret);
            let mut child = tokio::process::Command::new("baresip")
                .arg("-f")
                .arg(dir.path())
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .expect("baresip starts");
            tokio::time::sleep(Duration::from_millis(300)).await;
            if child.try_wait().unwrap().is_none() {
                return Self { child, _dir: dir };
            }
            let out = child.wait_with_output().await.unwrap();
            let log = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(
                log.contains("Address already in use"),
                "baresip exited: {log}"
            );
            eprintln!("baresip's port was taken meanwhile; starting it on another");
        }
        panic!("no free port for baresip in five tries");
    }

    /// Stops the phone and returns what it printed.
    async fn stop(mut self) -> String {
        let _ = self.child.start_kill();
        let out = self.child.wait_with_output().await.unwrap();
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }
}

fn write_config(dir: &Path, registrar: SocketAddr, user: &str, secret: &str) {
    let sip_port = free_sip_port();
    std::fs::write(
        dir.join("config"),
        format!(
            "poll_method\t\tpoll\nsip_listen\t\t127.0.0.1:{sip_port}\nsip_transports\t\tudp\n\
             audio_player\t\tnone\naudio_source\t\tausine,440\naudio_alert\t\tnone\n\
             module_path\t\t/usr/lib/baresip/modules\nmodule\t\t\tg711.so\nmodule\t\t\tausine.so\n\
             module_app\t\taccount.so\n"
        ),
    )
    .unwrap();
    // The address of record is user@switchboard (the default sip_domain);
    // the outbound proxy is the gateway's SIP listener.
    std::fs::write(
        dir.join("accounts"),
        format!(
            "<sip:{user}@switchboard;transport=udp>;auth_user={user};auth_pass={secret};outbound=\"sip:{registrar};transport=udp\";regint=60\n"
        ),
    )
    .unwrap();
    std::fs::write(dir.join("contacts"), "").unwrap();
}

/// The registrations `/api/phones` lists for `username`.
async fn registrations(c: &Client, username: &str) -> Vec<Value> {
    let (s, body) = c.get("/api/phones").await;
    assert_eq!(s, 200, "{body}");
    body["phones"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["account"]["username"] == username)
        .map(|p| p["registrations"].as_array().unwrap().clone())
        .unwrap_or_default()
}

/// Waits up to `secs` for `username` to be registered (or not).
async fn wait_registered(c: &Client, username: &str, want: bool, secs: u64) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let r = registrations(c, username).await;
        if r.is_empty() != want || tokio::time::Instant::now() > deadline {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn agent_phone_registers_with_its_own_sip_secret() {
    phone_registration(Stack::Embedded).await;
}

#[tokio::test]
async fn agent_phone_registers_on_postgres_and_nats() {
    if scaled_available() {
        phone_registration(Stack::Scaled).await;
    }
}

async fn phone_registration(stack: Stack) {
    if !baresip_present() {
        return;
    }
    let sip: SocketAddr = format!("127.0.0.1:{}", free_sip_port()).parse().unwrap();
    let server = TestServer::start_configured(stack, |c| {
        c.sip_listen = Some(sip);
        c.bot = BotMode::Off;
    })
    .await;
    server.add_user("admin@example.com", Role::Admin).await;
    server.add_user("sup@example.com", Role::Supervisor).await;
    let nico = server.add_user("nico@example.com", Role::Agent).await;
    let ana = server.add_user("ana@example.com", Role::Agent).await;
    let admin = server.staff("admin@example.com").await;
    let sup = server.staff("sup@example.com").await;
    let agent = server.staff("nico@example.com").await;

    // Only admins set SIP accounts; usernames are checked and unique.
    let (s, _) = agent
        .put(&format!("/api/users/{nico}/sip"), json!({}))
        .await;
    assert_eq!(s, 403);
    let (s, body) = admin
        .put(
            &format!("/api/users/{nico}/sip"),
            json!({"username": "10 01"}),
        )
        .await;
    assert_eq!(s, 422, "{body}");
    let (s, _) = admin
        .put(
            "/api/users/0190f0f0-0000-7000-8000-000000000000/sip",
            json!({}),
        )
        .await;
    assert_eq!(s, 404);
    let (s, acct) = admin
        .put(
            &format!("/api/users/{nico}/sip"),
            json!({"username": "1001"}),
        )
        .await;
    assert_eq!(s, 200, "{acct}");
    assert_eq!(acct["account"]["username"], "1001");
    assert_eq!(acct["account"]["realm"], "switchboard");
    assert_eq!(acct["aor"], "sip:1001@switchboard");
    assert_eq!(acct["registrar"], sip.to_string());
    let secret = acct["secret"].as_str().unwrap().to_string();
    assert_eq!(secret.len(), 20);
    let (s, body) = admin
        .put(
            &format!("/api/users/{ana}/sip"),
            json!({"username": "1001"}),
        )
        .await;
    assert_eq!(s, 409, "{body}");
    // Without a username, Ana gets her e-mail's local part.
    let (s, ana_acct) = admin.put(&format!("/api/users/{ana}/sip"), json!({})).await;
    assert_eq!(s, 200, "{ana_acct}");
    assert_eq!(ana_acct["account"]["username"], "ana");
    // The secret is never stored in clear.
    let db = server.db().await;
    let creds = db.sip_credentials().await.unwrap();
    assert!(
        creds
            .iter()
            .all(|(_, _, ha1)| ha1.len() == 32 && ha1 != &secret)
    );
    db.close().await;

    // Nico's phone registers with his secret; supervisors see where it is.
    let phone = Phone::start(sip, "1001", &secret).await;
    let regs = wait_registered(&sup, "1001", true, 15).await;
    if regs.is_empty() {
        panic!("not registered:\n{}", phone.stop().await);
    }
    assert_eq!(regs.len(), 1, "{regs:?}");
    let r = &regs[0];
    assert_eq!(r["aor"], "1001@switchboard");
    assert_eq!(r["transport"], "udp");
    assert!(
        r["contact"].as_str().unwrap().starts_with("sip:1001"),
        "{r}"
    );
    assert!(
        r["source"].as_str().unwrap().starts_with("127.0.0.1:"),
        "{r}"
    );
    let (s, list) = sup.get("/api/phones").await;
    assert_eq!(s, 200);
    let mine = list["phones"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["account"]["username"] == "1001")
        .unwrap();
    assert_eq!(mine["name"], "nico");
    assert_eq!(mine["account"]["user_id"], nico.as_str());
    let (s, _) = agent.get("/api/phones").await;
    assert_eq!(s, 403, "agents do not see everyone's phones");

    // Revoking the account forgets the registration and refuses the phone.
    let (s, _) = admin.delete(&format!("/api/users/{nico}/sip")).await;
    assert_eq!(s, 204);
    assert!(registrations(&sup, "1001").await.is_empty());
    let (s, _) = admin.delete(&format!("/api/users/{nico}/sip")).await;
    assert_eq!(s, 404);
    phone.stop().await;
    let again = Phone::start(sip, "1001", &secret).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let log = again.stop().await;
    assert!(registrations(&sup, "1001").await.is_empty(), "{log}");
    assert!(log.contains("403") || log.contains("401"), "{log}");

    // A wrong secret is refused.
    let wrong = Phone::start(sip, "ana", "not-the-secret").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let log = wrong.stop().await;
    assert!(registrations(&sup, "ana").await.is_empty(), "{log}");
    assert!(log.contains("403") || log.contains("401"), "{log}");

    // A deactivated user's phone is refused even with the right secret.
    let ana_secret = ana_acct["secret"].as_str().unwrap();
    let (s, _) = admin
        .patch(&format!("/api/users/{ana}"), json!({"active": false}))
        .await;
    assert_eq!(s, 200);
    let off = Phone::start(sip, "ana", ana_secret).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let log = off.stop().await;
    assert!(registrations(&sup, "ana").await.is_empty(), "{log}");

    // Re-activated, the same secret works again.
    let (s, _) = admin
        .patch(&format!("/api/users/{ana}"), json!({"active": true}))
        .await;
    assert_eq!(s, 200);
    let on = Phone::start(sip, "ana", ana_secret).await;
    let regs = wait_registered(&sup, "ana", true, 15).await;
    let log = on.stop().await;
    assert_eq!(regs.len(), 1, "{log}");
}
