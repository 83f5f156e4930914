//! Deregistration from Nacos over HTTP, as the generated shell hook does it (the protocol is
//! shared: [`crate::protocols::nacos`]), with what a shell cannot do well: a total budget, retries with
//! backoff inside it for transient failures (connection refused, timeouts, 5xx), no retries for
//! answers that will not change (403, 404, 410, 400), and a message naming the likely cause.

use std::time::{Duration, Instant};

use crate::policy::spec::NacosApi;
use crate::protocols::nacos::{self, Instance};

/// One deregistration.
#[derive(Clone)]
pub struct Deregistration {
    /// Base URL, without a trailing slash.
    pub server: String,
    /// API generation.
    pub api: NacosApi,
    /// The instance.
    pub instance: Instance,
    /// The pod's IP.
    pub ip: String,
    /// User name and password, when the server requires a login.
    pub credentials: Option<(String, String)>,
    /// Bound on each HTTP call.
    pub timeout: Duration,
    /// Bound on the whole deregistration, retries included.
    pub budget: Duration,
}

impl std::fmt::Debug for Deregistration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the password.
        f.debug_struct("Deregistration")
            .field("server", &self.server)
            .field("instance", &self.describe())
            .finish_non_exhaustive()
    }
}

struct AttemptFailure {
    message: String,
    retry: bool,
}

impl AttemptFailure {
    fn permanent(message: String) -> Self {
        AttemptFailure {
            message,
            retry: false,
        }
    }
    fn transient(message: String) -> Self {
        AttemptFailure {
            message,
            retry: true,
        }
    }
}

const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

impl Deregistration {
    /// `group@@service ip:port` for messages.
    pub fn describe(&self) -> String {
        format!(
            "{}@@{} {}:{}",
            self.instance.group, self.instance.service, self.ip, self.instance.port
        )
    }

    /// Runs the deregistration within the budget.
    pub async fn run(&self) -> Result<(), String> {
        // reqwest is built without a default TLS provider; podgrace uses ring everywhere.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .connect_timeout(self.timeout.min(Duration::from_secs(2)))
            .user_agent(concat!("podgrace/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        let deadline = Instant::now() + self.budget;
        let mut backoff = FIRST_BACKOFF;
        for attempt in 1.. {
            let failure = match self.attempt(&client, deadline).await {
                Ok(()) => return Ok(()),
                Err(f) => f,
            };
            let remaining = deadline.saturating_duration_since(Instant::now());
            if !failure.retry {
                return Err(failure.message);
            }
            if remaining <= backoff {
                return Err(format!(
                    "{} (gave up after {attempt} attempt{} within the {:?} budget)",
                    failure.message,
                    if attempt == 1 { "" } else { "s" },
                    self.budget
                ));
            }
            eprintln!(
                "podgrace: nacos attempt {attempt} failed: {}; retrying in {backoff:?}",
                failure.message
            );
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
        unreachable!("the loop returns")
    }

    fn call_timeout(&self, deadline: Instant) -> Result<Duration, AttemptFailure> {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(AttemptFailure::permanent("budget exhausted".to_owned()));
        }
        Ok(self.timeout.min(remaining))
    }

    async fn attempt(
        &self,
        client: &reqwest::Client,
        deadline: Instant,
    ) -> Result<(), AttemptFailure> {
        let token = match &self.credentials {
            Some((user, password)) => Some(self.login(client, deadline, user, password).await?),
            None => None,
        };
        let url = format!("{}{}", self.server, nacos::update_path(self.api));
        let params = nacos::update_params(&self.instance, &self.ip);
        let mut query: Vec<(&str, String)> = Vec::new();
        let mut request = client.put(&url).timeout(self.call_timeout(deadline)?);
        if nacos::params_in_body(self.api) {
            request = request.form(&params);
        } else {
            query.extend(params.iter().cloned());
        }
        if let Some(t) = &token {
            query.push(("accessToken", t.clone()));
        }
        let response = request
            .query(&query)
            .send()
            .await
            .map_err(|e| transport("PUT", &url, &e))?;
        let status = response.status().as_u16();
        let body = response.text().await.unwrap_or_default();
        if nacos::update_succeeded(self.api, status, &body) {
            return Ok(());
        }
        let message = format!(
            "PUT {url}: HTTP {status}: {} (answer: {})",
            nacos::failure_hint(self.api, status),
            excerpt(&body)
        );
        Err(if status >= 500 || status == 429 {
            AttemptFailure::transient(message)
        } else {
            AttemptFailure::permanent(message)
        })
    }

    async fn login(
        &self,
        client: &reqwest::Client,
        deadline: Instant,
        user: &str,
        password: &str,
    ) -> Result<String, AttemptFailure> {
        let url = format!("{}{}", self.server, nacos::login_path(self.api));
        let response = client
            .post(&url)
            .timeout(self.call_timeout(deadline)?)
            .form(&[("username", user), ("password", password)])
            .send()
            .await
            .map_err(|e| transport("POST", &url, &e))?;
        let status = response.status().as_u16();
        let body = response.text().await.unwrap_or_default();
        match (status, nacos::access_token(&body)) {
            (200, Some(token)) => Ok(token),
            (200, None) => Err(AttemptFailure::permanent(format!(
                "POST {url}: no accessToken in the answer ({})",
                excerpt(&body)
            ))),
            (s, _) if s >= 500 || s == 429 => Err(AttemptFailure::transient(format!(
                "POST {url}: HTTP {s} ({})",
                excerpt(&body)
            ))),
            (s, _) => Err(AttemptFailure::permanent(format!(
                "POST {url}: login refused, HTTP {s}: {} (answer: {})",
                nacos::failure_hint(self.api, s),
                excerpt(&body)
            ))),
        }
    }
}

fn transport(method: &str, url: &str, e: &reqwest::Error) -> AttemptFailure {
    let mut message = format!("{method} {url}: ");
    if e.is_timeout() {
        message.push_str("timed out");
    } else {
        // reqwest's own text is generic; the cause (connection refused, DNS, TLS) is below it.
        let mut cause: Option<&dyn std::error::Error> = Some(e);
        let mut parts = Vec::new();
        while let Some(c) = cause {
            parts.push(c.to_string());
            cause = c.source();
        }
        message.push_str(&parts.join(": "));
    }
    AttemptFailure::transient(message)
}

fn excerpt(body: &str) -> String {
    let one_line: String = body.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() > 160 {
        format!("{}…", one_line.chars().take(160).collect::<String>())
    } else if one_line.is_empty() {
        "empty".to_owned()
    } else {
        one_line
    }
}
