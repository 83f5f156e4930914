//! `podgrace mutate`: the webhook's engine on a file, printing the patch, the mutated manifest or
//! a diff on stdout and the warnings and record on stderr.
//!
//! The file is read one document at a time, as kubectl applies it: each document is read,
//! mutated and written before the next is read, so time and memory grow with the file (a diff
//! is made per document). A document that cannot be read or mutated is named on stderr (file,
//! document, line, object) and written back as it was; the others are processed all the same,
//! and the exit code says that some failed (3). A namespace policy ConfigMap in the input
//! applies to the workloads of its namespace, as `podgrace audit` applies it.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use serde_json::{Value, json};

use super::policy::load_pair;
use super::{EXIT_PARTIAL, MutateArgs, Output};
use crate::audit::input::{self, namespace_of};
use crate::audit::report::InputProblem;
use crate::engine::{self, ClusterInfo};
use crate::manifest::documents::{self, Chunk};
use crate::manifest::files;
use crate::manifest::key_order::{KeyOrder, Ordered};
use crate::manifest::{self, KINDS, Target, prefix_patch};
use crate::policy::{EffectivePolicy, PolicyLayer, annotations};
use crate::protocols::yaml;

pub(super) fn run(args: &MutateArgs) -> anyhow::Result<ExitCode> {
    let file = args.file.display().to_string();
    let text = files::read(&args.file)?;
    let chunks = documents::split(&text);
    if chunks.is_empty() {
        bail!("{file}: no documents: nothing to preview (expected a {KINDS})");
    }
    let (cluster, namespace) = load_pair(
        args.cluster_policy.as_deref(),
        args.namespace_policy.as_deref(),
        &args.policy_key,
    )?;
    let mut run = Run {
        file: &file,
        args,
        cluster,
        namespace,
        found: BTreeMap::new(),
        policies: BTreeMap::new(),
        noted: Vec::new(),
        failed: 0,
        targets: 0,
        out: Out::new(args.output, &file),
    };
    if run.namespace.is_none() {
        run.find_policies(&chunks);
    }
    for chunk in &chunks {
        match chunk {
            Ok(chunk) => run.document(chunk)?,
            Err(e) => run.problem(&input::unreadable(&file, e)),
        }
    }
    if run.targets == 0 && run.failed == 0 {
        let kinds = kinds(&chunks);
        bail!(
            "{file}: no Pod, workload or AdmissionReview found (documents: {kinds}); expected a {KINDS}"
        );
    }
    run.out.finish()?;
    if run.failed > 0 {
        eprintln!(
            "podgrace: {} of the documents of {file} could not be read or mutated (named above); the others were",
            run.failed
        );
        return Ok(ExitCode::from(EXIT_PARTIAL));
    }
    Ok(ExitCode::SUCCESS)
}

/// The kinds of the documents, for the error when none holds a pod.
fn kinds(chunks: &[Result<Chunk<'_>, documents::ReadError>]) -> String {
    let kinds: Vec<String> = chunks
        .iter()
        .flatten()
        .filter_map(|c| documents::read(c, false).ok())
        .map(|d| {
            d.value
                .get("kind")
                .and_then(Value::as_str)
                .unwrap_or("no kind")
                .to_owned()
        })
        .collect();
    if kinds.is_empty() {
        "none".to_owned()
    } else {
        kinds.join(", ")
    }
}

/// One run over a file.
struct Run<'a> {
    file: &'a str,
    args: &'a MutateArgs,
    cluster: Option<PolicyLayer>,
    /// `--namespace-policy`: for every workload, instead of the policies in the input.
    namespace: Option<PolicyLayer>,
    /// The namespace policies found in the input, by namespace.
    found: BTreeMap<String, Result<PolicyLayer, String>>,
    /// The effective policy of each namespace met, once combined.
    policies: BTreeMap<String, EffectivePolicy>,
    /// Namespaces already given a note.
    noted: Vec<String>,
    failed: usize,
    targets: usize,
    out: Out,
}

impl Run<'_> {
    /// Reads the namespace policy ConfigMaps first, wherever they are in the file: `kubectl
    /// apply` creates them with the workloads, and the pods come after.
    fn find_policies(&mut self, chunks: &[Result<Chunk<'_>, documents::ReadError>]) {
        let name = &self.args.policy_name;
        for chunk in chunks.iter().flatten() {
            // Only the documents that can be one are read twice.
            if !(chunk.text.contains("ConfigMap") && chunk.text.contains(name.as_str())) {
                continue;
            }
            let Ok(d) = documents::read(chunk, false) else {
                continue;
            };
            for found in input::policies(self.file, chunk, &d.value, name, &self.args.policy_key) {
                match found {
                    Ok((ns, layer)) => {
                        // As `audit` reports it: a warning, the cluster default used.
                        if let Err(e) = &layer {
                            eprintln!(
                                "warning: {}: document {}, line {}: invalid namespace policy, the cluster default applies to namespace {ns} (as in the webhook): {e}",
                                self.file, chunk.number, chunk.line
                            );
                        }
                        self.found.insert(ns, layer);
                    }
                    Err((object, e)) => {
                        self.problem(&input::invalid_policy(self.file, chunk, object, e));
                    }
                }
            }
        }
    }

    fn problem(&mut self, p: &InputProblem) {
        if p.problem.is_partial() {
            self.failed += 1;
            eprintln!("podgrace: error: {p}");
        } else {
            eprintln!("podgrace: {p}");
        }
    }

    /// The effective policy for the pods of `namespace`.
    fn policy(&mut self, namespace: &str) -> anyhow::Result<&EffectivePolicy> {
        if !self.policies.contains_key(namespace) {
            let own = match &self.namespace {
                Some(layer) => Some(layer),
                None => self.found.get(namespace).and_then(|l| l.as_ref().ok()),
            };
            let policy = EffectivePolicy::combine(self.cluster.as_ref(), own).map_err(|e| {
                anyhow::anyhow!("the policies do not combine into a complete policy: {e}")
            })?;
            self.policies.insert(namespace.to_owned(), policy);
        }
        Ok(&self.policies[namespace])
    }

    fn document(&mut self, chunk: &Chunk<'_>) -> anyhow::Result<()> {
        let ordered = self.args.output != Output::Patch;
        let read = match input::read(chunk, ordered) {
            Ok(read) => read,
            Err(e) => {
                self.problem(&input::unreadable(self.file, &e));
                return self.out.verbatim(chunk.text);
            }
        };
        for w in input::warnings(self.file, chunk, &read) {
            eprintln!("warning: {w}");
        }
        let before = (self.args.output == Output::Diff).then(|| read.value.clone());
        let (mut docs, failures) = manifest::objects(read.value, read.order);
        for f in failures {
            self.problem(&input::failed(self.file, chunk, f));
        }
        let mut changed = false;
        for doc in &mut docs {
            let Some(target) = doc.target.take() else {
                continue;
            };
            self.targets += 1;
            let ns = namespace_of(target.namespace.as_deref());
            if target.namespace.is_some()
                && let Some(layer) = &self.namespace
                && let Some(note) = input::foreign_policy_note(layer, &ns)
                && !self.noted.contains(&ns)
            {
                eprintln!("note: {note}");
                self.noted.push(ns.clone());
            }
            let place = format!(
                "{}: document {}, line {} ({})",
                self.file, chunk.number, chunk.line, target.label
            );
            // The webhook ignores bad annotations with a warning; a preview should insist.
            if let Some(e) = annotations::read(target.pod.labels(), target.pod.annotations())
                .errors
                .first()
            {
                self.failed += 1;
                eprintln!("podgrace: error: {place}: {e}");
                self.out
                    .patch(chunk.number, doc.list_index, &target, None)?;
                continue;
            }
            let explain = self.args.explain;
            let cluster_info = ClusterInfo {
                kube_version: self.args.kube_version,
            };
            let policy = self.policy(&ns)?;
            let m = match engine::mutation_for(&target.pod, policy, &cluster_info) {
                Ok(m) => m,
                Err(e) => {
                    self.failed += 1;
                    eprintln!("podgrace: error: {place}: {e}");
                    self.out
                        .patch(chunk.number, doc.list_index, &target, None)?;
                    continue;
                }
            };
            if explain {
                eprint!(
                    "{}",
                    super::explain::render(&target.label, &target.pod, policy)
                );
            }
            report(&target.label, &m);
            let patch = prefix_patch(&m.patch, &target.path);
            json_patch::patch(&mut doc.value, &patch.0).with_context(|| {
                format!("{place}: the patch does not apply (a bug in podgrace)")
            })?;
            changed |= !patch.0.is_empty();
            self.out
                .patch(chunk.number, doc.list_index, &target, Some(&patch))?;
        }
        match self.args.output {
            Output::Patch => Ok(()),
            _ => match manifest::reassemble(docs) {
                Some((after, order)) => {
                    self.out
                        .document(before.filter(|_| changed).as_ref(), &after, &order)
                }
                None => self.out.verbatim(chunk.text),
            },
        }
    }
}

/// The record of a mutation on stderr: warnings, what was injected, the grace period.
fn report(label: &str, m: &engine::Mutation) {
    for w in &m.warnings {
        eprintln!("warning: {label}: {w}");
    }
    match &m.record.skipped {
        Some(why) => eprintln!("{label}: skipped: {why}"),
        None if m.patch.0.is_empty() => eprintln!("{label}: nothing to change"),
        None => {
            for c in &m.record.containers {
                eprintln!("{label}: {}: {}", c.name, c.items.join(" "));
                if !c.rules.is_empty() {
                    eprintln!("{label}: {}: rules applied: {}", c.name, c.rules.join(", "));
                }
            }
            // A raise is already one of the warnings above: said once.
            let raised = m
                .record
                .decision
                .as_ref()
                .is_some_and(|d| d.raised_to.is_some());
            if let Some(g) = m.record.grace.as_ref().filter(|_| !raised) {
                eprintln!("{label}: terminationGracePeriodSeconds {g}");
            }
        }
    }
}

/// What goes to stdout, written as the documents come. Until the first workload is met it is
/// held back: a file without one is an error, with nothing printed.
struct Out {
    stdout: std::io::BufWriter<std::io::Stdout>,
    output: Output,
    header: String,
    held: Vec<u8>,
    streaming: bool,
    /// Documents written (`-o pod`, `-o diff`) or patch entries (`-o patch`).
    written: usize,
    /// Lines written so far (`-o diff`: of the manifest before, and after).
    lines: (usize, usize),
}

impl Out {
    fn new(output: Output, file: &str) -> Self {
        Out {
            stdout: std::io::BufWriter::with_capacity(1 << 16, std::io::stdout()),
            output,
            header: format!("--- {file}\n+++ {file} (mutated)\n"),
            held: Vec::new(),
            streaming: false,
            written: 0,
            lines: (0, 0),
        }
    }

    fn write(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        if self.streaming {
            self.stdout.write_all(bytes)?;
        } else {
            self.held.extend_from_slice(bytes);
        }
        Ok(())
    }

    /// From the first workload on, output goes straight out.
    fn stream(&mut self) -> anyhow::Result<()> {
        if !self.streaming {
            self.streaming = true;
            let held = std::mem::take(&mut self.held);
            self.write(&held)?;
        }
        Ok(())
    }

    /// One entry of `-o patch` (see the README and `Output::Patch`): a workload, its patch (`null` when it could
    /// not be mutated).
    fn patch(
        &mut self,
        document: usize,
        item: Option<usize>,
        target: &Target,
        patch: Option<&json_patch::Patch>,
    ) -> anyhow::Result<()> {
        self.stream()?;
        if self.output != Output::Patch {
            return Ok(());
        }
        let entry = json!({
            "document": document,
            "item": item,
            "kind": target.kind,
            "namespace": target.namespace,
            "name": target.name,
            "patch": patch,
        });
        let mut text = if self.written == 0 { "[\n  " } else { ",\n  " }.to_owned();
        text.push_str(&serde_json::to_string_pretty(&entry)?.replace('\n', "\n  "));
        self.written += 1;
        self.write(text.as_bytes())
    }

    /// A document as read (one that could not be), for `-o pod` and the diff's line count.
    fn verbatim(&mut self, text: &str) -> anyhow::Result<()> {
        if self.output == Output::Patch {
            return Ok(());
        }
        // Its own `---` line goes: the separator comes from here.
        let body = match text.split_once('\n') {
            Some((first, rest)) if first.trim_end() == "---" => rest,
            _ => text,
        };
        let mut body = body.to_owned();
        if !body.ends_with('\n') {
            body.push('\n');
        }
        self.next_document()?;
        let n = body.lines().count();
        self.lines.0 += n;
        self.lines.1 += n;
        if self.output == Output::Pod {
            self.write(body.as_bytes())?;
        }
        Ok(())
    }

    fn next_document(&mut self) -> anyhow::Result<()> {
        if self.written > 0 {
            self.lines.0 += 1;
            self.lines.1 += 1;
            if self.output == Output::Pod {
                self.write(b"---\n")?;
            }
        }
        self.written += 1;
        Ok(())
    }

    /// A document read, mutated or not: `-o pod` writes it, `-o diff` its changes (`before`
    /// is the document before, when it changed).
    fn document(
        &mut self,
        before: Option<&Value>,
        after: &Value,
        order: &KeyOrder,
    ) -> anyhow::Result<()> {
        self.next_document()?;
        let after = yaml::to_string(&Ordered::new(after, order))?;
        match (self.output, before) {
            (Output::Pod, _) => self.write(after.as_bytes()),
            (Output::Diff, Some(before)) => {
                let before = yaml::to_string(&Ordered::new(before, order))?;
                let hunks = hunks(&before, &after, self.lines);
                self.lines.0 += before.lines().count();
                self.lines.1 += after.lines().count();
                if !hunks.is_empty() {
                    if self.header.is_empty() {
                        self.write(hunks.as_bytes())?;
                    } else {
                        let mut text = std::mem::take(&mut self.header);
                        text.push_str(&hunks);
                        self.write(text.as_bytes())?;
                    }
                }
                Ok(())
            }
            _ => {
                let n = after.lines().count();
                self.lines.0 += n;
                self.lines.1 += n;
                Ok(())
            }
        }
    }

    fn finish(&mut self) -> anyhow::Result<()> {
        self.stream()?;
        if self.output == Output::Patch {
            self.write(if self.written == 0 { b"[]\n" } else { b"\n]\n" })?;
        }
        self.stdout.flush()?;
        Ok(())
    }
}

/// The unified diff hunks of one document, their line numbers counted in the whole stream
/// (`offset`: the lines before it, before and after).
fn hunks(before: &str, after: &str, offset: (usize, usize)) -> String {
    use std::fmt::Write as _;
    let range = |start: usize, end: usize, base: usize| {
        let len = end - start;
        match len {
            1 => format!("{}", base + start + 1),
            // An empty range begins at the line before it.
            0 => format!("{},0", base + start),
            _ => format!("{},{len}", base + start + 1),
        }
    };
    let diff = similar::TextDiff::from_lines(before, after);
    let mut out = String::new();
    for group in diff.grouped_ops(3) {
        let (Some(first), Some(last)) = (group.first(), group.last()) else {
            continue;
        };
        let _ = writeln!(
            out,
            "@@ -{} +{} @@",
            range(first.old_range().start, last.old_range().end, offset.0),
            range(first.new_range().start, last.new_range().end, offset.1)
        );
        for op in &group {
            for change in diff.iter_changes(op) {
                let _ = write!(out, "{}{}", change.tag(), change.value());
            }
        }
    }
    out
}
