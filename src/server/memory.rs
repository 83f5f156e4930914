//! Returning the memory of large reviews to the OS. mimalloc, the binary's allocator, purges the
//! pages freed into it (at once: `podgrace_alloc_tuning::purge_at_once`), but a block freed by another thread than the one
//! that allocated it (a body read on an async worker, dropped on the large-review thread) only
//! frees its page when the owning thread next allocates or collects. After a burst the webhook
//! is mostly idle, so that memory stayed resident. Instead, each large review marks a
//! generation, and every async worker (when it goes idle) and the large-review thread (after its
//! job) collect once per generation: nothing for ordinary reviews, one cheap call per thread
//! after large ones. With another global allocator (the tests' in-process servers), mimalloc's
//! own heaps are empty and collecting them costs nothing.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

static GENERATION: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static COLLECTED: Cell<u64> = const { Cell::new(0) };
}

/// A large review was answered: its memory is to be returned.
pub fn large_review_done() {
    GENERATION.fetch_add(1, Relaxed);
}

/// Collects this thread's freed memory if a large review was answered since it last did (for
/// the runtime's `on_thread_park`, and the large-review thread).
pub fn collect_if_due() {
    let generation = GENERATION.load(Relaxed);
    if COLLECTED.get() != generation {
        COLLECTED.set(generation);
        podgrace_alloc_tuning::collect();
    }
}
