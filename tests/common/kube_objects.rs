//! Secrets and webhook configurations for the test API server ([`super::kube_api::FakeApi`]),
//! with the parts of the Kubernetes API protocol the self-managed certificates rely on:
//!
//! - `GET` one object (`404 NotFound` when absent), list and watch a kind with a `metadata.name`
//!   field selector (the watch as in kube_api.rs: `{"type","object"}` lines, ADDED, MODIFIED,
//!   DELETED, BOOKMARK events, replay from `resourceVersion`);
//! - `POST` creates (`409 AlreadyExists` when the name is taken); `PUT` updates with optimistic
//!   concurrency (a `metadata.resourceVersion` other than the stored one is `409 Conflict`; none
//!   is an unconditional update); `DELETE`;
//! - `PATCH` as RFC 6902 JSON patch (a failed `test` is `422`), RFC 7386 merge patch, and
//!   server-side apply (`application/apply-patch+yaml`, `fieldManager`, `force`) with managed
//!   fields: an applier sets the fields of its configuration and removes the fields it applied
//!   before and no longer applies, unless another manager owns them; a field written by another
//!   request (update or patch) passes to that request's manager. Keyed lists are lists of
//!   objects that all have a `name` (as `webhooks`, keyed by name in the real schema); other
//!   lists are atomic. A field applied without `force` over another manager's different value is
//!   `409 Conflict`;
//! - RBAC as Kubernetes evaluates it, from rules (a ClusterRole's, or a Role's in its namespace):
//!   verb, API group, resource and `resourceNames`; a list or watch carries the name of its
//!   `metadata.name` field selector, a create carries no name (so a rule with `resourceNames`
//!   never allows it). Refused requests are `403 Forbidden` with the API server's message and
//!   are recorded.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc, watch};

/// One RBAC rule, with the namespace of its Role (`None`: a ClusterRole's).
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
pub struct Rule {
    /// A Role's namespace; `None` for a ClusterRole.
    #[serde(default)]
    pub namespace: Option<String>,
    /// apiGroups.
    #[serde(rename = "apiGroups", default)]
    pub api_groups: Vec<String>,
    /// resources.
    #[serde(default)]
    pub resources: Vec<String>,
    /// verbs.
    #[serde(default)]
    pub verbs: Vec<String>,
    /// resourceNames.
    #[serde(rename = "resourceNames", default)]
    pub resource_names: Vec<String>,
}

/// A request as RBAC sees it.
#[derive(Clone, Debug)]
struct Attributes {
    verb: &'static str,
    group: String,
    resource: String,
    namespace: Option<String>,
    name: Option<String>,
}

fn matches(list: &[String], value: &str) -> bool {
    list.iter().any(|v| v == "*" || v == value)
}

fn allows(rule: &Rule, a: &Attributes) -> bool {
    let scope = match (&rule.namespace, &a.namespace) {
        (None, _) => true,
        (Some(r), Some(ns)) => r == ns,
        (Some(_), None) => false,
    };
    scope
        && matches(&rule.verbs, a.verb)
        && matches(&rule.api_groups, &a.group)
        && matches(&rule.resources, &a.resource)
        && (rule.resource_names.is_empty()
            || a.name
                .as_ref()
                .is_some_and(|n| rule.resource_names.contains(n)))
}

/// A path to a leaf field: object keys and keyed-list items.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Seg {
    Key(String),
    Item(String),
}

type FieldPath = Vec<Seg>;

#[derive(Clone, Debug)]
struct Change {
    rv: u64,
    resource: String,
    kind: &'static str,
    object: Value,
}

type Key = (String, String, String);

#[derive(Default)]
struct Inner {
    rv: u64,
    objects: BTreeMap<Key, Value>,
    history: Vec<Change>,
    /// Per object, per manager, the leaf fields it owns.
    managed: HashMap<Key, BTreeMap<String, BTreeSet<FieldPath>>>,
    rbac: Option<Vec<Rule>>,
    forbidden: Vec<String>,
    /// Patches still to answer `409 Conflict` (as if another writer had been first).
    conflicts: usize,
    requests: Vec<String>,
}

/// The store behind the routes.
pub struct Objects {
    /// Down: every request on a connection that is still open is aborted (a stopped server).
    down: AtomicBool,
    inner: Mutex<Inner>,
    changes: broadcast::Sender<Change>,
    drop_watches: watch::Sender<u64>,
}

impl Objects {
    pub(super) fn new() -> Arc<Self> {
        Arc::new(Objects {
            down: AtomicBool::new(false),
            inner: Mutex::new(Inner {
                rv: 1000,
                ..Inner::default()
            }),
            changes: broadcast::channel(4096).0,
            drop_watches: watch::channel(0).0,
        })
    }

    /// The routes, with their state.
    pub(super) fn routes<S: Clone + Send + Sync + 'static>(self: &Arc<Self>) -> Router<S> {
        Router::new()
            .route(
                "/api/v1/namespaces/{ns}/secrets",
                get(core_collection).post(core_collection),
            )
            .route(
                "/api/v1/namespaces/{ns}/secrets/{name}",
                get(core_item)
                    .put(core_item)
                    .patch(core_item)
                    .delete(core_item),
            )
            .route(
                "/apis/admissionregistration.k8s.io/v1/{resource}",
                get(webhook_collection).post(webhook_collection),
            )
            .route(
                "/apis/admissionregistration.k8s.io/v1/{resource}/{name}",
                get(webhook_item)
                    .put(webhook_item)
                    .patch(webhook_item)
                    .delete(webhook_item),
            )
            .with_state(self.clone())
    }

    /// Limits every request to what `rules` allow (`None`: everything, an administrator).
    pub fn set_rbac(&self, rules: Option<Vec<Rule>>) {
        self.inner.lock().unwrap().rbac = rules;
    }

    /// Every refused request (`VERB resource namespace/name`).
    pub fn forbidden(&self) -> Vec<String> {
        self.inner.lock().unwrap().forbidden.clone()
    }

    /// Every request (`METHOD path?query`).
    pub fn requests(&self) -> Vec<String> {
        self.inner.lock().unwrap().requests.clone()
    }

    /// The stored object, if any (`namespace` empty for cluster-scoped kinds).
    pub fn get(&self, resource: &str, namespace: &str, name: &str) -> Option<Value> {
        self.inner
            .lock()
            .unwrap()
            .objects
            .get(&(resource.to_owned(), namespace.to_owned(), name.to_owned()))
            .cloned()
    }

    /// Creates or replaces an object as an administrator would (`kubectl replace`/`create`):
    /// the fields are the request's, owned by `manager`.
    pub fn put(&self, resource: &str, object: Value, manager: &str) {
        let (ns, name) = ident(&object);
        let key = (resource.to_owned(), ns, name);
        let mut inner = self.inner.lock().unwrap();
        let before = inner.objects.get(&key).cloned();
        let mut object = object;
        let kind = if before.is_some() {
            "MODIFIED"
        } else {
            "ADDED"
        };
        if let Some(b) = &before {
            object["metadata"]["uid"] = b["metadata"]["uid"].clone();
        }
        store(
            &mut inner,
            &self.changes,
            &key,
            object,
            kind,
            before.as_ref(),
            manager,
        );
    }

    /// Deletes an object as an administrator would.
    pub fn delete(&self, resource: &str, namespace: &str, name: &str) {
        let key = (resource.to_owned(), namespace.to_owned(), name.to_owned());
        let mut inner = self.inner.lock().unwrap();
        remove(&mut inner, &self.changes, &key);
    }

    /// Server-side apply of `object` by `manager` (with `force`), as an administrator.
    pub fn apply(
        &self,
        resource: &str,
        object: Value,
        manager: &str,
        force: bool,
    ) -> Result<(), String> {
        let (ns, name) = ident(&object);
        let key = (resource.to_owned(), ns, name);
        let mut inner = self.inner.lock().unwrap();
        server_side_apply(&mut inner, &self.changes, &key, &object, manager, force)
            .map(|_| ())
            .map_err(|(code, msg)| format!("{code}: {msg}"))
    }

    /// The next `n` patches are answered `409 Conflict`, as when another writer changed the
    /// object between the read and the patch.
    pub fn conflict_next_patches(&self, n: usize) {
        self.inner.lock().unwrap().conflicts = n;
    }

    /// Marks the server down (every request aborted) or up again.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
        if down {
            self.drop_watches();
        }
    }

    /// Aborts every open watch.
    pub fn drop_watches(&self) {
        self.drop_watches.send_modify(|v| *v += 1);
    }
}

fn ident(object: &Value) -> (String, String) {
    (
        object["metadata"]["namespace"]
            .as_str()
            .unwrap_or("")
            .to_owned(),
        object["metadata"]["name"].as_str().unwrap_or("").to_owned(),
    )
}

fn status(code: u16, reason: &str, message: &str, details: Value) -> Response {
    (
        StatusCode::from_u16(code).unwrap(),
        axum::Json(json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message, "reason": reason, "details": details, "code": code})),
    )
        .into_response()
}

/// `secrets`, `mutatingwebhookconfigurations.admissionregistration.k8s.io`.
fn qualified(group: &str, resource: &str) -> String {
    if group.is_empty() {
        resource.to_owned()
    } else {
        format!("{resource}.{group}")
    }
}

fn kind_of(resource: &str) -> (&'static str, &'static str) {
    match resource {
        "secrets" => ("v1", "Secret"),
        "mutatingwebhookconfigurations" => (
            "admissionregistration.k8s.io/v1",
            "MutatingWebhookConfiguration",
        ),
        _ => (
            "admissionregistration.k8s.io/v1",
            "ValidatingWebhookConfiguration",
        ),
    }
}

async fn core_collection(
    State(o): State<Arc<Objects>>,
    Path(ns): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle(
        &o,
        method,
        uri,
        headers,
        body,
        "",
        "secrets",
        Some(ns),
        None,
    )
    .await
}

async fn core_item(
    State(o): State<Arc<Objects>>,
    Path((ns, name)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle(
        &o,
        method,
        uri,
        headers,
        body,
        "",
        "secrets",
        Some(ns),
        Some(name),
    )
    .await
}

async fn webhook_collection(
    State(o): State<Arc<Objects>>,
    Path(resource): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle_webhooks(&o, method, uri, headers, body, resource, None).await
}

async fn webhook_item(
    State(o): State<Arc<Objects>>,
    Path((resource, name)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle_webhooks(&o, method, uri, headers, body, resource, Some(name)).await
}

async fn handle_webhooks(
    o: &Arc<Objects>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
    resource: String,
    name: Option<String>,
) -> Response {
    if resource != "mutatingwebhookconfigurations" && resource != "validatingwebhookconfigurations"
    {
        return status(
            404,
            "NotFound",
            "the server could not find the requested resource",
            json!({}),
        );
    }
    handle(
        o,
        method,
        uri,
        headers,
        body,
        "admissionregistration.k8s.io",
        &resource,
        None,
        name,
    )
    .await
}

#[allow(clippy::too_many_arguments)]
async fn handle(
    o: &Arc<Objects>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
    group: &str,
    resource: &str,
    namespace: Option<String>,
    name: Option<String>,
) -> Response {
    if o.down.load(Ordering::SeqCst) {
        // A connection the stopped server had not closed yet: reset, no answer.
        let reset = futures::stream::once(async {
            Err::<Bytes, _>(std::io::Error::other("server stopped"))
        });
        return Response::new(Body::from_stream(reset));
    }
    let q: HashMap<String, String> = form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .into_owned()
        .collect();
    let selected_name = q
        .get("fieldSelector")
        .and_then(|s| s.strip_prefix("metadata.name="))
        .map(str::to_owned);
    if q.contains_key("fieldSelector") && selected_name.is_none() {
        return status(
            400,
            "BadRequest",
            "only a metadata.name field selector is supported",
            json!({}),
        );
    }
    let watching = q.get("watch").is_some_and(|w| w == "true" || w == "1");
    let verb = match (&method, &name) {
        (&Method::GET, Some(_)) => "get",
        (&Method::GET, None) if watching => "watch",
        (&Method::GET, None) => "list",
        (&Method::POST, _) => "create",
        (&Method::PUT, _) => "update",
        (&Method::PATCH, _) => "patch",
        _ => "delete",
    };
    let attributes = Attributes {
        verb,
        group: group.to_owned(),
        resource: resource.to_owned(),
        namespace: namespace.clone(),
        name: if verb == "create" {
            None
        } else {
            name.clone().or(selected_name.clone())
        },
    };
    {
        let mut inner = o.inner.lock().unwrap();
        inner.requests.push(format!("{method} {uri}"));
        if let Some(rules) = &inner.rbac
            && !rules.iter().any(|r| allows(r, &attributes))
        {
            let target = format!(
                "{}/{}",
                namespace.clone().unwrap_or_default(),
                attributes.name.clone().unwrap_or_default()
            );
            inner.forbidden.push(format!("{verb} {resource} {target}"));
            let scope = match &namespace {
                Some(ns) => format!("in the namespace \"{ns}\""),
                None => "at the cluster scope".to_owned(),
            };
            let what = qualified(group, resource);
            let named = attributes
                .name
                .as_ref()
                .map(|n| format!(" \"{n}\""))
                .unwrap_or_default();
            return status(
                403,
                "Forbidden",
                &format!(
                    "{what}{named} is forbidden: User \"system:serviceaccount:podgrace-system:podgrace\" cannot {verb} resource \"{resource}\" in API group \"{group}\" {scope}"
                ),
                json!({"name": attributes.name, "group": group, "kind": resource}),
            );
        }
    }
    let ns = namespace.unwrap_or_default();
    let manager = q.get("fieldManager").cloned().unwrap_or_else(|| {
        headers
            .get("user-agent")
            .and_then(|v| v.to_str().ok())
            .and_then(|ua| ua.split('/').next())
            .unwrap_or("unknown")
            .to_owned()
    });
    match verb {
        "watch" => watch_response(o.clone(), resource.to_owned(), ns, selected_name, &q),
        "list" => {
            let inner = o.inner.lock().unwrap();
            let items: Vec<Value> = inner
                .objects
                .iter()
                .filter(|((r, n, nm), _)| {
                    r == resource && *n == ns && selected_name.as_ref().is_none_or(|s| s == nm)
                })
                .map(|(_, v)| {
                    let mut v = v.clone();
                    let m = v.as_object_mut().unwrap();
                    m.remove("apiVersion");
                    m.remove("kind");
                    v
                })
                .collect();
            let (api_version, kind) = kind_of(resource);
            axum::Json(json!({"apiVersion": api_version, "kind": format!("{kind}List"), "metadata": {"resourceVersion": inner.rv.to_string()}, "items": items})).into_response()
        }
        "get" => {
            let name = name.unwrap();
            let inner = o.inner.lock().unwrap();
            match inner.objects.get(&(resource.to_owned(), ns, name.clone())) {
                Some(v) => axum::Json(v.clone()).into_response(),
                None => not_found(group, resource, &name),
            }
        }
        "create" => {
            let Ok(mut object) = serde_json::from_slice::<Value>(&body) else {
                return status(
                    400,
                    "BadRequest",
                    "the body is not a JSON object",
                    json!({}),
                );
            };
            let (api_version, kind) = kind_of(resource);
            if object["apiVersion"]
                .as_str()
                .is_some_and(|v| v != api_version)
                || object["kind"].as_str().is_some_and(|k| k != kind)
            {
                return status(
                    400,
                    "BadRequest",
                    "the API version in the data does not match the expected API version",
                    json!({}),
                );
            }
            object["apiVersion"] = json!(api_version);
            object["kind"] = json!(kind);
            let name = object["metadata"]["name"].as_str().unwrap_or("").to_owned();
            if name.is_empty() {
                return status(
                    422,
                    "Invalid",
                    "metadata.name: Required value: name or generateName is required",
                    json!({}),
                );
            }
            if !ns.is_empty() {
                object["metadata"]["namespace"] = json!(ns);
            }
            if !object["metadata"]["resourceVersion"].is_null() {
                return status(
                    500,
                    "InternalError",
                    "resourceVersion should not be set on objects to be created",
                    json!({}),
                );
            }
            let key = (resource.to_owned(), ns, name.clone());
            let mut inner = o.inner.lock().unwrap();
            if inner.objects.contains_key(&key) {
                return status(
                    409,
                    "AlreadyExists",
                    &format!("{} \"{name}\" already exists", qualified(group, resource)),
                    json!({"name": name, "group": group, "kind": resource}),
                );
            }
            let stored = store(
                &mut inner, &o.changes, &key, object, "ADDED", None, &manager,
            );
            (StatusCode::CREATED, axum::Json(stored)).into_response()
        }
        "update" => {
            let name = name.unwrap();
            let Ok(mut object) = serde_json::from_slice::<Value>(&body) else {
                return status(
                    400,
                    "BadRequest",
                    "the body is not a JSON object",
                    json!({}),
                );
            };
            let key = (resource.to_owned(), ns.clone(), name.clone());
            let mut inner = o.inner.lock().unwrap();
            let Some(before) = inner.objects.get(&key).cloned() else {
                return not_found(group, resource, &name);
            };
            if let Some(rv) = object["metadata"]["resourceVersion"].as_str()
                && rv != before["metadata"]["resourceVersion"]
            {
                return conflict(group, resource, &name);
            }
            let (api_version, kind) = kind_of(resource);
            object["apiVersion"] = json!(api_version);
            object["kind"] = json!(kind);
            if !ns.is_empty() {
                object["metadata"]["namespace"] = json!(ns);
            }
            object["metadata"]["uid"] = before["metadata"]["uid"].clone();
            let stored = store(
                &mut inner,
                &o.changes,
                &key,
                object,
                "MODIFIED",
                Some(&before),
                &manager,
            );
            axum::Json(stored).into_response()
        }
        "patch" => {
            let name = name.unwrap();
            let key = (resource.to_owned(), ns.clone(), name.clone());
            let content_type = headers
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned();
            let Ok(patch) = serde_json::from_slice::<Value>(&body) else {
                return status(400, "BadRequest", "the patch does not parse", json!({}));
            };
            let mut inner = o.inner.lock().unwrap();
            if content_type == "application/apply-patch+yaml" {
                let force = q.get("force").is_some_and(|f| f == "true");
                let mut applied = patch;
                if !ns.is_empty() {
                    applied["metadata"]["namespace"] = json!(ns);
                }
                applied["metadata"]["name"] = json!(name);
                return match server_side_apply(
                    &mut inner, &o.changes, &key, &applied, &manager, force,
                ) {
                    Ok(v) => axum::Json(v).into_response(),
                    Err((code, msg)) => status(
                        code,
                        if code == 409 {
                            "Conflict"
                        } else {
                            "BadRequest"
                        },
                        &msg,
                        json!({}),
                    ),
                };
            }
            let Some(before) = inner.objects.get(&key).cloned() else {
                return not_found(group, resource, &name);
            };
            if inner.conflicts > 0 {
                inner.conflicts -= 1;
                return conflict(group, resource, &name);
            }
            let mut after = before.clone();
            match content_type.as_str() {
                "application/json-patch+json" => {
                    let Ok(ops) = serde_json::from_value::<json_patch::Patch>(patch) else {
                        return status(400, "BadRequest", "invalid JSON patch", json!({}));
                    };
                    if let Err(e) = json_patch::patch(&mut after, &ops) {
                        return status(
                            422,
                            "Invalid",
                            &format!(
                                "the server rejected our request due to an error in our request: {e}"
                            ),
                            json!({}),
                        );
                    }
                }
                "application/merge-patch+json" => json_patch::merge(&mut after, &patch),
                other => {
                    return status(
                        415,
                        "UnsupportedMediaType",
                        &format!(
                            "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml (not {other})"
                        ),
                        json!({}),
                    );
                }
            }
            if after["metadata"]["resourceVersion"] != before["metadata"]["resourceVersion"] {
                return conflict(group, resource, &name);
            }
            after["metadata"]["uid"] = before["metadata"]["uid"].clone();
            after["metadata"]["name"] = json!(name);
            let stored = store(
                &mut inner,
                &o.changes,
                &key,
                after,
                "MODIFIED",
                Some(&before),
                &manager,
            );
            axum::Json(stored).into_response()
        }
        _ => {
            let name = name.unwrap();
            let key = (resource.to_owned(), ns, name.clone());
            let mut inner = o.inner.lock().unwrap();
            match remove(&mut inner, &o.changes, &key) {
                Some(v) => axum::Json(v).into_response(),
                None => not_found(group, resource, &name),
            }
        }
    }
}

fn not_found(group: &str, resource: &str, name: &str) -> Response {
    status(
        404,
        "NotFound",
        &format!("{} \"{name}\" not found", qualified(group, resource)),
        json!({"name": name, "group": group, "kind": resource}),
    )
}

fn conflict(group: &str, resource: &str, name: &str) -> Response {
    status(
        409,
        "Conflict",
        &format!(
            "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
            qualified(group, resource)
        ),
        json!({"name": name, "group": group, "kind": resource}),
    )
}

/// Stores `object` (new resourceVersion, uid on creation), records the change and gives the
/// fields it changed to `manager`.
fn store(
    inner: &mut Inner,
    changes: &broadcast::Sender<Change>,
    key: &Key,
    mut object: Value,
    kind: &'static str,
    before: Option<&Value>,
    manager: &str,
) -> Value {
    inner.rv += 1;
    let rv = inner.rv;
    object["metadata"]["resourceVersion"] = json!(rv.to_string());
    if object["metadata"]["uid"].is_null() {
        object["metadata"]["uid"] = json!(format!("uid-{}-{rv}", key.2));
    }
    let old: HashMap<FieldPath, Value> =
        before.map(leaves).unwrap_or_default().into_iter().collect();
    let changed: BTreeSet<FieldPath> = leaves(&object)
        .into_iter()
        .filter(|(p, v)| old.get(p) != Some(v))
        .map(|(p, _)| p)
        .collect();
    let managed = inner.managed.entry(key.clone()).or_default();
    for (m, owned) in managed.iter_mut() {
        if m != manager {
            owned.retain(|p| !changed.contains(p));
        }
    }
    managed
        .entry(manager.to_owned())
        .or_default()
        .extend(changed);
    inner.objects.insert(key.clone(), object.clone());
    let change = Change {
        rv,
        resource: key.0.clone(),
        kind,
        object: object.clone(),
    };
    inner.history.push(change.clone());
    let _ = changes.send(change);
    object
}

fn remove(inner: &mut Inner, changes: &broadcast::Sender<Change>, key: &Key) -> Option<Value> {
    let mut object = inner.objects.remove(key)?;
    inner.managed.remove(key);
    inner.rv += 1;
    object["metadata"]["resourceVersion"] = json!(inner.rv.to_string());
    let change = Change {
        rv: inner.rv,
        resource: key.0.clone(),
        kind: "DELETED",
        object: object.clone(),
    };
    inner.history.push(change.clone());
    let _ = changes.send(change);
    Some(object)
}

/// Metadata the server owns: never a managed field.
fn server_owned(path: &[Seg]) -> bool {
    matches!(path, [Seg::Key(m), Seg::Key(f), ..] if m == "metadata" && matches!(f.as_str(), "resourceVersion" | "uid" | "creationTimestamp" | "generation" | "managedFields"))
        || matches!(path, [Seg::Key(k)] if k == "apiVersion" || k == "kind")
}

/// Every leaf field of `v` with its value.
fn leaves(v: &Value) -> Vec<(FieldPath, Value)> {
    fn walk(v: &Value, path: &mut FieldPath, out: &mut Vec<(FieldPath, Value)>) {
        match v {
            Value::Object(m) if !m.is_empty() => {
                for (k, v) in m {
                    path.push(Seg::Key(k.clone()));
                    walk(v, path, out);
                    path.pop();
                }
            }
            Value::Array(items) if keyed(items) => {
                for item in items {
                    let name = item["name"].as_str().unwrap().to_owned();
                    path.push(Seg::Item(name));
                    walk(item, path, out);
                    path.pop();
                }
            }
            _ => {
                if !server_owned(path) {
                    out.push((path.clone(), v.clone()));
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(v, &mut Vec::new(), &mut out);
    out
}

fn keyed(items: &[Value]) -> bool {
    !items.is_empty() && items.iter().all(|i| i["name"].is_string())
}

fn set_field(target: &mut Value, path: &[Seg], value: Value) {
    let Some((first, rest)) = path.split_first() else {
        *target = value;
        return;
    };
    let child = match first {
        Seg::Key(k) => {
            if !target.is_object() {
                *target = json!({});
            }
            target
                .as_object_mut()
                .unwrap()
                .entry(k.clone())
                .or_insert(Value::Null)
        }
        Seg::Item(name) => {
            if !target.is_array() {
                *target = json!([]);
            }
            let items = target.as_array_mut().unwrap();
            let i = match items.iter().position(|i| i["name"] == *name) {
                Some(i) => i,
                None => {
                    items.push(json!({"name": name}));
                    items.len() - 1
                }
            };
            &mut items[i]
        }
    };
    set_field(child, rest, value);
}

fn remove_field(target: &mut Value, path: &[Seg]) {
    match path {
        [] => {}
        [Seg::Key(k)] => {
            if let Some(m) = target.as_object_mut() {
                m.remove(k);
            }
        }
        [Seg::Item(name)] => {
            if let Some(items) = target.as_array_mut() {
                items.retain(|i| i["name"] != *name);
            }
        }
        [first, rest @ ..] => {
            let child = match first {
                Seg::Key(k) => target.get_mut(k),
                Seg::Item(name) => target
                    .as_array_mut()
                    .and_then(|items| items.iter_mut().find(|i| i["name"] == *name)),
            };
            if let Some(child) = child {
                remove_field(child, rest);
            }
            // A keyed item left with its name only is gone.
            if let (Seg::Item(name), Some(items)) = (first, target.as_array_mut()) {
                items.retain(|i| {
                    !(i["name"] == *name && i.as_object().is_some_and(|o| o.len() == 1))
                });
            }
        }
    }
}

fn server_side_apply(
    inner: &mut Inner,
    changes: &broadcast::Sender<Change>,
    key: &Key,
    applied: &Value,
    manager: &str,
    force: bool,
) -> Result<Value, (u16, String)> {
    let before = inner.objects.get(key).cloned();
    let mut live = before.clone().unwrap_or_else(|| json!({}));
    let new_fields: Vec<(FieldPath, Value)> = leaves(applied);
    let new_paths: BTreeSet<FieldPath> = new_fields.iter().map(|(p, _)| p.clone()).collect();
    let live_fields: HashMap<FieldPath, Value> = leaves(&live).into_iter().collect();
    let mut managed = inner.managed.get(key).cloned().unwrap_or_default();
    // Conflicts: a field another manager owns with another value.
    let mut conflicts = Vec::new();
    for (path, value) in &new_fields {
        if live_fields.get(path).is_some_and(|v| v != value) {
            for (m, owned) in &managed {
                if m != manager && owned.contains(path) {
                    conflicts.push(format!("conflict with \"{m}\": {path:?}"));
                }
            }
        }
    }
    if !conflicts.is_empty() && !force {
        return Err((
            409,
            format!(
                "Apply failed with {} conflicts: {}",
                conflicts.len(),
                conflicts.join("; ")
            ),
        ));
    }
    // Fields this manager applied before and no longer applies go, unless another owns them.
    let previous = managed.get(manager).cloned().unwrap_or_default();
    for path in previous.difference(&new_paths) {
        let shared = managed
            .iter()
            .any(|(m, owned)| m != manager && owned.contains(path));
        if !shared {
            remove_field(&mut live, path);
        }
    }
    for (path, value) in &new_fields {
        set_field(&mut live, path, value.clone());
        if live_fields.get(path).is_some_and(|v| v != value) {
            for (m, owned) in managed.iter_mut() {
                if m != manager {
                    owned.remove(path);
                }
            }
        }
    }
    managed.insert(manager.to_owned(), new_paths);
    live["apiVersion"] = applied["apiVersion"].clone();
    live["kind"] = applied["kind"].clone();
    if let Some(b) = &before {
        live["metadata"]["uid"] = b["metadata"]["uid"].clone();
        live["metadata"]["resourceVersion"] = b["metadata"]["resourceVersion"].clone();
        if live == *b {
            inner.managed.insert(key.clone(), managed);
            return Ok(live);
        }
    }
    let kind = if before.is_some() {
        "MODIFIED"
    } else {
        "ADDED"
    };
    inner.rv += 1;
    let rv = inner.rv;
    live["metadata"]["resourceVersion"] = json!(rv.to_string());
    if live["metadata"]["uid"].is_null() {
        live["metadata"]["uid"] = json!(format!("uid-{}-{rv}", key.2));
    }
    inner.managed.insert(key.clone(), managed);
    inner.objects.insert(key.clone(), live.clone());
    let change = Change {
        rv,
        resource: key.0.clone(),
        kind,
        object: live.clone(),
    };
    inner.history.push(change.clone());
    let _ = changes.send(change);
    Ok(live)
}

fn watch_response(
    o: Arc<Objects>,
    resource: String,
    namespace: String,
    name: Option<String>,
    q: &HashMap<String, String>,
) -> Response {
    let from: u64 = q
        .get("resourceVersion")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let bookmarks = q.get("allowWatchBookmarks").is_some_and(|b| b == "true");
    let timeout = q
        .get("timeoutSeconds")
        .and_then(|t| t.parse().ok())
        .map(Duration::from_secs)
        .unwrap_or(Duration::from_secs(1800));
    let (api_version, kind) = kind_of(&resource);
    let selected = move |c: &Change| {
        c.resource == resource
            && c.object["metadata"]["namespace"].as_str().unwrap_or("") == namespace
            && name
                .as_ref()
                .is_none_or(|n| c.object["metadata"]["name"] == *n)
    };
    let (tx, rx) = mpsc::channel::<Result<String, std::io::Error>>(1024);
    let (replay, mut live, mut last_rv) = {
        let inner = o.inner.lock().unwrap();
        let live = o.changes.subscribe();
        let replay: Vec<Change> = inner
            .history
            .iter()
            .filter(|c| c.rv > from)
            .cloned()
            .collect();
        (replay, live, from)
    };
    let mut drops = o.drop_watches.subscribe();
    tokio::spawn(async move {
        let line = |kind: &str, object: &Value| {
            Ok(format!("{}\n", json!({"type": kind, "object": object})))
        };
        for c in replay.into_iter().filter(|c| selected(c)) {
            last_rv = c.rv;
            if tx.send(line(c.kind, &c.object)).await.is_err() {
                return;
            }
        }
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let mut ticker = tokio::time::interval(Duration::from_millis(500));
        drops.borrow_and_update();
        loop {
            tokio::select! {
                change = live.recv() => match change {
                    Ok(c) if c.rv > last_rv => {
                        last_rv = c.rv;
                        if selected(&c) && tx.send(line(c.kind, &c.object)).await.is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(_) => return,
                },
                _ = ticker.tick(), if bookmarks => {
                    let bookmark = json!({"apiVersion": api_version, "kind": kind, "metadata": {"resourceVersion": last_rv.to_string()}});
                    if tx.send(line("BOOKMARK", &bookmark)).await.is_err() {
                        return;
                    }
                }
                _ = drops.changed() => {
                    let _ = tx.send(Err(std::io::Error::other("connection dropped"))).await;
                    return;
                }
                () = &mut deadline => return,
            }
        }
    });
    super::kube_api::chunked_lines(rx)
}
