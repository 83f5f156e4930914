//! What a connection does after its last answer: it is half-closed (hyper shut down the writing
//! side) and discards what the client still sends until the client closes too, or for [`LINGER`]
//! at most, so that a client still sending a body that was refused (413, 429) reads the answer
//! instead of a reset (RFC 9112 §9.6). The connection's slot is already free meanwhile.
//!
//! The bytes are dropped in the kernel (`MSG_TRUNC` on TCP, tcp(7)), never copied: refused
//! clients go on sending their whole body, and during an attack of 5.9 MiB bodies copying them
//! was 94 % of the bytes the server read. Even uncopied, discarding them as fast as they came was
//! most of the attacked server's CPU (and of its attackers'), on the workers that answer the small
//! reviews (bench/results/stress.md, "Refused bodies discarded at a shared pace"), so all lingering connections together discard at most
//! [`DISCARD_BYTES_PER_SECOND`]: beyond it the clients' sending is held back by TCP's flow
//! control. A client that sent everything only has its close to be read, which the first read
//! does, unpaced. One still sending when [`LINGER`] ends is reset; it has had its answer for as
//! long.
//!
//! Held back, a client keeps its connection's receive queue full, and that is socket memory,
//! which cgroup v2 charges to the pod: up to 128 KiB per connection (the listener's buffer,
//! doubled by the kernel). Lingering connections hold no connection slot, so their number is
//! bounded on its own: at most `ServerOptions::max_lingering` linger ([`LINGERING_AT_ONCE`] by
//! default); beyond them a connection is closed at once, which resets a client still sending (its
//! answer was sent before).

use std::cell::RefCell;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota};
use tokio::net::TcpStream;
use tokio::sync::{Mutex, Semaphore};

/// How long a closed connection keeps reading what its client still sends.
pub const LINGER: Duration = Duration::from_secs(2);
/// What one read discards at most.
pub const DISCARD_CHUNK_BYTES: usize = 64 * 1024;
/// What all lingering connections together discard per second at most: a refused 6 MiB body in
/// a tenth of a second, when nothing else is lingering.
pub const DISCARD_BYTES_PER_SECOND: usize = 64 * 1024 * 1024;
/// What may be discarded at once after a quiet spell, above the pace.
const DISCARD_BURST_BYTES: usize = 1024 * 1024;
/// Connections lingering at once at most, by default: 64 MiB of full receive queues. With 200
/// clients sending 5.9 MiB bodies, most of them refused, the server had up to 570 connections,
/// waiting and lingering, and 50 MiB queued; a bound of 256 closed some at once there, saved 6
/// MiB, and small reviews' p99 was worse in both rounds measured (bench/results/stress.md, "Refused bodies discarded at a shared pace").
pub const LINGERING_AT_ONCE: usize = 512;

thread_local! {
    /// Where a read's discarded bytes go: the kernel never writes it (`MSG_TRUNC`), so only its
    /// address range is used. One per thread rather than one per lingering connection: a read
    /// holds it only for the system call, and paced connections linger by the hundred during an
    /// attack (a buffer each was about 20 MiB more resident memory with 200 attackers).
    static SINK: RefCell<Box<[u8]>> = RefCell::new(vec![0; DISCARD_CHUNK_BYTES].into_boxed_slice());
}

/// What the lingering connections of a server share: the pace, whose turn it is, and their
/// number.
pub struct Lingering {
    limiter: DefaultDirectRateLimiter,
    clock: DefaultClock,
    turn: Mutex<()>,
    at_once: Semaphore,
}

impl Lingering {
    /// At most `at_once` connections linger.
    pub fn new(at_once: usize) -> Self {
        let chunks = |bytes: usize| {
            NonZeroU32::new(u32::try_from(bytes / DISCARD_CHUNK_BYTES).unwrap_or(u32::MAX))
                .unwrap_or(NonZeroU32::MIN)
        };
        let quota = Quota::per_second(chunks(DISCARD_BYTES_PER_SECOND))
            .allow_burst(chunks(DISCARD_BURST_BYTES));
        Self {
            limiter: DefaultDirectRateLimiter::direct(quota),
            clock: DefaultClock::default(),
            turn: Mutex::new(()),
            at_once: Semaphore::new(at_once),
        }
    }

    /// Resolves once one more chunk may be discarded. Connections take turns, first come first
    /// served (tokio's mutex is fair): waiting on the limiter together, every held-back
    /// connection woke at each new chunk's instant and all but one went back to sleep, hundreds
    /// of wake-ups a millisecond on the workers during an attack. Waits on tokio's timer
    /// (governor's own `until_ready` would start a timer thread of its own).
    async fn next_chunk(&self) {
        let _turn = self.turn.lock().await;
        while let Err(not_until) = self.limiter.check() {
            tokio::time::sleep(not_until.wait_time_from(self.clock.now())).await;
        }
    }
}

/// Discards what the client sends until it closes, for [`LINGER`] at most, at the shared pace;
/// returns at once if as many connections as allowed linger already.
pub async fn linger(stream: &TcpStream, lingering: &Lingering) {
    let Ok(_lingering) = lingering.at_once.try_acquire() else {
        return;
    };
    let discard = || {
        SINK.with_borrow_mut(|sink| {
            rustix::net::recv(stream, &mut sink[..], rustix::net::RecvFlags::TRUNC)
                .map(|(discarded, _)| discarded)
                .map_err(std::io::Error::from)
        })
    };
    let _ = tokio::time::timeout(LINGER, async {
        loop {
            if stream.readable().await.is_err() {
                return;
            }
            match stream.try_io(tokio::io::Interest::READABLE, discard) {
                Ok(0) => return,
                // Paid after the read, so that reading a close never waits.
                Ok(_) => lingering.next_chunk().await,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(_) => return,
            }
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// Held-back connections take turns at the pace. Waiting on the limiter together, every one
    /// of them was woken at each new chunk's instant, so the polls grew with the connections
    /// waiting times the chunks paced (1,159 here, against at most 4 a chunk in turns).
    #[tokio::test]
    async fn held_back_connections_take_turns_instead_of_all_waking_at_each_chunk() {
        const CONNECTIONS: usize = 50;
        const CHUNKS_EACH: usize = 2;
        let lingering = Arc::new(Lingering::new(CONNECTIONS));
        let polls = Arc::new(AtomicUsize::new(0));
        let mut connections = tokio::task::JoinSet::new();
        for _ in 0..CONNECTIONS {
            let (lingering, polls) = (lingering.clone(), polls.clone());
            connections.spawn(async move {
                for _ in 0..CHUNKS_EACH {
                    let mut next = std::pin::pin!(lingering.next_chunk());
                    std::future::poll_fn(|cx| {
                        polls.fetch_add(1, Ordering::Relaxed);
                        next.as_mut().poll(cx)
                    })
                    .await;
                }
            });
        }
        // 100 chunks, 16 of them the burst: about 80 ms at the pace.
        tokio::time::timeout(Duration::from_secs(10), connections.join_all())
            .await
            .expect("the paced chunks were all granted");
        let chunks = CONNECTIONS * CHUNKS_EACH;
        let polls = polls.load(Ordering::Relaxed);
        // In turns: one poll to queue, one when the turn comes, one when the pace allows (and
        // one to spare, should the timer wake a waiter a hair early).
        assert!(polls <= 4 * chunks, "{polls} polls for {chunks} chunks");
    }
}
