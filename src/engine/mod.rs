//! The engine: a pure function from a Pod (as the API server sent it) and the effective policy of
//! its namespace to an RFC 6902 patch, warnings for the user and a record of what was done.
//!
//! Guarantees (checked by property tests): the patch applies to the original JSON and only adds
//! members podgrace owns; the result is a valid Pod; running the engine on its own output yields
//! an empty patch (so `reinvocationPolicy: IfNeeded` is safe); the grace period never decreases;
//! the output depends only on the inputs.

pub(crate) mod drain_watch;
pub(crate) mod env;
pub(crate) mod grace;
pub(crate) mod helper_injection;
pub(crate) mod hook_estimate;
pub(crate) mod hook_plan;
pub(crate) mod nacos_script;
pub(crate) mod patch;
pub(crate) mod pod_view;
pub(crate) mod presets;
pub(crate) mod probes;
pub mod record;
pub(crate) mod shell;
pub(crate) mod spring_property;
pub(crate) mod startup;
pub(crate) mod unreached;
pub(crate) mod warnings;

use std::sync::Arc;

use k8s_openapi::api::core::v1::{Container, LifecycleHandler};
use serde_json::{Value, json};

use crate::policy::annotations::{self, PodOverrides};
use crate::policy::spec::{ExistingHook, GraceMode, HelperMode, SidecarMode};
use crate::policy::{Action, AdaptiveDrain, ContainerPolicy, Drain, EffectivePolicy, defaults};
use crate::protocols::kube_version::KubeVersion;
use grace::{Budget, HookKind, SidecarTime};
use patch::PatchBuilder;
use pod_view::PodSpecView;
pub use pod_view::PodView;
use record::{ContainerRecord, Injection, Record};

/// What the engine knows about the cluster it admits pods for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClusterInfo {
    /// The API server's version, when known (drives the `auto` sleep handler).
    pub kube_version: Option<KubeVersion>,
}

/// The engine's answer.
#[derive(Clone, Debug, Default)]
pub struct Mutation {
    /// The JSON patch (empty when nothing is to be changed).
    pub patch: json_patch::Patch,
    /// Warnings for the user (each under 120 characters, written to fit).
    pub warnings: Vec<String>,
    /// What was done and why.
    pub record: Record,
}

impl Mutation {
    /// Whether a warning asks the user to act: every warning but the notice that the grace
    /// period was raised, which only echoes the patch (its one warning comes with
    /// [`Injection::Grace`]). The webhook logs these admissions at `info`, the rest at `debug`.
    pub fn needs_attention(&self) -> bool {
        let echoes = usize::from(self.record.injections.contains(&Injection::Grace));
        self.warnings.len() > echoes
    }
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

/// The annotation the kubelet gives the API copy of a static pod (its mirror pod).
const MIRROR_ANNOTATION: &str = "kubernetes.io/config.mirror";

/// Computes the mutation of `pod` under `policy`.
pub fn mutation_for(
    pod: &PodView,
    policy: &EffectivePolicy,
    cluster: &ClusterInfo,
) -> Result<Mutation, EngineError> {
    let mut m = Mutation {
        record: Record {
            policy: policy.description().to_owned(),
            ..Default::default()
        },
        ..Default::default()
    };
    let overrides = annotations::read(pod.labels(), pod.annotations());
    for e in &overrides.errors {
        m.warnings.push(warnings::pod(&format!("ignored {e}")));
    }
    if overrides.opt_out {
        m.record.skipped = Some(format!("opted out ({})", annotations::INJECT));
        return Ok(m);
    }
    if pod
        .annotations()
        .is_some_and(|a| a.contains_key(MIRROR_ANNOTATION))
    {
        // A static pod's copy in the API: the kubelet runs the manifest on its disk whatever
        // the copy says, and the API server refuses a mirror pod that references a Secret.
        m.record.skipped = Some(format!("a static pod's mirror ({MIRROR_ANNOTATION})"));
        return Ok(m);
    }
    let Some(spec) = &pod.spec else {
        m.record.skipped = Some("the pod has no spec".to_owned());
        return Ok(m);
    };
    if let Some(rp) = batch_restart_policy(spec) {
        m.record.skipped = Some(format!("restartPolicy {rp} (batch pod)"));
        return Ok(m);
    }

    let mut pass = Pass {
        pod,
        spec,
        policy,
        cluster,
        overrides: &overrides,
        helper_pod: helper_injection::pod_state(spec),
        helper_used: false,
        drain_watch: None,
        // Under `gracePeriod: keep` every drain must fit the pod's grace period: the API server
        // rejects a native sleep longer than it.
        drain_cap: (policy.grace_mode() == GraceMode::Keep).then(|| {
            spec.termination_grace_period_seconds
                .unwrap_or(grace::KUBERNETES_DEFAULT)
                .clamp(0, i64::from(u32::MAX)) as u32
        }),
        b: PatchBuilder::default(),
        m,
    };
    let mut budgets = Vec::new();
    for (index, c) in spec.containers.iter().enumerate() {
        if policy.selects(&c.name)
            && let Some(budget) = pass.container(Position::Main(index), c)?
        {
            budgets.push(budget);
        }
    }
    // Native sidecars stop after every main container, one after the other (last first).
    let mut sidecars = Vec::new();
    for (index, c) in spec.init_containers.iter().flatten().enumerate() {
        if c.restart_policy.as_deref() == Some("Always") {
            sidecars.push(pass.sidecar(index, c)?);
        }
    }
    sidecars.reverse();
    pass.add_helper()?;
    // The first container with the longest preStop (the app, rather than a sidecar after it).
    let longest = budgets
        .iter()
        .min_by_key(|b| std::cmp::Reverse(b.pre_stop))
        .map(|b| (b.container.as_str(), b.pre_stop));
    pass.m.warnings.extend(warnings::classic_istio_sidecar(
        &spec.containers,
        pod.annotations(),
        longest,
    ));

    let Pass { mut b, mut m, .. } = pass;
    let decision = grace::decide(
        spec.termination_grace_period_seconds,
        &budgets,
        sidecars,
        policy.grace_mode(),
    );
    m.record.grace = decision.summary();
    m.record.decision = Some(decision.clone());
    if let (Some(new), Some(lead), Some(arithmetic)) = (
        decision.raised_to,
        decision.lead(),
        decision.short_arithmetic(),
    ) {
        b.set(["spec", "terminationGracePeriodSeconds"], json!(new));
        m.record.injections.push(Injection::Grace);
        m.warnings.push(warnings::naming(lead, |n| {
            format!(
                "podgrace: grace period {} → {new}: {arithmetic} ({n})",
                decision.current
            )
        }));
    } else if let (Some(needed), Some(lead)) = (decision.needed(), decision.lead())
        && needed > decision.current
    {
        m.warnings.push(warnings::naming(lead, |n| {
            format!(
                "podgrace: terminationGracePeriodSeconds {} < {needed} needed by {n} (gracePeriod: keep)",
                decision.current
            )
        }));
    }

    if !b.is_empty() {
        write_record(pod, &m.record, &decision, &mut b);
    }
    m.patch = b.finish();
    Ok(m)
}

/// Where a container sits in the pod spec.
#[derive(Clone, Copy, Debug)]
enum Position {
    /// `spec.containers[i]`.
    Main(usize),
    /// `spec.initContainers[i]`, a native sidecar.
    Sidecar(usize),
}

impl Position {
    fn list(self) -> &'static str {
        match self {
            Position::Main(_) => "containers",
            Position::Sidecar(_) => "initContainers",
        }
    }

    fn index(self) -> usize {
        match self {
            Position::Main(i) | Position::Sidecar(i) => i,
        }
    }
}

/// The state of one engine run over a pod.
struct Pass<'a> {
    pod: &'a PodView,
    spec: &'a PodSpecView,
    policy: &'a EffectivePolicy,
    cluster: &'a ClusterInfo,
    overrides: &'a PodOverrides,
    helper_pod: helper_injection::PodState,
    helper_used: bool,
    /// What adaptive drains watch in this pod, once one needs it.
    drain_watch: Option<drain_watch::TrafficWatch>,
    /// The longest drain the pod's grace period allows, under `gracePeriod: keep`.
    drain_cap: Option<u32>,
    b: PatchBuilder,
    m: Mutation,
}

/// What one container's hook amounts to.
struct HookOutcome {
    /// The preStop time counted for the container, and whose hook it is; `None` without hook.
    time: Option<(u32, HookKind)>,
    /// The hook that will run (podgrace's or the user's).
    final_hook: Option<LifecycleHandler>,
    /// Environment variables podgrace's hook reads.
    env: Vec<k8s_openapi::api::core::v1::EnvVar>,
}

impl Pass<'_> {
    /// Resolves the container's policy, with the pod's annotation overrides.
    fn resolve(&mut self, c: &Container) -> Option<(Arc<ContainerPolicy>, Vec<String>)> {
        let image = c.image.as_deref().unwrap_or_default();
        match self
            .policy
            .resolve(self.pod.labels(), &c.name, image, self.overrides.layer())
        {
            Ok(r) => Some((r.policy, r.rules.iter().map(|r| r.to_string()).collect())),
            Err(e) => {
                self.m.warnings.push(warnings::container(
                    &c.name,
                    &format!("nothing injected: policy incomplete at {}", e.path),
                ));
                None
            }
        }
    }

    /// Mutates one container; returns its termination budget, if it has one.
    fn container(
        &mut self,
        position: Position,
        c: &Container,
    ) -> Result<Option<Budget>, EngineError> {
        let Some((p, rules)) = self.resolve(c) else {
            return Ok(None);
        };
        let serving = serves_traffic(c, &p);
        // Traffic decides: a container that serves nothing gets no drain (policy can force it).
        let drains = serving || !p.serving_only;
        let p = self.fit_drain(c, p, drains);
        let mut rec = ContainerRecord {
            name: c.name.clone(),
            items: Vec::new(),
            rules,
        };
        let hook = self.pre_stop(position, c, &p, drains, &mut rec)?;
        if let Some((seconds, HookKind::Injected | HookKind::Adaptive)) = hook.time {
            self.probe_grace(c, seconds, p.shutdown);
        }
        self.env(position, c, &p, &hook, &mut rec)?;
        let has_readiness = self.readiness(position, c, &p, &mut rec)?;
        self.start(position, c, &p, &mut rec)?;
        self.traps(c, hook.final_hook.as_ref(), has_readiness);
        if !rec.items.is_empty() {
            self.m.record.containers.push(rec);
        }
        Ok(match hook.time {
            // A kept hook runs whatever the traffic: the grace period must cover it.
            Some((seconds, kind @ HookKind::Kept(_))) => Some(budget(c, &p, seconds, kind)),
            Some((seconds, kind)) if drains => Some(budget(c, &p, seconds, kind)),
            None if drains => Some(budget(c, &p, 0, HookKind::Injected)),
            _ => None,
        })
    }

    /// A native sidecar: mutated like a container when the policy says so; its hook and
    /// shutdown count after the main containers either way.
    fn sidecar(&mut self, index: usize, c: &Container) -> Result<SidecarTime, EngineError> {
        let (seconds, hooked) =
            if self.policy.sidecars() == SidecarMode::Inject && self.policy.selects(&c.name) {
                match self.container(Position::Sidecar(index), c)? {
                    Some(b) => (b.pre_stop.saturating_add(b.shutdown), b.pre_stop > 0),
                    None => (0, false),
                }
            } else {
                let image = c.image.as_deref().unwrap_or_default();
                let resolved = self
                    .policy
                    .resolve(self.pod.labels(), &c.name, image, None)
                    .ok();
                let shutdown = resolved
                    .as_ref()
                    .map_or(defaults::SHUTDOWN.get(), |r| r.policy.shutdown);
                let allowance = resolved
                    .as_ref()
                    .map_or(defaults::UNKNOWN_HOOK.get(), |r| r.policy.unknown_hook);
                let hook = c.lifecycle.as_ref().and_then(|l| l.pre_stop.as_ref());
                let seconds = hook.map_or(0, |h| {
                    hook_estimate::estimate(h, allowance, self.overrides.prestop_seconds).seconds
                });
                (seconds.saturating_add(shutdown), hook.is_some())
            };
        Ok(SidecarTime {
            container: c.name.clone(),
            seconds,
            hooked,
        })
    }

    /// The container's policy with its drain fitted: none for a container that does not drain,
    /// and no longer than the grace period allows under `gracePeriod: keep`.
    fn fit_drain(
        &mut self,
        c: &Container,
        p: Arc<ContainerPolicy>,
        drains: bool,
    ) -> Arc<ContainerPolicy> {
        if !drains {
            let mut quiet = (*p).clone();
            quiet.action = Action::None;
            return Arc::new(quiet);
        }
        match self.drain_cap {
            Some(cap) if p.drain_seconds() > cap && p.action != Action::None => {
                // A hook of the container's own that the policy keeps runs instead of the
                // drain: the cut is nothing to warn about.
                let own_hook_kept = p.existing == ExistingHook::Keep
                    && c.lifecycle.as_ref().is_some_and(|l| l.pre_stop.is_some());
                if !own_hook_kept {
                    let message = if cap == 0 {
                        "no drain: terminationGracePeriodSeconds is 0 (gracePeriod: keep)"
                            .to_owned()
                    } else {
                        format!(
                            "drain cut to {cap}s to fit terminationGracePeriodSeconds (gracePeriod: keep)"
                        )
                    };
                    self.m.warnings.push(warnings::container(&c.name, &message));
                }
                Arc::new(match &p.drain {
                    // The ceiling fits; a drain that has no room at all is none.
                    Drain::Adaptive(a) if cap > 0 => ContainerPolicy {
                        drain: Drain::Adaptive(AdaptiveDrain {
                            min: a.min.min(cap),
                            max: cap,
                            ..a.clone()
                        }),
                        ..(*p).clone()
                    },
                    _ => p.with_fixed_drain(cap),
                })
            }
            _ => p,
        }
    }

    /// The preStop hook: added when absent, replaced only when the policy says so, never
    /// merged (two handlers make the pod invalid).
    fn pre_stop(
        &mut self,
        position: Position,
        c: &Container,
        p: &ContainerPolicy,
        drains: bool,
        rec: &mut ContainerRecord,
    ) -> Result<HookOutcome, EngineError> {
        let idx = position.index().to_string();
        let helper_mount = helper_injection::container_state(c);
        let conflict = match (&self.helper_pod, &helper_mount) {
            (helper_injection::PodState::Conflict(why), _) | (_, Err(why)) => Some(why.clone()),
            _ => None,
        };
        if let (HelperMode::Inject, Some(why), true) = (p.helper, &conflict, drains) {
            self.m.warnings.push(warnings::container(
                &c.name,
                &format!("helper not injected ({why}); using a shell hook"),
            ));
        }
        if matches!(p.drain, Drain::Adaptive(_)) && self.drain_watch.is_none() {
            // Once per pod, and only for an adaptive drain: it resolves every container.
            self.drain_watch = Some(drain_watch::watch(
                self.pod,
                self.policy,
                self.overrides.layer(),
            ));
        }
        let plan = hook_plan::plan(
            self.pod,
            c,
            p,
            self.cluster.kube_version,
            conflict.is_none(),
            self.drain_watch.as_ref(),
        );
        for w in &plan.warnings {
            self.m.warnings.push(warnings::container(&c.name, w));
        }
        let existing = c.lifecycle.as_ref().and_then(|l| l.pre_stop.as_ref());
        let kept = |h: &LifecycleHandler| {
            let e = hook_estimate::estimate(h, p.unknown_hook, self.overrides.prestop_seconds);
            Some((e.seconds, HookKind::Kept(e.source)))
        };
        let mut outcome = HookOutcome {
            time: None,
            final_hook: existing.cloned(),
            env: Vec::new(),
        };
        let mut installed = None;
        match (existing, &plan.hook) {
            (None, None) => {}
            // Already podgrace's (a reinvocation): nothing to write.
            (Some(e), Some(h)) if *e == h.handler => {
                installed = Some(h);
                outcome.time = Some((h.seconds, h.kind()));
            }
            (Some(e), None) => outcome.time = kept(e),
            (Some(e), Some(_)) if p.existing == ExistingHook::Keep => {
                self.m.warnings.push(warnings::container(
                    &c.name,
                    "kept its own preStop hook (policy preStop.existing: keep)",
                ));
                outcome.time = kept(e);
            }
            (_, Some(h)) => {
                let value = to_json("preStop handler", &h.handler)?;
                if c.lifecycle.is_some() {
                    self.b.set(
                        [
                            "spec",
                            position.list(),
                            idx.as_str(),
                            "lifecycle",
                            "preStop",
                        ],
                        value,
                    );
                } else {
                    self.b.set(
                        ["spec", position.list(), idx.as_str(), "lifecycle"],
                        json!({ "preStop": value }),
                    );
                }
                let replaced = if existing.is_some() {
                    " (replaced)"
                } else {
                    ""
                };
                rec.items.push(format!("preStop={}{replaced}", h.label));
                self.m.record.injections.push(Injection::PreStop);
                installed = Some(h);
                outcome.time = Some((h.seconds, h.kind()));
                outcome.final_hook = Some(h.handler.clone());
            }
        }
        if let Some(h) = installed {
            if h.needs_helper {
                self.helper_used = true;
                if helper_mount == Ok(false) {
                    let mount = to_json("helper mount", &helper_injection::mount())?;
                    self.b.extend_list(
                        ["spec", position.list(), idx.as_str(), "volumeMounts"],
                        c.volume_mounts.is_some(),
                        vec![mount],
                    );
                    rec.items.push("helper".to_owned());
                }
            }
            let image = c.image.as_deref().unwrap_or_default();
            if h.uses_shell && warnings::may_lack_shell(image) {
                self.m.warnings.push(warnings::container(
                    &c.name,
                    "its preStop needs /bin/sh, which this image may lack (use helper: inject)",
                ));
            }
        }
        outcome.env = installed.map(|h| h.env.clone()).unwrap_or_default();
        Ok(outcome)
    }

    /// Environment: downward API, hook inputs, presets; never a name the container defines.
    fn env(
        &mut self,
        position: Position,
        c: &Container,
        p: &ContainerPolicy,
        hook: &HookOutcome,
        rec: &mut ContainerRecord,
    ) -> Result<(), EngineError> {
        let mut wanted = Vec::new();
        if let Some(name) = &p.pod_ip_env {
            wanted.push(env::field(name, "status.podIP"));
        }
        for var in &p.extra_env {
            wanted.push(env::field(&var.name, &var.field_path));
        }
        wanted.extend(hook.env.iter().cloned());
        for preset in &p.presets {
            wanted.extend(presets::env(*preset, c, p));
        }
        let added = env::missing(c, wanted);
        if added.is_empty() {
            return Ok(());
        }
        let names: Vec<&str> = added.iter().map(|v| v.name.as_str()).collect();
        rec.items.push(format!("env={}", names.join(",")));
        self.m.record.injections.push(Injection::Env);
        for preset in &p.presets {
            rec.items.push(format!("preset={}", preset.as_str()));
            self.m.record.injections.push(Injection::Preset);
        }
        let values = added
            .iter()
            .map(|v| to_json("env var", v))
            .collect::<Result<Vec<_>, _>>()?;
        let idx = position.index().to_string();
        self.b.extend_list(
            ["spec", position.list(), idx.as_str(), "env"],
            c.env.is_some(),
            values,
        );
        Ok(())
    }

    /// Readiness, only where missing and only on a port the container declares; returns
    /// whether the container ends up with a readiness probe.
    fn readiness(
        &mut self,
        position: Position,
        c: &Container,
        p: &ContainerPolicy,
        rec: &mut ContainerRecord,
    ) -> Result<bool, EngineError> {
        if c.readiness_probe.is_some() {
            return Ok(true);
        }
        let Some(r) = &p.readiness else {
            return Ok(false);
        };
        // No declared port, or not the policy's: a probe could never pass, so none (a sidecar
        // next to the app, a worker that serves nothing).
        let Ok((probe, label)) = probes::readiness(c, r) else {
            return Ok(false);
        };
        let idx = position.index().to_string();
        self.b.set(
            ["spec", position.list(), idx.as_str(), "readinessProbe"],
            to_json("readiness probe", &probe)?,
        );
        rec.items.push(format!("readiness={label}"));
        self.m.record.injections.push(Injection::Readiness);
        Ok(true)
    }

    /// A liveness or startup probe with a grace period of its own bounds the whole stop after
    /// it fails, podgrace's preStop included (the kubelet then leaves the app at least 2 s): a
    /// drain that fills it leaves the restarted app no time to stop cleanly.
    fn probe_grace(&mut self, c: &Container, hook_seconds: u32, shutdown: u32) {
        let own = [&c.liveness_probe, &c.startup_probe]
            .into_iter()
            .flatten()
            .filter_map(|p| p.termination_grace_period_seconds)
            .min();
        if let Some(grace) = own
            && i64::from(hook_seconds) + i64::from(shutdown) > grace
        {
            self.m.warnings.push(warnings::container(
                &c.name,
                &format!(
                    "a probe's terminationGracePeriodSeconds {grace} < preStop {hook_seconds}s + shutdown {shutdown}s"
                ),
            ));
        }
    }

    /// Warnings for the traps podgrace can see but not fix.
    fn traps(&mut self, c: &Container, final_hook: Option<&LifecycleHandler>, has_readiness: bool) {
        let pid1 = self.spec.containers_are_pid1();
        for (_, message) in warnings::container_traps(c, final_hook, has_readiness, pid1) {
            self.m.warnings.push(warnings::container(&c.name, &message));
        }
    }

    /// The helper's init container and volume, once per pod, when a hook runs the helper.
    fn add_helper(&mut self) -> Result<(), EngineError> {
        if !self.helper_used || self.helper_pod != helper_injection::PodState::Absent {
            return Ok(());
        }
        let (image, pull_policy) = self.policy.helper_image();
        let init = to_json(
            "helper init container",
            &helper_injection::init_container(image, pull_policy, self.spec.resources.is_some()),
        )?;
        self.b.extend_list(
            ["spec", "initContainers"],
            self.spec.init_containers.is_some(),
            vec![init],
        );
        let volume = to_json("helper volume", &helper_injection::volume())?;
        self.b.extend_list(
            ["spec", "volumes"],
            self.spec.volumes.is_some(),
            vec![volume],
        );
        self.m.record.injections.push(Injection::Helper);
        Ok(())
    }
}

fn budget(c: &Container, p: &ContainerPolicy, pre_stop: u32, hook: HookKind) -> Budget {
    Budget {
        container: c.name.clone(),
        pre_stop,
        hook,
        shutdown: p.shutdown,
        buffer: p.buffer,
    }
}

/// The restart policy of a run-to-completion pod (`Never`, `OnFailure`: a Job's, a CronJob's):
/// such a pod serves no traffic and no rollout replaces it, so a drain sleep would only delay
/// it. The engine leaves it alone; `podgrace audit` counts none of its traps as a rollout risk.
pub fn batch_restart_policy(spec: &PodSpecView) -> Option<&str> {
    spec.restart_policy
        .as_deref()
        .filter(|rp| matches!(*rp, "Never" | "OnFailure"))
}

/// Whether the container serves traffic: it declares a port, or it is registered in a service
/// registry podgrace deregisters it from. Public for `podgrace audit`, which asks the same
/// question of workloads podgrace has not mutated.
pub fn serves_traffic(c: &Container, p: &ContainerPolicy) -> bool {
    c.ports.as_ref().is_some_and(|ports| !ports.is_empty())
        || matches!(&p.action, Action::Nacos(n) if n.port.is_some())
}
fn write_record(pod: &PodView, record: &Record, decision: &grace::Decision, b: &mut PatchBuilder) {
    let existing = pod.annotations();
    let injected = record::merge_injected(
        existing
            .and_then(|a| a.get(record::INJECTED))
            .map(String::as_str),
        &record.containers,
    );
    // A pod whose only change is its grace period has no container entries to record.
    let mut entries: Vec<(&str, String)> = Vec::new();
    if !injected.is_empty() {
        entries.push((record::INJECTED, injected));
    }
    // The first run's "30 → 70" is the informative one; only a new raise rewrites it.
    let grace_recorded = existing.is_some_and(|a| a.contains_key(record::GRACE));
    if let Some(g) = &record.grace
        && (decision.raised_to.is_some() || !grace_recorded)
    {
        entries.push((record::GRACE, g.clone()));
    }
    entries.push((record::POLICY, record.policy.clone()));
    entries.retain(|(k, v)| existing.and_then(|a| a.get(*k)) != Some(v));

    if pod.metadata.is_none() {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn with(warnings: &[&str], injections: &[Injection]) -> Mutation {
        Mutation {
            warnings: warnings.iter().map(|w| w.to_string()).collect(),
            record: Record {
                injections: injections.to_vec(),
                ..Record::default()
            },
            ..Mutation::default()
        }
    }

    #[test]
    fn only_warnings_beyond_the_grace_notice_need_attention() {
        let notice = "podgrace: grace period 30 → 45: …";
        let trap = "podgrace: container app: sh -c without exec: …";
        assert!(!with(&[], &[]).needs_attention());
        assert!(!with(&[notice], &[Injection::Grace]).needs_attention());
        assert!(with(&[trap, notice], &[Injection::Grace]).needs_attention());
        // Without a grace raise, any warning asks for attention (gracePeriod: keep, …).
        assert!(with(&[trap], &[Injection::PreStop]).needs_attention());
    }
}
