//! The paged listing the audit of a cluster reads: read-only, with the user's own credentials.
//! Per namespace one paged list per kind (Deployments, StatefulSets, DaemonSets, ReplicaSets,
//! Pods, CronJobs, and the namespace policy ConfigMap by field selector); with `-A` one paged
//! list per kind for the whole cluster. A kind whose list is forbidden (403) is recorded among
//! the namespace's `unreadable` kinds and the rest is read; a namespace whose lists are all
//! forbidden is [`ListFailure::Forbidden`]; an unreachable API server is one error naming it.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, ListParams};
use kube::{Client, Resource};
use serde::de::DeserializeOwned;

use super::client::unreachable;
use crate::audit::ownership::Object;
use crate::audit::report::Unreadable;
use crate::engine::PodView;
use crate::manifest::template_path;
use crate::policy::PolicyLayer;
use crate::policy::parse::layer_from_configmap;

/// Why a request failed, for the user: a forbidden or missing resource, or the server.
pub enum ListFailure {
    /// 403: the namespace is reported "not readable".
    Forbidden(String),
    /// Anything else ends the audit.
    Fatal(anyhow::Error),
}

/// Lists what the audit reads, page by page, with the user's credentials.
pub struct WorkloadLister {
    /// The client.
    pub client: Client,
    /// The API server's URL, for errors.
    pub server: String,
    /// Objects per page.
    pub page: u32,
    /// The namespace policy ConfigMaps' name.
    pub policy_name: String,
    /// Their key holding the policy.
    pub policy_key: String,
}

impl WorkloadLister {
    fn failure(&self, what: &str, e: kube::Error) -> ListFailure {
        match e {
            kube::Error::Api(s) if s.is_forbidden() => {
                ListFailure::Forbidden(format!("cannot list {what}: {}", s.message))
            }
            kube::Error::Api(s) => ListFailure::Fatal(anyhow::anyhow!(
                "listing {what} at {}: {} ({})",
                self.server,
                s.message,
                s.code
            )),
            other => ListFailure::Fatal(unreachable(&self.server, &other)),
        }
    }

    /// Every object of a list, page by page.
    async fn list<K>(
        &self,
        api: Api<K>,
        what: &str,
        fields: Option<&str>,
    ) -> Result<Vec<K>, ListFailure>
    where
        K: Clone + DeserializeOwned + std::fmt::Debug,
    {
        let mut lp = ListParams::default().limit(self.page);
        if let Some(f) = fields {
            lp = lp.fields(f);
        }
        let mut out = Vec::new();
        loop {
            let list = api.list(&lp).await.map_err(|e| self.failure(what, e))?;
            out.extend(list.items);
            match list.metadata.continue_ {
                Some(token) if !token.is_empty() => lp = lp.continue_token(&token),
                _ => return Ok(out),
            }
        }
    }

    fn api<K>(&self, namespace: Option<&str>) -> Api<K>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        <K as Resource>::DynamicType: Default,
    {
        match namespace {
            Some(ns) => Api::namespaced(self.client.clone(), ns),
            None => Api::all(self.client.clone()),
        }
    }

    /// Every audited object of `namespace` (all namespaces when `None`), and the namespace
    /// policy ConfigMaps by namespace. A forbidden list leaves its kind out (in
    /// `NamespaceSnapshot::unreadable`); when every list is forbidden, the namespace is not readable.
    pub async fn objects(&self, namespace: Option<&str>) -> Result<NamespaceSnapshot, ListFailure> {
        let fields = format!("metadata.name={}", self.policy_name);
        let (deploy, sts, ds, rs, pods, cron, cms) = futures::join!(
            self.list(self.api::<Deployment>(namespace), "deployments", None),
            self.list(self.api::<StatefulSet>(namespace), "statefulsets", None),
            self.list(self.api::<DaemonSet>(namespace), "daemonsets", None),
            self.list(self.api::<ReplicaSet>(namespace), "replicasets", None),
            self.list(self.api::<Pod>(namespace), "pods", None),
            self.list(self.api::<CronJob>(namespace), "cronjobs", None),
            self.list(
                self.api::<ConfigMap>(namespace),
                "configmaps",
                Some(&fields)
            ),
        );
        let mut unreadable = Vec::new();
        let u = &mut unreadable;
        let (deploy, sts, ds, rs, pods, cron, cms) = (
            readable("deployments", deploy, u)?,
            readable("statefulsets", sts, u)?,
            readable("daemonsets", ds, u)?,
            readable("replicasets", rs, u)?,
            readable("pods", pods, u)?,
            readable("cronjobs", cron, u)?,
            readable("configmaps", cms, u)?,
        );
        if unreadable.len() == LISTS {
            return Err(ListFailure::Forbidden(unreadable.swap_remove(0).error));
        }
        let mut objects = Vec::new();
        add(&mut objects, "Deployment", deploy)?;
        add(&mut objects, "StatefulSet", sts)?;
        add(&mut objects, "DaemonSet", ds)?;
        add(&mut objects, "ReplicaSet", rs)?;
        add(&mut objects, "CronJob", cron)?;
        add(&mut objects, "Pod", pods)?;
        let policies = cms
            .iter()
            .filter_map(|cm| {
                let ns = cm.metadata.namespace.clone()?;
                Some((
                    ns,
                    layer_from_configmap(cm, &self.policy_key).map_err(|e| e.to_string()),
                ))
            })
            .collect();
        Ok(NamespaceSnapshot {
            objects,
            policies,
            unreadable,
        })
    }
}

/// The lists [`WorkloadLister::objects`] makes.
const LISTS: usize = 7;

/// The items of a list; none when it is forbidden, the kind then recorded in `unreadable`.
fn readable<K>(
    resource: &str,
    listed: Result<Vec<K>, ListFailure>,
    unreadable: &mut Vec<Unreadable>,
) -> Result<Vec<K>, ListFailure> {
    match listed {
        Ok(items) => Ok(items),
        Err(ListFailure::Forbidden(error)) => {
            unreadable.push(Unreadable {
                resource: resource.to_owned(),
                error,
            });
            Ok(Vec::new())
        }
        Err(fatal) => Err(fatal),
    }
}

/// The objects read, the namespace policies, and the kinds that could not be listed.
pub struct NamespaceSnapshot {
    /// The objects with a pod (template).
    pub objects: Vec<Object>,
    /// The namespace policy ConfigMaps by namespace: the layer, or why it is invalid.
    pub policies: BTreeMap<String, Result<PolicyLayer, String>>,
    /// The kinds whose list was forbidden.
    pub unreadable: Vec<Unreadable>,
}

/// Adds the listed objects of `kind`, each with its pod (template) found where
/// `manifest::template_path` says that kind keeps it.
fn add<K>(objects: &mut Vec<Object>, kind: &str, items: Vec<K>) -> Result<(), ListFailure>
where
    K: Resource + serde::Serialize,
    K::DynamicType: Default,
{
    let api_version = K::api_version(&Default::default()).into_owned();
    let path = template_path(&api_version, kind).unwrap_or_default();
    for item in items {
        let mut value = serde_json::to_value(&item).map_err(|e| ListFailure::Fatal(e.into()))?;
        for token in path {
            value = value
                .get_mut(*token)
                .map(serde_json::Value::take)
                .unwrap_or_default();
        }
        let pod = PodView::from_value(value).map_err(|e| {
            ListFailure::Fatal(anyhow::anyhow!("a {kind} the API server sent: {e}"))
        })?;
        objects.push(object(kind, item.meta(), pod));
    }
    Ok(())
}

fn object(kind: &str, meta: &ObjectMeta, pod: PodView) -> Object {
    Object {
        kind: kind.to_owned(),
        namespace: meta.namespace.clone().unwrap_or_default(),
        name: meta.name.clone().unwrap_or_default(),
        owners: meta
            .owner_references
            .iter()
            .flatten()
            .map(|r| (r.kind.clone(), r.name.clone()))
            .collect(),
        pod,
    }
}

/// A namespace to audit, and its labels (`None`: the user may not read the Namespace).
pub type ChosenNamespace = (String, Option<BTreeMap<String, String>>);

impl WorkloadLister {
    /// The namespaces to audit: every one (`all`, which needs the right to list them), or the
    /// ones `named`, each with its labels when the user may read them.
    pub async fn namespaces(
        &self,
        all: bool,
        named: Vec<String>,
    ) -> anyhow::Result<Vec<ChosenNamespace>> {
        let api: Api<Namespace> = Api::all(self.client.clone());
        if all {
            let listed = self
                .list(api, "namespaces", None)
                .await
                .map_err(|f| match f {
                    ListFailure::Forbidden(why) => {
                        anyhow::anyhow!("{why} (-A needs to list namespaces; use -n)")
                    }
                    ListFailure::Fatal(e) => e,
                })?;
            return Ok(listed
                .into_iter()
                .map(|n| {
                    let labels = n.metadata.labels.unwrap_or_default();
                    (n.metadata.name.unwrap_or_default(), Some(labels))
                })
                .collect());
        }
        let mut chosen = Vec::new();
        for name in named {
            let labels = match api.get_opt(&name).await {
                Ok(Some(n)) => Some(n.metadata.labels.unwrap_or_default()),
                Ok(None) => anyhow::bail!("namespace {name:?} not found at {}", self.server),
                // A user with access to the namespace's objects only: the opt-in is unknown.
                Err(kube::Error::Api(s)) if s.is_forbidden() => None,
                Err(kube::Error::Api(s)) => anyhow::bail!(
                    "reading namespace {name} at {}: {} ({})",
                    self.server,
                    s.message,
                    s.code
                ),
                Err(e) => return Err(unreachable(&self.server, &e)),
            };
            chosen.push((name, labels));
        }
        Ok(chosen)
    }

    /// The cluster default from the chart's ConfigMap `namespace/configmap`; the built-in
    /// defaults (`None`, with a note) when it is missing, unreadable or invalid, as the webhook
    /// would start with.
    pub async fn cluster_default(
        &self,
        namespace: &str,
        configmap: &str,
        notes: &mut Vec<String>,
    ) -> anyhow::Result<Option<PolicyLayer>> {
        let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), namespace);
        let where_ = format!("{namespace}/{configmap}");
        match api.get_opt(configmap).await {
            Ok(Some(cm)) => match layer_from_configmap(&cm, &self.policy_key) {
                Ok(layer) => Ok(Some(layer)),
                Err(e) => {
                    notes.push(format!(
                        "cluster default policy {where_} is invalid ({e}): built-in defaults used"
                    ));
                    Ok(None)
                }
            },
            Ok(None) => {
                notes.push(format!("no cluster default policy ConfigMap {where_}: built-in defaults used (--cluster-policy FILE to give one)"));
                Ok(None)
            }
            Err(kube::Error::Api(s)) => {
                notes.push(format!("cluster default policy {where_} not readable ({}): built-in defaults used (--cluster-policy FILE to give one)", s.message));
                Ok(None)
            }
            Err(e) => Err(unreachable(&self.server, &e)),
        }
    }
}
