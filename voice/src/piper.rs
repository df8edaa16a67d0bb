//! A neural voice: Piper (VITS) models run with ONNX Runtime through the
//! `ort` crate, which loads `libonnxruntime.so` at run time (nothing is
//! downloaded or linked at build time).
//!
//! Piper speaks phonemes, not text. The phonemes come from `espeak-ng --ipa`
//! run as a separate process (the same phonemiser Piper was trained with),
//! are mapped to ids with the voice's `phoneme_id_map` (`^`, then each
//! phoneme followed by the pad `_`, then `$`), and the model returns float
//! samples at the voice's rate (22.05 kHz for `en_US-joe-medium`).
//!
//! A model directory holds `voice.onnx`, `voice.onnx.json` and
//! `libonnxruntime.so` — the layout of the `PiperJoeMedium` model of
//! switchboard-models.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use ort::session::Session;
use ort::value::Tensor;
use serde::Deserialize;
use tokio::process::Command;

/// The voice could not be loaded or run.
#[derive(Debug, thiserror::Error)]
pub enum PiperError {
    /// A file of the model directory is missing or unreadable.
    #[error("{path}: {detail}")]
    File {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        detail: String,
    },
    /// ONNX Runtime failed (loading the library or the model, or inference).
    #[error("onnx runtime: {0}")]
    Runtime(String),
    /// espeak-ng could not phonemise the text.
    #[error("espeak-ng: {0}")]
    Phonemes(String),
    /// Nothing to say.
    #[error("no speakable phonemes in the text")]
    Empty,
}

impl From<ort::Error> for PiperError {
    fn from(e: ort::Error) -> Self {
        Self::Runtime(e.to_string())
    }
}

#[derive(Debug, Deserialize)]
struct VoiceConfig {
    audio: AudioConfig,
    espeak: EspeakConfig,
    inference: InferenceConfig,
    phoneme_id_map: HashMap<String, Vec<i64>>,
}

#[derive(Debug, Deserialize)]
struct AudioConfig {
    sample_rate: u32,
}

#[derive(Debug, Deserialize)]
struct EspeakConfig {
    voice: String,
}

#[derive(Debug, Deserialize)]
struct InferenceConfig {
    noise_scale: f32,
    length_scale: f32,
    noise_w: f32,
}

/// A loaded Piper voice.
pub struct Piper {
    session: Mutex<Session>,
    ids: HashMap<char, Vec<i64>>,
    sample_rate: u32,
    scales: [f32; 3],
    espeak_voice: String,
    espeak: PathBuf,
}

impl std::fmt::Debug for Piper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Piper")
            .field("sample_rate", &self.sample_rate)
            .field("espeak_voice", &self.espeak_voice)
            .finish_non_exhaustive()
    }
}

fn file_err(path: &Path, e: impl std::fmt::Display) -> PiperError {
    PiperError::File {
        path: path.to_path_buf(),
        detail: e.to_string(),
    }
}

/// ONNX Runtime allows one environment per process: the first library
/// loaded stays, and every voice shares its environment.
fn environment(lib: &Path) -> Result<ort::environment::Environment, PiperError> {
    static ENV: OnceLock<Result<ort::environment::Environment, String>> = OnceLock::new();
    ENV.get_or_init(|| {
        ort::init_from(lib)
            .map_err(|e| e.to_string())?
            .with_name("switchboard-piper")
            .build()
            .map_err(|e| e.to_string())
    })
    .clone()
    .map_err(PiperError::Runtime)
}

impl Piper {
    /// Loads ONNX Runtime and the voice from a model directory (blocking; ~1 s).
    pub fn load(dir: &Path) -> Result<Self, PiperError> {
        let json_path = dir.join("voice.onnx.json");
        let text = std::fs::read_to_string(&json_path).map_err(|e| file_err(&json_path, e))?;
        let cfg: VoiceConfig = serde_json::from_str(&text).map_err(|e| file_err(&json_path, e))?;
        let lib = dir.join("libonnxruntime.so");
        if !lib.exists() {
            return Err(file_err(&lib, "missing"));
        }
        let model = dir.join("voice.onnx");
        if !model.exists() {
            return Err(file_err(&model, "missing"));
        }
        let env = environment(&lib)?;
        let session = Session::builder(&env)?
            .with_intra_threads(1)
            .map_err(|e| PiperError::Runtime(e.to_string()))?
            .commit_from_file(&model)?;
        let mut ids = HashMap::new();
        for (k, v) in cfg.phoneme_id_map {
            let mut chars = k.chars();
            if let (Some(c), None) = (chars.next(), chars.next()) {
                ids.insert(c, v);
            }
        }
        Ok(Self {
            session: Mutex::new(session),
            ids,
            sample_rate: cfg.audio.sample_rate,
            scales: [
                cfg.inference.noise_scale,
                cfg.inference.length_scale,
                cfg.inference.noise_w,
            ],
            espeak_voice: cfg.espeak.voice,
            espeak: "espeak-ng".into(),
        })
    }

    /// The rate of [`Piper::synthesise`]'s output.
    pub fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    /// IPA phonemes for a text, from `espeak-ng --ipa` (one clause per line).
    pub async fn phonemes(&self, text: &str) -> Result<String, PiperError> {
        let out = Command::new(&self.espeak)
            .args(["-q", "--ipa", "-v", &self.espeak_voice, "--"])
            .arg(text)
            .kill_on_drop(true)
            .output()
            .await
            .map_err(|e| PiperError::Phonemes(e.to_string()))?;
        if !out.status.success() {
            return Err(PiperError::Phonemes(
                String::from_utf8_lossy(&out.stderr).trim().to_string(),
            ));
        }
        let ipa = String::from_utf8_lossy(&out.stdout);
        // Clause breaks become a full stop, as Piper's phonemiser keeps them.
        let clauses: Vec<&str> = ipa
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        Ok(clauses.join(". ") + ".")
    }

    /// Phoneme ids: `^ _ p1 _ p2 _ … $`; unknown symbols are skipped.
    pub fn phoneme_ids(&self, phonemes: &str) -> Vec<i64> {
        let get = |c: char| self.ids.get(&c).cloned().unwrap_or_default();
        let pad = get('_');
        let mut out = get('^');
        out.extend(&pad);
        for c in phonemes.chars() {
            if let Some(id) = self.ids.get(&c) {
                out.extend(id);
                out.extend(&pad);
            }
        }
        out.extend(get('$'));
        out
    }

    /// Runs the model (blocking): samples at [`Piper::sample_rate`], in -1..1.
    pub fn infer(&self, ids: &[i64]) -> Result<Vec<f32>, PiperError> {
        if ids.len() <= 3 {
            return Err(PiperError::Empty);
        }
        let n = ids.len();
        let input = Tensor::from_array(([1usize, n], ids.to_vec()))?;
        let lengths = Tensor::from_array(([1usize], vec![n as i64]))?;
        let scales = Tensor::from_array(([3usize], self.scales.to_vec()))?;
        let mut session = self
            .session
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let outputs = session.run(ort::inputs![
            "input" => input,
            "input_lengths" => lengths,
            "scales" => scales,
        ])?;
        let (_, samples) = outputs[0].try_extract_tensor::<f32>()?;
        Ok(samples.to_vec())
    }

    /// Text to 16-bit samples at [`Piper::sample_rate`] (phonemise, then infer).
    pub async fn synthesise(
        self: &std::sync::Arc<Self>,
        text: &str,
    ) -> Result<Vec<i16>, PiperError> {
        let ids = self.phoneme_ids(&self.phonemes(text).await?);
        let me = self.clone();
        let audio = tokio::task::spawn_blocking(move || me.infer(&ids))
            .await
            .map_err(|e| PiperError::Runtime(e.to_string()))??;
        // Piper's own output step: peak-normalise to the 16-bit range.
        let peak = audio.iter().fold(0.01f32, |m, s| m.max(s.abs()));
        let gain = 32_767.0 / peak;
        Ok(audio
            .iter()
            .map(|s| (s * gain).clamp(-32_768.0, 32_767.0) as i16)
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The prepared model of switchboard-models, if present.
    fn model_dir() -> Option<PathBuf> {
        let dir = std::env::var_os("SWITCHBOARD_PIPER_DIR")
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("HOME")
                    .map(|h| PathBuf::from(h).join(".cache/switchboard/models/piper-joe-medium"))
            })?;
        if dir.join("voice.onnx").exists() {
            Some(dir)
        } else {
            eprintln!(
                "\n*** SKIPPED: Piper voice not prepared at {} (switchboard-models prepare piper-joe-medium) ***\n",
                dir.display()
            );
            None
        }
    }

    #[tokio::test]
    async fn speaks_with_the_neural_voice() {
        let Some(dir) = model_dir() else { return };
        let piper = std::sync::Arc::new(Piper::load(&dir).unwrap());
        assert_eq!(piper.sample_rate(), 22_050);
        let ph = piper.phonemes("For billing press 1.").await.unwrap();
        assert!(ph.contains("bˈɪlɪŋ"), "{ph}");
        let ids = piper.phoneme_ids(&ph);
        assert_eq!(ids.first(), piper.ids.get(&'^').and_then(|v| v.first()));
        assert_eq!(ids.last(), piper.ids.get(&'$').and_then(|v| v.first()));
        let pcm = piper.synthesise("For billing press 1.").await.unwrap();
        // Roughly one to three seconds of speech at 22.05 kHz.
        assert!(pcm.len() > 15_000 && pcm.len() < 70_000, "{}", pcm.len());
        assert!(pcm.iter().any(|s| s.unsigned_abs() > 10_000));
    }
}
