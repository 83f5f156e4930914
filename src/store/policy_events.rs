//! Kubernetes Events for refused namespace policy ConfigMaps: a `Warning` Event on the ConfigMap,
//! reason [`REASON`], whose note carries the resourceVersion and the validation message, so that
//! `kubectl describe configmap podgrace-policy -n shop` shows why the policy is not in effect.
//!
//! Published through kube-runtime's event recorder (`events.k8s.io/v1`) by one task, off the
//! watch loop: a slow or refusing API server never delays policy updates. One Event per refused
//! resourceVersion of a ConfigMap: a relist that delivers the same version again, or a cluster
//! default that makes it refused again, does not repeat it. A publication that fails is logged
//! and not remembered, so the next delivery of that version tries again.

use std::collections::HashMap;

use k8s_openapi::api::core::v1::{ConfigMap, ObjectReference};
use kube::Client;
use kube::Resource;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// The Event's reason (what `kubectl describe` shows in its Reason column).
pub const REASON: &str = "PolicyRefused";
/// The Event's action: podgrace was loading the policy.
pub const ACTION: &str = "LoadPolicy";
/// The reporting controller.
pub const CONTROLLER: &str = "podgrace";
/// The API server refuses a note over 1 kB (events.k8s.io/v1 `note`).
pub const NOTE_LIMIT: usize = 1024;
/// Refusals waiting to be published at most; beyond, they are dropped (and logged): a flood of
/// refusals must not grow memory while the API server is slow.
const QUEUE: usize = 256;

/// A refused ConfigMap to report.
struct Refusal {
    regarding: ObjectReference,
    message: String,
}

/// The handle the policy watch reports refusals to. Cheap to clone.
#[derive(Clone)]
pub struct PolicyEvents {
    tx: mpsc::Sender<Refusal>,
}

impl PolicyEvents {
    /// Starts the publishing task. `instance` names this replica in the Events'
    /// `reportingInstance` (the pod name; the host name when `None`).
    pub fn start(client: Client, instance: Option<String>) -> (Self, JoinHandle<()>) {
        let reporter = Reporter {
            controller: CONTROLLER.to_owned(),
            instance: instance.or_else(|| Reporter::from(CONTROLLER).instance),
        };
        let recorder = Recorder::new(client, reporter);
        let (tx, rx) = mpsc::channel(QUEUE);
        (PolicyEvents { tx }, tokio::spawn(publish_all(recorder, rx)))
    }

    /// Reports that the ConfigMap `regarding` (its [`reference`]) was refused with `message`.
    /// Never waits.
    pub fn refused(&self, regarding: ObjectReference, message: &str) {
        let refusal = Refusal {
            regarding,
            message: message.to_owned(),
        };
        if let Err(e) = self.tx.try_send(refusal) {
            tracing::warn!(error = %e, "policy refusal not reported as an Event: the queue is full");
        }
    }
}

/// The reference an Event names: apiVersion, kind, namespace, name, uid and the resourceVersion
/// that was refused (which `object_ref` leaves out).
pub fn reference(cm: &ConfigMap) -> ObjectReference {
    ObjectReference {
        resource_version: cm.metadata.resource_version.clone(),
        ..cm.object_ref(&())
    }
}

/// Identity of a ConfigMap version: namespace, name, uid (a re-created ConfigMap is another one).
type Key = (Option<String>, Option<String>, Option<String>);

async fn publish_all(recorder: Recorder, mut rx: mpsc::Receiver<Refusal>) {
    // The last version reported for each ConfigMap: one entry per namespace with a policy.
    let mut reported: HashMap<Key, String> = HashMap::new();
    while let Some(Refusal { regarding, message }) = rx.recv().await {
        let key = (
            regarding.namespace.clone(),
            regarding.name.clone(),
            regarding.uid.clone(),
        );
        let version = regarding.resource_version.clone().unwrap_or_default();
        if reported.get(&key) == Some(&version) {
            continue;
        }
        let event = Event {
            type_: EventType::Warning,
            reason: REASON.to_owned(),
            note: Some(note(&version, &message)),
            action: ACTION.to_owned(),
            secondary: None,
        };
        // The reference carries the resourceVersion, which the recorder's own de-duplication
        // compares: each version is a new Event, never a count added to the previous one's.
        match recorder.publish(&event, &regarding).await {
            Ok(()) => {
                reported.insert(key, version);
            }
            Err(e) => tracing::warn!(
                namespace = regarding.namespace.as_deref().unwrap_or(""),
                configmap = regarding.name.as_deref().unwrap_or(""),
                resource_version = version,
                error = %e,
                "cannot publish the policy refusal Event"
            ),
        }
    }
}

/// The Event's note: the version, what podgrace does instead, and the validation message, cut
/// to the API server's limit on a character boundary.
pub fn note(version: &str, message: &str) -> String {
    let mut note = format!(
        "podgrace refused this policy (resourceVersion {version}); the namespace keeps its last \
         accepted policy, or the cluster default: {message}"
    );
    if note.len() > NOTE_LIMIT {
        let ellipsis = "…";
        let mut end = NOTE_LIMIT - ellipsis.len();
        while !note.is_char_boundary(end) {
            end -= 1;
        }
        note.truncate(end);
        note.push_str(ellipsis);
    }
    note
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_note_names_the_version_and_the_message() {
        let n = note(
            "42",
            "configmap shop/podgrace-policy@42: preStop.sleepSeconds: too large",
        );
        assert!(n.contains("resourceVersion 42"), "{n}");
        assert!(n.ends_with("preStop.sleepSeconds: too large"), "{n}");
    }

    #[test]
    fn a_long_note_is_cut_to_the_api_limit_on_a_character_boundary() {
        let message = "é".repeat(2000);
        let n = note("7", &message);
        assert!(n.len() <= NOTE_LIMIT, "{}", n.len());
        assert!(n.len() > NOTE_LIMIT - 8, "{}", n.len());
        assert!(n.ends_with('…'));
    }
}
