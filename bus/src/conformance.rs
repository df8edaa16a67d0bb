//! The behavioural test suite every [`Bus`] backend must pass.
//!
//! Backends call [`bus_conformance_tests!`](crate::bus_conformance_tests) with
//! an async expression that yields a fresh, empty bus; it expands to one
//! `#[tokio::test]` per guarantee, so a failure names the broken guarantee.
#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

use std::collections::HashMap;
use std::time::Duration;

use futures::StreamExt;

use crate::bus::{Bus, Cursor, StartAt, Subscription};
use crate::event::{Envelope, Event};
use crate::ids::{AgentId, ConversationId};
use crate::model::{Channel, Contact};

const WAIT: Duration = Duration::from_secs(10);

/// An opened-conversation event at seq 1.
pub fn opened(conversation: ConversationId) -> Envelope {
    Envelope::new(
        conversation,
        1,
        Event::ConversationOpened {
            channel: Channel::WebChat,
            contact: Contact::anonymous(),
            subject: None,
        },
    )
}

/// A note event at `seq`.
pub fn note(conversation: ConversationId, seq: u64, text: &str) -> Envelope {
    Envelope::new(
        conversation,
        seq,
        Event::NoteAdded {
            by: AgentId::new(),
            text: text.into(),
        },
    )
}

async fn take(sub: &mut Subscription, n: usize) -> Vec<(Cursor, Envelope)> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let next = tokio::time::timeout(WAIT, sub.next())
            .await
            .expect("subscription stalled")
            .expect("subscription ended")
            .expect("delivery error");
        out.push((next.cursor, next.envelope));
    }
    out
}

async fn assert_quiet(sub: &mut Subscription) {
    let extra = tokio::time::timeout(Duration::from_millis(300), sub.next()).await;
    assert!(extra.is_err(), "unexpected extra delivery: {extra:?}");
}

/// Cursors increase by one per publish and `head` reports the last one.
pub async fn cursors_increase(bus: &dyn Bus) {
    assert_eq!(bus.head().await.unwrap(), 0);
    let c = ConversationId::new();
    let a = bus.publish(&opened(c)).await.unwrap();
    let b = bus.publish(&note(c, 2, "x")).await.unwrap();
    assert_eq!(b, a + 1);
    assert_eq!(bus.head().await.unwrap(), b);
}

/// `Beginning` delivers everything retained, in publish order.
pub async fn beginning_delivers_all_in_order(bus: &dyn Bus) {
    let c = ConversationId::new();
    let mut sent = vec![opened(c)];
    for seq in 2..=20 {
        sent.push(note(c, seq, &format!("n{seq}")));
    }
    for e in &sent {
        bus.publish(e).await.unwrap();
    }
    let mut sub = bus.subscribe(StartAt::Beginning).await.unwrap();
    let got: Vec<Envelope> = take(&mut sub, sent.len())
        .await
        .into_iter()
        .map(|d| d.1)
        .collect();
    assert_eq!(got, sent);
    assert_quiet(&mut sub).await;
}

/// `After(c)` resumes exactly after `c`: nothing missed, nothing repeated, then live events follow.
pub async fn resume_after_cursor_is_exact(bus: &dyn Bus) {
    let c = ConversationId::new();
    let mut cursors = vec![bus.publish(&opened(c)).await.unwrap()];
    for seq in 2..=10 {
        cursors.push(bus.publish(&note(c, seq, "x")).await.unwrap());
    }
    let resume_from = cursors[4];
    let mut sub = bus.subscribe(StartAt::After(resume_from)).await.unwrap();
    let got = take(&mut sub, 5).await;
    assert_eq!(
        got.iter().map(|d| d.0).collect::<Vec<_>>(),
        cursors[5..].to_vec()
    );
    assert_eq!(got[0].1.seq, 6);
    let live = bus.publish(&note(c, 11, "live")).await.unwrap();
    let got = take(&mut sub, 1).await;
    assert_eq!(got[0].0, live);
    assert_eq!(got[0].1.seq, 11);
    assert_quiet(&mut sub).await;
}

/// `Live` skips history and delivers what is published afterwards.
pub async fn live_skips_history(bus: &dyn Bus) {
    let c = ConversationId::new();
    bus.publish(&opened(c)).await.unwrap();
    let mut sub = bus.subscribe(StartAt::Live).await.unwrap();
    let e = note(c, 2, "after");
    bus.publish(&e).await.unwrap();
    let got = take(&mut sub, 1).await;
    assert_eq!(got[0].1, e);
    assert_quiet(&mut sub).await;
}

/// Publishing the same event id twice stores and delivers it once.
pub async fn duplicate_publish_is_idempotent(bus: &dyn Bus) {
    let c = ConversationId::new();
    let e = opened(c);
    let first = bus.publish(&e).await.unwrap();
    let again = bus.publish(&e).await.unwrap();
    assert_eq!(first, again, "a re-publish must return the original cursor");
    assert_eq!(bus.head().await.unwrap(), first);
    assert_eq!(bus.replay(c).await.unwrap(), vec![e]);
}

/// Concurrent publishers on different conversations: each conversation's
/// events arrive in seq order with no gaps, and nothing is lost.
pub async fn per_conversation_order_under_concurrency(bus: std::sync::Arc<dyn Bus>) {
    const CONVERSATIONS: usize = 8;
    const PER: u64 = 40;
    let mut sub = bus.subscribe(StartAt::Live).await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..CONVERSATIONS {
        let bus = bus.clone();
        tasks.push(tokio::spawn(async move {
            let c = ConversationId::new();
            bus.publish(&opened(c)).await.unwrap();
            for seq in 2..=PER {
                bus.publish(&note(c, seq, "x")).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let got = take(&mut sub, CONVERSATIONS * PER as usize).await;
    let mut last: HashMap<ConversationId, u64> = HashMap::new();
    let mut prev_cursor = 0;
    for (cursor, env) in got {
        assert!(cursor > prev_cursor, "cursors must increase");
        prev_cursor = cursor;
        let l = last.entry(env.conversation_id).or_insert(0);
        assert_eq!(env.seq, *l + 1, "gap or reorder in {}", env.conversation_id);
        *l = env.seq;
    }
    assert_eq!(last.len(), CONVERSATIONS);
    assert!(last.values().all(|&s| s == PER));
    assert_quiet(&mut sub).await;
}

/// `replay` returns one conversation's events only, in order; unknown ids give nothing.
pub async fn replay_one_conversation(bus: &dyn Bus) {
    let a = ConversationId::new();
    let b = ConversationId::new();
    let mut expect = vec![opened(a)];
    bus.publish(&expect[0]).await.unwrap();
    bus.publish(&opened(b)).await.unwrap();
    for seq in 2..=5 {
        let e = note(a, seq, "a");
        bus.publish(&e).await.unwrap();
        expect.push(e);
        bus.publish(&note(b, seq, "b")).await.unwrap();
    }
    assert_eq!(bus.replay(a).await.unwrap(), expect);
    assert!(bus.replay(ConversationId::new()).await.unwrap().is_empty());
}

/// `publish_batch` stores in order, and publishing the same batch again adds nothing.
pub async fn batch_publish_in_order_and_idempotent(bus: &dyn Bus) {
    let c = ConversationId::new();
    let mut batch = vec![opened(c)];
    for seq in 2..=50 {
        batch.push(note(c, seq, "b"));
    }
    let cursors = bus.publish_batch(&batch).await.unwrap();
    assert!(
        cursors.windows(2).all(|w| w[1] == w[0] + 1),
        "cursors must be consecutive"
    );
    let again = bus.publish_batch(&batch).await.unwrap();
    assert_eq!(
        cursors, again,
        "a re-published batch returns the original cursors"
    );
    assert_eq!(bus.replay(c).await.unwrap(), batch);
}

/// Expands to one test per guarantee for a backend.
/// `$make` is an async expression evaluating to `Arc<dyn Bus>` (fresh and empty);
/// `$guard` is an expression evaluated first that returns `false` to skip (e.g. server absent).
#[macro_export]
macro_rules! bus_conformance_tests {
    ($guard:expr, $make:expr) => {
        mod bus_conformance {
            #[allow(unused_imports)]
            use super::*;
            use $crate::conformance as c;

            #[tokio::test]
            async fn cursors_increase() {
                if !$guard {
                    return;
                }
                c::cursors_increase(&*$make).await;
            }
            #[tokio::test]
            async fn beginning_delivers_all_in_order() {
                if !$guard {
                    return;
                }
                c::beginning_delivers_all_in_order(&*$make).await;
            }
            #[tokio::test]
            async fn resume_after_cursor_is_exact() {
                if !$guard {
                    return;
                }
                c::resume_after_cursor_is_exact(&*$make).await;
            }
            #[tokio::test]
            async fn live_skips_history() {
                if !$guard {
                    return;
                }
                c::live_skips_history(&*$make).await;
            }
            #[tokio::test]
            async fn duplicate_publish_is_idempotent() {
                if !$guard {
                    return;
                }
                c::duplicate_publish_is_idempotent(&*$make).await;
            }
            #[tokio::test]
            async fn batch_publish_in_order_and_idempotent() {
                if !$guard {
                    return;
                }
                c::batch_publish_in_order_and_idempotent(&*$make).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn per_conversation_order_under_concurrency() {
                if !$guard {
                    return;
                }
                c::per_conversation_order_under_concurrency($make).await;
            }
            #[tokio::test]
            async fn replay_one_conversation() {
                if !$guard {
                    return;
                }
                c::replay_one_conversation(&*$make).await;
            }
        }
    };
}
