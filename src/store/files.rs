//! Policies from files: the cluster default policy (a file mounted from a ConfigMap by the chart,
//! in every mode) and, in standalone mode, namespace policies from a directory with one file per
//! namespace (`shop.yaml` is the policy of namespace `shop`; a bare policy or a ConfigMap
//! manifest). Files are re-read when their directory changes; only changed content is re-applied,
//! so a file that stays broken is reported once, not on every check.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::cache::PolicyCache;
use crate::policy::parse::{content_hash, layers_from_file_text};
use crate::policy::{FieldError, Origin, PolicyError, PolicyLayer};
use crate::protocols::kube_names::is_dns_subdomain;
use crate::store::dir_watch::{DirWatch, watch_dir};

/// Reads one policy file (a bare policy or one ConfigMap manifest) into a layer.
pub fn read_policy_file(path: &Path, key: &str) -> Result<PolicyLayer, PolicyError> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| PolicyError {
        origin: name.clone(),
        errors: vec![FieldError::new("", format!("cannot read: {e}"))],
    })?;
    let mut layers = layers_from_file_text(&name, &text, key);
    match layers.len() {
        1 => layers.remove(0).map(|mut layer| {
            layer.origin = Origin {
                name: name.clone(),
                version: content_hash(&text),
            };
            layer
        }),
        n => Err(PolicyError {
            origin: name,
            errors: vec![FieldError::new(
                "",
                format!("expected one policy, found {n}"),
            )],
        }),
    }
}

fn dir_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    }
}

/// Loads the cluster default policy now, and again whenever the file changes.
pub fn watch_cluster_policy(
    cache: Arc<PolicyCache>,
    path: PathBuf,
    key: String,
    poll: Duration,
) -> DirWatch {
    let dir = dir_of(&path);
    let last = Mutex::new(None::<String>);
    let load = move || {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let mut last = last.lock().unwrap_or_else(|p| p.into_inner());
        if last.as_deref() != Some(text.as_str()) {
            *last = Some(text);
            cache.set_cluster(read_policy_file(&path, &key));
        }
    };
    load();
    watch_dir(&dir, poll, load)
}

/// The namespace a file in the policy directory stands for, if it is a policy file.
fn namespace_of(path: &Path) -> Option<String> {
    let name = path.file_name()?.to_str()?;
    if name.starts_with('.') {
        return None;
    }
    let (stem, ext) = name.rsplit_once('.')?;
    (matches!(ext, "yaml" | "yml" | "json") && is_dns_subdomain(stem) && !stem.contains('.'))
        .then(|| stem.to_owned())
}

/// Loads every namespace policy in `dir` now (and marks nothing synced: the caller decides),
/// then re-reads the directory whenever it changes.
pub fn watch_namespace_dir(
    cache: Arc<PolicyCache>,
    dir: PathBuf,
    key: String,
    poll: Duration,
) -> DirWatch {
    let seen: Mutex<HashMap<String, String>> = Mutex::new(HashMap::new());
    let scan_dir = dir.clone();
    let scan = move || {
        let mut found: HashMap<String, (PathBuf, String)> = HashMap::new();
        match std::fs::read_dir(&scan_dir) {
            Ok(entries) => {
                for entry in entries.flatten() {
                    let path = entry.path();
                    if let Some(ns) = namespace_of(&path) {
                        let text = std::fs::read_to_string(&path).unwrap_or_default();
                        found.insert(ns, (path, text));
                    }
                }
            }
            Err(e) => {
                tracing::error!(dir = %scan_dir.display(), error = %e, "cannot read the policy directory");
                return;
            }
        }
        let mut seen = seen.lock().unwrap_or_else(|p| p.into_inner());
        for ns in seen
            .keys()
            .filter(|ns| !found.contains_key(*ns))
            .cloned()
            .collect::<Vec<_>>()
        {
            seen.remove(&ns);
            cache.remove(&ns);
        }
        for (ns, (path, text)) in found {
            if seen.get(&ns) != Some(&text) {
                seen.insert(ns.clone(), text);
                cache.apply(&ns, read_policy_file(&path, &key));
            }
        }
    };
    scan();
    watch_dir(&dir, poll, scan)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_files_are_named_after_their_namespace() {
        assert_eq!(
            namespace_of(Path::new("/p/shop.yaml")).as_deref(),
            Some("shop")
        );
        assert_eq!(
            namespace_of(Path::new("/p/kube-system.json")).as_deref(),
            Some("kube-system")
        );
        assert_eq!(namespace_of(Path::new("/p/..data")), None);
        assert_eq!(namespace_of(Path::new("/p/Shop.yaml")), None);
        assert_eq!(namespace_of(Path::new("/p/shop.txt")), None);
        assert_eq!(namespace_of(Path::new("/p/a.b.yaml")), None);
    }
}
