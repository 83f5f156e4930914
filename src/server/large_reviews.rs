//! Where reviews over 64 KiB are decoded and answered: on one thread of their own, at a lower
//! scheduling priority (nice 10). Decoding megabytes takes milliseconds; on the async workers it
//! would hold up the small reviews queued behind it, and beside them it would take their CPU
//! whenever both want it. Small reviews never come here. Large ones take turns, which the body
//! budget's large lane bounds anyway.

use std::panic::AssertUnwindSafe;
use std::sync::OnceLock;
use std::sync::mpsc;

type Job = Box<dyn FnOnce() + Send>;

/// The thread's scheduling priority: its CPU share is about a tenth of a default thread's when
/// both are busy, all of the CPU when the workers are idle.
const NICE: i32 = 10;

/// Runs `handle` on the large-review thread and returns what it returns (or re-raises its
/// panic here).
pub async fn run<R: Send + 'static>(handle: impl FnOnce() -> R + Send + 'static) -> R {
    let Some(queue) = queue() else {
        // No thread could be started: the blocking pool, at the default priority.
        let answer = tokio::task::spawn_blocking(handle).await;
        super::memory::large_review_done();
        return answer.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
    };
    let (tx, rx) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move || {
        let _ = tx.send(std::panic::catch_unwind(AssertUnwindSafe(handle)));
    });
    if queue.send(job).is_err() {
        unreachable!("the large-review thread runs as long as the process");
    }
    match rx.await {
        Ok(Ok(answer)) => answer,
        Ok(Err(panic)) => std::panic::resume_unwind(panic),
        // Every job sends its answer, panics included.
        Err(_) => unreachable!("the large-review thread dropped a job"),
    }
}

fn queue() -> Option<&'static mpsc::Sender<Job>> {
    static QUEUE: OnceLock<Option<mpsc::Sender<Job>>> = OnceLock::new();
    QUEUE
        .get_or_init(|| {
            let (tx, rx) = mpsc::channel::<Job>();
            let started = std::thread::Builder::new()
                .name("podgrace-large".into())
                .spawn(move || {
                    // Linux keeps the nice value per thread: this one alone.
                    if let Err(e) = rustix::process::setpriority_process(None, NICE) {
                        tracing::debug!(error = %e, "large reviews at the default priority");
                    }
                    for job in rx {
                        job();
                        super::memory::large_review_done();
                        super::memory::collect_if_due();
                    }
                });
            match started {
                Ok(_) => Some(tx),
                Err(e) => {
                    tracing::warn!(error = %e, "no thread for large reviews; using the blocking pool");
                    None
                }
            }
        })
        .as_ref()
}
