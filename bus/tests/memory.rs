//! The in-process bus against the shared behavioural suite, plus its own limits.
use std::sync::Arc;

use futures::StreamExt;
use switchboard_bus::{Bus, BusError, ConversationId, MemoryBus, StartAt, conformance};

switchboard_bus::bus_conformance_tests!(true, Arc::new(MemoryBus::default()) as Arc<dyn Bus>);

#[tokio::test]
async fn retention_evicts_oldest_and_reports_expired_cursors() {
    let bus = MemoryBus::with_retention(3);
    let c = ConversationId::new();
    bus.publish(&conformance::opened(c)).await.expect("publish");
    for seq in 2..=5 {
        bus.publish(&conformance::note(c, seq, "x"))
            .await
            .expect("publish");
    }
    let err = bus
        .subscribe(StartAt::After(0))
        .await
        .err()
        .expect("expired");
    assert!(matches!(
        err,
        BusError::CursorExpired {
            requested: 0,
            oldest: 3
        }
    ));
    let replay = bus.replay(c).await.expect("replay");
    assert_eq!(
        replay.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![3, 4, 5]
    );
    let mut sub = bus.subscribe(StartAt::Beginning).await.expect("sub");
    let first = sub.next().await.expect("item").expect("ok");
    assert_eq!(first.cursor, 3);
}
