//! `podgrace audit`: which workloads lose requests on a rollout, before and after opting in.
//! Reads manifests (`-f`) or a cluster (read-only, the user's credentials, see
//! `audit_cluster.rs`), runs the pure audit (`crate::audit`) and prints a table, markdown or
//! JSON. Exit codes: 0, 1 when `--fail-on` is reached, 2 when the audit could not run.

use std::collections::BTreeMap;
use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use k8s_openapi::api::core::v1::ConfigMap;
use serde_json::Value;

use super::policy::load_pair;
use super::{AuditArgs, AuditOutput, FailOn, read_input};
use crate::audit::ownership::{self, Object};
use crate::audit::report::{NamespaceReport, Source};
use crate::audit::{self, OptIn, Report, Status};
use crate::engine::ClusterInfo;
use crate::manifest::{self, ManifestError};
use crate::policy::parse::layer_from_configmap;
use crate::policy::{EffectivePolicy, PolicyLayer};

/// Exit code when the audit could not run (clap's usage errors use it too).
const EXIT_ERROR: u8 = 2;

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
                ExitCode::FAILURE
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
    let inputs = Inputs::read(&args.files, &args.policy_name)?;
    let paths = args.files.iter().map(|p| p.display().to_string()).collect();
    let excluded = [args.podgrace_namespace.as_str(), "kube-system"];
    let namespaces = inputs
        .by_namespace()
        .into_iter()
        // `-n` narrows manifests too (kubectl passes its own `-n` to the plugin).
        .filter(|(ns, _)| args.namespaces.is_empty() || args.namespaces.contains(ns))
        .map(|(ns, objects)| {
            let opt_in = match inputs.namespaces.get(&ns) {
                Some(labels) => OptIn::from_labels(Some(labels), excluded.contains(&ns.as_str())),
                None if excluded.contains(&ns.as_str()) => OptIn::Excluded,
                None => OptIn::Unknown,
            };
            let own = match &namespace {
                Some(layer) => Some(Ok(layer.clone())),
                None => inputs.policies.get(&ns).cloned(),
            };
            let info = ClusterInfo {
                kube_version: args.kube_version,
            };
            audit_namespace(&ns, opt_in, cluster.as_ref(), own, objects, &info)
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(Report::new(Source::Manifests { paths }, namespaces))
}

/// Audits one namespace's objects under its policy: its own layer when it has a valid one, the
/// cluster default otherwise (what the webhook would use), the problem reported.
pub(super) fn audit_namespace(
    name: &str,
    opt_in: OptIn,
    cluster: Option<&PolicyLayer>,
    own: Option<Result<PolicyLayer, String>>,
    objects: Vec<Object>,
    info: &ClusterInfo,
) -> anyhow::Result<NamespaceReport> {
    let mut policy_error = None;
    let combined = match own {
        Some(Ok(layer)) => match EffectivePolicy::combine(cluster, Some(&layer)) {
            Ok(p) => Some(p),
            Err(e) => {
                policy_error = Some(e.to_string());
                None
            }
        },
        Some(Err(e)) => {
            policy_error = Some(e);
            None
        }
        None => None,
    };
    let policy = match combined {
        Some(p) => p,
        None => EffectivePolicy::combine(cluster, None)
            .map_err(|e| anyhow::anyhow!("the cluster default policy is incomplete: {e}"))?,
    };
    let mut workloads = Vec::new();
    for w in ownership::workloads(objects) {
        let report = audit::audit_workload(&w, &opt_in, &policy, info)
            .with_context(|| format!("{} {}/{}", w.kind, w.namespace, w.name))?;
        workloads.push(report);
    }
    Ok(NamespaceReport {
        name: name.to_owned(),
        opt_in,
        readable: true,
        error: None,
        unreadable: Vec::new(),
        policy: policy.description().to_owned(),
        policy_error,
        workloads,
    })
}

/// What the manifests hold: the objects with a pod, the Namespaces' labels, the namespace
/// policy ConfigMaps.
#[derive(Default)]
struct Inputs {
    objects: Vec<Object>,
    namespaces: BTreeMap<String, BTreeMap<String, String>>,
    policies: BTreeMap<String, Result<PolicyLayer, String>>,
}

impl Inputs {
    fn read(paths: &[PathBuf], policy_name: &str) -> anyhow::Result<Self> {
        let mut inputs = Inputs::default();
        for path in paths {
            for file in files(path)? {
                let text = read_input(&file)?;
                inputs
                    .add(&text, policy_name)
                    .with_context(|| file.display().to_string())?;
            }
        }
        Ok(inputs)
    }

    fn add(&mut self, text: &str, policy_name: &str) -> anyhow::Result<()> {
        // Namespaces and policy ConfigMaps hold no pod: `manifest` skips them.
        let values: Vec<Value> =
            crate::yaml::manifests(text).map_err(|e| anyhow::anyhow!("{e}"))?;
        for v in values.iter().flat_map(|v| match v.get("items") {
            Some(Value::Array(items)) => items.iter().collect::<Vec<_>>(),
            _ => vec![v],
        }) {
            let kind = v.get("kind").and_then(Value::as_str);
            let meta = v.get("metadata");
            let name = meta.and_then(|m| m.get("name")).and_then(Value::as_str);
            if kind == Some("Namespace")
                && let Some(name) = name
            {
                let labels = meta
                    .and_then(|m| m.get("labels"))
                    .and_then(|l| serde_json::from_value(l.clone()).ok())
                    .unwrap_or_default();
                self.namespaces.insert(name.to_owned(), labels);
            }
            if kind == Some("ConfigMap") && name == Some(policy_name) {
                let cm: ConfigMap = serde_json::from_value(v.clone())
                    .context("a policy ConfigMap that is not a ConfigMap")?;
                let ns = namespace_of(cm.metadata.namespace.as_deref());
                let layer =
                    layer_from_configmap(&cm, crate::policy::POLICY_KEY).map_err(|e| e.to_string());
                self.policies.insert(ns, layer);
            }
        }
        // The values read above, not the text again: YAML reading is most of an audit's time.
        let docs = match manifest::documents_of_values(values) {
            Ok(docs) => docs,
            // A file of Services and ConfigMaps: nothing to audit in it.
            Err(ManifestError::NothingToMutate(_)) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        for doc in docs {
            let Some(target) = doc.target else { continue };
            let kind = doc
                .value
                .get("kind")
                .and_then(Value::as_str)
                .unwrap_or("Pod");
            let meta = doc.value.get("metadata");
            let name = meta
                .and_then(|m| m.get("name").or_else(|| m.get("generateName")))
                .and_then(Value::as_str)
                .unwrap_or("-");
            let owners = meta
                .and_then(|m| m.get("ownerReferences"))
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|r| {
                    Some((
                        r.get("kind")?.as_str()?.to_owned(),
                        r.get("name")?.as_str()?.to_owned(),
                    ))
                })
                .collect();
            self.objects.push(Object {
                kind: kind.to_owned(),
                namespace: namespace_of(target.namespace.as_deref()),
                name: name.to_owned(),
                owners,
                pod: target.pod,
            });
        }
        Ok(())
    }

    fn by_namespace(&self) -> BTreeMap<String, Vec<Object>> {
        let mut out: BTreeMap<String, Vec<Object>> = BTreeMap::new();
        for o in &self.objects {
            out.entry(o.namespace.clone()).or_default().push(o.clone());
        }
        for ns in self.namespaces.keys() {
            out.entry(ns.clone()).or_default();
        }
        out
    }
}

fn namespace_of(ns: Option<&str>) -> String {
    ns.unwrap_or("default").to_owned()
}

/// The manifest files under `path`: itself, or a directory's `.yaml`, `.yml` and `.json` files
/// (recursively, sorted); `-` is standard input.
fn files(path: &Path) -> anyhow::Result<Vec<PathBuf>> {
    if path.as_os_str() == "-" || !path.is_dir() {
        return Ok(vec![path.to_owned()]);
    }
    let mut out = Vec::new();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
        .with_context(|| format!("reading directory {}", path.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .with_context(|| format!("reading directory {}", path.display()))?;
    entries.sort();
    for entry in entries {
        if entry.is_dir() {
            out.extend(files(&entry)?);
        } else if entry
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| matches!(e, "yaml" | "yml" | "json"))
        {
            out.push(entry);
        }
    }
    Ok(out)
}
