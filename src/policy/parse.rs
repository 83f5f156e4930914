//! Reading policies from text: a bare policy document (YAML or JSON) or a ConfigMap manifest
//! that carries one under a key.

use k8s_openapi::api::core::v1::ConfigMap;

use super::error::{FieldError, PolicyError};
use super::spec::PolicySpec;
use super::validate::validate_layer;

/// The ConfigMap key that holds a namespace policy.
pub const POLICY_KEY: &str = "policy.yaml";

/// Where a policy layer came from: shown in errors, logs and the pod's `podgrace.io/policy`
/// annotation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    /// Human name: a file path or `namespace/configmap`.
    pub name: String,
    /// Version: a ConfigMap's resourceVersion, or a content hash for files.
    pub version: String,
}

impl Origin {
    /// An origin whose version is a short hash of the policy text.
    pub fn hashed(name: impl Into<String>, text: &str) -> Self {
        Origin {
            name: name.into(),
            version: content_hash(text),
        }
    }
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}", self.name, self.version)
    }
}

/// A parsed and validated policy layer.
#[derive(Clone, Debug, PartialEq)]
pub struct PolicyLayer {
    /// The settings.
    pub spec: PolicySpec,
    /// Where they came from.
    pub origin: Origin,
}

/// First 12 hex digits of the SHA-256 of `text`: stable across processes and releases, so two
/// replicas report the same version for the same policy.
pub fn content_hash(text: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
    digest.as_ref()[..6]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Parses one policy document. Empty documents (or only comments) are the empty policy.
pub fn parse_spec(text: &str) -> Result<PolicySpec, FieldError> {
    let meaningful = text
        .lines()
        .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#') && l.trim() != "---");
    if !meaningful {
        return Ok(PolicySpec::default());
    }
    crate::protocols::yaml::from_str_at_path(text).map_err(|e| FieldError::new(e.path, e.message))
}

/// Parses and validates a policy document into a layer.
pub fn load_layer(text: &str, origin: Origin) -> Result<PolicyLayer, PolicyError> {
    let spec = parse_spec(text).map_err(|e| PolicyError {
        origin: origin.name.clone(),
        errors: vec![e],
    })?;
    let errors = validate_layer(&spec);
    if !errors.is_empty() {
        return Err(PolicyError {
            origin: origin.name,
            errors: errors.into_iter().map(|e| located(text, e)).collect(),
        });
    }
    Ok(PolicyLayer { spec, origin })
}

/// `e` with the line and column of its field in `text`, when the reader did not give them
/// (errors found after reading: validation, completeness).
pub fn located(text: &str, mut e: FieldError) -> FieldError {
    if !e.message.contains(" at line ")
        && let Some((line, column)) = crate::protocols::yaml::locate(text, &e.path)
    {
        e.message = format!("{} at line {line}, column {column}", e.message);
    }
    e
}

/// Parses the policy carried by a ConfigMap (under [`POLICY_KEY`] or `key`).
pub fn layer_from_configmap(cm: &ConfigMap, key: &str) -> Result<PolicyLayer, PolicyError> {
    let name = format!(
        "configmap {}/{}",
        cm.metadata.namespace.as_deref().unwrap_or("-"),
        cm.metadata.name.as_deref().unwrap_or("-")
    );
    let Some(text) = cm.data.as_ref().and_then(|d| d.get(key)) else {
        return Err(PolicyError {
            origin: name,
            errors: vec![FieldError::new(
                format!("data[{key:?}]"),
                format!("missing: the policy must be stored under the key {key:?}"),
            )],
        });
    };
    let version = cm
        .metadata
        .resource_version
        .clone()
        .unwrap_or_else(|| content_hash(text));
    load_layer(text, Origin { name, version }).map_err(|mut e| {
        // Counted in the policy's own text, not in a file: said so (a file's reader moves them,
        // see `layers_from_file_text`).
        for error in &mut e.errors {
            error.message = in_data(&error.message, key);
        }
        e
    })
}

/// `at line L, column C` followed by ` of data["KEY"]`.
fn in_data(message: &str, key: &str) -> String {
    let Some(start) = message.find(AT_LINE) else {
        return message.to_owned();
    };
    let rest = &message[start + AT_LINE.len()..];
    let mut end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    if let Some(column) = rest[end..].strip_prefix(", column ") {
        end += ", column ".len()
            + column
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(column.len());
    }
    let cut = start + AT_LINE.len() + end;
    format!("{}{}{}", &message[..cut], data_suffix(key), &message[cut..])
}

fn data_suffix(key: &str) -> String {
    format!(" of data[{key:?}]")
}

const AT_LINE: &str = "at line ";

/// A policy file as found on disk: either a bare policy or one or more ConfigMap manifests.
/// Returns one result per policy found, in document order.
pub fn layers_from_file_text(
    file: &str,
    text: &str,
    key: &str,
) -> Vec<Result<PolicyLayer, PolicyError>> {
    let mut out = Vec::new();
    let mut any = false;
    let values = match crate::protocols::yaml::documents::<serde_json::Value>(text) {
        Ok(values) => values,
        Err(e) => {
            out.push(Err(PolicyError {
                origin: file.to_owned(),
                errors: vec![FieldError::new("", e.to_string())],
            }));
            return out;
        }
    };
    for (index, value) in values.into_iter().enumerate() {
        if value.is_null() {
            continue;
        }
        any = true;
        let is_configmap = value.get("kind").and_then(|k| k.as_str()) == Some("ConfigMap");
        if is_configmap {
            match serde_json::from_value::<ConfigMap>(value) {
                Ok(cm) => out.push(layer_from_configmap(&cm, key).map_err(|mut e| {
                    e.origin = format!("{file}: {}", e.origin);
                    // Lines and columns counted in the file, not in the policy's own text.
                    if let Some(at) = block_scalar_start(text, index, key) {
                        for error in &mut e.errors {
                            error.message =
                                relocate(&error.message.replacen(&data_suffix(key), "", 1), at);
                        }
                    }
                    e
                })),
                Err(e) => out.push(Err(PolicyError {
                    origin: format!("{file} (document {})", index + 1),
                    errors: vec![FieldError::new("", format!("not a valid ConfigMap: {e}"))],
                })),
            }
        } else if out.is_empty() && index == 0 {
            // A bare policy: parse the text itself so that errors carry line numbers.
            out.push(load_layer(text, Origin::hashed(file, text)));
            return out;
        }
    }
    if !any {
        out.push(load_layer("", Origin::hashed(file, "")));
    }
    out
}

/// Where the text of `key`'s value starts in document `index` of a file (0-based, counting
/// documents that hold something), when it is written as a block scalar (`policy.yaml: |`, as
/// every ConfigMap carrying a policy is): the line of the key (1-based; the policy's line 1 is
/// the next) and the indentation of its content. Other spellings (a quoted string with `\n`)
/// have no such simple mapping: `None`.
fn block_scalar_start(text: &str, index: usize, key: &str) -> Option<(usize, usize)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut document = 0;
    let mut content = false;
    let mut key_line = None;
    for (i, line) in lines.iter().enumerate() {
        if *line == "---" || line.starts_with("--- ") {
            if content {
                document += 1;
                content = false;
            }
            continue;
        }
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        content = true;
        if document != index || !line.starts_with(' ') {
            continue;
        }
        let Some((name, value)) = trimmed.split_once(':') else {
            continue;
        };
        let value = value.split(" #").next().unwrap_or_default().trim();
        if name.trim_matches(['"', '\'']) == key
            && (value.starts_with('|') || value.starts_with('>'))
        {
            key_line = Some(i);
            break;
        }
    }
    let key_line = key_line?;
    let indent = lines[key_line + 1..]
        .iter()
        .find(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())?;
    Some((key_line + 1, indent))
}

/// `message` with its `at line L, column C` (the reader's, counted in an embedded text) moved by
/// `at` ([`block_scalar_start`]).
fn relocate(message: &str, (line_offset, indent): (usize, usize)) -> String {
    const AT: &str = "at line ";
    let Some(start) = message.find(AT) else {
        return message.to_owned();
    };
    let rest = &message[start + AT.len()..];
    let digits = |s: &str| s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let line_len = digits(rest);
    let Ok(line) = rest[..line_len].parse::<usize>() else {
        return message.to_owned();
    };
    let after = &rest[line_len..];
    let (column, tail) = match after.strip_prefix(", column ") {
        Some(c) => {
            let n = digits(c);
            (c[..n].parse::<usize>().ok(), &c[n..])
        }
        None => (None, after),
    };
    let mut out = format!("{}{AT}{}", &message[..start], line + line_offset);
    if let Some(column) = column {
        out.push_str(&format!(", column {}", column + indent));
    }
    out.push_str(tail);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_fields_are_errors_that_list_the_allowed_ones() {
        let err = parse_spec("preStop:\n  acton: sleep\n").unwrap_err();
        assert_eq!(err.path, "preStop.acton");
        assert!(err.message.starts_with("unknown field `acton`"), "{err}");
        assert!(err.message.contains("expected one of action, "), "{err}");
        assert!(err.message.contains("line 2"), "{err}");
    }

    #[test]
    fn wrong_enum_values_list_the_allowed_values_with_the_field_path() {
        let err = parse_spec("preStop:\n  action: slep\n").unwrap_err();
        assert_eq!(err.path, "preStop.action");
        assert!(
            err.message.contains("sleep, exec, nginx, nacos, none"),
            "{err}"
        );
    }

    #[test]
    fn startup_errors_name_the_field_and_the_allowed_values() {
        let err = parse_spec("startup:\n  handler: startup\n").unwrap_err();
        assert_eq!(err.path, "startup.handler");
        assert!(err.message.contains("liveness, readiness"), "{err}");
        let err = parse_spec("startup: {maxSecond: 90}\n").unwrap_err();
        assert_eq!(err.path, "startup.maxSecond");
        assert!(err.message.contains("maxSeconds"), "{err}");
        let err = parse_spec("rules:\n- set: {startup: {maxSeconds: 7200}}\n").unwrap_err();
        assert_eq!(err.path, "rules[0].set.startup.maxSeconds");
        assert!(err.message.contains("between 0 and 3600"), "{err}");
    }

    #[test]
    fn wrong_types_name_the_field() {
        let err = parse_spec("shutdownSeconds: soon\n").unwrap_err();
        assert_eq!(err.path, "shutdownSeconds");
        assert!(err.message.contains("between 0 and 3600"), "{err}");
        let err =
            parse_spec("rules:\n  - match: {image: nginx*}\n    set: {bufferSeconds: 4000}\n")
                .unwrap_err();
        assert_eq!(err.path, "rules[0].set.bufferSeconds");
    }

    #[test]
    fn json_is_accepted_and_comments_alone_are_the_empty_policy() {
        let spec = parse_spec(r#"{"shutdownSeconds": 20}"#).unwrap();
        assert_eq!(spec.shutdown_seconds.map(|s| s.get()), Some(20));
        assert_eq!(
            parse_spec("# nothing yet\n").unwrap(),
            PolicySpec::default()
        );
        assert_eq!(parse_spec("").unwrap(), PolicySpec::default());
    }

    #[test]
    fn errors_in_a_configmaps_policy_name_the_line_of_the_file() {
        let text = "# the shop's policy\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: podgrace-policy, namespace: shop}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: podgrace-policy, namespace: cart}\ndata:\n  policy.yaml: |\n    preStop:\n      sleepSeconds: 10\n    readiness:\n      inject: maybe\n";
        let layers = layers_from_file_text("policies.yaml", text, POLICY_KEY);
        let err = layers[1].as_ref().unwrap_err().to_string();
        // `inject: maybe` is line 14 of the file, its value at column 15.
        assert!(err.contains("at line 14, column 15"), "{err}");
    }

    #[test]
    fn a_configmaps_own_lines_say_they_are_counted_in_its_data() {
        let cm: ConfigMap = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "podgrace-policy", "namespace": "shop"},
            "data": {"policy.yaml": "preStop:\n  action: teleport\n"}
        }))
        .unwrap();
        let err = layer_from_configmap(&cm, POLICY_KEY)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("at line 2, column 11 of data[\"policy.yaml\"]"),
            "{err}"
        );
    }

    #[test]
    fn validation_errors_name_the_line_of_the_field() {
        let text = "preStop:\n  action: sleep\nstartup:\n  maxSeconds: 0\n";
        let err = load_layer(text, Origin::hashed("p.yaml", text)).unwrap_err();
        assert!(
            err.to_string()
                .contains("startup.maxSeconds: must be at least 1")
                && err.to_string().contains("at line 4, column 15"),
            "{err}"
        );
        let cm = format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: podgrace-policy, namespace: shop}}\ndata:\n  policy.yaml: |\n{}",
            text.lines()
                .map(|l| format!("    {l}\n"))
                .collect::<String>()
        );
        let layers = layers_from_file_text("cm.yaml", &cm, POLICY_KEY);
        let err = layers[0].as_ref().unwrap_err().to_string();
        assert!(err.contains("at line 9, column 19"), "{err}");
    }

    #[test]
    fn malformed_yaml_is_an_error_not_a_panic() {
        let err = parse_spec("preStop: [unclosed\n").unwrap_err();
        assert!(!err.message.is_empty());
    }

    #[test]
    fn configmaps_carry_the_policy_under_the_key_and_their_resource_version() {
        let text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: podgrace-policy, namespace: shop, resourceVersion: \"42\"}\ndata:\n  policy.yaml: |\n    shutdownSeconds: 45\n";
        let layers = layers_from_file_text("cm.yaml", text, POLICY_KEY);
        let layer = layers[0].as_ref().unwrap();
        assert_eq!(layer.spec.shutdown_seconds.map(|s| s.get()), Some(45));
        assert_eq!(layer.origin.version, "42");
        assert_eq!(layer.origin.name, "configmap shop/podgrace-policy");
    }

    #[test]
    fn a_configmap_without_the_key_says_which_key_is_missing() {
        let text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: podgrace-policy, namespace: shop}\ndata:\n  policy.yml: 'x: 1'\n";
        let err = layers_from_file_text("cm.yaml", text, POLICY_KEY)
            .remove(0)
            .unwrap_err();
        assert!(err.to_string().contains("\"policy.yaml\""), "{err}");
    }

    #[test]
    fn content_hash_is_the_sha256_prefix_every_replica_computes() {
        // Pinned digests (`printf 'a' | sha256sum`): a change of algorithm or encoding would
        // make replicas of different releases disagree on a policy's version.
        assert_eq!(content_hash("a"), "ca978112ca1b");
        assert_eq!(
            content_hash("preStop: {sleepSeconds: 20}\n"),
            "b7232e074592"
        );
    }
}
