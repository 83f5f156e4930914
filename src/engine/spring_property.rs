//! Spring Boot properties as a container sets them, for the engine's decisions that depend on
//! them (the actuator's management port, the Nacos registration address, the health groups'
//! switch). Spring reads a property from a variable under any name its relaxed binding maps to
//! it (`MANAGEMENT_SERVER_PORT`, `management.server.port`), and from `name=value` spelt out in
//! the arguments (`--management.server.port=8081`) or in another variable's value
//! (`JAVA_TOOL_OPTIONS=-Dmanagement.server.port=8081`, or `SPRING_APPLICATION_JSON`'s
//! `"name": value`).

use k8s_openapi::api::core::v1::{Container, EnvVarSource};

/// How a container sets a property.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Setting<'a> {
    /// A value podgrace can read: a variable's literal value, or the text after `name=`.
    Value(&'a str),
    /// A variable filled from elsewhere (`valueFrom`): only the kubelet knows its value.
    From(&'a EnvVarSource),
}

/// Whether a variable of `name` binds to `property`, as Spring's relaxed binding compares them
/// (case aside, `.` and `-` read as `_`). Compared byte by byte: this runs for every variable of
/// a container on the admission path, and allocates nothing.
fn binds_to(name: &str, property: &str) -> bool {
    let relaxed = |b: u8| match b {
        b'.' | b'-' => b'_',
        b => b.to_ascii_uppercase(),
    };
    name.len() == property.len()
        && name
            .bytes()
            .zip(property.bytes())
            .all(|(n, p)| relaxed(n) == relaxed(p))
}

/// How `c` sets `property` (dotted, lower case), if it does: a variable of that name, else the
/// first spelt-out setting in the command line or the variables' values. (Spring ranks `--`
/// arguments above variables; a pod that sets a property both ways is not worth the order.)
pub fn find<'a>(c: &'a Container, property: &str) -> Option<Setting<'a>> {
    let vars = c.env.iter().flatten();
    if let Some(var) = vars.clone().find(|v| binds_to(&v.name, property)) {
        return Some(match (&var.value, &var.value_from) {
            (_, Some(source)) => Setting::From(source),
            (value, None) => Setting::Value(value.as_deref().unwrap_or_default()),
        });
    }
    let words = c.command.iter().chain(&c.args).flatten();
    let values = vars.filter_map(|v| v.value.as_ref());
    words
        .chain(values)
        .find_map(|text| spelt_out(text, property))
        .map(Setting::Value)
}

/// The value of `property` spelt out in `text`: `property=value` or `"property": value`.
fn spelt_out<'a>(text: &'a str, property: &str) -> Option<&'a str> {
    let delimiter = |ch: char| ch.is_whitespace() || matches!(ch, '"' | '\'' | ',');
    text.match_indices(property).find_map(|(at, _)| {
        let rest = text[at + property.len()..].trim_start_matches(['"', '\'']);
        let rest = rest.trim_start();
        let value = rest.strip_prefix('=').or_else(|| rest.strip_prefix(':'))?;
        let value = value.trim_start().trim_start_matches(['"', '\'']);
        let mut value = value.split(delimiter).next().unwrap_or_default();
        // The `}` closing a JSON object, not a `${VAR}` in the value.
        while value.matches('}').count() > value.matches('{').count() {
            value = &value[..value.len() - 1];
        }
        Some(value)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{EnvVar, ObjectFieldSelector};

    fn container(extra: serde_json::Value) -> Container {
        let mut c = serde_json::json!({"name": "app"});
        for (k, v) in extra.as_object().unwrap() {
            c[k] = v.clone();
        }
        serde_json::from_value(c).unwrap()
    }

    #[test]
    fn every_spelling_spring_reads_is_found() {
        let port = "management.server.port";
        for extra in [
            serde_json::json!({"env": [{"name": "MANAGEMENT_SERVER_PORT", "value": "8081"}]}),
            serde_json::json!({"env": [{"name": "management.server.port", "value": "8081"}]}),
            serde_json::json!({"env": [{"name": "JAVA_TOOL_OPTIONS",
                "value": "-Xmx1g -Dmanagement.server.port=8081 -Dfile.encoding=UTF-8"}]}),
            serde_json::json!({"env": [{"name": "SPRING_APPLICATION_JSON",
                "value": "{\"management.server.port\": 8081, \"x\": 1}"}]}),
            serde_json::json!({"env": [{"name": "SPRING_APPLICATION_JSON",
                "value": "{\"management.server.port\":8081}"}]}),
            serde_json::json!({"args": ["--spring.profiles.active=k8s", "--management.server.port=8081"]}),
            serde_json::json!({"command": ["java", "-Dmanagement.server.port='8081'", "-jar", "app.jar"]}),
        ] {
            let c = container(extra.clone());
            assert_eq!(find(&c, port), Some(Setting::Value("8081")), "{extra}");
        }
        let c = container(serde_json::json!({"args": ["-Dmanagement.server.port=${PORT} -Xmx1g"]}));
        assert_eq!(find(&c, port), Some(Setting::Value("${PORT}")));
        let c = container(serde_json::json!({"args": ["--server.port=8080"]}));
        assert_eq!(find(&c, port), None);
        // A mention without a value is no setting.
        let c = container(serde_json::json!({"args": ["management.server.port"]}));
        assert_eq!(find(&c, port), None);
    }

    #[test]
    fn a_variable_from_elsewhere_is_told_apart_from_a_value() {
        let mut c = container(serde_json::json!({}));
        c.env = Some(vec![EnvVar {
            name: "SPRING_CLOUD_NACOS_DISCOVERY_IP".into(),
            value_from: Some(EnvVarSource {
                field_ref: Some(ObjectFieldSelector {
                    field_path: "status.podIP".into(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }]);
        let Some(Setting::From(source)) = find(&c, "spring.cloud.nacos.discovery.ip") else {
            panic!("a variable from the downward API");
        };
        assert_eq!(
            source.field_ref.as_ref().unwrap().field_path,
            "status.podIP"
        );
    }
}
