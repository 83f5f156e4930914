//! Waiting for what happens asynchronously (a watch, a file swap, a background task): polled,
//! bounded, and named in the failure.

use std::time::{Duration, Instant};

/// How often a condition is checked again.
const POLL: Duration = Duration::from_millis(5);

/// Waits until `cond` holds, checking it every few milliseconds; returns how long it took.
/// Panics with `what` once `within` has passed without it: a test that waits never hangs.
pub async fn eventually(within: Duration, what: &str, mut cond: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !cond() {
        let waited = start.elapsed();
        assert!(waited < within, "not within {within:?}: {what}");
        tokio::time::sleep(POLL.min(within - waited)).await;
    }
    start.elapsed()
}
