//! A small answering machine on the voice server: answers every call,
//! plays a prompt (a WAV file given with `--wav`, 8 kHz mono 16-bit, or a
//! generated two-tone chime), collects DTMF until `#`, reads the digits back
//! as tones, and hangs up. Every event is printed to stdout.
//!
//! ```text
//! cargo run -p switchboard-voice --example uas -- 127.0.0.1:5060 [--wav prompt.wav] [--max-secs 60]
//! sipp -sn uac 127.0.0.1:5060 -m 1     # in another terminal
//! ```

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use switchboard_voice::server::{ServerConfig, ServerEvent, VoiceServer};

fn tone(freqs: &[f32], ms: u32) -> Vec<i16> {
    let n = (ms * 8) as usize;
    (0..n)
        .map(|i| {
            let t = i as f32 / 8000.0;
            let v: f32 = freqs
                .iter()
                .map(|f| (2.0 * std::f32::consts::PI * f * t).sin())
                .sum();
            (v / freqs.len() as f32 * 8000.0) as i16
        })
        .collect()
}

fn prompt(wav: Option<&str>) -> Result<Vec<i16>, Box<dyn std::error::Error>> {
    let Some(path) = wav else {
        let mut p = tone(&[660.0], 300);
        p.extend(tone(&[880.0], 300));
        return Ok(p);
    };
    let mut r = hound::WavReader::open(path)?;
    let spec = r.spec();
    if spec.sample_rate != 8000 || spec.channels != 1 || spec.bits_per_sample != 16 {
        return Err(format!("{path}: need 8 kHz mono 16-bit, got {spec:?}").into());
    }
    Ok(r.samples::<i16>().collect::<Result<_, _>>()?)
}

/// DTMF frequency pairs, to read digits back.
fn dtmf_tone(d: char) -> Vec<i16> {
    let (row, col) = match d {
        '1' => (697.0, 1209.0),
        '2' => (697.0, 1336.0),
        '3' => (697.0, 1477.0),
        '4' => (770.0, 1209.0),
        '5' => (770.0, 1336.0),
        '6' => (770.0, 1477.0),
        '7' => (852.0, 1209.0),
        '8' => (852.0, 1336.0),
        '9' => (852.0, 1477.0),
        '*' => (941.0, 1209.0),
        '0' => (941.0, 1336.0),
        _ => (941.0, 1477.0),
    };
    let mut t = tone(&[row, col], 120);
    t.extend(vec![0; 640]);
    t
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let addr: SocketAddr = args
        .first()
        .filter(|a| !a.starts_with("--"))
        .map_or("127.0.0.1:5060", String::as_str)
        .parse()?;
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let max_secs: u64 = flag("--max-secs")
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let prompt: switchboard_voice::media::Pcm = prompt(flag("--wav").as_deref())?.into();

    let (server, mut events) = VoiceServer::start(ServerConfig::local(addr)).await?;
    println!("listening on {} (udp+tcp)", server.local_addr());
    let mut digits: HashMap<_, String> = HashMap::new();
    let mut limits = HashMap::new();
    while let Some(ev) = events.recv().await {
        println!("{ev:?}");
        match ev {
            ServerEvent::CallOffered { call, .. } => {
                server.ring(call)?;
                server.answer(call)?;
                let s = server.clone();
                let limit = tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_secs(max_secs)).await;
                    let _ = s.hangup(call);
                });
                limits.insert(call, limit);
            }
            ServerEvent::CallEstablished { call } => {
                server.play(call, prompt.clone());
            }
            ServerEvent::Dtmf { call, digit, .. } => {
                let got = digits.entry(call).or_default();
                if digit.as_char() == '#' {
                    println!("{call}: collected {got:?}");
                    let readback: Vec<i16> = got.chars().flat_map(dtmf_tone).collect();
                    server.play(call, readback.into());
                    got.push('#');
                } else {
                    got.push(digit.as_char());
                }
            }
            ServerEvent::PlayoutFinished { call }
                if digits.get(&call).is_some_and(|d| d.ends_with('#')) =>
            {
                server.hangup(call)?;
            }
            ServerEvent::CallEnded { call, .. } => {
                digits.remove(&call);
                if let Some(limit) = limits.remove(&call) {
                    limit.abort();
                }
            }
            _ => {}
        }
    }
    Ok(())
}
