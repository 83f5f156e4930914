//! The open connections: a bounded number of slots, spent so that idle or slow clients cannot
//! keep real requests out, and which connection to close when.
//!
//! A reaper looks at every connection's [`Activity`] ten times a second and
//! - closes a connection quiet for longer than the idle timeout;
//! - cuts one that has been reading a request head for longer than the header timeout;
//! - during the drain, closes one quiet for [`DRAIN_QUIET`] (answers close their connections
//!   from the drain's start, so a client sending back to back is never quiet that long).
//!
//! When a new connection finds every slot taken, the connection quiet for longest is closed for
//! it, else the oldest one still in its TLS handshake after [`SLOW_HANDSHAKE`] is cut; the new
//! connection then waits for the freed slot. Connections reading a request head or being
//! answered are never taken: they are bounded by the header and request timeouts.
//!
//! Closing a quiet connection is the one step HTTP/1.1 cannot make free of races: its client
//! may be sending a request at that very moment. A request whose bytes have reached the server is
//! answered ([`Activity`]); one still on the wire when the close arrives is not, which is why
//! only connections quiet for a while are closed.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::activity::{Activity, Close, ConnectionState};

/// How often the reaper looks at the connections.
const TICK: Duration = Duration::from_millis(100);
/// During the drain, how long a connection may stay quiet before it is closed.
pub const DRAIN_QUIET: Duration = Duration::from_millis(250);
/// A TLS handshake older than this may be cut to make room for a new connection (a client's
/// handshake takes milliseconds; one that stalls this long is not going to send a request soon).
pub const SLOW_HANDSHAKE: Duration = Duration::from_secs(1);
/// How long a new connection waits for the slot it freed before another is closed for it.
const EVICTION_RETRY: Duration = Duration::from_millis(100);

/// The timeouts the reaper enforces.
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    /// A quiet connection is closed after this long.
    pub idle: Duration,
    /// A request head must be complete this long after its first bytes were seen.
    pub header: Duration,
}

/// The table of open connections (see the module documentation).
pub struct Connections {
    slots: Arc<Semaphore>,
    max: u32,
    table: Mutex<HashMap<u64, Entry>>,
    next_id: AtomicU64,
    draining: AtomicBool,
    timeouts: Timeouts,
}

struct Entry {
    activity: Arc<Activity>,
    id: u64,
    opened: Instant,
    /// The state the reaper saw last, and since when it has been in it.
    seen: ConnectionState,
    since: Instant,
    evicting: bool,
}

/// One connection's place in the table; frees the slot when dropped.
pub struct Slot {
    id: u64,
    connections: Arc<Connections>,
    activity: Arc<Activity>,
    _permit: OwnedSemaphorePermit,
}

impl Slot {
    /// The connection's activity.
    pub fn activity(&self) -> &Arc<Activity> {
        &self.activity
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.connections.table().remove(&self.id);
    }
}

/// Whether two observations are of the same stretch of a connection's life: the same state,
/// entered at the same count of reads.
fn same_stretch(a: ConnectionState, b: ConnectionState) -> bool {
    match (a, b) {
        (ConnectionState::Quiet(x), ConnectionState::Quiet(y))
        | (ConnectionState::ReadingHead(x), ConnectionState::ReadingHead(y)) => x == y,
        (ConnectionState::Handshaking, ConnectionState::Handshaking)
        | (ConnectionState::Answering, ConnectionState::Answering) => true,
        _ => false,
    }
}

impl Connections {
    /// At most `max` connections, with these timeouts.
    pub fn new(max: usize, timeouts: Timeouts) -> Arc<Self> {
        let max = u32::try_from(max.max(1)).unwrap_or(u32::MAX);
        Arc::new(Connections {
            slots: Arc::new(Semaphore::new(max as usize)),
            max,
            table: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
            draining: AtomicBool::new(false),
            timeouts,
        })
    }

    fn table(&self) -> MutexGuard<'_, HashMap<u64, Entry>> {
        // A panic elsewhere while holding the lock leaves the table as consistent as before.
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A slot for a new connection: a free one, or one freed by closing another (see the module
    /// documentation). Waits while every connection is reading or being answered.
    pub async fn admit(self: &Arc<Self>) -> Slot {
        let permit = match self.slots.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => loop {
                self.evict_one(Instant::now());
                let freed =
                    tokio::time::timeout(EVICTION_RETRY, self.slots.clone().acquire_owned());
                // The semaphore is never closed.
                if let Ok(Ok(permit)) = freed.await {
                    break permit;
                }
            },
        };
        let activity = Arc::new(Activity::default());
        if self.draining.load(Relaxed) {
            activity.request_close(Close::AfterAnswer);
        }
        let id = self.next_id.fetch_add(1, Relaxed);
        let now = Instant::now();
        self.table().insert(
            id,
            Entry {
                activity: activity.clone(),
                id,
                opened: now,
                seen: ConnectionState::Handshaking,
                since: now,
                evicting: false,
            },
        );
        Slot {
            id,
            connections: self.clone(),
            activity,
            _permit: permit,
        }
    }

    /// The drain starts: every answer from now on closes its connection, and quiet connections
    /// are closed once quiet for [`DRAIN_QUIET`] (at once if they already were).
    pub fn start_draining(&self) {
        self.draining.store(true, Relaxed);
        for entry in self.table().values() {
            entry.activity.request_close(Close::AfterAnswer);
        }
        self.inspect(Instant::now());
    }

    /// Resolves once every connection is closed.
    pub async fn all_closed(&self) {
        let _all = self.slots.acquire_many(self.max).await;
    }

    /// Open connections.
    pub fn open(&self) -> usize {
        self.table().len()
    }

    /// Runs the reaper until dropped.
    pub async fn reap(self: Arc<Self>) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            self.inspect(Instant::now());
        }
    }

    /// One pass of the reaper.
    fn inspect(&self, now: Instant) {
        let draining = self.draining.load(Relaxed);
        for entry in self.table().values_mut() {
            let state = entry.activity.state();
            if !same_stretch(entry.seen, state) {
                entry.since = now;
            }
            entry.seen = state;
            let age = now.saturating_duration_since(entry.since);
            match state {
                ConnectionState::Quiet(_)
                    if age >= self.timeouts.idle || (draining && age >= DRAIN_QUIET) =>
                {
                    entry.activity.request_close(Close::WhenQuiet);
                }
                ConnectionState::ReadingHead(_) if age >= self.timeouts.header => {
                    entry.activity.request_close(Close::Now);
                }
                _ => {}
            }
        }
    }

    /// Closes one connection to free a slot: the one quiet for longest, else the oldest stalled
    /// handshake.
    fn evict_one(&self, now: Instant) {
        let mut table = self.table();
        let quiet = table
            .values_mut()
            .filter(|e| {
                !e.evicting
                    && matches!(e.seen, ConnectionState::Quiet(_))
                    && e.activity.state() == e.seen
            })
            // Quiet since the same tick: the older connection first.
            .min_by_key(|e| (e.since, e.id));
        if let Some(entry) = quiet {
            entry.evicting = true;
            entry.activity.request_close(Close::WhenQuiet);
            return;
        }
        let stalled = table
            .values_mut()
            .filter(|e| {
                !e.evicting
                    && e.activity.state() == ConnectionState::Handshaking
                    && now.saturating_duration_since(e.opened) >= SLOW_HANDSHAKE
            })
            .min_by_key(|e| e.opened);
        if let Some(entry) = stalled {
            entry.evicting = true;
            entry.activity.request_close(Close::Now);
        }
    }
}
