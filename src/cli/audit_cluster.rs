//! `podgrace audit` against a cluster: read-only, with the user's own credentials (kubeconfig
//! and context, or in-cluster). Per namespace one paged list per kind (Deployments,
//! StatefulSets, DaemonSets, ReplicaSets, Pods, CronJobs, and the namespace policy ConfigMap by
//! field selector); with `-A` one paged list per kind for the whole cluster. A kind whose list is
//! forbidden (403) is reported among the namespace's `unreadable` kinds and the rest of the
//! namespace is audited; a namespace whose lists are all forbidden is reported "not readable"
//! and the others are audited; an unreachable API server is one error line naming it.

use std::collections::BTreeMap;
use std::io::IsTerminal as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use futures::{StreamExt as _, TryStreamExt as _};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, ListParams};
use kube::{Client, Resource};
use serde::de::DeserializeOwned;

use super::AuditArgs;
use super::audit::audit_namespace;
use crate::audit::ownership::Object;
use crate::audit::report::{NamespaceReport, Source, Unreadable};
use crate::audit::{OptIn, Report};
use crate::engine::{ClusterInfo, PodView};
use crate::manifest::template_path;
use crate::policy::PolicyLayer;
use crate::policy::parse::layer_from_configmap;

/// A progress line on stderr for runs longer than a second on a terminal (never in a pipe or a
/// CI log), erased when done: `podgrace audit: reading the cluster` until the namespaces are
/// known, then `podgrace audit: 12/40 namespaces read`.
struct Progress {
    /// Namespaces to read; 0 until known.
    total: Arc<AtomicUsize>,
    done: Arc<AtomicUsize>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Progress {
    fn start() -> Self {
        let total = Arc::new(AtomicUsize::new(0));
        let done = Arc::new(AtomicUsize::new(0));
        let task = std::io::stderr().is_terminal().then(|| {
            let (total, done) = (total.clone(), done.clone());
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(1)).await;
                loop {
                    match total.load(Ordering::Relaxed) {
                        0 => eprint!("\r\x1b[Kpodgrace audit: reading the cluster"),
                        total => {
                            let n = done.load(Ordering::Relaxed);
                            eprint!("\r\x1b[Kpodgrace audit: {n}/{total} namespaces read");
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            })
        });
        Progress { total, done, task }
    }

    /// The namespaces to read are known.
    fn reading(&self, namespaces: usize) {
        self.total.store(namespaces, Ordering::Relaxed);
    }

    /// One more namespace read.
    fn read_one(&self) {
        self.done.fetch_add(1, Ordering::Relaxed);
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            eprint!("\r\x1b[K");
        }
    }
}

/// Namespaces audited at once.
const CONCURRENT_NAMESPACES: usize = 8;

pub(super) fn run(
    args: &AuditArgs,
    cluster: Option<PolicyLayer>,
    namespace_override: Option<PolicyLayer>,
) -> anyhow::Result<Report> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(run_async(args, cluster, namespace_override))
}

/// Why a request failed, for the user: a forbidden or missing resource, or the server.
enum Failure {
    /// 403: the namespace is reported "not readable".
    Forbidden(String),
    /// Anything else ends the audit.
    Fatal(anyhow::Error),
}

struct Ctx {
    client: Client,
    server: String,
    page: u32,
    policy_name: String,
    policy_key: String,
}

impl Ctx {
    fn failure(&self, what: &str, e: kube::Error) -> Failure {
        match e {
            kube::Error::Api(s) if s.is_forbidden() => {
                Failure::Forbidden(format!("cannot list {what}: {}", s.message))
            }
            kube::Error::Api(s) => Failure::Fatal(anyhow::anyhow!(
                "listing {what} at {}: {} ({})",
                self.server,
                s.message,
                s.code
            )),
            other => Failure::Fatal(unreachable(&self.server, &other)),
        }
    }

    /// Every object of a list, page by page.
    async fn list<K>(
        &self,
        api: Api<K>,
        what: &str,
        fields: Option<&str>,
    ) -> Result<Vec<K>, Failure>
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
    /// `Snapshot::unreadable`); when every list is forbidden, the namespace is not readable.
    async fn objects(&self, namespace: Option<&str>) -> Result<Snapshot, Failure> {
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
            return Err(Failure::Forbidden(unreadable.swap_remove(0).error));
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
        Ok(Snapshot {
            objects,
            policies,
            unreadable,
        })
    }
}

/// The lists [`Ctx::objects`] makes.
const LISTS: usize = 7;

/// The items of a list; none when it is forbidden, the kind then recorded in `unreadable`.
fn readable<K>(
    resource: &str,
    listed: Result<Vec<K>, Failure>,
    unreadable: &mut Vec<Unreadable>,
) -> Result<Vec<K>, Failure> {
    match listed {
        Ok(items) => Ok(items),
        Err(Failure::Forbidden(error)) => {
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
struct Snapshot {
    objects: Vec<Object>,
    policies: BTreeMap<String, Result<PolicyLayer, String>>,
    unreadable: Vec<Unreadable>,
}

/// Adds the listed objects of `kind`, each with its pod (template) found where
/// `manifest::template_path` says that kind keeps it.
fn add<K>(objects: &mut Vec<Object>, kind: &str, items: Vec<K>) -> Result<(), Failure>
where
    K: Resource + serde::Serialize,
    K::DynamicType: Default,
{
    let api_version = K::api_version(&Default::default()).into_owned();
    let path = template_path(&api_version, kind).unwrap_or_default();
    for item in items {
        let mut value = serde_json::to_value(&item).map_err(|e| Failure::Fatal(e.into()))?;
        for token in path {
            value = value
                .get_mut(*token)
                .map(serde_json::Value::take)
                .unwrap_or_default();
        }
        let pod = PodView::from_value(value)
            .map_err(|e| Failure::Fatal(anyhow::anyhow!("a {kind} the API server sent: {e}")))?;
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

/// One line naming the server and the root cause.
fn unreachable(server: &str, e: &(dyn std::error::Error + 'static)) -> anyhow::Error {
    let mut cause: &dyn std::error::Error = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    anyhow::anyhow!("cannot reach the Kubernetes API server at {server}: {cause}")
}

async fn client(args: &AuditArgs) -> anyhow::Result<(Client, String, String)> {
    let options = kube::config::KubeConfigOptions {
        context: args.context.clone(),
        ..Default::default()
    };
    let config = match &args.kubeconfig {
        Some(path) => {
            let kubeconfig = kube::config::Kubeconfig::read_from(path)
                .with_context(|| format!("reading kubeconfig {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &options)
                .await
                .with_context(|| format!("using kubeconfig {}", path.display()))?
        }
        None if args.context.is_some() => kube::Config::from_kubeconfig(&options)
            .await
            .context("reading the kubeconfig")?,
        None => kube::Config::infer()
            .await
            .context("no cluster configuration found (use --kubeconfig, or -f for manifests)")?,
    };
    let server = config.cluster_url.to_string();
    let namespace = config.default_namespace.clone();
    let client = Client::try_from(config).context("creating the Kubernetes client")?;
    Ok((client, server, namespace))
}

async fn run_async(
    args: &AuditArgs,
    cluster: Option<PolicyLayer>,
    namespace_override: Option<PolicyLayer>,
) -> anyhow::Result<Report> {
    let progress = Progress::start();
    let (client, server, default_namespace) = client(args).await?;
    let ctx = Ctx {
        client,
        server: server.clone(),
        page: args.page_size,
        policy_name: args.policy_name.clone(),
        policy_key: args.policy_key.clone(),
    };
    let mut notes = Vec::new();
    let cluster = match cluster {
        Some(layer) => Some(layer),
        None => cluster_default(&ctx, args, &mut notes).await?,
    };
    let info = ClusterInfo {
        kube_version: args.kube_version,
    };
    let excluded = [args.podgrace_namespace.as_str(), "kube-system"];

    // Which namespaces, and their labels (None: not known to this user).
    let mut chosen: Vec<(String, Option<BTreeMap<String, String>>)> = Vec::new();
    let namespaces_api: Api<Namespace> = Api::all(ctx.client.clone());
    if args.all_namespaces {
        let all = ctx
            .list(namespaces_api, "namespaces", None)
            .await
            .map_err(|f| match f {
                Failure::Forbidden(why) => {
                    anyhow::anyhow!("{why} (-A needs to list namespaces; use -n)")
                }
                Failure::Fatal(e) => e,
            })?;
        for n in all {
            chosen.push((
                n.metadata.name.unwrap_or_default(),
                Some(n.metadata.labels.unwrap_or_default()),
            ));
        }
    } else {
        let names = if args.namespaces.is_empty() {
            vec![default_namespace]
        } else {
            args.namespaces.clone()
        };
        for name in names {
            let labels = match namespaces_api.get_opt(&name).await {
                Ok(Some(n)) => Some(n.metadata.labels.unwrap_or_default()),
                Ok(None) => anyhow::bail!("namespace {name:?} not found at {server}"),
                // A user with access to the namespace's objects only: the opt-in is unknown.
                Err(kube::Error::Api(s)) if s.is_forbidden() => None,
                Err(kube::Error::Api(s)) => {
                    anyhow::bail!(
                        "reading namespace {name} at {server}: {} ({})",
                        s.message,
                        s.code
                    )
                }
                Err(e) => return Err(unreachable(&server, &e)),
            };
            chosen.push((name, labels));
        }
    }
    let opt_in = |name: &str, labels: &Option<BTreeMap<String, String>>| match labels {
        Some(l) => OptIn::from_labels(Some(l), excluded.contains(&name)),
        None if excluded.contains(&name) => OptIn::Excluded,
        None => OptIn::Unknown,
    };

    let mut reports = Vec::new();
    if args.all_namespaces {
        let snapshot = ctx.objects(None).await.map_err(|f| match f {
            Failure::Forbidden(why) => {
                anyhow::anyhow!("{why} (cluster-wide; use -n for the namespaces you can read)")
            }
            Failure::Fatal(e) => e,
        })?;
        let mut by_ns: BTreeMap<String, Vec<Object>> = BTreeMap::new();
        for o in snapshot.objects {
            by_ns.entry(o.namespace.clone()).or_default().push(o);
        }
        let mut policies = snapshot.policies;
        for (name, labels) in &chosen {
            let own = own_policy(&namespace_override, policies.remove(name));
            let objects = by_ns.remove(name).unwrap_or_default();
            let mut report = audit_namespace(
                name,
                opt_in(name, labels),
                cluster.as_ref(),
                own,
                objects,
                &info,
            )?;
            // A cluster-wide list that is forbidden is missing from every namespace.
            report.unreadable = snapshot.unreadable.clone();
            reports.push(report);
        }
    } else {
        progress.reading(chosen.len());
        let snapshots: Vec<_> = futures::stream::iter(chosen.iter())
            .map(|(name, _)| async {
                let snapshot = ctx.objects(Some(name)).await;
                progress.read_one();
                snapshot
            })
            .buffered(CONCURRENT_NAMESPACES)
            .map(Ok::<_, anyhow::Error>)
            .try_collect()
            .await?;
        drop(progress);
        for ((name, labels), snapshot) in chosen.iter().zip(snapshots) {
            let report = match snapshot {
                Ok(mut s) => {
                    let own = own_policy(&namespace_override, s.policies.remove(name));
                    let mut report = audit_namespace(
                        name,
                        opt_in(name, labels),
                        cluster.as_ref(),
                        own,
                        s.objects,
                        &info,
                    )?;
                    report.unreadable = s.unreadable;
                    report
                }
                Err(Failure::Forbidden(why)) => NamespaceReport {
                    name: name.clone(),
                    opt_in: opt_in(name, labels),
                    readable: false,
                    error: Some(why),
                    unreadable: Vec::new(),
                    policy: String::new(),
                    policy_error: None,
                    workloads: Vec::new(),
                },
                Err(Failure::Fatal(e)) => return Err(e),
            };
            reports.push(report);
        }
    }
    let mut report = Report::new(Source::Cluster { server }, reports);
    report.notes = notes;
    Ok(report)
}

fn own_policy(
    override_: &Option<PolicyLayer>,
    found: Option<Result<PolicyLayer, String>>,
) -> Option<Result<PolicyLayer, String>> {
    match override_ {
        Some(layer) => Some(Ok(layer.clone())),
        None => found,
    }
}

/// The cluster default from the chart's ConfigMap; the built-in defaults (with a note) when it
/// is missing, unreadable or invalid, as the webhook would start with.
async fn cluster_default(
    ctx: &Ctx,
    args: &AuditArgs,
    notes: &mut Vec<String>,
) -> anyhow::Result<Option<PolicyLayer>> {
    let api: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &args.podgrace_namespace);
    let where_ = format!(
        "{}/{}",
        args.podgrace_namespace, args.cluster_policy_configmap
    );
    match api.get_opt(&args.cluster_policy_configmap).await {
        Ok(Some(cm)) => match layer_from_configmap(&cm, &ctx.policy_key) {
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
        Err(e) => Err(unreachable(&ctx.server, &e)),
    }
}
