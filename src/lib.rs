//! podgrace: a Kubernetes mutating admission webhook that gives pods graceful termination.
//!
//! Layers, inner to outer (arrows point inwards only):
//! - [`policy`]: the policy format, validation and merging (pure);
//! - [`engine`]: `Pod` + policy → JSON patch + warnings (pure, no I/O, no async);
//! - adapters: the HTTPS server, TLS, policy stores and the CLI.

pub mod audit;
pub mod certs;
pub mod cli;
pub mod documents;
pub mod engine;
pub mod helper;
pub mod key_order;
pub mod known_fields;
pub mod kube_names;
pub mod kube_version;
pub mod manifest;
pub mod metrics;
pub mod metrics_listener;
pub mod nacos;
pub mod policy;
pub mod server;
pub mod store;
pub mod tls;
pub mod version_discovery;
pub mod watch;
pub mod yaml;
