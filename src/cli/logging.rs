//! Logging set-up for long-running commands: JSON lines in production, readable text locally,
//! queued for a background thread so that a slow log sink never adds latency to admissions.

use anyhow::Context as _;
use prometheus_client::metrics::counter::Counter;
use tracing_subscriber::EnvFilter;

use super::LogFormat;
use super::log_format::{JsonFields, JsonLines};
use super::log_writer::{self, FlushGuard, QueueOptions};

/// Installs the global subscriber; keep the guard alive until exit to flush. Lines dropped
/// because the output stalled are counted in `dropped`.
pub(super) fn init(
    format: LogFormat,
    filter: &str,
    dropped: Counter,
) -> anyhow::Result<FlushGuard> {
    let filter =
        EnvFilter::try_new(filter).with_context(|| format!("invalid log filter {filter:?}"))?;
    // Bounded (lines are dropped and counted when the output stalls): a log sink that falls
    // behind costs lines, never memory or admission latency.
    let (writer, guard) = log_writer::queued(std::io::stdout(), QueueOptions::default(), dropped)
        .context("starting the log writer thread")?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    let installed = match format {
        // tracing-subscriber's JSON shape (flattened fields, the current span's fields under
        // `span`), written by a formatter that costs a fraction of its own.
        LogFormat::Json => builder
            .fmt_fields(JsonFields)
            .event_format(JsonLines)
            .try_init(),
        LogFormat::Text => builder.with_ansi(false).try_init(),
    };
    installed.map_err(|e| anyhow::anyhow!("installing the logger: {e}"))?;
    Ok(guard)
}
