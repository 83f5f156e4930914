//! `podgrace audit`: which workloads lose requests on a rollout, before and after opting in.
//! Reads manifests (`-f`) or a cluster (read-only, the user's credentials, see
//! `audit_cluster.rs`), runs the pure audit (`crate::audit`) and prints a table, markdown or
//! JSON. Exit codes (`super::EXIT_CODES`): 0; 1 when `--fail-on` is reached; 2 when the audit
//! could not run; 3 when part of the input could not be read (listed in the report, which
//! covers the rest).

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::process::ExitCode;

use super::policy::load_pair;
use super::{AuditArgs, AuditOutput, EXIT_ERROR, EXIT_FOUND, EXIT_PARTIAL, FailOn};
use crate::audit::manifests::{ManifestAudit, ManifestInputs};
use crate::audit::{Report, Status};
use crate::engine::ClusterInfo;
use crate::manifest::files;

pub(super) fn run(args: &AuditArgs) -> anyhow::Result<ExitCode> {
    match audit(args) {
        Ok(report) => {
            print!("{}", render(&report, args.output)?);
            let failed = match args.fail_on {
                Some(FailOn::Risk) => report.summary.status >= Status::Risk,
                Some(FailOn::Warning) => report.summary.status >= Status::Warning,
                None => false,
            };
            Ok(if failed {
                ExitCode::from(EXIT_FOUND)
            } else if report.partial() {
                ExitCode::from(EXIT_PARTIAL)
            } else {
                ExitCode::SUCCESS
            })
        }
        Err(e) => {
            eprintln!("podgrace: error: {e:#}");
            Ok(ExitCode::from(EXIT_ERROR))
        }
    }
}

fn render(report: &Report, output: AuditOutput) -> anyhow::Result<String> {
    Ok(match output {
        AuditOutput::Table => report.table(std::io::stdout().is_terminal()),
        AuditOutput::Markdown => report.markdown(),
        AuditOutput::Json => {
            let mut s = serde_json::to_string_pretty(report)?;
            s.push('\n');
            s
        }
    })
}

fn audit(args: &AuditArgs) -> anyhow::Result<Report> {
    let (cluster, namespace) = load_pair(
        args.cluster_policy.as_deref(),
        args.namespace_policy.as_deref(),
        &args.policy_key,
    )?;
    if args.files.is_empty() {
        return super::audit_cluster::run(args, cluster, namespace);
    }
    let inputs = read_manifests(&args.files, &args.policy_name, &args.policy_key)?;
    inputs.audit(&ManifestAudit {
        paths: args.files.iter().map(|p| p.display().to_string()).collect(),
        cluster: cluster.as_ref(),
        namespace_override: namespace.as_ref(),
        only: &args.namespaces,
        podgrace_namespace: &args.podgrace_namespace,
        info: ClusterInfo {
            kube_version: args.kube_version,
        },
    })
}

/// Every manifest file under `paths`, read. A file named on the command line must be there; one
/// found in a directory that cannot be read (not text, no permission) is listed.
fn read_manifests(
    paths: &[PathBuf],
    policy_name: &str,
    policy_key: &str,
) -> anyhow::Result<ManifestInputs> {
    let mut inputs = ManifestInputs::default();
    for path in paths {
        for file in files::under(path)? {
            let name = file.display().to_string();
            match files::read(&file) {
                Ok(text) => inputs.add(&name, &text, policy_name, policy_key),
                Err(e) if file != *path => {
                    inputs.unreadable_file(name, format!("{:#}", e.root_cause()));
                }
                Err(e) => return Err(e),
            }
        }
    }
    if inputs.documents == 0 && inputs.problems.is_empty() {
        let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        anyhow::bail!(
            "no documents in {}: nothing to audit (an empty input is an error, not an empty report)",
            names.join(", ")
        );
    }
    Ok(inputs)
}
