//! Keeps the `caBundle` of podgrace's own two webhook configurations (the mutating one and the
//! policy validating one, by name) equal to the CAs of the certificate Secret. It watches the
//! two objects (a watch with a `metadata.name` field selector, which RBAC `resourceNames`
//! allow), so an apply that resets the caBundle is seen at once and put back with one JSON
//! patch. The patch tests the name of each webhook it writes to (`test` operations): an object
//! changed in between is refused (422) and the watch brings the new one.
//!
//! It also publishes what both configurations trust right now: the rotation serves a new pair
//! only when that includes the pair's CA, and promotes a next CA only once it does.
//!
//! A caBundle holding a CA podgrace no longer lists might mean this replica read an older
//! Secret than another replica: it asks for a fresh read before removing anything.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use futures::StreamExt as _;
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration, WebhookClientConfig,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Patch, PatchParams};
use kube::runtime::{WatchStreamExt as _, watcher};
use kube::{Api, Client};
use tokio::sync::{Notify, watch};

use super::events::CertificateReporter;
use super::trust::Bundle;
use crate::observability::metrics::CertSyncOperation;

/// The webhook configurations podgrace keeps.
#[derive(Clone, Debug)]
pub struct WebhookNames {
    /// The MutatingWebhookConfiguration.
    pub mutating: String,
    /// The ValidatingWebhookConfiguration, when installed.
    pub validating: Option<String>,
}

/// One configuration as last seen: each webhook's name and caBundle, in order.
#[derive(Clone, Debug)]
struct Seen {
    resource_version: String,
    webhooks: Vec<(String, Vec<u8>)>,
}

/// The two kinds, for messages and paths.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Mutating,
    Validating,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Mutating => "MutatingWebhookConfiguration",
            Kind::Validating => "ValidatingWebhookConfiguration",
        }
    }
}

/// Per kind: synced (initial list done), and the object (`None`: it does not exist).
#[derive(Default)]
struct ConfigurationState {
    synced: bool,
    seen: Option<Seen>,
    /// The version patched last, and the bundle written: not patched again until the watch
    /// brings a newer version.
    patched: Option<(String, Bundle)>,
    /// Whether the caBundle was ever seen in step: a first write is a publication, a later
    /// one a restore.
    was_in_step: bool,
    /// The watch failed last time and has not delivered since.
    watch_failing: bool,
}

/// Time allowed for one request when the watch is down.
const POLL_TIMEOUT: Duration = Duration::from_secs(5);

/// Reads the object while its watch is failing; a success ends the failure.
async fn poll<K>(api: &Api<K>, name: &str, state: &mut ConfigurationState, f: fn(&K) -> Seen)
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    if let Ok(Ok(found)) = tokio::time::timeout(POLL_TIMEOUT, api.get_opt(name)).await {
        state.seen = found.as_ref().map(f);
        state.synced = true;
        state.watch_failing = false;
    }
}

/// How often out-of-step configurations are tried again after a failed patch.
const RETRY: Duration = Duration::from_secs(1);
/// How long a removal waits for the Secret to be read again.
const FRESH_READ: Duration = Duration::from_secs(1);

/// Runs the keeper. `desired` carries the CAs from the Secret (`None` until read); `published`
/// receives what every existing configuration trusts (`None` until both watches synced);
/// `refresh` asks the rotation for a fresh read of the Secret.
pub async fn keep(
    client: Client,
    names: WebhookNames,
    mut desired: watch::Receiver<Option<Bundle>>,
    published: watch::Sender<Option<Bundle>>,
    refresh: Arc<Notify>,
    report: CertificateReporter,
) {
    let mutating: Api<MutatingWebhookConfiguration> = Api::all(client.clone());
    let validating: Api<ValidatingWebhookConfiguration> = Api::all(client);
    let config = |name: &str| watcher::Config::default().fields(&format!("metadata.name={name}"));
    let m_stream = watcher(mutating.clone(), config(&names.mutating))
        .default_backoff()
        .map(|e| (Kind::Mutating, e.map(|e| map_event(e, seen_mutating))));
    let v_stream = match &names.validating {
        Some(name) => watcher(validating.clone(), config(name))
            .default_backoff()
            .map(|e| (Kind::Validating, e.map(|e| map_event(e, seen_validating))))
            .boxed(),
        None => futures::stream::pending().boxed(),
    };
    let mut events = futures::stream::select(m_stream.boxed(), v_stream);
    let mut m = ConfigurationState::default();
    let mut v = ConfigurationState {
        synced: names.validating.is_none(),
        ..ConfigurationState::default()
    };
    let mut retry = tokio::time::interval(RETRY);
    retry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let touched: Vec<Kind> = tokio::select! {
            event = events.next() => {
                let Some((kind, event)) = event else { return };
                let state = if kind == Kind::Mutating { &mut m } else { &mut v };
                match event {
                    Ok(event) => {
                        state.watch_failing = false;
                        apply_event(state, event);
                    }
                    Err(e) => {
                        state.watch_failing = true;
                        report.failed(CertSyncOperation::WatchWebhooks, &e);
                    }
                }
                if !m.watch_failing && !v.watch_failing {
                    report.ok(CertSyncOperation::WatchWebhooks);
                }
                vec![kind]
            }
            changed = desired.changed() => {
                if changed.is_err() { return; }
                vec![Kind::Mutating, Kind::Validating]
            }
            _ = retry.tick() => {
                // A watch that failed may come back without a new event to show for it: read
                // the objects meanwhile.
                if m.watch_failing {
                    poll(&mutating, &names.mutating, &mut m, seen_mutating).await;
                }
                if let (Some(name), true) = (&names.validating, v.watch_failing) {
                    poll(&validating, name, &mut v, seen_validating).await;
                }
                if !m.watch_failing && !v.watch_failing {
                    report.ok(CertSyncOperation::WatchWebhooks);
                }
                vec![Kind::Mutating, Kind::Validating]
            }
        };
        published.send_if_modified(|p| {
            let now = trusted_by_all(&m, &v);
            let changed = *p != now;
            *p = now;
            changed
        });
        let Some(want) = desired.borrow().clone() else {
            continue;
        };
        for kind in touched {
            let (state, name) = match kind {
                Kind::Mutating => (&mut m, names.mutating.as_str()),
                Kind::Validating => match &names.validating {
                    Some(n) => (&mut v, n.as_str()),
                    None => continue,
                },
            };
            let Some(seen) = &state.seen else { continue };
            let out_of_step = seen
                .webhooks
                .iter()
                .find(|(_, ca)| Bundle::from_pem(ca) != want);
            let Some((_, found)) = out_of_step else {
                state.was_in_step = true;
                // In step again after failed patches: whoever put it back, it is right.
                report.ok(CertSyncOperation::PatchCaBundle);
                continue;
            };
            if state
                .patched
                .as_ref()
                .is_some_and(|(rv, bundle)| *rv == seen.resource_version && *bundle == want)
            {
                // Patched already; the watch has not brought the result yet.
                continue;
            }
            let found = describe(found);
            let mut want = want.clone();
            let removes = seen
                .webhooks
                .iter()
                .any(|(_, ca)| !want.contains_all(&Bundle::from_pem(ca)));
            if removes {
                // Maybe this replica is behind: read the Secret again before removing a CA. A
                // replica that cannot read it only adds its CAs (never removes one another
                // replica may be serving a pair of); a later round removes them.
                desired.borrow_and_update();
                refresh.notify_one();
                let fresh = tokio::time::timeout(FRESH_READ, desired.changed()).await;
                match desired.borrow_and_update().clone() {
                    Some(read) if matches!(fresh, Ok(Ok(()))) => want = read,
                    _ => {
                        for (_, ca) in &seen.webhooks {
                            for der in Bundle::from_pem(ca).0 {
                                if !want.0.contains(&der) {
                                    want.0.push(der);
                                }
                            }
                        }
                    }
                }
            }
            let result = match kind {
                Kind::Mutating => patch(&mutating, name, seen, &want).await,
                Kind::Validating => patch(&validating, name, seen, &want).await,
            };
            let what = format!("{} {name}", kind.as_str());
            match result {
                Ok(()) => {
                    report.ok(CertSyncOperation::PatchCaBundle);
                    state.patched = Some((seen.resource_version.clone(), want));
                    if state.was_in_step {
                        report.ca_bundle_restored(&what, &found);
                    } else {
                        tracing::info!(webhook_configuration = %what, "caBundle written");
                    }
                }
                Err(e) => report.failed(CertSyncOperation::PatchCaBundle, &e),
            }
        }
    }
}

fn map_event<K>(event: watcher::Event<K>, f: fn(&K) -> Seen) -> watcher::Event<Seen> {
    match event {
        watcher::Event::Init => watcher::Event::Init,
        watcher::Event::InitApply(o) => watcher::Event::InitApply(f(&o)),
        watcher::Event::Apply(o) => watcher::Event::Apply(f(&o)),
        watcher::Event::InitDone => watcher::Event::InitDone,
        watcher::Event::Delete(o) => watcher::Event::Delete(f(&o)),
    }
}

fn apply_event(state: &mut ConfigurationState, event: watcher::Event<Seen>) {
    match event {
        watcher::Event::Init => {}
        watcher::Event::InitApply(s) | watcher::Event::Apply(s) => state.seen = Some(s),
        watcher::Event::InitDone => state.synced = true,
        watcher::Event::Delete(_) => state.seen = None,
    }
}

/// What every webhook of every existing configuration trusts; `None` until both watches have
/// listed, or when neither configuration exists.
fn trusted_by_all(m: &ConfigurationState, v: &ConfigurationState) -> Option<Bundle> {
    if !m.synced || !v.synced {
        return None;
    }
    let mut all = m
        .seen
        .iter()
        .chain(v.seen.iter())
        .flat_map(|s| s.webhooks.iter())
        .map(|(_, ca)| Bundle::from_pem(ca));
    let first = all.next()?;
    Some(all.fold(first, |acc, b| {
        Bundle(acc.0.into_iter().filter(|c| b.0.contains(c)).collect())
    }))
}

fn describe(ca: &[u8]) -> String {
    let n = Bundle::from_pem(ca).0.len();
    match n {
        0 if ca.is_empty() => "empty".to_owned(),
        0 => "not a PEM certificate".to_owned(),
        1 => "another CA".to_owned(),
        n => format!("a bundle of {n} other certificates"),
    }
}

fn seen_mutating(o: &MutatingWebhookConfiguration) -> Seen {
    let webhooks = o.webhooks.iter().flatten();
    seen(&o.metadata, webhooks.map(|w| (&w.name, &w.client_config)))
}

fn seen_validating(o: &ValidatingWebhookConfiguration) -> Seen {
    let webhooks = o.webhooks.iter().flatten();
    seen(&o.metadata, webhooks.map(|w| (&w.name, &w.client_config)))
}

/// The two kinds of configuration hold their webhooks in two types with the same client config.
fn seen<'a>(
    metadata: &ObjectMeta,
    webhooks: impl Iterator<Item = (&'a String, &'a WebhookClientConfig)>,
) -> Seen {
    Seen {
        resource_version: metadata.resource_version.clone().unwrap_or_default(),
        webhooks: webhooks
            .map(|(name, config)| {
                let ca = config.ca_bundle.clone().map(|b| b.0);
                (name.clone(), ca.unwrap_or_default())
            })
            .collect(),
    }
}

/// One JSON patch setting every webhook's caBundle, each guarded by a test of its name.
async fn patch<K>(api: &Api<K>, name: &str, seen: &Seen, want: &Bundle) -> Result<(), kube::Error>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let b64 = base64::engine::general_purpose::STANDARD.encode(want.to_pem());
    let mut ops = Vec::new();
    for (i, (webhook, _)) in seen.webhooks.iter().enumerate() {
        ops.push(serde_json::json!({"op": "test", "path": format!("/webhooks/{i}/name"), "value": webhook}));
        ops.push(serde_json::json!({"op": "add", "path": format!("/webhooks/{i}/clientConfig/caBundle"), "value": b64}));
    }
    let patch: json_patch::Patch =
        serde_json::from_value(serde_json::Value::Array(ops)).map_err(kube::Error::SerdeError)?;
    let params = PatchParams {
        field_manager: Some("podgrace".to_owned()),
        ..PatchParams::default()
    };
    let patch = Patch::Json::<()>(patch);
    let request = api.patch(name, &params, &patch);
    match tokio::time::timeout(POLL_TIMEOUT, request).await {
        Ok(result) => result.map(|_| ()),
        Err(_) => Err(kube::Error::Service("no answer within 5 s".into())),
    }
}
