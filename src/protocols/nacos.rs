//! The Nacos HTTP protocol for taking an instance out of rotation, as data: which path, which
//! parameters, where they go, and what success looks like, per API generation. Pure, so that the
//! engine's generated shell hook and the `podgrace prestop` helper speak exactly the same protocol.
//!
//! Facts (Nacos sources and docs):
//! - v1 (`PUT /nacos/v1/ns/instance`): parameters in the query string; answers `200 ok`.
//! - v2 (`PUT /nacos/v2/ns/instance`, 2.2+): form body; answers `{"code":0,...,"data":"ok"}`.
//! - v3 (`PUT /nacos/v3/admin/ns/instance`, 3.0+): form body; same envelope as v2. Nacos 3 answers
//!   410 on v1/v2 paths unless API compatibility is enabled, and 3.2 ships without them (404).
//! - Login: `POST /nacos/v1/auth/login` (1.x, 2.x) or `/nacos/v3/auth/user/login` (3.x), form
//!   fields `username`/`password`, JSON `{"accessToken": ...}`; 403 on bad credentials. The
//!   token travels as the `accessToken` query parameter, the one form every version reads.
//! - `enabled=false` through an update is what works for instances registered over gRPC by 2.x
//!   clients; DELETE does not (nacos#7070), and a live client would re-register anyway.

use serde::{Deserialize, Serialize};

/// The Nacos HTTP API generation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NacosApi {
    /// Nacos 1.x/2.x Open API `/nacos/v1/ns/instance`.
    V1,
    /// Nacos 2.x Open API `/nacos/v2/ns/instance`.
    V2,
    /// Nacos 3.x admin API `/nacos/v3/admin/ns/instance`.
    V3,
}

impl NacosApi {
    /// The policy spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            NacosApi::V1 => "v1",
            NacosApi::V2 => "v2",
            NacosApi::V3 => "v3",
        }
    }
}

/// Environment variable carrying the Nacos user name (from the Secret).
pub const USERNAME_ENV: &str = "PODGRACE_NACOS_USERNAME";
/// Environment variable carrying the Nacos password (from the Secret).
pub const PASSWORD_ENV: &str = "PODGRACE_NACOS_PASSWORD";

/// The instance to disable, minus its IP (known only inside the pod).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Instance {
    /// Nacos namespace id, if not the public namespace.
    pub namespace_id: Option<String>,
    /// Group name.
    pub group: String,
    /// Service name.
    pub service: String,
    /// Cluster name.
    pub cluster: String,
    /// Registered port.
    pub port: u16,
    /// Ephemeral flag, as registered.
    pub ephemeral: bool,
}

/// Path of the login endpoint.
pub fn login_path(api: NacosApi) -> &'static str {
    match api {
        NacosApi::V1 | NacosApi::V2 => "/nacos/v1/auth/login",
        NacosApi::V3 => "/nacos/v3/auth/user/login",
    }
}

/// Path of the instance update endpoint.
pub fn update_path(api: NacosApi) -> &'static str {
    match api {
        NacosApi::V1 => "/nacos/v1/ns/instance",
        NacosApi::V2 => "/nacos/v2/ns/instance",
        NacosApi::V3 => "/nacos/v3/admin/ns/instance",
    }
}

/// Whether the update parameters travel as a form body (v2, v3) or in the query string (v1).
pub fn params_in_body(api: NacosApi) -> bool {
    !matches!(api, NacosApi::V1)
}

/// The update parameters in a fixed order, with `ip` given by the caller (a shell variable
/// reference in the generated hook, the real address in the helper).
pub fn update_params(instance: &Instance, ip: &str) -> Vec<(&'static str, String)> {
    let mut params = Vec::with_capacity(8);
    if let Some(ns) = &instance.namespace_id {
        params.push(("namespaceId", ns.clone()));
    }
    params.extend([
        ("groupName", instance.group.clone()),
        ("serviceName", instance.service.clone()),
        ("clusterName", instance.cluster.clone()),
        ("ip", ip.to_owned()),
        ("port", instance.port.to_string()),
        ("ephemeral", instance.ephemeral.to_string()),
        ("enabled", "false".to_owned()),
    ]);
    params
}

/// Whether an update answer means the instance is now disabled.
pub fn update_succeeded(api: NacosApi, status: u16, body: &str) -> bool {
    if status != 200 {
        return false;
    }
    match api {
        NacosApi::V1 => body.trim() == "ok",
        NacosApi::V2 | NacosApi::V3 => compact(body).contains("\"code\":0"),
    }
}

/// Extracts `accessToken` from a login answer.
pub fn access_token(body: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(body).ok()?;
    let token = value.get("accessToken")?.as_str()?;
    (!token.is_empty()).then(|| token.to_owned())
}

/// A hint for a failed call, naming the usual cause of each status.
pub fn failure_hint(api: NacosApi, status: u16) -> &'static str {
    match (status, api) {
        (403 | 401, _) => {
            "authentication failed: check the credentials Secret or the server's auth settings"
        }
        (410, NacosApi::V1 | NacosApi::V2) => {
            "the server refuses this API generation (Nacos 3 without API compatibility): use apiVersion v3"
        }
        (404, NacosApi::V1 | NacosApi::V2) => {
            "path not found (Nacos 3.2+ ships without v1/v2 APIs): use apiVersion v3"
        }
        (404, NacosApi::V3) => {
            "path not found: the server is older than Nacos 3, use apiVersion v1 or v2"
        }
        (400, _) => {
            "bad request: check serviceName, groupName and namespaceId (the service must exist)"
        }
        _ => "unexpected answer",
    }
}

fn compact(body: &str) -> String {
    body.chars().filter(|c| !c.is_whitespace()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instance() -> Instance {
        Instance {
            namespace_id: Some("online".into()),
            group: "kevin-app".into(),
            service: "customer-services".into(),
            cluster: "DEFAULT".into(),
            port: 9810,
            ephemeral: true,
        }
    }

    #[test]
    fn paths_follow_the_api_generation() {
        assert_eq!(update_path(NacosApi::V1), "/nacos/v1/ns/instance");
        assert_eq!(update_path(NacosApi::V3), "/nacos/v3/admin/ns/instance");
        assert_eq!(login_path(NacosApi::V2), "/nacos/v1/auth/login");
        assert_eq!(login_path(NacosApi::V3), "/nacos/v3/auth/user/login");
        assert!(!params_in_body(NacosApi::V1) && params_in_body(NacosApi::V2));
    }

    #[test]
    fn parameters_disable_exactly_this_instance() {
        let p = update_params(&instance(), "10.0.0.7");
        let get = |k: &str| p.iter().find(|(n, _)| *n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("ip"), Some("10.0.0.7"));
        assert_eq!(get("port"), Some("9810"));
        assert_eq!(get("enabled"), Some("false"));
        assert_eq!(get("namespaceId"), Some("online"));
        assert_eq!(get("groupName"), Some("kevin-app"));
    }

    #[test]
    fn success_is_read_per_generation() {
        assert!(update_succeeded(NacosApi::V1, 200, "ok"));
        assert!(!update_succeeded(
            NacosApi::V1,
            200,
            "caused: service not found"
        ));
        assert!(update_succeeded(
            NacosApi::V2,
            200,
            r#"{"code": 0, "message": "success", "data": "ok"}"#
        ));
        assert!(!update_succeeded(
            NacosApi::V3,
            200,
            r#"{"code":21004,"message":"instance error"}"#
        ));
        assert!(!update_succeeded(NacosApi::V3, 403, ""));
    }

    #[test]
    fn tokens_come_from_the_login_json() {
        assert_eq!(
            access_token(r#"{"accessToken":"eyJ.a.b","tokenTtl":18000,"globalAdmin":true}"#)
                .as_deref(),
            Some("eyJ.a.b")
        );
        assert_eq!(access_token("unknown user!"), None);
        assert_eq!(access_token(r#"{"accessToken":""}"#), None);
    }
}
