//! The effective policy of a namespace: built-in defaults < cluster default < namespace policy,
//! with the rules of all three collected in that order. Built once per policy change (the stores
//! cache it) and then only read, per container, on the admission path.

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock};

use wildmatch::WildMatch;

use super::defaults;
use super::error::FieldError;
use super::merge::Merge;
use super::parse::PolicyLayer;
use super::resolved::ContainerPolicy;
use super::spec::*;

/// A rule ready to match.
#[derive(Clone, Debug)]
struct CompiledRule {
    /// `builtin rules[0] (nginx)`-style label for records and messages.
    label: String,
    /// Path of the rule inside its own layer, e.g. `rules[2]`.
    path: String,
    /// Index of the layer the rule belongs to in [`EffectivePolicy::layers`].
    level: usize,
    container: Option<WildMatch>,
    image: Option<ImagePattern>,
    labels: BTreeMap<String, String>,
    set: PolicySpec,
    /// The layers with only this rule applied, resolved once: the common case of at most one
    /// matching rule and no pod overrides then costs no merging at all.
    alone: Result<Arc<ContainerPolicy>, FieldError>,
}

/// An image glob. Without a `/` it is matched against the image's last path segment, so that
/// `nginx*` matches `nginx:1.27` as well as `registry.example/library/nginx:1.27`.
#[derive(Clone, Debug)]
struct ImagePattern {
    glob: WildMatch,
    whole_reference: bool,
}

impl ImagePattern {
    fn new(pattern: &str) -> Self {
        ImagePattern {
            glob: WildMatch::new(pattern),
            whole_reference: pattern.contains('/'),
        }
    }

    fn matches(&self, image: &str) -> bool {
        if self.whole_reference {
            self.glob.matches(image)
        } else {
            self.glob.matches(image.rsplit('/').next().unwrap_or(image))
        }
    }
}

/// Returns true when `image` looks like an nginx image (used for the "nginx without quit"
/// warning, with the same matching as an `image: nginx*` rule).
pub fn is_nginx_image(image: &str) -> bool {
    // Compiled once: this runs for every container of every pod.
    static NGINX: LazyLock<ImagePattern> = LazyLock::new(|| ImagePattern::new("nginx*"));
    NGINX.matches(image)
}

/// One layer's own settings (its rules are compiled separately).
#[derive(Clone, Debug)]
struct LayerBase {
    /// `builtin`, or the layer's origin (`configmap shop/podgrace-policy@4711`).
    label: String,
    spec: PolicySpec,
}

/// The merged policy of one namespace.
///
/// Precedence, lowest first: built-in defaults, built-in rules, cluster default, cluster rules,
/// namespace policy, namespace rules, pod annotations. So a layer's rules refine that layer, and
/// an explicit setting of a higher layer beats a lower layer's rule: a namespace's `action: nacos`
/// wins over the built-in `nginx*` rule unless the namespace's own rule says otherwise.
#[derive(Clone, Debug)]
pub struct EffectivePolicy {
    layers: Vec<LayerBase>,
    /// Every layer's own settings merged, no rule matched: the common case.
    base_resolved: Result<Arc<ContainerPolicy>, FieldError>,
    rules: Vec<CompiledRule>,
    include: Vec<WildMatch>,
    exclude: Vec<WildMatch>,
    grace_mode: GraceMode,
    sidecars: SidecarMode,
    helper_image: (String, PullPolicy),
    description: String,
}

/// The policy of one container with the names of the rules that shaped it.
#[derive(Clone, Debug, PartialEq)]
pub struct Resolution<'a> {
    /// The resolved settings.
    pub policy: Arc<ContainerPolicy>,
    /// Labels of the rules that matched, in order.
    pub rules: Vec<&'a str>,
}

/// One setting of a container's resolved policy and the layer or rule that set it.
#[derive(Clone, Debug, PartialEq)]
pub struct Provenance {
    /// Field path in the policy format, e.g. `preStop.sleepSeconds`.
    pub path: String,
    /// The value, as it would be written in a policy.
    pub value: serde_json::Value,
    /// `builtin`, a layer's origin, a rule's label, or `pod annotations`.
    pub source: String,
}

impl EffectivePolicy {
    /// Layers the built-in defaults, the cluster default and the namespace policy.
    pub fn new(cluster: Option<&PolicyLayer>, namespace: Option<&PolicyLayer>) -> Self {
        let builtin = defaults::builtin();
        let given = [
            Some(("builtin".to_owned(), "builtin", &builtin)),
            cluster.map(|l| (l.origin.to_string(), "cluster", &l.spec)),
            namespace.map(|l| (l.origin.to_string(), "namespace", &l.spec)),
        ];
        let mut layers = Vec::new();
        let mut raw_rules = Vec::new();
        for (label, kind, spec) in given.into_iter().flatten() {
            let level = layers.len();
            for (i, rule) in spec.rules.iter().flatten().enumerate() {
                raw_rules.push((rule, kind, i, level));
            }
            let mut own = spec.clone();
            own.rules = None;
            layers.push(LayerBase { label, spec: own });
        }
        let mut base = PolicySpec::default();
        for layer in &layers {
            base.merge_from(&layer.spec);
        }
        let rules = raw_rules
            .into_iter()
            .map(|(rule, kind, i, level)| compile_rule(&layers, rule, kind, i, level))
            .collect();
        let selection = base.containers.clone().unwrap_or_default();
        let globs = |list: Option<Vec<String>>| -> Vec<WildMatch> {
            list.unwrap_or_default()
                .iter()
                .map(|p| WildMatch::new(p))
                .collect()
        };
        let helper = base.helper_image.clone().unwrap_or_default();
        let description = layers
            .iter()
            .map(|l| l.label.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        EffectivePolicy {
            base_resolved: ContainerPolicy::from_spec(&base).map(Arc::new),
            grace_mode: base.grace_period.unwrap_or(GraceMode::Raise),
            sidecars: base.sidecars.unwrap_or(SidecarMode::Skip),
            helper_image: (
                helper
                    .image
                    .unwrap_or_else(|| defaults::HELPER_IMAGE.to_owned()),
                helper.pull_policy.unwrap_or(PullPolicy::IfNotPresent),
            ),
            include: globs(selection.include),
            exclude: globs(selection.exclude),
            layers,
            rules,
            description,
        }
    }

    /// The one way every caller (webhook, stores, CLI) combines a cluster default and a
    /// namespace policy: layered, then checked complete ([`Self::check`]). The error names the
    /// top layer given (the namespace's, else the cluster's) and every problem found.
    pub fn combine(
        cluster: Option<&PolicyLayer>,
        namespace: Option<&PolicyLayer>,
    ) -> Result<Self, super::PolicyError> {
        let policy = Self::new(cluster, namespace);
        let errors = policy.check();
        if errors.is_empty() {
            return Ok(policy);
        }
        let origin = namespace
            .or(cluster)
            .map_or_else(|| "builtin".to_owned(), |l| l.origin.name.clone());
        Err(super::PolicyError { origin, errors })
    }

    /// The built-in policy alone.
    pub fn builtin() -> Self {
        Self::new(None, None)
    }

    /// Which layers (with versions) this policy is made of, for the pod's record.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// Raise-only or hands-off grace period handling.
    pub fn grace_mode(&self) -> GraceMode {
        self.grace_mode
    }

    /// What podgrace does with native sidecars.
    pub fn sidecars(&self) -> SidecarMode {
        self.sidecars
    }

    /// Image and pull policy of the helper init container.
    pub fn helper_image(&self) -> (&str, PullPolicy) {
        (&self.helper_image.0, self.helper_image.1)
    }

    /// Whether podgrace touches the container called `name` at all.
    pub fn selects(&self, name: &str) -> bool {
        (self.include.is_empty() || self.include.iter().any(|g| g.matches(name)))
            && !self.exclude.iter().any(|g| g.matches(name))
    }

    fn matching(
        &self,
        pod_labels: Option<&BTreeMap<String, String>>,
        container_name: &str,
        image: &str,
    ) -> Vec<&CompiledRule> {
        self.rules
            .iter()
            .filter(|rule| rule_matches(rule, pod_labels, container_name, image))
            .collect()
    }

    /// The layers and matching rules in precedence order, lowest first.
    fn sequence<'a>(
        &'a self,
        matched: &[&'a CompiledRule],
    ) -> impl Iterator<Item = (&'a str, &'a PolicySpec)> {
        self.layers
            .iter()
            .enumerate()
            .flat_map(move |(level, layer)| {
                std::iter::once((layer.label.as_str(), &layer.spec)).chain(
                    matched
                        .iter()
                        .filter(move |r| r.level == level)
                        .map(|r| (r.label.as_str(), &r.set)),
                )
            })
    }

    /// Resolves the policy of one container: each layer followed by its matching rules, in
    /// precedence order, then the pod's annotation overrides.
    pub fn resolve(
        &self,
        pod_labels: Option<&BTreeMap<String, String>>,
        container_name: &str,
        image: &str,
        overrides: Option<&PolicySpec>,
    ) -> Result<Resolution<'_>, FieldError> {
        let matched = self.matching(pod_labels, container_name, image);
        let policy = match (matched.as_slice(), overrides) {
            ([], None) => self.base_resolved.clone()?,
            ([rule], None) => rule.alone.clone()?,
            _ => {
                let mut spec = PolicySpec::default();
                for (_, layer) in self.sequence(&matched) {
                    spec.merge_from(layer);
                }
                if let Some(o) = overrides {
                    spec.merge_from(o);
                }
                Arc::new(ContainerPolicy::from_spec(&spec)?)
            }
        };
        Ok(Resolution {
            policy,
            rules: matched.iter().map(|r| r.label.as_str()).collect(),
        })
    }

    /// Which layer or rule set each per-container setting of one container, for
    /// `podgrace mutate --explain`. Pod-wide settings (`containers`, `gracePeriod`, `sidecars`,
    /// `helperImage`) are included with the layer that set them.
    pub fn explain(
        &self,
        pod_labels: Option<&BTreeMap<String, String>>,
        container_name: &str,
        image: &str,
        overrides: Option<&PolicySpec>,
    ) -> Vec<Provenance> {
        let matched = self.matching(pod_labels, container_name, image);
        let mut found: BTreeMap<String, Provenance> = BTreeMap::new();
        let annotations = overrides.map(|o| ("pod annotations", o));
        for (source, spec) in self.sequence(&matched).chain(annotations) {
            let Ok(value) = serde_json::to_value(spec) else {
                continue;
            };
            let mut leaves = Vec::new();
            flatten_leaves(String::new(), value, &mut leaves);
            for (path, value) in leaves {
                found.insert(
                    path.clone(),
                    Provenance {
                        path,
                        value,
                        source: source.to_owned(),
                    },
                );
            }
        }
        found.into_values().collect()
    }

    /// Checks that every combination the policy can produce is complete (a `nacos` action has a
    /// server, an `http` probe has a path, …): the base alone and the base under each rule of the
    /// top layer. Errors of rules carry the rule's path (`rules[1].set.preStop.nacos.server`).
    pub fn check(&self) -> Vec<FieldError> {
        let mut errors: Vec<FieldError> = self
            .base_resolved
            .as_ref()
            .err()
            .cloned()
            .into_iter()
            .collect();
        let top = self.layers.len() - 1;
        for rule in self.rules.iter().filter(|r| r.level == top) {
            if let Err(e) = &rule.alone {
                errors.push(e.clone().within(&format!("{}.set", rule.path)));
            }
        }
        errors
    }

    /// The settings that do nothing, or less than they seem to ([`super::notes`]): under the
    /// base alone and under each rule of the top layer (a rule's notes carry its path, and a
    /// note the base already has is not repeated). For `podgrace policy check`.
    pub fn notes(&self) -> Vec<FieldError> {
        let mut base = PolicySpec::default();
        for layer in &self.layers {
            base.merge_from(&layer.spec);
        }
        let mut out = super::notes::notes(&base);
        let top = self.layers.len() - 1;
        for rule in self.rules.iter().filter(|r| r.level == top) {
            let mut spec = PolicySpec::default();
            for (_, layer) in self.sequence(&[rule]) {
                spec.merge_from(layer);
            }
            for note in super::notes::notes(&spec) {
                if !out
                    .iter()
                    .any(|n| n.path == note.path && n.message == note.message)
                {
                    out.push(note.within(&format!("{}.set", rule.path)));
                }
            }
        }
        out
    }

    /// The notes of one container's policy (every layer, its matching rules and the pod's
    /// overrides merged), for `podgrace mutate --explain`.
    pub fn container_notes(
        &self,
        pod_labels: Option<&BTreeMap<String, String>>,
        container_name: &str,
        image: &str,
        overrides: Option<&PolicySpec>,
    ) -> Vec<FieldError> {
        let matched = self.matching(pod_labels, container_name, image);
        let mut spec = PolicySpec::default();
        for (_, layer) in self.sequence(&matched) {
            spec.merge_from(layer);
        }
        if let Some(o) = overrides {
            spec.merge_from(o);
        }
        super::notes::notes(&spec)
    }
}

/// The leaves of a policy as JSON: objects are walked, everything else (lists included, which
/// replace wholesale when merged) is a leaf. `rules` are not settings.
fn flatten_leaves(
    path: String,
    value: serde_json::Value,
    out: &mut Vec<(String, serde_json::Value)>,
) {
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                if path.is_empty() && k == "rules" {
                    continue;
                }
                let p = if path.is_empty() {
                    k
                } else {
                    format!("{path}.{k}")
                };
                flatten_leaves(p, v, out);
            }
        }
        serde_json::Value::Null => {}
        leaf => out.push((path, leaf)),
    }
}

fn compile_rule(
    layers: &[LayerBase],
    rule: &Rule,
    kind: &str,
    index: usize,
    level: usize,
) -> CompiledRule {
    let mut alone = PolicySpec::default();
    for (l, layer) in layers.iter().enumerate() {
        alone.merge_from(&layer.spec);
        if l == level {
            alone.merge_from(&rule.set);
        }
    }
    let path = format!("rules[{index}]");
    let label = match &rule.name {
        Some(name) => format!("{kind} {path} ({name})"),
        None => format!("{kind} {path}"),
    };
    CompiledRule {
        label,
        path,
        level,
        container: rule.matcher.container_name.as_deref().map(WildMatch::new),
        image: rule.matcher.image.as_deref().map(ImagePattern::new),
        labels: rule.matcher.pod_labels.clone().unwrap_or_default(),
        set: rule.set.clone(),
        alone: ContainerPolicy::from_spec(&alone).map(Arc::new),
    }
}

fn rule_matches(
    rule: &CompiledRule,
    pod_labels: Option<&BTreeMap<String, String>>,
    container: &str,
    image: &str,
) -> bool {
    rule.container.as_ref().is_none_or(|g| g.matches(container))
        && rule.image.as_ref().is_none_or(|p| p.matches(image))
        && rule
            .labels
            .iter()
            .all(|(k, v)| pod_labels.and_then(|l| l.get(k)) == Some(v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::parse::{Origin, load_layer};
    use crate::policy::resolved::Action;

    fn layer(name: &str, yaml: &str) -> PolicyLayer {
        load_layer(yaml, Origin::hashed(name, yaml)).unwrap()
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn builtin_defaults_sleep_natively_and_probe_tcp() {
        let p = EffectivePolicy::builtin()
            .resolve(None, "app", "app:1", None)
            .unwrap()
            .policy;
        assert_eq!(p.action, Action::Sleep);
        assert_eq!((p.sleep, p.shutdown, p.buffer), (10, 30, 5));
        assert_eq!(p.sleep_handler, SleepHandler::Native);
        assert_eq!(p.pod_ip_env.as_deref(), Some("POD_IP"));
        assert_eq!(p.readiness.as_ref().unwrap().handler, ProbeHandler::Tcp);
    }

    #[test]
    fn nginx_images_get_the_nginx_action_by_builtin_rule() {
        let eff = EffectivePolicy::builtin();
        for image in [
            "nginx",
            "nginx:1.27",
            "docker.io/library/nginx:1.27-alpine",
            "nginxinc/nginx-unprivileged:1.27",
        ] {
            let r = eff.resolve(None, "web", image, None).unwrap();
            assert_eq!(r.policy.action, Action::Nginx, "{image}");
            assert_eq!(r.rules, vec!["builtin rules[0] (nginx)"]);
        }
        for image in [
            "registry.k8s.io/ingress-nginx/controller:v1.11",
            "my-nginxish/app",
        ] {
            assert_eq!(
                eff.resolve(None, "web", image, None).unwrap().policy.action,
                Action::Sleep,
                "{image}"
            );
        }
    }

    #[test]
    fn a_layers_rules_refine_it_and_a_higher_layers_setting_beats_a_lower_layers_rule() {
        let cluster = layer(
            "cluster",
            "shutdownSeconds: 20\nbufferSeconds: 4\nrules:\n- match: {podLabels: {framework: spring-boot}}\n  set: {presets: [spring-boot], shutdownSeconds: 30, bufferSeconds: 6}\n",
        );
        let ns = layer("ns", "shutdownSeconds: 25\n");
        let eff = EffectivePolicy::new(Some(&cluster), Some(&ns));
        let plain = eff.resolve(None, "app", "app:1", None).unwrap().policy;
        assert_eq!((plain.shutdown, plain.buffer), (25, 4));
        let spring = eff
            .resolve(
                Some(&labels(&[("framework", "spring-boot")])),
                "app",
                "app:1",
                None,
            )
            .unwrap()
            .policy;
        // The namespace said 25 explicitly; the cluster rule still sets what the namespace left.
        assert_eq!((spring.shutdown, spring.buffer), (25, 6));
        assert_eq!(spring.presets, vec![Preset::SpringBoot]);
    }

    #[test]
    fn a_namespace_action_beats_the_builtin_nginx_rule_unless_its_own_rule_says_otherwise() {
        let ns = layer(
            "ns",
            "preStop: {action: nacos, nacos: {server: 'http://nacos:8848'}}\n",
        );
        let eff = EffectivePolicy::new(None, Some(&ns));
        let r = eff.resolve(None, "web", "nginx:1.27", None).unwrap();
        assert!(matches!(r.policy.action, Action::Nacos(_)));
        let ns = layer(
            "ns",
            "preStop: {action: nacos, nacos: {server: 'http://nacos:8848'}}\nrules:\n- match: {image: 'nginx*'}\n  set: {preStop: {action: nginx}}\n",
        );
        let eff = EffectivePolicy::new(None, Some(&ns));
        let r = eff.resolve(None, "web", "nginx:1.27", None).unwrap();
        assert_eq!(r.policy.action, Action::Nginx);
        assert_eq!(
            r.rules,
            vec!["builtin rules[0] (nginx)", "namespace rules[0]"]
        );
    }

    #[test]
    fn explain_names_the_layer_or_rule_behind_every_setting() {
        let ns = layer("ns", "preStop: {sleepSeconds: 20}\n");
        let eff = EffectivePolicy::new(None, Some(&ns));
        let o = crate::policy::parse::parse_spec("shutdownSeconds: 45").unwrap();
        let explained = eff.explain(None, "web", "nginx:1.27", Some(&o));
        let source = |path: &str| {
            explained
                .iter()
                .find(|p| p.path == path)
                .map(|p| (p.value.clone(), p.source.clone()))
                .unwrap()
        };
        assert_eq!(source("preStop.sleepSeconds").0, 20);
        assert!(source("preStop.sleepSeconds").1.starts_with("ns@"));
        assert_eq!(
            source("preStop.action"),
            ("nginx".into(), "builtin rules[0] (nginx)".into())
        );
        assert_eq!(
            source("shutdownSeconds"),
            (45.into(), "pod annotations".into())
        );
        assert_eq!(source("bufferSeconds"), (5.into(), "builtin".into()));
        assert!(explained.iter().all(|p| !p.path.starts_with("rules")));
    }

    #[test]
    fn annotation_overrides_beat_rules() {
        let eff = EffectivePolicy::builtin();
        let o = crate::policy::parse::parse_spec("preStop: {action: none}").unwrap();
        let r = eff.resolve(None, "web", "nginx:1", Some(&o)).unwrap();
        assert_eq!(r.policy.action, Action::None);
    }

    #[test]
    fn container_selection_uses_globs_and_excludes_mesh_proxies_by_default() {
        let eff = EffectivePolicy::builtin();
        assert!(eff.selects("app"));
        assert!(!eff.selects("istio-proxy"));
        assert!(!eff.selects("linkerd-proxy"));
        assert!(!eff.selects("queue-proxy"));
        let ns = layer(
            "ns",
            "containers: {include: ['app*'], exclude: ['app-debug']}",
        );
        let eff = EffectivePolicy::new(None, Some(&ns));
        assert!(eff.selects("app-main"));
        assert!(!eff.selects("app-debug"));
        assert!(!eff.selects("sidecar"));
    }

    #[test]
    fn check_finds_incomplete_actions_at_the_rule_path() {
        let ns = layer(
            "ns",
            "rules:\n- name: registry\n  match: {podLabels: {registry: nacos}}\n  set: {preStop: {action: nacos}}\n",
        );
        let errors = EffectivePolicy::new(None, Some(&ns)).check();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].path, "rules[0].set.preStop.nacos.server");
        let cluster = layer("cluster", "preStop: {nacos: {server: 'http://nacos:8848'}}");
        assert!(
            EffectivePolicy::new(Some(&cluster), Some(&ns))
                .check()
                .is_empty()
        );
    }

    /// `inject` unsaid follows `maxSeconds` in every layer; an explicit `false` anywhere below
    /// stays until a higher layer or rule says `inject` itself.
    #[test]
    fn declaring_a_start_time_opts_in_unless_a_layer_says_inject_false() {
        let startup = |cluster: &str, ns: &str| {
            let eff = EffectivePolicy::new(Some(&layer("c", cluster)), Some(&layer("n", ns)));
            let p = eff.resolve(None, "app", "app:1", None).unwrap().policy;
            p.startup.as_ref().map(|s| s.inject)
        };
        assert_eq!(
            startup("bufferSeconds: 5", "startup: {maxSeconds: 120}"),
            Some(true)
        );
        assert_eq!(
            startup("startup: {maxSeconds: 60}", "bufferSeconds: 5"),
            Some(true)
        );
        assert_eq!(
            startup("startup: {inject: false}", "startup: {maxSeconds: 120}"),
            Some(false)
        );
        assert_eq!(
            startup(
                "startup: {inject: false, maxSeconds: 60}",
                "startup: {inject: true}"
            ),
            Some(true)
        );
        assert_eq!(
            startup("startup: {inject: false}", "bufferSeconds: 5"),
            None
        );
    }

    #[test]
    fn a_start_time_is_declared_per_policy_or_rule_and_injection_needs_one() {
        use crate::policy::Startup;
        let eff = EffectivePolicy::builtin();
        let p = eff.resolve(None, "app", "app:1", None).unwrap().policy;
        assert_eq!(p.startup, None, "no start time is declared by default");
        let cluster = layer(
            "cluster",
            "startup: {maxSeconds: 30}\nrules:\n- match: {podLabels: {framework: spring-boot}}\n  set: {startup: {inject: true, maxSeconds: 120}, readiness: {initialDelaySeconds: 20}}\n",
        );
        let ns = layer("ns", "startup: {periodSeconds: 5}\n");
        let eff = EffectivePolicy::new(Some(&cluster), Some(&ns));
        let plain = eff.resolve(None, "app", "app:1", None).unwrap().policy;
        assert_eq!(
            plain.startup,
            Some(Startup {
                inject: true,
                max_seconds: 30,
                period: Some(5),
                handler: StartupHandler::Liveness
            })
        );
        let spring = eff
            .resolve(
                Some(&labels(&[("framework", "spring-boot")])),
                "app",
                "app:1",
                None,
            )
            .unwrap()
            .policy;
        assert_eq!(
            spring.startup,
            Some(Startup {
                inject: true,
                max_seconds: 120,
                period: Some(5),
                handler: StartupHandler::Liveness
            })
        );
        assert_eq!(spring.readiness.as_ref().unwrap().initial_delay, 20);

        let ns = layer(
            "ns",
            "rules:\n- name: slow\n  match: {image: 'legacy*'}\n  set: {startup: {inject: true}}\n",
        );
        let errors = EffectivePolicy::new(None, Some(&ns)).check();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].path, "rules[0].set.startup.maxSeconds");
        assert!(
            errors[0]
                .message
                .starts_with("required when startup.inject is true")
        );
    }

    #[test]
    fn description_names_the_layers_and_versions() {
        let cluster = layer("cluster.yaml", "bufferSeconds: 1");
        let eff = EffectivePolicy::new(Some(&cluster), None);
        assert!(
            eff.description().starts_with("builtin, cluster.yaml@"),
            "{}",
            eff.description()
        );
    }
}
