//! Event delivery: the webhook dispatcher over the durable `events` outbox.
//!
//! Every change writes its event in the same transaction (see `store::events`); the dispatcher
//! fans each event out to the subscribed webhooks, signs and POSTs it, and retries on a
//! schedule. Delivery is at least once: an attempt whose outcome was not recorded (a crash) is
//! made again after its claim lease ends.

pub mod body;
pub mod dispatcher;
pub mod schedule;
pub mod sender;
pub mod signature;

use std::sync::OnceLock;

use tokio::sync::Notify;

/// Raised when this process writes an outbox row. The row's transaction may commit a moment
/// later, so a woken dispatcher settles briefly; rows written by other processes (a shared
/// PostgreSQL) are found by polling.
fn outbox_signal() -> &'static Notify {
    static SIGNAL: OnceLock<Notify> = OnceLock::new();
    SIGNAL.get_or_init(Notify::new)
}

/// Wakes the dispatcher (one stored permit if it is busy, so nothing is missed).
pub fn outbox_written() {
    outbox_signal().notify_one();
}
