//! Where log lines go: appended to a bounded buffer in memory, and written to the output by a
//! background thread in batches.
//!
//! Logging must never add latency to an admission, and the output can stall (a full pipe, a
//! slow log agent). tracing-appender's non-blocking writer meets that, but wakes its thread for
//! every line: a futex wake-up and a thread switch per admission, about 30 µs of CPU per request
//! at 2,000 req/s on a 2-core node (docs/PERFORMANCE.md). Here a line is a copy into the calling
//! thread's own buffer (its lock is only ever shared with the writer thread, so two workers
//! logging at once never wait for each other); the writer thread wakes on a timer or when a batch
//! is large, gathers the buffers, writes them in one go and flushes. Lines of one thread keep
//! their order; lines of different threads are ordered by batch (each carries its timestamp).
//! When the buffers hold their capacity, lines are dropped and counted, and a warning with the
//! count is logged once the output moves again.

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use thread_local::ThreadLocal;
use tracing_subscriber::fmt::MakeWriter;

/// How lines are batched.
#[derive(Clone, Copy, Debug)]
pub struct BatchOptions {
    /// Longest time a line waits in memory.
    pub interval: Duration,
    /// This many bytes waiting wake the writer thread before the interval is up.
    pub batch_bytes: usize,
    /// Bytes held at most while the output is not keeping up; further lines are dropped.
    pub capacity_bytes: usize,
}

impl Default for BatchOptions {
    fn default() -> Self {
        BatchOptions {
            interval: Duration::from_millis(20),
            batch_bytes: 64 * 1024,
            capacity_bytes: 1024 * 1024,
        }
    }
}

struct Shared {
    /// One buffer per thread that logs.
    buffers: ThreadLocal<Mutex<Vec<u8>>>,
    /// Bytes in all buffers.
    pending: AtomicUsize,
    /// Dropped since the last warning, and in all.
    dropped: AtomicU64,
    dropped_total: AtomicU64,
    closing: AtomicBool,
    /// Where the writer thread sleeps between batches.
    sleep: Mutex<()>,
    wake: Condvar,
    options: BatchOptions,
}

/// A panic while holding a lock leaves only bytes behind: keep logging.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The `MakeWriter` for the subscriber: cheap to clone, never blocks on the output.
#[derive(Clone)]
pub struct BatchedWriter {
    shared: Arc<Shared>,
}

/// Stops the writer thread when dropped, after it has written everything still buffered.
pub struct FlushGuard {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

/// Starts the writer thread for `output`.
pub fn batched<W: Write + Send + 'static>(
    output: W,
    options: BatchOptions,
) -> io::Result<(BatchedWriter, FlushGuard)> {
    let shared = Arc::new(Shared {
        buffers: ThreadLocal::new(),
        pending: AtomicUsize::new(0),
        dropped: AtomicU64::new(0),
        dropped_total: AtomicU64::new(0),
        closing: AtomicBool::new(false),
        sleep: Mutex::new(()),
        wake: Condvar::new(),
        options,
    });
    let thread = std::thread::Builder::new()
        .name("log-writer".into())
        .spawn({
            let shared = shared.clone();
            move || write_batches(&shared, output)
        })?;
    Ok((
        BatchedWriter {
            shared: shared.clone(),
        },
        FlushGuard {
            shared,
            thread: Some(thread),
        },
    ))
}

impl BatchedWriter {
    /// Lines dropped since start because the output did not keep up.
    pub fn dropped_total(&self) -> u64 {
        self.shared.dropped_total.load(Ordering::Relaxed)
    }
}

fn write_batches<W: Write>(shared: &Shared, mut output: W) {
    let mut batch = Vec::new();
    loop {
        let closing = shared.closing.load(Ordering::Acquire);
        if !closing && shared.pending.load(Ordering::Relaxed) < shared.options.batch_bytes {
            // A wake-up lost between the check and the wait costs at most one interval.
            let guard = lock(&shared.sleep);
            let _ = shared.wake.wait_timeout(guard, shared.options.interval);
        }
        for buffer in shared.buffers.iter() {
            let mut lines = lock(buffer);
            batch.extend_from_slice(&lines);
            lines.clear();
        }
        shared.pending.fetch_sub(batch.len(), Ordering::Relaxed);
        if !batch.is_empty() {
            // Nowhere to report a failing output but the output itself.
            let _ = output.write_all(&batch).and_then(|()| output.flush());
            batch.clear();
        }
        let dropped = shared.dropped.swap(0, Ordering::Relaxed);
        if dropped > 0 {
            tracing::warn!(
                dropped,
                "log output too slow: lines dropped to keep admissions fast"
            );
        }
        // The lines logged before closing began were all gathered above.
        if closing {
            return;
        }
    }
}

/// One line (the fmt layer writes each event whole).
pub struct Line<'a> {
    shared: &'a Shared,
}

impl Write for Line<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let shared = self.shared;
        let before = shared.pending.fetch_add(buf.len(), Ordering::Relaxed);
        if before + buf.len() > shared.options.capacity_bytes {
            shared.pending.fetch_sub(buf.len(), Ordering::Relaxed);
            shared.dropped.fetch_add(1, Ordering::Relaxed);
            shared.dropped_total.fetch_add(1, Ordering::Relaxed);
        } else {
            let buffer = shared.buffers.get_or(|| Mutex::new(Vec::new()));
            lock(buffer).extend_from_slice(buf);
            if before < shared.options.batch_bytes
                && before + buf.len() >= shared.options.batch_bytes
            {
                shared.wake.notify_one();
            }
        }
        // Accepted or dropped: never an error that the subscriber would print.
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for BatchedWriter {
    type Writer = Line<'a>;

    fn make_writer(&'a self) -> Line<'a> {
        Line {
            shared: &self.shared,
        }
    }
}

impl Drop for FlushGuard {
    fn drop(&mut self) {
        self.shared.closing.store(true, Ordering::Release);
        self.shared.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
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
        let (writer, guard) = batched(
            kept.clone(),
            BatchOptions {
                interval: Duration::from_millis(5),
                batch_bytes: 1024,
                capacity_bytes: 16 * 1024 * 1024,
            },
        )
        .unwrap();
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let writer = writer.clone();
                std::thread::spawn(move || {
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
        assert_eq!(writer.dropped_total(), 0);
    }

    #[test]
    fn lines_wait_at_most_about_the_interval() {
        let kept = Kept::default();
        let (writer, _guard) = batched(
            kept.clone(),
            BatchOptions {
                interval: Duration::from_millis(10),
                ..BatchOptions::default()
            },
        )
        .unwrap();
        writer.make_writer().write_all(b"one line\n").unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while kept.0.lock().unwrap().is_empty() {
            assert!(Instant::now() < deadline, "the line was never written");
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(&*kept.0.lock().unwrap(), b"one line\n");
    }

    /// An output that blocks until released, like a pipe nobody reads.
    struct Stalled {
        release: mpsc::Receiver<()>,
        kept: Kept,
        waited: bool,
    }

    impl Write for Stalled {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if !self.waited {
                self.release.recv().unwrap();
                self.waited = true;
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
        let kept = Kept::default();
        let (writer, guard) = batched(
            Stalled {
                release: wait,
                kept: kept.clone(),
                waited: false,
            },
            BatchOptions {
                interval: Duration::from_millis(1),
                batch_bytes: 100,
                capacity_bytes: 1000,
            },
        )
        .unwrap();
        // The first batch goes to the output, which stalls on it.
        writer.make_writer().write_all(b"first\n").unwrap();
        std::thread::sleep(Duration::from_millis(50));
        let start = Instant::now();
        let line = [b'y'; 99];
        for _ in 0..1000 {
            let mut l = line.to_vec();
            l.push(b'\n');
            writer.make_writer().write_all(&l).unwrap();
        }
        // A thousand lines against a stalled output all return (a blocking writer would hang
        // here until the release below, which never comes before the loop ends).
        assert!(start.elapsed() < Duration::from_secs(10));
        assert_eq!(writer.dropped_total(), 990, "10 lines fit in 1000 bytes");
        release.send(()).unwrap();
        drop(guard);
        let out = kept.0.lock().unwrap().clone();
        assert_eq!(out.len(), 6 + 10 * 100);
    }
}
