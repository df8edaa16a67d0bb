//! Prompts as 8 kHz PCM: text is synthesised by the Piper neural voice
//! ([`crate::piper`]) when one is loaded, else by `espeak-ng`; either way the
//! audio is resampled to 8 kHz by `sox`. espeak-ng and sox run as separate
//! processes (never linked). Results are cached on disk by a hash of
//! (voice, text); WAV prompts are read with `hound`.
//!
//! The cache file is raw 16-bit little-endian 8 kHz mono PCM named
//! `<sha256(voice \0 text)>.pcm`, written to a temporary name and renamed,
//! so concurrent calls never read half a file.
//!
//! [`Tts::render`] also keeps what it rendered in memory, shared
//! ([`Pcm`]): every call hears the same few prompts, so a call costs no
//! file read and no copy of the audio. A WAV prompt is looked up by path,
//! size and modification time, so replacing the file takes effect on the
//! next call. The memory cache holds at most [`MEMORY_CACHE_SAMPLES`]
//! samples and starts afresh when full.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use sha2::{Digest, Sha256};
use tokio::process::Command;

use crate::ivr::Prompt;
use crate::media::Pcm;
use crate::piper::Piper;
use crate::recording::{SAMPLE_RATE, read_prompt_wav};

/// A prompt could not be produced.
#[derive(Debug, thiserror::Error)]
pub enum TtsError {
    /// The synthesiser or resampler could not be run or failed.
    #[error("{program}: {detail}")]
    Process {
        /// Which program.
        program: &'static str,
        /// What went wrong.
        detail: String,
    },
    /// Cache or file I/O.
    #[error("prompt file: {0}")]
    Io(#[from] std::io::Error),
    /// An uploaded prompt is not an 8 kHz mono 16-bit WAV.
    #[error(transparent)]
    Wav(#[from] crate::recording::RecordingError),
}

/// Most samples the in-memory prompt cache holds (64 MB: about 70 minutes
/// of prompts).
pub const MEMORY_CACHE_SAMPLES: usize = 32 * 1024 * 1024;

/// What a rendered prompt is remembered by.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum MemoryKey {
    /// A text, by its cache file (engine, voice and text).
    Text(PathBuf),
    /// A WAV file as it was when read.
    File {
        path: PathBuf,
        len: u64,
        modified: Option<SystemTime>,
    },
}

#[derive(Debug, Default)]
struct MemoryCache {
    prompts: HashMap<MemoryKey, Pcm>,
    samples: usize,
}

impl MemoryCache {
    fn insert(&mut self, key: MemoryKey, pcm: Pcm) {
        if self.samples + pcm.len() > MEMORY_CACHE_SAMPLES {
            self.prompts.clear();
            self.samples = 0;
        }
        if pcm.len() <= MEMORY_CACHE_SAMPLES {
            self.samples += pcm.len();
            if let Some(old) = self.prompts.insert(key, pcm) {
                self.samples -= old.len();
            }
        }
    }
}

/// Text-to-speech with espeak-ng and an on-disk cache.
#[derive(Debug, Clone)]
pub struct Tts {
    cache_dir: PathBuf,
    voice: String,
    espeak: PathBuf,
    sox: PathBuf,
    piper: Option<Arc<Piper>>,
    /// Shared by clones.
    memory: Arc<Mutex<MemoryCache>>,
}

impl Tts {
    /// A synthesiser caching into `cache_dir` (created when needed), voice `en-us`.
    pub fn new(cache_dir: impl Into<PathBuf>) -> Self {
        Self {
            cache_dir: cache_dir.into(),
            voice: "en-us".into(),
            espeak: "espeak-ng".into(),
            sox: "sox".into(),
            piper: None,
            memory: Arc::default(),
        }
    }

    /// Speaks with a Piper voice (espeak-ng stays the fallback if it fails).
    pub fn with_piper(mut self, piper: Arc<Piper>) -> Self {
        self.piper = Some(piper);
        self
    }

    /// Which synthesiser speaks: `piper` or `espeak-ng`.
    pub fn engine(&self) -> &'static str {
        if self.piper.is_some() {
            "piper"
        } else {
            "espeak-ng"
        }
    }

    /// Uses another espeak-ng voice (`espeak-ng --voices`).
    pub fn with_voice(mut self, voice: impl Into<String>) -> Self {
        self.voice = voice.into();
        self
    }

    /// Uses other program paths (tests, non-standard installs).
    pub fn with_programs(mut self, espeak: impl Into<PathBuf>, sox: impl Into<PathBuf>) -> Self {
        self.espeak = espeak.into();
        self.sox = sox.into();
        self
    }

    /// The cache file for a text.
    pub fn cache_path(&self, text: &str) -> PathBuf {
        let mut h = Sha256::new();
        h.update(self.engine().as_bytes());
        h.update([0]);
        h.update(self.voice.as_bytes());
        h.update([0]);
        h.update(text.as_bytes());
        self.cache_dir
            .join(format!("{}.pcm", hex::encode(h.finalize())))
    }

    /// 8 kHz PCM for a prompt, shared: from memory when this prompt was
    /// rendered before (and, for a file, has not changed since).
    pub async fn render(&self, prompt: &Prompt) -> Result<Pcm, TtsError> {
        let key = match prompt {
            Prompt::Text(t) => MemoryKey::Text(self.cache_path(t)),
            Prompt::File(p) => {
                let meta = tokio::fs::metadata(p).await?;
                MemoryKey::File {
                    path: p.clone(),
                    len: meta.len(),
                    modified: meta.modified().ok(),
                }
            }
        };
        if let Some(pcm) = self.memory().prompts.get(&key) {
            return Ok(pcm.clone());
        }
        let pcm: Pcm = match prompt {
            Prompt::Text(t) => self.speak(t).await?,
            Prompt::File(p) => {
                let path = p.clone();
                let read = tokio::task::spawn_blocking(move || read_prompt_wav(&path))
                    .await
                    .map_err(|e| TtsError::Io(std::io::Error::other(e)))?;
                match read {
                    Ok(pcm) => pcm,
                    // Another rate, stereo, 8/24/32-bit or float: sox converts it.
                    Err(e) if e.is_unsupported_format() => resample(&self.sox, p).await?,
                    Err(e) => return Err(e.into()),
                }
            }
        }
        .into();
        self.memory().insert(key, pcm.clone());
        Ok(pcm)
    }

    fn memory(&self) -> std::sync::MutexGuard<'_, MemoryCache> {
        // The cache stays consistent even if a holder panicked: every
        // update is a single insert or clear.
        self.memory.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// 8 kHz PCM for a text, from the cache or freshly synthesised.
    pub async fn speak(&self, text: &str) -> Result<Vec<i16>, TtsError> {
        let path = self.cache_path(text);
        if let Ok(bytes) = tokio::fs::read(&path).await {
            return Ok(pcm_from_bytes(&bytes));
        }
        let pcm = self.synthesise(text).await?;
        tokio::fs::create_dir_all(&self.cache_dir).await?;
        let tmp = path.with_extension(format!("tmp{}", rand::random::<u32>()));
        let bytes: Vec<u8> = pcm.iter().flat_map(|s| s.to_le_bytes()).collect();
        tokio::fs::write(&tmp, bytes).await?;
        tokio::fs::rename(&tmp, &path).await?;
        Ok(pcm)
    }

    async fn synthesise(&self, text: &str) -> Result<Vec<i16>, TtsError> {
        if let Some(piper) = &self.piper {
            match self.piper_8k(piper, text).await {
                Ok(pcm) => return Ok(pcm),
                Err(e) => tracing::warn!(error = %e, "Piper failed; speaking with espeak-ng"),
            }
        }
        self.espeak_8k(text).await
    }

    async fn piper_8k(&self, piper: &Arc<Piper>, text: &str) -> Result<Vec<i16>, TtsError> {
        let pcm = piper
            .synthesise(text)
            .await
            .map_err(|e| TtsError::Process {
                program: "piper",
                detail: e.to_string(),
            })?;
        let wav =
            std::env::temp_dir().join(format!("switchboard-tts-{}.wav", rand::random::<u64>()));
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: piper.sample_rate(),
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let path = wav.clone();
        tokio::task::spawn_blocking(move || -> Result<(), hound::Error> {
            let mut w = hound::WavWriter::create(&path, spec)?;
            for s in pcm {
                w.write_sample(s)?;
            }
            w.finalize()
        })
        .await
        .map_err(|e| TtsError::Io(std::io::Error::other(e)))?
        .map_err(|e| TtsError::Wav(e.into()))?;
        let res = resample(&self.sox, &wav).await;
        let _ = tokio::fs::remove_file(&wav).await;
        res
    }

    async fn espeak_8k(&self, text: &str) -> Result<Vec<i16>, TtsError> {
        let dir = std::env::temp_dir();
        let wav = dir.join(format!("switchboard-tts-{}.wav", rand::random::<u64>()));
        let out = Command::new(&self.espeak)
            .arg("-v")
            .arg(&self.voice)
            .arg("-w")
            .arg(&wav)
            .arg("--")
            .arg(text)
            .kill_on_drop(true)
            .output()
            .await
            .map_err(|e| TtsError::Process {
                program: "espeak-ng",
                detail: e.to_string(),
            })?;
        if !out.status.success() {
            let _ = tokio::fs::remove_file(&wav).await;
            return Err(TtsError::Process {
                program: "espeak-ng",
                detail: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        let res = resample(&self.sox, &wav).await;
        let _ = tokio::fs::remove_file(&wav).await;
        res
    }
}

/// Any WAV → raw 8 kHz mono s16le through sox.
async fn resample(sox: &Path, wav: &Path) -> Result<Vec<i16>, TtsError> {
    let out = Command::new(sox)
        .arg(wav)
        .args([
            "-t",
            "raw",
            "-e",
            "signed-integer",
            "-b",
            "16",
            "-L",
            "-c",
            "1",
        ])
        .args(["-r", &SAMPLE_RATE.to_string(), "-"])
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| TtsError::Process {
            program: "sox",
            detail: e.to_string(),
        })?;
    if !out.status.success() {
        return Err(TtsError::Process {
            program: "sox",
            detail: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(pcm_from_bytes(&out.stdout))
}

fn pcm_from_bytes(b: &[u8]) -> Vec<i16> {
    b.chunks_exact(2)
        .map(|c| i16::from_le_bytes([c[0], c[1]]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn have(cmd: &str) -> bool {
        let ok = std::process::Command::new(cmd)
            .arg("--version")
            .output()
            .is_ok();
        if !ok {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "{cmd} is required with CI=true (scripts/setup --test)"
            );
            eprintln!("\n*** SKIPPED: {cmd} not installed (scripts/setup --test) ***\n");
        }
        ok
    }

    #[tokio::test]
    async fn speaks_text_at_8khz_and_caches_it() {
        if !have("espeak-ng") || !have("sox") {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let tts = Tts::new(dir.path());
        let pcm = tts.speak("For billing press 1.").await.unwrap();
        // About a second of speech at 8 kHz; far from silence.
        assert!(pcm.len() > 4_000 && pcm.len() < 40_000, "{}", pcm.len());
        assert!(pcm.iter().any(|s| s.unsigned_abs() > 1_000));
        let cached = tts.cache_path("For billing press 1.");
        assert!(cached.exists());
        // The second time comes from the cache even when espeak-ng is gone.
        let offline = Tts::new(dir.path()).with_programs("/nonexistent/espeak", "/nonexistent/sox");
        assert_eq!(offline.speak("For billing press 1.").await.unwrap(), pcm);
        assert!(matches!(
            offline.speak("Something new.").await,
            Err(TtsError::Process {
                program: "espeak-ng",
                ..
            })
        ));
        assert_ne!(tts.cache_path("a"), tts.with_voice("en-gb").cache_path("a"));
    }

    #[tokio::test]
    async fn renders_wav_prompts() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("p.wav");
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 8_000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::create(&p, spec).unwrap();
        w.write_sample(42i16).unwrap();
        w.finalize().unwrap();
        let tts = Tts::new(dir.path());
        assert_eq!(&*tts.render(&Prompt::File(p.clone())).await.unwrap(), [42]);
        // Rendered again: the same shared audio, not a copy.
        let a = tts.render(&Prompt::File(p.clone())).await.unwrap();
        let b = tts.render(&Prompt::File(p.clone())).await.unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        // A replaced file is read again.
        let mut w = hound::WavWriter::create(&p, spec).unwrap();
        w.write_sample(7i16).unwrap();
        w.write_sample(8i16).unwrap();
        w.finalize().unwrap();
        assert_eq!(&*tts.render(&Prompt::File(p)).await.unwrap(), [7, 8]);
        assert!(
            tts.render(&Prompt::File(dir.path().join("no.wav")))
                .await
                .is_err()
        );
        // A 16 kHz stereo prompt is converted (when sox is installed).
        let wide = dir.path().join("wide.wav");
        let spec16 = hound::WavSpec {
            channels: 2,
            sample_rate: 16_000,
            ..spec
        };
        let mut w = hound::WavWriter::create(&wide, spec16).unwrap();
        for _ in 0..16_000 {
            w.write_sample(1_000i16).unwrap();
            w.write_sample(1_000i16).unwrap();
        }
        w.finalize().unwrap();
        if have("sox") {
            let pcm = tts.render(&Prompt::File(wide)).await.unwrap();
            assert!((7_900..=8_100).contains(&pcm.len()), "{}", pcm.len());
        }
    }
}

#[cfg(test)]
mod piper_tests {
    use super::*;

    #[tokio::test]
    async fn piper_prompts_are_8khz_and_cached_apart_from_espeak() {
        let dir = std::env::var_os("HOME")
            .map(|h| PathBuf::from(h).join(".cache/switchboard/models/piper-joe-medium"));
        let Some(dir) = dir.filter(|d| d.join("voice.onnx").exists()) else {
            eprintln!(
                "\n*** SKIPPED: Piper voice not prepared (switchboard-models fetch piper-joe-medium) ***\n"
            );
            return;
        };
        if std::process::Command::new("sox")
            .arg("--version")
            .output()
            .is_err()
        {
            eprintln!("\n*** SKIPPED: sox not installed ***\n");
            return;
        }
        let cache = tempfile::tempdir().unwrap();
        let piper = Arc::new(Piper::load(&dir).unwrap());
        let tts = Tts::new(cache.path()).with_piper(piper);
        assert_eq!(tts.engine(), "piper");
        let pcm = tts.speak("Please hold.").await.unwrap();
        assert!(pcm.len() > 2_000 && pcm.len() < 30_000, "{}", pcm.len());
        assert!(tts.cache_path("Please hold.").exists());
        assert_ne!(
            tts.cache_path("Please hold."),
            Tts::new(cache.path()).cache_path("Please hold.")
        );
    }
}
