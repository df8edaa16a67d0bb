//! Prefill time (time to first token) and decode speed of the prepared SmolLM2
//! as shipped (Q4_1) and re-quantized (Q8_0), with candle on the CPU, using the
//! tokenizer this crate builds from the GGUF metadata.
//!
//! ```sh
//! cargo run -p switchboard-models --release --example gguf_prefill
//! ```

use std::time::Instant;

use candle_core::quantized::gguf_file;
use candle_core::{Device, Tensor};
use candle_transformers::models::quantized_llama::ModelWeights;
use switchboard_models::{ModelId, Models};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = Models::from_env().dir(ModelId::SmolLm2_135mInstruct)?;
    let tok =
        tokenizers::Tokenizer::from_file(dir.join("tokenizer.json")).map_err(|e| e.to_string())?;
    let passage = "Orders ship within two business days. Refunds are issued to the original payment method \
                   within five business days after the returned item arrives at our warehouse. ";
    let prompt = format!(
        "<|im_start|>system\nAnswer from the context only.<|im_end|>\n<|im_start|>user\nContext: {}\nQuestion: How long do refunds take?<|im_end|>\n<|im_start|>assistant\n",
        passage.repeat(12)
    );
    let ids = tok
        .encode(prompt.as_str(), false)
        .map_err(|e| e.to_string())?
        .get_ids()
        .to_vec();
    println!("prompt: {} tokens", ids.len());
    for file in ["model.gguf", "model-q8_0.gguf"] {
        let mut f = std::fs::File::open(dir.join(file))?;
        let content = gguf_file::Content::read(&mut f)?;
        let mut model = ModelWeights::from_gguf(content, &mut f, &Device::Cpu)?;
        let started = Instant::now();
        let x = Tensor::new(ids.as_slice(), &Device::Cpu)?.unsqueeze(0)?;
        let logits = model.forward(&x, 0)?.squeeze(0)?;
        let mut next = logits.argmax(0)?.to_scalar::<u32>()?;
        let ttft = started.elapsed();
        let mut out = vec![next];
        let decode_start = Instant::now();
        let mut steps = 0;
        for i in 0..32 {
            if next == 2 {
                break; // <|im_end|>
            }
            steps += 1;
            let x = Tensor::new(&[next], &Device::Cpu)?.unsqueeze(0)?;
            let logits = model.forward(&x, ids.len() + i)?.squeeze(0)?;
            next = logits.argmax(0)?.to_scalar::<u32>()?;
            out.push(next);
        }
        let rate = f64::from(steps) / decode_start.elapsed().as_secs_f64();
        let text = tok.decode(&out, true).map_err(|e| e.to_string())?;
        println!(
            "{file:<16} time to first token {:.2} s, decode {rate:.0} tokens/s: {text:?}",
            ttft.as_secs_f64()
        );
    }
    Ok(())
}
