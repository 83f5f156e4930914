//! Shared helpers for the integration tests: loading fixtures, running the engine on raw JSON the
//! way the API server's object arrives, and applying patches to that raw JSON.
#![allow(dead_code)]

pub mod admission;
pub mod binary;
pub mod child;
pub mod https;
pub mod kube_api;
pub mod kube_objects;
pub mod nacos_server;
pub mod netns;
pub mod policy_watch;
pub mod tiny_http;
pub mod wait;

use std::io::Write as _;
use std::net::SocketAddr;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Output;

use podgrace::engine::{self, ClusterInfo, Mutation, PodView};
use podgrace::policy::{EffectivePolicy, Origin, PolicyLayer, load_layer};
use serde_json::Value;

/// Path of a file under tests/fixtures.
pub fn fixture(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

/// A fixture file's text.
pub fn read_fixture(rel: &str) -> String {
    std::fs::read_to_string(fixture(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// The `request.object` of an AdmissionReview fixture, as raw JSON.
pub fn review_object(rel: &str) -> Value {
    let review: Value = serde_json::from_str(&read_fixture(rel)).unwrap();
    review["request"]["object"].clone()
}

/// A raw pod from YAML.
pub fn pod_json(yaml: &str) -> Value {
    podgrace::protocols::yaml::from_str(yaml).unwrap()
}

/// A validated policy layer from YAML.
pub fn layer(yaml: &str) -> PolicyLayer {
    load_layer(yaml, Origin::hashed("test", yaml)).unwrap_or_else(|e| panic!("{e}"))
}

/// The effective policy of a namespace with the given policy (builtin + it).
pub fn policy(yaml: &str) -> EffectivePolicy {
    EffectivePolicy::new(None, Some(&layer(yaml)))
}

/// Runs the engine on raw pod JSON.
pub fn mutate_raw(raw: &Value, policy: &EffectivePolicy, cluster: &ClusterInfo) -> Mutation {
    let pod = PodView::from_value(raw.clone()).expect("test pod decodes");
    engine::mutation_for(&pod, policy, cluster).expect("engine succeeds")
}

/// Applies the mutation's patch to a copy of `raw`.
pub fn apply(raw: &Value, m: &Mutation) -> Value {
    let mut out = raw.clone();
    json_patch::patch(&mut out, &m.patch.0).unwrap_or_else(|e| {
        panic!(
            "patch does not apply: {e}\npatch: {}\npod: {raw:#}",
            serde_json::to_string_pretty(&m.patch).unwrap()
        )
    });
    out
}

/// The patch's operations as JSON, for assertions.
pub fn ops(m: &Mutation) -> Vec<Value> {
    serde_json::to_value(&m.patch)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

/// Every path the patch touches.
pub fn paths(m: &Mutation) -> Vec<String> {
    ops(m)
        .iter()
        .map(|o| o["path"].as_str().unwrap().to_owned())
        .collect()
}

/// Checks that every operation is an `add` on a member podgrace owns, and that members which
/// existed in the original are only ones podgrace may replace. Returns the offending paths.
pub fn foreign_operations(raw: &Value, m: &Mutation) -> Vec<String> {
    let mut bad = Vec::new();
    for op in ops(m) {
        let path = op["path"].as_str().unwrap().to_owned();
        if op["op"] != "add" {
            bad.push(format!("{} {path}", op["op"]));
            continue;
        }
        let tokens: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let exists = raw.pointer(&path).is_some_and(|v| !v.is_null());
        // A native sidecar is owned like a container; a plain init container never is.
        let sidecar = |i: &str| {
            raw.pointer(&format!("/spec/initContainers/{i}/restartPolicy"))
                .is_some_and(|p| p == "Always")
        };
        let tokens: Vec<&str> = match tokens.as_slice() {
            ["spec", "initContainers", i, rest @ ..] if !rest.is_empty() && sidecar(i) => {
                ["spec", "containers", i]
                    .into_iter()
                    .chain(rest.iter().copied())
                    .collect()
            }
            _ => tokens,
        };
        let owned = match tokens.as_slice() {
            ["metadata"] => !exists,
            ["metadata", "annotations"] => !exists,
            ["metadata", "annotations", key] => key.starts_with("podgrace.io~1"),
            ["spec", "terminationGracePeriodSeconds"] => true,
            ["spec", "containers", _, "lifecycle"] => !exists,
            ["spec", "containers", _, "lifecycle", "preStop"] => true,
            [
                "spec",
                "containers",
                _,
                "env" | "readinessProbe" | "startupProbe" | "volumeMounts",
            ] => !exists,
            ["spec", "containers", _, "env" | "volumeMounts", "-"] => true,
            ["spec", "initContainers" | "volumes"] => !exists,
            ["spec", "initContainers" | "volumes", "-"] => true,
            _ => false,
        };
        if !owned {
            bad.push(path);
        }
    }
    bad
}

/// The drain sleep a store's policy gives a plain container in `namespace`: a one-number view of
/// which policy is in effect.
pub fn sleep_of(store: &dyn podgrace::store::PolicyStore, namespace: &str) -> u32 {
    store
        .policy_for(namespace)
        .resolve(None, "app", "app:1", None)
        .unwrap()
        .policy
        .sleep
}

/// The podgrace binary cargo built for the tests.
pub const BIN: &str = env!("CARGO_BIN_EXE_podgrace");

/// The real binary with `args`, waited for with a deadline.
pub fn podgrace(args: &[&str]) -> Output {
    podgrace_with_input(args, None)
}

/// The real binary with `args` and `input` on its standard input.
pub fn podgrace_with_input(args: &[&str], input: Option<&[u8]>) -> Output {
    child::output_within(child::command(BIN).args(args), input, child::SHORT)
}

/// A process's output as text.
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A temporary `.yaml` file holding `content`.
pub fn tmp(content: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::Builder::new().suffix(".yaml").tempfile().unwrap();
    f.write_all(content.as_bytes()).unwrap();
    f
}

/// Writes a ConfigMap or Secret volume revision the kubelet way: a new directory `revision` in
/// `dir` holding `files` (name, content), a `..data_tmp` symlink to it renamed over `..data`
/// (atomic), and each file name a symlink into `..data`.
pub fn kubelet_write(dir: &Path, revision: &str, files: &[(&str, &str)]) {
    let rev = dir.join(revision);
    std::fs::create_dir(&rev).unwrap();
    for (name, content) in files {
        std::fs::write(rev.join(name), content).unwrap();
    }
    let tmp = dir.join("..data_tmp");
    symlink(revision, &tmp).unwrap();
    std::fs::rename(&tmp, dir.join("..data")).unwrap();
    for (name, _) in files {
        let link = dir.join(name);
        if std::fs::symlink_metadata(&link).is_err() {
            symlink(format!("..data/{name}"), &link).unwrap();
        }
    }
}

/// A loopback address nothing listens on (bound a moment ago, then released): connections to it
/// are refused, and a server the test starts can listen on it.
pub fn closed_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// The port of a [`closed_addr`].
pub fn free_port() -> u16 {
    closed_addr().port()
}
