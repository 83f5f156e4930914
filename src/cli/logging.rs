//! Logging set-up for long-running commands: JSON lines in production, readable text locally,
//! written by a background thread so that a slow log sink never adds latency to admissions.

use anyhow::Context as _;
use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::EnvFilter;

use super::LogFormat;
use super::log_format::{JsonFields, JsonLines};

/// Installs the global subscriber; keep the guard alive until exit to flush.
pub(super) fn init(format: LogFormat, filter: &str) -> anyhow::Result<WorkerGuard> {
    let filter =
        EnvFilter::try_new(filter).with_context(|| format!("invalid log filter {filter:?}"))?;
    // The worker drains its queue into the buffer and flushes once per batch: one write(2) per
    // burst of admissions instead of one per line.
    let stdout = std::io::BufWriter::with_capacity(64 * 1024, std::io::stdout());
    // A bounded queue (lossy when full): a log sink that falls behind costs lines, never memory
    // or admission latency. The library default holds 128k lines, tens of MiB under load.
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .buffered_lines_limit(4096)
        .lossy(true)
        .finish(stdout);
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
