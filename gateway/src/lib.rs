//! # switchboard-gateway
//!
//! The `switchboard` binary's library: configuration, persistence, auth, the
//! HTTP/WebSocket API and web UI, and the wiring of the conversation bus.
//!
//! Data flow of one message: an API handler asks the [`writer::Writer`] to
//! append events; the writer decides them against the conversation's state
//! and commits them (group commit) — only then is the request answered; the
//! [`publisher`] puts committed events on the [`switchboard_bus::Bus`]; each
//! node's [`hub::Hub`] follows the bus and fans events out to WebSockets,
//! which resume from the database by seq.

pub mod api;
pub mod auth;
pub mod bot;
pub mod config;
pub mod db;
pub mod hub;
pub mod knowledge;
pub mod lease;
pub mod phones;
pub mod publisher;
pub mod routing;
pub mod voice;
pub mod writer;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use metrics_exporter_prometheus::PrometheusHandle;
use switchboard_bus::{Bus, MemoryBus, NatsBus, NatsConfig};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::api::AppState;
use crate::config::{BusKind, Config};
use crate::db::Db;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Database unreachable or migrations failed.
    #[error("database: {0}")]
    Db(#[from] db::DbError),
    /// Bus unreachable.
    #[error("bus: {0}")]
    Bus(#[from] switchboard_bus::BusError),
    /// The knowledge base could not be opened.
    #[error("{0}")]
    Knowledge(#[from] knowledge::KnowledgeError),
    /// Telephony could not start.
    #[error("{0}")]
    Voice(#[from] voice::VoiceError),
    /// The virtual agent could not start.
    #[error("{0}")]
    Bot(#[from] bot::BotError),
    /// Listener or data directory problem.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Installs ring as the process-wide rustls provider (once; later calls are no-ops).
pub fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Installs the Prometheus recorder (once per process).
pub fn install_metrics() -> Option<PrometheusHandle> {
    static HANDLE: std::sync::OnceLock<Option<PrometheusHandle>> = std::sync::OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = metrics_exporter_prometheus::PrometheusBuilder::new()
                .set_buckets(&[
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                ])
                .ok()?
                .build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).ok()?;
            Some(handle)
        })
        .clone()
}

/// Connects to the configured database and applies migrations.
pub async fn open_db(config: &Config) -> Result<Db, StartError> {
    let url = config.database_url()?;
    let db = Db::connect(&url, config.db_max_connections).await?;
    db.migrate().await?;
    db.seed_routing().await?;
    Ok(db)
}

/// Connects to the configured bus.
pub async fn open_bus(config: &Config) -> Result<Arc<dyn Bus>, StartError> {
    Ok(match config.bus {
        BusKind::Memory => Arc::new(MemoryBus::with_retention(config.bus_retention)),
        BusKind::Nats => Arc::new(
            NatsBus::connect(NatsConfig {
                url: config.nats_url.clone(),
                stream: config.nats_stream.clone(),
                subject_prefix: format!("{}.events", config.nats_stream.to_lowercase()),
                ..Default::default()
            })
            .await?,
        ),
    })
}

/// Runs the server until `shutdown` resolves, then drains: stops accepting,
/// closes WebSockets with "service restart", lets in-flight requests and the
/// writer's queue finish, and publishes what was committed.
pub async fn serve(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    let listener = TcpListener::bind(config.listen).await?;
    serve_on(listener, config, shutdown).await
}

/// Like [`serve`], on a listener the caller bound (tests bind port 0).
pub async fn serve_on(
    listener: TcpListener,
    mut config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    config.listen = listener.local_addr()?;
    install_crypto();
    let metrics = install_metrics();
    let db = open_db(&config).await?;
    let bus = open_bus(&config).await?;
    let (writer, writer_done) =
        writer::Writer::spawn_dedicated(config.database_url()?, 4, bus.clone()).await?;
    let (hub, hub_task) = hub::Hub::start(bus.clone(), 65_536).await;
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let grace = Duration::from_secs(config.shutdown_grace_secs);
    let node = format!(
        "{}:{}",
        std::env::var("HOSTNAME").unwrap_or_else(|_| "switchboard".into()),
        config.listen.port()
    );
    let routing_task = routing::spawn(
        db.clone(),
        writer.clone(),
        bus.clone(),
        node.clone(),
        shutdown_rx.clone(),
    );
    let kb = knowledge::open(&config, &db).await?;
    let agent = bot::agent(&config, Arc::new(knowledge::KbRetriever(kb.clone()))).await?;
    let bot_task = agent.clone().map(|agent| {
        bot::spawn(
            db.clone(),
            writer.clone(),
            bus.clone(),
            agent,
            bot::BotScope {
                channels: config.bot_channels.clone(),
                hours: config.bot_hours.clone(),
            },
            shutdown_rx.clone(),
        )
    });
    let phones = phones::Phones::new(config.sip_realm());
    let voice_task = voice::start(
        &config,
        db.clone(),
        writer.clone(),
        bus.clone(),
        phones.clone(),
        node,
        shutdown_rx.clone(),
    )
    .await?;
    let config = Arc::new(config);
    let state = AppState {
        db: db.clone(),
        writer,
        bus: bus.clone(),
        hub,
        config: config.clone(),
        metrics,
        shutdown: shutdown_rx,
        kb,
        bot: agent,
        phones,
    };
    let base = config.base_url();
    tracing::info!(
        listen = %config.listen,
        database = ?db.backend(),
        bus = bus.backend(),
        "Switchboard is running: agent inbox {base}/inbox · widget demo {base}/demo · API {base}/api/openapi.json · metrics {base}/metrics"
    );
    let app = api::router(state);
    // Chat is interactive: small frames go out at once (no Nagle delay).
    use axum::serve::ListenerExt;
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY not set");
        }
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown.await;
            tracing::info!("shutting down: closing sockets, draining in-flight work");
            let _ = shutdown_tx.send(true);
        })
        .await?;
    // All request handlers are gone, so the writer's inbox closes: it drains,
    // then the publisher puts the last commits on the bus.
    if tokio::time::timeout(grace * 2, writer_done).await.is_err() {
        tracing::warn!(
            "writer and publisher did not drain within the grace period; committed events not yet on the bus go out at next start"
        );
    }
    hub_task.abort();
    routing_task.abort();
    if let Some(t) = bot_task {
        t.abort();
    }
    if let Some(t) = voice_task {
        t.abort();
    }
    db.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
