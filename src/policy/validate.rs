//! Structural validation of one policy layer: every check that can be made on the layer alone,
//! each reported at its field path with what is expected. Checks that need the merged result
//! (a `nacos` action needs a server from *some* layer) live in [`super::merge`].

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::error::{FieldError, join_path};
use super::spec::*;
use crate::protocols::kube_names::{
    is_dns_subdomain, is_env_name, is_label_key, is_port_name, is_secret_key,
};

/// Downward-API field paths the kubelet accepts in `env[].valueFrom.fieldRef`.
const FIELD_PATHS: [&str; 9] = [
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "spec.nodeName",
    "spec.serviceAccountName",
    "status.hostIP",
    "status.hostIPs",
    "status.podIP",
    "status.podIPs",
];

/// Validates a cluster or namespace policy layer.
pub fn validate_layer(spec: &PolicySpec) -> Vec<FieldError> {
    let mut errors = Vec::new();
    validate_settings(spec, "", &mut errors);
    if let Some(sel) = &spec.containers {
        for (field, list) in [("include", &sel.include), ("exclude", &sel.exclude)] {
            for (i, pattern) in list.iter().flatten().enumerate() {
                if pattern.trim().is_empty() {
                    errors.push(FieldError::new(
                        format!("containers.{field}[{i}]"),
                        "must be a container name or glob pattern, not empty",
                    ));
                }
            }
        }
    }
    if let Some(helper) = &spec.helper_image
        && let Some(image) = &helper.image
        && (image.is_empty() || image.chars().any(char::is_whitespace))
    {
        errors.push(FieldError::new(
            "helperImage.image",
            format!("must be an image reference without spaces, got {image:?}"),
        ));
    }
    for (i, rule) in spec.rules.iter().flatten().enumerate() {
        let path = format!("rules[{i}]");
        validate_rule(rule, &path, &mut errors);
    }
    errors
}

fn validate_rule(rule: &Rule, path: &str, errors: &mut Vec<FieldError>) {
    let m = &rule.matcher;
    for (field, pattern) in [("containerName", &m.container_name), ("image", &m.image)] {
        if let Some(p) = pattern
            && p.trim().is_empty()
        {
            errors.push(FieldError::new(
                format!("{path}.match.{field}"),
                "must be a glob pattern, not empty",
            ));
        }
    }
    for key in m.pod_labels.iter().flat_map(|l| l.keys()) {
        if !is_label_key(key) {
            errors.push(FieldError::new(
                format!("{path}.match.podLabels"),
                format!("{key:?} is not a valid label key"),
            ));
        }
    }
    let set = &rule.set;
    let forbidden = [
        ("rules", set.rules.is_some()),
        ("containers", set.containers.is_some()),
        ("gracePeriod", set.grace_period.is_some()),
        ("helperImage", set.helper_image.is_some()),
        ("sidecars", set.sidecars.is_some()),
    ];
    for (field, present) in forbidden {
        if present {
            errors.push(FieldError::new(
                format!("{path}.set.{field}"),
                "is a pod-wide setting and cannot be set by a rule; set it at the top level",
            ));
        }
    }
    validate_settings(set, &join_path(path, "set"), errors);
}

/// Checks the per-container settings (shared by the top level and rules).
fn validate_settings(spec: &PolicySpec, path: &str, errors: &mut Vec<FieldError>) {
    let at = |field: &str| join_path(path, field);
    if let Some(pre_stop) = &spec.pre_stop {
        if let Some(exec) = &pre_stop.exec
            && let Some(command) = &exec.command
            && (command.is_empty() || command[0].trim().is_empty())
        {
            errors.push(FieldError::new(
                at("preStop.exec.command"),
                "must be a non-empty argv list whose first item is the program",
            ));
        }
        if let Some(nacos) = &pre_stop.nacos {
            validate_nacos(nacos, &at("preStop.nacos"), errors);
        }
        for (i, port) in pre_stop
            .drain
            .iter()
            .flat_map(|d| d.ignore_ports.iter().flatten())
            .enumerate()
        {
            if let Err(why) = check_probe_port(port) {
                errors.push(FieldError::new(
                    at(&format!("preStop.drain.ignorePorts[{i}]")),
                    why,
                ));
            }
        }
    }
    if let Some(env) = &spec.env {
        if let Some(name) = &env.pod_ip
            && !name.is_empty()
            && !is_env_name(name)
        {
            errors.push(FieldError::new(
                at("env.podIP"),
                format!("{name:?} is not a valid environment variable name ([A-Za-z_][A-Za-z0-9_]*), or \"\" for none"),
            ));
        }
        for (i, var) in env.extra.iter().flatten().enumerate() {
            if !is_env_name(&var.name) {
                errors.push(FieldError::new(
                    at(&format!("env.extra[{i}].name")),
                    format!(
                        "{:?} is not a valid environment variable name ([A-Za-z_][A-Za-z0-9_]*)",
                        var.name
                    ),
                ));
            }
            if !is_field_path(&var.field_path) {
                errors.push(FieldError::new(
                    at(&format!("env.extra[{i}].fieldPath")),
                    format!(
                        "{:?} is not a downward-API field; expected one of {}, metadata.labels['KEY'], metadata.annotations['KEY']",
                        var.field_path,
                        FIELD_PATHS.join(", ")
                    ),
                ));
            }
        }
    }
    if let Some(r) = &spec.readiness {
        validate_readiness(r, &at("readiness"), errors);
    }
    if let Some(s) = &spec.startup {
        validate_startup(s, &at("startup"), errors);
    }
}

fn validate_startup(s: &StartupSpec, path: &str, errors: &mut Vec<FieldError>) {
    if s.max_seconds.is_some_and(|m| m.get() == 0) {
        errors.push(FieldError::new(
            join_path(path, "maxSeconds"),
            "must be at least 1: the longest the app takes to start (leave it out to declare none)",
        ));
    }
    if s.period_seconds.is_some_and(|p| p.get() == 0) {
        errors.push(FieldError::new(
            join_path(path, "periodSeconds"),
            "must be at least 1",
        ));
    }
}

fn validate_nacos(nacos: &NacosSpec, path: &str, errors: &mut Vec<FieldError>) {
    let at = |field: &str| join_path(path, field);
    if let Some(server) = &nacos.server
        && let Err(why) = check_server_url(server)
    {
        errors.push(FieldError::new(at("server"), why));
    }
    let names = [
        ("namespaceId", &nacos.namespace_id),
        ("groupName", &nacos.group_name),
        ("serviceName", &nacos.service_name),
        ("clusterName", &nacos.cluster_name),
    ];
    for (field, value) in names {
        if let Some(v) = value
            && (v.is_empty()
                || v.len() > 256
                || v.chars().any(|c| c.is_control())
                || v.contains("@@"))
        {
            errors.push(FieldError::new(
                at(field),
                format!("{v:?} is not a Nacos name: 1-256 printable characters without \"@@\""),
            ));
        }
    }
    if nacos.port == Some(0) {
        errors.push(FieldError::new(
            at("port"),
            "must be a port between 1 and 65535",
        ));
    }
    if nacos.timeout_seconds.is_some_and(|t| t.get() == 0) {
        errors.push(FieldError::new(
            at("timeoutSeconds"),
            "must be at least 1: an unbounded call could eat the whole grace period",
        ));
    }
    if let Some(auth) = &nacos.auth {
        if let Some(secret) = &auth.secret_name
            && !is_dns_subdomain(secret)
        {
            errors.push(FieldError::new(
                at("auth.secretName"),
                format!("{secret:?} is not a valid Secret name (lowercase DNS subdomain)"),
            ));
        }
        for (field, key) in [
            ("usernameKey", &auth.username_key),
            ("passwordKey", &auth.password_key),
        ] {
            if let Some(k) = key
                && !is_secret_key(k)
            {
                errors.push(FieldError::new(
                    at(&format!("auth.{field}")),
                    format!("{k:?} is not a valid Secret key ([-._a-zA-Z0-9]+)"),
                ));
            }
        }
    }
}

fn validate_readiness(r: &ReadinessSpec, path: &str, errors: &mut Vec<FieldError>) {
    let at = |field: &str| join_path(path, field);
    if let Some(p) = &r.path
        && (!p.starts_with('/') || p.chars().any(|c| c.is_whitespace() || c.is_control()))
    {
        errors.push(FieldError::new(
            at("path"),
            format!("{p:?} must be an absolute HTTP path starting with '/' and without spaces"),
        ));
    }
    if let Some(port) = &r.port
        && let Err(why) = check_probe_port(port)
    {
        errors.push(FieldError::new(at("port"), why));
    }
    for (field, value) in [
        ("periodSeconds", r.period_seconds),
        ("timeoutSeconds", r.timeout_seconds),
    ] {
        if value.is_some_and(|v| v.get() == 0) {
            errors.push(FieldError::new(at(field), "must be at least 1"));
        }
    }
    for (field, value) in [
        ("failureThreshold", r.failure_threshold),
        ("successThreshold", r.success_threshold),
    ] {
        if value.is_some_and(|v| v == 0 || v > 1000) {
            errors.push(FieldError::new(at(field), "must be between 1 and 1000"));
        }
    }
}

/// Checks a probe port: a number in 1..=65535 or an IANA service name (a container port name).
pub fn check_probe_port(port: &IntOrString) -> Result<(), String> {
    match port {
        IntOrString::Int(n) if (1..=65535).contains(n) => Ok(()),
        IntOrString::Int(n) => Err(format!("{n} is not a port between 1 and 65535")),
        IntOrString::String(name) if is_port_name(name) => Ok(()),
        IntOrString::String(name) => Err(format!(
            "{name:?} is not a port name (1-15 lowercase letters, digits and '-', at least one letter)"
        )),
    }
}

/// A Nacos base URL: `http` or `https`, a host, an optional port and path, and only characters
/// that need no quoting in a shell word or a URL (the URL ends up in generated shell).
pub fn check_server_url(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(|| format!("{url:?} must start with http:// or https://"))?;
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    if authority.is_empty() {
        return Err(format!("{url:?} has no host"));
    }
    let safe = |c: char| c.is_ascii_alphanumeric() || "-._~:[]".contains(c);
    if !authority.chars().all(safe) {
        return Err(format!(
            "{url:?}: the host may only contain letters, digits, '-', '.', ':' and brackets"
        ));
    }
    if let Some((_, port)) = authority.rsplit_once(':')
        && !authority.ends_with(']')
        && port.parse::<u16>().map_or(true, |p| p == 0)
    {
        return Err(format!("{url:?}: port {port:?} is not between 1 and 65535"));
    }
    if !path
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-._~/".contains(c))
    {
        return Err(format!(
            "{url:?}: the path may only contain letters, digits and - . _ ~ /; query strings are not allowed"
        ));
    }
    Ok(())
}

fn is_field_path(s: &str) -> bool {
    if FIELD_PATHS.contains(&s) {
        return true;
    }
    ["metadata.labels['", "metadata.annotations['"]
        .iter()
        .any(|prefix| {
            s.strip_prefix(prefix)
                .and_then(|rest| rest.strip_suffix("']"))
                .is_some_and(is_label_key)
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::parse::parse_spec;

    fn errors(yaml: &str) -> Vec<String> {
        validate_layer(&parse_spec(yaml).unwrap())
            .into_iter()
            .map(|e| e.to_string())
            .collect()
    }

    #[test]
    fn the_builtin_policy_is_valid() {
        assert!(validate_layer(&crate::policy::defaults::builtin()).is_empty());
    }

    #[test]
    fn nacos_server_must_be_a_plain_http_url() {
        assert!(check_server_url("http://nacos.nacos:8848").is_ok());
        assert!(check_server_url("https://nacos.example.com/base").is_ok());
        assert!(check_server_url("http://[fd00::1]:8848").is_ok());
        for bad in [
            "nacos:8848",
            "http://",
            "http://nacos:0",
            "http://nacos:99999",
            "http://na'cos",
            "http://nacos/$(reboot)",
            "http://nacos/?a=b",
        ] {
            assert!(check_server_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn errors_carry_the_path_inside_rules() {
        let errs = errors(
            "rules:\n- match: {image: 'x*'}\n  set:\n    preStop:\n      nacos: {server: 'ftp://x'}\n",
        );
        assert_eq!(errs.len(), 1);
        assert!(
            errs[0].starts_with("rules[0].set.preStop.nacos.server: "),
            "{errs:?}"
        );
    }

    #[test]
    fn pod_wide_settings_are_refused_inside_rules() {
        let errs = errors(
            "rules:\n- match: {image: 'x*'}\n  set: {gracePeriod: keep, containers: {exclude: [a]}}\n",
        );
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert!(errs[0].contains("rules[0].set.containers"));
        assert!(errs[1].contains("rules[0].set.gracePeriod"));
    }

    #[test]
    fn env_and_probe_fields_are_checked() {
        let errs = errors(
            "env: {podIP: 'POD-IP', extra: [{name: NODE, fieldPath: spec.node}]}\nreadiness: {path: health, port: 70000, periodSeconds: 0, failureThreshold: 0}\n",
        );
        let joined = errs.join("\n");
        for expected in [
            "env.podIP",
            "env.extra[0].fieldPath",
            "readiness.path",
            "readiness.port",
            "readiness.periodSeconds",
            "readiness.failureThreshold",
        ] {
            assert!(joined.contains(expected), "missing {expected} in {joined}");
        }
    }

    #[test]
    fn startup_fields_are_checked_at_their_path_also_inside_rules() {
        let errs = errors(
            "startup: {maxSeconds: 0, periodSeconds: 0}\nrules:\n- match: {podLabels: {framework: spring-boot}}\n  set: {startup: {maxSeconds: 0}}\n",
        );
        assert_eq!(
            errs,
            vec![
                "startup.maxSeconds: must be at least 1: the longest the app takes to start (leave it out to declare none)",
                "startup.periodSeconds: must be at least 1",
                "rules[0].set.startup.maxSeconds: must be at least 1: the longest the app takes to start (leave it out to declare none)",
            ]
        );
        assert!(
            errors(
                "startup: {inject: true, maxSeconds: 120, periodSeconds: 10, handler: readiness}\n"
            )
            .is_empty()
        );
    }

    #[test]
    fn downward_api_label_paths_are_accepted() {
        assert!(is_field_path("metadata.labels['app.kubernetes.io/name']"));
        assert!(!is_field_path("metadata.labels['']"));
        assert!(is_env_name("_X1") && !is_env_name("1X") && !is_env_name(""));
        assert!(is_port_name("http") && !is_port_name("8080") && !is_port_name("a--b"));
    }

    #[test]
    fn secret_references_are_checked() {
        let errs =
            errors("preStop:\n  nacos:\n    auth: {secretName: Nacos_Creds, usernameKey: 'a b'}\n");
        assert_eq!(errs.len(), 2, "{errs:?}");
    }
}
