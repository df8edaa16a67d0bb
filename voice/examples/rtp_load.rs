//! Lightweight SIP + RTP load generator: one event loop (a current-thread
//! tokio runtime), one shared SIP socket, one RTP socket per call, a single
//! 20 ms pacing timer for every call, and per-call counting of the RTP that
//! comes back. sipp's `play_pcap_audio` needs a thread per call and does not
//! check RTP; this does neither (see /work/shared/VOICE-LOAD.md).
//!
//! ```text
//! # terminal 1: the system under test
//! cargo run --release -p switchboard-voice --example uas -- 127.0.0.1:5060 --max-secs 600 > /dev/null
//! # terminal 2
//! cargo run --release -p switchboard-voice --example rtp_load -- --target 127.0.0.1:5060 --calls 200 --secs 20
//! ```
//!
//! Options: `--target ADDR` `--calls N` `--rate CPS` (INVITEs per second)
//! `--secs S` (media window once every call is up) `--late-ms MS` (a packet
//! further behind the 20 ms schedule counts as late; default 60, a typical
//! jitter buffer's depth).
//!
//! Only loopback (or the project's own test hosts) may be targeted.

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use switchboard_voice::media::rtp::{RtpPacket, is_rtcp};
use switchboard_voice::sdp::SessionDescription;
use switchboard_voice::sip::message::Message;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

#[derive(Default, Debug, Clone, Copy)]
struct Counters {
    sent: u64,
    received: u64,
    lost: u64,
    reordered: u64,
    /// Packets more than `late_ms` behind the sender's 20 ms schedule.
    late: u64,
    highest: Option<u16>,
    /// Extended sequence number of the highest packet.
    ext: i64,
    /// Smallest `arrival - ext * 20 ms` seen (the schedule's origin).
    min_transit: Option<f64>,
}

/// Histogram of how far behind schedule packets arrive, in 1 ms buckets.
type DelayHistogram = Rc<RefCell<Vec<u64>>>;

struct Call {
    rtp: Rc<UdpSocket>,
    remote: SocketAddr,
    seq: u16,
    ts: u32,
    ssrc: u32,
    counters: Rc<RefCell<Counters>>,
}

/// (Call-ID, dialog headers for the BYE, counters).
type Dialog = (String, String, Rc<RefCell<Counters>>);

struct Args {
    target: SocketAddr,
    calls: usize,
    secs: u64,
    rate: u64,
    late_ms: f64,
}

fn parse_args() -> Result<Args, String> {
    let a: Vec<String> = std::env::args().skip(1).collect();
    let get = |n: &str| {
        a.iter()
            .position(|x| x == n)
            .and_then(|i| a.get(i + 1))
            .cloned()
    };
    let target: SocketAddr = get("--target")
        .unwrap_or_else(|| "127.0.0.1:5060".into())
        .parse()
        .map_err(|e| format!("--target: {e}"))?;
    if !target.ip().is_loopback() {
        return Err("only loopback targets are allowed".into());
    }
    Ok(Args {
        target,
        calls: get("--calls").and_then(|v| v.parse().ok()).unwrap_or(100),
        secs: get("--secs").and_then(|v| v.parse().ok()).unwrap_or(10),
        rate: get("--rate")
            .and_then(|v| v.parse().ok())
            .unwrap_or(50)
            .max(1),
        late_ms: get("--late-ms")
            .and_then(|v| v.parse().ok())
            .unwrap_or(60.0),
    })
}

fn sdp(rtp: SocketAddr) -> String {
    format!(
        "v=0\r\no=load 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\nm=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n",
        ip = rtp.ip(),
        port = rtp.port()
    )
}

/// Establishes one call; returns (remote RTP, dialog pieces for the BYE).
async fn setup(
    n: usize,
    sip: &UdpSocket,
    target: SocketAddr,
    rtp_addr: SocketAddr,
    rx: &mut mpsc::UnboundedReceiver<Message>,
) -> Option<(SocketAddr, String)> {
    let local = sip.local_addr().ok()?;
    let call_id = format!("load-{n}-{}", std::process::id());
    let body = sdp(rtp_addr);
    let head =
        format!("From: <sip:load@{local}>;tag=l{n}\r\nCall-ID: {call_id}\r\nMax-Forwards: 70\r\n");
    let invite = format!(
        "INVITE sip:load@{target} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK-load-{n}\r\n{head}\
To: <sip:load@{target}>\r\nCSeq: 1 INVITE\r\nContact: <sip:load@{local}>\r\n\
Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut next_retx = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(16);
    let ok = loop {
        if Instant::now() >= next_retx {
            sip.send_to(invite.as_bytes(), target).await.ok()?;
            next_retx = Instant::now() + Duration::from_millis(500);
        }
        if Instant::now() > deadline {
            return None;
        }
        match tokio::time::timeout(Duration::from_millis(100), rx.recv()).await {
            Ok(Some(Message::Response(r))) if r.status >= 200 => break r,
            Ok(None) => return None,
            _ => {}
        }
    };
    if ok.status != 200 {
        return None;
    }
    let to = ok.headers.get("To")?.to_owned();
    let answer = SessionDescription::parse(&ok.body).ok()?;
    let port = answer.media.first()?.port;
    let ip = answer.connection?;
    let dialog = format!("{head}To: {to}\r\n");
    let ack = format!(
        "ACK sip:load@{target} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK-load-{n}-ack\r\n{dialog}CSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n"
    );
    sip.send_to(ack.as_bytes(), target).await.ok()?;
    Some((SocketAddr::new(ip, port), dialog))
}

/// Counts the RTP a call gets back: loss and reordering from sequence
/// numbers, and lateness against the sender's 20 ms clock: a packet's delay
/// is its arrival minus the schedule (`ext_seq * 20 ms` from the earliest
/// origin seen), so a sender that falls behind or a queue that builds up
/// shows, while a constant network delay does not.
async fn count_rtp(
    socket: Rc<UdpSocket>,
    counters: Rc<RefCell<Counters>>,
    delays: DelayHistogram,
    t0: Instant,
    late_ms: f64,
) {
    let mut buf = [0u8; 1500];
    while let Ok((n, _)) = socket.recv_from(&mut buf).await {
        let arrival = t0.elapsed().as_secs_f64();
        // RTCP for a neighbouring port can land here (RTP port + 1): skip it.
        if is_rtcp(&buf[..n]) {
            continue;
        }
        let Ok(p) = RtpPacket::parse(&buf[..n]) else {
            continue;
        };
        let mut c = counters.borrow_mut();
        c.received += 1;
        let ext = match c.highest {
            None => {
                c.highest = Some(p.sequence);
                c.ext = 0;
                0
            }
            Some(h) => {
                let d = p.sequence.wrapping_sub(h) as i16;
                if d > 0 {
                    c.lost += (d - 1) as u64;
                    c.highest = Some(p.sequence);
                    c.ext += i64::from(d);
                    c.ext
                } else if d == 0 {
                    continue; // duplicate
                } else {
                    c.reordered += 1;
                    // A late arrival filled a gap counted as lost.
                    c.lost = c.lost.saturating_sub(1);
                    c.ext + i64::from(d)
                }
            }
        };
        let transit = arrival - ext as f64 * 0.020;
        let origin = *c.min_transit.get_or_insert(transit);
        if transit < origin {
            c.min_transit = Some(transit);
        }
        let delay_ms = ((transit - origin) * 1000.0).max(0.0);
        if delay_ms > late_ms {
            c.late += 1;
        }
        let mut h = delays.borrow_mut();
        let bucket = (delay_ms as usize).min(h.len() - 1);
        h[bucket] += 1;
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, run(args))
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let sip = Rc::new(UdpSocket::bind("127.0.0.1:0").await?);
    let routes: Rc<RefCell<HashMap<String, mpsc::UnboundedSender<Message>>>> = Rc::default();
    {
        let (sip, routes) = (sip.clone(), routes.clone());
        tokio::task::spawn_local(async move {
            let mut buf = vec![0u8; 65_535];
            while let Ok((n, from)) = sip.recv_from(&mut buf).await {
                let Ok(m) = Message::parse(&buf[..n]) else {
                    continue;
                };
                // Answer in-dialog requests from the server (its BYE) with 200.
                if let Message::Request(r) = &m {
                    let resp = r.response(200, "OK", None);
                    let _ = sip.send_to(&resp.to_bytes(), from).await;
                }
                let id = m.headers().get("Call-ID").unwrap_or_default().to_owned();
                if let Some(tx) = routes.borrow().get(&id) {
                    let _ = tx.send(m);
                }
            }
        });
    }
    let t0 = Instant::now();
    let delays: DelayHistogram = Rc::new(RefCell::new(vec![0; 1001]));
    let calls: Rc<RefCell<Vec<Call>>> = Rc::default();
    let setup_times: Rc<RefCell<Vec<Duration>>> = Rc::default();
    let failed = Rc::new(RefCell::new(0usize));
    let dialogs: Rc<RefCell<Vec<Dialog>>> = Rc::default();

    // Pacing: one timer for every call.
    let running = Rc::new(RefCell::new(true));
    let lateness: Rc<RefCell<Vec<Duration>>> = Rc::default();
    {
        let (calls, running, lateness) = (calls.clone(), running.clone(), lateness.clone());
        tokio::task::spawn_local(async move {
            let start = tokio::time::Instant::now();
            let mut tick = tokio::time::interval(Duration::from_millis(20));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            let payload = [0xFFu8; 160];
            let mut buf = Vec::with_capacity(172);
            let mut k: u32 = 0;
            while *running.borrow() {
                let scheduled = tick.tick().await;
                lateness
                    .borrow_mut()
                    .push(tokio::time::Instant::now().saturating_duration_since(scheduled));
                let _ = start;
                for c in calls.borrow_mut().iter_mut() {
                    buf.clear();
                    RtpPacket {
                        marker: false,
                        payload_type: 0,
                        sequence: c.seq,
                        timestamp: c.ts,
                        ssrc: c.ssrc,
                        payload: &payload,
                    }
                    .write(&mut buf);
                    if c.rtp.try_send_to(&buf, c.remote).is_ok() {
                        c.counters.borrow_mut().sent += 1;
                    }
                    c.seq = c.seq.wrapping_add(1);
                    c.ts = c.ts.wrapping_add(160);
                }
                k = k.wrapping_add(1);
            }
        });
    }

    println!(
        "setting up {} calls at {} calls/s to {}, {} s of media each",
        args.calls, args.rate, args.target, args.secs
    );
    let t_start = Instant::now();
    let mut setups = Vec::new();
    for n in 0..args.calls {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let call_id = format!("load-{n}-{}", std::process::id());
        routes.borrow_mut().insert(call_id.clone(), tx);
        let (sip, calls, setup_times, failed, dialogs) = (
            sip.clone(),
            calls.clone(),
            setup_times.clone(),
            failed.clone(),
            dialogs.clone(),
        );
        let target = args.target;
        let (delays, late_ms) = (delays.clone(), args.late_ms);
        setups.push(tokio::task::spawn_local(async move {
            let Ok(rtp) = UdpSocket::bind("127.0.0.1:0").await else {
                *failed.borrow_mut() += 1;
                return;
            };
            let Ok(rtp_addr) = rtp.local_addr() else {
                return;
            };
            let t = Instant::now();
            match setup(n, &sip, target, rtp_addr, &mut rx).await {
                Some((remote, dialog)) => {
                    setup_times.borrow_mut().push(t.elapsed());
                    let rtp = Rc::new(rtp);
                    let counters = Rc::new(RefCell::new(Counters::default()));
                    tokio::task::spawn_local(count_rtp(
                        rtp.clone(),
                        counters.clone(),
                        delays,
                        t0,
                        late_ms,
                    ));
                    dialogs
                        .borrow_mut()
                        .push((call_id, dialog, counters.clone()));
                    calls.borrow_mut().push(Call {
                        rtp,
                        remote,
                        seq: n as u16,
                        ts: 0,
                        ssrc: 0x5000_0000 + n as u32,
                        counters,
                    });
                }
                None => *failed.borrow_mut() += 1,
            }
        }));
        // An absolute schedule: timer granularity and a busy loop delay some
        // INVITEs, and the next ones catch up instead of the rate sagging.
        let next = tokio::time::Instant::from_std(t_start)
            + Duration::from_micros((n as u64 + 1) * 1_000_000 / args.rate);
        tokio::time::sleep_until(next).await;
    }
    for s in setups {
        let _ = s.await;
    }
    let up = calls.borrow().len();
    let setup_secs = t_start.elapsed().as_secs_f64();
    println!(
        "{up} calls up, {} failed, in {setup_secs:.1} s: {:.0} calls/s",
        failed.borrow(),
        up as f64 / setup_secs
    );
    // Media phase: reset counters so only the steady state is measured (the
    // lateness origin stays: it is the sender's clock).
    for c in calls.borrow().iter() {
        let mut k = c.counters.borrow_mut();
        *k = Counters {
            highest: k.highest,
            ext: k.ext,
            min_transit: k.min_transit,
            ..Counters::default()
        };
    }
    lateness.borrow_mut().clear();
    delays.borrow_mut().iter_mut().for_each(|b| *b = 0);
    let media_start = Instant::now();
    tokio::time::sleep(Duration::from_secs(args.secs)).await;
    let media_secs = media_start.elapsed().as_secs_f64();
    let totals: Vec<Counters> = calls
        .borrow()
        .iter()
        .map(|c| *c.counters.borrow())
        .collect();
    *running.borrow_mut() = false;

    // Hang up.
    let local = sip.local_addr()?;
    let to_hang_up: Vec<String> = dialogs.borrow().iter().map(|d| d.1.clone()).collect();
    for (i, dialog) in to_hang_up.iter().enumerate() {
        let bye = format!(
            "BYE sip:load@{} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK-load-bye-{i}\r\n{dialog}CSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n",
            args.target
        );
        let _ = sip.send_to(bye.as_bytes(), args.target).await;
        // Pace the hang-ups like the set-ups.
        tokio::time::sleep(Duration::from_micros(1_000_000 / args.rate)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    let expected_per_call = media_secs * 50.0;
    let sent: u64 = totals.iter().map(|c| c.sent).sum();
    let received: u64 = totals.iter().map(|c| c.received).sum();
    let lost: u64 = totals.iter().map(|c| c.lost).sum();
    let reordered: u64 = totals.iter().map(|c| c.reordered).sum();
    let late_packets: u64 = totals.iter().map(|c| c.late).sum();
    let hist = delays.borrow().clone();
    let delay_pct = |p: f64| {
        let total: u64 = hist.iter().sum();
        let want = (total as f64 * p).ceil() as u64;
        let mut seen = 0;
        for (ms, n) in hist.iter().enumerate() {
            seen += n;
            if seen >= want {
                return ms;
            }
        }
        hist.len() - 1
    };
    let mut per_call: Vec<f64> = totals
        .iter()
        .map(|c| c.received as f64 / expected_per_call)
        .collect();
    per_call.sort_by(f64::total_cmp);
    let mut setup = setup_times.borrow().clone();
    setup.sort();
    let mut late = lateness.borrow().clone();
    late.sort();
    let pct = |v: &[Duration], p: f64| {
        v.get(((v.len() as f64 - 1.0) * p) as usize)
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    println!(
        "media window            {media_secs:.1} s, expected {expected_per_call:.0} packets per call per direction"
    );
    println!(
        "RTP sent                {sent} ({:.1}% of expected)",
        100.0 * sent as f64 / (expected_per_call * up as f64).max(1.0)
    );
    println!(
        "RTP returned            {received} ({:.1}% of expected), lost {lost}, reordered {reordered}",
        100.0 * received as f64 / (expected_per_call * up as f64).max(1.0)
    );
    println!(
        "late or lost            {:.3}% ({late_packets} packets > {} ms behind the 20 ms schedule, {lost} lost)",
        100.0 * (late_packets + lost) as f64 / (received + lost).max(1) as f64,
        args.late_ms
    );
    println!(
        "behind schedule         p50 {} ms  p99 {} ms  p99.9 {} ms (1 ms buckets)",
        delay_pct(0.5),
        delay_pct(0.99),
        delay_pct(0.999)
    );
    if !per_call.is_empty() {
        println!(
            "returned per call       min {:.1}%  p50 {:.1}%  max {:.1}%",
            100.0 * per_call[0],
            100.0 * per_call[per_call.len() / 2],
            100.0 * per_call[per_call.len() - 1]
        );
    }
    println!(
        "call setup              p50 {:.1} ms  p99 {:.1} ms",
        pct(&setup, 0.5),
        pct(&setup, 0.99)
    );
    println!(
        "pacing lateness         p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
        pct(&late, 0.5),
        pct(&late, 0.99),
        pct(&late, 1.0)
    );
    Ok(())
}
