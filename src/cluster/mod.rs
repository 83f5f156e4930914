//! The Kubernetes API adapters: the client ([`client`]), the watch of the namespace policy
//! ConfigMaps ([`policy_watch`]) and the Events on the ones refused ([`policy_events`]), the API
//! server's version ([`version_discovery`]), and the paged listing of workloads the audit reads
//! ([`workloads`]). The self-managed certificates keep their Secret and caBundles with the
//! certificates, in `server::certificates::self_managed`.

pub(crate) mod client;
pub mod policy_events;
pub mod policy_watch;
pub mod version_discovery;
pub(crate) mod workloads;
