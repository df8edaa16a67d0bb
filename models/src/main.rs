//! `switchboard-models`: prepares the model files Switchboard runs on.
//!
//! ```text
//! switchboard-models fetch            # the default models (what scripts/setup prepares)
//! switchboard-models fetch all        # every available model
//! switchboard-models fetch whisper-base smollm2-135m-instruct
//! switchboard-models list             # manifest and state of the cache
//! switchboard-models dir minilm-l6-v2 # print a prepared directory (exit 1 if not prepared)
//! ```

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use switchboard_models::{ModelError, ModelId, Models};

#[derive(Parser, Debug)]
#[command(
    name = "switchboard-models",
    about = "Fetch, convert and verify Switchboard's model files"
)]
struct Cli {
    /// Cache directory (default: $SWITCHBOARD_MODELS_DIR, else $HOME/.cache/switchboard/models).
    #[arg(long, global = true, env = "SWITCHBOARD_MODELS_DIR")]
    dir: Option<std::path::PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Prepare models: none given = the defaults, `all` = every available one, or names.
    Fetch {
        /// Model names, `default` or `all`.
        models: Vec<String>,
    },
    /// List the manifest and what is prepared.
    List,
    /// Print the prepared directory of a model.
    Dir {
        /// Model name.
        model: String,
    },
}

fn select(names: &[String]) -> Result<Vec<ModelId>, ModelError> {
    if names.is_empty() {
        return Ok(ModelId::DEFAULT.to_vec());
    }
    let mut out = Vec::new();
    for name in names {
        let ids: Vec<ModelId> = match name.as_str() {
            "all" => ModelId::ALL.to_vec(),
            "default" => ModelId::DEFAULT.to_vec(),
            other => vec![other.parse()?],
        };
        for id in ids {
            if !out.contains(&id) {
                out.push(id);
            }
        }
    }
    Ok(out)
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_target(false)
        .without_time()
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let models = cli.dir.map(Models::new).unwrap_or_else(Models::from_env);
    match cli.command {
        Command::Fetch { models: names } => {
            let ids = match select(&names) {
                Ok(ids) => ids,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            let mut failed = 0;
            for (i, id) in ids.iter().enumerate() {
                eprintln!("==> [{}/{}] {id}", i + 1, ids.len());
                let started = std::time::Instant::now();
                match models.ensure(*id) {
                    Ok(dir) => eprintln!(
                        "    {id}: {} ({:.1} s)",
                        dir.display(),
                        started.elapsed().as_secs_f64()
                    ),
                    Err(e) => {
                        eprintln!("error: {e}");
                        failed += 1;
                    }
                }
            }
            if failed > 0 {
                eprintln!("{failed} model(s) could not be prepared");
                return ExitCode::FAILURE;
            }
            ExitCode::SUCCESS
        }
        Command::List => {
            println!("cache: {}", models.root().display());
            for id in ModelId::ALL {
                let spec = id.spec();
                let state = match models.dir(id) {
                    Ok(_) => "prepared".to_owned(),
                    Err(ModelError::NotPrepared { .. }) => "not prepared".to_owned(),
                    Err(ModelError::Stale { .. }) => "stale".to_owned(),
                    Err(e) => format!("error: {e}"),
                };
                let default = if ModelId::DEFAULT.contains(&id) {
                    " (default)"
                } else {
                    ""
                };
                println!(
                    "{:<24} {:<14} {}{default}",
                    spec.name, state, spec.description
                );
                for p in spec.packages {
                    println!("{:<24}   from {}=={}", "", p.name, p.version);
                }
            }
            ExitCode::SUCCESS
        }
        Command::Dir { model } => match model.parse::<ModelId>().and_then(|id| models.dir(id)) {
            Ok(dir) => {
                println!("{}", dir.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
    }
}
