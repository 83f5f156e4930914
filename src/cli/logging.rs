//! Logging set-up for long-running commands: JSON lines in production, readable text locally,
//! queued for a background thread so that a slow log sink never adds latency to admissions.

use anyhow::Context as _;
use prometheus_client::metrics::counter::Counter;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::prelude::*;
use tracing_subscriber::{EnvFilter, Layer, Registry};

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
    let filter = filter_layer(filter)?;
    // Bounded (lines are dropped and counted when the output stalls): a log sink that falls
    // behind costs lines, never memory or admission latency.
    let (writer, guard) = log_writer::queued(std::io::stdout(), QueueOptions::default(), dropped)
        .context("starting the log writer thread")?;
    let lines = tracing_subscriber::fmt::layer().with_writer(writer);
    let installed = match format {
        // tracing-subscriber's JSON shape (flattened fields, the current span's fields under
        // `span`), written by a formatter that costs a fraction of its own.
        LogFormat::Json => Registry::default()
            .with(filter)
            .with(lines.fmt_fields(JsonFields).event_format(JsonLines))
            .try_init(),
        LogFormat::Text => Registry::default()
            .with(filter)
            .with(lines.with_ansi(false))
            .try_init(),
    };
    installed.map_err(|e| anyhow::anyhow!("installing the logger: {e}"))?;
    Ok(guard)
}

/// A filter in `EnvFilter` syntax. Lists of `target=level` directives, which is all the chart and
/// the documentation use, are served by `Targets`, which decides from the callsite alone.
/// `EnvFilter` is kept for span and field directives (`[admission{uid=…}]=debug`): it keeps
/// every span in maps behind locks that all threads share: four lock round trips per admission
/// even when no directive needs them, on cache lines the workers pass back and forth under load
/// (docs/PERFORMANCE.md).
fn filter_layer(filter: &str) -> anyhow::Result<Box<dyn Layer<Registry> + Send + Sync>> {
    // EnvFilter's parser checks the syntax (Targets would take `[span]` for a target name).
    let env =
        EnvFilter::try_new(filter).with_context(|| format!("invalid log filter {filter:?}"))?;
    // Span and field directives are the only ones written with brackets.
    if !filter.contains('[')
        && let Ok(targets) = filter.parse::<Targets>()
    {
        return Ok(targets.boxed());
    }
    Ok(env.boxed())
}

#[cfg(test)]
mod tests {
    use tracing::subscriber::with_default;

    use super::*;

    /// Which of the probe events get through `filter`.
    fn passes(filter: &str) -> Vec<&'static str> {
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let record = seen.clone();
        let subscriber = Registry::default()
            .with(filter_layer(filter).unwrap())
            .with(Probe(record));
        with_default(subscriber, || {
            tracing::info!(target: "podgrace::server", "podgrace-info");
            tracing::debug!(target: "podgrace::server", "podgrace-debug");
            tracing::info!(target: "hyper::proto", "hyper-info");
            tracing::warn!(target: "hyper::proto", "hyper-warn");
            tracing::info_span!("admission", uid = "u1").in_scope(|| {
                tracing::debug!(target: "kube::client", "span-debug");
            });
        });
        seen.lock().unwrap().clone()
    }

    /// Records the message of every event it sees.
    struct Probe(std::sync::Arc<std::sync::Mutex<Vec<&'static str>>>);

    impl<S: tracing::Subscriber> Layer<S> for Probe {
        fn on_event(
            &self,
            event: &tracing::Event<'_>,
            _: tracing_subscriber::layer::Context<'_, S>,
        ) {
            struct Message(Option<String>);
            impl tracing::field::Visit for Message {
                fn record_debug(&mut self, f: &tracing::field::Field, v: &dyn std::fmt::Debug) {
                    if f.name() == "message" {
                        self.0 = Some(format!("{v:?}"));
                    }
                }
            }
            let mut m = Message(None);
            event.record(&mut m);
            let known = [
                "podgrace-info",
                "podgrace-debug",
                "hyper-info",
                "hyper-warn",
                "span-debug",
            ];
            if let Some(k) = known.iter().find(|k| m.0.as_deref() == Some(**k)) {
                self.0.lock().unwrap().push(*k);
            }
        }
    }

    #[test]
    fn target_lists_filter_by_target_and_level() {
        assert_eq!(
            passes("info"),
            ["podgrace-info", "hyper-info", "hyper-warn"]
        );
        assert_eq!(
            passes("warn,podgrace=debug"),
            ["podgrace-info", "podgrace-debug", "hyper-warn"]
        );
        assert_eq!(passes("off"), Vec::<&str>::new());
        assert_eq!(
            passes("podgrace"),
            ["podgrace-info", "podgrace-debug"],
            "a target without a level enables all of its levels"
        );
    }

    #[test]
    fn span_directives_are_honoured() {
        assert_eq!(
            passes("warn,[admission]=debug"),
            ["hyper-warn", "span-debug"]
        );
    }

    #[test]
    fn a_bad_filter_is_an_error_that_quotes_it() {
        for bad in ["info,[unclosed=debug", "podgrace=loud"] {
            let Err(e) = filter_layer(bad) else {
                panic!("{bad} accepted")
            };
            assert!(format!("{e:#}").contains(&format!("{bad:?}")), "{e:#}");
        }
    }
}
