//! The workloads of manifest files, as the audit reads them: every document of every file read
//! alone (`crate::manifest`), the objects with a pod kept, the Namespaces' labels and the
//! namespace policy ConfigMaps noted, and what could not be read listed with its file, document
//! and line. Pure: the caller reads the files.

use std::collections::BTreeMap;

use serde_json::Value;

use super::Report;
use super::Status;
use super::input::{self, namespace_of};
use super::namespace::{audit_namespace, opt_in_of, own_policy};
use super::ownership::Object;
use super::report::{InputProblem, Problem, Source};
use crate::engine::ClusterInfo;
use crate::manifest::documents;
use crate::policy::PolicyLayer;

/// What the manifests hold: the objects with a pod, the Namespaces' labels, the namespace
/// policy ConfigMaps; and what could not be read, and the warnings on what could.
#[derive(Default)]
pub struct ManifestInputs {
    /// The objects with a pod (template).
    pub objects: Vec<Object>,
    /// The labels of the Namespaces among them.
    pub namespaces: BTreeMap<String, BTreeMap<String, String>>,
    /// The namespace policy ConfigMaps, by namespace: the layer, or why it is invalid.
    pub policies: BTreeMap<String, Result<PolicyLayer, String>>,
    /// What could not be read.
    pub problems: Vec<InputProblem>,
    /// Warnings on what could (keys written twice).
    pub warnings: Vec<String>,
    /// Documents seen, readable or not.
    pub documents: usize,
}

impl ManifestInputs {
    /// A file found in a directory that could not be read (not text, no permission).
    pub fn unreadable_file(&mut self, file: String, error: String) {
        self.problems.push(InputProblem {
            file,
            document: None,
            line: None,
            item: None,
            object: Default::default(),
            problem: Problem::Unreadable,
            status: Status::Warning,
            error,
        });
    }

    /// Reads every document of `file`'s `text`; what cannot be read is listed, never fatal.
    pub fn add(&mut self, file: &str, text: &str, policy_name: &str, policy_key: &str) {
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
            let (docs, failures) = crate::manifest::objects(read.value, read.order);
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

    fn add_object(&mut self, doc: crate::manifest::Document) {
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

    /// The objects by namespace, with every Namespace of the input, even empty.
    pub fn by_namespace(&self) -> BTreeMap<String, Vec<Object>> {
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

/// What an audit of manifests is asked.
pub struct ManifestAudit<'a> {
    /// The files and directories given, as the report names them.
    pub paths: Vec<String>,
    /// The cluster default policy (`None`: the built-in defaults).
    pub cluster: Option<&'a PolicyLayer>,
    /// A namespace policy that overrides every namespace's own.
    pub namespace_override: Option<&'a PolicyLayer>,
    /// Only these namespaces, when not empty (kubectl's `-n`).
    pub only: &'a [String],
    /// The namespace podgrace runs in (never opted in).
    pub podgrace_namespace: &'a str,
    /// What is known of the target cluster.
    pub info: ClusterInfo,
}

impl ManifestInputs {
    /// The audit report of these inputs: each namespace under the policy the webhook would use
    /// for it, and every input problem.
    pub fn audit(self, ask: &ManifestAudit<'_>) -> anyhow::Result<Report> {
        let namespaces = self
            .by_namespace()
            .into_iter()
            // `-n` narrows manifests too (kubectl passes its own `-n` to the plugin).
            .filter(|(ns, _)| ask.only.is_empty() || ask.only.contains(ns))
            .map(|(ns, objects)| {
                let opt_in = opt_in_of(&ns, self.namespaces.get(&ns), ask.podgrace_namespace);
                let own = own_policy(ask.namespace_override, self.policies.get(&ns).cloned());
                audit_namespace(&ns, opt_in, ask.cluster, own, objects, &ask.info)
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let source = Source::Manifests {
            paths: ask.paths.clone(),
        };
        let mut report = Report::new(source, namespaces).with_input_problems(self.problems);
        report.notes = self.warnings;
        if let Some(layer) = ask.namespace_override {
            let notes: Vec<String> = report
                .namespaces
                .iter()
                .filter_map(|ns| input::foreign_policy_note(layer, &ns.name))
                .collect();
            report.notes.extend(notes);
        }
        Ok(report)
    }
}
