//! The podgrace binary: parse the command line and hand over to the library.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    podgrace::cli::run(podgrace::cli::Cli::parse())
}
