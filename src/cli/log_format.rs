//! The production log line: one JSON object per event, written straight into the fmt layer's
//! line buffer.
//!
//! The shape is tracing-subscriber's JSON format with `flatten_event` and the current span:
//! `{"timestamp","level",<event fields>,"target","span":{<span fields>,"name"}}`, so log
//! pipelines see the same lines. Its formatter gathers each span's fields into a map, checks every
//! small write for UTF-8 and parses the span's fields back from JSON on every event; with one
//! line per admission that was about a sixth of the webhook's CPU at saturation
//! (docs/PERFORMANCE.md). Here span fields are stored as a ready JSON fragment when the span is
//! created and copied as they are into each line.

use std::cell::RefCell;
use std::fmt::{self, Write as _};
use std::time::{Duration, UNIX_EPOCH};

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_log::NormalizeEvent as _;
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// Formats events as JSON lines (use with [`JsonFields`] for the spans' fields).
#[derive(Clone, Copy, Debug, Default)]
pub struct JsonLines;

/// Formats span fields as the members of a JSON object, without the braces, ready to be copied
/// into every line logged inside the span.
#[derive(Clone, Copy, Debug, Default)]
pub struct JsonFields;

impl<S> FormatEvent<S, JsonFields> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, JsonFields>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        // Events from the `log` crate (through tracing-log) carry their real target in fields.
        let normalized = event.normalized_metadata();
        let meta = normalized.as_ref().unwrap_or_else(|| event.metadata());
        writer.write_str("{\"timestamp\":\"")?;
        // A clock before 1970 is written as 1970, not as a failed line.
        let now = UNIX_EPOCH.elapsed().unwrap_or_default();
        timestamp(&mut writer, now)?;
        writer.write_str("\",\"level\":\"")?;
        writer.write_str(meta.level().as_str())?;
        writer.write_str("\"")?;
        let mut fields = Members::new(&mut writer, false);
        // Their `log.*` fields are what the target above was taken from.
        fields.skip_log_fields = normalized.is_some();
        event.record(&mut fields);
        fields.result?;
        writer.write_str(",\"target\":")?;
        string(&mut writer, meta.target())?;
        let span = event
            .parent()
            .and_then(|id| ctx.span(id))
            .or_else(|| ctx.lookup_current());
        if let Some(span) = span {
            writer.write_str(",\"span\":{")?;
            let extensions = span.extensions();
            if let Some(fields) = extensions.get::<FormattedFields<JsonFields>>()
                && !fields.is_empty()
            {
                writer.write_str(fields)?;
                writer.write_str(",")?;
            }
            writer.write_str("\"name\":")?;
            string(&mut writer, span.name())?;
            writer.write_str("}")?;
        }
        writer.write_str("}\n")
    }
}

impl<'writer> FormatFields<'writer> for JsonFields {
    fn format_fields<R: RecordFields>(
        &self,
        mut writer: Writer<'writer>,
        fields: R,
    ) -> fmt::Result {
        let mut members = Members::new(&mut writer, true);
        fields.record(&mut members);
        members.result
    }

    fn add_fields(
        &self,
        current: &'writer mut FormattedFields<Self>,
        fields: &tracing::span::Record<'_>,
    ) -> fmt::Result {
        // A field recorded again is appended, not replaced: JSON readers take the last value.
        let first = current.is_empty();
        let mut writer = current.as_writer();
        let mut members = Members::new(&mut writer, first);
        fields.record(&mut members);
        members.result
    }
}

/// Writes `"name":value` members, each preceded by a comma unless it is the first of an object.
struct Members<'a, 'w> {
    writer: &'a mut Writer<'w>,
    first: bool,
    /// The event came from the `log` crate.
    skip_log_fields: bool,
    result: fmt::Result,
}

impl<'a, 'w> Members<'a, 'w> {
    fn new(writer: &'a mut Writer<'w>, first: bool) -> Self {
        Members {
            writer,
            first,
            skip_log_fields: false,
            result: Ok(()),
        }
    }

    fn member(&mut self, field: &Field, value: impl FnOnce(&mut Writer<'w>) -> fmt::Result) {
        if self.result.is_err() || (self.skip_log_fields && field.name().starts_with("log.")) {
            return;
        }
        self.result = (|| {
            // Punctuation in as few writes as possible: each is a call through `dyn Write`.
            let open = if std::mem::take(&mut self.first) {
                "\""
            } else {
                ",\""
            };
            self.writer.write_str(open)?;
            Escaped(self.writer).write_str(field.name())?;
            self.writer.write_str("\":")?;
            value(self.writer)
        })();
    }
}

/// 128-bit integers take `Visit`'s default, a string (as tracing-subscriber writes them, and as
/// JSON readers limited to 64-bit or `f64` numbers can read them).
impl Visit for Members<'_, '_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.member(field, |w| string(w, value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.member(field, |w| w.write_str(if value { "true" } else { "false" }));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.member(field, |w| write!(w, "{value}"));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.member(field, |w| write!(w, "{value}"));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        // JSON has no NaN or infinities; serde_json writes them as null, and so does this.
        if value.is_finite() {
            self.member(field, |w| write!(w, "{value}"));
        } else {
            self.member(field, |w| w.write_str("null"));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.member(field, |w| {
            w.write_str("\"")?;
            write!(Escaped(w), "{value:?}")?;
            w.write_str("\"")
        });
    }
}

/// `since_epoch` in RFC 3339, UTC, with microseconds: `2026-11-23T00:13:32.123456Z`, as
/// tracing-subscriber's `SystemTime` writes it. The date and time of day change once a second, so
/// each thread keeps the text of the last second it wrote and adds only the microseconds;
/// formatting the whole date through `fmt` for every line was a fifth of the formatter's
/// samples in a profile under load.
fn timestamp(w: &mut Writer<'_>, since_epoch: Duration) -> fmt::Result {
    thread_local! {
        static SECOND: RefCell<(Option<u64>, String)> = const { RefCell::new((None, String::new())) };
    }
    let secs = since_epoch.as_secs();
    SECOND.with_borrow_mut(|(cached, text)| {
        if *cached != Some(secs) {
            text.clear();
            let t = i64::try_from(secs)
                .ok()
                .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
                .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
            write!(
                text,
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute(),
                t.second()
            )?;
            *cached = Some(secs);
        }
        w.write_str(text)
    })?;
    let mut digits = *b"000000Z";
    let mut micros = since_epoch.subsec_micros();
    for d in digits[..6].iter_mut().rev() {
        *d = b'0' + (micros % 10) as u8;
        micros /= 10;
    }
    // ASCII digits are UTF-8.
    w.write_str(std::str::from_utf8(&digits).map_err(|_| fmt::Error)?)
}

/// A JSON string.
fn string(w: &mut Writer<'_>, s: &str) -> fmt::Result {
    w.write_str("\"")?;
    Escaped(w).write_str(s)?;
    w.write_str("\"")
}

/// Escapes what it is given for the inside of a JSON string (RFC 8259 section 7), so that
/// `Display` and `Debug` output can be escaped as it is produced, without a copy.
struct Escaped<'a, 'w>(&'a mut Writer<'w>);

impl fmt::Write for Escaped<'_, '_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut plain = 0;
        for (i, b) in s.bytes().enumerate() {
            let escape = match b {
                b'"' => "\\\"",
                b'\\' => "\\\\",
                b'\n' => "\\n",
                b'\r' => "\\r",
                b'\t' => "\\t",
                0..=0x1f => "",
                _ => continue,
            };
            self.0.write_str(&s[plain..i])?;
            if escape.is_empty() {
                write!(self.0, "\\u{b:04x}")?;
            } else {
                self.0.write_str(escape)?;
            }
            plain = i + 1;
        }
        self.0.write_str(&s[plain..])
    }
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::{Arc, Mutex};

    use serde_json::{Value, json};
    use tracing::subscriber::with_default;

    use super::*;

    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Lines {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Lines {
        fn parsed(&self) -> Vec<Value> {
            let text = String::from_utf8(self.0.lock().unwrap().clone()).unwrap();
            text.lines()
                .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
                .collect()
        }
    }

    /// The lines `emit` logs through this module's formatter, up to `level`.
    fn ours(level: tracing::Level, emit: impl FnOnce()) -> Vec<Value> {
        let lines = Lines::default();
        let writer = lines.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(level)
            .with_writer(move || writer.clone())
            .fmt_fields(JsonFields)
            .event_format(JsonLines)
            .finish();
        with_default(subscriber, emit);
        lines.parsed()
    }

    #[derive(Debug)]
    struct Tricky;

    impl fmt::Display for Tricky {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("quote \" backslash \\ newline \n tab \t bell \u{7} é ✓ 🚀")
        }
    }

    /// Every kind of field, nested spans, a span without fields, fields recorded later, and
    /// events outside any span.
    fn emit() {
        let text = "a \"quoted\"\\path\r\n\u{1}\u{1f} ünïcode";
        tracing::info!(
            n = 3u64,
            i = -4i64,
            big = u128::MAX,
            f = 1.5f64,
            nan = f64::NAN,
            ok = true,
            s = text,
            log.kept = 7u64,
            "outside"
        );
        let outer = tracing::info_span!("admission", uid = "805e", tricky = %Tricky);
        outer.in_scope(|| {
            tracing::warn!(error = %Tricky, debug = ?vec!["a", "b\""], "inside {}", 42);
            let empty = tracing::info_span!("empty");
            empty.in_scope(|| tracing::error!("in an empty span"));
            let late = tracing::info_span!("late", a = 1u64, b = tracing::field::Empty);
            late.record("b", "later");
            late.in_scope(|| tracing::info!(target: "custom::target", "with a later field"));
        });
        tracing::debug!("filtered out");
    }

    fn stamp(secs: u64, nanos: u32) -> String {
        let mut out = String::new();
        timestamp(&mut Writer::new(&mut out), Duration::new(secs, nanos)).unwrap();
        out
    }

    #[test]
    fn timestamps_are_rfc3339_utc_with_microseconds() {
        assert_eq!(stamp(0, 0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(
            stamp(1_700_000_000, 123_456_789),
            "2023-11-14T22:13:20.123456Z"
        );
        // The cached second is replaced when the second changes, in either direction.
        assert_eq!(
            stamp(1_700_000_000, 999_999_999),
            "2023-11-14T22:13:20.999999Z"
        );
        assert_eq!(stamp(1_700_000_001, 5_000), "2023-11-14T22:13:21.000005Z");
        assert_eq!(stamp(951_782_400, 0), "2000-02-29T00:00:00.000000Z");
        assert_eq!(stamp(1_700_000_000, 0), "2023-11-14T22:13:20.000000Z");
        // Beyond what the calendar type holds: the epoch, not a panic or a broken line.
        assert_eq!(stamp(u64::MAX, 0), "1970-01-01T00:00:00.000000Z");
    }

    #[test]
    fn timestamps_agree_with_tracing_subscribers_clock() {
        use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
        let mut theirs = String::new();
        SystemTime
            .format_time(&mut Writer::new(&mut theirs))
            .unwrap();
        let ours = stamp(UNIX_EPOCH.elapsed().unwrap().as_secs(), 0);
        // Taken a moment apart: the same second, or the next one.
        let parse = |t: &str| {
            time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
                .unwrap()
                .unix_timestamp()
        };
        assert!(
            (0..=1).contains(&(parse(&ours) - parse(&theirs)).abs()),
            "{ours} {theirs}"
        );
        assert_eq!(ours.len(), theirs.len());
    }

    #[test]
    fn lines_are_json_with_the_values_as_given() {
        let out = ours(tracing::Level::INFO, emit);
        assert_eq!(out.len(), 4);
        assert_eq!(out[0]["message"], "outside");
        assert_eq!(out[0]["level"], "INFO");
        assert_eq!(out[0]["n"], 3);
        assert_eq!(out[0]["i"], -4);
        assert_eq!(out[0]["big"], u128::MAX.to_string());
        assert_eq!(out[0]["f"], 1.5);
        assert_eq!(out[0]["nan"], Value::Null);
        assert_eq!(out[0]["ok"], true);
        // Only records of the `log` crate lose their `log.*` fields.
        assert_eq!(out[0]["log.kept"], 7);
        assert_eq!(out[0]["s"], "a \"quoted\"\\path\r\n\u{1}\u{1f} ünïcode");
        assert!(out[0].get("span").is_none());
        assert_eq!(out[1]["error"], Tricky.to_string());
        assert_eq!(out[1]["debug"], format!("{:?}", vec!["a", "b\""]));
        assert_eq!(out[1]["message"], "inside 42");
        assert_eq!(
            out[1]["span"],
            json!({"uid": "805e", "tricky": Tricky.to_string(), "name": "admission"})
        );
        assert_eq!(out[2]["span"], json!({"name": "empty"}));
        assert_eq!(out[3]["target"], "custom::target");
        assert_eq!(
            out[3]["span"],
            json!({"a": 1, "b": "later", "name": "late"})
        );
        let timestamp = out[0]["timestamp"].as_str().unwrap();
        assert!(
            timestamp.len() == 27 && timestamp.ends_with('Z'),
            "{timestamp}"
        );
    }

    /// Log pipelines built for tracing-subscriber's JSON lines read these the same way.
    #[test]
    fn lines_have_the_shape_of_tracing_subscribers_json_format() {
        let mut ours = ours(tracing::Level::INFO, emit);
        let theirs = Lines::default();
        let writer = theirs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::INFO)
            .with_writer(move || writer.clone())
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .finish();
        with_default(subscriber, emit);
        let mut theirs = theirs.parsed();
        for line in ours.iter_mut().chain(theirs.iter_mut()) {
            line.as_object_mut().unwrap().remove("timestamp");
        }
        assert_eq!(ours, theirs);
    }

    #[test]
    fn records_of_the_log_crate_keep_their_target_and_no_log_fields() {
        let out = ours(tracing::Level::TRACE, || {
            // What tracing-log's `LogTracer` does with a `log::warn!` from a dependency.
            let record = log::Record::builder()
                .args(format_args!("from log"))
                .level(log::Level::Warn)
                .target("rustls::server")
                .module_path_static(Some("rustls::server"))
                .file_static(Some("server.rs"))
                .line(Some(7))
                .build();
            tracing_log::format_trace(&record).unwrap();
        });
        assert_eq!(
            out[0],
            json!({"timestamp": out[0]["timestamp"], "level": "WARN", "message": "from log", "target": "rustls::server"})
        );
    }
}
