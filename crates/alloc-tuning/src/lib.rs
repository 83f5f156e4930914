//! podgrace's two calls into mimalloc, its global allocator, behind safe functions: the one crate
//! of the workspace where the allocator's C API is called (podgrace itself forbids `unsafe`).
//!
//! - [`purge_at_once`]: memory freed is returned to the OS at once rather than a second later at
//!   the allocator's next call: after a burst of large reviews the webhook is mostly idle, and the
//!   memory stayed resident (bench/results/stress.md). No measurable cost per admission.
//! - [`collect`]: the calling thread's freed blocks processed now, pages given back.

/// `mi_option_purge_delay` in mimalloc.h's `mi_option_e` (libmimalloc-sys names only some).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Makes mimalloc purge freed pages at once (its default waits 1,000 ms). Call it first thing in
/// `main`, before any other thread exists: mimalloc's option table is not thread-safe.
pub fn purge_at_once() {
    // SAFETY: sets a value in mimalloc's option table; the caller runs before any other thread
    // exists (documented above); no memory is involved.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0) };
}

/// mimalloc's purge delay, in milliseconds.
pub fn purge_delay_ms() -> i64 {
    // SAFETY: reads mimalloc's option table.
    unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) }
}

/// Processes this thread's freed blocks and returns what it can to the OS. With another global
/// allocator, mimalloc's heaps are empty and this costs nothing.
pub fn collect() {
    // SAFETY: asks mimalloc to process this thread's freed blocks; no pointer is involved.
    unsafe { libmimalloc_sys::mi_collect(false) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_option_set_is_mimallocs_purge_delay() {
        // Its default, 1,000 ms, is no other option's.
        assert_eq!(purge_delay_ms(), 1000);
        purge_at_once();
        assert_eq!(purge_delay_ms(), 0);
    }
}
