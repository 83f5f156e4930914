//! Where log lines go: a bounded queue in memory, drained to the output by a background thread
//! on a timer.
//!
//! Logging must never add latency to an admission, and the output can stall (a full pipe, a
//! slow log agent). tracing-appender's non-blocking writer meets that, but its thread sleeps in
//! the queue's `recv`, so every line wakes it: a futex wake-up and a thread switch per
//! admission, more than one context switch per request at 2,000 req/s on a 2-core node
//! (docs/PERFORMANCE.md). Here the thread sleeps on a timer instead and drains the queue when it
//! wakes, so a line costs the caller a copy and a lock-free push and nothing else. Lines keep
//! their order. The queue holds far more than an interval's worth of lines at any admission rate
//! a webhook can serve, so it fills only when the output stalls; then lines are dropped and
//! counted (`podgrace_log_lines_dropped_total`), and a warning with the count is logged once the
//! output moves again.

use std::cell::RefCell;
use std::io::{self, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use tracing_subscriber::fmt::MakeWriter;

/// How the queue is drained.
#[derive(Clone, Copy, Debug)]
pub struct QueueOptions {
    /// Longest time a line waits in the queue while the output keeps up.
    pub interval: Duration,
    /// Lines held at most; further lines are dropped until the output catches up.
    pub capacity: usize,
}

impl Default for QueueOptions {
    fn default() -> Self {
        QueueOptions {
            // 100 wake-ups a second whatever the load; at 30k lines/s a drain is ~300 lines.
            interval: Duration::from_millis(10),
            capacity: 4096,
        }
    }
}

thread_local! {
    /// On the writer thread, what it logs itself (its warnings): that must not wait in, or be
    /// dropped from, the queue it is draining. `None` on every other thread.
    static OWN_LINES: RefCell<Option<Vec<u8>>> = const { RefCell::new(None) };
}

struct Shared {
    /// Lines dropped in all: `podgrace_log_lines_dropped_total`.
    dropped_total: Counter,
    closing: AtomicBool,
}

/// The `MakeWriter` for the subscriber: cheap to clone, never blocks on the output.
#[derive(Clone)]
pub struct QueuedWriter {
    lines: SyncSender<Vec<u8>>,
    shared: Arc<Shared>,
}

/// Stops the writer thread when dropped, after it has written every line queued before.
pub struct FlushGuard {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

/// Starts the writer thread for `output`; lines dropped are counted in `dropped_total`.
pub fn queued<W: Write + Send + 'static>(
    output: W,
    options: QueueOptions,
    dropped_total: Counter,
) -> io::Result<(QueuedWriter, FlushGuard)> {
    let (lines, queue) = mpsc::sync_channel(options.capacity);
    let shared = Arc::new(Shared {
        dropped_total,
        closing: AtomicBool::new(false),
    });
    let thread = thread::Builder::new().name("log-writer".into()).spawn({
        let shared = shared.clone();
        move || write_lines(&shared, &queue, options.interval, output)
    })?;
    Ok((
        QueuedWriter {
            lines,
            shared: shared.clone(),
        },
        FlushGuard {
            shared,
            thread: Some(thread),
        },
    ))
}

fn write_lines<W: Write>(
    shared: &Shared,
    queue: &Receiver<Vec<u8>>,
    interval: Duration,
    output: W,
) {
    OWN_LINES.set(Some(Vec::new()));
    // One write(2) per drain rather than one per line.
    let mut output = io::BufWriter::with_capacity(64 * 1024, output);
    // Dropped lines already reported in a warning.
    let mut reported = 0;
    loop {
        // Read before draining: whatever was queued before closing began is written below.
        let closing = shared.closing.load(Ordering::Acquire);
        if !closing {
            // The guard's unpark, if it comes before the park, makes it return at once.
            thread::park_timeout(interval);
        }
        // Nowhere to report a failing output but the output itself: keep draining, so that
        // callers are never held up by it.
        for line in queue.try_iter() {
            let _ = output.write_all(&line);
        }
        let _ = output.flush();
        // Reported once the output has moved again. The queue may be full again by now, so the
        // warning comes back to this thread (see `Line::write`) and is written right here.
        let dropped = shared.dropped_total.get() - reported;
        if dropped > 0 {
            reported += dropped;
            tracing::warn!(
                dropped,
                "log output too slow: lines dropped to keep admissions fast"
            );
            let own = OWN_LINES.with_borrow_mut(|own| own.as_mut().map(std::mem::take));
            let _ = output
                .write_all(&own.unwrap_or_default())
                .and_then(|()| output.flush());
        }
        if closing {
            return;
        }
    }
}

/// One line (the fmt layer writes each event whole, with one `write`).
pub struct Line<'a> {
    writer: &'a QueuedWriter,
}

impl Write for Line<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let own = OWN_LINES.with_borrow_mut(|own| own.as_mut().map(|o| o.extend_from_slice(buf)));
        if own.is_some() {
            return Ok(buf.len());
        }
        if let Err(TrySendError::Full(_)) = self.writer.lines.try_send(buf.to_vec()) {
            self.writer.shared.dropped_total.inc();
        }
        // Disconnected: the writer thread has stopped, exit is under way; nothing can take it.
        // Accepted or dropped: never an error that the subscriber would print.
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for QueuedWriter {
    type Writer = Line<'a>;

    fn make_writer(&'a self) -> Line<'a> {
        Line { writer: self }
    }
}

impl Drop for FlushGuard {
    fn drop(&mut self) {
        self.shared.closing.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {

    use std::sync::Mutex;
    use std::time::Instant;

    use super::*;

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

    #[test]
    fn lines_from_many_threads_arrive_whole_and_in_order_and_all_are_flushed() {
        let kept = Kept::default();
        let dropped = Counter::default();
        let (writer, guard) = queued(
            kept.clone(),
            QueueOptions {
                interval: Duration::from_millis(2),
                capacity: 1 << 16,
            },
            dropped.clone(),
        )
        .unwrap();
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let writer = writer.clone();
                thread::spawn(move || {
                    for i in 0..5000 {
                        let line = format!("thread {t} line {i} {}\n", "x".repeat(i % 50));
                        writer.make_writer().write_all(line.as_bytes()).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        drop(guard);
        let out = String::from_utf8(kept.0.lock().unwrap().clone()).unwrap();
        let mut next = [0usize; 4];
        for line in out.lines() {
            let words: Vec<&str> = line.split(' ').collect();
            let (t, i): (usize, usize) = (words[1].parse().unwrap(), words[3].parse().unwrap());
            assert_eq!(i, next[t], "thread {t} out of order");
            assert_eq!(words[4].len(), i % 50, "torn line {line:?}");
            next[t] += 1;
        }
        assert_eq!(next, [5000; 4]);
        assert_eq!(dropped.get(), 0);
    }

    #[test]
    fn a_lone_line_is_written_on_the_timer() {
        let kept = Kept::default();
        let (writer, _guard) = queued(
            kept.clone(),
            QueueOptions {
                interval: Duration::from_millis(10),
                ..QueueOptions::default()
            },
            Counter::default(),
        )
        .unwrap();
        writer.make_writer().write_all(b"one line\n").unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while kept.0.lock().unwrap().is_empty() {
            assert!(Instant::now() < deadline, "the line was never written");
            thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(&*kept.0.lock().unwrap(), b"one line\n");
    }

    /// An output that blocks until released, like a pipe nobody reads.
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
    fn a_stalled_output_costs_lines_never_a_blocked_caller_nor_unbounded_memory() {
        let (release, wait) = mpsc::channel();
        let (entered, stalled) = mpsc::channel();
        let kept = Kept::default();
        let dropped = Counter::default();
        let (writer, guard) = queued(
            Stalled {
                entered,
                release: wait,
                kept: kept.clone(),
                waited: false,
            },
            QueueOptions {
                interval: Duration::from_millis(1),
                capacity: 10,
            },
            dropped.clone(),
        )
        .unwrap();
        // The first line goes to the output, which stalls on it.
        writer.make_writer().write_all(b"first\n").unwrap();
        stalled
            .recv_timeout(Duration::from_secs(10))
            .expect("the first line was never written");
        let mut line = vec![b'y'; 99];
        line.push(b'\n');
        // A thousand lines against a stalled output all return (a blocking writer would hang
        // here: the release below comes only after the loop).
        for _ in 0..1000 {
            writer.make_writer().write_all(&line).unwrap();
        }
        assert_eq!(dropped.get(), 990, "the queue holds 10 lines");
        release.send(()).unwrap();
        drop(guard);
        let out = String::from_utf8(kept.0.lock().unwrap().clone()).unwrap();
        let mut lines = out.lines();
        assert_eq!(lines.next(), Some("first"));
        assert_eq!(
            lines.by_ref().take(10).filter(|l| l.len() == 99).count(),
            10
        );
        // The drop was reported once the output moved (the warning goes to the global
        // subscriber, absent in this test); nothing else was written.
        assert_eq!(lines.next(), None);
    }
}
