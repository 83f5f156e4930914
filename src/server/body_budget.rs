//! The memory request bodies take, bounded by design: a body is read only once its size has
//! been reserved, and a review that decodes into more than a little is answered only once its
//! decoded size, estimated, has been reserved too. Reservations last until the handler has
//! answered.
//!
//! Bodies up to [`SMALL_BODY_BYTES`] are reserved from the small lane, larger ones from the large
//! lane, so that ordinary reviews never wait behind large bodies, and any number of large bodies
//! holds at most the large lane at once. One large body is in flight at a time
//! ([`LARGE_AT_ONCE`]), from the start of its reading to its answer, whatever its size: reading
//! (decrypting) it takes the async workers' CPU, and reading the next while one is decoded would
//! answer more large reviews in a flood, at the price of the small reviews on the same workers.
//! A reservation that cannot be had waits up to [`BUDGET_WAIT`], then the request is answered 429
//! with `Retry-After`. A declared `Content-Length` above the body limit is answered 413 before
//! anything is read; a body without one (chunked) reserves the largest accepted size. Both
//! refusals close the connection, since the body was not read.
//!
//! What a review costs once decoded depends on its shape more than on its size: 5.9 MiB of
//! annotation are one string, 5.9 MiB of minimal containers are 200,000 structs, each with its
//! share of the engine's work and of the patch. The first estimate is quick and high: every JSON
//! object in the body (every `{`, those in strings too, which no encoding can dodge) counts for
//! [`OBJECT_COST`], what a container costs, on top of the body's size (its strings). A small body
//! with at most [`INLINE_OBJECTS`] objects (ordinary pods have tens) is answered on its async
//! worker, which decodes one review at a time. Any other review is answered on the
//! [`large_reviews`](super::large_reviews) thread, after reserving its estimate from the decoding
//! budget. When the quick estimate exceeds the whole budget, the review is counted again as its
//! decoding will build it (on that thread: it is a full parse), if the budget was given a way to
//! ([`BodyBudget::counting_built_objects`]): [`OBJECT_COST`] per container, [`NESTED_OBJECT_COST`]
//! per object inside one, nothing for the objects decoding skips (a pod's `managedFields` holds
//! one per field of its spec, so a pod with a few hundred env entries has thousands). Only a
//! review whose count exceeds the whole decoding budget is answered 413. A review holds its
//! body's reservation while it waits for the decoding one, never the other way round, so waiting
//! cannot go round in a circle.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::BytesMut;
use http_body_util::BodyExt as _;
use hyper::body::Body as _;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use crate::engine::pod_view::BuiltObjects;
use crate::observability::metrics::{Metrics, Refusal};

/// Bodies up to this size take the small lane.
pub const SMALL_BODY_BYTES: usize = 64 * 1024;
/// The small lane: 256 of the largest small bodies, thousands of ordinary reviews.
pub const SMALL_LANE_BYTES: usize = 16 * 1024 * 1024;
/// How long a body waits for its reservation before the request is refused.
pub const BUDGET_WAIT: Duration = Duration::from_secs(1);
/// What a JSON object is reserved for once decoded: a container, the costliest (k8s-openapi's
/// struct, the engine's plan and its part of the patch), measured at 9.9 KB, with a margin.
pub const OBJECT_COST: usize = 12 * 1024;
/// What a JSON object inside a container is reserved for once decoded: an element of one of its
/// lists (an `env` entry, a port, a mount), each a k8s-openapi struct of a few hundred bytes
/// (`tests::nested_objects_fit_their_cost`).
pub const NESTED_OBJECT_COST: usize = 1024;
/// Large bodies in flight at once, from the start of their reading to their answer (measured in
/// bench/results/stress.md ("One large review at a time"): with 64 clients sending 5.9 MiB bodies, small reviews' p99 was 6.5-9.4
/// ms with one, an unattacked server's 6.4-7.7, 9.8-13 ms with two, 3 times the unattacked
/// one's with five; two answer 1.6 times as many large reviews in such a flood, which no API
/// server sends).
pub const LARGE_AT_ONCE: usize = 1;
/// Objects a small body may have and still be answered on its async worker (under 5 MiB
/// decoded; the captured `kubectl apply` review has 74).
pub const INLINE_OBJECTS: usize = 400;

/// The budget: the body limit, the two lanes for bodies, and the decoding budget.
pub struct BodyBudget {
    small: Arc<Semaphore>,
    large: Arc<Semaphore>,
    large_at_once: Arc<Semaphore>,
    decoding: Arc<Semaphore>,
    decoding_bytes: usize,
    max_body: usize,
    metrics: Option<Arc<Metrics>>,
    built_objects: Option<BuiltObjectsFn>,
}

/// Counts what answering a review builds (`None` when the body is not shaped for it).
pub type BuiltObjectsFn = fn(&[u8]) -> Option<BuiltObjects>;

/// A router state that carries a body budget (the webhook's, the benchmark floor's).
pub trait WithBodyBudget {
    /// The budget.
    fn body_budget(&self) -> &BodyBudget;
}

impl WithBodyBudget for Arc<BodyBudget> {
    fn body_budget(&self) -> &BodyBudget {
        self
    }
}

impl BodyBudget {
    /// Bodies up to `max_body` bytes; large reviews take at most `large_reviews` bytes at once,
    /// half for their bodies (never less than one body of the largest size), half for decoding.
    /// Refusals are counted in `metrics` when given.
    pub fn new(max_body: usize, large_reviews: usize, metrics: Option<Arc<Metrics>>) -> Self {
        // Reservations are taken up to u32::MAX bytes at a time.
        let max_body = max_body.min(u32::MAX as usize);
        let half = (large_reviews / 2).min(Semaphore::MAX_PERMITS);
        BodyBudget {
            small: Arc::new(Semaphore::new(SMALL_LANE_BYTES)),
            large: Arc::new(Semaphore::new(half.max(max_body))),
            large_at_once: Arc::new(Semaphore::new(LARGE_AT_ONCE)),
            decoding: Arc::new(Semaphore::new(half)),
            decoding_bytes: half,
            max_body,
            metrics,
            built_objects: None,
        }
    }

    /// Counts a review whose quick estimate exceeds the decoding budget again with `count`, as
    /// its decoding will build it, before refusing it. Without it, the quick estimate decides
    /// (right for a handler that builds every object, like the benchmark floor's).
    pub fn counting_built_objects(mut self, count: BuiltObjectsFn) -> Self {
        self.built_objects = Some(count);
        self
    }

    /// Takes `n` bytes from `lane`, waiting until `deadline`.
    async fn take(
        &self,
        lane: &Arc<Semaphore>,
        n: usize,
        deadline: Instant,
    ) -> Result<Option<OwnedSemaphorePermit>, Refused> {
        // At most a lane's size, which fits (see `new` and the callers).
        let n = u32::try_from(n).unwrap_or(u32::MAX);
        if n == 0 {
            return Ok(None);
        }
        if let Ok(permit) = lane.clone().try_acquire_many_owned(n) {
            return Ok(Some(permit));
        }
        match tokio::time::timeout_at(deadline, lane.clone().acquire_many_owned(n)).await {
            Ok(Ok(permit)) => Ok(Some(permit)),
            _ => Err(self.refuse(Refused::Busy)),
        }
    }

    fn refuse(&self, refused: Refused) -> Refused {
        if let Some(metrics) = &self.metrics {
            metrics.request_refused(refused.reason());
        }
        refused
    }
}

/// A request body, read within the budget; the reservations last as long as this value.
pub struct Budgeted {
    /// The body.
    pub bytes: Bytes,
    large: bool,
    _reserved: [Option<OwnedSemaphorePermit>; 3],
}

impl Budgeted {
    /// Runs `handle` (which decodes and answers the body): inline for an ordinary review, on the
    /// [`large_reviews`](super::large_reviews) thread for a large one.
    pub async fn handle<R: Send + 'static>(
        self,
        handle: impl FnOnce(&[u8]) -> R + Send + 'static,
    ) -> R {
        if self.large {
            super::large_reviews::run(move || handle(&self.bytes)).await
        } else {
            handle(&self.bytes)
        }
    }
}

impl<S: WithBodyBudget + Send + Sync> FromRequest<S> for Budgeted {
    type Rejection = Refused;

    async fn from_request(req: Request, state: &S) -> Result<Self, Refused> {
        let budget = state.body_budget();
        let max = budget.max_body;
        let body = req.into_body();
        let len = match body.size_hint().exact() {
            Some(declared) if declared > max as u64 => {
                return Err(budget.refuse(Refused::TooLarge(declared, max)));
            }
            Some(declared) => declared as usize,
            None => max,
        };
        let deadline = Instant::now() + BUDGET_WAIT;
        let lane = if len <= SMALL_BODY_BYTES {
            &budget.small
        } else {
            &budget.large
        };
        let body_reserved = budget.take(lane, len, deadline).await?;
        let in_flight = if len > SMALL_BODY_BYTES {
            budget.take(&budget.large_at_once, 1, deadline).await?
        } else {
            None
        };
        let (bytes, objects) = read(body, len, max).await.map_err(|e| budget.refuse(e))?;
        if len <= SMALL_BODY_BYTES && objects <= INLINE_OBJECTS {
            return Ok(Budgeted {
                bytes,
                large: false,
                _reserved: [body_reserved, in_flight, None],
            });
        }
        let mut cost = bytes
            .len()
            .saturating_add(objects.saturating_mul(OBJECT_COST));
        // The quick estimate is high; before refusing, count what decoding will build (a full
        // parse: on the large-review thread, not on this worker).
        if cost > budget.decoding_bytes
            && let Some(count) = budget.built_objects
        {
            let body = bytes.clone();
            if let Some(built) = super::large_reviews::run(move || count(&body)).await {
                cost = bytes.len().saturating_add(built_cost(built));
            }
        }
        if cost > budget.decoding_bytes {
            return Err(budget.refuse(Refused::TooComplex {
                objects,
                cost,
                budget: budget.decoding_bytes,
            }));
        }
        let decoding_reserved = budget.take(&budget.decoding, cost, deadline).await?;
        Ok(Budgeted {
            bytes,
            large: true,
            _reserved: [body_reserved, in_flight, decoding_reserved],
        })
    }
}

/// What decoding `built` takes, beyond the body's strings.
fn built_cost(built: BuiltObjects) -> usize {
    let containers = built.containers.saturating_mul(OBJECT_COST);
    containers.saturating_add(built.nested.saturating_mul(NESTED_OBJECT_COST))
}

/// Bytes read (and decrypted) before the reading task lets others run: what a small review may
/// wait for behind each large body being read on its worker.
const READ_SLICE: usize = 64 * 1024;

/// Reads the body into one buffer of its declared size `len` (no growth, no second copy; a body
/// that arrives in one piece is kept as it came), counting the `{` in it.
async fn read(mut body: Body, len: usize, max: usize) -> Result<(Bytes, usize), Refused> {
    let mut first = Bytes::new();
    let mut joined: Option<BytesMut> = None;
    let (mut objects, mut since_yield) = (0, 0);
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| Refused::Unreadable(e.to_string()))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        let total = joined.as_ref().map_or(first.len(), BytesMut::len) + data.len();
        if total > max {
            return Err(Refused::TooLarge(total as u64, max));
        }
        // memchr's vectorised search: a byte-by-byte count was an eighth of the server's CPU
        // during an attack of large bodies, on the workers that answer the small reviews.
        objects += memchr::memchr_iter(b'{', &data).count();
        since_yield += data.len();
        match &mut joined {
            Some(buf) => buf.extend_from_slice(&data),
            None if first.is_empty() => first = data,
            None => {
                let mut buf = BytesMut::with_capacity(len.max(total));
                buf.extend_from_slice(&first);
                buf.extend_from_slice(&data);
                first = Bytes::new();
                joined = Some(buf);
            }
        }
        // A large body on a fast connection is always ready to read: reading (and decrypting)
        // it in slices keeps the small reviews on the same worker from waiting milliseconds.
        if since_yield >= READ_SLICE {
            since_yield = 0;
            tokio::task::yield_now().await;
        }
    }
    Ok((joined.map_or(first, BytesMut::freeze), objects))
}

/// Why a body was not read, or not answered.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    /// Larger than the body limit (declared, or as it arrived).
    #[error("request body of {0} bytes is over the limit of {1} bytes")]
    TooLarge(u64, usize),
    /// A review whose decoded size, estimated, exceeds the whole decoding budget.
    #[error(
        "the review has {objects} JSON objects: answering it would take about {cost} bytes, over the budget of {budget} bytes for decoding large reviews"
    )]
    TooComplex {
        /// `{` in the body.
        objects: usize,
        /// The estimate.
        cost: usize,
        /// The decoding budget.
        budget: usize,
    },
    /// The budget stayed taken for [`BUDGET_WAIT`].
    #[error("too many large reviews at once; retry later")]
    Busy,
    /// The client stopped sending, or sent something that is not HTTP.
    #[error("reading the request body: {0}")]
    Unreadable(String),
}

impl Refused {
    /// The label counting this refusal.
    pub fn reason(&self) -> Refusal {
        match self {
            Refused::TooLarge(..) => Refusal::BodyTooLarge,
            Refused::TooComplex { .. } => Refusal::BodyTooComplex,
            Refused::Busy => Refusal::BodyBudget,
            Refused::Unreadable(_) => Refusal::BodyUnreadable,
        }
    }
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        let status = match self {
            Refused::TooLarge(..) | Refused::TooComplex { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Refused::Busy => StatusCode::TOO_MANY_REQUESTS,
            Refused::Unreadable(_) => StatusCode::BAD_REQUEST,
        };
        tracing::debug!(error = %self, "request refused");
        let mut response = (
            status,
            axum::Json(serde_json::json!({ "error": self.to_string() })),
        )
            .into_response();
        let headers = response.headers_mut();
        // The body may not have been read: the connection cannot carry another request.
        headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
        if status == StatusCode::TOO_MANY_REQUESTS {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        Container, ContainerPort, ContainerResizePolicy, ContainerRestartRule, EnvFromSource,
        EnvVar, HTTPHeader, ResourceClaim, VolumeDevice, VolumeMount,
    };

    /// Every list a container holds (and its probes' and hooks' headers): an element of any of
    /// them, built, fits its [`NESTED_OBJECT_COST`] twice over, for a list's growth.
    #[test]
    fn nested_objects_fit_their_cost() {
        let sizes = [
            ("EnvVar", size_of::<EnvVar>()),
            ("EnvFromSource", size_of::<EnvFromSource>()),
            ("ContainerPort", size_of::<ContainerPort>()),
            ("ContainerResizePolicy", size_of::<ContainerResizePolicy>()),
            ("ContainerRestartRule", size_of::<ContainerRestartRule>()),
            ("VolumeDevice", size_of::<VolumeDevice>()),
            ("VolumeMount", size_of::<VolumeMount>()),
            ("HTTPHeader", size_of::<HTTPHeader>()),
            ("ResourceClaim", size_of::<ResourceClaim>()),
        ];
        for (name, size) in sizes {
            assert!(size * 2 <= NESTED_OBJECT_COST, "{name}: {size} bytes");
        }
        // And a container, whole, well within its own cost (the rest is the engine's plan and
        // its patch, measured).
        assert!(size_of::<Container>() * 2 <= OBJECT_COST);
    }

    #[test]
    fn a_container_costs_more_than_what_it_holds() {
        let built = BuiltObjects {
            containers: 2,
            nested: 600,
        };
        assert_eq!(
            built_cost(built),
            2 * OBJECT_COST + 600 * NESTED_OBJECT_COST
        );
        let absurd = BuiltObjects {
            containers: usize::MAX,
            nested: 1,
        };
        assert_eq!(built_cost(absurd), usize::MAX);
    }
}
