//! The audit's report: per namespace and workload, a status (`ok`, `warning`, `risk`), a
//! one-line verdict and the details; a summary; and its three renderings (a table for a
//! terminal, markdown for a pull-request comment, JSON whose schema docs/AUDIT.md documents).
//! Pure: the caller decides where the text goes and whether the table is coloured.

use std::fmt::Write as _;

use serde::Serialize;

use super::{Coverage, Drift, Finding, FindingKind, OptIn, Workload, WouldInject};
use crate::manifest::Identity;

/// The JSON schema's version (docs/AUDIT.md); raised on any incompatible change.
pub const SCHEMA_VERSION: u32 = 1;

/// How bad a workload (or the whole audit) is. Ordered: `Ok < Warning < Risk`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Nothing to do.
    #[default]
    Ok,
    /// No trap, but something to look at: drift (a rollout restart would change the pods), a
    /// namespace that could not be read, an invalid namespace policy.
    Warning,
    /// Traps that lose requests on a rollout remain.
    Risk,
}

impl Status {
    fn label(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::Warning => "WARN",
            Status::Risk => "RISK",
        }
    }

    /// ANSI colour for the table on a terminal.
    fn colour(self) -> &'static str {
        match self {
            Status::Ok => "\x1b[32m",
            Status::Warning => "\x1b[33m",
            Status::Risk => "\x1b[31m",
        }
    }
}

/// One workload's result.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadReport {
    /// `Deployment`, `StatefulSet`, `DaemonSet`, `ReplicaSet`, `Pod`, `CronJob`, …
    pub kind: String,
    /// Its name.
    pub name: String,
    /// Overall status.
    pub status: Status,
    /// The one-line verdict.
    pub verdict: String,
    /// Whether podgrace applies.
    pub coverage: Coverage,
    /// Why the engine leaves the pod alone, when it does.
    pub skipped: Option<String>,
    /// Traps today.
    pub today: Vec<Finding>,
    /// What podgrace would inject (`null` when the engine leaves the pod alone).
    pub would_inject: Option<WouldInject>,
    /// The warnings the webhook would return when the pod is created.
    pub podgrace_warnings: Vec<String>,
    /// Traps left once podgrace has mutated the pod (today's when podgrace does not apply).
    pub remaining: Vec<Finding>,
    /// Kinds of trap podgrace removes (or would remove, once it applies).
    pub fixed_by_podgrace: Vec<FindingKind>,
    /// Running pods that a rollout restart would change.
    pub drift: Option<Drift>,
}

impl WorkloadReport {
    /// Builds the report of a workload from the audit's parts.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        w: &Workload,
        coverage: Coverage,
        skipped: Option<String>,
        would_inject: Option<WouldInject>,
        podgrace_warnings: Vec<String>,
        today: Vec<Finding>,
        after: Vec<Finding>,
        drift: Option<Drift>,
    ) -> Self {
        let mut fixed: Vec<FindingKind> = today
            .iter()
            .map(|f| f.kind)
            .filter(|k| !after.iter().any(|a| a.kind == *k))
            .collect();
        fixed.sort();
        fixed.dedup();
        let remaining = match coverage {
            _ if coverage.mutated() => after,
            // Its traps cost no request on a rollout: listed in `today`, no risk.
            Coverage::Batch => Vec::new(),
            _ => today.clone(),
        };
        let status = if !remaining.is_empty() {
            Status::Risk
        } else if drift.is_some() {
            Status::Warning
        } else {
            Status::Ok
        };
        let verdict = verdict(
            coverage,
            skipped.as_deref(),
            &remaining,
            &fixed,
            drift.as_ref(),
        );
        WorkloadReport {
            kind: w.kind.clone(),
            name: w.name.clone(),
            status,
            verdict,
            coverage,
            skipped,
            today,
            would_inject,
            podgrace_warnings,
            remaining,
            fixed_by_podgrace: fixed,
            drift,
        }
    }
}

fn kinds(findings: &[Finding]) -> String {
    let mut k: Vec<FindingKind> = findings.iter().map(|f| f.kind).collect();
    k.sort();
    k.dedup();
    join(&k)
}

fn join(kinds: &[FindingKind]) -> String {
    kinds
        .iter()
        .map(|k| k.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn verdict(
    coverage: Coverage,
    skipped: Option<&str>,
    remaining: &[Finding],
    fixed: &[FindingKind],
    drift: Option<&Drift>,
) -> String {
    let mut out = match coverage {
        Coverage::Applies => "covered".to_owned(),
        Coverage::AppliesIfOptedIn => "covered once its namespace opts in".to_owned(),
        Coverage::NamespaceNotOptedIn => "not covered: namespace not opted in".to_owned(),
        Coverage::NamespaceExcluded => "not covered: namespace excluded".to_owned(),
        Coverage::PodOptedOut => "not covered: the pod opts out".to_owned(),
        Coverage::Batch => format!(
            "not covered: {}, runs to completion; no rollout drains it",
            skipped.unwrap_or("batch pod")
        ),
        Coverage::Skipped => format!("skipped: {}", skipped.unwrap_or("by the engine")),
    };
    if !remaining.is_empty() {
        let _ = write!(out, "; at risk: {}", kinds(remaining));
    }
    if !fixed.is_empty() {
        let fixes = match coverage {
            Coverage::Applies | Coverage::AppliesIfOptedIn => "podgrace fixes",
            Coverage::NamespaceNotOptedIn => "opting in would fix",
            // The pod keeps its traps whatever the policy.
            _ => "",
        };
        if !fixes.is_empty() {
            let _ = write!(out, "; {fixes} {}", join(fixed));
        }
    }
    if let Some(d) = drift {
        let _ = write!(
            out,
            "; a rollout restart would change {}/{} pods ({})",
            d.pods, d.of, d.reason
        );
    }
    if remaining.is_empty() && fixed.is_empty() && drift.is_none() {
        out.push_str("; no traps");
    }
    out
}

/// One namespace's result.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NamespaceReport {
    /// The namespace.
    pub name: String,
    /// Its opt-in.
    pub opt_in: OptIn,
    /// `false` when the audit could not read it (`error` says why); it has no workloads then.
    pub readable: bool,
    /// Why it could not be read.
    pub error: Option<String>,
    /// The kinds it could be read without (their lists forbidden): the rest is audited.
    pub unreadable: Vec<Unreadable>,
    /// The effective policy's layers (with versions) the audit used.
    pub policy: String,
    /// Why the namespace's own policy was not used (it is invalid; the webhook then uses the
    /// cluster default, and so does the audit).
    pub policy_error: Option<String>,
    /// Its workloads, by kind then name.
    pub workloads: Vec<WorkloadReport>,
}

/// A kind whose list was forbidden in a namespace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Unreadable {
    /// The resource, as the API names it: `cronjobs`, `pods`, `configmaps` (the namespace
    /// policy's; the cluster default is assumed then).
    pub resource: String,
    /// The API server's refusal.
    pub error: String,
}

impl NamespaceReport {
    /// The namespace's own status (not its workloads'): a warning when not readable, partly
    /// readable or when its policy is invalid.
    pub fn status(&self) -> Status {
        if !self.readable || !self.unreadable.is_empty() || self.policy_error.is_some() {
            Status::Warning
        } else {
            Status::Ok
        }
    }
}

/// A file, document or List item of the input that was not audited, and why. The audit goes
/// on without it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InputProblem {
    /// The file (`-` for standard input).
    pub file: String,
    /// The document's number in the file, from 1 (`null` when the file itself could not be
    /// read).
    pub document: Option<usize>,
    /// The line of the problem in the file, from 1, when known.
    pub line: Option<usize>,
    /// For an item of a List: its index in `items`.
    pub item: Option<usize>,
    /// What the object says it is (`apiVersion`, `kind`, `namespace`, `name`), as far as it
    /// could be read.
    #[serde(flatten)]
    pub object: Identity,
    /// Which problem.
    pub problem: Problem,
    /// `risk` for a removed apiVersion (the manifest no longer applies), `warning` otherwise.
    pub status: Status,
    /// What is wrong, and what to do.
    pub error: String,
}

/// Kinds of [`InputProblem`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Problem {
    /// Not readable: broken YAML or JSON, an unrendered template, a partial object (a
    /// Kustomize patch), an unknown apiVersion, an invalid pod.
    Unreadable,
    /// A workload under an apiVersion Kubernetes no longer serves.
    RemovedApi,
    /// A kind with a pod template that podgrace does not read.
    SkippedKind,
    /// A namespace policy ConfigMap that is not a valid ConfigMap.
    InvalidPolicy,
}

impl Problem {
    /// Whether the problem leaves part of the input unread (exit code 3).
    pub fn is_partial(self) -> bool {
        !matches!(self, Problem::SkippedKind)
    }
}

impl InputProblem {
    /// `deploy/a.yaml: document 2, line 14 (items[0], DaemonSet ops/fluentd)`.
    pub fn place(&self) -> String {
        let mut out = self.file.clone();
        if let Some(d) = self.document {
            let _ = write!(out, ": document {d}");
        }
        if let Some(l) = self.line {
            let _ = write!(out, ", line {l}");
        }
        let label = self.object.label();
        let what = match (self.item, label.is_empty()) {
            (Some(i), true) => format!("items[{i}]"),
            (Some(i), false) => format!("items[{i}], {label}"),
            (None, _) => label,
        };
        if !what.is_empty() {
            let _ = write!(out, " ({what})");
        }
        out
    }
}

impl std::fmt::Display for InputProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.place(), self.error)
    }
}

/// Counts over the report.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// Namespaces audited (readable or not).
    pub namespaces: usize,
    /// Namespaces that could not be read.
    pub not_readable: usize,
    /// Namespaces read without some kinds (see [`NamespaceReport::unreadable`]).
    pub partly_readable: usize,
    /// Namespaces whose own policy is invalid (the cluster default applies): a warning.
    pub invalid_policy: usize,
    /// Workloads audited.
    pub workloads: usize,
    /// Workloads podgrace mutates (or would, once opted in).
    pub covered: usize,
    /// Workloads by status.
    pub ok: usize,
    /// See [`Summary::ok`].
    pub warning: usize,
    /// See [`Summary::ok`].
    pub risk: usize,
    /// Files, documents and List items not audited ([`Report::input_problems`]).
    pub input_problems: usize,
    /// The worst status of all (a namespace's own and the input problems' included).
    pub status: Status,
}

/// Where the audit read the workloads from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "type")]
pub enum Source {
    /// A cluster, through the API server at `server`.
    Cluster {
        /// The API server's URL.
        server: String,
    },
    /// Manifest files.
    Manifests {
        /// The paths given.
        paths: Vec<String>,
    },
}

/// The whole audit.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Where the workloads came from.
    pub source: Source,
    /// By namespace name.
    pub namespaces: Vec<NamespaceReport>,
    /// Counts.
    pub summary: Summary,
    /// What the audit had to assume (a cluster default it could not read, …), and the
    /// warnings on its input (a key written twice).
    pub notes: Vec<String>,
    /// Files, documents and List items of the input that were not audited, in input order.
    pub input_problems: Vec<InputProblem>,
}

impl Report {
    /// Sorts the namespaces and workloads and counts.
    pub fn new(source: Source, mut namespaces: Vec<NamespaceReport>) -> Self {
        namespaces.sort_by(|a, b| a.name.cmp(&b.name));
        let mut s = Summary {
            namespaces: namespaces.len(),
            status: Status::Ok,
            ..Default::default()
        };
        for ns in &mut namespaces {
            ns.workloads
                .sort_by(|a, b| (&a.kind, &a.name).cmp(&(&b.kind, &b.name)));
            s.not_readable += usize::from(!ns.readable);
            s.partly_readable += usize::from(!ns.unreadable.is_empty());
            s.invalid_policy += usize::from(ns.readable && ns.policy_error.is_some());
            s.status = s.status.max(ns.status());
            for w in &ns.workloads {
                s.workloads += 1;
                s.covered += usize::from(w.coverage.mutated());
                match w.status {
                    Status::Ok => s.ok += 1,
                    Status::Warning => s.warning += 1,
                    Status::Risk => s.risk += 1,
                }
                s.status = s.status.max(w.status);
            }
        }
        Report {
            schema_version: SCHEMA_VERSION,
            source,
            namespaces,
            summary: s,
            notes: Vec::new(),
            input_problems: Vec::new(),
        }
    }

    /// Adds the input's problems, counted in the summary and its status.
    pub fn with_input_problems(mut self, problems: Vec<InputProblem>) -> Self {
        for p in &problems {
            self.summary.status = self.summary.status.max(p.status);
        }
        self.summary.input_problems = problems.len();
        self.input_problems = problems;
        self
    }

    /// Whether part of the input could not be read (exit code 3).
    pub fn partial(&self) -> bool {
        self.input_problems.iter().any(|p| p.problem.is_partial())
    }

    /// The summary line. Every count that can make `--fail-on` fail is in it: the workloads by
    /// status, and the namespaces that are a warning of their own (not readable, partly
    /// readable, an invalid policy).
    pub fn summary_line(&self) -> String {
        let s = &self.summary;
        let mut out = format!(
            "{} in {}: {} at risk, {} warning, {} ok; {} covered by podgrace",
            counted(s.workloads, "workload"),
            counted(s.namespaces, "namespace"),
            s.risk,
            s.warning,
            s.ok,
            s.covered
        );
        for (n, what) in [
            (s.not_readable, "not readable"),
            (s.partly_readable, "partly readable"),
            (s.invalid_policy, "with an invalid policy"),
        ] {
            if n > 0 {
                let _ = write!(out, "; {} {what}", counted(n, "namespace"));
            }
        }
        if s.input_problems > 0 {
            let _ = write!(
                out,
                "; {} {} not audited",
                s.input_problems,
                if s.input_problems == 1 {
                    "document"
                } else {
                    "documents"
                }
            );
            let removed = self
                .input_problems
                .iter()
                .filter(|p| p.status == Status::Risk)
                .count();
            if removed > 0 {
                let _ = write!(out, " ({removed} at risk: removed apiVersion)");
            }
        }
        out
    }

    /// The table: grouped by namespace, one line per workload, then the summary line; ANSI
    /// colours on the status when `colour`.
    pub fn table(&self, colour: bool) -> String {
        let paint = |status: Status| {
            let label = format!("{:<4}", status.label());
            if colour {
                format!("{}{label}\x1b[0m", status.colour())
            } else {
                label
            }
        };
        let width = self
            .namespaces
            .iter()
            .flat_map(|n| &n.workloads)
            .map(|w| w.kind.len() + 1 + w.name.len())
            .max()
            .unwrap_or(0);
        let mut out = String::new();
        for note in &self.notes {
            let _ = writeln!(out, "note: {note}");
        }
        for ns in &self.namespaces {
            let _ = writeln!(out, "{}", namespace_heading(ns));
            for w in &ns.workloads {
                let id = format!("{}/{}", w.kind, w.name);
                let _ = writeln!(out, "  {}  {id:<width$}  {}", paint(w.status), w.verdict);
            }
        }
        if !self.input_problems.is_empty() {
            out.push_str("not audited:\n");
            for p in &self.input_problems {
                let _ = writeln!(out, "  {}  {p}", paint(p.status));
            }
        }
        out.push_str(&self.summary_line());
        out.push('\n');
        out
    }

    /// Markdown for a pull-request comment: a table per namespace, then each remaining trap
    /// with its message (the grace arithmetic).
    pub fn markdown(&self) -> String {
        let mut out = String::from("## podgrace audit\n\n");
        let _ = writeln!(out, "**{}**\n", self.summary_line());
        for note in &self.notes {
            let _ = writeln!(out, "> note: {}\n", md_escape(note));
        }
        for ns in &self.namespaces {
            let _ = writeln!(out, "### {}\n", md_escape(&namespace_heading(ns)));
            if ns.workloads.is_empty() {
                continue;
            }
            out.push_str("| Status | Workload | Verdict |\n|---|---|---|\n");
            for w in &ns.workloads {
                let _ = writeln!(
                    out,
                    "| {} | `{}/{}` | {} |",
                    w.status.label(),
                    w.kind,
                    w.name,
                    md_escape(&w.verdict)
                );
            }
            out.push('\n');
            for w in ns.workloads.iter().filter(|w| !w.remaining.is_empty()) {
                let _ = writeln!(out, "- `{}/{}`:", w.kind, w.name);
                for f in &w.remaining {
                    let container = f
                        .container
                        .as_deref()
                        .map(|c| format!(" (container `{c}`)"))
                        .unwrap_or_default();
                    let _ = writeln!(
                        out,
                        "  - **{}**{container}: {}",
                        f.kind.as_str(),
                        md_escape(&f.message)
                    );
                }
            }
            if ns.workloads.iter().any(|w| !w.remaining.is_empty()) {
                out.push('\n');
            }
        }
        if !self.input_problems.is_empty() {
            out.push_str("### not audited\n\n| Status | Where | Why |\n|---|---|---|\n");
            for p in &self.input_problems {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} |",
                    p.status.label(),
                    md_escape(&p.place()),
                    md_escape(&p.error)
                );
            }
            out.push('\n');
        }
        out
    }
}

fn namespace_heading(ns: &NamespaceReport) -> String {
    let opt_in = match ns.opt_in {
        OptIn::Enabled => "opted in",
        OptIn::NotLabelled => "not opted in",
        OptIn::Excluded => "excluded",
        OptIn::Unknown => "opt-in unknown",
    };
    let mut out = format!("namespace {} ({opt_in}", ns.name);
    if ns.readable {
        let _ = write!(out, "; policy {})", ns.policy);
    } else {
        out.push(')');
    }
    if let Some(e) = &ns.error {
        let _ = write!(out, ": not readable: {e}");
    }
    if !ns.unreadable.is_empty() {
        let resources: Vec<&str> = ns.unreadable.iter().map(|u| u.resource.as_str()).collect();
        let _ = write!(
            out,
            ": audited without {} (forbidden: {})",
            resources.join(", "),
            ns.unreadable[0].error
        );
        if resources.contains(&"configmaps") {
            out.push_str("; its own policy unknown, the cluster default assumed");
        }
    }
    if let Some(e) = &ns.policy_error {
        let _ = write!(
            out,
            ": invalid namespace policy, the cluster default applies: {e}"
        );
    }
    out
}

/// `n word`, the word in the plural unless `n` is 1.
fn counted(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// Escapes what would break a markdown table cell or start markup, outside code spans: a
/// message's `nginx -s quit` stays code. Inside a code span only `|` is escaped (a table cell
/// ends at it even there); an unmatched backtick is escaped.
fn md_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let spans = s.split('`').count();
    for (i, part) in s.split('`').enumerate() {
        let code = i % 2 == 1 && i + 1 < spans;
        if i > 0 {
            // A backtick opening or closing a code span, or one left unmatched.
            // An even part follows the code span before it, which it closes.
            let closes = i % 2 == 0;
            out.push_str(if code || closes { "`" } else { "\\`" });
        }
        for c in part.chars() {
            let special = if code {
                c == '|'
            } else {
                matches!(c, '|' | '*' | '_' | '<' | '>' | '[' | ']')
            };
            if special {
                out.push('\\');
            }
            out.push(if c == '\n' { ' ' } else { c });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_keeps_code_spans_code_and_escapes_markup_elsewhere() {
        assert_eq!(
            md_escape("nginx without `nginx -s quit` in preStop: a_b | c"),
            "nginx without `nginx -s quit` in preStop: a\\_b \\| c"
        );
        assert_eq!(
            md_escape("PID 1 `a | b` ignores"),
            "PID 1 `a \\| b` ignores"
        );
        assert_eq!(md_escape("an odd ` backtick"), "an odd \\` backtick");
    }

    #[test]
    fn counts_are_singular_for_one() {
        assert_eq!(counted(1, "workload"), "1 workload");
        assert_eq!(counted(0, "namespace"), "0 namespaces");
        assert_eq!(counted(2, "namespace"), "2 namespaces");
    }
}
