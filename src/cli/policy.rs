//! `podgrace policy check` and `podgrace policy defaults`.

use std::process::ExitCode;

use anyhow::Context as _;

use super::PolicyCommand;
use crate::manifest::files;
use crate::policy::parse::layers_from_file_text;
use crate::policy::{EffectivePolicy, PolicyLayer, defaults};
use crate::protocols::yaml;

pub(super) fn run(cmd: &PolicyCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        PolicyCommand::Defaults => {
            print!(
                "{}",
                yaml::to_string(&defaults::builtin()).context("rendering defaults")?
            );
            Ok(ExitCode::SUCCESS)
        }
        PolicyCommand::Check {
            files,
            cluster_policy,
            policy_key,
        } => {
            let cluster = match cluster_policy {
                Some(path) => Some(load_one(path, policy_key)?),
                None => None,
            };
            let mut failed = false;
            for path in files {
                let text = files::read(path)?;
                for result in layers_from_file_text(&path.display().to_string(), &text, policy_key)
                {
                    let checked = result.and_then(|layer| {
                        EffectivePolicy::combine(cluster.as_ref(), Some(&layer))
                            .map(|policy| (layer, policy))
                    });
                    match checked {
                        Ok((layer, policy)) => {
                            println!("ok: {}", layer.origin);
                            // Valid, but a value that never reaches a pod is worth a line.
                            for note in policy.notes() {
                                println!("note: {}: {note}", layer.origin);
                            }
                        }
                        Err(mut e) => {
                            // Completeness errors come from the merged policy: located in the
                            // file where it is the policy itself.
                            e.errors = e
                                .errors
                                .into_iter()
                                .map(|f| crate::policy::parse::located(&text, f))
                                .collect();
                            eprintln!("invalid: {e}");
                            failed = true;
                        }
                    }
                }
            }
            Ok(if failed {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            })
        }
    }
}

/// Loads a file that must hold exactly one valid policy.
pub(super) fn load_one(path: &std::path::Path, key: &str) -> anyhow::Result<PolicyLayer> {
    let text = files::read(path)?;
    let mut layers = layers_from_file_text(&path.display().to_string(), &text, key);
    if layers.len() != 1 {
        anyhow::bail!(
            "{}: expected one policy, found {}",
            path.display(),
            layers.len()
        );
    }
    Ok(layers.remove(0)?)
}

/// The `--cluster-policy` and `--namespace-policy` files of a preview or an audit, each loaded
/// when given.
pub(super) fn load_pair(
    cluster: Option<&std::path::Path>,
    namespace: Option<&std::path::Path>,
    key: &str,
) -> anyhow::Result<(Option<PolicyLayer>, Option<PolicyLayer>)> {
    let load = |path: Option<&std::path::Path>| path.map(|p| load_one(p, key)).transpose();
    Ok((load(cluster)?, load(namespace)?))
}
