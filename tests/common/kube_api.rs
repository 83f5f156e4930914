//! A Kubernetes API server for ConfigMaps, for tests. No real API server can run here, so this
//! implements the documented list/watch protocol ("API Concepts: efficient detection of changes",
//! "resource versions", "watch bookmarks", "retrieving large results sets in chunks") for
//! `GET /api/v1/configmaps`, plus `GET /version`:
//!
//! - list: `ConfigMapList` with `metadata.resourceVersion`; items without `apiVersion`/`kind` (as
//!   the real server sends typed lists); `limit`/`continue` paging, a continue token whose
//!   version was compacted answers `410 Gone` (reason Expired);
//! - watch (`watch=true`): a chunked stream of `{"type","object"}` lines for every change after
//!   the requested `resourceVersion`: ADDED, MODIFIED, DELETED, and BOOKMARK events carrying
//!   only `metadata.resourceVersion` when `allowWatchBookmarks=true`; a requested version older
//!   than the compaction point gets an ERROR event with a `410 Expired` Status; `timeoutSeconds`
//!   ends the stream cleanly;
//! - `fieldSelector` on `metadata.name` and `metadata.namespace`; other fields are refused (400);
//! - RBAC as granted by podgrace's ClusterRole (configmaps get/list/watch with `resourceNames`):
//!   a list or watch without `fieldSelector=metadata.name=<allowed name>` is `403 Forbidden`;
//! - fault injection: compaction (forces a relist), dropping every open watch mid-stream (the
//!   connection is aborted, not closed cleanly), holding lists back, and shutting down.
//!
//! And the `events.k8s.io/v1` Events podgrace writes: `POST .../namespaces/NS/events` and merge
//! `PATCH .../namespaces/NS/events/NAME`, validated as the API server validates a v1 Event
//! (required `eventTime`, `reportingController` (a qualified name), `reportingInstance`, `action`,
//! `reason`, their lengths, `note` at most 1 kB, `type` Normal or Warning, the deprecated fields
//! unset, `regarding.namespace` equal to the Event's, a DNS-subdomain name, the namespace in the
//! body equal to the one in the path): `422 Invalid` with the field causes, `409 AlreadyExists`
//! for a name taken, `404` for a patch of an unknown Event. RBAC for Events can be withdrawn
//! (`403 Forbidden`).
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::Path;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc, watch};

use super::kube_objects::Objects;

#[derive(Clone, Debug)]
struct Change {
    rv: u64,
    kind: &'static str,
    object: Value,
}

struct Inner {
    rv: u64,
    objects: BTreeMap<(String, String), Value>,
    history: Vec<Change>,
    compacted: u64,
    requests: Vec<String>,
    /// Events by (namespace, name), as stored.
    events: BTreeMap<(String, String), Value>,
    /// Whether podgrace may write Events (its ClusterRole's events.k8s.io rule).
    events_allowed: bool,
}

struct Shared {
    inner: Mutex<Inner>,
    workloads: Mutex<Workloads>,
    changes: broadcast::Sender<Change>,
    drop_watches: watch::Sender<u64>,
    hold_lists: watch::Sender<bool>,
    allowed_name: String,
    bookmark_every: Duration,
    version: Mutex<(String, String)>,
}

/// The fake API server.
pub struct FakeApi {
    /// Bound address (plain HTTP).
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    /// Secrets and webhook configurations (tests/common/kube_objects.rs).
    pub objects: Arc<Objects>,
    app: Router,
}

impl FakeApi {
    /// Starts a server that grants access to ConfigMaps named `allowed_name`.
    pub async fn start(allowed_name: &str) -> Self {
        Self::start_with(allowed_name, ("1", "36")).await
    }

    /// Starts a server reporting `version` (major, minor) on `/version`.
    pub async fn start_with(allowed_name: &str, version: (&str, &str)) -> Self {
        let (changes, _) = broadcast::channel(4096);
        let shared = Arc::new(Shared {
            workloads: Mutex::new(Workloads::default()),
            inner: Mutex::new(Inner {
                rv: 100,
                objects: BTreeMap::new(),
                history: Vec::new(),
                compacted: 0,
                requests: Vec::new(),
                events: BTreeMap::new(),
                events_allowed: true,
            }),
            changes,
            drop_watches: watch::channel(0).0,
            hold_lists: watch::channel(false).0,
            allowed_name: allowed_name.to_owned(),
            bookmark_every: Duration::from_millis(500),
            version: Mutex::new((version.0.to_owned(), version.1.to_owned())),
        });
        let objects = Objects::new();
        let app = Router::new()
            .merge(objects.routes())
            .route("/api/v1/configmaps", get(configmaps))
            .route("/version", get(version_info))
            .merge(workload_routes())
            .route(
                "/apis/events.k8s.io/v1/namespaces/{namespace}/events",
                post(create_event),
            )
            .route(
                "/apis/events.k8s.io/v1/namespaces/{namespace}/events/{name}",
                patch(patch_event),
            )
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let tx = serve(listener, app.clone());
        FakeApi {
            addr,
            shared,
            shutdown: Some(tx),
            objects,
            app,
        }
    }

    /// Serves again on the same address after [`FakeApi::stop`]: an API server back up.
    pub async fn restart(&mut self) {
        let listener = tokio::net::TcpListener::bind(self.addr).await.unwrap();
        self.objects.set_down(false);
        self.shutdown = Some(serve(listener, self.app.clone()));
    }

    /// Reports `version` (major, minor) on `/version` from now on: an upgraded cluster.
    pub fn set_version(&self, major: &str, minor: &str) {
        *self.shared.version.lock().unwrap() = (major.to_owned(), minor.to_owned());
    }

    /// A kubeconfig reaching this server as podgrace's service account would (a bearer token, which
    /// this server does not check), with `namespace` as the context's namespace when given.
    pub fn kubeconfig(&self, namespace: Option<&str>) -> String {
        let namespace = namespace.map_or(String::new(), |ns| format!(", namespace: {ns}"));
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster: {{server: \"http://{}\"}}\nusers:\n- name: podgrace\n  user: {{token: test}}\ncontexts:\n- name: fake\n  context: {{cluster: fake, user: podgrace{namespace}}}\ncurrent-context: fake\n",
            self.addr
        )
    }

    /// A kube client for this server.
    pub fn client(&self) -> kube::Client {
        let config = kube::Config::new(format!("http://{}", self.addr).parse().unwrap());
        kube::Client::try_from(config).unwrap()
    }

    /// Creates or replaces ConfigMap `namespace/name` with `data`; returns its resourceVersion.
    pub fn put(&self, namespace: &str, name: &str, data: &[(&str, &str)]) -> u64 {
        let mut inner = self.shared.inner.lock().unwrap();
        inner.rv += 1;
        let rv = inner.rv;
        let key = (namespace.to_owned(), name.to_owned());
        let kind = if inner.objects.contains_key(&key) {
            "MODIFIED"
        } else {
            "ADDED"
        };
        let data: BTreeMap<&str, &str> = data.iter().copied().collect();
        let object = json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": namespace, "resourceVersion": rv.to_string(), "uid": format!("uid-{namespace}-{name}")},
            "data": data,
        });
        inner.objects.insert(key, object.clone());
        self.record(&mut inner, Change { rv, kind, object });
        rv
    }

    /// Deletes ConfigMap `namespace/name`.
    pub fn delete(&self, namespace: &str, name: &str) {
        let mut inner = self.shared.inner.lock().unwrap();
        let Some(mut object) = inner
            .objects
            .remove(&(namespace.to_owned(), name.to_owned()))
        else {
            return;
        };
        inner.rv += 1;
        let rv = inner.rv;
        object["metadata"]["resourceVersion"] = json!(rv.to_string());
        self.record(
            &mut inner,
            Change {
                rv,
                kind: "DELETED",
                object,
            },
        );
    }

    /// Deletes without telling open watches (as if it happened while they were disconnected and
    /// the history was compacted away).
    pub fn delete_silently(&self, namespace: &str, name: &str) {
        let mut inner = self.shared.inner.lock().unwrap();
        inner
            .objects
            .remove(&(namespace.to_owned(), name.to_owned()));
        inner.rv += 1;
    }

    /// Forgets the history: watches from older versions get `410 Gone`, open ones are ended
    /// with a 410 ERROR event.
    pub fn compact(&self) {
        let mut inner = self.shared.inner.lock().unwrap();
        inner.compacted = inner.rv;
        inner.history.clear();
        drop(inner);
        self.shared.drop_watches.send_modify(|v| *v += 1_000_000);
    }

    /// Aborts every open watch connection mid-stream.
    pub fn drop_watches(&self) {
        self.shared.drop_watches.send_modify(|v| *v += 1);
    }

    /// Holds list requests (ConfigMaps and the workload kinds) until released (to observe
    /// readiness before the first sync, or a slow audit).
    pub fn hold_lists(&self, hold: bool) {
        self.shared.hold_lists.send_replace(hold);
    }

    /// Every request line received, in order.
    pub fn requests(&self) -> Vec<String> {
        self.shared.inner.lock().unwrap().requests.clone()
    }

    /// Stops the server (connections are refused afterwards).
    pub fn stop(&mut self) {
        self.drop_watches();
        self.objects.set_down(true);
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }

    /// Every Event stored, in (namespace, name) order.
    pub fn events(&self) -> Vec<Value> {
        self.shared
            .inner
            .lock()
            .unwrap()
            .events
            .values()
            .cloned()
            .collect()
    }

    /// Grants or withdraws podgrace's right to write Events.
    pub fn allow_events(&self, allowed: bool) {
        self.shared.inner.lock().unwrap().events_allowed = allowed;
    }

    fn record(&self, inner: &mut Inner, change: Change) {
        inner.history.push(change.clone());
        let _ = self.shared.changes.send(change);
    }
}

/// Serves `app` on `listener` until the returned sender fires (or is dropped).
fn serve(listener: tokio::net::TcpListener, app: Router) -> tokio::sync::oneshot::Sender<()> {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await
            .unwrap();
    });
    tx
}

async fn version_info(State(shared): State<Arc<Shared>>) -> Response {
    let (major, minor) = shared.version.lock().unwrap().clone();
    axum::Json(json!({
        "major": major, "minor": minor, "gitVersion": format!("v{major}.{minor}.2"),
        "gitCommit": "0", "gitTreeState": "clean", "buildDate": "2026-11-01T00:00:00Z",
        "goVersion": "go1.25", "compiler": "gc", "platform": "linux/amd64",
    }))
    .into_response()
}

fn status(code: u16, reason: &str, message: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message, "reason": reason, "code": code})
}

fn error(code: u16, reason: &str, message: &str) -> Response {
    (
        StatusCode::from_u16(code).unwrap(),
        axum::Json(status(code, reason, message)),
    )
        .into_response()
}

/// `name=x,namespace=y` from a field selector, or why it is refused.
fn selector(raw: Option<&String>) -> Result<HashMap<String, String>, String> {
    let mut out = HashMap::new();
    for term in raw
        .map(String::as_str)
        .unwrap_or("")
        .split(',')
        .filter(|t| !t.is_empty())
    {
        let (field, value) = term
            .split_once("==")
            .or_else(|| term.split_once('='))
            .ok_or_else(|| format!("invalid selector term {term:?}"))?;
        match field {
            "metadata.name" | "metadata.namespace" => {
                out.insert(field.to_owned(), value.to_owned());
            }
            other => {
                return Err(format!(
                    "\"{other}\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\""
                ));
            }
        }
    }
    Ok(out)
}

fn selected(object: &Value, sel: &HashMap<String, String>) -> bool {
    sel.iter().all(|(field, value)| {
        let actual = match field.as_str() {
            "metadata.name" => &object["metadata"]["name"],
            _ => &object["metadata"]["namespace"],
        };
        actual.as_str() == Some(value)
    })
}

async fn configmaps(State(shared): State<Arc<Shared>>, uri: axum::http::Uri) -> Response {
    let q: HashMap<String, String> = form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .into_owned()
        .collect();
    shared
        .inner
        .lock()
        .unwrap()
        .requests
        .push(format!("GET {uri}"));
    let sel = match selector(q.get("fieldSelector")) {
        Ok(sel) => sel,
        Err(why) => return error(400, "BadRequest", &why),
    };
    let verb = if q.get("watch").is_some_and(|w| w == "true" || w == "1") {
        "watch"
    } else {
        "list"
    };
    if sel.get("metadata.name") != Some(&shared.allowed_name) {
        return error(
            403,
            "Forbidden",
            &format!(
                "configmaps is forbidden: User \"system:serviceaccount:podgrace-system:podgrace\" cannot {verb} resource \"configmaps\" in API group \"\" at the cluster scope"
            ),
        );
    }
    if verb == "watch" {
        watch_response(shared, q, sel)
    } else {
        list_response(shared, q, sel).await
    }
}

async fn list_response(
    shared: Arc<Shared>,
    q: HashMap<String, String>,
    sel: HashMap<String, String>,
) -> Response {
    wait_while_held(&shared).await;
    let inner = shared.inner.lock().unwrap();
    let (list_rv, offset) = match q.get("continue") {
        Some(token) => {
            let (rv, offset) = token
                .split_once(':')
                .and_then(|(a, b)| Some((a.parse::<u64>().ok()?, b.parse::<usize>().ok()?)))
                .unwrap_or((0, 0));
            if rv < inner.compacted {
                return error(
                    410,
                    "Expired",
                    "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.",
                );
            }
            (rv, offset)
        }
        None => (inner.rv, 0),
    };
    let all: Vec<Value> = inner
        .objects
        .values()
        .filter(|o| selected(o, &sel))
        .map(|o| {
            let mut item = o.clone();
            let map = item.as_object_mut().unwrap();
            map.remove("apiVersion");
            map.remove("kind");
            item
        })
        .collect();
    let limit = q
        .get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .filter(|l| *l > 0)
        .unwrap_or(usize::MAX);
    let page: Vec<Value> = all.iter().skip(offset).take(limit).cloned().collect();
    let next = offset + page.len();
    let mut metadata = json!({"resourceVersion": list_rv.to_string()});
    if next < all.len() {
        metadata["continue"] = json!(format!("{list_rv}:{next}"));
        metadata["remainingItemCount"] = json!(all.len() - next);
    }
    axum::Json(
        json!({"apiVersion": "v1", "kind": "ConfigMapList", "metadata": metadata, "items": page}),
    )
    .into_response()
}

fn watch_response(
    shared: Arc<Shared>,
    q: HashMap<String, String>,
    sel: HashMap<String, String>,
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
    let (tx, rx) = mpsc::channel::<Result<String, std::io::Error>>(1024);
    let (replay, mut live, expired, mut last_rv) = {
        let inner = shared.inner.lock().unwrap();
        let live = shared.changes.subscribe();
        let expired = from != 0 && from < inner.compacted;
        let replay: Vec<Change> = inner
            .history
            .iter()
            .filter(|c| c.rv > from)
            .cloned()
            .collect();
        (replay, live, expired, from.max(inner.compacted))
    };
    let mut drops = shared.drop_watches.subscribe();
    let every = shared.bookmark_every;
    tokio::spawn(async move {
        let line = |kind: &str, object: &Value| {
            Ok(format!("{}\n", json!({"type": kind, "object": object})))
        };
        if expired {
            let _ = tx
                .send(line(
                    "ERROR",
                    &status(
                        410,
                        "Expired",
                        &format!("too old resource version: {from} ({last_rv})"),
                    ),
                ))
                .await;
            return;
        }
        for c in replay.into_iter().filter(|c| selected(&c.object, &sel)) {
            last_rv = c.rv;
            if tx.send(line(c.kind, &c.object)).await.is_err() {
                return;
            }
        }
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let mut ticker = tokio::time::interval(every);
        let start = *drops.borrow_and_update();
        loop {
            tokio::select! {
                change = live.recv() => match change {
                    Ok(c) if c.rv > last_rv => {
                        last_rv = c.rv;
                        if selected(&c.object, &sel) && tx.send(line(c.kind, &c.object)).await.is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(_) => return,
                },
                _ = ticker.tick(), if bookmarks => {
                    let bookmark = json!({"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"resourceVersion": last_rv.to_string()}});
                    if tx.send(line("BOOKMARK", &bookmark)).await.is_err() {
                        return;
                    }
                }
                _ = drops.changed() => {
                    let now = *drops.borrow_and_update();
                    if now - start >= 1_000_000 {
                        let _ = tx.send(line("ERROR", &status(410, "Expired", "too old resource version"))).await;
                    } else {
                        let _ = tx.send(Err(std::io::Error::other("connection dropped"))).await;
                    }
                    return;
                }
                () = &mut deadline => return,
            }
        }
    });
    chunked_lines(rx)
}

/// A `422 Invalid` Status with one cause per field error, as the API server answers.
fn invalid(kind: &str, name: &str, causes: &[(String, String)]) -> Response {
    let details: Vec<String> = causes.iter().map(|(f, m)| format!("{f}: {m}")).collect();
    let mut body = status(
        422,
        "Invalid",
        &format!(
            "{kind}.events.k8s.io \"{name}\" is invalid: [{}]",
            details.join(", ")
        ),
    );
    body["details"] = json!({
        "name": name, "group": "events.k8s.io", "kind": kind,
        "causes": causes.iter().map(|(f, m)| json!({"reason": "FieldValueInvalid", "message": m, "field": f})).collect::<Vec<_>>(),
    });
    (StatusCode::UNPROCESSABLE_ENTITY, axum::Json(body)).into_response()
}

fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// A Kubernetes qualified name: an optional DNS-subdomain prefix and `/`, then at most 63
/// alphanumerics, `-`, `_` or `.`, starting and ending with an alphanumeric.
fn is_qualified_name(s: &str) -> bool {
    let (prefix, name) = match s.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, s),
    };
    prefix.is_none_or(is_dns_subdomain)
        && !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name.as_bytes()[name.len() - 1].is_ascii_alphanumeric()
}

/// The field errors of an `events.k8s.io/v1` Event (ValidateEventCreate for the v1 group).
fn event_errors(event: &Value, namespace: &str) -> Vec<(String, String)> {
    let mut errors = Vec::new();
    let mut err = |field: &str, message: &str| errors.push((field.to_owned(), message.to_owned()));
    let text = |field: &str| event[field].as_str().unwrap_or("");
    let name = event["metadata"]["name"].as_str().unwrap_or("");
    if !is_dns_subdomain(name) {
        err(
            "metadata.name",
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.'",
        );
    }
    // A MicroTime: RFC 3339 with microseconds.
    let time = text("eventTime");
    if time.len() < 20 || time.as_bytes()[10] != b'T' {
        err("eventTime", "Required value");
    }
    if !matches!(text("type"), "Normal" | "Warning") {
        err("type", &format!("has invalid value: {}", text("type")));
    }
    for deprecated in [
        "deprecatedFirstTimestamp",
        "deprecatedLastTimestamp",
        "deprecatedCount",
        "deprecatedSource",
    ] {
        if !event[deprecated].is_null() {
            err(deprecated, "needs to be unset");
        }
    }
    let regarding_ns = event["regarding"]["namespace"].as_str().unwrap_or("");
    if regarding_ns.is_empty() && namespace != "default" && namespace != "kube-system"
        || !regarding_ns.is_empty() && regarding_ns != namespace
    {
        err("regarding.namespace", "does not match event.namespace");
    }
    let controller = text("reportingController");
    if controller.is_empty() {
        err("reportingController", "Required value");
    } else if !is_qualified_name(controller) {
        err("reportingController", "must be a qualified name");
    }
    for (field, limit) in [("reportingInstance", 128), ("action", 128), ("reason", 128)] {
        let value = text(field);
        if value.is_empty() {
            err(field, "Required value");
        } else if value.len() > limit {
            err(field, &format!("can have at most {limit} characters"));
        }
    }
    if text("note").len() > 1024 {
        err("note", "can have at most 1024 characters");
    }
    if let Some(series) = event.get("series").filter(|s| !s.is_null())
        && series["count"].as_i64().unwrap_or(0) < 2
    {
        err("series.count", "should be at least 2");
    }
    errors
}

fn forbidden_event(verb: &str, namespace: &str) -> Response {
    error(
        403,
        "Forbidden",
        &format!(
            "events.events.k8s.io is forbidden: User \"system:serviceaccount:podgrace-system:podgrace\" cannot {verb} resource \"events\" in API group \"events.k8s.io\" in the namespace \"{namespace}\""
        ),
    )
}

async fn create_event(
    State(shared): State<Arc<Shared>>,
    Path(namespace): Path<String>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let mut inner = shared.inner.lock().unwrap();
    inner.requests.push(format!(
        "POST /apis/events.k8s.io/v1/namespaces/{namespace}/events"
    ));
    if !inner.events_allowed {
        return forbidden_event("create", &namespace);
    }
    if !headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
    {
        return error(
            415,
            "UnsupportedMediaType",
            "the body of the request was in an unknown format",
        );
    }
    let mut event: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return error(
                400,
                "BadRequest",
                &format!("the object provided is unrecognized: {e}"),
            );
        }
    };
    if event["apiVersion"] != "events.k8s.io/v1" || event["kind"] != "Event" {
        return error(
            400,
            "BadRequest",
            "the API version in the data does not match the expected API version events.k8s.io/v1, kind Event",
        );
    }
    match event["metadata"]["namespace"].as_str() {
        None => event["metadata"]["namespace"] = json!(namespace),
        Some(ns) if ns != namespace => {
            return error(
                400,
                "BadRequest",
                "the namespace of the provided object does not match the namespace sent on the request",
            );
        }
        Some(_) => {}
    }
    let name = event["metadata"]["name"].as_str().unwrap_or("").to_owned();
    let errors = event_errors(&event, &namespace);
    if !errors.is_empty() {
        return invalid("Event", &name, &errors);
    }
    let key = (namespace.clone(), name.clone());
    if inner.events.contains_key(&key) {
        return error(
            409,
            "AlreadyExists",
            &format!("events.events.k8s.io \"{name}\" already exists"),
        );
    }
    inner.rv += 1;
    event["metadata"]["resourceVersion"] = json!(inner.rv.to_string());
    event["metadata"]["uid"] = json!(format!("event-uid-{}", inner.rv));
    inner.events.insert(key, event.clone());
    (StatusCode::CREATED, axum::Json(event)).into_response()
}

/// RFC 7386 merge patch.
fn merge(target: &mut Value, patch: &Value) {
    match (target.as_object_mut(), patch.as_object()) {
        (Some(t), Some(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        _ => *target = patch.clone(),
    }
}

async fn patch_event(
    State(shared): State<Arc<Shared>>,
    Path((namespace, name)): Path<(String, String)>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let mut inner = shared.inner.lock().unwrap();
    inner.requests.push(format!(
        "PATCH /apis/events.k8s.io/v1/namespaces/{namespace}/events/{name}"
    ));
    if !inner.events_allowed {
        return forbidden_event("patch", &namespace);
    }
    if headers.get("content-type").and_then(|v| v.to_str().ok())
        != Some("application/merge-patch+json")
    {
        return error(
            415,
            "UnsupportedMediaType",
            "the body of the request was in an unknown format",
        );
    }
    let Ok(patch) = serde_json::from_slice::<Value>(&body) else {
        return error(400, "BadRequest", "invalid merge patch");
    };
    let key = (namespace.clone(), name.clone());
    let Some(mut event) = inner.events.get(&key).cloned() else {
        return error(
            404,
            "NotFound",
            &format!("events.events.k8s.io \"{name}\" not found"),
        );
    };
    let before = event.clone();
    merge(&mut event, &patch);
    let mut errors = event_errors(&event, &namespace);
    for immutable in [
        "regarding",
        "reason",
        "note",
        "type",
        "action",
        "eventTime",
        "reportingController",
        "reportingInstance",
    ] {
        if event[immutable] != before[immutable] {
            errors.push((immutable.to_owned(), "field is immutable".to_owned()));
        }
    }
    if !errors.is_empty() {
        return invalid("Event", &name, &errors);
    }
    inner.rv += 1;
    event["metadata"]["resourceVersion"] = json!(inner.rv.to_string());
    inner.events.insert(key, event.clone());
    axum::Json(event).into_response()
}

// ---- Workloads and namespaces (for `podgrace audit`) ----------------------------------------
//
// `GET` lists of Deployments, StatefulSets, DaemonSets, ReplicaSets (`/apis/apps/v1`), CronJobs
// (`/apis/batch/v1`), Pods and Namespaces (`/api/v1`), per namespace and cluster-wide; one
// Namespace by name; namespaced ConfigMap lists (from the ConfigMaps above, `fieldSelector` on
// `metadata.name`) and one ConfigMap by name. Lists page with `limit`/`continue` as above, items
// without `apiVersion`/`kind`. RBAC per namespace: every namespaced request in a namespace
// marked forbidden, and a get of that Namespace, is `403 Forbidden` with the API server's
// message; per resource: the lists of one resource in one namespace, or cluster-wide, likewise
// (a Role granting the other resources); other cluster-wide lists are allowed.

/// Workload objects by (resource, namespace, name); `namespaces` uses an empty namespace.
#[derive(Default)]
struct Workloads {
    objects: BTreeMap<(String, String, String), Value>,
    forbidden: std::collections::HashSet<String>,
    /// (namespace, resource) whose lists are forbidden; an empty namespace for the cluster-wide
    /// list.
    forbidden_lists: std::collections::HashSet<(String, String)>,
}

impl Workloads {
    /// The 403 for a list of `resource` in `namespace` (`None`: cluster-wide), if forbidden.
    fn refuse_list(
        &self,
        group: &str,
        resource: &str,
        namespace: Option<&str>,
    ) -> Option<Response> {
        let ns = namespace.unwrap_or("");
        if !self.forbidden.contains(ns)
            && !self
                .forbidden_lists
                .contains(&(ns.to_owned(), resource.to_owned()))
        {
            return None;
        }
        let qualified = if group.is_empty() {
            resource.to_owned()
        } else {
            format!("{resource}.{group}")
        };
        let scope = match namespace {
            Some(ns) => format!("in the namespace \"{ns}\""),
            None => "at the cluster scope".to_owned(),
        };
        Some(error(
            403,
            "Forbidden",
            &format!(
                "{qualified} is forbidden: User \"alice\" cannot list resource \"{resource}\" in API group \"{group}\" {scope}"
            ),
        ))
    }
}

fn workload_routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/api/v1/namespaces", get(core_cluster_list))
        .route("/api/v1/namespaces/{ns}", get(namespace_get))
        .route(
            "/api/v1/namespaces/{ns}/{resource}",
            get(core_namespaced_list),
        )
        .route(
            "/api/v1/namespaces/{ns}/configmaps/{name}",
            get(configmap_get),
        )
        .route("/api/v1/pods", get(core_cluster_list))
        .route(
            "/apis/{group}/{version}/{resource}",
            get(group_cluster_list),
        )
        .route(
            "/apis/{group}/{version}/namespaces/{ns}/{resource}",
            get(group_namespaced_list),
        )
}

/// The plural resource name of a kind, as the API server spells it.
fn plural(kind: &str) -> String {
    format!("{}s", kind.to_ascii_lowercase())
}

impl FakeApi {
    /// Creates or replaces a workload, Pod or Namespace (by its `kind`, `metadata.namespace`
    /// and `metadata.name`).
    pub fn put_object(&self, mut object: Value) {
        let kind = object["kind"].as_str().unwrap().to_owned();
        let namespace = object["metadata"]["namespace"]
            .as_str()
            .unwrap_or("")
            .to_owned();
        let name = object["metadata"]["name"].as_str().unwrap().to_owned();
        let rv = {
            let mut inner = self.shared.inner.lock().unwrap();
            inner.rv += 1;
            inner.rv
        };
        object["metadata"]["resourceVersion"] = json!(rv.to_string());
        object["metadata"]["uid"] = json!(format!("uid-{kind}-{namespace}-{name}"));
        self.shared
            .workloads
            .lock()
            .unwrap()
            .objects
            .insert((plural(&kind), namespace, name), object);
    }

    /// Lists of `resource` (`deployments`, `pods`, `configmaps`, …) in `namespace`, or
    /// cluster-wide when `None`, are answered 403 from now on.
    pub fn forbid_list(&self, namespace: Option<&str>, resource: &str) {
        self.shared
            .workloads
            .lock()
            .unwrap()
            .forbidden_lists
            .insert((namespace.unwrap_or("").to_owned(), resource.to_owned()));
    }

    /// Every namespaced request in `namespace` (and a get of it) is answered 403 from now on.
    pub fn forbid_namespace(&self, namespace: &str) {
        self.shared
            .workloads
            .lock()
            .unwrap()
            .forbidden
            .insert(namespace.to_owned());
    }
}

fn log_request(shared: &Shared, uri: &axum::http::Uri) -> HashMap<String, String> {
    shared
        .inner
        .lock()
        .unwrap()
        .requests
        .push(format!("GET {uri}"));
    form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

fn forbidden(resource: &str, namespace: &str, verb: &str) -> Response {
    error(
        403,
        "Forbidden",
        &format!(
            "{resource} is forbidden: User \"alice\" cannot {verb} resource \"{resource}\" in API group \"\" in the namespace \"{namespace}\""
        ),
    )
}

/// One page of `all`, as the list protocol pages it (only the page's objects copied: a list of
/// thousands is read in many pages).
fn page(kind: &str, rv: u64, all: Vec<&Value>, q: &HashMap<String, String>) -> Response {
    let offset = q
        .get("continue")
        .and_then(|t| t.split_once(':'))
        .and_then(|(_, o)| o.parse::<usize>().ok())
        .unwrap_or(0);
    let limit = q
        .get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .filter(|l| *l > 0)
        .unwrap_or(usize::MAX);
    let items: Vec<Value> = all
        .iter()
        .skip(offset)
        .take(limit)
        .map(|o| {
            let mut o = (*o).clone();
            let map = o.as_object_mut().unwrap();
            map.remove("apiVersion");
            map.remove("kind");
            o
        })
        .collect();
    let next = offset + items.len();
    let mut metadata = json!({"resourceVersion": rv.to_string()});
    if next < all.len() {
        metadata["continue"] = json!(format!("{rv}:{next}"));
        metadata["remainingItemCount"] = json!(all.len() - next);
    }
    axum::Json(json!({"apiVersion": "v1", "kind": kind, "metadata": metadata, "items": items}))
        .into_response()
}

/// Waits while lists are held ([`FakeApi::hold_lists`]).
async fn wait_while_held(shared: &Shared) {
    let mut hold = shared.hold_lists.subscribe();
    while *hold.borrow_and_update() {
        if hold.changed().await.is_err() {
            break;
        }
    }
}

fn workload_list(
    shared: &Shared,
    resource: &str,
    namespace: Option<&str>,
    q: &HashMap<String, String>,
) -> Response {
    let rv = shared.inner.lock().unwrap().rv;
    if resource == "configmaps" {
        let sel = match selector(q.get("fieldSelector")) {
            Ok(sel) => sel,
            Err(why) => return error(400, "BadRequest", &why),
        };
        let inner = shared.inner.lock().unwrap();
        let all = inner
            .objects
            .values()
            .filter(|o| namespace.is_none_or(|ns| o["metadata"]["namespace"] == ns))
            .filter(|o| selected(o, &sel))
            .collect();
        return page("ConfigMapList", rv, all, q);
    }
    let w = shared.workloads.lock().unwrap();
    let all = w
        .objects
        .iter()
        .filter(|((r, ns, _), _)| r == resource && namespace.is_none_or(|n| n == ns))
        .map(|(_, o)| o)
        .collect();
    page("List", rv, all, q)
}

async fn core_cluster_list(State(shared): State<Arc<Shared>>, uri: axum::http::Uri) -> Response {
    let q = log_request(&shared, &uri);
    let resource = uri.path().rsplit('/').next().unwrap_or_default().to_owned();
    if let Some(refused) = shared
        .workloads
        .lock()
        .unwrap()
        .refuse_list("", &resource, None)
    {
        return refused;
    }
    wait_while_held(&shared).await;
    workload_list(&shared, &resource, None, &q)
}

async fn core_namespaced_list(
    State(shared): State<Arc<Shared>>,
    axum::extract::Path((ns, resource)): axum::extract::Path<(String, String)>,
    uri: axum::http::Uri,
) -> Response {
    let q = log_request(&shared, &uri);
    if let Some(refused) = shared
        .workloads
        .lock()
        .unwrap()
        .refuse_list("", &resource, Some(&ns))
    {
        return refused;
    }
    wait_while_held(&shared).await;
    workload_list(&shared, &resource, Some(&ns), &q)
}

async fn group_cluster_list(
    State(shared): State<Arc<Shared>>,
    axum::extract::Path((group, _version, resource)): axum::extract::Path<(String, String, String)>,
    uri: axum::http::Uri,
) -> Response {
    let q = log_request(&shared, &uri);
    if let Some(refused) = shared
        .workloads
        .lock()
        .unwrap()
        .refuse_list(&group, &resource, None)
    {
        return refused;
    }
    wait_while_held(&shared).await;
    workload_list(&shared, &resource, None, &q)
}

async fn group_namespaced_list(
    State(shared): State<Arc<Shared>>,
    axum::extract::Path((group, _version, ns, resource)): axum::extract::Path<(
        String,
        String,
        String,
        String,
    )>,
    uri: axum::http::Uri,
) -> Response {
    let q = log_request(&shared, &uri);
    if let Some(refused) =
        shared
            .workloads
            .lock()
            .unwrap()
            .refuse_list(&group, &resource, Some(&ns))
    {
        return refused;
    }
    wait_while_held(&shared).await;
    workload_list(&shared, &resource, Some(&ns), &q)
}

async fn namespace_get(
    State(shared): State<Arc<Shared>>,
    axum::extract::Path(ns): axum::extract::Path<String>,
    uri: axum::http::Uri,
) -> Response {
    log_request(&shared, &uri);
    let w = shared.workloads.lock().unwrap();
    if w.forbidden.contains(&ns) {
        return forbidden("namespaces", &ns, "get");
    }
    match w
        .objects
        .get(&("namespaces".to_owned(), String::new(), ns.clone()))
    {
        Some(o) => axum::Json(o.clone()).into_response(),
        None => error(404, "NotFound", &format!("namespaces \"{ns}\" not found")),
    }
}

async fn configmap_get(
    State(shared): State<Arc<Shared>>,
    axum::extract::Path((ns, name)): axum::extract::Path<(String, String)>,
    uri: axum::http::Uri,
) -> Response {
    log_request(&shared, &uri);
    if shared.workloads.lock().unwrap().forbidden.contains(&ns) {
        return forbidden("configmaps", &ns, "get");
    }
    match shared
        .inner
        .lock()
        .unwrap()
        .objects
        .get(&(ns.clone(), name.clone()))
    {
        Some(o) => axum::Json(o.clone()).into_response(),
        None => error(404, "NotFound", &format!("configmaps \"{name}\" not found")),
    }
}

/// A watch's chunked answer: each line the sender yields, until it closes or fails.
pub fn chunked_lines(rx: mpsc::Receiver<Result<String, std::io::Error>>) -> Response {
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    Response::builder()
        .header("content-type", "application/json")
        .body(Body::from_stream(stream))
        .unwrap()
}
