//! Telephony glue: answers SIP calls with [`switchboard_voice`], runs them
//! through the IVR, and puts every call on the bus as a voice conversation.
//!
//! Telephony runs only when `sip_listen` is set.

use std::sync::Arc;

use switchboard_bus::Bus;
use tokio::sync::watch;

use crate::config::Config;
use crate::db::Db;
use crate::writer::Writer;

/// Why telephony could not start.
#[derive(Debug, thiserror::Error)]
#[error("telephony: {0}")]
pub struct VoiceError(pub String);

/// Starts telephony when configured; `None` when `sip_listen` is unset.
pub async fn start(
    config: &Config,
    db: Db,
    writer: Writer,
    bus: Arc<dyn Bus>,
    shutdown: watch::Receiver<bool>,
) -> Result<Option<tokio::task::JoinHandle<()>>, VoiceError> {
    let Some(_listen) = config.sip_listen else {
        return Ok(None);
    };
    let _ = (db, writer, bus, shutdown);
    Err(VoiceError(
        "telephony is not available in this build yet: unset sip_listen".into(),
    ))
}
