//! `podgrace audit`: which workloads lose requests on a rollout, before and after opting in.
//! Reads manifests (`-f`) or a cluster (read-only, the user's credentials, see
//! `audit_cluster.rs`), runs the pure audit (`crate::audit`) and prints a table, markdown or
//! JSON. Exit codes (`super::EXIT_CODES`): 0; 1 when `--fail-on` is reached; 2 when the audit
//! could not run; 3 when part of the input could not be read (listed in the report, which
//! covers the rest).

use std::collections::BTreeMap;
use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use serde_json::Value;

use super::input::{self, namespace_of};
use super::policy::load_pair;
use super::{AuditArgs, AuditOutput, EXIT_ERROR, EXIT_FOUND, EXIT_PARTIAL, FailOn, read_input};
use crate::audit::ownership::{self, Object};
use crate::audit::report::InputProblem;
use crate::audit::report::{NamespaceReport, Source};
use crate::audit::{self, OptIn, Report, Status};
use crate::documents;
use crate::engine::ClusterInfo;
use crate::manifest;
use crate::policy::{EffectivePolicy, PolicyLayer};

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
    let inputs = Inputs::read(&args.files, &args.policy_name, &args.policy_key)?;
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
    let mut report =
        Report::new(Source::Manifests { paths }, namespaces).with_input_problems(inputs.problems);
    report.notes = inputs.warnings;
    if let Some(layer) = &namespace {
        report.notes.extend(
            report
                .namespaces
                .iter()
                .filter_map(|ns| input::foreign_policy_note(layer, &ns.name)),
        );
    }
    Ok(report)
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
/// policy ConfigMaps; and what could not be read, and the warnings on what could.
#[derive(Default)]
struct Inputs {
    objects: Vec<Object>,
    namespaces: BTreeMap<String, BTreeMap<String, String>>,
    policies: BTreeMap<String, Result<PolicyLayer, String>>,
    problems: Vec<InputProblem>,
    warnings: Vec<String>,
    documents: usize,
}

impl Inputs {
    fn read(paths: &[PathBuf], policy_name: &str, policy_key: &str) -> anyhow::Result<Self> {
        let mut inputs = Inputs::default();
        for path in paths {
            for file in files(path)? {
                let name = file.display().to_string();
                match read_input(&file) {
                    Ok(text) => inputs.add(&name, &text, policy_name, policy_key),
                    // A file named on the command line must be there; one found in a directory
                    // that cannot be read (not text, no permission) is listed.
                    Err(e) if file != *path => inputs.problems.push(InputProblem {
                        file: name,
                        document: None,
                        line: None,
                        item: None,
                        object: Default::default(),
                        problem: crate::audit::report::Problem::Unreadable,
                        status: crate::audit::Status::Warning,
                        error: format!("{:#}", e.root_cause()),
                    }),
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

    fn add(&mut self, file: &str, text: &str, policy_name: &str, policy_key: &str) {
        for chunk in documents::split(text) {
            self.documents += 1;
            let chunk = match chunk {
                Ok(chunk) => chunk,
                Err(e) => {
                    self.problems.push(input::unreadable(file, &e));
                    continue;
                }
            };
            let read = match input::read(&chunk, false) {
                Ok(read) => read,
                Err(e) => {
                    self.problems.push(input::unreadable(file, &e));
                    continue;
                }
            };
            self.warnings.extend(input::warnings(file, &chunk, &read));
            // Namespaces and policy ConfigMaps hold no pod: `manifest` skips them.
            self.add_namespaces(&read.value);
            for found in input::policies(file, &chunk, &read.value, policy_name, policy_key) {
                match found {
                    Ok((ns, layer)) => {
                        self.policies.insert(ns, layer);
                    }
                    Err((object, e)) => self
                        .problems
                        .push(input::invalid_policy(file, &chunk, object, e)),
                }
            }
            let (docs, failures) = manifest::objects(read.value, read.order);
            for f in failures {
                self.problems.push(input::failed(file, &chunk, f));
            }
            for doc in docs {
                self.add_object(doc);
            }
        }
    }

    fn add_namespaces(&mut self, value: &Value) {
        let items: Vec<&Value> = match value.get("items") {
            Some(Value::Array(items)) => items.iter().collect(),
            _ => vec![value],
        };
        for v in items {
            let meta = v.get("metadata");
            let name = meta.and_then(|m| m.get("name")).and_then(Value::as_str);
            if v.get("kind").and_then(Value::as_str) == Some("Namespace")
                && let Some(name) = name
            {
                let labels = meta
                    .and_then(|m| m.get("labels"))
                    .and_then(|l| serde_json::from_value(l.clone()).ok())
                    .unwrap_or_default();
                self.namespaces.insert(name.to_owned(), labels);
            }
        }
    }

    fn add_object(&mut self, doc: manifest::Document) {
        let Some(target) = doc.target else { return };
        let meta = doc.value.get("metadata");
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
            kind: target.kind,
            namespace: namespace_of(target.namespace.as_deref()),
            name: target.name.unwrap_or_else(|| "-".to_owned()),
            owners,
            pod: target.pod,
        });
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
