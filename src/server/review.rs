//! AdmissionReview on the wire, both ways.
//!
//! In: [`decode`] reads the envelope and the request members the handlers use, typed, with the
//! object kept as the raw JSON text the API server sent (a slice of the body, not a copy); a
//! handler then decodes the object into the type it reads (a `ConfigMap`), so an object that
//! does not fit its type is told apart from a body that is not a review at all, and is still
//! answered. [`decode_as`] decodes the object with the envelope, in one pass over the body: the
//! pod handler's ordinary path, which falls back to [`decode`] only when that fails. serde skips
//! every member not named here (`userInfo`, `options`, `oldObject`, …) without building it.
//!
//! Out: [`Answer`], serialised once. kube-core's `AdmissionResponse` (kube-core 5.0,
//! `admission.rs`) holds the patch as `Vec<u8>` with serde's default encoding, a JSON array of
//! numbers; the API documents `patch` as base64 (a third of the size, and what every other
//! webhook sends), so the answer has its own type whose patch is written through
//! `serialize_with`.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use json_patch::Patch;
use kube::core::admission::Operation;
use kube::core::{GroupVersionKind, Status};
use serde::ser::Error as _;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::value::RawValue;

use crate::engine::pod_view::{BuiltObjects, PodShape};

/// The API version answered when the request names none (the only one the API server sends
/// since Kubernetes 1.22).
const DEFAULT_API_VERSION: &str = "admission.k8s.io/v1";

/// Why a body is not an AdmissionReview we can answer.
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    /// Not JSON, or not shaped like an AdmissionReview.
    #[error("malformed AdmissionReview: {0}")]
    Malformed(serde_json::Error),
    /// Not UTF-8, which JSON text must be (RFC 8259), anywhere in the body, members podgrace
    /// skips included.
    #[error("malformed AdmissionReview: not UTF-8: {0}")]
    NotUtf8(std::str::Utf8Error),
    /// No `request` to answer.
    #[error("AdmissionReview has no request")]
    MissingRequest,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", bound(deserialize = "O: Deserialize<'de>"))]
struct Envelope<O> {
    #[serde(default)]
    api_version: Option<String>,
    #[serde(default)]
    request: Option<Request<O>>,
}

/// The members of an `AdmissionRequest` the handlers read, with the object decoded as `O`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", bound(deserialize = "O: Deserialize<'de>"))]
pub struct Request<O> {
    /// The review's `apiVersion`, echoed in the answer.
    #[serde(skip)]
    pub api_version: String,
    /// Identifies this admission; the answer must carry it.
    pub uid: String,
    /// The kind of the object (`/v1, Kind=Pod`).
    pub kind: GroupVersionKind,
    /// The subresource, if the request is for one (`status`, `ephemeralcontainers`, …).
    #[serde(default)]
    pub sub_resource: Option<String>,
    /// The object's name as the API server knows it (empty before `generateName` is applied).
    #[serde(default)]
    pub name: String,
    /// The namespace of the object.
    #[serde(default)]
    pub namespace: Option<String>,
    /// CREATE, UPDATE, DELETE or CONNECT.
    pub operation: Operation,
    /// True for `kubectl … --dry-run=server`: nothing is persisted.
    #[serde(default)]
    pub dry_run: bool,
    /// The object (`None` when absent or `null`, as for a DELETE).
    #[serde(default)]
    pub object: Option<O>,
}

/// A request with its object as the raw JSON text the API server sent (a slice of the body).
pub type RawRequest<'a> = Request<&'a RawValue>;

impl<O> Request<O> {
    /// Whether the object is a core `v1` kind named `kind` (not a custom resource that happens
    /// to share the name).
    pub fn is_core(&self, kind: &str) -> bool {
        self.kind.group.is_empty() && self.kind.kind == kind
    }
}

/// Decodes the review in `body`, in one pass, its object kept as raw JSON: what tells a body
/// that is not a review apart from an object that does not fit the type its handler reads.
pub fn decode(body: &[u8]) -> Result<RawRequest<'_>, ReviewError> {
    decode_as(body)
}

/// Decodes the review in `body` and its object as `O`, in one pass. An error does not say
/// which of the two did not fit: [`decode`] tells.
pub fn decode_as<'a, O: Deserialize<'a>>(body: &'a [u8]) -> Result<Request<O>, ReviewError> {
    // serde_json checks the UTF-8 of the strings it reads, not of those it skips: the whole
    // body is checked first, so that every member is held to it, whatever the handler reads.
    let text = std::str::from_utf8(body).map_err(ReviewError::NotUtf8)?;
    let envelope: Envelope<O> = serde_json::from_str(text).map_err(ReviewError::Malformed)?;
    let mut request = envelope.request.ok_or(ReviewError::MissingRequest)?;
    request.api_version = envelope
        .api_version
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| DEFAULT_API_VERSION.to_owned());
    Ok(request)
}

/// What answering the review in `body` builds, for the memory budget: its object counted as
/// the engine's [`PodView`](crate::engine::PodView) would decode it, without decoding it.
/// `None` for a body not shaped like a review of a pod (its decoding stops at the same place).
pub fn built_objects(body: &[u8]) -> Option<BuiltObjects> {
    #[derive(Deserialize)]
    struct EnvelopeShape<'a> {
        #[serde(borrow, default)]
        request: Option<RequestShape<'a>>,
    }
    #[derive(Deserialize)]
    struct RequestShape<'a> {
        #[serde(borrow, default)]
        object: Option<PodShape<'a>>,
    }
    let envelope: EnvelopeShape = serde_json::from_slice(body).ok()?;
    let object = envelope.request?.object.unwrap_or_default();
    Some(object.built_objects())
}

/// The answer to one review: allowed or denied, with a patch, warnings and audit annotations.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Answer {
    #[serde(skip)]
    api_version: String,
    uid: String,
    allowed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<Status>,
    #[serde(skip_serializing_if = "Option::is_none")]
    patch_type: Option<&'static str>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "patch_as_base64"
    )]
    patch: Option<Patch>,
    /// Shown by kubectl to whoever created the object (each under 120 characters).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// Recorded in the API server's audit log, under `<webhook name>/<key>`.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub audit_annotations: BTreeMap<String, String>,
}

/// The review that carries an [`Answer`].
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ReviewOut<'a> {
    api_version: &'a str,
    kind: &'static str,
    response: &'a Answer,
}

impl Answer {
    /// Allows `request` unchanged.
    pub fn allow<O>(request: &Request<O>) -> Answer {
        Answer {
            api_version: request.api_version.clone(),
            uid: request.uid.clone(),
            allowed: true,
            status: None,
            patch_type: None,
            patch: None,
            warnings: Vec::new(),
            audit_annotations: BTreeMap::new(),
        }
    }

    /// Applies `patch` to the object (nothing when it is empty).
    pub fn with_patch(mut self, patch: Patch) -> Answer {
        if !patch.0.is_empty() {
            self.patch_type = Some("JSONPatch");
            self.patch = Some(patch);
        }
        self
    }

    /// Denies the request with `message`, shown to the user as the reason.
    pub fn deny(mut self, message: String) -> Answer {
        self.allowed = false;
        self.patch = None;
        self.patch_type = None;
        // 422 Invalid, the code of the API server's own validation errors.
        self.status = Some(Status {
            code: 422,
            ..Status::failure(&message, "Invalid")
        });
        self
    }

    /// Adds a warning.
    pub fn warn(mut self, warning: impl Into<String>) -> Answer {
        self.warnings.push(warning.into());
        self
    }

    /// Whether the answer carries a patch.
    pub fn has_patch(&self) -> bool {
        self.patch.is_some()
    }

    /// The AdmissionReview carrying this answer, as JSON.
    pub fn to_json(&self) -> Vec<u8> {
        let review = ReviewOut {
            api_version: &self.api_version,
            kind: "AdmissionReview",
            response: self,
        };
        // Strings, numbers and maps with string keys: serialisation cannot fail, but should
        // it, an empty body is a 200 the API server rejects, and `failurePolicy` decides.
        serde_json::to_vec(&review).unwrap_or_default()
    }
}

/// `patch` as the API documents it: the JSON patch's text, base64-encoded. base64's alphabet
/// needs no escaping in a JSON string, so the encoded text goes into the output as a raw value
/// rather than through serde_json's escaping, byte by byte, which was over half of encoding
/// the answer (bench/results/criterion.md, "One admission without sockets, after issue 30").
fn patch_as_base64<S: Serializer>(patch: &Option<Patch>, serializer: S) -> Result<S::Ok, S::Error> {
    match patch {
        Some(patch) => {
            let text = serde_json::to_vec(patch).map_err(S::Error::custom)?;
            let len = base64::encoded_len(text.len(), true).unwrap_or_default();
            let mut quoted = String::with_capacity(len + 2);
            quoted.push('"');
            STANDARD.encode_string(&text, &mut quoted);
            quoted.push('"');
            RawValue::from_string(quoted)
                .map_err(S::Error::custom)?
                .serialize(serializer)
        }
        None => serializer.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;

    use super::*;

    const FIXTURE: &[u8] =
        include_bytes!("../../tests/fixtures/admission/pod-create-kubectl-apply.json");

    #[test]
    fn the_captured_requests_decode_with_their_object_raw() {
        let req = decode(FIXTURE).unwrap();
        assert_eq!(req.uid, "805e6736-4d6b-4f4f-bf08-6ec37a10c773");
        assert_eq!(req.api_version, "admission.k8s.io/v1");
        assert_eq!(req.namespace.as_deref(), Some("probe"));
        assert!(req.is_core("Pod"));
        assert_eq!(req.operation, Operation::Create);
        // The object is the API server's text, unchanged.
        let whole: serde_json::Value = serde_json::from_slice(FIXTURE).unwrap();
        let object: serde_json::Value = serde_json::from_str(req.object.unwrap().get()).unwrap();
        assert_eq!(object, whole["request"]["object"]);
        for body in [
            &include_bytes!("../../tests/fixtures/admission/pod-create-kubectl-run.json")[..],
            include_bytes!("../../tests/fixtures/admission/pod-create-dry-run.json"),
        ] {
            let req = decode(body).unwrap();
            assert!(req.object.is_some());
            assert!(req.is_core("Pod"));
        }
        assert!(
            decode(include_bytes!(
                "../../tests/fixtures/admission/pod-create-dry-run.json"
            ))
            .unwrap()
            .dry_run
        );
    }

    #[test]
    fn unread_members_may_have_any_shape_but_must_be_json() {
        let review = |extra: &str| {
            format!(
                r#"{{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{{"uid":"u","kind":{{"group":"","version":"v1","kind":"Pod"}},"operation":"CREATE"{extra}}}}}"#
            )
        };
        for ok in [
            "",
            r#","userInfo":{"username":"x","groups":["a"]},"options":{"kind":"CreateOptions"}"#,
            r#","userInfo":7,"oldObject":null,"object":null"#,
        ] {
            assert!(decode(review(ok).as_bytes()).is_ok(), "{ok}");
        }
        for bad in [r#","userInfo":{"username":}"#, r#","options":[1,"#] {
            assert!(
                matches!(
                    decode(review(bad).as_bytes()),
                    Err(ReviewError::Malformed(_))
                ),
                "{bad}"
            );
        }
    }

    /// Invalid UTF-8 is refused wherever it is: in the object, or in a member no handler reads
    /// (which serde_json would skip without looking).
    #[test]
    fn a_body_that_is_not_utf8_is_refused_whatever_member_holds_it() {
        let mut review: serde_json::Value = serde_json::from_slice(FIXTURE).unwrap();
        review["request"]["userInfo"]["username"] = "USER".into();
        review["request"]["object"]["metadata"]["managedFields"][0]["manager"] = "MANAGER".into();
        let valid = review.to_string().into_bytes();
        assert!(decode_as::<crate::engine::PodView>(&valid).is_ok());
        for marker in ["USER", "MANAGER"] {
            let mut body = valid.clone();
            let at = body
                .windows(marker.len())
                .position(|w| w == marker.as_bytes())
                .unwrap();
            body.splice(at..at + marker.len(), [0xff, 0xfe]);
            for result in [
                decode(&body).map(drop),
                decode_as::<crate::engine::PodView>(&body).map(drop),
            ] {
                let err = result.unwrap_err();
                assert!(matches!(err, ReviewError::NotUtf8(_)), "{marker}: {err}");
                assert!(err.to_string().contains("not UTF-8"), "{err}");
            }
        }
    }

    #[test]
    fn garbage_missing_requests_and_unanswerable_requests_are_errors() {
        assert!(matches!(
            decode(b"{not json"),
            Err(ReviewError::Malformed(_))
        ));
        assert!(matches!(
            decode(br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#),
            Err(ReviewError::MissingRequest)
        ));
        assert!(matches!(
            decode(br#"{"request":null}"#),
            Err(ReviewError::MissingRequest)
        ));
        // Without a uid there is nothing to answer to.
        let err = decode(br#"{"request":{"kind":{"group":"","version":"v1","kind":"Pod"},"operation":"CREATE"}}"#)
            .unwrap_err();
        assert!(err.to_string().contains("uid"), "{err}");
        let err = decode(br#"{"request":{"uid":"u","kind":{"group":"","version":"v1","kind":"Pod"},"operation":"PATCH"}}"#)
            .unwrap_err();
        assert!(err.to_string().contains("PATCH"), "{err}");
    }

    /// Every shape of answer is one JSON document with the members the API server reads.
    #[test]
    fn answers_with_and_without_patch_warnings_and_denials_are_well_formed() {
        let req = decode(FIXTURE).unwrap();
        let patch: Patch = serde_json::from_str(
            r#"[{"op":"add","path":"/metadata/annotations/a~1b","value":"\"quoted\" → ü"}]"#,
        )
        .unwrap();
        let plain = Answer::allow(&req);
        let patched = plain.clone().with_patch(patch.clone());
        let mut warned = patched.clone().warn("w \"1\"").warn("w2");
        warned
            .audit_annotations
            .insert("injected".into(), "app: preStop=sleep 10s".into());
        let warned_unpatched = plain.clone().warn("w");
        let empty_patch = plain.clone().with_patch(Patch(Vec::new()));
        let denied = plain.clone().deny("no \"way\"".into());
        for (answer, has_patch) in [
            (&plain, false),
            (&patched, true),
            (&warned, true),
            (&warned_unpatched, false),
            (&empty_patch, false),
            (&denied, false),
        ] {
            let bytes = answer.to_json();
            let out: serde_json::Value = serde_json::from_slice(&bytes)
                .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&bytes)));
            let r = &out["response"];
            assert_eq!(out["apiVersion"], "admission.k8s.io/v1");
            assert_eq!(out["kind"], "AdmissionReview");
            assert_eq!(r["uid"], "805e6736-4d6b-4f4f-bf08-6ec37a10c773");
            assert_eq!(r["allowed"], answer.allowed);
            assert_eq!(r.get("status").is_some(), !answer.allowed);
            assert_eq!(r.get("patchType").is_some(), has_patch);
            let got: Option<Patch> = r.get("patch").map(|p| {
                let text = STANDARD.decode(p.as_str().unwrap()).unwrap();
                serde_json::from_slice(&text).unwrap()
            });
            assert_eq!(got, has_patch.then(|| patch.clone()));
            let warnings: Vec<String> = r
                .get("warnings")
                .map(|w| serde_json::from_value(w.clone()).unwrap())
                .unwrap_or_default();
            assert_eq!(warnings, answer.warnings);
            let audit: BTreeMap<String, String> = r
                .get("auditAnnotations")
                .map(|a| serde_json::from_value(a.clone()).unwrap())
                .unwrap_or_default();
            assert_eq!(audit, answer.audit_annotations);
        }
        let status = &serde_json::from_slice::<serde_json::Value>(&denied.to_json()).unwrap()["response"]
            ["status"];
        assert_eq!(status["message"], "no \"way\"");
        assert_eq!(status["code"], 422);
    }

    #[test]
    fn the_answer_echoes_the_request_api_version() {
        let body = br#"{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":{"uid":"u","kind":{"group":"","version":"v1","kind":"Pod"},"operation":"CREATE"}}"#;
        let out: serde_json::Value =
            serde_json::from_slice(&Answer::allow(&decode(body).unwrap()).to_json()).unwrap();
        assert_eq!(out["apiVersion"], "admission.k8s.io/v1beta1");
        let bare = br#"{"request":{"uid":"u","kind":{"group":"","version":"v1","kind":"Pod"},"operation":"CREATE"}}"#;
        let out: serde_json::Value =
            serde_json::from_slice(&Answer::allow(&decode(bare).unwrap()).to_json()).unwrap();
        assert_eq!(out["apiVersion"], DEFAULT_API_VERSION);
    }
}
