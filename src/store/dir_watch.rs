//! Watching a directory for changes, the way mounted Secrets and ConfigMaps change: the kubelet
//! writes a new timestamped directory and atomically swaps the `..data` symlink, so the files'
//! own paths never see a write event (cilium#13636). Watching the *directory* catches the swap; a
//! periodic re-check covers file systems without inotify. The callback decides whether anything
//! really changed.

use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Keeps a watch alive; dropping it stops the watch.
pub struct DirWatch {
    _watcher: Option<RecommendedWatcher>,
    task: JoinHandle<()>,
}

impl Drop for DirWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Calls `on_change` (on the tokio runtime) shortly after anything in `dir` changes, and every
/// `poll`. Bursts of events are coalesced into one call. Must be called inside a tokio runtime.
pub fn watch_dir<F>(dir: &Path, poll: Duration, on_change: F) -> DirWatch
where
    F: Fn() + Send + 'static,
{
    let (tx, mut rx) = mpsc::channel::<()>(1);
    let watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        if res.is_ok() {
            // A full channel already has a wake-up pending.
            let _ = tx.try_send(());
        }
    })
    .and_then(|mut w| w.watch(dir, RecursiveMode::NonRecursive).map(|()| w));
    let watcher = match watcher {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot watch directory; polling only");
            None
        }
    };
    let dir: PathBuf = dir.to_owned();
    let task = tokio::spawn(async move {
        let mut ticker = tokio::time::interval(poll);
        ticker.tick().await;
        loop {
            tokio::select! {
                event = rx.recv() => {
                    if event.is_none() {
                        // The watcher is gone; keep polling.
                        ticker.tick().await;
                    } else {
                        // Let the writer finish its sequence of renames before reading.
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        while rx.try_recv().is_ok() {}
                    }
                }
                _ = ticker.tick() => {}
            }
            tracing::trace!(dir = %dir.display(), "checking for changes");
            on_change();
        }
    });
    DirWatch {
        _watcher: watcher,
        task,
    }
}
