//! CTranslate2 Whisper → whisper.cpp's ggml model file (what whisper-rs loads).
//!
//! The file is the one whisper.cpp's own `convert-pt-to-ggml.py` writes:
//!
//! ```text
//! i32 magic 0x67676d6c ("ggml")
//! 11 × i32 hparams: n_vocab, n_audio_ctx, n_audio_state, n_audio_head, n_audio_layer,
//!                   n_text_ctx, n_text_state, n_text_head, n_text_layer, n_mels, ftype (1 = f16)
//! mel filters: i32 n_mel, i32 n_fft, n_mel × n_fft f32
//! vocabulary:  i32 count, then per token i32 length + bytes (tiktoken order)
//! tensors:     i32 n_dims, i32 name length, i32 type (0 f32, 1 f16),
//!              n_dims × i32 sizes (innermost first), name, data (row-major)
//! ```
//!
//! Matrices are f16; vectors, the conv biases (as `[n, 1]`) and the positional
//! embeddings are f32. CTranslate2 fuses the self-attention q/k/v projections
//! (and the cross-attention k/v) into one matrix: their rows are split back,
//! and the key projections (which have no bias in Whisper; CTranslate2 stores
//! zeros) get none. The mel filter bank and the tiktoken vocabulary come from
//! the `openai-whisper` sdist, as in whisper.cpp's converter.

use std::io::{self, Write};

use base64::Engine;

use crate::ct2::{Ct2Model, Variable};

/// ggml file magic.
pub const MAGIC: u32 = 0x6767_6d6c;

/// The model's hyper-parameters as whisper.cpp reads them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hparams {
    /// Vocabulary size (51864 English-only, 51865 multilingual, 51866 large-v3).
    pub n_vocab: usize,
    /// Encoder positions (1500 for 30 s).
    pub n_audio_ctx: usize,
    /// Encoder width.
    pub n_audio_state: usize,
    /// Encoder heads.
    pub n_audio_head: usize,
    /// Encoder layers.
    pub n_audio_layer: usize,
    /// Decoder positions (448).
    pub n_text_ctx: usize,
    /// Decoder width.
    pub n_text_state: usize,
    /// Decoder heads.
    pub n_text_head: usize,
    /// Decoder layers.
    pub n_text_layer: usize,
    /// Mel bins (80, or 128 for large-v3).
    pub n_mels: usize,
}

/// What went wrong converting.
#[derive(Debug, thiserror::Error)]
pub enum GgmlError {
    /// A variable the conversion needs is absent.
    #[error("model.bin has no variable `{0}`")]
    Missing(String),
    /// A variable has an unexpected shape or type.
    #[error("variable `{name}`: {message}")]
    Shape {
        /// The variable.
        name: String,
        /// What is wrong.
        message: String,
    },
    /// The model is not a CTranslate2 Whisper model.
    #[error("not a CTranslate2 Whisper model (spec `{0}`)")]
    NotWhisper(String),
    /// Writing failed.
    #[error("writing the ggml file: {0}")]
    Io(#[from] io::Error),
}

fn var<'m, 'a>(m: &'m Ct2Model<'a>, name: &str) -> Result<&'m Variable<'a>, GgmlError> {
    m.get(name)
        .ok_or_else(|| GgmlError::Missing(name.to_owned()))
}

fn dims2(m: &Ct2Model<'_>, name: &str) -> Result<(usize, usize), GgmlError> {
    match var(m, name)?.dims.as_slice() {
        [a, b] => Ok((*a, *b)),
        d => Err(GgmlError::Shape {
            name: name.to_owned(),
            message: format!("expected 2 dimensions, found {d:?}"),
        }),
    }
}

fn count_layers(m: &Ct2Model<'_>, prefix: &str) -> usize {
    (0..)
        .take_while(|i| {
            m.variables
                .keys()
                .any(|k| k.starts_with(&format!("{prefix}/layer_{i}/")))
        })
        .count()
}

impl Hparams {
    /// Reads the hyper-parameters off the variables' shapes and the head-count scalars.
    pub fn from_ct2(m: &Ct2Model<'_>) -> Result<Self, GgmlError> {
        if m.spec != "WhisperSpec" {
            return Err(GgmlError::NotWhisper(m.spec.clone()));
        }
        let heads = |name: &str| -> Result<usize, GgmlError> {
            var(m, name)?
                .as_int()
                .and_then(|h| usize::try_from(h).ok())
                .filter(|&h| h > 0)
                .ok_or_else(|| GgmlError::Shape {
                    name: name.to_owned(),
                    message: "expected a positive integer scalar".into(),
                })
        };
        let (n_vocab, n_text_state) = dims2(m, "decoder/embeddings/weight")?;
        let (n_text_ctx, _) = dims2(m, "decoder/position_encodings/encodings")?;
        let (n_audio_ctx, n_audio_state) = dims2(m, "encoder/position_encodings/encodings")?;
        let conv1 = &var(m, "encoder/conv1/weight")?.dims;
        let n_mels = match conv1.as_slice() {
            [_, mels, 3] => *mels,
            d => {
                return Err(GgmlError::Shape {
                    name: "encoder/conv1/weight".into(),
                    message: format!("expected [state, mels, 3], found {d:?}"),
                });
            }
        };
        let h = Hparams {
            n_vocab,
            n_audio_ctx,
            n_audio_state,
            n_audio_head: heads("encoder/num_heads")?,
            n_audio_layer: count_layers(m, "encoder"),
            n_text_ctx,
            n_text_state,
            n_text_head: heads("decoder/num_heads")?,
            n_text_layer: count_layers(m, "decoder"),
            n_mels,
        };
        if h.n_audio_layer == 0 || h.n_text_layer == 0 {
            return Err(GgmlError::Missing(
                "encoder/layer_0 or decoder/layer_0".into(),
            ));
        }
        Ok(h)
    }

    /// Whether the model is multilingual (uses `multilingual.tiktoken`), as whisper.cpp decides it.
    pub fn is_multilingual(&self) -> bool {
        self.n_vocab >= 51865
    }

    fn as_i32s(&self) -> [usize; 10] {
        [
            self.n_vocab,
            self.n_audio_ctx,
            self.n_audio_state,
            self.n_audio_head,
            self.n_audio_layer,
            self.n_text_ctx,
            self.n_text_state,
            self.n_text_head,
            self.n_text_layer,
            self.n_mels,
        ]
    }
}

/// The mel filter bank (`n_mel` × `n_fft` f32, row-major).
#[derive(Debug, Clone, PartialEq)]
pub struct MelFilters {
    /// Mel bins.
    pub n_mel: usize,
    /// FFT bins (201 for Whisper's 400-sample window).
    pub n_fft: usize,
    /// The weights.
    pub data: Vec<f32>,
}

impl MelFilters {
    /// Reads `mel_<n_mels>` from openai-whisper's `mel_filters.npz` (a zip of `.npy` files).
    pub fn from_npz(npz: &[u8], n_mels: usize) -> Result<Self, String> {
        let mut zip = zip::ZipArchive::new(io::Cursor::new(npz))
            .map_err(|e| format!("mel_filters.npz: {e}"))?;
        let member = format!("mel_{n_mels}.npy");
        let entry = zip
            .by_name(&member)
            .map_err(|e| format!("mel_filters.npz has no {member}: {e}"))?;
        let npy = npyz::NpyFile::new(entry).map_err(|e| format!("{member}: {e}"))?;
        let shape = npy.shape().to_vec();
        let data: Vec<f32> = npy.into_vec().map_err(|e| format!("{member}: {e}"))?;
        match shape.as_slice() {
            [m, f] if *m as usize == n_mels && data.len() == (*m * *f) as usize => Ok(MelFilters {
                n_mel: *m as usize,
                n_fft: *f as usize,
                data,
            }),
            s => Err(format!("{member}: unexpected shape {s:?}")),
        }
    }
}

/// Parses a tiktoken file (`base64-token rank` per line) into tokens by rank.
pub fn parse_tiktoken(text: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let text = std::str::from_utf8(text).map_err(|_| "tiktoken file is not UTF-8".to_owned())?;
    let mut out: Vec<Option<Vec<u8>>> = Vec::new();
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let (tok, rank) = line
            .split_once(' ')
            .ok_or_else(|| format!("line {}: expected `token rank`", i + 1))?;
        let rank: usize = rank
            .trim()
            .parse()
            .map_err(|_| format!("line {}: bad rank", i + 1))?;
        // Like Python's b64decode, padding is optional; `=` alone (rank 50256 of
        // multilingual.tiktoken) is the empty token.
        let bytes = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(tok.trim_end_matches('='))
            .map_err(|e| format!("line {}: {e}", i + 1))?;
        if rank >= out.len() {
            out.resize(rank + 1, None);
        }
        if out[rank].replace(bytes).is_some() {
            return Err(format!("rank {rank} appears twice"));
        }
    }
    out.into_iter()
        .enumerate()
        .map(|(rank, t)| t.ok_or_else(|| format!("rank {rank} is missing")))
        .collect()
}

/// ggml element type of a tensor in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GgmlType {
    /// f32 (type 0).
    F32,
    /// f16 (type 1).
    F16,
}

impl GgmlType {
    fn code(self) -> i32 {
        match self {
            GgmlType::F32 => 0,
            GgmlType::F16 => 1,
        }
    }
}

/// A tensor whisper.cpp expects: name, sizes innermost first (ggml `ne`), type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorSpec {
    /// Name as in OpenAI's PyTorch checkpoint.
    pub name: String,
    /// ggml sizes, innermost first.
    pub ne: Vec<usize>,
    /// Element type.
    pub ty: GgmlType,
}

/// The tensors whisper.cpp's loader creates for a model with these hyper-parameters
/// (transcribed from `whisper_model_load`), for an f16 model. The converted file
/// must contain exactly these, with these sizes.
pub fn expected_tensors(h: &Hparams) -> Vec<TensorSpec> {
    use GgmlType::{F16, F32};
    let mut v = Vec::new();
    let mut t = |name: String, ne: &[usize], ty| {
        v.push(TensorSpec {
            name,
            ne: ne.to_vec(),
            ty,
        })
    };
    let (s, c) = (h.n_audio_state, h.n_audio_ctx);
    t("encoder.positional_embedding".into(), &[s, c], F32);
    t("encoder.conv1.weight".into(), &[3, h.n_mels, s], F16);
    t("encoder.conv1.bias".into(), &[1, s], F32);
    t("encoder.conv2.weight".into(), &[3, s, s], F16);
    t("encoder.conv2.bias".into(), &[1, s], F32);
    t("encoder.ln_post.weight".into(), &[s], F32);
    t("encoder.ln_post.bias".into(), &[s], F32);
    for i in 0..h.n_audio_layer {
        let p = format!("encoder.blocks.{i}");
        t(format!("{p}.mlp_ln.weight"), &[s], F32);
        t(format!("{p}.mlp_ln.bias"), &[s], F32);
        t(format!("{p}.mlp.0.weight"), &[s, 4 * s], F16);
        t(format!("{p}.mlp.0.bias"), &[4 * s], F32);
        t(format!("{p}.mlp.2.weight"), &[4 * s, s], F16);
        t(format!("{p}.mlp.2.bias"), &[s], F32);
        t(format!("{p}.attn_ln.weight"), &[s], F32);
        t(format!("{p}.attn_ln.bias"), &[s], F32);
        t(format!("{p}.attn.query.weight"), &[s, s], F16);
        t(format!("{p}.attn.query.bias"), &[s], F32);
        t(format!("{p}.attn.key.weight"), &[s, s], F16);
        t(format!("{p}.attn.value.weight"), &[s, s], F16);
        t(format!("{p}.attn.value.bias"), &[s], F32);
        t(format!("{p}.attn.out.weight"), &[s, s], F16);
        t(format!("{p}.attn.out.bias"), &[s], F32);
    }
    let (s, c) = (h.n_text_state, h.n_text_ctx);
    t("decoder.positional_embedding".into(), &[s, c], F32);
    t(
        "decoder.token_embedding.weight".into(),
        &[s, h.n_vocab],
        F16,
    );
    t("decoder.ln.weight".into(), &[s], F32);
    t("decoder.ln.bias".into(), &[s], F32);
    for i in 0..h.n_text_layer {
        let p = format!("decoder.blocks.{i}");
        t(format!("{p}.mlp_ln.weight"), &[s], F32);
        t(format!("{p}.mlp_ln.bias"), &[s], F32);
        t(format!("{p}.mlp.0.weight"), &[s, 4 * s], F16);
        t(format!("{p}.mlp.0.bias"), &[4 * s], F32);
        t(format!("{p}.mlp.2.weight"), &[4 * s, s], F16);
        t(format!("{p}.mlp.2.bias"), &[s], F32);
        t(format!("{p}.attn_ln.weight"), &[s], F32);
        t(format!("{p}.attn_ln.bias"), &[s], F32);
        for a in ["attn", "cross_attn"] {
            t(format!("{p}.{a}.query.weight"), &[s, s], F16);
            t(format!("{p}.{a}.query.bias"), &[s], F32);
            t(format!("{p}.{a}.key.weight"), &[s, s], F16);
            t(format!("{p}.{a}.value.weight"), &[s, s], F16);
            t(format!("{p}.{a}.value.bias"), &[s], F32);
            t(format!("{p}.{a}.out.weight"), &[s, s], F16);
            t(format!("{p}.{a}.out.bias"), &[s], F32);
        }
        t(format!("{p}.cross_attn_ln.weight"), &[s], F32);
        t(format!("{p}.cross_attn_ln.bias"), &[s], F32);
    }
    v
}

/// Where a ggml tensor's data comes from: a CTranslate2 variable, or a block of
/// its rows (`part` of `parts` equal slices along the first dimension).
#[derive(Debug, Clone)]
struct Source {
    ct2: String,
    part: usize,
    parts: usize,
}

fn src(ct2: String) -> Source {
    Source {
        ct2,
        part: 0,
        parts: 1,
    }
}

fn slice(ct2: String, part: usize, parts: usize) -> Source {
    Source { ct2, part, parts }
}

/// The ggml name → CTranslate2 source mapping, in the order OpenAI's checkpoint lists them.
fn plan(h: &Hparams) -> Vec<(String, Source)> {
    let mut v: Vec<(String, Source)> = Vec::new();
    let mut add = |n: String, s: Source| v.push((n, s));
    add(
        "encoder.positional_embedding".into(),
        src("encoder/position_encodings/encodings".into()),
    );
    for conv in ["conv1", "conv2"] {
        add(
            format!("encoder.{conv}.weight"),
            src(format!("encoder/{conv}/weight")),
        );
        add(
            format!("encoder.{conv}.bias"),
            src(format!("encoder/{conv}/bias")),
        );
    }
    let ln = |add: &mut dyn FnMut(String, Source), to: String, from: String| {
        add(format!("{to}.weight"), src(format!("{from}/gamma")));
        add(format!("{to}.bias"), src(format!("{from}/beta")));
    };
    let ffn = |add: &mut dyn FnMut(String, Source), p: &str, c: &str| {
        add(
            format!("{p}.mlp.0.weight"),
            src(format!("{c}/ffn/linear_0/weight")),
        );
        add(
            format!("{p}.mlp.0.bias"),
            src(format!("{c}/ffn/linear_0/bias")),
        );
        add(
            format!("{p}.mlp.2.weight"),
            src(format!("{c}/ffn/linear_1/weight")),
        );
        add(
            format!("{p}.mlp.2.bias"),
            src(format!("{c}/ffn/linear_1/bias")),
        );
    };
    let self_attn = |add: &mut dyn FnMut(String, Source), p: &str, c: &str| {
        let fused = format!("{c}/self_attention/linear_0");
        add(
            format!("{p}.attn.query.weight"),
            slice(format!("{fused}/weight"), 0, 3),
        );
        add(
            format!("{p}.attn.query.bias"),
            slice(format!("{fused}/bias"), 0, 3),
        );
        add(
            format!("{p}.attn.key.weight"),
            slice(format!("{fused}/weight"), 1, 3),
        );
        add(
            format!("{p}.attn.value.weight"),
            slice(format!("{fused}/weight"), 2, 3),
        );
        add(
            format!("{p}.attn.value.bias"),
            slice(format!("{fused}/bias"), 2, 3),
        );
        add(
            format!("{p}.attn.out.weight"),
            src(format!("{c}/self_attention/linear_1/weight")),
        );
        add(
            format!("{p}.attn.out.bias"),
            src(format!("{c}/self_attention/linear_1/bias")),
        );
    };
    for i in 0..h.n_audio_layer {
        let (p, c) = (format!("encoder.blocks.{i}"), format!("encoder/layer_{i}"));
        self_attn(&mut add, &p, &c);
        ln(
            &mut add,
            format!("{p}.attn_ln"),
            format!("{c}/self_attention/layer_norm"),
        );
        ffn(&mut add, &p, &c);
        ln(
            &mut add,
            format!("{p}.mlp_ln"),
            format!("{c}/ffn/layer_norm"),
        );
    }
    ln(
        &mut add,
        "encoder.ln_post".into(),
        "encoder/layer_norm".into(),
    );
    add(
        "decoder.positional_embedding".into(),
        src("decoder/position_encodings/encodings".into()),
    );
    add(
        "decoder.token_embedding.weight".into(),
        src("decoder/embeddings/weight".into()),
    );
    for i in 0..h.n_text_layer {
        let (p, c) = (format!("decoder.blocks.{i}"), format!("decoder/layer_{i}"));
        self_attn(&mut add, &p, &c);
        ln(
            &mut add,
            format!("{p}.attn_ln"),
            format!("{c}/self_attention/layer_norm"),
        );
        let a = format!("{c}/attention");
        add(
            format!("{p}.cross_attn.query.weight"),
            src(format!("{a}/linear_0/weight")),
        );
        add(
            format!("{p}.cross_attn.query.bias"),
            src(format!("{a}/linear_0/bias")),
        );
        add(
            format!("{p}.cross_attn.key.weight"),
            slice(format!("{a}/linear_1/weight"), 0, 2),
        );
        add(
            format!("{p}.cross_attn.value.weight"),
            slice(format!("{a}/linear_1/weight"), 1, 2),
        );
        add(
            format!("{p}.cross_attn.value.bias"),
            slice(format!("{a}/linear_1/bias"), 1, 2),
        );
        add(
            format!("{p}.cross_attn.out.weight"),
            src(format!("{a}/linear_2/weight")),
        );
        add(
            format!("{p}.cross_attn.out.bias"),
            src(format!("{a}/linear_2/bias")),
        );
        ln(
            &mut add,
            format!("{p}.cross_attn_ln"),
            format!("{a}/layer_norm"),
        );
        ffn(&mut add, &p, &c);
        ln(
            &mut add,
            format!("{p}.mlp_ln"),
            format!("{c}/ffn/layer_norm"),
        );
    }
    ln(&mut add, "decoder.ln".into(), "decoder/layer_norm".into());
    v
}

fn write_i32(w: &mut impl Write, v: usize) -> Result<(), GgmlError> {
    let v = i32::try_from(v)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "value exceeds i32"))?;
    w.write_all(&v.to_le_bytes())?;
    Ok(())
}

/// Writes the whisper.cpp ggml file for `model`.
pub fn write_ggml(
    w: &mut impl Write,
    model: &Ct2Model<'_>,
    h: &Hparams,
    filters: &MelFilters,
    vocab: &[Vec<u8>],
) -> Result<(), GgmlError> {
    w.write_all(&MAGIC.to_le_bytes())?;
    for v in h.as_i32s() {
        write_i32(w, v)?;
    }
    write_i32(w, 1)?; // ftype: f16
    write_i32(w, filters.n_mel)?;
    write_i32(w, filters.n_fft)?;
    for f in &filters.data {
        w.write_all(&f.to_le_bytes())?;
    }
    write_i32(w, vocab.len())?;
    for token in vocab {
        write_i32(w, token.len())?;
        w.write_all(token)?;
    }
    let expected = expected_tensors(h);
    for (name, source) in plan(h) {
        let spec = expected
            .iter()
            .find(|t| t.name == name)
            .ok_or_else(|| GgmlError::Missing(format!("(no whisper.cpp tensor named {name})")))?;
        let v = var(model, &source.ct2)?;
        let rows = *v.dims.first().ok_or_else(|| GgmlError::Shape {
            name: source.ct2.clone(),
            message: "expected a tensor, found a scalar".into(),
        })?;
        if rows % source.parts != 0 {
            return Err(GgmlError::Shape {
                name: source.ct2.clone(),
                message: format!("{rows} rows cannot be split in {}", source.parts),
            });
        }
        let per_part = v.len() / source.parts;
        if per_part != spec.ne.iter().product::<usize>() {
            return Err(GgmlError::Shape {
                name: source.ct2.clone(),
                message: format!(
                    "shape {:?} does not give {name} with sizes {:?}",
                    v.dims, spec.ne
                ),
            });
        }
        let range = source.part * per_part..(source.part + 1) * per_part;
        let not_float = || GgmlError::Shape {
            name: source.ct2.clone(),
            message: format!("{:?} is not a float type", v.dtype),
        };
        write_i32(w, spec.ne.len())?;
        write_i32(w, name.len())?;
        w.write_all(&spec.ty.code().to_le_bytes())?;
        for &n in &spec.ne {
            write_i32(w, n)?;
        }
        w.write_all(name.as_bytes())?;
        match spec.ty {
            GgmlType::F16 => {
                let data = v.to_f16().ok_or_else(not_float)?;
                let bytes: Vec<u8> = data[range].iter().flat_map(|x| x.to_le_bytes()).collect();
                w.write_all(&bytes)?;
            }
            GgmlType::F32 => {
                let data = v.to_f32().ok_or_else(not_float)?;
                let bytes: Vec<u8> = data[range].iter().flat_map(|x| x.to_le_bytes()).collect();
                w.write_all(&bytes)?;
            }
        }
    }
    Ok(())
}

/// A ggml Whisper file as read back (for checks): header, filters, vocabulary
/// and the tensor directory with each tensor's data offset.
#[derive(Debug)]
pub struct GgmlFile {
    /// Hyper-parameters from the header.
    pub hparams: Hparams,
    /// The ftype field.
    pub ftype: i32,
    /// Mel filters.
    pub filters: MelFilters,
    /// Vocabulary, in order.
    pub vocab: Vec<Vec<u8>>,
    /// Tensors in file order, with the byte offset of their data.
    pub tensors: Vec<(TensorSpec, usize)>,
}

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.data.len())
            .ok_or("truncated ggml file")?;
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn i32(&mut self) -> Result<i32, String> {
        let b = self.take(4)?;
        Ok(i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn size(&mut self) -> Result<usize, String> {
        let v = self.i32()?;
        usize::try_from(v).map_err(|_| format!("negative size {v}"))
    }
}

/// Reads a whisper.cpp ggml file the way whisper.cpp's loader walks it.
pub fn read_ggml(data: &[u8]) -> Result<GgmlFile, String> {
    let mut r = Reader { data, pos: 0 };
    if r.i32()? as u32 != MAGIC {
        return Err("bad magic".into());
    }
    let mut hp = [0usize; 10];
    for x in hp.iter_mut() {
        *x = r.size()?;
    }
    let ftype = r.i32()?;
    let hparams = Hparams {
        n_vocab: hp[0],
        n_audio_ctx: hp[1],
        n_audio_state: hp[2],
        n_audio_head: hp[3],
        n_audio_layer: hp[4],
        n_text_ctx: hp[5],
        n_text_state: hp[6],
        n_text_head: hp[7],
        n_text_layer: hp[8],
        n_mels: hp[9],
    };
    let n_mel = r.size()?;
    let n_fft = r.size()?;
    let fdata = r
        .take(n_mel * n_fft * 4)?
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let filters = MelFilters {
        n_mel,
        n_fft,
        data: fdata,
    };
    let n_vocab = r.size()?;
    let mut vocab = Vec::with_capacity(n_vocab.min(1 << 20));
    for _ in 0..n_vocab {
        let len = r.size()?;
        vocab.push(r.take(len)?.to_vec());
    }
    let mut tensors = Vec::new();
    while r.pos < data.len() {
        let n_dims = r.size()?;
        let name_len = r.size()?;
        let ty = match r.i32()? {
            0 => GgmlType::F32,
            1 => GgmlType::F16,
            t => return Err(format!("unsupported tensor type {t}")),
        };
        let mut ne = Vec::with_capacity(n_dims.min(4));
        for _ in 0..n_dims {
            ne.push(r.size()?);
        }
        let name = String::from_utf8(r.take(name_len)?.to_vec())
            .map_err(|_| "tensor name is not UTF-8")?;
        let size = ne.iter().product::<usize>() * if ty == GgmlType::F16 { 2 } else { 4 };
        let offset = r.pos;
        r.take(size)?;
        tensors.push((TensorSpec { name, ne, ty }, offset));
    }
    Ok(GgmlFile {
        hparams,
        ftype,
        filters,
        vocab,
        tensors,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::ct2::{self, DType};

    /// Hyper-parameters of the synthetic model.
    pub(crate) const TINY: Hparams = Hparams {
        n_vocab: 10,
        n_audio_ctx: 6,
        n_audio_state: 8,
        n_audio_head: 2,
        n_audio_layer: 2,
        n_text_ctx: 5,
        n_text_state: 8,
        n_text_head: 2,
        n_text_layer: 1,
        n_mels: 4,
    };

    /// A synthetic CTranslate2 Whisper model with the real variable names; every
    /// element is `tag + index / 1000`, with a tag per variable, so tests can tell
    /// where each value came from. Stored as f16 like the real files.
    pub(crate) fn tiny_ct2() -> Vec<u8> {
        let h = TINY;
        let (s, t) = (h.n_audio_state, h.n_text_state);
        let mut vars: Vec<(String, Vec<usize>)> = vec![
            ("encoder/conv1/weight".into(), vec![s, h.n_mels, 3]),
            ("encoder/conv1/bias".into(), vec![s]),
            ("encoder/conv2/weight".into(), vec![s, s, 3]),
            ("encoder/conv2/bias".into(), vec![s]),
            (
                "encoder/position_encodings/encodings".into(),
                vec![h.n_audio_ctx, s],
            ),
            ("encoder/layer_norm/gamma".into(), vec![s]),
            ("encoder/layer_norm/beta".into(), vec![s]),
            ("decoder/embeddings/weight".into(), vec![h.n_vocab, t]),
            (
                "decoder/position_encodings/encodings".into(),
                vec![h.n_text_ctx, t],
            ),
            ("decoder/layer_norm/gamma".into(), vec![t]),
            ("decoder/layer_norm/beta".into(), vec![t]),
        ];
        let block = |vars: &mut Vec<(String, Vec<usize>)>, c: &str, n: usize, cross: bool| {
            let mut linear = |name: String, rows: usize, cols: usize| {
                vars.push((format!("{name}/weight"), vec![rows, cols]));
                vars.push((format!("{name}/bias"), vec![rows]));
            };
            linear(format!("{c}/self_attention/linear_0"), 3 * n, n);
            linear(format!("{c}/self_attention/linear_1"), n, n);
            linear(format!("{c}/ffn/linear_0"), 4 * n, n);
            linear(format!("{c}/ffn/linear_1"), n, 4 * n);
            if cross {
                linear(format!("{c}/attention/linear_0"), n, n);
                linear(format!("{c}/attention/linear_1"), 2 * n, n);
                linear(format!("{c}/attention/linear_2"), n, n);
            }
            let mut lns = vec!["self_attention", "ffn"];
            if cross {
                lns.push("attention");
            }
            for l in lns {
                vars.push((format!("{c}/{l}/layer_norm/gamma"), vec![n]));
                vars.push((format!("{c}/{l}/layer_norm/beta"), vec![n]));
            }
        };
        for i in 0..h.n_audio_layer {
            block(&mut vars, &format!("encoder/layer_{i}"), s, false);
        }
        for i in 0..h.n_text_layer {
            block(&mut vars, &format!("decoder/layer_{i}"), t, true);
        }
        let data: Vec<Vec<u8>> = vars
            .iter()
            .enumerate()
            .map(|(tag, (_, dims))| {
                let n: usize = dims.iter().product();
                (0..n)
                    .flat_map(|i| half::f16::from_f32(tag as f32 + i as f32 / 1000.0).to_le_bytes())
                    .collect()
            })
            .collect();
        let heads_a = (h.n_audio_head as i16).to_le_bytes();
        let heads_t = (h.n_text_head as i16).to_le_bytes();
        let flag = [1u8];
        let mut list: Vec<(&str, &[usize], DType, &[u8])> = vars
            .iter()
            .zip(&data)
            .map(|((n, d), b)| (n.as_str(), d.as_slice(), DType::F16, b.as_slice()))
            .collect();
        list.push(("encoder/num_heads", &[], DType::I16, &heads_a));
        list.push(("decoder/num_heads", &[], DType::I16, &heads_t));
        list.push(("decoder/pre_norm", &[], DType::I8, &flag));
        ct2::write(
            "WhisperSpec",
            3,
            &list,
            &[("decoder/projection/weight", "decoder/embeddings/weight")],
        )
    }

    fn tag_of(bytes: &[u8], name: &str) -> f32 {
        // The first element of a variable is its tag.
        Ct2Model::parse(bytes)
            .unwrap()
            .get(name)
            .unwrap()
            .to_f32()
            .unwrap()[0]
    }

    fn tensor_f32(file: &[u8], parsed: &GgmlFile, name: &str) -> Vec<f32> {
        let (spec, off) = parsed.tensors.iter().find(|(t, _)| t.name == name).unwrap();
        let n: usize = spec.ne.iter().product();
        match spec.ty {
            GgmlType::F32 => file[*off..off + 4 * n]
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                .collect(),
            GgmlType::F16 => file[*off..off + 2 * n]
                .chunks_exact(2)
                .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
        }
    }

    fn filters(h: &Hparams) -> MelFilters {
        let n_fft = 5;
        MelFilters {
            n_mel: h.n_mels,
            n_fft,
            data: (0..h.n_mels * n_fft).map(|i| i as f32 * 0.5).collect(),
        }
    }

    fn convert(ct2_bytes: &[u8]) -> Vec<u8> {
        let model = Ct2Model::parse(ct2_bytes).unwrap();
        let h = Hparams::from_ct2(&model).unwrap();
        let vocab = vec![b"!".to_vec(), b"hello".to_vec(), vec![0xe4, 0xbd]];
        let mut out = Vec::new();
        write_ggml(&mut out, &model, &h, &filters(&h), &vocab).unwrap();
        out
    }

    #[test]
    fn hparams_come_from_shapes_and_scalars() {
        let bytes = tiny_ct2();
        let model = Ct2Model::parse(&bytes).unwrap();
        assert_eq!(Hparams::from_ct2(&model).unwrap(), TINY);
        assert!(!TINY.is_multilingual());
    }

    #[test]
    fn converted_file_has_exactly_the_tensors_whisper_cpp_loads() {
        let out = convert(&tiny_ct2());
        let parsed = read_ggml(&out).unwrap();
        assert_eq!(parsed.hparams, TINY);
        assert_eq!(parsed.ftype, 1);
        assert_eq!(parsed.filters, filters(&TINY));
        assert_eq!(
            parsed.vocab,
            [b"!".to_vec(), b"hello".to_vec(), vec![0xe4, 0xbd]]
        );
        let mut got: Vec<TensorSpec> = parsed.tensors.iter().map(|(t, _)| t.clone()).collect();
        let mut want = expected_tensors(&TINY);
        got.sort_by(|a, b| a.name.cmp(&b.name));
        want.sort_by(|a, b| a.name.cmp(&b.name));
        assert_eq!(got, want);
        // Every name once: whisper.cpp rejects duplicates and missing tensors.
        assert_eq!(parsed.tensors.len(), expected_tensors(&TINY).len());
        // Hand-checked counts: 7 + 15 per encoder layer + 4 + 24 per decoder layer.
        assert_eq!(parsed.tensors.len(), 7 + 15 * 2 + 4 + 24);
    }

    #[test]
    fn header_bytes_are_whisper_cpp_layout() {
        let out = convert(&tiny_ct2());
        let ints: Vec<i32> = out[..4 * 14]
            .chunks_exact(4)
            .map(|c| i32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        assert_eq!(ints, [0x6767_6d6c, 10, 6, 8, 2, 2, 5, 8, 2, 1, 4, 1, 4, 5]);
    }

    #[test]
    fn fused_projections_are_split_by_rows_and_keys_lose_their_bias() {
        let bytes = tiny_ct2();
        let out = convert(&bytes);
        let parsed = read_ggml(&out).unwrap();
        let s = TINY.n_audio_state;
        let qkv = tag_of(&bytes, "encoder/layer_1/self_attention/linear_0/weight");
        let q = tensor_f32(&out, &parsed, "encoder.blocks.1.attn.query.weight");
        let k = tensor_f32(&out, &parsed, "encoder.blocks.1.attn.key.weight");
        let v = tensor_f32(&out, &parsed, "encoder.blocks.1.attn.value.weight");
        let at = |i: usize| half::f16::from_f32(qkv + i as f32 / 1000.0).to_f32();
        assert_eq!(q[0], at(0));
        assert_eq!(k[0], at(s * s));
        assert_eq!(v[0], at(2 * s * s));
        assert_eq!(v[s * s - 1], at(3 * s * s - 1));
        let vb = tensor_f32(&out, &parsed, "encoder.blocks.1.attn.value.bias");
        let b = tag_of(&bytes, "encoder/layer_1/self_attention/linear_0/bias");
        assert_eq!(
            vb[0],
            half::f16::from_f32(b + (2 * s) as f32 / 1000.0).to_f32()
        );
        assert!(
            !parsed
                .tensors
                .iter()
                .any(|(t, _)| t.name.ends_with("key.bias"))
        );

        let kv = tag_of(&bytes, "decoder/layer_0/attention/linear_1/weight");
        let ck = tensor_f32(&out, &parsed, "decoder.blocks.0.cross_attn.key.weight");
        let cv = tensor_f32(&out, &parsed, "decoder.blocks.0.cross_attn.value.weight");
        assert_eq!(ck[0], half::f16::from_f32(kv).to_f32());
        assert_eq!(
            cv[0],
            half::f16::from_f32(kv + (s * s) as f32 / 1000.0).to_f32()
        );
        // Layer norms map gamma → weight, beta → bias.
        let gamma = tag_of(&bytes, "decoder/layer_0/attention/layer_norm/gamma");
        assert_eq!(
            tensor_f32(&out, &parsed, "decoder.blocks.0.cross_attn_ln.weight")[0],
            gamma
        );
        // Conv biases become [1, n] f32 and keep their values.
        let cb = tensor_f32(&out, &parsed, "encoder.conv1.bias");
        assert_eq!(cb.len(), s);
        assert_eq!(
            cb[3],
            half::f16::from_f32(tag_of(&bytes, "encoder/conv1/bias") + 0.003).to_f32()
        );
    }

    #[test]
    fn missing_variables_and_foreign_models_are_named() {
        let bytes = ct2::write("TransformerSpec", 1, &[], &[]);
        let m = Ct2Model::parse(&bytes).unwrap();
        assert!(matches!(
            Hparams::from_ct2(&m),
            Err(GgmlError::NotWhisper(_))
        ));

        let bytes = tiny_ct2();
        let mut m = Ct2Model::parse(&bytes).unwrap();
        m.variables
            .remove("decoder/layer_0/attention/linear_2/weight");
        let h = Hparams::from_ct2(&m).unwrap();
        let err = write_ggml(&mut Vec::new(), &m, &h, &filters(&h), &[]).unwrap_err();
        assert!(
            err.to_string()
                .contains("decoder/layer_0/attention/linear_2/weight"),
            "{err}"
        );
    }

    #[test]
    fn tiktoken_is_parsed_by_rank() {
        let text = b"IQ== 0\naGVsbG8= 2\nIg== 1\n= 3\n";
        assert_eq!(
            parse_tiktoken(text).unwrap(),
            [b"!".to_vec(), b"\"".to_vec(), b"hello".to_vec(), Vec::new()]
        );
        assert!(
            parse_tiktoken(b"IQ== 0\nIg== 2\n")
                .unwrap_err()
                .contains("rank 1")
        );
        assert!(parse_tiktoken(b"IQ== zero\n").is_err());
    }

    #[test]
    fn mel_filters_are_read_from_an_npz() {
        // An .npy v1.0 file for a 2×3 little-endian f32 array, zipped like numpy.savez_compressed.
        let header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
        let mut npy = b"\x93NUMPY\x01\x00".to_vec();
        let pad = 64 - (10 + header.len() + 1) % 64;
        let hlen = header.len() + pad + 1;
        npy.extend_from_slice(&(hlen as u16).to_le_bytes());
        npy.extend_from_slice(header.as_bytes());
        npy.extend(std::iter::repeat_n(b' ', pad));
        npy.push(b'\n');
        for v in [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0] {
            npy.extend_from_slice(&v.to_le_bytes());
        }
        let mut zip = zip::ZipWriter::new(io::Cursor::new(Vec::new()));
        let o = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        zip.start_file("mel_2.npy", o).unwrap();
        zip.write_all(&npy).unwrap();
        let npz = zip.finish().unwrap().into_inner();
        let f = MelFilters::from_npz(&npz, 2).unwrap();
        assert_eq!((f.n_mel, f.n_fft), (2, 3));
        assert_eq!(f.data, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        assert!(
            MelFilters::from_npz(&npz, 80)
                .unwrap_err()
                .contains("mel_80.npy")
        );
    }
}
