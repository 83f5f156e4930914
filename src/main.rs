//! The podgrace binary: parse the command line and hand over to the library.

use std::process::ExitCode;

// Admission handling is dominated by small allocations (JSON trees, strings); mimalloc serves
// them without glibc's lock and consolidation passes.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in mimalloc.h's `mi_option_e` (libmimalloc-sys names only some).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

fn main() -> ExitCode {
    // Memory freed is returned to the OS at once, not a second later at the allocator's next
    // call: after a burst of large reviews the webhook is mostly idle, and the memory stayed
    // resident (docs/PERFORMANCE.md). No measurable cost per admission.
    // SAFETY: sets a value in mimalloc's option table, before any other thread exists (the
    // function is not thread-safe); no memory is involved.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0) };
    podgrace::cli::run(podgrace::cli::parse())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_option_set_is_mimallocs_purge_delay() {
        // Its default, 1,000 ms, is no other option's.
        // SAFETY: reads mimalloc's option table.
        let value = unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) };
        assert_eq!(value, 1000);
    }
}
