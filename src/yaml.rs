//! YAML in and out, in one place, through serde-saphyr.
//!
//! Reading follows the YAML 1.2 core schema, as podgrace always has: `no`, `on` or `0755`
//! unquoted are strings, `true`/`false` booleans, and a mapping key written twice is an error.
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
    #[error("{0}")]
    Read(#[from] serde_saphyr::Error),
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
        message: e.to_string(),
    })
}

/// `value` as one YAML document, keys in the value's own order (a `serde_json::Value` sorts
/// them: see [`crate::key_order`] for the order they were written in), every string that a
/// YAML 1.1 reader would misread quoted.
pub fn to_string<T: Serialize>(value: &T) -> Result<String, YamlError> {
    Ok(serde_saphyr::to_string_with_options(
        value,
        write_options(),
    )?)
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
