//! A Nacos server for tests. No real Nacos can run here (it is a Java service), so this speaks
//! the documented HTTP protocol of the three API generations faithfully, from the Nacos sources
//! and docs (see src/protocols/nacos.rs and docs/NACOS.md), including their failure modes:
//!
//! - login `POST /nacos/v1/auth/login` (alias `/nacos/v1/auth/users/login`; 1.x-3.x) and
//!   `POST /nacos/v3/auth/user/login` (3.x): form or query `username`/`password`; `200` with
//!   `{"accessToken","tokenTtl","globalAdmin","username"}`, or `403` with a plain-text body;
//! - `PUT /nacos/v1/ns/instance`: parameters read from the query string only (servlet
//!   `getParameter` does not parse PUT bodies), `200 ok`; missing parameters give `400` text;
//! - `PUT /nacos/v2/ns/instance` (2.2+) and `PUT /nacos/v3/admin/ns/instance` (3.x): query or
//!   form body; `{"code":0,"message":"success","data":"ok"}`; errors are `{"code":N,...}` with the
//!   HTTP status (400/10000 missing parameter, 400/21004 unknown service);
//! - with auth enabled, updates need a token: `accessToken` query/form parameter (all versions),
//!   `accessToken` header or `Authorization: Bearer` (2.x+), else `403`;
//! - Nacos 3.0/3.1 answer `410 Gone` on v1/v2 instance APIs unless API compatibility is on;
//!   3.2 ships without them (`404`);
//! - fault injection: a server that accepts and never answers, and fixed error statuses.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// Which server is simulated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Generation {
    /// Nacos 1.4: v1 only.
    V1x,
    /// Nacos 2.3: v1 and v2.
    V2x,
    /// Nacos 3.0/3.1 with API compatibility off: v1/v2 instance APIs answer 410.
    V3x,
    /// Nacos 3.2 without the legacy adapter: v1/v2 instance APIs are gone (404).
    V32,
}

/// Fault injection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Behave normally.
    None,
    /// Accept connections, read the request, never answer.
    Hang,
    /// Answer every request with this status and a short text body.
    Status(u16),
}

/// One request as received.
#[derive(Clone, Debug)]
pub struct Recorded {
    /// HTTP method.
    pub method: String,
    /// Path without the query.
    pub path: String,
    /// Decoded query parameters.
    pub query: BTreeMap<String, String>,
    /// Decoded form body parameters.
    pub form: BTreeMap<String, String>,
    /// Lower-cased header names and values.
    pub headers: BTreeMap<String, String>,
}

impl Recorded {
    /// A parameter from the query or (for v2/v3) the form.
    pub fn param(&self, k: &str) -> Option<&str> {
        self.query
            .get(k)
            .or_else(|| self.form.get(k))
            .map(String::as_str)
    }
}

/// Server state.
#[derive(Debug, Default)]
pub struct State {
    /// Every request, in order.
    pub requests: Vec<Recorded>,
    /// Instances marked disabled: `namespace/group@@service#ip#port`.
    pub disabled: Vec<String>,
}

/// A running fake Nacos.
pub struct FakeNacos {
    /// Bound address.
    pub addr: SocketAddr,
    /// Recorded state.
    pub state: Arc<Mutex<State>>,
}

const TOKEN: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJuYWNvcyJ9.c2lnbmF0dXJl";

impl FakeNacos {
    /// Starts a server; `credentials` turns on auth; `services` are `group@@service` names that
    /// exist (2.x+ refuse updates of unknown services).
    pub fn start(
        generation: Generation,
        credentials: Option<(&str, &str)>,
        services: &[&str],
        fault: Fault,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        let creds = credentials.map(|(u, p)| (u.to_owned(), p.to_owned()));
        let services: HashSet<String> = services.iter().map(|s| s.to_string()).collect();
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let shared = shared.clone();
                let creds = creds.clone();
                let services = services.clone();
                thread::spawn(move || serve(stream, generation, creds, services, fault, shared));
            }
        });
        FakeNacos { addr, state }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The recorded requests.
    pub fn requests(&self) -> Vec<Recorded> {
        self.state.lock().unwrap().requests.clone()
    }

    /// Instances disabled so far.
    pub fn disabled(&self) -> Vec<String> {
        self.state.lock().unwrap().disabled.clone()
    }

    /// The token the server hands out.
    pub fn token() -> &'static str {
        TOKEN
    }
}

fn serve(
    stream: TcpStream,
    generation: Generation,
    creds: Option<(String, String)>,
    services: HashSet<String>,
    fault: Fault,
    state: Arc<Mutex<State>>,
) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_owned();
    let target = parts.next().unwrap_or_default().to_owned();
    let mut headers = BTreeMap::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
        }
    }
    let len: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    let _ = reader.read_exact(&mut body);
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let decode =
        |s: &[u8]| -> BTreeMap<String, String> { form_urlencoded::parse(s).into_owned().collect() };
    let form = if headers
        .get("content-type")
        .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"))
    {
        decode(&body)
    } else {
        BTreeMap::new()
    };
    let rec = Recorded {
        method: method.clone(),
        path: path.to_owned(),
        query: decode(query.as_bytes()),
        form,
        headers,
    };
    state.lock().unwrap().requests.push(rec.clone());

    let (status, content_type, body) = match fault {
        Fault::Hang => {
            thread::sleep(Duration::from_secs(600));
            return;
        }
        Fault::Status(s) => (s, "text/plain", format!("injected failure {s}")),
        Fault::None => respond(&rec, generation, creds.as_ref(), &services, &state),
    };
    let mut stream = stream;
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        410 => "Gone",
        _ => "Error",
    };
    let _ = write!(
        stream,
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

fn respond(
    rec: &Recorded,
    generation: Generation,
    creds: Option<&(String, String)>,
    services: &HashSet<String>,
    state: &Mutex<State>,
) -> (u16, &'static str, String) {
    let json = "application/json";
    let text = "text/plain";
    let any_param = |k: &str| rec.query.get(k).or_else(|| rec.form.get(k)).cloned();
    match (rec.method.as_str(), rec.path.as_str()) {
        ("POST", "/nacos/v1/auth/login" | "/nacos/v1/auth/users/login")
        | ("POST", "/nacos/v3/auth/user/login") => {
            if rec.path.starts_with("/nacos/v3")
                && matches!(generation, Generation::V1x | Generation::V2x)
            {
                return (404, json, r#"{"status":404,"error":"Not Found"}"#.into());
            }
            let ok = match creds {
                Some((u, p)) => {
                    any_param("username").as_ref() == Some(u)
                        && any_param("password").as_ref() == Some(p)
                }
                None => true,
            };
            if ok {
                (
                    200,
                    json,
                    format!(
                        r#"{{"accessToken":"{TOKEN}","tokenTtl":18000,"globalAdmin":false,"username":"nacos"}}"#
                    ),
                )
            } else {
                (403, text, "unknown user!".into())
            }
        }
        (
            "PUT",
            "/nacos/v1/ns/instance" | "/nacos/v2/ns/instance" | "/nacos/v3/admin/ns/instance",
        ) => {
            let api = if rec.path.contains("/v1/") {
                1
            } else if rec.path.contains("/v2/") {
                2
            } else {
                3
            };
            let available = match generation {
                Generation::V1x => api == 1,
                Generation::V2x => api <= 2,
                Generation::V3x | Generation::V32 => api == 3,
            };
            if !available {
                return match (generation, api) {
                    (Generation::V3x, 1 | 2) => (
                        410,
                        json,
                        r#"{"code":410,"message":"Current API will be deprecated, please use API(s) `PUT ${contextPath:nacos}/v3/admin/ns/instance` instead, or set `nacos.core.api.compatibility.admin.enabled=true` in application.properties.","data":null}"#.into(),
                    ),
                    _ => (404, json, r#"{"status":404,"error":"Not Found"}"#.into()),
                };
            }
            // v1 reads parameters with getParameter, which does not parse PUT bodies.
            let param = |k: &str| {
                if api == 1 {
                    rec.query.get(k).cloned()
                } else {
                    any_param(k)
                }
            };
            if creds.is_some() {
                let bearer = rec
                    .headers
                    .get("authorization")
                    .and_then(|a| a.strip_prefix("Bearer "))
                    .map(str::to_owned);
                let header = if api == 1 {
                    None
                } else {
                    rec.headers.get("accesstoken").cloned()
                };
                let token = param("accessToken").or(bearer).or(header);
                if token.as_deref() != Some(TOKEN) {
                    return (403, text, "user not found!".into());
                }
            }
            for required in ["serviceName", "ip", "port"] {
                if param(required).is_none() {
                    return if api == 1 {
                        (
                            400,
                            text,
                            format!("caused: Param '{required}' is required.;"),
                        )
                    } else {
                        (
                            400,
                            json,
                            format!(
                                r#"{{"code":10000,"message":"parameter missing","data":"Required parameter '{required}' type String is not present"}}"#
                            ),
                        )
                    };
                }
            }
            let group = param("groupName").unwrap_or_else(|| "DEFAULT_GROUP".into());
            let service = format!("{group}@@{}", param("serviceName").unwrap_or_default());
            // 2.x and later refuse updates of services that do not exist.
            if (api > 1 || generation != Generation::V1x) && !services.contains(&service) {
                return if api == 1 {
                    (400, text, format!("caused: service not found: {service}"))
                } else {
                    (
                        400,
                        json,
                        format!(
                            r#"{{"code":21004,"message":"instance error","data":"service not found: {service}"}}"#
                        ),
                    )
                };
            }
            if param("enabled").as_deref() == Some("false") {
                let ns = param("namespaceId").unwrap_or_else(|| "public".into());
                state.lock().unwrap().disabled.push(format!(
                    "{ns}/{service}#{}#{}",
                    param("ip").unwrap_or_default(),
                    param("port").unwrap_or_default()
                ));
            }
            if api == 1 {
                (200, text, "ok".into())
            } else {
                (
                    200,
                    json,
                    r#"{"code":0,"message":"success","data":"ok"}"#.into(),
                )
            }
        }
        _ => (404, json, r#"{"status":404,"error":"Not Found"}"#.into()),
    }
}
