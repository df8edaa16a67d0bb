//! The JetStream bus against the shared behavioural suite. Needs NATS with
//! JetStream at `NATS_URL` (default nats://127.0.0.1:4222). With `CI=true` a
//! missing server fails the run; elsewhere the tests say loudly that they skipped.
use std::sync::Arc;

use switchboard_bus::{Bus, NatsBus, NatsConfig};

fn nats_url() -> String {
    std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

fn available() -> bool {
    let url = nats_url();
    let addr = url.trim_start_matches("nats://").to_string();
    let up = std::net::TcpStream::connect_timeout(
        &addr
            .parse()
            .unwrap_or_else(|_| ([127, 0, 0, 1], 4222).into()),
        std::time::Duration::from_secs(1),
    )
    .is_ok();
    if !up {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("NATS JetStream is required in CI but {url} is unreachable");
        }
        eprintln!(
            "\n*** SKIPPED: NATS JetStream not reachable at {url}; set CI=true to make this a failure ***\n"
        );
    }
    up
}

async fn fresh() -> Arc<dyn Bus> {
    let unique = uuid_like();
    let bus = NatsBus::connect(NatsConfig {
        url: nats_url(),
        stream: format!("SB_TEST_{unique}"),
        subject_prefix: format!("sbtest.{unique}"),
        // Test streams clean themselves up.
        max_age: std::time::Duration::from_secs(600),
        ..Default::default()
    })
    .await
    .expect("connect to NATS");
    Arc::new(bus)
}

fn uuid_like() -> String {
    switchboard_bus::EventId::new().to_string().replace('-', "")
}

switchboard_bus::bus_conformance_tests!(available(), fresh().await);
