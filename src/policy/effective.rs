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
    /// Whether the rule belongs to the top (most specific) layer given.
    top_layer: bool,
    container: Option<WildMatch>,
    image: Option<ImagePattern>,
    labels: BTreeMap<String, String>,
    set: PolicySpec,
    /// The base with only this rule applied, resolved once: the common case of at most one
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

/// The merged policy of one namespace.
#[derive(Clone, Debug)]
pub struct EffectivePolicy {
    base: PolicySpec,
    base_resolved: Result<Arc<ContainerPolicy>, FieldError>,
    rules: Vec<CompiledRule>,
    include: Vec<WildMatch>,
    exclude: Vec<WildMatch>,
    grace_mode: GraceMode,
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

impl EffectivePolicy {
    /// Layers the built-in defaults, the cluster default and the namespace policy.
    pub fn new(cluster: Option<&PolicyLayer>, namespace: Option<&PolicyLayer>) -> Self {
        let builtin = defaults::builtin();
        let mut base = builtin.clone();
        base.rules = None;
        let mut rules = Vec::new();
        let mut description = vec!["builtin".to_owned()];
        let top = if namespace.is_some() {
            2
        } else if cluster.is_some() {
            1
        } else {
            0
        };
        let layers = [
            (0, Some(("builtin", &builtin))),
            (1, cluster.map(|l| ("cluster", &l.spec))),
            (2, namespace.map(|l| ("namespace", &l.spec))),
        ];
        for (level, layer) in layers {
            let Some((name, spec)) = layer else { continue };
            if level > 0 {
                base.merge_from(spec);
            }
            for (i, rule) in spec.rules.iter().flatten().enumerate() {
                rules.push((rule, name, i, level == top));
            }
        }
        for layer in [cluster, namespace].into_iter().flatten() {
            description.push(layer.origin.to_string());
        }
        let selection = base.containers.clone().unwrap_or_default();
        let globs = |list: Option<Vec<String>>| -> Vec<WildMatch> {
            list.unwrap_or_default()
                .iter()
                .map(|p| WildMatch::new(p))
                .collect()
        };
        let helper = base.helper_image.clone().unwrap_or_default();
        let rules = rules
            .into_iter()
            .map(|(rule, layer, i, top_layer)| compile_rule(&base, rule, layer, i, top_layer))
            .collect();
        EffectivePolicy {
            base_resolved: ContainerPolicy::from_spec(&base).map(Arc::new),
            grace_mode: base.grace_period.unwrap_or(GraceMode::Raise),
            helper_image: (
                helper
                    .image
                    .unwrap_or_else(|| defaults::HELPER_IMAGE.to_owned()),
                helper.pull_policy.unwrap_or(PullPolicy::IfNotPresent),
            ),
            include: globs(selection.include),
            exclude: globs(selection.exclude),
            base,
            rules,
            description: description.join(", "),
        }
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

    /// Image and pull policy of the helper init container.
    pub fn helper_image(&self) -> (&str, PullPolicy) {
        (&self.helper_image.0, self.helper_image.1)
    }

    /// Whether podgrace touches the container called `name` at all.
    pub fn selects(&self, name: &str) -> bool {
        (self.include.is_empty() || self.include.iter().any(|g| g.matches(name)))
            && !self.exclude.iter().any(|g| g.matches(name))
    }

    /// Resolves the policy of one container: base, then matching rules in order, then the pod's
    /// annotation overrides.
    pub fn resolve(
        &self,
        pod_labels: Option<&BTreeMap<String, String>>,
        container_name: &str,
        image: &str,
        overrides: Option<&PolicySpec>,
    ) -> Result<Resolution<'_>, FieldError> {
        let matched: Vec<&CompiledRule> = self
            .rules
            .iter()
            .filter(|rule| rule_matches(rule, pod_labels, container_name, image))
            .collect();
        let policy = match (matched.as_slice(), overrides) {
            ([], None) => self.base_resolved.clone()?,
            ([rule], None) => rule.alone.clone()?,
            _ => {
                let mut spec = self.base.clone();
                for rule in &matched {
                    spec.merge_from(&rule.set);
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
        for rule in self.rules.iter().filter(|r| r.top_layer) {
            if let Err(e) = &rule.alone {
                errors.push(e.clone().within(&format!("{}.set", rule.path)));
            }
        }
        errors
    }
}

fn compile_rule(
    base: &PolicySpec,
    rule: &Rule,
    layer: &str,
    index: usize,
    top_layer: bool,
) -> CompiledRule {
    let mut alone = base.clone();
    alone.merge_from(&rule.set);
    let path = format!("rules[{index}]");
    let label = match &rule.name {
        Some(name) => format!("{layer} {path} ({name})"),
        None => format!("{layer} {path}"),
    };
    CompiledRule {
        label,
        path,
        top_layer,
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
    fn namespace_beats_cluster_and_rules_beat_bases() {
        let cluster = layer(
            "cluster",
            "shutdownSeconds: 20\nrules:\n- match: {podLabels: {framework: spring-boot}}\n  set: {presets: [spring-boot], shutdownSeconds: 30}\n",
        );
        let ns = layer("ns", "shutdownSeconds: 25\nbufferSeconds: 2\n");
        let eff = EffectivePolicy::new(Some(&cluster), Some(&ns));
        let plain = eff.resolve(None, "app", "app:1", None).unwrap().policy;
        assert_eq!((plain.shutdown, plain.buffer), (25, 2));
        let spring = eff
            .resolve(
                Some(&labels(&[("framework", "spring-boot")])),
                "app",
                "app:1",
                None,
            )
            .unwrap()
            .policy;
        assert_eq!(spring.shutdown, 30);
        assert_eq!(spring.presets, vec![Preset::SpringBoot]);
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
