//! Logging set-up for long-running commands: JSON lines in production, readable text locally,
//! handed to a background thread so that a slow log sink never adds latency to admissions.
//!
//! The lines are tracing-subscriber's own formats; the JSON line is
//! `{"timestamp","level",<event fields>,"target","span":{<span fields>,"name"}}` (the event's
//! fields flattened, the current span's fields under `span`); the admission lines carry the
//! request's `uid` as a field (a span per admission cost more than the line, and the lines are
//! logged at `debug` but for those that need attention, see `summary`). tracing-appender's non-blocking writer takes
//! each line into a bounded queue: when the output stalls, lines are dropped and counted
//! (`podgrace_log_lines_dropped_total`), never waited for.

use std::io::Write;

use anyhow::Context as _;
use tracing::Subscriber;
use tracing_appender::non_blocking::{ErrorCounter, NonBlocking, NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::prelude::*;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::{EnvFilter, Layer, Registry};

/// Log output formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One JSON object per line (production).
    Json,
    /// Human-readable lines (local runs).
    Text,
}

/// Lines held while the output is busy; further lines are dropped until it catches up. Far more
/// than the output falls behind at any admission rate while it keeps moving, so it fills only
/// when the output stalls; bounded, so a stalled sink costs lines, never memory.
const QUEUED_LINES: usize = 4096;

/// Bytes of lines the writer thread gathers before it writes them out (it writes them anyway once
/// the queue is empty).
const BATCH_BYTES: usize = 64 * 1024;

/// The installed logger: keep `guard` alive until exit (dropping it writes the queued lines);
/// `dropped` counts the lines lost to a stalled output.
pub struct Installed {
    /// Writes the queued lines when dropped.
    pub guard: WorkerGuard,
    /// Lines lost to a stalled output.
    pub dropped: ErrorCounter,
}

/// Installs the global subscriber, writing to standard output.
pub fn init(format: LogFormat, filter: &str) -> anyhow::Result<Installed> {
    let filter = filter_layer(filter)?;
    // The writer thread writes every line it finds queued, then flushes: buffered, a burst of
    // lines is one `write` instead of one per line.
    let stdout = std::io::BufWriter::with_capacity(BATCH_BYTES, std::io::stdout());
    let (writer, guard) = non_blocking(stdout);
    let dropped = writer.error_counter();
    Registry::default()
        .with(filter)
        .with(lines(format, writer))
        .try_init()
        .map_err(|e| anyhow::anyhow!("installing the logger: {e}"))?;
    Ok(Installed { guard, dropped })
}

/// The writer thread in front of `output`: lossy, with a bounded queue.
pub fn non_blocking<W: Write + Send + 'static>(output: W) -> (NonBlocking, WorkerGuard) {
    NonBlockingBuilder::default()
        .lossy(true)
        .buffered_lines_limit(QUEUED_LINES)
        .thread_name("log-writer")
        .finish(output)
}

/// The layer that formats lines in `format` and writes them to `writer`.
pub fn lines<S, W>(format: LogFormat, writer: W) -> Box<dyn Layer<S> + Send + Sync>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let layer = tracing_subscriber::fmt::layer().with_writer(writer);
    match format {
        LogFormat::Json => layer
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .boxed(),
        LogFormat::Text => layer.with_ansi(false).boxed(),
    }
}

/// A filter in `EnvFilter` syntax. Lists of `target=level` directives, which is all the chart and
/// the documentation use, are served by `Targets`, which decides from the callsite alone.
/// `EnvFilter` is kept for span and field directives (`[admission{uid=…}]=debug`): it keeps
/// every span in maps behind locks that all threads share: four lock round trips per admission
/// even when no directive needs them, on cache lines the workers pass back and forth under load
/// (bench/results/load.md, "The log filter: `Targets` instead of `EnvFilter`").
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
    use std::io;
    use std::sync::mpsc;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use serde_json::{Value, json};
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

    /// An output that keeps what it is given.
    #[derive(Clone, Default)]
    struct Kept(Arc<Mutex<Vec<u8>>>);

    impl Write for Kept {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Kept {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    /// What `log` writes in `format`, through the writer thread as `init` sets it up, with
    /// the filter `serve` starts with.
    fn logged(format: LogFormat, log: impl FnOnce()) -> String {
        let kept = Kept::default();
        let (writer, guard) = non_blocking(kept.clone());
        let subscriber = Registry::default()
            .with(filter_layer("info").unwrap())
            .with(lines(format, writer));
        with_default(subscriber, log);
        // Dropping the guard writes what is queued.
        drop(guard);
        kept.text()
    }

    /// An admission as `/mutate` logs it, and a line outside any span.
    fn admission() {
        tracing::info!(port = 8443u64, "serving");
        let span = tracing::info_span!("admission", uid = "705ab4f5-6393-11e8-b7cc-42010a800002");
        span.in_scope(|| {
            tracing::info!(
                namespace = "probe",
                pod = "probe-pod",
                dry_run = false,
                decision = "patched",
                reason = "",
                latency_us = 57u64,
                "admission"
            );
            tracing::warn!(error = %"a \"quoted\"\nerror", "bad admission request");
        });
    }

    /// The shape log pipelines and the documentation rely on: the event's fields at the top
    /// level, the admission span's `uid` under `span`.
    #[test]
    fn json_lines_carry_the_event_fields_and_the_admission_span() {
        let out = logged(LogFormat::Json, admission);
        let lines: Vec<Value> = out
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
            .collect();
        assert_eq!(lines.len(), 3, "{out}");
        assert_eq!(
            lines[0],
            json!({"timestamp": lines[0]["timestamp"], "level": "INFO", "port": 8443,
                   "message": "serving", "target": module_path!()})
        );
        assert_eq!(
            lines[1],
            json!({"timestamp": lines[1]["timestamp"], "level": "INFO", "message": "admission",
                   "namespace": "probe", "pod": "probe-pod", "dry_run": false,
                   "decision": "patched", "reason": "", "latency_us": 57,
                   "target": module_path!(),
                   "span": {"uid": "705ab4f5-6393-11e8-b7cc-42010a800002", "name": "admission"}})
        );
        // Members in this order: timestamp and level first, target and span last.
        let raw = out.lines().nth(2).unwrap();
        let at = |member: &str| raw.find(&format!("\"{member}\":")).unwrap();
        let order = ["timestamp", "level", "message", "error", "target", "span"].map(at);
        assert!(order.is_sorted(), "{raw}");
        assert_eq!(lines[2]["error"], "a \"quoted\"\nerror");
        assert_eq!(
            lines[2]["span"]["uid"],
            "705ab4f5-6393-11e8-b7cc-42010a800002"
        );
        // RFC 3339 in UTC with microseconds: `2026-11-23T00:13:32.123456Z`.
        let timestamp = lines[0]["timestamp"].as_str().unwrap();
        assert!(
            timestamp.len() == 27 && timestamp.ends_with('Z') && timestamp.as_bytes()[10] == b'T',
            "{timestamp}"
        );
    }

    #[test]
    fn text_lines_are_plain_text_with_the_span() {
        let out = logged(LogFormat::Text, admission);
        let lines: Vec<&str> = out.lines().collect();
        assert!(!out.contains('\x1b'), "colour codes in {out}");
        assert!(
            lines[1].contains(r#" INFO admission{uid="705ab4f5-6393-11e8-b7cc-42010a800002"}: "#)
                && lines[1].contains("admission namespace=\"probe\""),
            "{}",
            lines[1]
        );
    }

    /// An output that blocks on its first write until released, like a pipe nobody reads.
    struct Stalled {
        entered: mpsc::Sender<()>,
        release: mpsc::Receiver<()>,
        kept: Kept,
        waited: bool,
    }

    impl Write for Stalled {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if !self.waited {
                self.waited = true;
                let _ = self.entered.send(());
                let _ = self.release.recv();
            }
            self.kept.write(buf)
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_stalled_output_costs_counted_lines_never_a_blocked_caller() {
        let (release, wait) = mpsc::channel();
        let (entered, stalled) = mpsc::channel();
        let kept = Kept::default();
        let (writer, guard) = non_blocking(Stalled {
            entered,
            release: wait,
            kept: kept.clone(),
            waited: false,
        });
        let dropped = writer.error_counter();
        let subscriber = Registry::default().with(lines(LogFormat::Json, writer));
        let total = 3 * QUEUED_LINES;
        // Logged on another thread, so that a writer that blocked would fail the test on the
        // deadline below instead of hanging it (the release comes only after all are logged).
        let (done, finished) = mpsc::channel();
        std::thread::spawn(move || {
            with_default(subscriber, || {
                tracing::info!(n = 0u64, "first");
                stalled
                    .recv_timeout(Duration::from_secs(10))
                    .expect("the first line never reached the output");
                for n in 1..total {
                    tracing::info!(n, "line");
                }
            });
            let _ = done.send(());
        });
        finished
            .recv_timeout(Duration::from_secs(20))
            .expect("logging blocked on a stalled output");
        // The first line is in the output's hands; the queue holds QUEUED_LINES more.
        assert_eq!(dropped.dropped_lines(), total - 1 - QUEUED_LINES);
        release.send(()).unwrap();
        // Written once the output moves again (the guard waits for the writer thread only as
        // long as tracing-appender allows: its queue must have room by then).
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while kept.text().lines().count() <= QUEUED_LINES {
            assert!(
                std::time::Instant::now() < deadline,
                "the queue was never written"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        drop(guard);
        let out = kept.text();
        let written: Vec<u64> = out
            .lines()
            .map(|l| {
                serde_json::from_str::<Value>(l).unwrap()["n"]
                    .as_u64()
                    .unwrap()
            })
            .collect();
        // What was taken is written in order; what was dropped is the newest.
        let expected: Vec<u64> = (0..=QUEUED_LINES as u64).collect();
        assert_eq!(written, expected);
    }
}
