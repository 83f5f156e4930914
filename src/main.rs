//! The podgrace binary: parse the command line and hand over to the library.

use std::process::ExitCode;

// Admission handling is dominated by small allocations (JSON trees, strings); mimalloc serves
// them without glibc's lock and consolidation passes.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // Memory freed goes back to the OS at once (see the crate), set before any other thread.
    podgrace_alloc_tuning::purge_at_once();
    podgrace::cli::run(podgrace::cli::parse())
}
