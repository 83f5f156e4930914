//! Environment variables podgrace adds: downward-API fields, Secret references for hooks, preset
//! values. A variable the container already defines is never added again or changed: users'
//! definitions win, and a duplicate name would make the later one silently override the first.

use k8s_openapi::api::core::v1::{
    Container, EnvVar, EnvVarSource, ObjectFieldSelector, SecretKeySelector,
};

/// `name` ← downward-API `field_path`.
pub fn field(name: &str, field_path: &str) -> EnvVar {
    EnvVar {
        name: name.to_owned(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                api_version: Some("v1".to_owned()),
                field_path: field_path.to_owned(),
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// `name` ← key `key` of Secret `secret`, optional so that a missing Secret does not keep the pod
/// from starting.
pub fn secret(name: &str, secret: &str, key: &str) -> EnvVar {
    EnvVar {
        name: name.to_owned(),
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: secret.to_owned(),
                key: key.to_owned(),
                optional: Some(true),
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// `name` = `value`.
pub fn literal(name: &str, value: String) -> EnvVar {
    EnvVar {
        name: name.to_owned(),
        value: Some(value),
        ..Default::default()
    }
}

/// The variables of `wanted` that `c` does not define yet, first occurrence of each name.
pub fn missing(c: &Container, wanted: Vec<EnvVar>) -> Vec<EnvVar> {
    let existing = c.env.as_deref().unwrap_or_default();
    let mut out: Vec<EnvVar> = Vec::with_capacity(wanted.len());
    for var in wanted {
        let defined =
            existing.iter().any(|e| e.name == var.name) || out.iter().any(|e| e.name == var.name);
        if !defined {
            out.push(var);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn existing_and_repeated_names_are_skipped() {
        let c = Container {
            name: "app".into(),
            env: Some(vec![literal("POD_IP", "static".into())]),
            ..Default::default()
        };
        let got = missing(
            &c,
            vec![
                field("POD_IP", "status.podIP"),
                field("POD_NAME", "metadata.name"),
                field("POD_NAME", "metadata.uid"),
            ],
        );
        assert_eq!(got, vec![field("POD_NAME", "metadata.name")]);
    }

    #[test]
    fn secret_references_are_optional() {
        let v = secret("U", "nacos-auth", "username");
        assert_eq!(
            v.value_from.unwrap().secret_key_ref.unwrap().optional,
            Some(true)
        );
        assert!(v.value.is_none());
    }
}
