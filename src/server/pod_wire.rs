//! How `/mutate` reads the pod off the wire: into k8s-openapi's `Pod`, minus the members the
//! webhook never reads and that cost the most to materialise.
//!
//! `metadata.managedFields` is an opaque `fieldsV1` JSON tree per field manager; decoding it is
//! about a quarter of the cost of decoding a typical review (`cargo bench --bench admission`,
//! `parts/*`), and `status` is empty or irrelevant on CREATE. Everything the engine reads
//! (all other metadata, the whole spec) is decoded as usual; the engine's patch never touches
//! the skipped members, so what it computes is the same as for the fully decoded pod (tested
//! below and in `tests/server.rs` against the captured reviews).

use std::borrow::Cow;
use std::fmt;

use k8s_openapi::api::core::v1::{Pod, PodSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::de::value::{CowStrDeserializer, MapAccessDeserializer};
use serde::de::{self, DeserializeSeed, IgnoredAny, IntoDeserializer, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

/// The member of `metadata` that is skipped.
const SKIPPED_METADATA: &str = "managedFields";

/// A pod as `/mutate` decodes it: a k8s-openapi [`Pod`] with no `managedFields` and no `status`.
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
    #[serde(default)]
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

fn metadata_without_managed_fields<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<ObjectMeta, D::Error> {
    struct MetaVisitor;
    impl<'de> Visitor<'de> for MetaVisitor {
        type Value = ObjectMeta;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an ObjectMeta object")
        }

        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<ObjectMeta, A::Error> {
            ObjectMeta::deserialize(MapAccessDeserializer::new(SkipMember {
                inner: map,
                skip: SKIPPED_METADATA,
            }))
        }
    }
    deserializer.deserialize_map(MetaVisitor)
}

/// A map with one member left out: its value is skipped by the parser, never built.
struct SkipMember<A> {
    inner: A,
    skip: &'static str,
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for SkipMember<A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        while let Some(Key(key)) = self.inner.next_key()? {
            if key == self.skip {
                self.inner.next_value::<IgnoredAny>()?;
                continue;
            }
            let key: CowStrDeserializer<'_, A::Error> = key.into_deserializer();
            return seed.deserialize(key).map(Some);
        }
        Ok(None)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, A::Error> {
        self.inner.next_value_seed(seed)
    }

    fn size_hint(&self) -> Option<usize> {
        self.inner.size_hint()
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

    #[test]
    fn the_captured_pods_decode_as_k8s_openapi_does_without_managed_fields_and_status() {
        for review in FIXTURES {
            let json = object(review);
            let mut full: Pod = serde_json::from_value(json.clone()).unwrap();
            assert!(
                full.metadata.managed_fields.is_some(),
                "fixture has managedFields"
            );
            full.metadata.managed_fields = None;
            full.status = None;
            let wire: WirePod = serde_json::from_value(json).unwrap();
            assert_eq!(*wire.0, full);
        }
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
