//! `podgrace mutate`: the webhook's engine on a file, printing the patch, the mutated manifest or
//! a diff on stdout and the warnings and record on stderr.

use std::process::ExitCode;

use anyhow::{Context as _, bail};
use serde_json::{Value, json};

use super::policy::load_pair;
use super::{MutateArgs, Output, read_input};
use crate::engine::{self, ClusterInfo};
use crate::key_order::{KeyOrder, Ordered};
use crate::manifest::{self, prefix_patch};
use crate::policy::{EffectivePolicy, annotations};
use crate::yaml;

pub(super) fn run(args: &MutateArgs) -> anyhow::Result<ExitCode> {
    let file = args.file.display().to_string();
    let text = read_input(&args.file)?;
    let mut docs = manifest::read_documents(&text).with_context(|| file.clone())?;
    let (cluster, namespace) = load_pair(
        args.cluster_policy.as_deref(),
        args.namespace_policy.as_deref(),
        &args.policy_key,
    )?;
    let policy = EffectivePolicy::combine(cluster.as_ref(), namespace.as_ref())
        .map_err(|e| anyhow::anyhow!("the policies do not combine into a complete policy: {e}"))?;
    let cluster_info = ClusterInfo {
        kube_version: args.kube_version,
    };

    let original: Vec<Value> = manifest::reassemble(&docs)
        .into_iter()
        .map(|(value, _)| value)
        .collect();
    let mut patches = Vec::new();
    for doc in &mut docs {
        let Some(target) = &doc.target else { continue };
        // The webhook ignores bad annotations with a warning; a preview should insist.
        if let Some(e) = annotations::read(target.pod.labels(), target.pod.annotations())
            .errors
            .first()
        {
            bail!("{file}: {}: {e}", target.label);
        }
        let m = engine::mutate(&target.pod, &policy, &cluster_info)
            .with_context(|| format!("{file}: {}", target.label))?;
        if args.explain {
            eprint!(
                "{}",
                super::explain::render(&target.label, &target.pod, &policy)
            );
        }
        for w in &m.warnings {
            eprintln!("warning: {}: {w}", target.label);
        }
        match &m.record.skipped {
            Some(why) => eprintln!("{}: skipped: {why}", target.label),
            None if m.patch.0.is_empty() => eprintln!("{}: nothing to change", target.label),
            None => {
                for c in &m.record.containers {
                    eprintln!("{}: {}: {}", target.label, c.name, c.items.join(" "));
                    if !c.rules.is_empty() {
                        eprintln!(
                            "{}: {}: rules applied: {}",
                            target.label,
                            c.name,
                            c.rules.join(", ")
                        );
                    }
                }
                // A raise is already one of the warnings above: said once.
                let raised = m
                    .record
                    .decision
                    .as_ref()
                    .is_some_and(|d| d.raised_to.is_some());
                if let Some(g) = m.record.grace.as_ref().filter(|_| !raised) {
                    eprintln!("{}: terminationGracePeriodSeconds {g}", target.label);
                }
            }
        }
        let patch = prefix_patch(&m.patch, &target.path);
        json_patch::patch(&mut doc.value, &patch.0).with_context(|| {
            format!(
                "{file}: {}: the patch does not apply (a bug in podgrace)",
                target.label
            )
        })?;
        patches.push((target.label.clone(), doc.list_index, patch));
    }

    match args.output {
        Output::Patch => {
            let in_list = patches.iter().any(|(_, item, _)| item.is_some());
            let out = match patches.as_slice() {
                [(_, None, patch)] => serde_json::to_value(patch)?,
                _ => Value::Array(
                    patches
                        .iter()
                        .map(|(label, item, patch)| match item {
                            Some(i) => json!({ "object": label, "item": i, "patch": patch }),
                            None => json!({ "object": label, "patch": patch }),
                        })
                        .collect(),
                ),
            };
            if in_list {
                eprintln!(
                    "note: the paths of a List item's patch start at the item (\"item\" is its index in the List's items), as the API server sees each object kubectl sends"
                );
            }
            println!("{}", serde_json::to_string_pretty(&out)?);
        }
        Output::Pod => print!("{}", yaml_stream(&manifest::reassemble(&docs))?),
        Output::Diff => {
            let mutated = manifest::reassemble(&docs);
            let orders = mutated.iter().map(|(_, order)| *order);
            let before: Vec<_> = original.into_iter().zip(orders).collect();
            let before = yaml_stream(&before)?;
            let after = yaml_stream(&mutated)?;
            let diff = similar::TextDiff::from_lines(&before, &after);
            print!(
                "{}",
                diff.unified_diff()
                    .context_radius(3)
                    .header(&file, &format!("{file} (mutated)"))
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The documents as a YAML stream, each key where the input had it (see [`crate::key_order`])
/// and every string a YAML 1.1 reader such as kubectl's would misread quoted (see
/// [`crate::yaml`]).
fn yaml_stream(docs: &[(Value, &KeyOrder)]) -> anyhow::Result<String> {
    let mut out = String::new();
    for (i, (value, order)) in docs.iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        out.push_str(&yaml::to_string(&Ordered::new(value, order))?);
    }
    Ok(out)
}
