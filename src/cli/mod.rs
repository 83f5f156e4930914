//! The command line: argument definitions (clap, with environment variables for everything a
//! Deployment sets) and dispatch to one module per subcommand.

mod mutate;
mod policy;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::kube_version::KubeVersion;

/// podgrace: graceful pod termination, injected by an admission webhook.
#[derive(Debug, Parser)]
#[command(name = "podgrace", version, about, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Preview the webhook's patch on a manifest, offline.
    Mutate(MutateArgs),
    /// Validate or show policies.
    Policy {
        /// Policy subcommand.
        #[command(subcommand)]
        command: PolicyCommand,
    },
}

/// `podgrace mutate`.
#[derive(Debug, Args)]
pub struct MutateArgs {
    /// Manifest: a Pod, a workload (Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob),
    /// several of them, or an AdmissionReview; `-` reads standard input.
    #[arg(short = 'f', long = "filename", value_name = "FILE")]
    pub file: PathBuf,
    /// Namespace policy: a policy file or a ConfigMap manifest carrying one.
    #[arg(long, value_name = "FILE")]
    pub namespace_policy: Option<PathBuf>,
    /// Cluster default policy file.
    #[arg(long, value_name = "FILE", env = "PODGRACE_CLUSTER_POLICY")]
    pub cluster_policy: Option<PathBuf>,
    /// What to print.
    #[arg(short, long, value_enum, default_value_t = Output::Patch)]
    pub output: Output,
    /// Kubernetes version of the target cluster (for `sleepHandler: auto`), e.g. 1.29.
    #[arg(long, value_name = "VERSION")]
    pub kube_version: Option<KubeVersion>,
    /// ConfigMap key holding the policy.
    #[arg(long, default_value = crate::policy::POLICY_KEY)]
    pub policy_key: String,
}

/// Output formats of `podgrace mutate`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// The JSON patch (paths into the document given).
    Patch,
    /// The mutated manifest, as YAML.
    Pod,
    /// A unified diff of the manifest before and after.
    Diff,
}

/// `podgrace policy ...`.
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Validate policy files or ConfigMap manifests; exits non-zero on the first invalid one.
    Check {
        /// Files to check.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        /// Cluster default policy the files are layered on (to check their combination).
        #[arg(long, value_name = "FILE")]
        cluster_policy: Option<PathBuf>,
        /// ConfigMap key holding the policy.
        #[arg(long, default_value = crate::policy::POLICY_KEY)]
        policy_key: String,
    },
    /// Print the built-in policy (every default) as YAML.
    Defaults,
}

/// Runs the command line; errors are printed as one line on stderr.
pub fn run(cli: Cli) -> ExitCode {
    let result = match cli.command {
        Command::Mutate(args) => mutate::run(&args),
        Command::Policy { command } => policy::run(&command),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("podgrace: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Reads a file, or standard input for `-`, naming the file in the error.
fn read_input(path: &std::path::Path) -> anyhow::Result<String> {
    use anyhow::Context as _;
    if path.as_os_str() == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
            .context("reading standard input")?;
        Ok(s)
    } else {
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
    }
}
