//! AdmissionReview on the wire. Requests decode straight into `kube`'s `AdmissionRequest` (one
//! pass over the body, no intermediate tree; pods as [`WirePod`]; the request's members no
//! handler reads, [`UNREAD_REQUEST_MEMBERS`], skipped). Responses are written by hand
//! around `kube`'s `AdmissionResponse` because its serializer emits `patch` as an array of
//! numbers; the API documents a base64 string, which is also a third of the size.

use std::fmt;
use std::marker::PhantomData;

use base64::Engine as _;
use kube::core::admission::{AdmissionRequest, AdmissionResponse};
use kube::core::{DynamicObject, Resource, Status, TypeMeta};
use serde::de::value::MapAccessDeserializer;
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

use super::pod_wire::{Filtered, WirePod};

/// Members of the request that no handler reads. The parser skips them (still checking that
/// they are well-formed JSON) instead of building them: the requester's groups and extra
/// attributes, the create options as a dynamic object, and the kind and resource as originally
/// requested (handlers read `kind`, `resource` and `subResource`); a third of the allocations of
/// decoding a pod review (docs/PERFORMANCE.md). kube's type requires `userInfo`, so it is
/// decoded as empty; the others are absent. A handler that starts reading one must take it off
/// this list.
pub const UNREAD_REQUEST_MEMBERS: [&str; 5] = [
    "userInfo",
    "options",
    "requestKind",
    "requestResource",
    "requestSubResource",
];

/// Why a body is not an AdmissionReview we can answer.
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    /// Not JSON, or not shaped like an AdmissionReview.
    #[error("malformed AdmissionReview: {0}")]
    Malformed(serde_json::Error),
    /// No `request` to answer.
    #[error("AdmissionReview has no request")]
    MissingRequest,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", bound(deserialize = "T: Deserialize<'de>"))]
struct Envelope<T: Resource> {
    #[serde(default)]
    api_version: String,
    #[serde(default)]
    kind: String,
    #[serde(default, deserialize_with = "request_without_unread")]
    request: Option<AdmissionRequest<T>>,
}

fn request_without_unread<'de, D, T>(
    deserializer: D,
) -> Result<Option<AdmissionRequest<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Resource + Deserialize<'de>,
{
    struct RequestVisitor<T>(PhantomData<T>);
    impl<'de, T: Resource + Deserialize<'de>> Visitor<'de> for RequestVisitor<T> {
        type Value = Option<AdmissionRequest<T>>;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an AdmissionRequest object")
        }

        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_map(self)
        }

        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            let members = Filtered::new(
                map,
                |key| !UNREAD_REQUEST_MEMBERS.contains(&key),
                Some("userInfo"),
            );
            AdmissionRequest::deserialize(MapAccessDeserializer::new(members)).map(Some)
        }
    }
    deserializer.deserialize_option(RequestVisitor(PhantomData))
}

/// A decoded request.
pub enum Decoded<T: Resource> {
    /// The object is the expected type.
    Typed(Box<AdmissionRequest<T>>),
    /// Some other object (another kind, or one that does not parse as `T`), with why.
    Other(Box<AdmissionRequest<DynamicObject>>, String),
}

fn envelope<T>(body: &[u8]) -> Result<Option<AdmissionRequest<T>>, serde_json::Error>
where
    T: Resource + for<'de> Deserialize<'de>,
{
    let env: Envelope<T> = serde_json::from_slice(body)?;
    Ok(env.request.map(|mut req| {
        req.types = TypeMeta {
            api_version: env.api_version,
            kind: env.kind,
        };
        req
    }))
}

/// Decodes a review whose object should be a `T` (a Pod for `/mutate`, a ConfigMap for
/// `/validate`). Bodies that are valid reviews of other objects come back as [`Decoded::Other`].
pub fn decode<T>(body: &[u8]) -> Result<Decoded<T>, ReviewError>
where
    T: Resource + for<'de> Deserialize<'de>,
{
    match envelope::<T>(body) {
        Ok(Some(req)) => Ok(Decoded::Typed(Box::new(req))),
        Ok(None) => Err(ReviewError::MissingRequest),
        // The common case is handled in one pass; only unusual bodies are parsed twice.
        Err(typed_err) => match envelope::<DynamicObject>(body) {
            Ok(Some(req)) => Ok(Decoded::Other(Box::new(req), typed_err.to_string())),
            Ok(None) => Err(ReviewError::MissingRequest),
            Err(e) => Err(ReviewError::Malformed(e)),
        },
    }
}

/// Decodes a pod review.
pub fn decode_pod(body: &[u8]) -> Result<Decoded<WirePod>, ReviewError> {
    decode::<WirePod>(body)
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Out<'a> {
    api_version: &'a str,
    kind: &'a str,
    response: ResponseOut<'a>,
}

/// The response, but for `patch`, which [`encode`] appends itself.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ResponseOut<'a> {
    uid: &'a str,
    allowed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<&'a Status>,
    #[serde(skip_serializing_if = "Option::is_none")]
    patch_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    warnings: Option<&'a Vec<String>>,
    #[serde(skip_serializing_if = "std::collections::HashMap::is_empty")]
    audit_annotations: &'a std::collections::HashMap<String, String>,
}

/// Encodes the AdmissionReview answering with `resp`, in the request's API version.
pub fn encode(resp: &AdmissionResponse) -> Vec<u8> {
    let api_version = if resp.types.api_version.is_empty() {
        "admission.k8s.io/v1"
    } else {
        &resp.types.api_version
    };
    let patch = resp.patch.as_deref();
    let out = Out {
        api_version,
        kind: "AdmissionReview",
        response: ResponseOut {
            uid: &resp.uid,
            allowed: resp.allowed,
            status: (!resp.allowed).then_some(&resp.result),
            patch_type: patch.map(|_| "JSONPatch"),
            warnings: resp.warnings.as_ref().filter(|w| !w.is_empty()),
            audit_annotations: &resp.audit_annotations,
        },
    };
    let patch_len = patch.map_or(0, |p| base64::encoded_len(p.len(), true).unwrap_or(0));
    let text_len = |s: &String| s.len() + 8;
    let capacity = 256
        + patch_len
        + resp.warnings.iter().flatten().map(text_len).sum::<usize>()
        + resp
            .audit_annotations
            .iter()
            .map(|(k, v)| text_len(k) + text_len(v))
            .sum::<usize>();
    // Sized for the whole answer, so that it is never regrown and copied on the way.
    let mut buf = Vec::with_capacity(capacity);
    // Plain strings, bools and maps of strings: serialization cannot fail.
    if serde_json::to_writer(&mut buf, &out).is_err() {
        return Vec::new();
    }
    if let Some(patch) = patch {
        // `…}}` becomes `…,"patch":"<base64>"}}`. Base64 needs no JSON escaping, so the patch is
        // encoded straight into the answer, not into a string that serde would then copy and
        // check byte by byte.
        debug_assert!(buf.ends_with(b"}}"));
        buf.truncate(buf.len() - 2);
        buf.extend_from_slice(br#","patch":""#);
        let start = buf.len();
        buf.resize(start + patch_len, 0);
        let written = base64::engine::general_purpose::STANDARD
            .encode_slice(patch, &mut buf[start..])
            .unwrap_or(0);
        buf.truncate(start + written);
        buf.extend_from_slice(br#""}}"#);
    }
    buf
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURE: &[u8] =
        include_bytes!("../../tests/fixtures/admission/pod-create-kubectl-apply.json");

    #[test]
    fn the_captured_request_decodes_as_a_pod_review() {
        let Decoded::Typed(req) = decode_pod(FIXTURE).unwrap() else {
            panic!("not typed")
        };
        assert_eq!(req.uid, "805e6736-4d6b-4f4f-bf08-6ec37a10c773");
        assert_eq!(req.types.api_version, "admission.k8s.io/v1");
        assert_eq!(req.namespace.as_deref(), Some("probe"));
        assert_eq!(
            req.object.unwrap().0.spec.unwrap().containers[0].name,
            "app"
        );
    }

    /// The same request as kube's own decoding, but for what is skipped on purpose.
    #[test]
    fn captured_requests_decode_as_kube_decodes_them_less_the_unread_members() {
        let fixtures: [&[u8]; 3] = [
            FIXTURE,
            include_bytes!("../../tests/fixtures/admission/pod-create-kubectl-run.json"),
            include_bytes!("../../tests/fixtures/admission/pod-create-dry-run.json"),
        ];
        for body in fixtures {
            let review: kube::core::admission::AdmissionReview<WirePod> =
                serde_json::from_slice(body).unwrap();
            let mut expected: AdmissionRequest<WirePod> = review.try_into().unwrap();
            // What is skipped is really there in what the API server sends.
            assert!(expected.options.is_some());
            assert!(expected.user_info.username.is_some());
            assert!(expected.request_kind.is_some() && expected.request_resource.is_some());
            expected.user_info = Default::default();
            expected.options = None;
            expected.request_kind = None;
            expected.request_resource = None;
            expected.request_sub_resource = None;
            let Decoded::Typed(got) = decode_pod(body).unwrap() else {
                panic!("not typed")
            };
            assert_eq!(format!("{got:?}"), format!("{expected:?}"));
        }
    }

    #[test]
    fn skipped_members_must_still_be_well_formed_and_user_info_present() {
        let review = |request: &str| {
            format!(
                r#"{{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{request}}}"#
            )
        };
        let head = r#""uid":"u","kind":{"group":"","version":"v1","kind":"Pod"},"resource":{"group":"","version":"v1","resource":"pods"},"operation":"CREATE""#;
        let ok = review(&format!(
            r#"{{{head},"userInfo":{{"username":"x","groups":["a"]}},"options":{{"kind":"CreateOptions"}}}}"#
        ));
        assert!(matches!(decode_pod(ok.as_bytes()), Ok(Decoded::Typed(_))));
        for bad in [
            review(&format!(r#"{{{head},"userInfo":{{"username":}}}}"#)),
            review(&format!(r#"{{{head},"userInfo":{{}},"options":[1,}}"#)),
        ] {
            assert!(
                matches!(decode_pod(bad.as_bytes()), Err(ReviewError::Malformed(_))),
                "{bad}"
            );
        }
        // kube's type requires `userInfo`; so does this decoding.
        let missing = review(&format!("{{{head}}}"));
        assert!(matches!(
            decode_pod(missing.as_bytes()),
            Err(ReviewError::Malformed(_))
        ));
        assert!(matches!(
            decode_pod(review("null").as_bytes()),
            Err(ReviewError::MissingRequest)
        ));
    }

    #[test]
    fn other_kinds_decode_as_other() {
        let body = br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","kind":{"group":"","version":"v1","kind":"ConfigMap"},"resource":{"group":"","version":"v1","resource":"configmaps"},"operation":"CREATE","userInfo":{},"object":{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"}},"oldObject":null}}"#;
        assert!(matches!(decode_pod(body).unwrap(), Decoded::Other(..)));
    }

    #[test]
    fn garbage_and_missing_requests_are_errors() {
        assert!(matches!(
            decode_pod(b"{not json"),
            Err(ReviewError::Malformed(_))
        ));
        assert!(matches!(
            decode_pod(br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#),
            Err(ReviewError::MissingRequest)
        ));
    }

    #[test]
    fn patches_are_base64_strings() {
        let Decoded::Typed(req) = decode_pod(FIXTURE).unwrap() else {
            panic!()
        };
        let patch: json_patch::Patch =
            serde_json::from_str(r#"[{"op":"add","path":"/metadata/labels/x","value":"y"}]"#)
                .unwrap();
        let resp = AdmissionResponse::from(&*req).with_patch(patch).unwrap();
        let out: serde_json::Value = serde_json::from_slice(&encode(&resp)).unwrap();
        assert_eq!(out["apiVersion"], "admission.k8s.io/v1");
        assert_eq!(
            out["response"]["uid"],
            "805e6736-4d6b-4f4f-bf08-6ec37a10c773"
        );
        assert_eq!(out["response"]["patchType"], "JSONPatch");
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(out["response"]["patch"].as_str().unwrap())
            .unwrap();
        assert_eq!(
            decoded,
            br#"[{"op":"add","path":"/metadata/labels/x","value":"y"}]"#
        );
        assert!(out["response"].get("status").is_none());
    }

    /// Every shape of answer is one JSON document with the members the API server reads.
    #[test]
    fn answers_with_and_without_patch_warnings_and_denials_are_well_formed() {
        let Decoded::Typed(req) = decode_pod(FIXTURE).unwrap() else {
            panic!()
        };
        let patch: json_patch::Patch = serde_json::from_str(
            r#"[{"op":"add","path":"/metadata/annotations/a~1b","value":"\"quoted\" → ü"}]"#,
        )
        .unwrap();
        let plain = AdmissionResponse::from(&*req);
        let patched = plain.clone().with_patch(patch).unwrap();
        let mut warned = patched.clone();
        warned.warnings = Some(vec!["w \"1\"".into(), "w2".into()]);
        warned
            .audit_annotations
            .insert("injected".into(), "app: preStop=sleep 10s".into());
        let mut warned_unpatched = plain.clone();
        warned_unpatched.warnings = warned.warnings.clone();
        let denied = plain.clone().deny("no \"way\"");
        for (resp, has_patch) in [
            (&plain, false),
            (&patched, true),
            (&warned, true),
            (&warned_unpatched, false),
            (&denied, false),
        ] {
            let bytes = encode(resp);
            let out: serde_json::Value = serde_json::from_slice(&bytes)
                .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&bytes)));
            let r = &out["response"];
            assert_eq!(out["kind"], "AdmissionReview");
            assert_eq!(r["uid"], resp.uid.as_str());
            assert_eq!(r["allowed"], resp.allowed);
            assert_eq!(r.get("status").is_some(), !resp.allowed);
            assert_eq!(r.get("patchType").is_some(), has_patch);
            let got = r.get("patch").map(|p| {
                base64::engine::general_purpose::STANDARD
                    .decode(p.as_str().unwrap())
                    .unwrap()
            });
            assert_eq!(got, resp.patch);
            let warnings: Option<Vec<String>> = r
                .get("warnings")
                .map(|w| serde_json::from_value(w.clone()).unwrap());
            assert_eq!(warnings, resp.warnings);
            let audit: std::collections::HashMap<String, String> = r
                .get("auditAnnotations")
                .map(|a| serde_json::from_value(a.clone()).unwrap())
                .unwrap_or_default();
            assert_eq!(audit, resp.audit_annotations);
        }
    }
}
