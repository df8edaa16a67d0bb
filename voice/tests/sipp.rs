//! Interop tests against a real, independent SIP peer: `sipp` (Debian
//! package `sip-tester`), driving the scenarios in `tests/sipp/` against a
//! [`VoiceServer`] on an ephemeral loopback port.
//!
//! With `CI=true` a missing sipp fails the test; otherwise each test prints a
//! loud SKIPPED line and passes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use switchboard_voice::server::{ServerConfig, ServerEvent, VoiceServer};
use switchboard_voice::sip::auth::StaticCredentials;
use switchboard_voice::sip::endpoint::{DtmfSource, EndReason};
use tokio::sync::mpsc;

fn sipp_present() -> bool {
    let found = std::process::Command::new("sipp")
        .arg("-v")
        .output()
        .is_ok();
    if !found {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!(
                "sipp is required when CI=true: install Debian's sip-tester (scripts/setup --test)"
            );
        }
        eprintln!(
            "\n!!!!!!!! SKIPPED: sipp not installed (apt-get install sip-tester); interop test not run !!!!!!!!\n"
        );
    }
    found
}

fn free_udp_port() -> u16 {
    let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    s.local_addr().unwrap().port()
}

/// An even port with the next three free too (sipp uses media_port and +2).
fn free_media_port() -> u16 {
    for _ in 0..50 {
        let p = free_udp_port() & !1;
        if p < 60_000 && (0..4).all(|i| std::net::UdpSocket::bind(("127.0.0.1", p + i)).is_ok()) {
            return p;
        }
    }
    panic!("no free media port");
}

/// What the server side does with calls.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Policy {
    /// Ring, then answer.
    Answer,
    /// Ring only (the caller will cancel).
    RingOnly,
    /// Answer, then hang up 500 ms after the ACK.
    AnswerThenHangUp,
}

struct Run {
    events: Vec<ServerEvent>,
    status: std::process::ExitStatus,
    output: String,
}

async fn start(
    server_cfg: impl FnOnce(&mut ServerConfig),
) -> (VoiceServer, mpsc::UnboundedReceiver<ServerEvent>) {
    let mut cfg = ServerConfig::local("127.0.0.1:0".parse().unwrap());
    let base = (20_000 + (free_udp_port() % 20_000)) & !1;
    cfg.rtp_ports = base..base + 200;
    server_cfg(&mut cfg);
    VoiceServer::start(cfg).await.unwrap()
}

async fn run_scenario(
    scenario: &str,
    policy: Policy,
    extra: &[&str],
    server_cfg: impl FnOnce(&mut ServerConfig),
) -> Run {
    let (server, mut rx) = start(server_cfg).await;
    let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "tests", "sipp", scenario]
        .iter()
        .collect();
    let target = server.local_addr().to_string();
    let port = free_udp_port().to_string();
    let mport = free_media_port().to_string();
    let mut args = vec![
        target.as_str(),
        "-sf",
        path.to_str().unwrap(),
        "-m",
        "1",
        "-i",
        "127.0.0.1",
        "-p",
        &port,
        "-mp",
        &mport,
        "-nostdin",
        "-timeout",
        "30s",
        "-timeout_error",
        "-max_recv_loops",
        "100",
    ];
    args.extend_from_slice(extra);
    let child = tokio::process::Command::new("sipp")
        .args(&args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn sipp");
    let srv = server.clone();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    let policy_task = tokio::spawn(async move {
        while let Some(ev) = rx.recv().await {
            match &ev {
                ServerEvent::CallOffered { call, .. } => {
                    srv.ring(*call).unwrap();
                    if policy != Policy::RingOnly {
                        srv.answer(*call).unwrap();
                    }
                }
                ServerEvent::CallEstablished { call } if policy == Policy::AnswerThenHangUp => {
                    let (srv, call) = (srv.clone(), *call);
                    tokio::spawn(async move {
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        srv.hangup(call).unwrap();
                    });
                }
                _ => {}
            }
            sink.lock().unwrap().push(ev);
        }
    });
    let out = child.wait_with_output().await.expect("sipp output");
    let output = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // sipp is done; let the server report the end of the call (its media
    // teardown happens after the final response went out).
    for _ in 0..50 {
        let done = seen.lock().unwrap().iter().any(|e| {
            matches!(
                e,
                ServerEvent::CallEnded { .. } | ServerEvent::Registered { .. }
            )
        });
        if done || !out.status.success() || scenario == "options.xml" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    policy_task.abort();
    let events = std::mem::take(&mut *seen.lock().unwrap());
    server.shutdown();
    Run {
        events,
        status: out.status,
        output,
    }
}

fn assert_passed(run: &Run) {
    assert!(
        run.status.success(),
        "sipp failed ({:?}):\n{}\nevents: {:#?}",
        run.status,
        run.output
            .lines()
            .rev()
            .take(40)
            .collect::<Vec<_>>()
            .join("\n"),
        run.events
    );
}

fn ended(run: &Run) -> EndReason {
    run.events
        .iter()
        .find_map(|e| match e {
            ServerEvent::CallEnded { reason, .. } => Some(*reason),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no CallEnded in {:#?}", run.events))
}

#[tokio::test]
async fn sipp_basic_call_udp() {
    if !sipp_present() {
        return;
    }
    let run = run_scenario("basic_call.xml", Policy::Answer, &[], |_| {}).await;
    assert_passed(&run);
    assert!(
        run.events
            .iter()
            .any(|e| matches!(e, ServerEvent::CallEstablished { .. }))
    );
    assert_eq!(ended(&run), EndReason::RemoteHangup);
    // Two seconds of media at 50 packets/s went out.
    let stats = run.events.iter().find_map(|e| match e {
        ServerEvent::CallEnded { stats, .. } => *stats,
        _ => None,
    });
    assert!(stats.is_some_and(|s| s.packets_sent >= 50), "{stats:?}");
}

#[tokio::test]
async fn sipp_basic_call_tcp() {
    if !sipp_present() {
        return;
    }
    let run = run_scenario("basic_call.xml", Policy::Answer, &["-t", "t1"], |_| {}).await;
    assert_passed(&run);
    assert_eq!(ended(&run), EndReason::RemoteHangup);
}

#[tokio::test]
async fn sipp_cancel_before_answer() {
    if !sipp_present() {
        return;
    }
    let run = run_scenario("cancel.xml", Policy::RingOnly, &[], |_| {}).await;
    assert_passed(&run);
    assert_eq!(ended(&run), EndReason::Cancelled);
}

#[tokio::test]
async fn sipp_bye_from_server() {
    if !sipp_present() {
        return;
    }
    let run = run_scenario("bye_from_server.xml", Policy::AnswerThenHangUp, &[], |_| {}).await;
    assert_passed(&run);
    assert_eq!(ended(&run), EndReason::LocalHangup);
}

#[tokio::test]
async fn sipp_reinvite_hold_and_unhold() {
    if !sipp_present() {
        return;
    }
    let run = run_scenario("hold.xml", Policy::Answer, &[], |_| {}).await;
    assert_passed(&run);
    let holds: Vec<bool> = run
        .events
        .iter()
        .filter_map(|e| match e {
            ServerEvent::MediaUpdated { held, .. } => Some(*held),
            _ => None,
        })
        .collect();
    assert_eq!(holds, vec![false, true, false]);
}

#[tokio::test]
async fn sipp_dtmf_info() {
    if !sipp_present() {
        return;
    }
    let run = run_scenario("dtmf_info.xml", Policy::Answer, &[], |_| {}).await;
    assert_passed(&run);
    let keys: String = run
        .events
        .iter()
        .filter_map(|e| match e {
            ServerEvent::Dtmf {
                digit,
                source: DtmfSource::Info,
                ..
            } => Some(digit.as_char()),
            _ => None,
        })
        .collect();
    assert_eq!(keys, "42#");
}

#[tokio::test]
async fn sipp_dtmf_rfc4733_and_rtp_echo() {
    if !sipp_present() {
        return;
    }
    let run = run_scenario("dtmf_rfc4733.xml", Policy::Answer, &["-rtp_echo"], |_| {}).await;
    assert_passed(&run);
    let keys: String = run
        .events
        .iter()
        .filter_map(|e| match e {
            ServerEvent::Dtmf {
                digit,
                source: DtmfSource::Rtp,
                ..
            } => Some(digit.as_char()),
            _ => None,
        })
        .collect();
    assert_eq!(keys, "1");
    // sipp echoed our RTP back: the receive path (latching, jitter buffer) saw it.
    let stats = run
        .events
        .iter()
        .find_map(|e| match e {
            ServerEvent::CallEnded { stats, .. } => *stats,
            _ => None,
        })
        .expect("media stats");
    assert!(stats.packets_received > 0, "{stats:?}");
}

#[tokio::test]
async fn sipp_options() {
    if !sipp_present() {
        return;
    }
    let run = run_scenario("options.xml", Policy::Answer, &[], |_| {}).await;
    assert_passed(&run);
}

#[tokio::test]
async fn sipp_register_with_digest_auth() {
    if !sipp_present() {
        return;
    }
    let run = run_scenario("register.xml", Policy::Answer, &[], |cfg| {
        cfg.endpoint.credentials = Some(Arc::new(StaticCredentials(vec![(
            "1001".into(),
            "s3cret".into(),
        )])));
    })
    .await;
    assert_passed(&run);
    assert!(
        run.events
            .iter()
            .any(|e| matches!(e, ServerEvent::Registered { aor, .. } if aor == "1001@127.0.0.1")),
        "{:#?}",
        run.events
    );
}
