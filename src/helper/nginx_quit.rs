//! Graceful nginx shutdown without a shell: SIGQUIT to the master (`nginx -s quit` does exactly
//! this through the pid file), then wait for it to exit, bounded, so that the kubelet's SIGTERM
//! (a fast shutdown for nginx) comes only after in-flight requests are done.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process, test_kill_process};

/// Pid files of the common nginx images (official, alpine, unprivileged).
pub const PID_FILES: [&str; 3] = ["/var/run/nginx.pid", "/run/nginx.pid", "/tmp/nginx.pid"];

/// The quit step.
#[derive(Clone, Debug)]
pub struct Quit {
    /// Pid file to read; the usual locations, then PID 1, when `None`.
    pub pid_file: Option<PathBuf>,
    /// Longest wait for the master to exit.
    pub wait: Duration,
}

/// An exited process its parent has not reaped yet still answers signals; `/proc` tells.
fn is_zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            stat.rsplit_once(") ")
                .map(|(_, rest)| rest.starts_with('Z'))
        })
        .unwrap_or(false)
}

impl Quit {
    fn master(&self) -> Result<(i32, String), String> {
        let candidates: Vec<PathBuf> = match &self.pid_file {
            Some(p) => vec![p.clone()],
            None => PID_FILES.iter().map(PathBuf::from).collect(),
        };
        for path in &candidates {
            if let Ok(text) = std::fs::read_to_string(path) {
                let pid = text
                    .trim()
                    .parse::<i32>()
                    .map_err(|_| format!("{} does not hold a pid: {text:?}", path.display()))?;
                return Ok((pid, path.display().to_string()));
            }
        }
        if self.pid_file.is_some() {
            return Err(format!("cannot read {}", candidates[0].display()));
        }
        // The official images run the master as PID 1 (the entrypoint execs nginx).
        Ok((1, "PID 1".to_owned()))
    }

    /// Signals the master and waits for it to exit.
    pub async fn run(&self) -> Result<String, String> {
        let (raw, source) = self.master()?;
        let pid = Pid::from_raw(raw).ok_or_else(|| format!("invalid pid {raw} from {source}"))?;
        kill_process(pid, Signal::QUIT)
            .map_err(|e| format!("SIGQUIT to pid {raw} ({source}): {e}"))?;
        let start = Instant::now();
        while test_kill_process(pid).is_ok() && !is_zombie(raw) {
            if start.elapsed() >= self.wait {
                return Err(format!(
                    "nginx (pid {raw}) still running after {:?}",
                    self.wait
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(format!(
            "nginx (pid {raw}, from {source}) quit gracefully in {:.1?}",
            start.elapsed()
        ))
    }
}
