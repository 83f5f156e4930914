//! Policy stores: where namespace policies and the cluster default come from. The server only
//! sees [`PolicyStore`]; the standalone mode uses files, a cluster install watches ConfigMaps.
//! Both feed a [`cache::PolicyCache`], which holds the last good policy of every namespace and
//! answers the admission path from memory. The cluster's ConfigMaps are watched by
//! [`crate::cluster::policy_watch`], which feeds the same cache.

pub mod cache;
pub(crate) mod dir_watch;
pub mod files;

use std::sync::Arc;

use crate::policy::{EffectivePolicy, PolicyLayer};

/// What the admission path needs from a policy store. Implementations only read memory.
pub trait PolicyStore: Send + Sync {
    /// The effective policy for pods created in `namespace`.
    fn policy_for(&self, namespace: &str) -> Arc<EffectivePolicy>;
    /// The cluster default layer (namespace policies are validated on top of it).
    fn cluster_layer(&self) -> Option<Arc<PolicyLayer>>;
    /// Whether the initial load has completed.
    fn is_ready(&self) -> bool;
}
