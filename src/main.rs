//! The podgrace binary: parse the command line and hand over to the library.

use std::process::ExitCode;

use clap::Parser;

// Admission handling is dominated by small allocations (JSON trees, strings); mimalloc serves
// them without glibc's lock and consolidation passes.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    podgrace::cli::run(podgrace::cli::Cli::parse())
}
