//! Property tests over generated pods (with fields unknown to k8s-openapi, existing hooks, env,
//! probes, annotations, scheduling members, volumes of every common source) and generated
//! policies: the guarantees of the engine hold for all of them. The engine reads pods through
//! `PodView`, as `/mutate` and the CLI do.

mod common;

use std::collections::HashSet;

use common::*;
use k8s_openapi::api::core::v1::Pod;
use podgrace::engine::{self, ClusterInfo, PodView};
use podgrace::policy::EffectivePolicy;
use podgrace::protocols::kube_version::KubeVersion;
use proptest::prelude::*;
use serde_json::{Value, json};

fn image() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "registry.example/app:1",
        "nginx:1.27",
        "gcr.io/distroless/java21",
        "docker.io/istio/proxyv2:1.23",
        "fluent/fluent-bit:3",
    ])
    .prop_map(str::to_owned)
}

fn ports() -> impl Strategy<Value = Option<Value>> {
    prop::option::of(prop::collection::vec(
        (
            1i64..65535,
            prop::sample::select(vec![None, Some("TCP"), Some("UDP")]),
            any::<bool>(),
        ),
        0..3,
    ))
    .prop_map(|ports| {
        ports.map(|ps| {
            let mut seen = HashSet::new();
            Value::Array(
                ps.into_iter()
                    .filter(|(n, proto, _)| seen.insert((*n, proto.unwrap_or("TCP"))))
                    .enumerate()
                    .map(|(i, (n, proto, named))| {
                        let mut p = json!({"containerPort": n});
                        if let Some(proto) = proto {
                            p["protocol"] = json!(proto);
                        }
                        if named {
                            p["name"] = json!(format!("p{i}"));
                        }
                        p
                    })
                    .collect(),
            )
        })
    })
}

fn lifecycle() -> impl Strategy<Value = Option<Value>> {
    prop::sample::select(vec![
        None,
        Some(json!({})),
        Some(json!({"preStop": {"sleep": {"seconds": 5}}})),
        Some(json!({"preStop": {"exec": {"command": ["/bin/sh", "-c", "sleep 40"]}}})),
        Some(json!({"preStop": {"httpGet": {"path": "/drain", "port": 8080}}})),
        Some(json!({"preStop": {"tcpSocket": {"port": 8080}}})),
        Some(
            json!({"preStop": {"exec": {"command": ["/bin/sh", "-c", "curl -s --connect-timeout 10 -m 20 http://nacos/x && sleep 35"]}}}),
        ),
        Some(
            json!({"preStop": {"exec": {"command": ["sh", "-c", "wget -T 5 -O- http://x; timeout 12 /drain"]}}}),
        ),
        Some(json!({"preStop": {"exec": {"command": ["/opt/offline.sh"]}}})),
        Some(json!({"preStop": {"exec": {"command": ["sleep", "infinity"]}}})),
        Some(json!({"postStart": {"exec": {"command": ["touch", "/tmp/x"]}}})),
        Some(json!({"futureLifecycleField": "x"})),
        Some(Value::Null),
    ])
}

fn env() -> impl Strategy<Value = Option<Value>> {
    prop::sample::select(vec![
        None,
        Some(json!([])),
        Some(json!([{"name": "POD_IP", "value": "x"}])),
        Some(json!([{"name": "JAVA_OPTS", "value": "-Xmx1g", "futureEnvField": 1}])),
        Some(
            json!([{"name": "SERVER_SHUTDOWN", "value": "immediate"}, {"name": "POD_NAME", "value": "n"}]),
        ),
    ])
}

fn probe() -> impl Strategy<Value = Option<Value>> {
    prop::sample::select(vec![None, Some(json!({"tcpSocket": {"port": 8080}}))])
}

/// Liveness probes of every handler, patient or not, and one the API server would reject (two
/// handlers), which podgrace must not copy.
fn liveness() -> impl Strategy<Value = Option<Value>> {
    prop::sample::select(vec![
        None,
        Some(json!({"tcpSocket": {"port": 8080}})),
        Some(
            json!({"httpGet": {"path": "/actuator/health/liveness", "port": 8080}, "initialDelaySeconds": 30, "timeoutSeconds": 3}),
        ),
        Some(json!({"httpGet": {"path": "/actuator/health", "port": "p0"}, "periodSeconds": 2})),
        Some(
            json!({"exec": {"command": ["test", "-e", "/tmp/health"]}, "initialDelaySeconds": 5, "periodSeconds": 10}),
        ),
        Some(json!({"grpc": {"port": 7070}, "failureThreshold": 1})),
        Some(json!({"tcpSocket": {"port": 7800}, "initialDelaySeconds": 600, "periodSeconds": 5})),
        Some(json!({"tcpSocket": {"port": 8080}, "exec": {"command": ["true"]}})),
    ])
}

fn startup_probe() -> impl Strategy<Value = Option<Value>> {
    prop::sample::select(vec![
        None,
        None,
        Some(json!({"tcpSocket": {"port": 8080}, "failureThreshold": 3, "futureProbeField": 1})),
    ])
}

fn name() -> impl Strategy<Value = Option<String>> {
    // Mostly short names; sometimes the longest the API allows.
    prop::sample::select(vec![None, None, None, Some("n".repeat(61))])
}

fn container() -> impl Strategy<Value = Value> {
    (
        image(),
        ports(),
        lifecycle(),
        env(),
        probe(),
        liveness(),
        startup_probe(),
        any::<bool>(),
        any::<bool>(),
        prop::sample::select(vec![
            None,
            Some(json!([{"name": "data", "mountPath": "/data"}])),
            Some(json!([{"name": "x", "mountPath": "/podgrace-helper"}])),
        ]),
    )
        .prop_map(
            |(
                image,
                ports,
                lifecycle,
                env,
                readiness,
                liveness,
                startup,
                shell,
                unknown,
                mounts,
            )| {
                let mut c = json!({"image": image});
                let mut set = |k: &str, v: Option<Value>| {
                    if let Some(v) = v {
                        c[k] = v;
                    }
                };
                set("ports", ports);
                set("lifecycle", lifecycle);
                set("env", env);
                set("readinessProbe", readiness);
                set("livenessProbe", liveness);
                set("startupProbe", startup);
                set("volumeMounts", mounts);
                if shell {
                    c["command"] = json!(["/bin/sh", "-c", "java -jar app.jar"]);
                }
                if unknown {
                    c["fieldFromTheFuture"] = json!({"a": [1, 2]});
                }
                c
            },
        )
}

fn pod() -> impl Strategy<Value = Value> {
    (
        prop::collection::vec((container(), name()), 1..4),
        prop::option::of(prop_oneof![0i64..12, 0i64..700]),
        prop::sample::select(vec![None, Some("Always"), Some("Never")]),
        prop::sample::select(vec![
            None,
            Some(json!({})),
            Some(json!({"team": "a"})),
            Some(json!({"podgrace.io/sleep-seconds": "3", "podgrace.io/readiness": "disabled"})),
            Some(json!({"podgrace.io/action": "none"})),
            Some(json!({"podgrace.io/injected": "stale: x"})),
        ]),
        prop::sample::select(vec![None, Some(json!({"framework": "spring-boot"})), Some(json!({"app": "shop"}))]),
        any::<bool>(),
        prop::sample::select(vec![
            None,
            Some(json!({"volumes": [{"name": "data", "emptyDir": {}}], "initContainers": [{"name": "migrate", "image": "m"}]})),
            Some(json!({"volumes": [{"name": "podgrace-helper", "configMap": {"name": "x"}}]})),
            // podgrace's own helper, already injected (a reinvocation).
            Some(json!({"volumes": [{"name": "podgrace-helper", "emptyDir": {}}], "initContainers": [{"name": "podgrace-helper", "image": "podgrace"}]})),
            // Native sidecars (Istio's native mode, a log shipper) before a plain init container.
            Some(json!({"initContainers": [
                {"name": "istio-proxy", "image": "docker.io/istio/proxyv2:1.27", "restartPolicy": "Always", "ports": [{"containerPort": 15090}]},
                {"name": "log", "image": "fluent/fluent-bit:3", "restartPolicy": "Always", "lifecycle": {"preStop": {"exec": {"command": ["sleep", "3"]}}}},
                {"name": "migrate", "image": "m"}
            ]})),
            Some(json!({"os": {"name": "windows"}, "initContainers": [{"name": "proxy", "image": "p", "restartPolicy": "Always", "ports": [{"containerPort": 80, "name": "http"}]}]})),
            // What the API server adds, and what schedulers and security read.
            Some(json!({
                "volumes": [{"name": "kube-api-access-x", "projected": {"sources": [{"serviceAccountToken": {"path": "token"}}, {"configMap": {"name": "kube-root-ca.crt"}}]}},
                            {"name": "cache", "emptyDir": {"sizeLimit": "1Gi"}}, {"name": "conf", "secret": {"secretName": "s"}}],
                "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}],
                "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}]}}},
                "securityContext": {"runAsNonRoot": true}, "serviceAccountName": "app", "dnsPolicy": "ClusterFirst",
                "nodeSelector": {"pool": "web"}, "priority": 0, "enableServiceLinks": false,
                "initContainers": [{"name": "migrate", "image": "m"}]
            })),
        ]),
    )
        .prop_map(|(containers, grace, restart, annotations, labels, with_istio, extra_spec)| {
            let mut containers: Vec<Value> = containers
                .into_iter()
                .enumerate()
                .map(|(i, (mut c, long))| {
                    c["name"] = json!(format!("c{i}{}", long.unwrap_or_default()));
                    c
                })
                .collect();
            if with_istio {
                containers.push(json!({"name": "istio-proxy", "image": "docker.io/istio/proxyv2:1.23"}));
            }
            let mut meta = json!({"name": "p", "namespace": "ns", "futureMeta": true});
            if let Some(a) = annotations {
                meta["annotations"] = a;
            }
            if let Some(l) = labels {
                meta["labels"] = l;
            }
            let mut spec = json!({"containers": containers, "futureSpec": {"x": 1}});
            if let Some(g) = grace {
                spec["terminationGracePeriodSeconds"] = json!(g);
            }
            if let Some(r) = restart {
                spec["restartPolicy"] = json!(r);
            }
            if let Some(Value::Object(extra)) = extra_spec {
                for (k, v) in extra {
                    spec[k] = v;
                }
            }
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec, "status": {}})
        })
}

fn policy_yaml() -> impl Strategy<Value = String> {
    (
        (
            prop::sample::select(vec!["sleep", "none", "nginx", "nacos", "exec"]),
            0u32..60,
            prop::sample::select(vec!["native", "exec", "auto"]),
            prop::sample::select(vec!["keep", "replace"]),
            prop::sample::select(vec!["none", "inject"]),
        ),
        0u32..120,
        0u32..10,
        prop::sample::select(vec!["raise", "keep"]),
        prop::sample::select(vec!["readiness: {inject: false}", "readiness: {handler: tcp}", "readiness: {handler: http, path: /ready, port: 8080}", ""]),
        prop::sample::select(vec!["", "presets: [spring-boot]", "env: {podIP: '', extra: [{name: POD_NAME, fieldPath: metadata.name}]}"]),
        prop::sample::select(vec!["", "rules:\n- match: {image: 'fluent-bit*'}\n  set: {preStop: {action: none}, shutdownSeconds: 2}\n", "rules:\n- match: {podLabels: {framework: spring-boot}}\n  set: {presets: [spring-boot]}\n"]),
        any::<bool>(),
        prop::sample::select(vec![
            "",
            "startup: {maxSeconds: 120}",
            "startup: {inject: true, maxSeconds: 90}",
            "startup: {inject: true, maxSeconds: 300, periodSeconds: 7, handler: readiness}",
        ]),
        (
            prop::sample::select(vec!["skip", "inject"]),
            any::<bool>(),
            prop::sample::select(vec!["auto", "signal", "quit"]),
            0u32..60,
            prop::sample::select(vec!["", "  nacos: {port: 8080}\n"]),
        ),
    )
        .prop_map(|((action, sleep, handler, existing, helper), shutdown, buffer, grace, readiness, extra, rules, auth, startup, (sidecars, serving_only, nginx_stop, unknown, nacos_port))| {
            let auth = if auth { "    auth: {secretName: nacos-auth}\n" } else { "" };
            format!(
                "preStop:\n  action: {action}\n  sleepSeconds: {sleep}\n  sleepHandler: {handler}\n  existing: {existing}\n  helper: {helper}\n  nginxStop: {nginx_stop}\n  unknownHookSeconds: {unknown}\n  exec: {{command: [/app/drain], durationSeconds: 7}}\n  nacos:\n    server: http://nacos:8848\n{auth}shutdownSeconds: {shutdown}\nbufferSeconds: {buffer}\ngracePeriod: {grace}\nsidecars: {sidecars}\nservingOnly: {serving_only}\n{readiness}\n{startup}\n{extra}\n{rules}"
            ).replace("  nacos:\n    server: http://nacos:8848\n", &format!("  nacos:\n    server: http://nacos:8848\n{}", nacos_port.replace("  nacos: {port: 8080}\n", "    port: 8080\n")))
        })
}

fn version() -> impl Strategy<Value = Option<KubeVersion>> {
    prop::sample::select(vec![
        None,
        Some(KubeVersion::new(1, 29)),
        Some(KubeVersion::new(1, 36)),
    ])
}

fn handler_count(h: &Value) -> usize {
    ["exec", "httpGet", "tcpSocket", "sleep"]
        .iter()
        .filter(|k| h.get(**k).is_some_and(|v| !v.is_null()))
        .count()
}

/// A probe's handler members (exec, httpGet, tcpSocket, grpc).
fn probe_handler(p: &Value) -> serde_json::Map<String, Value> {
    ["exec", "httpGet", "tcpSocket", "grpc"]
        .iter()
        .filter_map(|k| {
            p.get(*k)
                .filter(|v| !v.is_null())
                .map(|v| (k.to_string(), v.clone()))
        })
        .collect()
}

/// `initialDelaySeconds + failureThreshold × periodSeconds`, with the API server's defaults.
fn allowance(p: &Value) -> i64 {
    let field = |k: &str, d: i64| p[k].as_i64().filter(|v| *v > 0).unwrap_or(d);
    p["initialDelaySeconds"].as_i64().unwrap_or(0).max(0)
        + field("failureThreshold", 3) * field("periodSeconds", 10)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn engine_guarantees_hold(raw in pod(), yaml in policy_yaml(), kube_version in version()) {
        let eff = EffectivePolicy::new(None, Some(&layer(&yaml)));
        let cluster = ClusterInfo { kube_version };
        let view = PodView::from_value(raw.clone()).unwrap();
        let m = engine::mutation_for(&view, &eff, &cluster).unwrap();

        // Only adds, only on members podgrace owns.
        let foreign = foreign_operations(&raw, &m);
        prop_assert!(foreign.is_empty(), "foreign operations {:?}", foreign);

        // Applies to the raw original, keeping unknown fields.
        let mut out = raw.clone();
        json_patch::patch(&mut out, &m.patch.0).map_err(|e| TestCaseError::fail(format!("{e}")))?;
        prop_assert_eq!(&out["spec"]["futureSpec"], &raw["spec"]["futureSpec"]);
        prop_assert_eq!(&out["metadata"]["futureMeta"], &raw["metadata"]["futureMeta"]);

        // The result is a Pod, with at most one handler per hook and no duplicate env names.
        let result: Pod = serde_json::from_value(out.clone()).map_err(|e| TestCaseError::fail(format!("{e}")))?;
        for (c, orig) in out["spec"]["containers"].as_array().unwrap().iter().zip(raw["spec"]["containers"].as_array().unwrap()) {
            let hook = &c["lifecycle"]["preStop"];
            if !hook.is_null() {
                prop_assert_eq!(handler_count(hook), 1, "{}", hook);
            }
            let names: Vec<&str> = c["env"].as_array().map(|e| e.iter().filter_map(|v| v["name"].as_str()).collect()).unwrap_or_default();
            let unique: HashSet<&&str> = names.iter().collect();
            prop_assert_eq!(unique.len(), names.len(), "duplicate env in {:?}", names);
            if c["name"] == "istio-proxy" {
                prop_assert_eq!(c, orig);
            }
            prop_assert!(c.get("livenessProbe") == orig.get("livenessProbe"), "liveness never injected");
            // A startupProbe: the user's never replaced; one podgrace adds holds back a liveness
            // probe, runs its check (or the readiness check podgrace added), is one the API
            // server accepts, and never gives up sooner than liveness would have.
            if orig.get("startupProbe").is_some() {
                prop_assert_eq!(c.get("startupProbe"), orig.get("startupProbe"));
            } else if let Some(startup) = c.get("startupProbe") {
                let live = &orig["livenessProbe"];
                prop_assert!(!live.is_null(), "startupProbe without liveness: {}", c);
                let handler = probe_handler(startup);
                prop_assert_eq!(handler.len(), 1, "{}", startup);
                let added_readiness = orig.get("readinessProbe").is_none()
                    && c.get("readinessProbe").is_some_and(|r| probe_handler(r) == handler);
                prop_assert!(handler == probe_handler(live) || added_readiness, "foreign check {}", startup);
                prop_assert_eq!(&startup["successThreshold"], &json!(1));
                let (period, failures) = (startup["periodSeconds"].as_i64().unwrap(), startup["failureThreshold"].as_i64().unwrap());
                prop_assert!(period >= 1 && failures >= 1, "{}", startup);
                prop_assert!(period * failures > allowance(live), "startupProbe {} gives up no later than liveness {}", startup, live);
            }
        }

        // The API server's own rules hold: a native sleep no longer than the grace period,
        // probes and hooks only on containers and native sidecars, probes on declared ports.
        let grace = out["spec"]["terminationGracePeriodSeconds"].as_i64().unwrap_or(30);
        let sidecars = out["spec"]["initContainers"].as_array().cloned().unwrap_or_default();
        let all: Vec<&Value> = out["spec"]["containers"].as_array().unwrap().iter().chain(sidecars.iter()).collect();
        let raw_init = raw["spec"]["initContainers"].as_array().cloned().unwrap_or_default();
        for c in &all {
            if let Some(s) = c["lifecycle"]["preStop"]["sleep"]["seconds"].as_i64() {
                let own = raw["spec"]["containers"].as_array().unwrap().iter().chain(raw_init.iter())
                    .any(|o| o["name"] == c["name"] && o["lifecycle"]["preStop"]["sleep"]["seconds"].as_i64() == Some(s));
                prop_assert!(own || s <= grace, "sleep {} > grace {}", s, grace);
            }
            let had_probe = raw["spec"]["containers"].as_array().unwrap().iter().chain(raw_init.iter())
                .any(|o| o["name"] == c["name"] && !o["readinessProbe"].is_null());
            if let Some(port) = c["readinessProbe"]["tcpSocket"]["port"].as_i64().or(c["readinessProbe"]["httpGet"]["port"].as_i64()).filter(|_| !had_probe) {
                let declared = c["ports"].as_array().into_iter().flatten().any(|p| p["containerPort"] == port);
                prop_assert!(declared, "probe on undeclared port {} of {}", port, c["name"]);
            }
        }
        for (init, orig) in sidecars.iter().zip(raw_init.iter()) {
            if init["restartPolicy"] != "Always" {
                prop_assert_eq!(init, orig, "plain init containers are never touched");
            }
        }

        // The grace period never decreases.
        let before = view.spec.as_ref().unwrap().termination_grace_period_seconds.unwrap_or(30);
        let after = result.spec.as_ref().unwrap().termination_grace_period_seconds.unwrap_or(30);
        prop_assert!(after >= before);

        // Warnings fit the API's recommendation, their advice whole.
        for w in &m.warnings {
            prop_assert!(w.chars().count() < 120, "{}", w);
            prop_assert!(!w.ends_with('…'), "{}", w);
        }

        // Idempotent: the engine on its own output changes nothing.
        let again = engine::mutation_for(&PodView::from_value(out.clone()).unwrap(), &eff, &cluster).unwrap();
        prop_assert!(again.patch.0.is_empty(), "second run: {}", serde_json::to_string(&again.patch).unwrap());
    }
}
