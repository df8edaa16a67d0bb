//! Configuration: defaults, then a TOML file, then `SWITCHBOARD_*` environment
//! variables and command-line flags (flags and env vars share names; see
//! `switchboard serve --help`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Which bus backend to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum BusKind {
    /// In-process (one node).
    Memory,
    /// NATS JetStream (several nodes).
    Nats,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// How the virtual agent writes its replies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum BotMode {
    /// No virtual agent: every conversation waits for a person.
    Off,
    /// Replies are the knowledge sentences that answer, quoted with their citation (no model; fastest).
    Extractive,
    /// The local model (SmolLM2 on the CPU) phrases the answer from the retrieved passages;
    /// every sentence is checked against them, with extraction as the fallback.
    Local,
    /// An OpenAI-compatible endpoint phrases the answer (`openai_base_url`, `openai_model`,
    /// `SWITCHBOARD_OPENAI_API_KEY`), with the same checks and fallback.
    Openai,
}

/// Which sentence-embedding model the knowledge base uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum EmbedderKind {
    /// all-MiniLM-L6-v2 on candle (prepared by `scripts/setup` into the model cache). English.
    Minilm,
    /// multilingual-e5-small on candle: a Chinese question also finds English articles by
    /// meaning; query embedding costs about 3× MiniLM's.
    E5,
    /// A feature-hashing embedder with no model: lexical quality only. For machines without
    /// the model files; search still works through BM25.
    Hash,
}

/// UDP ports for calls' media, written `first-last` (e.g. `20000-29999`):
/// each call takes an even port for RTP and the next one for RTCP, so the
/// range holds (last − first + 1) / 2 calls at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PortRange {
    /// First port (even).
    pub first: u16,
    /// Last port (included).
    pub last: u16,
}

impl PortRange {
    /// Calls the range can carry at once.
    pub fn calls(&self) -> usize {
        (usize::from(self.last) - usize::from(self.first)).div_ceil(2)
    }

    /// As the half-open range the voice server takes.
    pub fn to_range(self) -> std::ops::Range<u16> {
        self.first..self.last.saturating_add(1)
    }
}

impl Default for PortRange {
    fn default() -> Self {
        Self {
            first: 20_000,
            last: 29_999,
        }
    }
}

impl std::str::FromStr for PortRange {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("rtp_ports must be first-last, e.g. 20000-29999 (got {s:?})");
        let (a, b) = s.split_once('-').ok_or_else(bad)?;
        let first: u16 = a.trim().parse().map_err(|_| bad())?;
        let last: u16 = b.trim().parse().map_err(|_| bad())?;
        if first < 1024 || !first.is_multiple_of(2) || last <= first || last == u16::MAX {
            return Err(format!(
                "rtp_ports {s:?}: the first port must be even and at least 1024, the last above it and below 65535"
            ));
        }
        Ok(Self { first, last })
    }
}

impl TryFrom<String> for PortRange {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl From<PortRange> for String {
    fn from(r: PortRange) -> Self {
        format!("{}-{}", r.first, r.last)
    }
}

/// The whole configuration. Every field can be set in the TOML file under the same name.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Directory for the SQLite database and other local files.
    pub data_dir: PathBuf,
    /// `postgres://…` to use PostgreSQL; unset: SQLite in `data_dir`.
    pub database_url: Option<String>,
    /// Bus backend.
    pub bus: BusKind,
    /// NATS server URL (bus = nats).
    pub nats_url: String,
    /// JetStream stream name (bus = nats).
    pub nats_stream: String,
    /// Events the in-process bus keeps in memory (bus = memory; roughly 300
    /// bytes each). The database is the record: this is only how far behind
    /// an in-process subscriber may fall before it resynchronises from it.
    pub bus_retention: usize,
    /// Public base URL (e.g. https://support.example.com); enables Secure cookies when https.
    pub public_url: Option<String>,
    /// Largest accepted request body in bytes.
    pub max_body_bytes: usize,
    /// Staff session lifetime in seconds.
    pub session_ttl_secs: u64,
    /// Log format.
    pub log_format: LogFormat,
    /// Seconds to let in-flight work finish on shutdown.
    pub shutdown_grace_secs: u64,
    /// Database pool size.
    pub db_max_connections: u32,
    /// The virtual agent on web chat.
    pub bot: BotMode,
    /// The company name the virtual agent speaks for.
    pub bot_company: String,
    /// Channels the virtual agent answers on.
    pub bot_channels: Vec<switchboard_bus::Channel>,
    /// When the virtual agent answers (a weekly schedule in a fixed UTC offset, as for
    /// routing queues); unset: always. Outside these hours conversations go straight to
    /// the agents' queues.
    pub bot_hours: Option<switchboard_router::BusinessHours>,
    /// OpenAI-compatible endpoint for `bot = "openai"` (e.g. http://127.0.0.1:8000/v1).
    pub openai_base_url: Option<String>,
    /// Model name at that endpoint.
    pub openai_model: String,
    /// API key for that endpoint (prefer the SWITCHBOARD_OPENAI_API_KEY variable).
    pub openai_api_key: Option<String>,
    /// Embedding model of the knowledge base.
    pub embedder: EmbedderKind,
    /// Model cache directory [default: $SWITCHBOARD_MODELS_DIR or ~/.cache/switchboard/models].
    pub models_dir: Option<PathBuf>,
    /// SIP address to answer calls on (UDP and TCP), e.g. 0.0.0.0:5060; unset: no telephony.
    pub sip_listen: Option<SocketAddr>,
    /// UDP ports for calls' RTP and RTCP, `first-last` (two per call).
    pub rtp_ports: PortRange,
    /// SIP domain of the registrar, also the digest realm agents' phones
    /// authenticate in; unset: `switchboard`. Changing it invalidates every
    /// agent's SIP secret.
    pub sip_domain: Option<String>,
    /// IVR flow file (TOML); unset: the built-in flow (greeting, menu, queue or voicemail).
    pub ivr_file: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("data"),
            database_url: None,
            bus: BusKind::Memory,
            nats_url: "nats://127.0.0.1:4222".into(),
            nats_stream: "SWITCHBOARD_EVENTS".into(),
            bus_retention: 100_000,
            public_url: None,
            max_body_bytes: 64 * 1024,
            session_ttl_secs: 12 * 3600,
            log_format: LogFormat::Text,
            shutdown_grace_secs: 10,
            db_max_connections: 16,
            bot: BotMode::Extractive,
            bot_company: "our company".into(),
            bot_channels: vec![switchboard_bus::Channel::WebChat],
            bot_hours: None,
            openai_base_url: None,
            openai_model: "gpt-4o-mini".into(),
            openai_api_key: None,
            embedder: EmbedderKind::Minilm,
            models_dir: None,
            sip_listen: None,
            rtp_ports: PortRange::default(),
            sip_domain: None,
            ivr_file: None,
        }
    }
}

/// A configuration file that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Unreadable file.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// File.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// Invalid TOML or unknown keys.
    #[error("invalid config file {path}: {message}")]
    Parse {
        /// File.
        path: PathBuf,
        /// Parser message.
        message: String,
    },
}

impl Config {
    /// The registrar's digest realm: `sip_domain`, else `switchboard`. It
    /// does not depend on the node's address, so every node of a cluster
    /// checks agents' phones against the same stored secrets.
    pub fn sip_realm(&self) -> String {
        self.sip_domain
            .clone()
            .unwrap_or_else(|| "switchboard".into())
    }

    /// Defaults overlaid with a TOML file, if given.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let Some(path) = file else {
            return Ok(Self::default());
        };
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })
    }

    /// The database URL in effect.
    pub fn database_url(&self) -> std::io::Result<String> {
        match &self.database_url {
            Some(url) => Ok(url.clone()),
            None => crate::db::Db::sqlite_url(&self.data_dir),
        }
    }

    /// Whether cookies get the Secure attribute (public URL is https).
    pub fn cookie_secure(&self) -> bool {
        self.public_url
            .as_deref()
            .is_some_and(|u| u.starts_with("https://"))
    }

    /// The base URL to print for humans.
    pub fn base_url(&self) -> String {
        self.public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.listen))
            .trim_end_matches('/')
            .to_string()
    }
}

#[cfg(test)]
#[allow(clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn file_overrides_defaults_and_unknown_keys_are_errors() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("c.toml");
        std::fs::write(&p, "listen = \"0.0.0.0:9000\"\nbus = \"nats\"\n").expect("write");
        let c = Config::load(Some(&p)).expect("load");
        assert_eq!(c.listen.port(), 9000);
        assert_eq!(c.bus, BusKind::Nats);
        assert_eq!(c.max_body_bytes, 64 * 1024);
        std::fs::write(&p, "rtp_ports = \"40000-40999\"\n").expect("write");
        let c = Config::load(Some(&p)).expect("load");
        assert_eq!(
            c.rtp_ports,
            PortRange {
                first: 40_000,
                last: 40_999
            }
        );
        assert_eq!(c.rtp_ports.calls(), 500);
        assert_eq!(c.rtp_ports.to_range(), 40_000..41_000);
        std::fs::write(&p, "rtp_ports = \"40001-40999\"\n").expect("write");
        let err = Config::load(Some(&p))
            .expect_err("odd first port")
            .to_string();
        assert!(err.contains("even"), "{err}");
        for bad in ["", "20000", "a-b", "30000-20000", "80-90", "20000-65535"] {
            assert!(bad.parse::<PortRange>().is_err(), "{bad:?} accepted");
        }
        std::fs::write(&p, "lisen = 1\n").expect("write");
        let err = Config::load(Some(&p)).expect_err("unknown key").to_string();
        assert!(err.contains("unknown field"), "{err}");
    }
}
