//! Kubernetes Events for refused namespace policy ConfigMaps: a `Warning` Event on the ConfigMap,
//! reason [`REASON`], whose note carries the resourceVersion and the validation message, so that
//! `kubectl describe configmap podgrace-policy -n shop` shows why the policy is not in effect.
//! A ConfigMap whose policy a new cluster default no longer combines with gets one too, reason
//! [`REASON_CLUSTER_DEFAULT`], naming that cluster default (the namespace keeps its previous
//! combination).
//!
//! Published through kube-runtime's event recorder (`events.k8s.io/v1`) by one task, off the
//! watch loop: a slow or refusing API server never delays policy updates. One Event per
//! resourceVersion of a ConfigMap and cause (refused on arrival, or broken by a given cluster
//! default): a relist that delivers the same version again does not repeat it. A publication
//! that fails is logged and not remembered, so the next delivery of that version tries again.
//!
//! Each replica publishes its own Events, `reportingInstance` its pod name: see
//! docs/OPERATIONS.md ("Events") for why they are not merged across replicas.

use std::collections::{HashMap, HashSet};

use k8s_openapi::api::core::v1::{ConfigMap, ObjectReference};
use kube::Client;
use kube::Resource;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::store::cache::Broken;

/// The Event's reason (what `kubectl describe` shows in its Reason column).
pub const REASON: &str = "PolicyRefused";
/// The Event's action: podgrace was loading the policy.
pub const ACTION: &str = "LoadPolicy";
/// The reason of the Event on a policy a new cluster default no longer combines with.
pub const REASON_CLUSTER_DEFAULT: &str = "PolicyBrokenByClusterDefault";
/// Its action: podgrace was checking the policy again on top of a new cluster default.
pub const ACTION_CLUSTER_DEFAULT: &str = "RecheckPolicy";
/// The reporting controller.
pub const CONTROLLER: &str = "podgrace";
/// The API server refuses a note over 1 kB (events.k8s.io/v1 `note`).
pub const NOTE_LIMIT: usize = 1024;
/// Refusals waiting to be published at most; beyond, they are dropped (and logged): a flood of
/// refusals must not grow memory while the API server is slow.
const QUEUE: usize = 256;

/// Why a ConfigMap's policy is not in effect.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Cause {
    /// It did not parse, validate or combine when it arrived.
    Refused,
    /// The cluster default of this origin (`name@version`) no longer combines with it.
    ClusterDefault(String),
}

/// A ConfigMap to report, with its Event's note.
struct RefusedConfigMap {
    regarding: ObjectReference,
    cause: Cause,
    note: String,
}

/// The handle the policy watch reports refusals to. Cheap to clone.
#[derive(Clone)]
pub struct PolicyEvents {
    tx: mpsc::Sender<RefusedConfigMap>,
}

impl PolicyEvents {
    /// Starts the publishing task. `instance` names this replica in the Events'
    /// `reportingInstance` (the pod name; the host name when `None`).
    pub fn start(client: Client, instance: Option<String>) -> (Self, JoinHandle<()>) {
        let reporter = Reporter {
            controller: CONTROLLER.to_owned(),
            instance: instance.or_else(|| Reporter::from(CONTROLLER).instance),
        };
        let (tx, rx) = mpsc::channel(QUEUE);
        (
            PolicyEvents { tx },
            tokio::spawn(publish_all(client, reporter, rx)),
        )
    }

    /// Reports that the ConfigMap `regarding` (its [`reference`]) was refused with `message`.
    /// Never waits.
    pub fn refused(&self, regarding: ObjectReference, message: &str) {
        let version = regarding.resource_version.clone().unwrap_or_default();
        self.send(RefusedConfigMap {
            regarding,
            cause: Cause::Refused,
            note: note(&version, message),
        });
    }

    /// Reports that a new cluster default broke the policy of the ConfigMap `regarding` (its
    /// [`reference`] as last seen). Never waits.
    pub fn broken_by_cluster_default(&self, regarding: ObjectReference, broken: &Broken) {
        let version = regarding.resource_version.clone().unwrap_or_default();
        self.send(RefusedConfigMap {
            regarding,
            cause: Cause::ClusterDefault(broken.cluster.clone()),
            note: cluster_default_note(&version, broken),
        });
    }

    fn send(&self, refusal: RefusedConfigMap) {
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

/// Identity of a ConfigMap: namespace, name, uid (a re-created ConfigMap is another one).
type Key = (Option<String>, Option<String>, Option<String>);

async fn publish_all(client: Client, reporter: Reporter, mut rx: mpsc::Receiver<RefusedConfigMap>) {
    let recorder = Recorder::new(client.clone(), reporter.clone());
    // For each ConfigMap, the last version reported and the causes reported for it: one entry
    // per namespace with a policy.
    let mut reported: HashMap<Key, (String, HashSet<Cause>)> = HashMap::new();
    while let Some(RefusedConfigMap {
        regarding,
        cause,
        note,
    }) = rx.recv().await
    {
        let key = (
            regarding.namespace.clone(),
            regarding.name.clone(),
            regarding.uid.clone(),
        );
        let version = regarding.resource_version.clone().unwrap_or_default();
        if reported
            .get(&key)
            .is_some_and(|(v, causes)| *v == version && causes.contains(&cause))
        {
            continue;
        }
        let (reason, action) = match cause {
            Cause::Refused => (REASON, ACTION),
            Cause::ClusterDefault(_) => (REASON_CLUSTER_DEFAULT, ACTION_CLUSTER_DEFAULT),
        };
        let event = Event {
            type_: EventType::Warning,
            reason: reason.to_owned(),
            note: Some(note),
            action: action.to_owned(),
            secondary: None,
        };
        // The reference carries the resourceVersion, which the recorder's own de-duplication
        // compares: each version is a new Event, never a count added to the previous one's.
        // The recorder's cache does not key on the note, so an Event for a second cluster
        // default breaking the same version would be folded into the first's (its series count,
        // the first one's note): those go through a recorder of their own.
        let published = match cause {
            Cause::Refused => recorder.publish(&event, &regarding).await,
            Cause::ClusterDefault(_) => {
                Recorder::new(client.clone(), reporter.clone())
                    .publish(&event, &regarding)
                    .await
            }
        };
        match published {
            Ok(()) => {
                let entry = reported.entry(key).or_default();
                if entry.0 != version {
                    *entry = (version, HashSet::new());
                }
                entry.1.insert(cause);
            }
            Err(e) => tracing::warn!(
                namespace = regarding.namespace.as_deref().unwrap_or(""),
                configmap = regarding.name.as_deref().unwrap_or(""),
                resource_version = version,
                reason,
                error = %e,
                "cannot publish the policy Event"
            ),
        }
    }
}

/// The Event's note: the version, what podgrace does instead, and the validation message, cut
/// to the API server's limit on a character boundary.
pub fn note(version: &str, message: &str) -> String {
    cut(format!(
        "podgrace refused this policy (resourceVersion {version}); the namespace keeps its last \
         accepted policy, or the cluster default: {message}"
    ))
}

/// The note of a policy a new cluster default broke: the version, the policy checked, the new
/// cluster default, what podgrace does instead and why they do not combine.
pub fn cluster_default_note(version: &str, broken: &Broken) -> String {
    cut(format!(
        "podgrace no longer applies this policy (resourceVersion {version}; checked: {}): it does \
         not combine with the new cluster default {}; the namespace keeps its combination with \
         the previous cluster default: {}",
        broken.policy, broken.cluster, broken.error
    ))
}

/// `note` cut to the API server's limit on a character boundary.
fn cut(mut note: String) -> String {
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
    fn the_cluster_default_note_names_the_version_the_policy_and_the_new_default() {
        let broken = Broken {
            namespace: "shop".into(),
            policy: "configmap shop/podgrace-policy@41".into(),
            cluster: "/etc/podgrace/cluster/policy.yaml@9f3c".into(),
            error: "preStop.nacos.server: required".into(),
        };
        let n = cluster_default_note("42", &broken);
        assert!(n.contains("resourceVersion 42"), "{n}");
        assert!(
            n.contains("checked: configmap shop/podgrace-policy@41"),
            "{n}"
        );
        assert!(
            n.contains("new cluster default /etc/podgrace/cluster/policy.yaml@9f3c"),
            "{n}"
        );
        assert!(n.ends_with("preStop.nacos.server: required"), "{n}");
        let long = Broken {
            error: "é".repeat(2000),
            ..broken
        };
        assert!(cluster_default_note("42", &long).len() <= NOTE_LIMIT);
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
