//! The generated `nacos` preStop run for real: `/bin/sh -c SCRIPT` with curl, against the test
//! Nacos server (tests/common/nacos_server.rs), for each API generation and failure mode.

mod common;

use std::time::{Duration, Instant};

use common::child::{self, SHORT};
use common::nacos_server::{FakeNacos, Fault, Generation};
use common::*;
use podgrace::engine::ClusterInfo;

struct Run {
    status: i32,
    stderr: String,
    elapsed: Duration,
}

/// Builds the pod's hook under `policy_yaml` and runs it the way the kubelet would: the
/// container's command in its environment (POD_IP from the downward API, credentials from the
/// Secret).
fn run_hook(policy_yaml: &str, env: &[(&str, &str)]) -> Run {
    let raw = pod_json(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p, labels: {app: customer-services}}\nspec:\n  containers:\n  - name: app\n    image: registry.example/app:1\n    ports: [{containerPort: 9810}]\n",
    );
    let m = mutate_raw(&raw, &policy(policy_yaml), &ClusterInfo::default());
    let out = apply(&raw, &m);
    let command: Vec<String> = serde_json::from_value(
        out["spec"]["containers"][0]["lifecycle"]["preStop"]["exec"]["command"].clone(),
    )
    .expect("an exec hook");
    assert_eq!(command[..2], ["/bin/sh".to_owned(), "-c".to_owned()]);
    let start = Instant::now();
    let output = child::output_within(
        child::command(&command[0])
            .args(&command[1..])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap())
            .envs(env.iter().copied()),
        None,
        SHORT,
    );
    Run {
        status: output.status.code().unwrap_or(-1),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        elapsed: start.elapsed(),
    }
}

fn nacos_policy(server: &str, api: &str, extra: &str) -> String {
    format!(
        "preStop:\n  action: nacos\n  sleepSeconds: 0\n  nacos:\n    server: {server}\n    apiVersion: {api}\n    namespaceId: online\n    groupName: kevin-app\n    timeoutSeconds: 1\n{extra}"
    )
}

const AUTH: &str = "    auth: {secretName: nacos-credentials}\n";
const SERVICE: &str = "kevin-app@@customer-services";
const CREDS: [(&str, &str); 3] = [
    ("POD_IP", "10.1.2.3"),
    ("PODGRACE_NACOS_USERNAME", "nacos"),
    ("PODGRACE_NACOS_PASSWORD", "p@ss w'rd&$x"),
];

#[test]
fn v1_logs_in_then_puts_enabled_false_in_the_query_string() {
    let nacos = FakeNacos::start(
        Generation::V1x,
        Some(("nacos", "p@ss w'rd&$x")),
        &[SERVICE],
        Fault::None,
    );
    let run = run_hook(&nacos_policy(&nacos.url(), "v1", AUTH), &CREDS);
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("nacos instance disabled"),
        "{}",
        run.stderr
    );
    let reqs = nacos.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(
        (reqs[0].method.as_str(), reqs[0].path.as_str()),
        ("POST", "/nacos/v1/auth/login")
    );
    assert_eq!(
        reqs[0].form.get("password").map(String::as_str),
        Some("p@ss w'rd&$x"),
        "credentials survive quoting"
    );
    let put = &reqs[1];
    assert_eq!(
        (put.method.as_str(), put.path.as_str()),
        ("PUT", "/nacos/v1/ns/instance")
    );
    for (k, v) in [
        ("serviceName", "customer-services"),
        ("groupName", "kevin-app"),
        ("namespaceId", "online"),
        ("clusterName", "DEFAULT"),
        ("ip", "10.1.2.3"),
        ("port", "9810"),
        ("ephemeral", "true"),
        ("enabled", "false"),
        ("accessToken", FakeNacos::token()),
    ] {
        assert_eq!(put.query.get(k).map(String::as_str), Some(v), "{k}");
    }
    assert_eq!(
        nacos.disabled(),
        ["online/kevin-app@@customer-services#10.1.2.3#9810"]
    );
}

#[test]
fn v2_and_v3_send_a_form_body_and_read_the_json_envelope() {
    for (generation, api, path) in [
        (Generation::V2x, "v2", "/nacos/v2/ns/instance"),
        (Generation::V3x, "v3", "/nacos/v3/admin/ns/instance"),
    ] {
        let nacos = FakeNacos::start(
            generation,
            Some(("nacos", "p@ss w'rd&$x")),
            &[SERVICE],
            Fault::None,
        );
        let run = run_hook(&nacos_policy(&nacos.url(), api, AUTH), &CREDS);
        assert!(
            run.stderr.contains("nacos instance disabled"),
            "{api}: {}",
            run.stderr
        );
        let reqs = nacos.requests();
        let expected_login = if api == "v3" {
            "/nacos/v3/auth/user/login"
        } else {
            "/nacos/v1/auth/login"
        };
        assert_eq!(reqs[0].path, expected_login);
        let put = &reqs[1];
        assert_eq!(put.path, path);
        assert_eq!(put.form.get("ip").map(String::as_str), Some("10.1.2.3"));
        assert_eq!(put.form.get("enabled").map(String::as_str), Some("false"));
        assert_eq!(
            put.query.get("accessToken").map(String::as_str),
            Some(FakeNacos::token())
        );
        assert_eq!(nacos.disabled().len(), 1, "{api}");
    }
}

#[test]
fn without_auth_no_login_is_attempted() {
    let nacos = FakeNacos::start(Generation::V2x, None, &[SERVICE], Fault::None);
    let run = run_hook(
        &nacos_policy(&nacos.url(), "v2", ""),
        &[("POD_IP", "10.9.9.9")],
    );
    assert!(run.stderr.contains("disabled"), "{}", run.stderr);
    let reqs = nacos.requests();
    assert_eq!(reqs.len(), 1);
    assert!(!reqs[0].query.contains_key("accessToken"));
}

#[test]
fn bad_credentials_are_reported_after_the_drain() {
    let nacos = FakeNacos::start(
        Generation::V1x,
        Some(("nacos", "right")),
        &[SERVICE],
        Fault::None,
    );
    let run = run_hook(&nacos_policy(&nacos.url(), "v1", AUTH), &CREDS);
    assert_eq!(run.status, 1, "failure is reported, after the drain");
    assert!(
        run.stderr.contains("nacos login failed: unknown user!"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("deregistration failed: user not found! HTTP_STATUS=403"),
        "{}",
        run.stderr
    );
    assert!(nacos.disabled().is_empty());
}

#[test]
fn a_nacos_3_server_refusing_v1_is_reported_with_its_status() {
    let nacos = FakeNacos::start(Generation::V3x, None, &[SERVICE], Fault::None);
    let run = run_hook(
        &nacos_policy(&nacos.url(), "v1", ""),
        &[("POD_IP", "10.1.2.3")],
    );
    assert_eq!(run.status, 1);
    assert!(run.stderr.contains("HTTP_STATUS=410"), "{}", run.stderr);
}

#[test]
fn an_unreachable_or_hanging_server_is_bounded_by_the_timeout_and_the_sleep_still_runs() {
    // Connection refused: a port nothing listens on.
    let closed = closed_addr();
    let policy = nacos_policy(&format!("http://{closed}"), "v1", "")
        .replace("sleepSeconds: 0", "sleepSeconds: 1");
    let run = run_hook(&policy, &[("POD_IP", "10.1.2.3")]);
    assert_eq!(run.status, 1);
    assert!(
        run.stderr.contains("deregistration failed"),
        "{}",
        run.stderr
    );
    assert!(run.elapsed >= Duration::from_secs(1), "the drain sleep ran");

    let hanging = FakeNacos::start(
        Generation::V1x,
        Some(("nacos", "x")),
        &[SERVICE],
        Fault::Hang,
    );
    let policy = nacos_policy(&hanging.url(), "v1", AUTH);
    let run = run_hook(&policy, &CREDS);
    assert_eq!(run.status, 1);
    // Login and update are each bounded by timeoutSeconds (1 s): the budget podgrace counted.
    assert!(
        run.elapsed < Duration::from_millis(2900),
        "took {:?}",
        run.elapsed
    );
    assert!(run.stderr.contains("login failed"), "{}", run.stderr);
}

#[test]
fn an_empty_pod_ip_skips_the_call_with_a_message() {
    let nacos = FakeNacos::start(Generation::V1x, None, &[SERVICE], Fault::None);
    let run = run_hook(&nacos_policy(&nacos.url(), "v1", ""), &[]);
    assert_eq!(run.status, 1);
    assert!(run.stderr.contains("POD_IP is empty"), "{}", run.stderr);
    assert!(nacos.requests().is_empty());
}

#[test]
fn hostile_policy_values_are_sent_verbatim_and_never_executed() {
    let nacos = FakeNacos::start(
        Generation::V1x,
        None,
        &["g'$(touch /tmp/pwned)@@s v`id`;"],
        Fault::None,
    );
    let policy = format!(
        "preStop:\n  action: nacos\n  sleepSeconds: 0\n  nacos:\n    server: {}\n    groupName: \"g'$(touch /tmp/pwned)\"\n    serviceName: \"s v`id`;\"\n    timeoutSeconds: 1\n",
        nacos.url()
    );
    let run = run_hook(&policy, &[("POD_IP", "10.1.2.3")]);
    assert_eq!(run.status, 0);
    assert!(run.stderr.contains("disabled"), "{}", run.stderr);
    let put = &nacos.requests()[0];
    assert_eq!(
        put.query.get("groupName").map(String::as_str),
        Some("g'$(touch /tmp/pwned)")
    );
    assert_eq!(
        put.query.get("serviceName").map(String::as_str),
        Some("s v`id`;")
    );
}
