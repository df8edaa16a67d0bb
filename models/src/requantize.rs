//! Re-quantizing a GGUF file to Q8_0 with candle.
//!
//! SmolLM2 ships as Q4_1. On the 2-core reference machines candle's Q8_0
//! kernels prefill a 400-token prompt 2.5× faster (time to first token 1.8 s
//! instead of 4.5 s) for 50 % more memory, so setup writes a Q8_0 copy next to
//! the original. Every quantized tensor is dequantized and quantized again as
//! Q8_0; f32/f16 tensors (norms) are copied unchanged. Metadata is copied with
//! `general.file_type` set to Q8_0, in sorted key order so the file is
//! byte-for-byte reproducible.

use std::collections::HashMap;
use std::io::{BufReader, BufWriter, Read, Seek, Write};

use candle_core::Device;
use candle_core::quantized::gguf_file::{self, Value};
use candle_core::quantized::{GgmlDType, QTensor};

/// llama.cpp's `LLAMA_FTYPE_MOSTLY_Q8_0`.
const FILE_TYPE_Q8_0: u32 = 7;

/// Reads a GGUF from `input` and writes the Q8_0 version to `output`.
pub fn requantize_q8_0<R: Read + Seek, W: Write + Seek>(
    input: &mut R,
    output: &mut W,
) -> candle_core::Result<()> {
    let content = gguf_file::Content::read(input)?;
    let mut names: Vec<&String> = content.tensor_infos.keys().collect();
    names.sort();
    let mut tensors = Vec::with_capacity(names.len());
    for name in names {
        let q = content.tensor(input, name, &Device::Cpu)?;
        let q = match q.dtype() {
            GgmlDType::F32 | GgmlDType::F16 | GgmlDType::BF16 | GgmlDType::Q8_0 => q,
            _ if q
                .shape()
                .dims()
                .last()
                .is_some_and(|d| d % GgmlDType::Q8_0.block_size() == 0) =>
            {
                QTensor::quantize(&q.dequantize(&Device::Cpu)?, GgmlDType::Q8_0)?
            }
            _ => q,
        };
        tensors.push((name.clone(), q));
    }
    let mut metadata: Vec<(&String, Value)> = content
        .metadata
        .iter()
        .filter(|(k, _)| k.as_str() != "general.alignment")
        .map(|(k, v)| (k, v.clone()))
        .collect();
    metadata.sort_by(|a, b| a.0.cmp(b.0));
    for (k, v) in metadata.iter_mut() {
        if k.as_str() == "general.file_type" {
            *v = Value::U32(FILE_TYPE_Q8_0);
        }
    }
    let md: Vec<(&str, &Value)> = metadata.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let ts: Vec<(&str, &QTensor)> = tensors.iter().map(|(k, v)| (k.as_str(), v)).collect();
    gguf_file::write(output, &md, &ts)
}

/// File-to-file wrapper around [`requantize_q8_0`].
pub fn requantize_file_q8_0(
    input: &std::path::Path,
    output: &std::path::Path,
) -> Result<(), String> {
    let mut r = BufReader::new(
        std::fs::File::open(input).map_err(|e| format!("{}: {e}", input.display()))?,
    );
    let file = std::fs::File::create(output).map_err(|e| format!("{}: {e}", output.display()))?;
    let mut w = BufWriter::with_capacity(1 << 20, file);
    requantize_q8_0(&mut r, &mut w).map_err(|e| e.to_string())?;
    w.flush().map_err(|e| e.to_string())?;
    Ok(())
}

/// Tensor dtypes of a GGUF file by name (for checks and listings).
pub fn tensor_dtypes<R: Read + Seek>(
    input: &mut R,
) -> candle_core::Result<HashMap<String, GgmlDType>> {
    let content = gguf_file::Content::read(input)?;
    Ok(content
        .tensor_infos
        .into_iter()
        .map(|(k, v)| (k, v.ggml_dtype))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Tensor;
    use std::io::Cursor;

    fn source() -> Vec<u8> {
        let dev = Device::Cpu;
        let w = Tensor::arange(0f32, 256f32, &dev)
            .unwrap()
            .affine(0.01, -1.0)
            .unwrap()
            .reshape((4, 64))
            .unwrap();
        let norm = Tensor::ones(64, candle_core::DType::F32, &dev).unwrap();
        let q41 = QTensor::quantize(&w, GgmlDType::Q4_1).unwrap();
        let f32t = QTensor::quantize(&norm, GgmlDType::F32).unwrap();
        let arch = Value::String("llama".into());
        let ft = Value::U32(3);
        let mut out = Cursor::new(Vec::new());
        gguf_file::write(
            &mut out,
            &[("general.architecture", &arch), ("general.file_type", &ft)],
            &[
                ("blk.0.attn_q.weight", &q41),
                ("blk.0.attn_norm.weight", &f32t),
            ],
        )
        .unwrap();
        out.into_inner()
    }

    #[test]
    fn quantized_tensors_become_q8_0_and_keep_their_values() {
        let src = source();
        let mut out = Cursor::new(Vec::new());
        requantize_q8_0(&mut Cursor::new(&src), &mut out).unwrap();
        let bytes = out.into_inner();
        let mut r = Cursor::new(&bytes);
        let content = gguf_file::Content::read(&mut r).unwrap();
        assert_eq!(
            content.metadata["general.file_type"].to_u32().unwrap(),
            FILE_TYPE_Q8_0
        );
        assert_eq!(
            content.metadata["general.architecture"]
                .to_string()
                .unwrap(),
            "llama"
        );
        let q = content
            .tensor(&mut r, "blk.0.attn_q.weight", &Device::Cpu)
            .unwrap();
        assert_eq!(q.dtype(), GgmlDType::Q8_0);
        assert_eq!(q.shape().dims(), [4, 64]);
        let norm = content
            .tensor(&mut r, "blk.0.attn_norm.weight", &Device::Cpu)
            .unwrap();
        assert_eq!(norm.dtype(), GgmlDType::F32);

        // Values match the Q4_1 original within Q8_0's step.
        let mut r0 = Cursor::new(&src);
        let c0 = gguf_file::Content::read(&mut r0).unwrap();
        let orig = c0
            .tensor(&mut r0, "blk.0.attn_q.weight", &Device::Cpu)
            .unwrap()
            .dequantize(&Device::Cpu)
            .unwrap();
        let new = q.dequantize(&Device::Cpu).unwrap();
        let diff: f32 = (orig - new)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar()
            .unwrap();
        assert!(diff < 0.01, "max difference {diff}");
    }

    #[test]
    fn output_is_reproducible() {
        let src = source();
        let run = || {
            let mut out = Cursor::new(Vec::new());
            requantize_q8_0(&mut Cursor::new(&src), &mut out).unwrap();
            out.into_inner()
        };
        assert_eq!(run(), run());
    }

    #[test]
    fn not_a_gguf_is_an_error() {
        let mut out = Cursor::new(Vec::new());
        assert!(
            requantize_q8_0(&mut Cursor::new(b"definitely not gguf".to_vec()), &mut out).is_err()
        );
    }
}
