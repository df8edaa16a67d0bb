//! Interop with a real SIP phone: baresip (Debian package `baresip`)
//! registers to a [`VoiceServer`] whose registrar requires digest
//! authentication, the way an agent's softphone registers.
//!
//! Here the phone registers against the bare voice server with
//! [`StaticCredentials`]; `gateway/tests/phones.rs` registers it against the
//! gateway with an agent's own SIP account.
//!
//! With `CI=true` a missing baresip fails the test; otherwise the test prints
//! a loud SKIPPED line and passes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use switchboard_voice::server::{ServerConfig, ServerEvent, VoiceServer};
use switchboard_voice::sip::auth::StaticCredentials;

fn baresip_present() -> bool {
    let found = std::process::Command::new("baresip")
        .arg("-h")
        .output()
        .is_ok();
    if !found {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!(
                "baresip is required when CI=true: apt-get install baresip (scripts/setup --test)"
            );
        }
        eprintln!(
            "\n!!!!!!!! SKIPPED: baresip not installed (apt-get install baresip); interop test not run !!!!!!!!\n"
        );
    }
    found
}

fn free_udp_port() -> u16 {
    let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    s.local_addr().unwrap().port()
}

/// A baresip config dir: no audio device, no user interface, one account.
fn baresip_config(dir: &std::path::Path, registrar_port: u16, password: &str) {
    // baresip binds its SIP port for TCP too: take one free for both.
    let sip_port = (0..50)
        .map(|_| free_udp_port())
        .find(|&p| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok())
        .expect("a port free for UDP and TCP");
    std::fs::write(
        dir.join("config"),
        format!(
            "poll_method\t\tpoll\n\
             sip_listen\t\t127.0.0.1:{sip_port}\n\
             sip_transports\t\tudp\n\
             audio_player\t\tnone\n\
             audio_source\t\tausine,440\n\
             audio_alert\t\tnone\n\
             module_path\t\t/usr/lib/baresip/modules\n\
             module\t\t\tg711.so\n\
             module\t\t\tausine.so\n\
             module_app\t\taccount.so\n"
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("accounts"),
        format!(
            "<sip:agent1001@127.0.0.1:{registrar_port};transport=udp>;auth_user=agent1001;auth_pass={password};regint=60\n"
        ),
    )
    .unwrap();
    std::fs::write(dir.join("contacts"), "").unwrap();
}

async fn registration(password: &str) -> (Vec<ServerEvent>, String) {
    let mut cfg = ServerConfig::local("127.0.0.1:0".parse().unwrap());
    let base = (20_000 + (free_udp_port() % 20_000)) & !1;
    cfg.rtp_ports = base..base + 20;
    cfg.tcp = false;
    cfg.endpoint.credentials = Some(Arc::new(StaticCredentials(vec![(
        "agent1001".into(),
        "s3cret".into(),
    )])));
    let (server, mut events) = VoiceServer::start(cfg).await.unwrap();
    let port = server.local_addr().port();
    let dir = tempfile::tempdir().unwrap();
    baresip_config(dir.path(), port, password);
    let mut child = tokio::process::Command::new("baresip")
        .arg("-f")
        .arg(dir.path())
        .args(["-t", "4"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("baresip starts");
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(4);
    while let Ok(Some(ev)) = tokio::time::timeout_at(deadline, events.recv()).await {
        let done = matches!(ev, ServerEvent::Registered { .. });
        seen.push(ev);
        if done {
            break;
        }
    }
    let _ = child.start_kill();
    let out = child.wait_with_output().await.unwrap();
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (seen, log)
}

#[tokio::test]
async fn baresip_registers_with_digest_auth() {
    if !baresip_present() {
        return;
    }
    let (events, log) = registration("s3cret").await;
    let binding = events.iter().find_map(|e| match e {
        ServerEvent::Registered { aor, binding } => Some((aor.clone(), binding.clone())),
        _ => None,
    });
    let (aor, binding) = binding.unwrap_or_else(|| panic!("no registration: {events:#?}\n{log}"));
    assert_eq!(aor, "agent1001@127.0.0.1");
    assert!(
        // baresip's contact user is the account user plus an instance suffix.
        binding.contact.starts_with("sip:agent1001") && binding.contact.contains("@127.0.0.1:"),
        "{}",
        binding.contact
    );
    assert!(binding.source.ip().is_loopback(), "{:?}", binding.source);
}

#[tokio::test]
async fn baresip_with_a_wrong_password_is_not_registered() {
    if !baresip_present() {
        return;
    }
    let (events, log) = registration("wrong").await;
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, ServerEvent::Registered { .. })),
        "{events:#?}\n{log}"
    );
    assert!(log.contains("401") || log.contains("403"), "{log}");
}
