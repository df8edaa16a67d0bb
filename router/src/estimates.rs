//! Queue position and estimated wait, for announcing to customers.
//!
//! A contact's **position** is 1 + the number of contacts in its queue that
//! will be served before it (higher priority, or same priority and earlier
//! arrival). Its **estimated wait** is `position × AHT / N` (see
//! [`crate::erlang`]): `AHT` is the queue's observed average handle time
//! including wrap-up, and `N` the staffed servers — every `Available`
//! agent who serves the queue without relaxation counts for their capacity
//! in the queue's channel kind divided by the number of queues of that kind
//! they serve (a shared agent counts in part for each).
//!
//! Every change to a queue (arrival, offer, requeue, overflow, staffing,
//! handle time) marks it; at most once per
//! [`RouterConfig::estimate_interval`](crate::RouterConfig::estimate_interval)
//! a timer walks the queue and emits
//! [`Output::EstimateChanged`] for each contact whose position changed or
//! whose estimate moved by at least `estimate_min_change`. A new contact
//! that has to wait gets its first estimate at once.
//!
//! Refreshes run only in `Tick` calls, never inside a routing decision, and
//! one `Tick` walks at most `estimate_budget` contacts (but always a whole
//! queue); refreshes beyond that stay due, and
//! [`Router::next_deadline`](crate::Router::next_deadline) asks for another
//! `Tick` at once, so the work is spread over several short calls.

use std::time::Duration;

use crate::erlang::wait_at_position;
use crate::io::Output;
use crate::router::Router;
use crate::state::{ContactIx, QueueIx, WaitKey};
use crate::time::Timestamp;

impl Router {
    /// Notes that a queue's estimates may have changed.
    pub(crate) fn mark_estimates(&mut self, now: Timestamp, qx: QueueIx) {
        let interval = self.cfg.estimate_interval;
        let Some(q) = self.queues.get_mut(qx) else {
            return;
        };
        if q.estimate_due.is_some() {
            return;
        }
        let due = q
            .last_estimate
            .map_or(now, |last| (last + interval).max(now));
        q.estimate_due = Some(due);
        self.estimate_timers.insert((due, qx));
    }

    /// The queue's waiting contacts in service order.
    pub(crate) fn waiting_in_order(&self, qx: QueueIx) -> Vec<WaitKey> {
        let q = &self.queues[qx];
        let mut keys: Vec<WaitKey> = q.waiting.iter().flat_map(|s| s.iter().copied()).collect();
        if q.levels() > 1 {
            keys.sort_unstable();
        }
        keys
    }

    pub(crate) fn wait_estimate(&self, qx: QueueIx, position: u32) -> Option<Duration> {
        let q = &self.queues[qx];
        wait_at_position(position, q.servers(), q.handle.get())
    }

    pub(crate) fn refresh_estimates(&mut self, now: Timestamp, qx: QueueIx, out: &mut Vec<Output>) {
        let Some(q) = self.queues.get_mut(qx) else {
            return;
        };
        q.estimate_due = None;
        q.last_estimate = Some(now);
        let keys = self.waiting_in_order(qx);
        for (i, key) in keys.iter().enumerate() {
            let position = u32::try_from(i + 1).unwrap_or(u32::MAX);
            self.announce(key.contact, position, out);
        }
    }

    /// Emits an estimate for a contact if it differs enough from the last one.
    pub(crate) fn announce(&mut self, cx: ContactIx, position: u32, out: &mut Vec<Output>) {
        let qx = self.contacts[cx].queue;
        let ewt = self.wait_estimate(qx, position);
        let min_change = self.cfg.estimate_min_change;
        let c = &mut self.contacts[cx];
        let changed = match c.announced {
            None => true,
            Some((p, e)) => {
                p != position
                    || match (e, ewt) {
                        (Some(a), Some(b)) => a.abs_diff(b) >= min_change,
                        (None, None) => false,
                        _ => true,
                    }
            }
        };
        if changed {
            c.announced = Some((position, ewt));
            out.push(Output::EstimateChanged {
                contact: c.req.contact,
                queue: self.queues[qx].cfg.id.clone(),
                position,
                ewt,
            });
        }
    }
}
