//! `podgrace audit` against a cluster: read-only, with the user's own credentials (kubeconfig
//! and context, or in-cluster). The lists are `crate::cluster::workloads`'; the audit of each
//! namespace is `crate::audit::namespace`'s; here they are put in order, with a progress line.
//! A namespace whose lists are all forbidden is reported "not readable" and the others are
//! audited.

use std::collections::BTreeMap;
use std::io::IsTerminal as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use futures::{StreamExt as _, TryStreamExt as _};

use super::AuditArgs;
use crate::audit::Report;
use crate::audit::namespace::{audit_namespace, not_readable, opt_in_of, own_policy};
use crate::audit::ownership::Object;
use crate::audit::report::{NamespaceReport, Source};
use crate::cluster::client;
use crate::cluster::workloads::{ChosenNamespace, ListFailure, WorkloadLister};
use crate::engine::ClusterInfo;
use crate::policy::PolicyLayer;

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

/// What every namespace's audit shares.
struct Shared<'a> {
    args: &'a AuditArgs,
    cluster: Option<PolicyLayer>,
    namespace_override: Option<PolicyLayer>,
    info: ClusterInfo,
}

impl Shared<'_> {
    /// One namespace's objects audited under its policy, with the kinds that were not listed.
    fn audit(
        &self,
        (name, labels): &ChosenNamespace,
        objects: Vec<Object>,
        found: Option<Result<PolicyLayer, String>>,
    ) -> anyhow::Result<NamespaceReport> {
        let own = own_policy(self.namespace_override.as_ref(), found);
        audit_namespace(
            name,
            opt_in_of(name, labels.as_ref(), &self.args.podgrace_namespace),
            self.cluster.as_ref(),
            own,
            objects,
            &self.info,
        )
    }
}

async fn run_async(
    args: &AuditArgs,
    cluster: Option<PolicyLayer>,
    namespace_override: Option<PolicyLayer>,
) -> anyhow::Result<Report> {
    let progress = Progress::start();
    let hint = "use --kubeconfig, or -f for manifests";
    let connected = client::connect(args.kubeconfig.as_deref(), args.context.clone(), hint).await?;
    let lister = WorkloadLister {
        client: connected.client,
        server: connected.server.clone(),
        page: args.page_size,
        policy_name: args.policy_name.clone(),
        policy_key: args.policy_key.clone(),
    };
    let mut notes = Vec::new();
    let cluster = match cluster {
        Some(layer) => Some(layer),
        None => {
            let (ns, cm) = (&args.podgrace_namespace, &args.cluster_policy_configmap);
            lister.cluster_default(ns, cm, &mut notes).await?
        }
    };
    let named = if args.namespaces.is_empty() {
        vec![connected.default_namespace]
    } else {
        args.namespaces.clone()
    };
    let chosen = lister.namespaces(args.all_namespaces, named).await?;
    let shared = Shared {
        args,
        cluster,
        namespace_override,
        info: ClusterInfo {
            kube_version: args.kube_version,
        },
    };
    let reports = if args.all_namespaces {
        audit_cluster_wide(&lister, &shared, &chosen).await?
    } else {
        progress.reading(chosen.len());
        audit_each_namespace(&lister, &shared, &chosen, &progress).await?
    };
    drop(progress);
    let mut report = Report::new(
        Source::Cluster {
            server: connected.server,
        },
        reports,
    );
    report.notes = notes;
    Ok(report)
}

/// `-A`: one list per kind for the whole cluster, split by namespace.
async fn audit_cluster_wide(
    lister: &WorkloadLister,
    shared: &Shared<'_>,
    chosen: &[ChosenNamespace],
) -> anyhow::Result<Vec<NamespaceReport>> {
    let snapshot = lister.objects(None).await.map_err(|f| match f {
        ListFailure::Forbidden(why) => {
            anyhow::anyhow!("{why} (cluster-wide; use -n for the namespaces you can read)")
        }
        ListFailure::Fatal(e) => e,
    })?;
    let mut by_ns: BTreeMap<String, Vec<Object>> = BTreeMap::new();
    for o in snapshot.objects {
        by_ns.entry(o.namespace.clone()).or_default().push(o);
    }
    let mut policies = snapshot.policies;
    let mut reports = Vec::new();
    for namespace in chosen {
        let name = &namespace.0;
        let objects = by_ns.remove(name).unwrap_or_default();
        let mut report = shared.audit(namespace, objects, policies.remove(name))?;
        // A cluster-wide list that is forbidden is missing from every namespace.
        report.unreadable = snapshot.unreadable.clone();
        reports.push(report);
    }
    Ok(reports)
}

/// `-n`: the lists of each namespace, [`CONCURRENT_NAMESPACES`] at once.
async fn audit_each_namespace(
    lister: &WorkloadLister,
    shared: &Shared<'_>,
    chosen: &[ChosenNamespace],
    progress: &Progress,
) -> anyhow::Result<Vec<NamespaceReport>> {
    let snapshots: Vec<_> = futures::stream::iter(chosen.iter())
        .map(|(name, _)| async {
            let snapshot = lister.objects(Some(name)).await;
            progress.read_one();
            snapshot
        })
        .buffered(CONCURRENT_NAMESPACES)
        .map(Ok::<_, anyhow::Error>)
        .try_collect()
        .await?;
    let mut reports = Vec::new();
    for (namespace, snapshot) in chosen.iter().zip(snapshots) {
        let (name, labels) = namespace;
        let report = match snapshot {
            Ok(mut s) => {
                let found = s.policies.remove(name);
                let mut report = shared.audit(namespace, s.objects, found)?;
                report.unreadable = s.unreadable;
                report
            }
            Err(ListFailure::Forbidden(why)) => {
                let opt_in = opt_in_of(name, labels.as_ref(), &shared.args.podgrace_namespace);
                not_readable(name, opt_in, why)
            }
            Err(ListFailure::Fatal(e)) => return Err(e),
        };
        reports.push(report);
    }
    Ok(reports)
}
