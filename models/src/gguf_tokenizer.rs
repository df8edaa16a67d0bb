//! GGUF metadata → Hugging Face `tokenizer.json`.
//!
//! GGUF files for llama.cpp carry their tokenizer as metadata
//! (`tokenizer.ggml.tokens`, `token_type`, `merges`, `pre`, special token ids,
//! `chat_template`) but no `tokenizer.json`, which is what the `tokenizers`
//! crate (and so candle's examples and Switchboard's LLM client) loads. This
//! module rebuilds the byte-level BPE tokenizer with the `tokenizers` crate's
//! own types, so the result is serialized by the same code that will read it.
//!
//! Supported: `tokenizer.ggml.model = "gpt2"` (byte-level BPE) with the
//! pre-tokenizers `smollm` (digits split one by one, then GPT-2 byte-level
//! splitting — SmolLM, StarCoder), `gpt2`/`default`, and `qwen2`.

use std::collections::HashMap;

use candle_core::quantized::gguf_file::Value;
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::BPE;
use tokenizers::normalizers::unicode::NFC;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::processors::template::TemplateProcessing;
use tokenizers::{AddedToken, PreTokenizerWrapper, SplitDelimiterBehavior, Tokenizer};

/// GGUF `tokenizer.ggml.token_type` values (llama.cpp's `llama_token_type`).
mod token_type {
    pub const CONTROL: i32 = 3;
    pub const USER_DEFINED: i32 = 4;
}

/// Qwen2's pre-tokenizer split pattern (as in its `tokenizer.json`).
const QWEN2_PATTERN: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// Why a GGUF tokenizer could not be converted.
#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    /// A required metadata key is absent.
    #[error("GGUF metadata has no `{0}`")]
    Missing(&'static str),
    /// A metadata key has the wrong type.
    #[error("GGUF metadata `{key}` is not {expected}")]
    WrongType {
        /// The key.
        key: &'static str,
        /// What it should be.
        expected: &'static str,
    },
    /// A tokenizer model or pre-tokenizer this converter does not know.
    #[error("unsupported GGUF tokenizer: {0}")]
    Unsupported(String),
    /// The metadata is inconsistent (e.g. a merge that is not two tokens).
    #[error("invalid GGUF tokenizer metadata: {0}")]
    Invalid(String),
    /// The `tokenizers` crate refused the assembled tokenizer.
    #[error("building the tokenizer: {0}")]
    Build(String),
}

/// The tokenizer rebuilt from a GGUF file's metadata.
#[derive(Debug)]
pub struct GgufTokenizer {
    /// Byte-level BPE tokenizer with the special tokens registered.
    pub tokenizer: Tokenizer,
    /// `tokenizer.chat_template` (a Jinja template), when present.
    pub chat_template: Option<String>,
    /// Beginning-of-sequence token id, when declared.
    pub bos_token_id: Option<u32>,
    /// End-of-sequence token id, when declared.
    pub eos_token_id: Option<u32>,
}

impl GgufTokenizer {
    /// The tokenizer as `tokenizer.json` text (pretty-printed, deterministic).
    pub fn to_json(&self) -> Result<String, TokenizerError> {
        self.tokenizer
            .to_string(true)
            .map_err(|e| TokenizerError::Build(e.to_string()))
    }
}

fn get<'a>(md: &'a HashMap<String, Value>, key: &'static str) -> Result<&'a Value, TokenizerError> {
    md.get(key).ok_or(TokenizerError::Missing(key))
}

fn string_array(
    md: &HashMap<String, Value>,
    key: &'static str,
) -> Result<Vec<String>, TokenizerError> {
    let wrong = || TokenizerError::WrongType {
        key,
        expected: "an array of strings",
    };
    get(md, key)?
        .to_vec()
        .map_err(|_| wrong())?
        .iter()
        .map(|v| v.to_string().cloned().map_err(|_| wrong()))
        .collect()
}

fn optional_u32(
    md: &HashMap<String, Value>,
    key: &'static str,
) -> Result<Option<u32>, TokenizerError> {
    match md.get(key) {
        None => Ok(None),
        Some(v) => v.to_u32().map(Some).map_err(|_| TokenizerError::WrongType {
            key,
            expected: "a u32",
        }),
    }
}

fn value_as_i32(v: &Value) -> Option<i32> {
    match v {
        Value::I32(x) => Some(*x),
        Value::U32(x) => i32::try_from(*x).ok(),
        Value::I8(x) => Some(i32::from(*x)),
        Value::U8(x) => Some(i32::from(*x)),
        Value::I16(x) => Some(i32::from(*x)),
        Value::U16(x) => Some(i32::from(*x)),
        Value::I64(x) => i32::try_from(*x).ok(),
        Value::U64(x) => i32::try_from(*x).ok(),
        _ => None,
    }
}

/// Builds the tokenizer from GGUF metadata (as read by candle's `gguf_file::Content`).
pub fn tokenizer_from_gguf(md: &HashMap<String, Value>) -> Result<GgufTokenizer, TokenizerError> {
    let model =
        get(md, "tokenizer.ggml.model")?
            .to_string()
            .map_err(|_| TokenizerError::WrongType {
                key: "tokenizer.ggml.model",
                expected: "a string",
            })?;
    if model != "gpt2" {
        return Err(TokenizerError::Unsupported(format!(
            "tokenizer.ggml.model = `{model}` (only byte-level BPE, `gpt2`, is supported)"
        )));
    }
    let pre = match md.get("tokenizer.ggml.pre") {
        None => "default".to_owned(),
        Some(v) => v
            .to_string()
            .map_err(|_| TokenizerError::WrongType {
                key: "tokenizer.ggml.pre",
                expected: "a string",
            })?
            .clone(),
    };
    let tokens = string_array(md, "tokenizer.ggml.tokens")?;
    let types: Vec<i32> = match md.get("tokenizer.ggml.token_type") {
        None => vec![1; tokens.len()],
        Some(v) => v
            .to_vec()
            .map_err(|_| TokenizerError::WrongType {
                key: "tokenizer.ggml.token_type",
                expected: "an array",
            })?
            .iter()
            .map(|t| {
                value_as_i32(t).ok_or(TokenizerError::WrongType {
                    key: "tokenizer.ggml.token_type",
                    expected: "an array of integers",
                })
            })
            .collect::<Result<_, _>>()?,
    };
    if types.len() != tokens.len() {
        return Err(TokenizerError::Invalid(format!(
            "{} tokens but {} token types",
            tokens.len(),
            types.len()
        )));
    }
    let merges = string_array(md, "tokenizer.ggml.merges")?
        .into_iter()
        .map(|m| match m.split_once(' ') {
            Some((a, b)) if !a.is_empty() && !b.is_empty() && !b.contains(' ') => {
                Ok((a.to_owned(), b.to_owned()))
            }
            _ => Err(TokenizerError::Invalid(format!(
                "merge `{m}` is not two space-separated tokens"
            ))),
        })
        .collect::<Result<Vec<_>, _>>()?;

    let mut vocab = ahash::AHashMap::with_capacity(tokens.len());
    for (id, token) in tokens.iter().enumerate() {
        let id =
            u32::try_from(id).map_err(|_| TokenizerError::Invalid("too many tokens".into()))?;
        if vocab.insert(token.clone(), id).is_some() {
            return Err(TokenizerError::Invalid(format!(
                "token `{token}` appears twice"
            )));
        }
    }
    let bpe = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .build()
        .map_err(|e| TokenizerError::Build(e.to_string()))?;
    let mut tokenizer = Tokenizer::new(bpe);

    match pre.as_str() {
        "smollm" | "starcoder" | "refact" | "codeshell" => {
            let seq: Vec<PreTokenizerWrapper> = vec![
                Digits::new(true).into(),
                ByteLevel::new(false, true, true).into(),
            ];
            tokenizer.with_pre_tokenizer(Some(Sequence::new(seq)));
        }
        "gpt2" | "default" => {
            tokenizer.with_pre_tokenizer(Some(ByteLevel::new(false, true, true)));
        }
        "qwen2" => {
            let split = Split::new(
                SplitPattern::Regex(QWEN2_PATTERN.to_owned()),
                SplitDelimiterBehavior::Isolated,
                false,
            )
            .map_err(|e| TokenizerError::Build(e.to_string()))?;
            let seq: Vec<PreTokenizerWrapper> =
                vec![split.into(), ByteLevel::new(false, false, false).into()];
            tokenizer
                .with_normalizer(Some(NFC))
                .map_err(|e| TokenizerError::Build(e.to_string()))?;
            tokenizer.with_pre_tokenizer(Some(Sequence::new(seq)));
        }
        other => {
            return Err(TokenizerError::Unsupported(format!(
                "tokenizer.ggml.pre = `{other}` (supported: smollm, gpt2, qwen2)"
            )));
        }
    }
    tokenizer.with_decoder(Some(ByteLevelDecoder::default()));

    let bos_token_id = optional_u32(md, "tokenizer.ggml.bos_token_id")?;
    let eos_token_id = optional_u32(md, "tokenizer.ggml.eos_token_id")?;
    let add_bos = matches!(
        md.get("tokenizer.ggml.add_bos_token"),
        Some(Value::Bool(true))
    );
    match (add_bos, bos_token_id) {
        (true, Some(bos)) => {
            let bos_token = tokens.get(bos as usize).ok_or_else(|| {
                TokenizerError::Invalid(format!("bos_token_id {bos} is out of range"))
            })?;
            let template = TemplateProcessing::builder()
                .try_single(format!("{bos_token} $A"))
                .and_then(|b| b.try_pair(format!("{bos_token} $A {bos_token} $B")))
                .map_err(|e| TokenizerError::Build(e.to_string()))?
                .special_tokens(vec![(bos_token.clone(), bos)])
                .build()
                .map_err(|e| TokenizerError::Build(e.to_string()))?;
            tokenizer.with_post_processor(Some(template));
        }
        _ => {
            tokenizer.with_post_processor(Some(ByteLevel::new(true, false, true)));
        }
    }

    // Control tokens (`<|im_start|>`, `<|endoftext|>` …) are special; user-defined
    // ones are added tokens matched before BPE but kept when decoding.
    let mut added = Vec::new();
    for (token, ty) in tokens.iter().zip(&types) {
        match *ty {
            token_type::CONTROL => added.push(AddedToken::from(token.clone(), true)),
            token_type::USER_DEFINED => {
                added.push(AddedToken::from(token.clone(), false).normalized(false))
            }
            _ => {}
        }
    }
    tokenizer
        .add_tokens(added.iter().filter(|t| !t.special).cloned())
        .map_err(|e| TokenizerError::Build(e.to_string()))?;
    tokenizer
        .add_special_tokens(added.into_iter().filter(|t| t.special))
        .map_err(|e| TokenizerError::Build(e.to_string()))?;

    let chat_template = match md.get("tokenizer.chat_template") {
        None => None,
        Some(v) => Some(
            v.to_string()
                .map_err(|_| TokenizerError::WrongType {
                    key: "tokenizer.chat_template",
                    expected: "a string",
                })?
                .clone(),
        ),
    };
    Ok(GgufTokenizer {
        tokenizer,
        chat_template,
        bos_token_id,
        eos_token_id,
    })
}

/// GPT-2's byte → printable character table that byte-level BPE vocabularies use.
/// Exposed so tests (here and in other crates) can build small vocabularies.
pub fn byte_level_alphabet() -> Vec<char> {
    let mut printable: Vec<u32> = (u32::from(b'!')..=u32::from(b'~')).collect();
    printable.extend(0xA1..=0xAC);
    printable.extend(0xAE..=0xFF);
    let mut out = vec!['\0'; 256];
    let mut extra = 0u32;
    for b in 0u32..256 {
        let c = if printable.contains(&b) {
            b
        } else {
            extra += 1;
            255 + extra
        };
        out[b as usize] = char::from_u32(c).unwrap_or('?');
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use candle_core::quantized::{GgmlDType, QTensor, gguf_file};
    use candle_core::{Device, Tensor};

    /// Metadata of a tiny SmolLM-like tokenizer: the 256 byte symbols, a few merges
    /// spelling `hello`, ` world` and `user`, and the chat special tokens.
    pub(crate) fn tiny_metadata(pre: &str) -> Vec<(String, Value)> {
        let alphabet = byte_level_alphabet();
        let specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"];
        let mut tokens: Vec<String> = specials.iter().map(|s| (*s).to_owned()).collect();
        let mut types = vec![token_type::CONTROL; specials.len()];
        for c in &alphabet {
            tokens.push(c.to_string());
            types.push(1);
        }
        let merges = [
            "h e", "l l", "he ll", "hell o", "Ġ w", "o r", "Ġw or", "l d", "Ġwor ld", "u s", "e r",
            "us er",
        ];
        for m in merges {
            tokens.push(m.replace(' ', ""));
            types.push(1);
        }
        tokens.push("[CUSTOM]".to_owned());
        types.push(token_type::USER_DEFINED);
        let strings = |v: Vec<String>| Value::Array(v.into_iter().map(Value::String).collect());
        vec![
            ("tokenizer.ggml.model".into(), Value::String("gpt2".into())),
            ("tokenizer.ggml.pre".into(), Value::String(pre.into())),
            ("tokenizer.ggml.tokens".into(), strings(tokens)),
            ("tokenizer.ggml.token_type".into(), Value::Array(types.into_iter().map(Value::I32).collect())),
            ("tokenizer.ggml.merges".into(), strings(merges.iter().map(|m| (*m).to_owned()).collect())),
            ("tokenizer.ggml.bos_token_id".into(), Value::U32(1)),
            ("tokenizer.ggml.eos_token_id".into(), Value::U32(2)),
            (
                "tokenizer.chat_template".into(),
                Value::String("{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}".into()),
            ),
        ]
    }

    /// Writes a tiny GGUF file (the metadata above plus one small tensor).
    pub(crate) fn write_tiny_gguf(path: &std::path::Path, metadata: &[(String, Value)]) {
        let mut file = std::fs::File::create(path).unwrap();
        let md: Vec<(&str, &Value)> = metadata.iter().map(|(k, v)| (k.as_str(), v)).collect();
        let t = Tensor::arange(0f32, 64f32, &Device::Cpu)
            .unwrap()
            .reshape((2, 32))
            .unwrap();
        let q = QTensor::quantize(&t, GgmlDType::Q4_1).unwrap();
        gguf_file::write(&mut file, &md, &[("token_embd.weight", &q)]).unwrap();
    }

    fn read_metadata(path: &std::path::Path) -> HashMap<String, Value> {
        let mut file = std::fs::File::open(path).unwrap();
        gguf_file::Content::read(&mut file).unwrap().metadata
    }

    fn through_json(t: &GgufTokenizer) -> Tokenizer {
        let json = t.to_json().unwrap();
        json.parse::<Tokenizer>().unwrap()
    }

    #[test]
    fn smollm_tokenizer_from_a_synthetic_gguf_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tiny.gguf");
        write_tiny_gguf(&path, &tiny_metadata("smollm"));
        let converted = tokenizer_from_gguf(&read_metadata(&path)).unwrap();
        assert_eq!(converted.bos_token_id, Some(1));
        assert_eq!(converted.eos_token_id, Some(2));
        assert!(
            converted
                .chat_template
                .as_deref()
                .unwrap()
                .contains("<|im_start|>")
        );
        let tok = through_json(&converted);

        let text = "<|im_start|>user\nhello world 2024!<|im_end|>";
        let enc = tok.encode(text, false).unwrap();
        let pieces = enc.get_tokens();
        assert_eq!(pieces[0], "<|im_start|>");
        assert_eq!(enc.get_ids()[0], 1);
        assert_eq!(*enc.get_ids().last().unwrap(), 2);
        assert!(pieces.contains(&"user".to_owned()), "{pieces:?}");
        assert!(pieces.contains(&"hello".to_owned()), "{pieces:?}");
        assert!(pieces.contains(&"Ġworld".to_owned()), "{pieces:?}");
        // `smollm` splits digits one by one before BPE.
        assert!(
            pieces.windows(4).any(|w| w == ["2", "0", "2", "4"]),
            "{pieces:?}"
        );
        assert_eq!(tok.decode(enc.get_ids(), false).unwrap(), text);
        // Skipping special tokens drops the chat markers only.
        assert_eq!(
            tok.decode(enc.get_ids(), true).unwrap(),
            "user\nhello world 2024!"
        );
        // Bytes outside ASCII survive through the byte-level alphabet.
        let text = "naïve 你好 — ok";
        let enc = tok.encode(text, false).unwrap();
        assert_eq!(tok.decode(enc.get_ids(), false).unwrap(), text);
        // A user-defined token is one piece.
        let enc = tok.encode("a[CUSTOM]b", false).unwrap();
        assert!(enc.get_tokens().contains(&"[CUSTOM]".to_owned()));
    }

    #[test]
    fn add_bos_token_prepends_the_bos() {
        let mut md = tiny_metadata("gpt2");
        md.push(("tokenizer.ggml.add_bos_token".into(), Value::Bool(true)));
        let md: HashMap<String, Value> = md.into_iter().collect();
        let tok = through_json(&tokenizer_from_gguf(&md).unwrap());
        let enc = tok.encode("hello", true).unwrap();
        assert_eq!(enc.get_ids()[0], 1);
        assert_eq!(enc.get_tokens(), ["<|im_start|>", "hello"]);
        assert_eq!(tok.encode("hello", false).unwrap().get_tokens(), ["hello"]);
    }

    #[test]
    fn qwen2_pre_tokenizer_builds_and_round_trips() {
        let md: HashMap<String, Value> = tiny_metadata("qwen2").into_iter().collect();
        let tok = through_json(&tokenizer_from_gguf(&md).unwrap());
        let text = "hello world\n\n12 你好";
        let enc = tok.encode(text, false).unwrap();
        assert_eq!(tok.decode(enc.get_ids(), false).unwrap(), text);
        assert!(enc.get_tokens().contains(&"hello".to_owned()));
    }

    #[test]
    fn conversion_is_deterministic() {
        let md: HashMap<String, Value> = tiny_metadata("smollm").into_iter().collect();
        let a = tokenizer_from_gguf(&md).unwrap().to_json().unwrap();
        let b = tokenizer_from_gguf(&md).unwrap().to_json().unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn unsupported_and_broken_metadata_are_rejected_with_the_key() {
        let mut md: HashMap<String, Value> = tiny_metadata("smollm").into_iter().collect();
        md.insert("tokenizer.ggml.pre".into(), Value::String("mystery".into()));
        assert!(
            tokenizer_from_gguf(&md)
                .unwrap_err()
                .to_string()
                .contains("mystery")
        );

        let mut md: HashMap<String, Value> = tiny_metadata("smollm").into_iter().collect();
        md.insert("tokenizer.ggml.model".into(), Value::String("llama".into()));
        assert!(matches!(
            tokenizer_from_gguf(&md),
            Err(TokenizerError::Unsupported(_))
        ));

        let mut md: HashMap<String, Value> = tiny_metadata("smollm").into_iter().collect();
        md.remove("tokenizer.ggml.merges");
        assert!(
            tokenizer_from_gguf(&md)
                .unwrap_err()
                .to_string()
                .contains("tokenizer.ggml.merges")
        );

        let mut md: HashMap<String, Value> = tiny_metadata("smollm").into_iter().collect();
        md.insert(
            "tokenizer.ggml.merges".into(),
            Value::Array(vec![Value::String("nospace".into())]),
        );
        assert!(matches!(
            tokenizer_from_gguf(&md),
            Err(TokenizerError::Invalid(_))
        ));

        let mut md: HashMap<String, Value> = tiny_metadata("smollm").into_iter().collect();
        md.insert(
            "tokenizer.ggml.token_type".into(),
            Value::Array(vec![Value::I32(1)]),
        );
        assert!(matches!(
            tokenizer_from_gguf(&md),
            Err(TokenizerError::Invalid(_))
        ));
    }

    #[test]
    fn byte_alphabet_is_a_bijection_matching_gpt2() {
        let a = byte_level_alphabet();
        let unique: std::collections::HashSet<char> = a.iter().copied().collect();
        assert_eq!(unique.len(), 256);
        assert_eq!(a[b' ' as usize], 'Ġ');
        assert_eq!(a[b'\n' as usize], 'Ċ');
        assert_eq!(a[b'A' as usize], 'A');
    }
}
