//! The engine: a pure function from a Pod (as the API server sent it) and the effective policy of
//! its namespace to an RFC 6902 patch, warnings for the user and a record of what was done.
//!
//! Guarantees (checked by property tests): the patch applies to the original JSON and only adds
//! members podgrace owns; the result is a valid Pod; running the engine on its own output yields
//! an empty patch (so `reinvocationPolicy: IfNeeded` is safe); the grace period never decreases;
//! the output depends only on the inputs.

pub mod env;
pub mod grace;
pub mod helper;
pub mod nacos;
pub mod patch;
pub mod presets;
pub mod prestop;
pub mod probes;
pub mod record;
pub mod shell;
pub mod warnings;

use k8s_openapi::api::core::v1::{Container, LifecycleHandler, Pod};
use serde_json::{Value, json};

use crate::kube_version::KubeVersion;
use crate::policy::annotations;
use crate::policy::effective::is_nginx_image;
use crate::policy::spec::{ExistingHook, HelperMode};
use crate::policy::{ContainerPolicy, EffectivePolicy, Resolution};
use patch::PatchBuilder;
use record::{ContainerRecord, Injection, Record};

/// What the engine knows about the cluster.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Context {
    /// The API server's version, when known (drives the `auto` sleep handler).
    pub kube_version: Option<KubeVersion>,
}

/// The engine's answer.
#[derive(Clone, Debug, Default)]
pub struct Mutation {
    /// The JSON patch (empty when nothing is to be changed).
    pub patch: json_patch::Patch,
    /// Warnings for the user (each at most 120 characters).
    pub warnings: Vec<String>,
    /// What was done and why.
    pub record: Record,
}

/// Failures of the engine itself (never caused by user input).
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// A Kubernetes object could not be turned into JSON.
    #[error("cannot serialize {what}: {source}")]
    Serialize {
        /// What was being serialized.
        what: &'static str,
        /// The cause.
        source: serde_json::Error,
    },
}

fn to_json<T: serde::Serialize>(what: &'static str, value: &T) -> Result<Value, EngineError> {
    serde_json::to_value(value).map_err(|source| EngineError::Serialize { what, source })
}

/// Computes the mutation of `pod` under `policy`.
pub fn mutate(pod: &Pod, policy: &EffectivePolicy, ctx: &Context) -> Result<Mutation, EngineError> {
    let mut m = Mutation {
        record: Record {
            policy: policy.description().to_owned(),
            ..Default::default()
        },
        ..Default::default()
    };
    let overrides = annotations::read(&pod.metadata);
    for e in &overrides.errors {
        m.warnings.push(warnings::pod(&format!("ignored {e}")));
    }
    if overrides.opt_out {
        m.record.skipped = Some(format!("opted out ({})", annotations::INJECT));
        return Ok(m);
    }
    let Some(spec) = &pod.spec else {
        m.record.skipped = Some("the pod has no spec".to_owned());
        return Ok(m);
    };
    if let Some(rp @ ("Never" | "OnFailure")) = spec.restart_policy.as_deref() {
        // Run-to-completion pods serve no traffic; a drain sleep would only delay them.
        m.record.skipped = Some(format!("restartPolicy {rp} (batch pod)"));
        return Ok(m);
    }

    let mut b = PatchBuilder::default();
    let helper_pod = helper::pod_state(spec);
    let mut helper_used = false;
    let mut budgets = Vec::new();
    let mut kept_hooks = Vec::new();
    for (index, c) in spec.containers.iter().enumerate() {
        if !policy.selects(&c.name) {
            continue;
        }
        let image = c.image.as_deref().unwrap_or_default();
        let resolution = match policy.resolve(
            pod.metadata.labels.as_ref(),
            &c.name,
            image,
            overrides.layer(),
        ) {
            Ok(r) => r,
            Err(e) => {
                m.warnings.push(warnings::container(
                    &c.name,
                    &format!("policy incomplete, nothing injected: {e}"),
                ));
                continue;
            }
        };
        let (outcome, uses_helper) =
            mutate_container(pod, index, c, &resolution, ctx, &helper_pod, &mut b, &mut m)?;
        helper_used |= uses_helper;
        match outcome {
            HookOwnership::Owned(pre_stop) => budgets.push(grace::Budget {
                container: c.name.clone(),
                pre_stop,
                shutdown: resolution.policy.shutdown,
                buffer: resolution.policy.buffer,
            }),
            HookOwnership::Kept(estimate) => {
                kept_hooks.push((c.name.clone(), estimate, resolution.policy))
            }
        }
    }

    if helper_used && helper_pod == helper::PodState::Absent {
        let (image, pull_policy) = policy.helper_image();
        let init = to_json(
            "helper init container",
            &helper::init_container(image, pull_policy),
        )?;
        b.extend_list(
            ["spec", "initContainers"],
            spec.init_containers.is_some(),
            vec![init],
        );
        let volume = to_json("helper volume", &helper::volume())?;
        b.extend_list(["spec", "volumes"], spec.volumes.is_some(), vec![volume]);
        m.record.injections.push(Injection::Helper);
    }

    let decision = grace::decide(
        spec.termination_grace_period_seconds,
        &budgets,
        policy.grace_mode(),
    );
    m.record.grace = decision.summary();
    if let Some(new) = decision.raised_to {
        b.set(["spec", "terminationGracePeriodSeconds"], json!(new));
        m.record.injections.push(Injection::Grace);
        if let Some(summary) = &m.record.grace {
            m.warnings.push(warnings::pod(&format!(
                "terminationGracePeriodSeconds {summary}"
            )));
        }
    } else if let Some(largest) = decision
        .largest
        .as_ref()
        .filter(|l| l.total() > decision.current)
    {
        m.warnings.push(warnings::pod(&format!(
            "terminationGracePeriodSeconds {} < {} needed by {} (gracePeriod: keep)",
            decision.current,
            largest.total(),
            largest.container
        )));
    }
    for (name, estimate, p) in kept_hooks {
        let needed = i64::from(estimate) + i64::from(p.shutdown) + i64::from(p.buffer);
        if needed > decision.effective() {
            m.warnings.push(warnings::container(
                &name,
                &format!(
                    "kept preStop (~{estimate}s) + shutdown {}s + buffer {}s = {needed}s > grace period {}s",
                    p.shutdown,
                    p.buffer,
                    decision.effective()
                ),
            ));
        }
    }

    if !b.is_empty() {
        write_record(pod, &m.record, &decision, &mut b);
    }
    m.patch = b.finish();
    Ok(m)
}

/// Whether podgrace owns the container's preStop (and so its budget counts).
enum HookOwnership {
    /// podgrace's hook (or none at all): its duration in seconds.
    Owned(u32),
    /// The user's hook was kept: its estimated duration (0 when unknown).
    Kept(u32),
}

/// Mutates one container; returns who owns its hook and whether the hook runs the helper.
#[allow(clippy::too_many_arguments)] // one call site; the parameters are the engine's state
fn mutate_container(
    pod: &Pod,
    index: usize,
    c: &Container,
    resolution: &Resolution<'_>,
    ctx: &Context,
    helper_pod: &helper::PodState,
    b: &mut PatchBuilder,
    m: &mut Mutation,
) -> Result<(HookOwnership, bool), EngineError> {
    let idx = index.to_string();
    let at = |field: &'static str| ["spec", "containers", idx.as_str(), field];
    let image = c.image.as_deref().unwrap_or_default();
    let p: &ContainerPolicy = &resolution.policy;
    let mut rec = ContainerRecord {
        name: c.name.clone(),
        items: Vec::new(),
        rules: resolution.rules.iter().map(|r| r.to_string()).collect(),
    };
    let helper_mount = helper::container_state(c);
    let conflict = match (helper_pod, &helper_mount) {
        (helper::PodState::Conflict(why), _) | (_, Err(why)) => Some(why.clone()),
        _ => None,
    };
    if let (HelperMode::Inject, Some(why)) = (p.helper, &conflict) {
        m.warnings.push(warnings::container(
            &c.name,
            &format!("helper not injected ({why}); using a shell hook"),
        ));
    }
    let plan = prestop::plan(pod, c, p, ctx.kube_version, conflict.is_none());
    for w in &plan.warnings {
        m.warnings.push(warnings::container(&c.name, w));
    }

    // preStop: add when absent, replace only when the policy says so, never merge.
    let existing = c.lifecycle.as_ref().and_then(|l| l.pre_stop.as_ref());
    let mut hook_env = Vec::new();
    let mut installed: Option<&LifecycleHandler> = None;
    let ownership = match (existing, &plan.hook) {
        (None, None) => HookOwnership::Owned(0),
        // Already podgrace's (a reinvocation): nothing to write.
        (Some(e), Some(h)) if *e == h.handler => {
            hook_env.clone_from(&h.env);
            installed = Some(&h.handler);
            HookOwnership::Owned(h.seconds)
        }
        (Some(e), None) => HookOwnership::Kept(prestop::estimate_seconds(e).unwrap_or(0)),
        (Some(e), Some(_)) if p.existing == ExistingHook::Keep => {
            m.warnings.push(warnings::container(
                &c.name,
                "kept its own preStop hook (policy preStop.existing: keep)",
            ));
            HookOwnership::Kept(prestop::estimate_seconds(e).unwrap_or(0))
        }
        (_, Some(h)) => {
            let value = to_json("preStop handler", &h.handler)?;
            if c.lifecycle.is_some() {
                b.set(
                    ["spec", "containers", idx.as_str(), "lifecycle", "preStop"],
                    value,
                );
            } else {
                b.set(at("lifecycle"), json!({ "preStop": value }));
            }
            let replaced = if existing.is_some() {
                " (replaced)"
            } else {
                ""
            };
            rec.items.push(format!("preStop={}{replaced}", h.label));
            m.record.injections.push(Injection::PreStop);
            hook_env.clone_from(&h.env);
            installed = Some(&h.handler);
            HookOwnership::Owned(h.seconds)
        }
    };
    let final_hook = installed.or(existing);
    let uses_helper = plan.hook.as_ref().is_some_and(|h| h.needs_helper) && installed.is_some();
    if uses_helper && helper_mount == Ok(false) {
        let mount = to_json("helper mount", &helper::mount())?;
        b.extend_list(at("volumeMounts"), c.volume_mounts.is_some(), vec![mount]);
        rec.items.push("helper".to_owned());
    }

    // Environment: downward API, hook inputs, presets; never a name the container defines.
    let mut wanted = Vec::new();
    if let Some(name) = &p.pod_ip_env {
        wanted.push(env::field(name, "status.podIP"));
    }
    for var in &p.extra_env {
        wanted.push(env::field(&var.name, &var.field_path));
    }
    wanted.extend(hook_env);
    for preset in &p.presets {
        wanted.extend(presets::env(*preset, p.shutdown));
    }
    let added = env::missing(c, wanted);
    if !added.is_empty() {
        let names: Vec<&str> = added.iter().map(|v| v.name.as_str()).collect();
        rec.items.push(format!("env={}", names.join(",")));
        m.record.injections.push(Injection::Env);
        for preset in &p.presets {
            rec.items.push(format!("preset={}", preset.as_str()));
            m.record.injections.push(Injection::Preset);
        }
        let values = added
            .iter()
            .map(|v| to_json("env var", v))
            .collect::<Result<Vec<_>, _>>()?;
        b.extend_list(at("env"), c.env.is_some(), values);
    }

    // Readiness: only where missing.
    let mut has_readiness = c.readiness_probe.is_some();
    if let (false, Some(r)) = (has_readiness, &p.readiness) {
        match probes::readiness(c, r) {
            Ok((probe, label)) => {
                b.set(at("readinessProbe"), to_json("readiness probe", &probe)?);
                rec.items.push(format!("readiness={label}"));
                m.record.injections.push(Injection::Readiness);
                has_readiness = true;
            }
            Err(probes::NoProbe::NoPort) => m.warnings.push(warnings::container(
                &c.name,
                "no port to probe: no readiness probe added (declare a port or set readiness.port)",
            )),
            Err(probes::NoProbe::UnknownPortName(name)) => m.warnings.push(warnings::container(
                &c.name,
                &format!("readiness.port {name:?} is not a port of this container: no probe added"),
            )),
        }
    }

    // Traps podgrace can see but not fix.
    if let Some(w) = warnings::shell_pid1(c) {
        m.warnings.push(warnings::container(&c.name, &w));
    }
    if c.liveness_probe.is_some() && !has_readiness {
        m.warnings.push(warnings::container(
            &c.name,
            "liveness probe without readiness probe: traffic arrives before the app is ready",
        ));
    }
    if is_nginx_image(image) && !final_hook.is_some_and(prestop::quits_nginx) {
        m.warnings.push(warnings::container(
            &c.name,
            "nginx without `nginx -s quit` in preStop: SIGTERM makes nginx drop requests",
        ));
    }
    if let Some(h) = plan
        .hook
        .as_ref()
        .filter(|h| h.uses_shell && installed.is_some())
        && warnings::may_lack_shell(image)
    {
        m.warnings.push(warnings::container(
            &c.name,
            &format!(
                "preStop `{}` needs /bin/sh, which this image may lack (use helper: inject)",
                h.label
            ),
        ));
    }

    if !rec.items.is_empty() {
        m.record.containers.push(rec);
    }
    Ok((ownership, uses_helper))
}

fn write_record(pod: &Pod, record: &Record, decision: &grace::Decision, b: &mut PatchBuilder) {
    let existing = pod.metadata.annotations.as_ref();
    let mut entries = vec![(
        record::INJECTED,
        record::merge_injected(
            existing
                .and_then(|a| a.get(record::INJECTED))
                .map(String::as_str),
            &record.containers,
        ),
    )];
    // The first run's "30 → 70" is the informative one; only a new raise rewrites it.
    let grace_recorded = existing.is_some_and(|a| a.contains_key(record::GRACE));
    if let Some(g) = &record.grace
        && (decision.raised_to.is_some() || !grace_recorded)
    {
        entries.push((record::GRACE, g.clone()));
    }
    entries.push((record::POLICY, record.policy.clone()));
    entries.retain(|(k, v)| existing.and_then(|a| a.get(*k)) != Some(v));

    if pod.metadata == Default::default() {
        let map: serde_json::Map<String, Value> = entries
            .into_iter()
            .map(|(k, v)| (k.to_owned(), json!(v)))
            .collect();
        b.set(["metadata"], json!({ "annotations": map }));
    } else if existing.is_none() {
        let map: serde_json::Map<String, Value> = entries
            .into_iter()
            .map(|(k, v)| (k.to_owned(), json!(v)))
            .collect();
        b.set(["metadata", "annotations"], Value::Object(map));
    } else {
        for (k, v) in entries {
            b.set(["metadata", "annotations", k], json!(v));
        }
    }
}
