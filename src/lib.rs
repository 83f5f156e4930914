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
//!   Kubernetes API), [`server`] (HTTPS, TLS, certificates), [`helper`] (the program run inside
//!   pods) and [`cli`].

pub mod audit;
pub mod cli;
pub mod cluster;
pub mod engine;
pub mod helper;
pub mod manifest;
pub mod observability;
pub mod policy;
pub mod protocols;
pub mod server;
pub mod store;
