//! Nacos deregistration and the environment it reads: POD_IP from the downward API, credentials
//! by Secret reference, existing variables never duplicated.

use super::{APP, run};
use crate::common::{layer, mutate_raw, paths, pod_json, policy, read_fixture};
use podgrace::engine::ClusterInfo;
use podgrace::policy::EffectivePolicy;
use serde_json::{Value, json};

#[test]
fn the_operators_nacos_setup_gets_seventy_one_seconds() {
    let raw = pod_json(
        read_fixture("manifests/spring-nacos.yaml")
            .split("---")
            .nth(1)
            .unwrap(),
    );
    let template = json!({"apiVersion": "v1", "kind": "Pod", "metadata": raw["spec"]["template"]["metadata"], "spec": raw["spec"]["template"]["spec"]});
    let ns = podgrace::policy::parse::layers_from_file_text(
        "ns",
        &read_fixture("policies/shop-nacos.yaml"),
        "policy.yaml",
    )
    .remove(0)
    .unwrap();
    let cluster = layer(&read_fixture("policies/cluster.yaml"));
    let eff = EffectivePolicy::new(Some(&cluster), Some(&ns));
    let (m, out) = run(&template, &eff);
    // Login 3 s + update 3 s + sleep 30 s + Spring Boot 30 s + buffer 5 s.
    assert_eq!(out["spec"]["terminationGracePeriodSeconds"], 71);
    let c = &out["spec"]["containers"][0];
    let env: Vec<&str> = c["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        env,
        [
            "POD_IP",
            "PODGRACE_NACOS_USERNAME",
            "PODGRACE_NACOS_PASSWORD",
            "SERVER_SHUTDOWN",
            "SPRING_LIFECYCLE_TIMEOUT_PER_SHUTDOWN_PHASE",
            // The injected readiness probe asks the actuator's readiness group.
            "MANAGEMENT_ENDPOINT_HEALTH_PROBES_ENABLED"
        ]
    );
    assert_eq!(
        c["env"][1]["valueFrom"]["secretKeyRef"],
        json!({"name": "nacos-credentials", "key": "username", "optional": true})
    );
    assert_eq!(c["env"][4]["value"], "30s");
    assert_eq!(
        c["readinessProbe"]["httpGet"]["path"],
        "/actuator/health/readiness"
    );
    assert!(
        m.record
            .policy
            .ends_with("configmap kevin/podgrace-policy@4711"),
        "{}",
        m.record.policy
    );
}

#[test]
fn credentials_never_appear_in_the_patch() {
    let eff = policy(
        "preStop:\n  action: nacos\n  nacos:\n    server: http://nacos:8848\n    auth: {secretName: nacos-auth}\n",
    );
    let m = mutate_raw(&pod_json(APP), &eff, &ClusterInfo::default());
    let text = serde_json::to_string(&m.patch).unwrap();
    assert!(text.contains("secretKeyRef"));
    assert!(
        !text.contains("\"value\":\"nacos\""),
        "no literal credentials"
    );
}

#[test]
fn existing_env_vars_are_never_duplicated() {
    let mut raw = pod_json(APP);
    raw["spec"]["containers"][0]["env"] = json!([{"name": "POD_IP", "value": "mine"}]);
    let (m, out) = run(
        &raw,
        &policy("env: {extra: [{name: POD_NAME, fieldPath: metadata.name}]}"),
    );
    let env = out["spec"]["containers"][0]["env"].as_array().unwrap();
    assert_eq!(env.len(), 2);
    assert_eq!(env[0], json!({"name": "POD_IP", "value": "mine"}));
    assert_eq!(env[1]["name"], "POD_NAME");
    assert!(paths(&m).contains(&"/spec/containers/0/env/-".to_owned()));
}

#[test]
fn a_namespace_nacos_action_beats_the_builtin_nginx_rule() {
    let mut raw = pod_json(APP);
    raw["spec"]["containers"][0]["image"] = json!("nginx:1.27");
    let (_, out) = run(
        &raw,
        &policy("preStop: {action: nacos, nacos: {server: 'http://nacos:8848'}}\n"),
    );
    let command = &out["spec"]["containers"][0]["lifecycle"]["preStop"]["exec"]["command"];
    assert!(command[2].as_str().unwrap().contains("nacos"), "{command}");
}

/// Nacos deregistration sends the pod's IP from the variable the policy names: a container that
/// defines it as something else (here the node's address) would deregister the wrong instance.
#[test]
fn nacos_warns_when_the_containers_own_ip_variable_is_not_the_pod_ip() {
    let nacos = policy("preStop: {action: nacos, nacos: {server: 'http://nacos:8848'}}\n");
    let with_ip = |field_path: &str| {
        let mut raw = pod_json(APP);
        raw["spec"]["containers"][0]["env"] =
            json!([{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": field_path}}}]);
        mutate_raw(&raw, &nacos, &ClusterInfo::default()).warnings
    };
    let warned = |w: &Vec<String>| w.iter().any(|w| w.contains("POD_IP is not status.podIP"));
    assert!(
        warned(&with_ip("status.hostIP")),
        "{:?}",
        with_ip("status.hostIP")
    );
    assert!(
        !warned(&with_ip("status.podIP")),
        "{:?}",
        with_ip("status.podIP")
    );
    // Absent, podgrace adds it from status.podIP.
    let (_, out) = run(&pod_json(APP), &nacos);
    assert_eq!(
        out["spec"]["containers"][0]["env"][0]["valueFrom"]["fieldRef"]["fieldPath"],
        "status.podIP"
    );
}

/// An app that pins its Nacos registration IP (iBizEHR's manifests write the node's address)
/// is not deregistered by the pod IP: podgrace says so.
#[test]
fn nacos_warns_when_the_app_registers_under_another_ip() {
    let nacos = policy("preStop: {action: nacos, nacos: {server: 'http://nacos:8848'}}\n");
    let warned = |container: Value| {
        let mut raw = pod_json(APP);
        let c = raw["spec"]["containers"][0].as_object_mut().unwrap();
        c.extend(container.as_object().unwrap().clone());
        let w = mutate_raw(&raw, &nacos, &ClusterInfo::default()).warnings;
        w.iter()
            .any(|w| w.contains("registers under an IP of its own,"))
    };
    let env = |name: &str, value: &str| json!({"env": [{"name": name, "value": value}]});
    assert!(warned(env(
        "SPRING_CLOUD_NACOS_DISCOVERY_IP",
        "172.16.180.232"
    )));
    assert!(warned(env(
        "JAVA_OPTS",
        "-Xmx1g -Dspring.cloud.nacos.discovery.ip=10.0.0.8"
    )));
    assert!(warned(
        json!({"args": ["--spring.cloud.nacos.discovery.ip=10.0.0.8"]})
    ));
    // The pod's own IP, by reference or from the downward API: nothing to say.
    assert!(!warned(env("SPRING_CLOUD_NACOS_DISCOVERY_IP", "$(POD_IP)")));
    assert!(!warned(env(
        "JAVA_OPTS",
        "-Dspring.cloud.nacos.discovery.ip=${POD_IP} -Xmx1g"
    )));
    assert!(!warned(
        json!({"env": [{"name": "SPRING_CLOUD_NACOS_DISCOVERY_IP",
        "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}]})
    ));
    assert!(!warned(json!({})));
}
