//! How `/mutate` reads the pod off the wire: into k8s-openapi's `Pod`, with only the members the
//! engine reads.
//!
//! Decoding a review is most of the cost of answering it (`cargo bench --bench admission`,
//! `parts/*`), and most of that is members the engine never looks at: `metadata.managedFields`
//! (an opaque `fieldsV1` tree per field manager), `status`, the scheduling, security and DNS
//! members of the spec, and the source of every volume (the service-account token alone is a
//! projected volume of three sources). Those are skipped by the parser (still checked to be
//! well-formed JSON, never built). What is decoded is decoded by k8s-openapi, as usual: all
//! other metadata, the containers and init containers whole, and of each volume its name and
//! `emptyDir` (how the engine tells its own helper volume from a foreign one).
//!
//! The engine's patch is written against the JSON the API server sent, never against this
//! decoded pod, so the skipped members are kept as they are; what it computes is the same as for
//! the whole pod (unit tests below, the property test in `tests/properties.rs`, and
//! `tests/server.rs` against the captured reviews). An engine change that starts reading another
//! member of the spec must add it to [`SPEC_MEMBERS`] and to the pods the property test
//! generates; once the member is generated, the test fails while the list lacks it.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use k8s_openapi::api::core::v1::{Pod, PodSpec, Volume};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::de::value::{CowStrDeserializer, MapAccessDeserializer, MapDeserializer};
use serde::de::{self, DeserializeSeed, IgnoredAny, IntoDeserializer, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

/// The members of `spec` the engine reads. `volumes` is decoded apart (names and `emptyDir`).
pub const SPEC_MEMBERS: [&str; 5] = [
    "containers",
    "initContainers",
    "os",
    "restartPolicy",
    "terminationGracePeriodSeconds",
];
/// The members of each volume the engine reads.
pub const VOLUME_MEMBERS: [&str; 2] = ["name", "emptyDir"];
/// The member of `metadata` that is skipped (everything else in it is read).
const SKIPPED_METADATA: &str = "managedFields";

/// A pod as `/mutate` decodes it: a k8s-openapi [`Pod`] holding only what the engine reads
/// (see the module documentation).
/// Boxed: a `Pod` is 2.4 KB inline and the review holds two, moved a few times while decoding.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WirePod(pub Box<Pod>);

impl k8s_openapi::Resource for WirePod {
    const API_VERSION: &'static str = <Pod as k8s_openapi::Resource>::API_VERSION;
    const GROUP: &'static str = <Pod as k8s_openapi::Resource>::GROUP;
    const KIND: &'static str = <Pod as k8s_openapi::Resource>::KIND;
    const VERSION: &'static str = <Pod as k8s_openapi::Resource>::VERSION;
    const URL_PATH_SEGMENT: &'static str = <Pod as k8s_openapi::Resource>::URL_PATH_SEGMENT;
    type Scope = <Pod as k8s_openapi::Resource>::Scope;
}

impl k8s_openapi::Metadata for WirePod {
    type Ty = ObjectMeta;

    fn metadata(&self) -> &ObjectMeta {
        &self.0.metadata
    }

    fn metadata_mut(&mut self) -> &mut ObjectMeta {
        &mut self.0.metadata
    }
}

/// The members decoded; others (`status`, unknown ones) are skipped without being materialised.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Members<'a> {
    #[serde(borrow)]
    api_version: Option<Key<'a>>,
    #[serde(borrow)]
    kind: Option<Key<'a>>,
    #[serde(default, deserialize_with = "metadata_without_managed_fields")]
    metadata: ObjectMeta,
    #[serde(default, deserialize_with = "spec_members")]
    spec: Option<PodSpec>,
}

impl<'de> Deserialize<'de> for WirePod {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let m = Members::deserialize(deserializer)?;
        // As strict as k8s-openapi's own `Pod`: other values are some other object; absent
        // ones are accepted, as it does.
        for (member, found, expected) in [
            (
                "apiVersion",
                &m.api_version,
                <Pod as k8s_openapi::Resource>::API_VERSION,
            ),
            ("kind", &m.kind, <Pod as k8s_openapi::Resource>::KIND),
        ] {
            if let Some(Key(v)) = found
                && v != expected
            {
                return Err(de::Error::invalid_value(
                    de::Unexpected::Str(v),
                    &format!("{member} {expected}").as_str(),
                ));
            }
        }
        Ok(WirePod(Box::new(Pod {
            metadata: m.metadata,
            spec: m.spec,
            status: None,
        })))
    }
}

/// Decodes an object of type `T` (by k8s-openapi) from only the members `keep` accepts.
struct Only<T> {
    keep: fn(&str) -> bool,
    expecting: &'static str,
    marker: PhantomData<T>,
}

impl<T> Only<T> {
    fn new(keep: fn(&str) -> bool, expecting: &'static str) -> Self {
        Only {
            keep,
            expecting,
            marker: PhantomData,
        }
    }
}

impl<'de, T: Deserialize<'de>> Visitor<'de> for Only<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.expecting)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
        T::deserialize(MapAccessDeserializer::new(Filtered::new(
            map, self.keep, None,
        )))
    }
}

fn metadata_without_managed_fields<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<ObjectMeta, D::Error> {
    deserializer.deserialize_map(Only::new(
        |key| key != SKIPPED_METADATA,
        "an ObjectMeta object",
    ))
}

/// The spec's members the engine reads; `volumes` is taken aside while the map is read, decoded
/// volume by volume, and put back into the spec afterwards.
fn spec_members<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<PodSpec>, D::Error> {
    struct SpecVisitor;
    impl<'de> Visitor<'de> for SpecVisitor {
        type Value = Option<PodSpec>;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a PodSpec object")
        }

        fn visit_none<E: de::Error>(self) -> Result<Option<PodSpec>, E> {
            Ok(None)
        }

        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Option<PodSpec>, D::Error> {
            d.deserialize_map(self)
        }

        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Option<PodSpec>, A::Error> {
            let mut volumes = None;
            let mut spec = PodSpec::deserialize(MapAccessDeserializer::new(Filtered {
                volumes: Some(&mut volumes),
                ..Filtered::new(map, |key| SPEC_MEMBERS.contains(&key), None)
            }))?;
            spec.volumes = volumes
                .flatten()
                .map(|v| v.into_iter().map(|v| v.0).collect());
            Ok(Some(spec))
        }
    }
    deserializer.deserialize_option(SpecVisitor)
}

/// A volume with only [`VOLUME_MEMBERS`].
struct VolumeName(Volume);

impl<'de> Deserialize<'de> for VolumeName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer
            .deserialize_map(Only::new(
                |key| VOLUME_MEMBERS.contains(&key),
                "a Volume object",
            ))
            .map(VolumeName)
    }
}

/// A map with only the members `keep` accepts: the others' values are skipped by the parser,
/// never built. When `volumes` is set, the `volumes` member is decoded into it instead; the
/// member named by `emptied`, skipped too, is given as an empty object (for a member the
/// decoded type requires).
pub(super) struct Filtered<'v, A> {
    inner: A,
    keep: fn(&str) -> bool,
    volumes: Option<&'v mut Option<Option<Vec<VolumeName>>>>,
    emptied: Option<&'static str>,
    /// The key just returned is `emptied`: its value is the empty object.
    empty_value_next: bool,
}

impl<A> Filtered<'static, A> {
    /// `inner` with only the members `keep` accepts, and `emptied` as an empty object.
    pub(super) fn new(inner: A, keep: fn(&str) -> bool, emptied: Option<&'static str>) -> Self {
        Filtered {
            inner,
            keep,
            volumes: None,
            emptied,
            empty_value_next: false,
        }
    }
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for Filtered<'_, A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        while let Some(Key(key)) = self.inner.next_key()? {
            if !(self.keep)(&key) {
                match &mut self.volumes {
                    Some(volumes) if key == "volumes" => {
                        **volumes = Some(self.inner.next_value()?);
                        continue;
                    }
                    _ => {
                        self.inner.next_value::<IgnoredAny>()?;
                    }
                }
                if self.emptied != Some(key.as_ref()) {
                    continue;
                }
                self.empty_value_next = true;
            }
            let key: CowStrDeserializer<'_, A::Error> = key.into_deserializer();
            return seed.deserialize(key).map(Some);
        }
        Ok(None)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, A::Error> {
        if std::mem::take(&mut self.empty_value_next) {
            let empty = MapDeserializer::<_, A::Error>::new(std::iter::empty::<((), ())>());
            return seed.deserialize(empty);
        }
        self.inner.next_value_seed(seed)
    }

    fn size_hint(&self) -> Option<usize> {
        None
    }
}

/// A member name or short string, borrowed from the input when it has no escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Key<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for KeyVisitor<'a> {
            type Value = Key<'a>;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }

            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'a>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'a>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
        }
        deserializer.deserialize_str(KeyVisitor(std::marker::PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURES: [&[u8]; 3] = [
        include_bytes!("../../tests/fixtures/admission/pod-create-kubectl-apply.json"),
        include_bytes!("../../tests/fixtures/admission/pod-create-kubectl-run.json"),
        include_bytes!("../../tests/fixtures/admission/pod-create-dry-run.json"),
    ];

    fn object(review: &[u8]) -> serde_json::Value {
        let v: serde_json::Value = serde_json::from_slice(review).unwrap();
        v["request"]["object"].clone()
    }

    /// The whole pod as k8s-openapi decodes it, less what `WirePod` skips.
    fn trimmed(full: Pod) -> Pod {
        let spec = full.spec.map(|s| PodSpec {
            containers: s.containers,
            init_containers: s.init_containers,
            restart_policy: s.restart_policy,
            termination_grace_period_seconds: s.termination_grace_period_seconds,
            volumes: s.volumes.map(|v| {
                v.into_iter()
                    .map(|v| Volume {
                        name: v.name,
                        empty_dir: v.empty_dir,
                        ..Default::default()
                    })
                    .collect()
            }),
            ..Default::default()
        });
        let mut metadata = full.metadata;
        metadata.managed_fields = None;
        Pod {
            metadata,
            spec,
            status: None,
        }
    }

    #[test]
    fn the_captured_pods_decode_as_k8s_openapi_does_less_the_skipped_members() {
        for review in FIXTURES {
            let json = object(review);
            let full: Pod = serde_json::from_value(json.clone()).unwrap();
            assert!(
                full.metadata.managed_fields.is_some(),
                "fixture has managedFields"
            );
            let spec = full.spec.as_ref().unwrap();
            assert!(
                spec.tolerations.is_some() && spec.volumes.as_ref().unwrap()[0].projected.is_some(),
                "fixture has skipped spec members"
            );
            let wire: WirePod = serde_json::from_value(json).unwrap();
            assert_eq!(*wire.0, trimmed(full));
        }
    }

    #[test]
    fn volumes_keep_their_names_and_empty_dirs_wherever_the_members_are() {
        let json = br#"{"spec":{"volumes":[
              {"configMap":{"name":"c"},"name":"a"},
              {"name":"podgrace-helper","emptyDir":{"medium":"Memory"}}],
            "tolerations":[{"key":"k"}],"containers":[{"name":"app"}],"affinity":{"x":[1,{}]}}}"#;
        let pod: WirePod = serde_json::from_slice(json).unwrap();
        let spec = pod.0.spec.unwrap();
        let volumes = spec.volumes.unwrap();
        assert_eq!(volumes[0].name, "a");
        assert!(volumes[0].config_map.is_none() && volumes[0].empty_dir.is_none());
        assert_eq!(volumes[1].name, "podgrace-helper");
        assert_eq!(
            volumes[1].empty_dir.as_ref().unwrap().medium.as_deref(),
            Some("Memory")
        );
        assert!(spec.tolerations.is_none() && spec.affinity.is_none());
        assert_eq!(spec.containers[0].name, "app");
        for (json, volumes) in [
            (r#"{"spec":{"containers":[]}}"#, None),
            (r#"{"spec":{"containers":[],"volumes":null}}"#, None),
            (r#"{"spec":{"containers":[],"volumes":[]}}"#, Some(0)),
        ] {
            let pod: WirePod = serde_json::from_str(json).unwrap();
            assert_eq!(
                pod.0.spec.unwrap().volumes.map(|v| v.len()),
                volumes,
                "{json}"
            );
        }
        let pod: WirePod = serde_json::from_str(r#"{"spec":null}"#).unwrap();
        assert!(pod.0.spec.is_none());
    }

    /// What the skipped members cannot change: the engine's answer, under policies that inject
    /// every kind of thing (sleep, nacos, helper, probes, grace).
    #[test]
    fn the_engine_answers_the_same_for_the_wire_pod_and_the_full_pod() {
        use crate::engine::{self, Context};
        use crate::policy::{EffectivePolicy, Origin, load_layer};
        let nacos = "preStop: {action: nacos, helper: inject, sleepSeconds: 30, \
                     nacos: {server: 'http://nacos:8848', apiVersion: v2}}\n\
                     readiness: {handler: http, path: /ready}";
        let layers = [
            include_str!("../../tests/fixtures/policies/cluster.yaml"),
            nacos,
        ]
        .map(|text| load_layer(text, Origin::hashed("test", text)).unwrap());
        let policies = [
            EffectivePolicy::new(None, None),
            EffectivePolicy::new(Some(&layers[0]), None),
            EffectivePolicy::new(Some(&layers[0]), Some(&layers[1])),
        ];
        let mut injected = String::new();
        for review in FIXTURES {
            let json = object(review);
            let full: Pod = serde_json::from_value(json.clone()).unwrap();
            let wire: WirePod = serde_json::from_value(json).unwrap();
            for policy in &policies {
                let a = engine::mutate(&full, policy, &Context::default()).unwrap();
                let b = engine::mutate(&wire.0, policy, &Context::default()).unwrap();
                assert_eq!(a.patch, b.patch);
                assert_eq!(a.warnings, b.warnings);
                assert_eq!(format!("{:?}", a.record), format!("{:?}", b.record));
                injected += &serde_json::to_string(&a.patch).unwrap();
            }
        }
        for kind in [
            "sleep",
            "podgrace-helper",
            "deregister",
            "readinessProbe",
            "POD_IP",
        ] {
            assert!(injected.contains(kind), "no {kind} in {injected}");
        }
    }

    #[test]
    fn escaped_member_names_and_a_skipped_member_anywhere_in_metadata() {
        let json = br#"{"apiVersion":"v1","kind":"Pod",
            "metadata":{"managedFields":[{"manager":"x","fieldsV1":{"f:a":{}}}],
            "n\u0061me":"p","labels":{"a":"b"},"managedFields":null},"spec":{"containers":[]}}"#;
        let pod: WirePod = serde_json::from_slice(json).unwrap();
        assert_eq!(pod.0.metadata.name.as_deref(), Some("p"));
        assert_eq!(pod.0.metadata.labels.unwrap()["a"], "b");
        assert!(pod.0.metadata.managed_fields.is_none());
        assert!(pod.0.spec.unwrap().containers.is_empty());
    }

    #[test]
    fn malformed_members_are_still_errors() {
        let pod = |rest: &str| format!(r#"{{"apiVersion":"v1","kind":"Pod",{rest}}}"#);
        for (json, expected) in [
            (pod(r#""metadata":{"labels":[1]}"#), "invalid type"),
            (pod(r#""spec":{"containers":{}}"#), "invalid type"),
            (pod(r#""metadata":{"managedFields":[}"#), "expected value"),
            (pod(r#""spec":{"tolerations":[}"#), "expected value"),
            (pod(r#""spec":{"volumes":[{"name":1}]}"#), "invalid type"),
            (pod(r#""spec":{"volumes":{}}"#), "invalid type"),
            (pod(r#""spec":[]"#), "invalid type"),
        ] {
            let err = serde_json::from_str::<WirePod>(&json)
                .unwrap_err()
                .to_string();
            assert!(err.contains(expected), "{json}: {err}");
        }
    }

    #[test]
    fn other_objects_are_not_pods() {
        for (json, expected) in [
            (
                r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{}}"#,
                "expected kind Pod",
            ),
            (
                r#"{"apiVersion":"apps/v1","kind":"Pod","metadata":{}}"#,
                "expected apiVersion v1",
            ),
        ] {
            let err = serde_json::from_str::<WirePod>(json)
                .unwrap_err()
                .to_string();
            assert!(err.contains(expected), "{json}: {err}");
            // k8s-openapi's Pod refuses the same objects.
            assert!(serde_json::from_str::<Pod>(json).is_err());
        }
        // Both accept an object that does not say what it is.
        assert!(serde_json::from_str::<WirePod>(r#"{"metadata":{}}"#).is_ok());
        assert!(serde_json::from_str::<Pod>(r#"{"metadata":{}}"#).is_ok());
    }
}
