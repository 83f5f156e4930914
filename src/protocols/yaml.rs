//! YAML in and out, in one place, through serde-saphyr.
//!
//! podgrace's own files (policies) are read by the YAML 1.2 core schema, as podgrace always has:
//! `no`, `on` or `0755` unquoted are strings, `true`/`false` booleans, and a mapping key written
//! twice is an error. Manifests the user hands the CLI are read as kubectl reads them instead
//! (YAML 1.1's scalars, see [`manifests`]): what podgrace mutates must be the object the API
//! server would get from the same file.
//!
//! Writing must survive the readers people feed podgrace's output to: kubectl (go-yaml, which
//! keeps YAML 1.1's booleans `y`, `n`, `yes`, `no`, `on`, `off`), PyYAML and Helm. So every
//! string that a YAML 1.1 reader would take for something else — a boolean, a null (`~`,
//! `null`), an integer (`0755` octal, `0x1F`, `1_000`, `12:30` base 60), a float (`1e3`,
//! `.inf`), a timestamp, the merge key `<<` — is written quoted. serde-saphyr does this by
//! itself (its `yaml_12` option, off here, would turn the YAML 1.1 checks off); the tests below
//! pin the list so that an upgrade cannot silently stop quoting one of them.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// A YAML text that could not be read, or a value that could not be written.
#[derive(Debug, thiserror::Error)]
pub enum YamlError {
    /// Not YAML, or not the shape expected; the message names the line and column.
    #[error("{}", render(.0))]
    Read(serde_saphyr::Error),
    /// Over one of the reader's limits against hostile input (serde-saphyr's budget): which,
    /// its value and what to do.
    #[error("{0}")]
    Budget(String),
    /// A value YAML cannot represent.
    #[error("{0}")]
    Write(#[from] serde_saphyr::SerializeError),
}

/// A typed read that failed, with the path of the offending field (`preStop.action`,
/// `rules[0].set`; empty at the root or when the error is in the syntax).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldFailure {
    /// Dotted path from the document root.
    pub path: String,
    /// What is wrong, with line and column.
    pub message: String,
}

impl From<serde_saphyr::Error> for YamlError {
    fn from(e: serde_saphyr::Error) -> Self {
        YamlError::read(e, &serde_saphyr::Budget::default())
    }
}

impl YamlError {
    /// A read error under `budget`: a breach of it said plainly.
    fn read(e: serde_saphyr::Error, budget: &serde_saphyr::Budget) -> Self {
        use serde_saphyr::budget::BudgetBreach as B;
        // The breach itself, under the snippet and alias wrappers.
        let mut inner = &e;
        while let serde_saphyr::Error::WithSnippet { error, .. }
        | serde_saphyr::Error::AliasError { error, .. } = inner
        {
            inner = error;
        }
        let serde_saphyr::Error::Budget { breach, .. } = inner else {
            return YamlError::Read(e);
        };
        let (what, limit, fix) = match breach {
            B::Documents { .. } => (
                "YAML documents in one file",
                budget.max_documents,
                "split it into several files (a directory is read file by file)",
            ),
            B::Nodes { .. } => (
                "YAML nodes (mappings, sequences, scalars)",
                budget.max_nodes,
                "split it into several files",
            ),
            B::Events { .. } => (
                "YAML parser events",
                budget.max_events,
                "split it into several files",
            ),
            B::ScalarBytes { .. } => (
                "bytes of YAML scalars",
                budget.max_total_scalar_bytes,
                "split it into several files",
            ),
            B::Depth { .. } => (
                "levels of YAML nesting",
                budget.max_depth,
                "no Kubernetes object nests this deep: check what the file holds",
            ),
            B::Aliases { .. } | B::AliasAnchorRatio { .. } => (
                "YAML aliases (or aliases per anchor)",
                budget.max_aliases,
                "write the aliased values out",
            ),
            other => {
                return YamlError::Budget(format!(
                    "over the YAML reader's limits against hostile input ({other:?})"
                ));
            }
        };
        YamlError::Budget(format!(
            "more than {limit} {what}, the YAML reader's limit against hostile input: {fix}"
        ))
    }
}

fn read_options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        // One line, like every other podgrace message (logs, webhook answers, stderr); the
        // line and column stay in it.
        with_snippet: false,
        // The YAML 1.2 core schema for untyped values, as serde_yaml read them: `yes`/`no`
        // stay strings, and so do `0755` and `1_000` (YAML 1.2 has no such integers).
        strict_booleans: true,
        leading_zero_numbers_as_strings: true,
        underscored_numbers_as_strings: true,
    }
}

/// kubectl's reading (sigs.k8s.io/yaml, a fork of go-yaml v2): unquoted `yes`, `on`, `y` are
/// true and `no`, `off`, `n` false, `0755` is octal (493), `1_000` is 1000. A volume's
/// `defaultMode: 0755` read as the string "0755" would be printed quoted, and kubectl refuses a
/// string in an integer field.
fn manifest_options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        with_snippet: false,
        strict_booleans: false,
        legacy_octal_numbers: true,
        leading_zero_numbers_as_strings: false,
        underscored_numbers_as_strings: false,
    }
}

fn write_options() -> serde_saphyr::SerializerOptions {
    serde_saphyr::ser_options! {
        // Multi-line strings (scripts) as `|` blocks, but a long single line stays one line:
        // folding it with `>` would make diffs and copy-paste worse for nothing.
        folded_wrap_chars: usize::MAX,
    }
}

/// Every document of a YAML stream (or a JSON text), in order, as `T` (a `serde_json::Value`
/// usually). Empty documents (`---` alone, only comments) are skipped.
pub fn documents<T: DeserializeOwned>(text: &str) -> Result<Vec<T>, YamlError> {
    Ok(serde_saphyr::from_multiple_with_options(
        text,
        read_options(),
    )?)
}

/// Every document of a manifest file the user hands the CLI (`podgrace mutate -f`, `podgrace
/// audit -f`), its scalars read as kubectl reads them (YAML 1.1: `no` is false, `0755` is 493),
/// with the budget's counts scaled to the text.
///
/// serde-saphyr's default budget (1,024 documents, 250,000 nodes, 1,000,000 events, 64 MiB of
/// scalars for the whole stream) stops a small text from costing a lot. A cluster's manifests
/// are legitimately larger: 5,000 Deployments in one stream, or one `kubectl get -o yaml` List
/// of a namespace's Deployments, ReplicaSets and Pods, are millions of nodes. What a text
/// without aliases can hold is bounded by its own length (a document, node or scalar byte takes
/// at least a byte of text, or two bytes for two nodes as in `{a,b}`; an event at most four
/// per byte), so the counts are raised to that bound: the work stays proportional to the
/// input, which the CLI already holds in memory. Alias replays count as nodes and events too,
/// so an alias bomb stops at the same bound, and aliases, anchors, merge keys and nesting depth
/// keep their own default limits.
pub fn manifests<T: DeserializeOwned>(text: &str) -> Result<Vec<T>, YamlError> {
    let (options, budget) = manifest_options_for(text);
    serde_saphyr::from_multiple_with_options(text, options).map_err(|e| YamlError::read(e, &budget))
}

/// The options [`manifests`] reads `text` with, and their budget. Repeated mapping keys reach
/// the reader's visitor (kubectl's reader keeps the last: see `manifest::documents`).
pub(crate) fn manifest_options_for(text: &str) -> (serde_saphyr::Options, serde_saphyr::Budget) {
    let n = text.len();
    let mut budget = serde_saphyr::Budget::default();
    budget.max_documents = budget.max_documents.max(n);
    budget.max_nodes = budget.max_nodes.max(n.saturating_mul(2));
    budget.max_events = budget.max_events.max(n.saturating_mul(4));
    budget.max_total_scalar_bytes = budget.max_total_scalar_bytes.max(n);
    let mut options = manifest_options();
    options.budget = Some(budget.clone());
    options.duplicate_keys = serde_saphyr::DuplicateKeyPolicy::PassThrough;
    (options, budget)
}

/// The message of a read error in a part of a file that starts after `lines_before` lines,
/// the line counted in the whole file; a breach of `budget` said plainly.
pub(crate) fn read_error_message(
    e: serde_saphyr::Error,
    budget: &serde_saphyr::Budget,
    lines_before: usize,
) -> (Option<usize>, String) {
    let line = e
        .location()
        .map(|l| l.line() as usize)
        .filter(|l| *l > 0)
        .map(|l| l + lines_before);
    let rendered = e.render_with_options(serde_saphyr::render_options! {
        line_offset: lines_before as u64,
        snippets: serde_saphyr::SnippetMode::Off,
    });
    match YamlError::read(e, budget) {
        YamlError::Budget(message) => (line, message),
        _ => (line, rendered),
    }
}

/// One document into `T`.
pub fn from_str<T: DeserializeOwned>(text: &str) -> Result<T, YamlError> {
    Ok(serde_saphyr::from_str_with_options(text, read_options())?)
}

/// One document into `T`; a failure names the field it happened in.
pub fn from_str_at_path<T: DeserializeOwned>(text: &str) -> Result<T, FieldFailure> {
    let mut path = String::new();
    serde_saphyr::with_deserializer_from_str_with_options(text, read_options(), |de| {
        serde_path_to_error::deserialize(de).map_err(|e| {
            path = e.path().to_string();
            e.into_inner()
        })
    })
    .map_err(|e| FieldFailure {
        // serde_path_to_error writes `.` for the root and `?` where it lost track.
        path: if path == "." || path == "?" {
            String::new()
        } else {
            path
        },
        message: render(&e),
    })
}

/// Where the value at `path` (`startup.maxSeconds`, `rules[0].set.preStop.action`: the paths
/// policy errors are reported at) is written in `text`: its line and column, or the nearest
/// enclosing value's that is written. `None` when the text cannot be read or the path is empty.
/// For errors found after reading (validation), which the reader could not locate itself.
pub fn locate(text: &str, path: &str) -> Option<(u64, u64)> {
    if path.is_empty() {
        return None;
    }
    let root: Located = serde_saphyr::from_str_with_options(text, read_options()).ok()?;
    let mut node = &root;
    let mut at = None;
    for segment in path_segments(path) {
        let next = match (&node, segment) {
            (Located::Map(entries), Segment::Key(key)) => {
                entries.iter().find(|(k, _)| k == key).map(|(_, v)| v)
            }
            (Located::Seq(items), Segment::Index(i)) => items.get(i),
            _ => None,
        };
        let Some(next) = next else { break };
        at = Some((next.referenced.line(), next.referenced.column()));
        node = &next.value;
    }
    at
}

enum Segment<'a> {
    Key(&'a str),
    Index(usize),
}

/// `rules[0].set.preStop` → `rules`, 0, `set`, `preStop`.
fn path_segments(path: &str) -> Vec<Segment<'_>> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let (key, indices) = part
            .split_once('[')
            .map_or((part, ""), |(k, rest)| (k, rest));
        if !key.is_empty() {
            out.push(Segment::Key(key));
        }
        for index in indices.split('[') {
            if let Ok(i) = index.trim_end_matches(']').parse() {
                out.push(Segment::Index(i));
            }
        }
    }
    out
}

/// A YAML document's shape with where each value is written (for [`locate`]).
enum Located {
    Map(Vec<(String, serde_saphyr::Spanned<Located>)>),
    Seq(Vec<serde_saphyr::Spanned<Located>>),
    Leaf,
}

impl<'de> serde::Deserialize<'de> for Located {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::{Error, MapAccess, SeqAccess, Visitor};
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Located;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("any YAML value")
            }
            fn visit_bool<E: Error>(self, _: bool) -> Result<Located, E> {
                Ok(Located::Leaf)
            }
            fn visit_i64<E: Error>(self, _: i64) -> Result<Located, E> {
                Ok(Located::Leaf)
            }
            fn visit_u64<E: Error>(self, _: u64) -> Result<Located, E> {
                Ok(Located::Leaf)
            }
            fn visit_f64<E: Error>(self, _: f64) -> Result<Located, E> {
                Ok(Located::Leaf)
            }
            fn visit_str<E: Error>(self, _: &str) -> Result<Located, E> {
                Ok(Located::Leaf)
            }
            fn visit_unit<E: Error>(self) -> Result<Located, E> {
                Ok(Located::Leaf)
            }
            fn visit_none<E: Error>(self) -> Result<Located, E> {
                Ok(Located::Leaf)
            }
            fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Located, D::Error> {
                <Located as serde::Deserialize>::deserialize(d)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Located, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(Located::Seq(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Located, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry::<String, _>()? {
                    entries.push(entry);
                }
                Ok(Located::Map(entries))
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// A read error in the words of someone writing a manifest or a policy, not of the reader's
/// settings (`strict mode expects true/false`, `expected sequence start`), with its line and
/// column.
pub fn render(e: &serde_saphyr::Error) -> String {
    e.render_with_formatter(&UserWords)
}

/// serde-saphyr's user-facing wording, with the messages that name its own options or parser
/// events said in YAML's terms.
struct UserWords;

impl serde_saphyr::MessageFormatter for UserWords {
    fn format_message<'a>(&self, err: &'a serde_saphyr::Error) -> std::borrow::Cow<'a, str> {
        use serde_saphyr::Error as E;
        use std::borrow::Cow;
        match err {
            E::InvalidBooleanStrict { .. } => Cow::Borrowed(
                "expected true or false (a policy is YAML 1.2: yes, no, on and off are words there)",
            ),
            E::Unexpected { expected, .. } => Cow::Owned(format!(
                "expected {}",
                match *expected {
                    "sequence start" => "a list (`[a, b]`, or one `- a` line per item)",
                    "mapping start" => "a mapping (`key: value` lines, or `{key: value}`)",
                    other => other,
                }
            )),
            E::DuplicateMappingKey { key: Some(k), .. } => Cow::Owned(format!(
                "the key {k} is written twice in one mapping: keep one"
            )),
            E::DuplicateMappingKey { key: None, .. } => {
                Cow::Borrowed("a key is written twice in one mapping: keep one")
            }
            _ => serde_saphyr::UserMessageFormatter.format_message(err),
        }
    }
}

/// Marks a key written as a plain YAML 1.1 boolean (`on:`, `yes:`, `true:`): in
/// `manifest::key_order`'s `KeyOrder` before the boolean it reads as, and in what its `Ordered`
/// serializes before the key as written (`on`), which [`to_string`] then writes unquoted. kubectl reads such a key as
/// `"true"` (go-yaml v2, then JSON); quoting it (`"on":`) would change the object it reads, so
/// `-o pod` keeps it plain (`manifest::key_order` marks it) where the user put it plain. A private-use character: no manifest
/// carries it.
pub const PLAIN: char = '\u{E000}';

/// `value` as one YAML document, keys in the value's own order (a `serde_json::Value` sorts
/// them: `manifest::key_order` keeps the order they were written in), every string that a
/// YAML 1.1 reader would misread quoted.
pub fn to_string<T: Serialize>(value: &T) -> Result<String, YamlError> {
    let text = serde_saphyr::to_string_with_options(value, write_options())?;
    // Keys the input had as plain YAML 1.1 booleans, marked by `key_order`: unquoted again.
    Ok(if text.contains(PLAIN) {
        text.replace(PLAIN, "")
    } else {
        text
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    /// Strings a YAML 1.1 reader resolves to something else when they are written plain:
    /// booleans (go-yaml also takes `y`/`n`), nulls, integers in every 1.1 notation, floats,
    /// base-60 numbers, timestamps, the merge and value keys.
    const YAML_1_1_SPECIALS: &[&str] = &[
        "y",
        "Y",
        "n",
        "N",
        "yes",
        "Yes",
        "YES",
        "no",
        "No",
        "NO",
        "on",
        "On",
        "ON",
        "off",
        "Off",
        "OFF",
        "true",
        "True",
        "TRUE",
        "false",
        "False",
        "FALSE",
        "~",
        "null",
        "Null",
        "NULL",
        "",
        "0755",
        "-0755",
        "0o755",
        "0x1F",
        "0b101",
        "1_000",
        "+1",
        "-1",
        "42",
        "1e3",
        "1E3",
        "1.5",
        "1.",
        ".5",
        "6.8523015e+5",
        "685_230.15",
        "12:30",
        "1:20:30",
        "190:20:30.15",
        ".inf",
        "-.inf",
        "+.INF",
        ".Inf",
        ".nan",
        ".NaN",
        "2001-12-14",
        "2001-12-14t21:59:43.10-05:00",
        "2001-12-14 21:59:43.10 -5",
        "<<",
        "=",
    ];

    /// Strings every reader takes as strings: they stay plain, the output stays readable.
    const PLAIN: &[&str] = &[
        "v1",
        "nginx:1.25",
        "/bin/sh",
        "-c",
        "--save",
        "sleep 10; nginx -s quit",
        "status.podIP",
        "http://nacos:8848",
        "podgrace.io/grace",
        "yesterday",
        "null-route",
    ];

    fn scalar_line(s: &str) -> String {
        let yaml = to_string(&json!({ "k": s })).unwrap();
        yaml.trim_end()
            .strip_prefix("k: ")
            .unwrap_or_else(|| panic!("{yaml}"))
            .to_owned()
    }

    #[test]
    fn strings_a_yaml_1_1_reader_would_misread_are_written_quoted() {
        for s in YAML_1_1_SPECIALS {
            let written = scalar_line(s);
            assert!(
                written.starts_with('"') || written.starts_with('\''),
                "{s:?} written as {written}"
            );
        }
    }

    #[test]
    fn keys_a_yaml_1_1_reader_would_misread_are_written_quoted() {
        for s in YAML_1_1_SPECIALS {
            let yaml = to_string(&json!({ *s: 1 })).unwrap();
            assert!(
                yaml.starts_with('"') || yaml.starts_with('\''),
                "{s:?} written as {yaml}"
            );
        }
    }

    #[test]
    fn ordinary_strings_stay_plain() {
        for s in PLAIN {
            assert_eq!(scalar_line(s), *s);
        }
    }

    #[test]
    fn every_string_reads_back_as_written() {
        let all: Vec<&str> = YAML_1_1_SPECIALS.iter().chain(PLAIN).copied().collect();
        let value = json!({ "list": all, "script": "set -e\nexec app\n", "lead": "  x\ny" });
        let back: Value = from_str(&to_string(&value).unwrap()).unwrap();
        assert_eq!(back, value);
    }

    #[test]
    fn reading_follows_yaml_1_2_core() {
        let value: Value = from_str("[no, on, y, 0755, 1_000, 0x1F, 1e3, true, ~]").unwrap();
        assert_eq!(
            value,
            json!(["no", "on", "y", "0755", "1_000", 31, 1000.0, true, null])
        );
    }

    #[test]
    fn manifests_are_read_as_kubectl_reads_them() {
        let docs: Vec<Value> =
            manifests("[no, off, n, yes, on, y, 0755, 1_000, 0x1F, 1e3, ~, \"no\", '0755']")
                .unwrap();
        assert_eq!(
            docs,
            [json!([
                false, false, false, true, true, true, 493, 1000, 31, 1000.0, null, "no", "0755"
            ])]
        );
    }

    /// `podgrace mutate` on its own output (a reinvocation, or a user running it twice) reads
    /// every string back as a string.
    #[test]
    fn what_podgrace_writes_reads_back_as_a_manifest_unchanged() {
        let all: Vec<&str> = YAML_1_1_SPECIALS.iter().chain(PLAIN).copied().collect();
        let value = json!({ "list": all, "mode": 493 });
        let back: Vec<Value> = manifests(&to_string(&value).unwrap()).unwrap();
        assert_eq!(back, [value]);
    }

    #[test]
    fn read_errors_are_worded_for_the_user_not_in_the_readers_settings() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct Spec {
            inject: Option<bool>,
            exclude: Option<Vec<String>>,
        }
        let err = from_str_at_path::<Spec>("inject: yes\n").unwrap_err();
        assert_eq!(err.path, "inject");
        assert!(
            err.message
                .starts_with("expected true or false (a policy is YAML 1.2"),
            "{err:?}"
        );
        assert!(err.message.contains("line 1"), "{err:?}");
        let err = from_str_at_path::<Spec>("exclude: istio-proxy\n").unwrap_err();
        assert!(
            err.message
                .starts_with("expected a list (`[a, b]`, or one `- a` line per item)"),
            "{err:?}"
        );
        for message in [
            err.message,
            from_str_at_path::<Spec>("inject: yes\n")
                .unwrap_err()
                .message,
        ] {
            assert!(!message.contains("strict mode") && !message.contains("sequence start"));
        }
    }

    #[test]
    fn a_value_is_located_by_its_policy_path() {
        let text = "# policy\nstartup:\n  maxSeconds: 0\nrules:\n- name: a\n  set: {preStop: {action: sleep}}\n- name: b\n  set:\n    startup: {maxSeconds: 0}\n";
        assert_eq!(locate(text, "startup.maxSeconds"), Some((3, 15)));
        assert_eq!(
            locate(text, "rules[1].set.startup.maxSeconds"),
            Some((9, 27))
        );
        // Not written: the nearest enclosing value.
        assert_eq!(locate(text, "rules[1].set.preStop.nacos"), Some((9, 5)));
        assert_eq!(locate(text, ""), None);
    }

    #[test]
    fn long_lines_are_not_folded_and_scripts_are_blocks() {
        let long = "x".repeat(60) + " " + &"y".repeat(60);
        let yaml = to_string(&json!({ "a": long, "s": "one\ntwo\n" })).unwrap();
        assert_eq!(yaml, format!("a: {long}\ns: |\n  one\n  two\n"));
    }

    #[test]
    fn streams_skip_empty_documents_and_keep_the_others_in_order() {
        let docs: Vec<Value> = documents("---\n# nothing\n---\na: 1\n---\nb: 2\n").unwrap();
        assert_eq!(docs, vec![json!({"a": 1}), json!({"b": 2})]);
    }

    #[test]
    fn a_breach_of_the_default_budget_names_the_limit_and_what_to_do() {
        let stream = "a: 1\n---\n".repeat(1_100);
        let err = documents::<Value>(&stream).unwrap_err().to_string();
        assert_eq!(
            err,
            "more than 1024 YAML documents in one file, the YAML reader's limit against hostile input: split it into several files (a directory is read file by file)"
        );
        let deep = "[".repeat(70) + &"]".repeat(70);
        let err = documents::<Value>(&deep).unwrap_err().to_string();
        assert!(
            err.starts_with("more than 64 levels of YAML nesting"),
            "{err}"
        );
    }

    #[test]
    fn manifests_may_be_as_large_as_their_text_but_not_deeper_or_aliased_more() {
        // 1,100 documents, and one document of 260,000 nodes: over the default budget.
        let stream = "a: 1\n---\n".repeat(1_100);
        assert_eq!(manifests::<Value>(&stream).unwrap().len(), 1_100);
        let big = format!("[{}]", vec!["0"; 260_000].join(","));
        assert!(documents::<Value>(&big).is_err());
        let read: Vec<Value> = manifests(&big).unwrap();
        assert_eq!(read[0].as_array().unwrap().len(), 260_000);
        // What amplifies keeps its limit.
        let deep = "[".repeat(70) + &"]".repeat(70);
        let err = manifests::<Value>(&deep).unwrap_err().to_string();
        assert!(
            err.starts_with("more than 64 levels of YAML nesting"),
            "{err}"
        );
        // Alias replays count as nodes: 3,000 aliases of 100 scalars in 12 kB stop at the
        // default 250,000 nodes.
        let bomb = format!(
            "a: &a [{}]\nb: [{}]\n",
            vec!["x"; 100].join(","),
            vec!["*a"; 3_000].join(",")
        );
        let err = manifests::<Value>(&bomb).unwrap_err().to_string();
        assert!(err.starts_with("more than 250000 YAML nodes"), "{err}");
    }

    #[test]
    fn typed_failures_name_the_field() {
        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Outer {
            inner: Inner,
        }
        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Inner {
            count: u8,
        }
        let err = from_str_at_path::<Outer>("inner:\n  count: many\n").unwrap_err();
        assert_eq!(err.path, "inner.count");
        assert!(err.message.contains("line 2"), "{err:?}");
        let err = from_str_at_path::<Outer>("inner: [\n").unwrap_err();
        assert!(!err.message.is_empty());
    }
}
