//! Synthesises a prompt with espeak-ng and (when prepared) the Piper voice,
//! prints the time each took against the length of the speech, and writes
//! the 8 kHz results as WAV files to listen to.
//!
//! ```text
//! cargo run --release -p switchboard-voice --example tts -- [text] [--piper DIR] [--out DIR]
//! ```
//! `--piper` defaults to `~/.cache/switchboard/models/piper-joe-medium`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use switchboard_voice::piper::Piper;
use switchboard_voice::recording::hound;
use switchboard_voice::tts::Tts;

fn write_wav(path: &std::path::Path, pcm: &[i16]) -> Result<(), hound::Error> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 8_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec)?;
    for &s in pcm {
        w.write_sample(s)?;
    }
    w.finalize()
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let text = args.first().filter(|a| !a.starts_with("--")).cloned().unwrap_or_else(|| {
        "Thank you for calling. For billing press 1, for technical support press 2, to leave a message press 3.".into()
    });
    let out = PathBuf::from(flag("--out").unwrap_or_else(|| ".".into()));
    let piper_dir = flag("--piper").map(PathBuf::from).or_else(|| {
        std::env::var_os("HOME")
            .map(|h| PathBuf::from(h).join(".cache/switchboard/models/piper-joe-medium"))
    });
    let cache = tempfile_dir();

    let mut engines = vec![("espeak-ng", Tts::new(cache.join("espeak")))];
    if let Some(dir) = piper_dir.filter(|d| d.join("voice.onnx").exists()) {
        let t = Instant::now();
        let piper = Arc::new(Piper::load(&dir)?);
        println!("piper: model loaded in {:.2} s", t.elapsed().as_secs_f64());
        engines.push(("piper", Tts::new(cache.join("piper")).with_piper(piper)));
    }
    for (name, tts) in engines {
        let t = Instant::now();
        let pcm = tts.speak(&text).await?;
        let took = t.elapsed().as_secs_f64();
        let secs = pcm.len() as f64 / 8_000.0;
        let t = Instant::now();
        let _ = tts.speak(&text).await?;
        let cached = t.elapsed().as_secs_f64();
        let path = out.join(format!("prompt-{name}.wav"));
        write_wav(&path, &pcm)?;
        println!(
            "{name}: {secs:.2} s of speech in {took:.2} s (real-time factor {:.3}); from the cache in {:.1} ms; {}",
            took / secs,
            cached * 1000.0,
            path.display()
        );
    }
    let _ = std::fs::remove_dir_all(&cache);
    Ok(())
}

fn tempfile_dir() -> PathBuf {
    std::env::temp_dir().join(format!("switchboard-tts-example-{}", std::process::id()))
}
