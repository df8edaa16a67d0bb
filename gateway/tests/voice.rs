//! Telephony in the product: real SIP calls from `sipp` (Debian
//! `sip-tester`) into a running gateway, through the built-in IVR menu.
//!
//! * press 1 (RFC 4733): the conversation gets call_started, call_answered,
//!   ivr_step, dtmf_received "1", handoff_requested with skill billing,
//!   queued (billing voice queue), call_ended and recording_available, and
//!   the stereo call recording is
//!   served (and audited) by the recordings API;
//! * press 3, speak, hang up: a voicemail recording and a customer message
//!   "Voicemail, N s" in the inbox.
//!
//! With `CI=true` a missing sipp fails; otherwise the tests print a loud
//! SKIPPED line and pass.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use common::*;
use serde_json::Value;
use switchboard_gateway::auth::Role;
use switchboard_gateway::config::BotMode;
use switchboard_voice::ivr::{FlowSet, Prompt};
use switchboard_voice::recording::hound;

fn sipp_present() -> bool {
    tool_present("sipp", "-v", "sip-tester", "telephony")
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

async fn start_gateway(stack: Stack) -> (TestServer, SocketAddr) {
    let sip: SocketAddr = format!("127.0.0.1:{}", free_sip_port()).parse().unwrap();
    let server = TestServer::start_configured(stack, |c| {
        c.sip_listen = Some(sip);
        c.bot = BotMode::Off;
    })
    .await;
    prompts_ready(&server).await;
    (server, sip)
}

/// Waits until the built-in flow's prompts are synthesised (they are
/// prepared in the background at start). A call placed earlier hears its
/// first prompt only after synthesis, which on a busy machine can outlast
/// sipp's two-second call, and the recording then has no echo in it.
async fn prompts_ready(server: &TestServer) {
    let texts: std::collections::HashSet<String> = FlowSet::builtin()
        .prompts()
        .into_iter()
        .filter_map(|p| match p {
            Prompt::Text(t) => Some(t.clone()),
            Prompt::File(_) => None,
        })
        .collect();
    let dir = server.config.data_dir.join("prompt-cache");
    for _ in 0..1200 {
        let ready = std::fs::read_dir(&dir)
            .map(|d| {
                d.filter_map(Result::ok)
                    .filter(|e| e.path().extension().is_some_and(|x| x == "pcm"))
                    .count()
            })
            .unwrap_or(0);
        if ready >= texts.len() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the IVR prompts were not synthesised within 60 s");
}

/// Runs one sipp scenario from voice/tests/sipp against `sip`, calling `service`.
async fn sipp(sip: SocketAddr, scenario: &str, service: &str, extra: &[&str]) {
    let path: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "..",
        "voice",
        "tests",
        "sipp",
        scenario,
    ]
    .iter()
    .collect();
    let target = sip.to_string();
    // sipp's ports are chosen free, but another process may take one before
    // sipp binds it: then sipp is run again on other ports.
    for _ in 0..3 {
        let port = free_udp_port().to_string();
        let mport = free_media_port().to_string();
        let mut args = vec![
            target.as_str(),
            "-sf",
            path.to_str().unwrap(),
            "-s",
            service,
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
            "60s",
            "-timeout_error",
        ];
        args.extend_from_slice(extra);
        let out = tokio::process::Command::new("sipp")
            .args(&args)
            .kill_on_drop(true)
            .output()
            .await
            .expect("spawn sipp");
        let log = format!(
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if out.status.success() {
            return;
        }
        assert!(
            log.contains("Address already in use"),
            "sipp {scenario} failed: {log}"
        );
        eprintln!("sipp's port was taken meanwhile; running it on others");
    }
    panic!("sipp {scenario}: no free ports in three tries");
}

async fn events(c: &Client, id: &str) -> Vec<Value> {
    let (s, body) = c.get(&format!("/api/conversations/{id}/events")).await;
    assert_eq!(s, 200, "{body}");
    body["events"].as_array().unwrap().clone()
}

fn kinds(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["event"]["type"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// The voice conversation once its call has ended (and its recordings are stored).
async fn ended_call(staff: &Client, want_recordings: usize) -> (String, Vec<Value>) {
    for _ in 0..300 {
        let (s, body) = staff.get("/api/conversations?status=any").await;
        assert_eq!(s, 200, "{body}");
        let voice: Vec<&Value> = body["conversations"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["channel"] == "voice")
            .collect();
        if let Some(c) = voice.first() {
            let id = c["id"].as_str().unwrap().to_string();
            let ev = events(staff, &id).await;
            let k = kinds(&ev);
            let recs = k.iter().filter(|k| *k == "recording_available").count();
            if k.iter().any(|k| k == "call_ended") && recs >= want_recordings {
                return (id, ev);
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no ended voice conversation");
}

fn wav_spec(bytes: &[u8]) -> (hound::WavSpec, u32) {
    let r = hound::WavReader::new(std::io::Cursor::new(bytes.to_vec())).unwrap();
    (r.spec(), r.duration())
}

#[tokio::test]
async fn call_press_1_is_queued_for_billing_and_recorded() {
    press_1(Stack::Embedded).await;
}

/// The same on PostgreSQL and NATS (the recordings migration on PostgreSQL).
#[tokio::test]
async fn call_press_1_on_postgres_and_nats() {
    if scaled_available() {
        press_1(Stack::Scaled).await;
    }
}

async fn press_1(stack: Stack) {
    if !sipp_present() {
        return;
    }
    let (server, sip) = start_gateway(stack).await;
    server.add_user("sup@example.com", Role::Supervisor).await;
    server.add_user("agent@example.com", Role::Agent).await;
    server.add_user("admin@example.com", Role::Admin).await;
    let staff = server.staff("sup@example.com").await;
    let admin = server.staff("admin@example.com").await;
    let (s, q) = admin
        .put(
            "/api/routing/queues/billing",
            serde_json::json!({"kind": "voice", "required_skills": [{"skill": "billing", "min_proficiency": 1}]}),
        )
        .await;
    assert_eq!(s, 200, "{q}");

    sipp(sip, "dtmf_rfc4733.xml", "100", &["-rtp_echo"]).await;

    let (id, ev) = ended_call(&staff, 1).await;
    let k = kinds(&ev);
    assert_eq!(k[0], "conversation_opened", "{k:?}");
    assert_eq!(ev[0]["event"]["channel"], "voice");
    for want in [
        "call_started",
        "call_answered",
        "ivr_step",
        "dtmf_received",
        "handoff_requested",
        "call_ended",
        "recording_available",
    ] {
        assert!(k.iter().any(|k| k == want), "missing {want} in {k:?}");
    }
    let find = |t: &str| {
        ev.iter()
            .find(|e| e["event"]["type"] == t)
            .map(|e| e["event"].clone())
            .unwrap()
    };
    assert_eq!(find("call_started")["to"], "100");
    assert_eq!(find("call_started")["from"], "sipp");
    assert_eq!(find("dtmf_received")["digits"], "1");
    let handoff = find("handoff_requested");
    assert_eq!(handoff["skill"], "billing");
    assert_eq!(handoff["reason"], "customer_request");
    assert_eq!(find("call_ended")["reason"], "caller_hung_up");
    // Nobody has anything left to do with a caller who hung up in the queue:
    // the call is closed as abandoned with its call_ended, not left in the inbox.
    assert_eq!(find("conversation_closed")["disposition"], "abandoned");
    let ended_at = k.iter().position(|k| k == "call_ended").unwrap();
    assert_eq!(k[ended_at + 1], "conversation_closed", "{k:?}");
    // The router put the call in the billing voice queue.
    assert_eq!(find("queued")["queue"], "billing", "{k:?}");
    let rec = find("recording_available");
    assert_eq!(rec["kind"], "call");
    let rec_id = rec["recording_id"].as_str().unwrap();

    // Search finds it; an agent sees none (not their call).
    let (s, body) = staff.get("/api/recordings?number=sipp").await;
    assert_eq!(s, 200, "{body}");
    let list = body["recordings"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{body}");
    assert_eq!(list[0]["id"], rec_id);
    assert_eq!(list[0]["conversation_id"], id.as_str());
    assert!(list[0].get("path").is_none(), "server paths stay private");
    let (s, body) = staff.get("/api/recordings?number=nobody").await;
    assert_eq!(s, 200);
    assert!(body["recordings"].as_array().unwrap().is_empty());
    let (s, body) = staff.get("/api/recordings?min_secs=3600").await;
    assert_eq!(s, 200);
    assert!(body["recordings"].as_array().unwrap().is_empty());
    let agent = server.staff("agent@example.com").await;
    let (s, body) = agent.get("/api/recordings").await;
    assert_eq!(s, 200);
    assert!(body["recordings"].as_array().unwrap().is_empty(), "{body}");
    let r = agent
        .http
        .get(server.url(&format!("/api/recordings/{rec_id}/audio")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);

    // The audio: stereo 8 kHz WAV with the call in it.
    let r = staff
        .http
        .get(server.url(&format!("/api/recordings/{rec_id}/audio")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["content-type"], "audio/wav");
    let bytes = r.bytes().await.unwrap();
    let (spec, frames) = wav_spec(&bytes);
    assert_eq!(spec.channels, 2);
    assert_eq!(spec.sample_rate, 8_000);
    assert!(frames > 8_000, "at least a second of call: {frames} frames");
    let pcm: Vec<i16> = hound::WavReader::new(std::io::Cursor::new(bytes.to_vec()))
        .unwrap()
        .samples::<i16>()
        .map(Result::unwrap)
        .collect();
    let loud = |ch: usize| {
        pcm.iter()
            .skip(ch)
            .step_by(2)
            .any(|s| s.unsigned_abs() > 1_000)
    };
    assert!(loud(1), "our prompts are on the right channel");
    assert!(
        loud(0),
        "the caller (sipp echoing our audio) is on the left channel"
    );
    // Every playback is audited.
    let (s, body) = staff.get(&format!("/api/recordings/{rec_id}/access")).await;
    assert_eq!(s, 200, "{body}");
    let access = body["access"].as_array().unwrap();
    assert_eq!(access.len(), 1, "{body}");
    assert_eq!(access[0]["role"], "supervisor");

    // The page: served with the strict CSP, script from /static only.
    let r = staff
        .http
        .get(server.url("/recordings"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    let html = r.text().await.unwrap();
    assert!(html.contains(r#"<script src="/static/recordings.js" defer></script>"#));
    let r = staff
        .http
        .get(server.url("/static/recordings.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.text().await.unwrap().contains("/api/recordings"));
}

#[tokio::test]
async fn voicemail_is_recorded_and_shows_in_the_inbox() {
    if !sipp_present() {
        return;
    }
    let (server, sip) = start_gateway(Stack::Embedded).await;
    server.add_user("sup@example.com", Role::Supervisor).await;
    let agent_id = server.add_user("agent@example.com", Role::Agent).await;
    let staff = server.staff("sup@example.com").await;
    let agent = server.staff("agent@example.com").await;

    sipp(sip, "voicemail.xml", "100", &[]).await;

    let (id, ev) = ended_call(&staff, 2).await;
    let k = kinds(&ev);
    assert!(k.iter().all(|k| k != "handoff_requested"), "{k:?}");
    // A voicemail waits for an agent: the conversation stays open.
    assert!(k.iter().all(|k| k != "conversation_closed"), "{k:?}");
    let dtmf: Vec<&Value> = ev
        .iter()
        .filter(|e| e["event"]["type"] == "dtmf_received")
        .collect();
    assert_eq!(dtmf[0]["event"]["digits"], "3");
    let steps: Vec<String> = ev
        .iter()
        .filter(|e| e["event"]["type"] == "ivr_step")
        .map(|e| e["event"]["detail"].as_str().unwrap().to_string())
        .collect();
    assert!(
        steps.iter().any(|s| s.starts_with("recording a message")),
        "{steps:?}"
    );
    let vm = ev
        .iter()
        .find(|e| e["event"]["type"] == "recording_available" && e["event"]["kind"] == "voicemail")
        .expect("voicemail recording")["event"]
        .clone();
    let secs = vm["duration_secs"].as_u64().unwrap();
    assert!(secs >= 1, "{vm}");
    // The message in the inbox, from the customer, pointing at the audio.
    let msg = ev
        .iter()
        .find(|e| e["event"]["type"] == "message_added")
        .expect("voicemail message")["event"]
        .clone();
    assert_eq!(msg["text"], format!("Voicemail, {secs} s"));
    assert_eq!(msg["from"]["kind"], "customer");
    let url = msg["attachments"][0]["url"].as_str().unwrap();
    assert_eq!(
        url,
        format!(
            "/api/recordings/{}/audio",
            vm["recording_id"].as_str().unwrap()
        )
    );
    let (s, body) = staff.get("/api/conversations").await;
    assert_eq!(s, 200);
    let conv = body["conversations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id.as_str())
        .expect("voicemail conversation in the inbox")
        .clone();
    assert_eq!(conv["last_message_preview"], format!("Voicemail, {secs} s"));

    let (s, body) = staff.get("/api/recordings?kind=voicemail").await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["recordings"].as_array().unwrap().len(), 1);
    let r = staff.http.get(server.url(url)).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let bytes = r.bytes().await.unwrap();
    let (spec, frames) = wav_spec(&bytes);
    assert_eq!(spec.channels, 1);
    assert_eq!(spec.sample_rate, 8_000);
    assert!(frames >= 8_000, "{frames}");
    let pcm: Vec<i16> = hound::WavReader::new(std::io::Cursor::new(bytes.to_vec()))
        .unwrap()
        .samples::<i16>()
        .map(Result::unwrap)
        .collect();
    assert!(
        pcm.iter().any(|s| s.unsigned_abs() > 500),
        "the caller's speech is in the message"
    );

    // An agent may play it once the conversation is theirs, not before.
    let agent_get = |path: String| agent.http.get(server.url(&path)).send();
    assert_eq!(
        agent_get(url.to_string()).await.unwrap().status().as_u16(),
        403
    );
    let (s, body) = agent.get("/api/recordings").await;
    assert_eq!(s, 200);
    assert!(body["recordings"].as_array().unwrap().is_empty(), "{body}");
    let (s, body) = staff
        .post(
            &format!("/api/conversations/{id}/assign"),
            serde_json::json!({"agent_id": agent_id}),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(
        agent_get(url.to_string()).await.unwrap().status().as_u16(),
        200
    );
    let (s, body) = agent.get("/api/recordings").await;
    assert_eq!(s, 200);
    assert_eq!(
        body["recordings"].as_array().unwrap().len(),
        2,
        "the voicemail and the call: {body}"
    );
}

/// `ivr_file`: the number called picks the flow; here "200" goes straight to
/// the sales queue after a prompt, while other numbers keep the default.
#[tokio::test]
async fn ivr_file_routes_by_called_number() {
    if !sipp_present() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let flows = dir.path().join("ivr.toml");
    std::fs::write(
        &flows,
        r#"
[numbers]
"200" = "sales"

[flows.default]
start = "bye"
[flows.default.nodes.bye]
type = "hangup"

[flows.sales]
start = "hello"
[flows.sales.nodes.hello]
type = "play"
prompt = { text = "Sales." }
next = "queue"
[flows.sales.nodes.queue]
type = "set_skill"
skill = "sales"
"#,
    )
    .unwrap();
    let sip: SocketAddr = format!("127.0.0.1:{}", free_sip_port()).parse().unwrap();
    let server = TestServer::start_configured(Stack::Embedded, |c| {
        c.sip_listen = Some(sip);
        c.ivr_file = Some(flows.clone());
        c.bot = BotMode::Off;
    })
    .await;
    server.add_user("sup@example.com", Role::Supervisor).await;
    let staff = server.staff("sup@example.com").await;

    sipp(sip, "basic_call.xml", "200", &["-rtp_echo"]).await;

    let (_, ev) = ended_call(&staff, 1).await;
    let k = kinds(&ev);
    let steps: Vec<&str> = ev
        .iter()
        .filter(|e| e["event"]["type"] == "ivr_step")
        .map(|e| e["event"]["node"].as_str().unwrap())
        .collect();
    assert_eq!(steps, vec!["hello", "queue"], "{k:?}");
    let handoff = ev
        .iter()
        .find(|e| e["event"]["type"] == "handoff_requested")
        .expect("handoff");
    assert_eq!(handoff["event"]["skill"], "sales");
    assert!(k.iter().all(|k| k != "dtmf_received"));
}

/// Reads one unlabelled sample from Prometheus text.
fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// `/metrics` counts the call and shows no active call once it has ended.
#[tokio::test]
async fn call_metrics_count_calls_and_return_to_no_active_call() {
    if !sipp_present() {
        return;
    }
    let (server, sip) = start_gateway(Stack::Embedded).await;
    let http = reqwest::Client::new();
    let scrape = || async {
        http.get(server.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    sipp(sip, "dtmf_rfc4733.xml", "100", &["-rtp_echo"]).await;
    // The metrics recorder is process-wide: other tests' calls count too, so
    // wait until every call in this process has ended.
    let mut text = scrape().await;
    for _ in 0..600 {
        if metric(&text, "switchboard_voice_active_calls") == Some(0.0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        text = scrape().await;
    }
    assert!(
        metric(&text, "switchboard_voice_calls_total").unwrap_or(0.0) >= 1.0,
        "{text}"
    );
    assert_eq!(
        metric(&text, "switchboard_voice_active_calls"),
        Some(0.0),
        "{text}"
    );
}
