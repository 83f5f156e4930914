//! podgrace: a Kubernetes mutating admission webhook that gives pods graceful termination.
//!
//! Layers, inner to outer (arrows point inwards only):
//! - [`protocols`]: what podgrace shares with the outside world (Kubernetes names and versions,
//!   the Nacos API, YAML), pure;
//! - [`policy`]: the policy format, validation and merging, pure;
//! - [`engine`]: `Pod` + policy → JSON patch + warnings, pure (no I/O, no async);
//! - [`manifest`] and [`audit`]: manifests read as kubectl reads them, and the audit of their
//!   workloads, pure but for [`manifest::files`];
//! - adapters: [`observability`] (metrics, logs), [`store`] (policy stores), [`cluster`] (the
//!   Kubernetes API), [`server`] (HTTPS, TLS, certificates), `helper` (the program run inside
//!   pods) and [`cli`].
//!
//! The folders and what each may use are in docs/ARCHITECTURE.md ("Layout and layers"). The
//! types most callers need are re-exported here; the modules are public for the tests that check
//! one adapter at a time, and everything else is crate-private.

pub mod audit;
pub mod cli;
pub mod cluster;
pub mod engine;
pub(crate) mod helper;
pub mod manifest;
pub mod observability;
pub mod policy;
pub mod protocols;
pub mod server;
pub mod store;

pub use engine::{ClusterInfo, Mutation, PodView, mutation_for};
pub use observability::metrics::Metrics;
pub use policy::{EffectivePolicy, PolicyLayer};
pub use server::webhook::{
    Bound, CertificateConfig, NamespacePolicies, PolicyConfig, Webhook, WebhookConfig,
};
pub use server::{AppState, PolicyConfigMap, ServerOptions, router};
pub use store::PolicyStore;
