//! What podgrace shares with the world outside it, as pure code: the Kubernetes API's name
//! grammars and versions, the Nacos HTTP API, and YAML as kubectl, Helm and PyYAML read it. Every
//! layer may use these; they use nothing of podgrace's.

pub(crate) mod kube_names;
pub mod kube_version;
pub(crate) mod nacos;
pub mod yaml;
