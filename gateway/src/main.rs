//! `switchboard`: the omnichannel contact-center gateway.

use std::io::BufRead;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use switchboard_gateway::auth::Role;
use switchboard_gateway::config::{BotMode, BusKind, Config, EmbedderKind, LogFormat, PortRange};
use switchboard_gateway::phones;

/// Switchboard: every customer contact (web chat today; phone, WhatsApp,
/// WeChat, SMS and Telegram next) on one conversation bus, answered by agents
/// in one web inbox.
#[derive(Debug, Parser)]
#[command(name = "switchboard", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (HTTP API, WebSockets, web UI).
    Serve(ServeArgs),
    /// Manage staff users.
    #[command(subcommand)]
    User(UserCommand),
    /// Apply database migrations and exit.
    Migrate(StoreArgs),
    /// Print the effective configuration as TOML and exit.
    Config(ServeArgs),
    /// Manage the knowledge base.
    #[command(subcommand)]
    Kb(KbCommand),
}

#[derive(Debug, Subcommand)]
enum KbCommand {
    /// Import a folder of Markdown, HTML and text files as articles (re-importing updates them).
    Import(KbImportArgs),
}

#[derive(Debug, Args)]
struct KbImportArgs {
    #[command(flatten)]
    serve: ServeArgs,
    /// Folder to import (searched recursively).
    dir: PathBuf,
    /// Publish the imported articles (default: keep them as drafts for review).
    #[arg(long)]
    publish: bool,
    /// Author recorded on the new versions.
    #[arg(long, default_value = "import")]
    author: String,
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Create a user (e.g. the first admin).
    Add(UserAddArgs),
    /// List users (e-mail, role, active).
    List(StoreArgs),
    /// Print the number of users (0 on a fresh install).
    Count(StoreArgs),
    /// Give a user a SIP account for their phone (or a new secret) and print
    /// the secret once; only its digest is stored.
    Sip(UserSipArgs),
}

#[derive(Debug, Args)]
struct UserSipArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// The user's login e-mail.
    #[arg(long)]
    email: String,
    /// SIP username, [A-Za-z0-9._-]{1,32} [default: the current one, else the e-mail's local part].
    #[arg(long)]
    username: Option<String>,
    /// SIP domain and digest realm (must match the registrar's) [default: switchboard].
    #[arg(long, env = "SWITCHBOARD_SIP_DOMAIN")]
    sip_domain: Option<String>,
    /// Remove the account instead: the phone can no longer register.
    #[arg(long)]
    remove: bool,
}

/// Where configuration and data live.
#[derive(Debug, Args, Clone)]
struct StoreArgs {
    /// TOML configuration file (keys as in `switchboard config`).
    #[arg(long, short, env = "SWITCHBOARD_CONFIG")]
    config: Option<PathBuf>,
    /// Directory for the SQLite database [default: data].
    #[arg(long, env = "SWITCHBOARD_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// PostgreSQL URL (postgres://user@host/db); unset: SQLite in the data directory.
    #[arg(long, env = "SWITCHBOARD_DATABASE_URL")]
    database_url: Option<String>,
}

#[derive(Debug, Args, Clone)]
struct ServeArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "SWITCHBOARD_LISTEN")]
    listen: Option<SocketAddr>,
    /// Bus backend: memory (one node) or nats (JetStream, several nodes) [default: memory].
    #[arg(long, env = "SWITCHBOARD_BUS", value_enum)]
    bus: Option<BusKind>,
    /// NATS URL for --bus nats [default: nats://127.0.0.1:4222].
    #[arg(long, env = "SWITCHBOARD_NATS_URL")]
    nats_url: Option<String>,
    /// JetStream stream name [default: SWITCHBOARD_EVENTS].
    #[arg(long, env = "SWITCHBOARD_NATS_STREAM")]
    nats_stream: Option<String>,
    /// Events the in-process bus keeps in memory (~300 bytes each) [default: 100000].
    #[arg(long, env = "SWITCHBOARD_BUS_RETENTION")]
    bus_retention: Option<usize>,
    /// Public base URL, e.g. https://support.example.com (https turns on Secure cookies).
    #[arg(long, env = "SWITCHBOARD_PUBLIC_URL")]
    public_url: Option<String>,
    /// Largest request body in bytes [default: 65536].
    #[arg(long, env = "SWITCHBOARD_MAX_BODY_BYTES")]
    max_body_bytes: Option<usize>,
    /// Staff session lifetime in seconds [default: 43200].
    #[arg(long, env = "SWITCHBOARD_SESSION_TTL_SECS")]
    session_ttl_secs: Option<u64>,
    /// Log format: text or json [default: text]. Log levels: RUST_LOG (default info).
    #[arg(long, env = "SWITCHBOARD_LOG_FORMAT", value_enum)]
    log_format: Option<LogFormat>,
    /// Seconds to drain in-flight work on shutdown [default: 10].
    #[arg(long, env = "SWITCHBOARD_SHUTDOWN_GRACE_SECS")]
    shutdown_grace_secs: Option<u64>,
    /// Database connection pool size [default: 16; SQLite uses at most 8].
    #[arg(long, env = "SWITCHBOARD_DB_MAX_CONNECTIONS")]
    db_max_connections: Option<u32>,
    /// Virtual agent on web chat: off, extractive (quotes the knowledge base), local (SmolLM2
    /// phrases answers, checked against the knowledge) or openai [default: extractive].
    #[arg(long, env = "SWITCHBOARD_BOT", value_enum)]
    bot: Option<BotMode>,
    /// Company name the virtual agent speaks for [default: our company].
    #[arg(long, env = "SWITCHBOARD_BOT_COMPANY")]
    bot_company: Option<String>,
    /// OpenAI-compatible base URL for --bot openai (e.g. http://127.0.0.1:8000/v1).
    #[arg(long, env = "SWITCHBOARD_OPENAI_BASE_URL")]
    openai_base_url: Option<String>,
    /// Model name for --bot openai [default: gpt-4o-mini].
    #[arg(long, env = "SWITCHBOARD_OPENAI_MODEL")]
    openai_model: Option<String>,
    /// API key for --bot openai.
    #[arg(long, env = "SWITCHBOARD_OPENAI_API_KEY", hide_env_values = true)]
    openai_api_key: Option<String>,
    /// Knowledge-base embedder: minilm (all-MiniLM-L6-v2, English), e5 (multilingual-e5-small: Chinese questions find English articles) or hash (no model; lexical quality) [default: minilm].
    #[arg(long, env = "SWITCHBOARD_EMBEDDER", value_enum)]
    embedder: Option<EmbedderKind>,
    /// Model cache directory [default: $SWITCHBOARD_MODELS_DIR or ~/.cache/switchboard/models].
    #[arg(long, env = "SWITCHBOARD_MODELS_DIR")]
    models_dir: Option<PathBuf>,
    /// SIP address to answer phone calls on (UDP and TCP), e.g. 0.0.0.0:5060; unset: no telephony.
    #[arg(long, env = "SWITCHBOARD_SIP_LISTEN")]
    sip_listen: Option<SocketAddr>,
    /// UDP ports for calls' media, first-last; two per call (RTP and RTCP) [default: 20000-29999].
    #[arg(long, env = "SWITCHBOARD_RTP_PORTS")]
    rtp_ports: Option<PortRange>,
    /// SIP domain and digest realm agents' phones register in; changing it invalidates their SIP secrets [default: switchboard].
    #[arg(long, env = "SWITCHBOARD_SIP_DOMAIN")]
    sip_domain: Option<String>,
    /// IVR flow file (TOML) for phone calls; unset: the built-in flow.
    #[arg(long, env = "SWITCHBOARD_IVR_FILE")]
    ivr_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct UserAddArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Login e-mail.
    #[arg(long)]
    email: String,
    /// Display name.
    #[arg(long)]
    name: String,
    /// Role: agent, supervisor, knowledge_manager, analyst or admin.
    #[arg(long, value_parser = parse_role)]
    role: Role,
    /// Password (10+ characters). Prefer SWITCHBOARD_PASSWORD or stdin: flags show up in `ps`.
    #[arg(long, env = "SWITCHBOARD_PASSWORD", hide_env_values = true)]
    password: Option<String>,
}

fn parse_role(s: &str) -> Result<Role, String> {
    s.parse()
}

impl StoreArgs {
    fn config(&self) -> anyhow::Result<Config> {
        let mut c = Config::load(self.config.as_deref())?;
        if let Some(v) = &self.data_dir {
            c.data_dir = v.clone();
        }
        if let Some(v) = &self.database_url {
            c.database_url = Some(v.clone());
        }
        Ok(c)
    }
}

impl ServeArgs {
    fn config(&self) -> anyhow::Result<Config> {
        let mut c = self.store.config()?;
        macro_rules! set {
            ($($f:ident),*) => { $( if let Some(v) = &self.$f { c.$f = v.clone(); } )* };
        }
        set!(
            listen,
            bus,
            nats_url,
            nats_stream,
            bus_retention,
            max_body_bytes,
            session_ttl_secs,
            log_format,
            shutdown_grace_secs,
            db_max_connections,
            bot,
            bot_company,
            openai_model,
            embedder
        );
        if let Some(v) = &self.public_url {
            c.public_url = Some(v.clone());
        }
        if let Some(v) = &self.openai_base_url {
            c.openai_base_url = Some(v.clone());
        }
        if let Some(v) = &self.openai_api_key {
            c.openai_api_key = Some(v.clone());
        }
        if let Some(v) = &self.models_dir {
            c.models_dir = Some(v.clone());
        }
        if let Some(v) = &self.sip_listen {
            c.sip_listen = Some(*v);
        }
        if let Some(v) = self.rtp_ports {
            c.rtp_ports = v;
        }
        if let Some(v) = &self.sip_domain {
            c.sip_domain = Some(v.clone());
        }
        if let Some(v) = &self.ivr_file {
            c.ivr_file = Some(v.clone());
        }
        Ok(c)
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new("info,sqlx=warn,async_nats=warn,tower_http=warn")
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => {
            let config = args.config()?;
            init_logging(config.log_format);
            switchboard_gateway::serve(config, switchboard_gateway::shutdown_signal())
                .await
                .context("switchboard stopped with an error")?;
        }
        Command::Migrate(args) => {
            let config = args.config()?;
            init_logging(LogFormat::Text);
            switchboard_gateway::install_crypto();
            switchboard_gateway::open_db(&config)
                .await
                .context("migrate")?;
            println!("database is up to date");
        }
        Command::Kb(KbCommand::Import(args)) => {
            let config = args.serve.config()?;
            init_logging(LogFormat::Text);
            switchboard_gateway::install_crypto();
            let db = switchboard_gateway::open_db(&config).await?;
            let kb = switchboard_gateway::knowledge::open(&config, &db)
                .await
                .context("open the knowledge base")?;
            let report = switchboard_gateway::knowledge::import_dir(
                &kb,
                &args.dir,
                &args.author,
                args.publish,
            )
            .await
            .context("import")?;
            println!("{report}");
        }
        Command::Config(args) => {
            print!("{}", toml::to_string(&args.config()?)?);
        }
        Command::User(UserCommand::List(args)) => {
            switchboard_gateway::install_crypto();
            let db = switchboard_gateway::open_db(&args.config()?).await?;
            for u in db.users().await? {
                println!(
                    "{}\t{}\t{}\t{}",
                    u.email,
                    u.role,
                    if u.active { "active" } else { "inactive" },
                    u.name
                );
            }
        }
        Command::User(UserCommand::Count(args)) => {
            switchboard_gateway::install_crypto();
            let db = switchboard_gateway::open_db(&args.config()?).await?;
            println!("{}", db.user_count().await?);
        }
        Command::User(UserCommand::Sip(args)) => {
            let mut config = args.store.config()?;
            if let Some(d) = &args.sip_domain {
                config.sip_domain = Some(d.clone());
            }
            switchboard_gateway::install_crypto();
            let db = switchboard_gateway::open_db(&config).await?;
            let (user, _) = db
                .user_by_email(&args.email.trim().to_lowercase())
                .await?
                .with_context(|| format!("no user with e-mail {}", args.email))?;
            if args.remove {
                if !db.remove_sip_account(user.id).await? {
                    anyhow::bail!("{} has no SIP account", user.email);
                }
                println!("removed the SIP account of {}", user.email);
                return Ok(());
            }
            let username =
                phones::Phones::username_for(&db, user.id, &user.email, args.username.as_deref())
                    .await?;
            phones::check_username(&username)?;
            let registrar = phones::Phones::new(config.sip_realm());
            let (account, secret) = registrar
                .provision(&db, user.id, &username)
                .await
                .with_context(|| format!("SIP username {username}"))?;
            println!(
                "SIP account for {}\n  username: {}\n  secret:   {secret}\n  domain:   {}\n  address:  sip:{}@{}",
                user.email, account.username, account.realm, account.username, account.realm
            );
            if let Some(listen) = config.sip_listen {
                println!("  registrar: {listen}");
            }
            eprintln!("The secret is shown only now; a running registrar picks it up within 5 s.");
        }
        Command::User(UserCommand::Add(args)) => {
            let config = args.store.config()?;
            switchboard_gateway::install_crypto();
            let password = match args.password {
                Some(p) => p,
                None => {
                    eprintln!("password (10+ characters), then Enter:");
                    let mut line = String::new();
                    std::io::stdin().lock().read_line(&mut line)?;
                    line.trim_end_matches(['\r', '\n']).to_string()
                }
            };
            let db = switchboard_gateway::open_db(&config).await?;
            let user = switchboard_gateway::api::users::create_user(
                &db,
                &args.email,
                &args.name,
                args.role,
                &password,
            )
            .await
            .map_err(|e| anyhow::anyhow!("{} ({})", e.message, e.code))?;
            println!(
                "created {} <{}> as {} (id {})",
                user.name, user.email, user.role, user.id
            );
        }
    }
    Ok(())
}
