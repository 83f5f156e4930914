//! Layer merging: a later layer's field replaces an earlier one's, nested sections merge field by
//! field, lists replace wholesale (appending `exclude` lists across layers would make a container
//! impossible to re-include). Rules are not merged here: they are collected by
//! [`super::effective::EffectivePolicy`].

use super::spec::*;

/// Merging of one layer over another.
pub trait Merge {
    /// Overlays `over` on `self`.
    fn merge_from(&mut self, over: &Self);
}

macro_rules! impl_merge {
    ($ty:ty { leaf: [$($leaf:ident),* $(,)?], nested: [$($nested:ident),* $(,)?] $(,)? }) => {
        impl Merge for $ty {
            fn merge_from(&mut self, over: &Self) {
                $(
                    if over.$leaf.is_some() {
                        self.$leaf.clone_from(&over.$leaf);
                    }
                )*
                $(
                    match (&mut self.$nested, &over.$nested) {
                        (Some(mine), Some(theirs)) => mine.merge_from(theirs),
                        (mine @ None, Some(theirs)) => *mine = Some(theirs.clone()),
                        _ => {}
                    }
                )*
            }
        }
    };
}

impl_merge!(PolicySpec {
    leaf: [
        shutdown_seconds,
        buffer_seconds,
        grace_period,
        presets,
        serving_only,
        sidecars
    ],
    nested: [pre_stop, env, readiness, startup, containers, helper_image],
});
impl_merge!(PreStopSpec {
    leaf: [
        action,
        sleep_seconds,
        sleep_handler,
        existing,
        helper,
        nginx_stop,
        unknown_hook_seconds
    ],
    nested: [exec, nacos, drain],
});
impl_merge!(DrainSpec {
    leaf: [
        mode,
        min_seconds,
        quiet_seconds,
        max_seconds,
        traffic,
        ignore_ports
    ],
    nested: [],
});
impl_merge!(ExecSpec {
    leaf: [command, duration_seconds],
    nested: [],
});
impl_merge!(NacosSpec {
    leaf: [
        server,
        api_version,
        namespace_id,
        group_name,
        service_name,
        cluster_name,
        port,
        ephemeral,
        timeout_seconds
    ],
    nested: [auth],
});
impl_merge!(NacosAuthSpec {
    leaf: [secret_name, username_key, password_key],
    nested: [],
});
impl_merge!(EnvSpec {
    leaf: [pod_ip, extra],
    nested: [],
});
impl_merge!(ReadinessSpec {
    leaf: [
        inject,
        handler,
        path,
        port,
        scheme,
        initial_delay_seconds,
        period_seconds,
        timeout_seconds,
        failure_threshold,
        success_threshold,
    ],
    nested: [],
});
impl_merge!(StartupSpec {
    leaf: [inject, max_seconds, period_seconds, handler],
    nested: [],
});
impl_merge!(ContainerSelection {
    leaf: [include, exclude],
    nested: [],
});
impl_merge!(HelperImageSpec {
    leaf: [image, pull_policy],
    nested: [],
});

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::parse::parse_spec;

    fn merged(layers: &[&str]) -> PolicySpec {
        let mut acc = PolicySpec::default();
        for l in layers {
            acc.merge_from(&parse_spec(l).unwrap());
        }
        acc
    }

    #[test]
    fn later_layers_win_field_by_field() {
        let m = merged(&[
            "preStop: {action: nacos, sleepSeconds: 30, nacos: {server: 'http://a:8848', groupName: G}}",
            "preStop: {sleepSeconds: 35, nacos: {server: 'http://b:8848'}}",
        ]);
        let ps = m.pre_stop.unwrap();
        assert_eq!(ps.action, Some(ActionKind::Nacos));
        assert_eq!(ps.sleep_seconds.map(|s| s.get()), Some(35));
        let nacos = ps.nacos.unwrap();
        assert_eq!(nacos.server.as_deref(), Some("http://b:8848"));
        assert_eq!(nacos.group_name.as_deref(), Some("G"));
    }

    #[test]
    fn lists_replace_rather_than_append() {
        let m = merged(&[
            "containers: {exclude: [istio-proxy, linkerd-proxy]}",
            "containers: {exclude: [vault-agent]}",
        ]);
        assert_eq!(m.containers.unwrap().exclude.unwrap(), vec!["vault-agent"]);
    }

    #[test]
    fn absent_fields_keep_the_lower_layer() {
        let m = merged(&["shutdownSeconds: 20\nbufferSeconds: 3", "bufferSeconds: 7"]);
        assert_eq!(m.shutdown_seconds.map(|s| s.get()), Some(20));
        assert_eq!(m.buffer_seconds.map(|s| s.get()), Some(7));
    }
}
