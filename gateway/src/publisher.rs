//! Moves committed events onto the bus (transactional outbox).
//!
//! The writer hands each committed batch over without waiting. The publisher
//! publishes in commit order, retrying a bus outage with backoff for as long
//! as it lasts, and then marks the events `published` in the database. At
//! start-up, and whenever the hand-off queue overflowed, it instead reads
//! unpublished events from the database in order, so an event that was
//! accepted is never lost to the bus, even across a crash. Re-publishing is
//! harmless: the bus and every consumer dedupe by event id / seq.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use switchboard_bus::{Bus, Envelope};
use tokio::sync::mpsc;

use crate::db::Db;

const QUEUE: usize = 4096;
const SCAN_BATCH: i64 = 1000;

/// The writer's side of the outbox.
#[derive(Debug, Clone)]
pub struct PublisherHandle {
    tx: mpsc::Sender<Vec<Envelope>>,
    overflow: Arc<AtomicBool>,
    outbox: bool,
}

impl PublisherHandle {
    /// Queues committed events for publishing.
    ///
    /// With a durable bus (outbox mode) this never waits: on overflow the
    /// publisher falls back to reading unpublished rows from the database.
    /// With the in-process bus there is no outbox (nothing survives a restart
    /// to publish to), so the writer waits for room instead of dropping.
    pub async fn hand_off(&self, events: Vec<Envelope>) {
        if !self.outbox {
            let _ = self.tx.send(events).await;
            return;
        }
        if let Err(mpsc::error::TrySendError::Full(_)) = self.tx.try_send(events) {
            self.overflow.store(true, Ordering::Release);
            metrics::counter!("switchboard_publisher_overflows_total").increment(1);
        }
    }

    /// Whether stored events start unpublished and are marked once on the bus.
    pub fn tracks_outbox(&self) -> bool {
        self.outbox
    }
}

/// Starts the publisher; it stops once every handle is dropped and the queue is drained.
pub fn spawn(db: Db, bus: Arc<dyn Bus>) -> (PublisherHandle, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(QUEUE);
    // Only a bus that outlives this process needs the outbox.
    let outbox = bus.backend() != "memory";
    // Start by catching up from the database.
    let overflow = Arc::new(AtomicBool::new(outbox));
    let handle = PublisherHandle {
        tx,
        overflow: overflow.clone(),
        outbox,
    };
    let task = tokio::spawn(run(db, bus, rx, overflow, outbox));
    (handle, task)
}

async fn run(
    db: Db,
    bus: Arc<dyn Bus>,
    mut rx: mpsc::Receiver<Vec<Envelope>>,
    overflow: Arc<AtomicBool>,
    outbox: bool,
) {
    let (marker, marker_task) = match outbox.then(|| spawn_marker(db.clone())) {
        Some((tx, task)) => (Some(tx), Some(task)),
        None => (None, None),
    };
    loop {
        if overflow.swap(false, Ordering::AcqRel) {
            // Whatever is queued is also in the database; read it from there, in order.
            while rx.try_recv().is_ok() {}
            catch_up(&db, &*bus).await;
            continue;
        }
        let Some(batch) = rx.recv().await else { break };
        publish_all(&*bus, &batch).await;
        if let Some(marker) = &marker {
            // Marking only spares a re-publish after a crash, so it happens off
            // the publishing path; if the marker falls behind, rows stay
            // unmarked and are re-published (deduplicated) at the next start.
            let _ = marker.try_send(batch.iter().map(|e| e.id.to_string()).collect());
        }
    }
    drop(marker);
    if let Some(task) = marker_task {
        let _ = task.await;
    }
    // Final sweep: anything that overflowed during shutdown.
    if overflow.load(Ordering::Acquire) {
        catch_up(&db, &*bus).await;
    }
    tracing::info!("publisher drained and stopped");
}

async fn catch_up(db: &Db, bus: &dyn Bus) {
    let mut backoff = Duration::from_millis(100);
    loop {
        match db.unpublished(SCAN_BATCH).await {
            Ok(rows) if rows.is_empty() => return,
            Ok(rows) => {
                let batch: Vec<Envelope> = rows.into_iter().map(|(_, e)| e).collect();
                tracing::debug!(
                    events = batch.len(),
                    "publishing events found unpublished in the database"
                );
                publish_all(bus, &batch).await;
                if mark(db, &batch).await.is_err() {
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot read unpublished events; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

async fn publish_all(bus: &dyn Bus, batch: &[Envelope]) {
    let mut backoff = Duration::from_millis(50);
    for chunk in batch.chunks(256) {
        loop {
            match bus.publish_batch(chunk).await {
                Ok(_) => {
                    metrics::counter!("switchboard_bus_published_total")
                        .increment(chunk.len() as u64);
                    break;
                }
                Err(e) if e.is_transient() => {
                    // Part of the chunk may be on the bus already; publishing is
                    // idempotent by event id, so the whole chunk goes again.
                    metrics::counter!("switchboard_bus_publish_retries_total").increment(1);
                    tracing::warn!(error = %e, events = chunk.len(), ?backoff, "bus publish failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
                Err(e) => {
                    // Undecodable: publish one by one so only the bad event is left out.
                    tracing::error!(error = %e, "bus rejected a batch; publishing its events one by one");
                    for env in chunk {
                        if let Err(e) = bus.publish(env).await {
                            tracing::error!(error = %e, event = %env.id, "bus rejected event; it stays in the database");
                        }
                    }
                    break;
                }
            }
        }
    }
}

/// Marks published events in the database, coalescing whatever has queued up
/// into one pass.
fn spawn_marker(db: Db) -> (mpsc::Sender<Vec<String>>, tokio::task::JoinHandle<()>) {
    let (tx, mut rx) = mpsc::channel::<Vec<String>>(QUEUE);
    let task = tokio::spawn(async move {
        while let Some(mut ids) = rx.recv().await {
            while let Ok(more) = rx.try_recv() {
                ids.extend(more);
                if ids.len() >= 4096 {
                    break;
                }
            }
            if let Err(e) = db.mark_published(&ids).await {
                tracing::warn!(error = %e, "could not mark events published; they will be re-published (deduplicated)");
            }
        }
    });
    (tx, task)
}

async fn mark(db: &Db, batch: &[Envelope]) -> Result<(), ()> {
    let ids: Vec<String> = batch.iter().map(|e| e.id.to_string()).collect();
    db.mark_published(&ids).await.map_err(|e| {
        tracing::warn!(error = %e, "could not mark events published; they will be re-published (deduplicated)");
    })
}
