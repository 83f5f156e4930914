//! Processes the tests start: with default signal dispositions whatever the test process
//! inherited, and waited for with a deadline, so that a test fails instead of hanging.
//!
//! A signal ignored by a process stays ignored across fork and exec, and a POSIX shell cannot
//! even `trap` a signal that was ignored when it started. `make test` run in the background
//! from a script (`nohup`, `&`, `trap '' QUIT`) thus hands SIGQUIT-ignored to every child the
//! tests start; the nginx stand-in of tests/prestop_helper.rs then never quit and its test
//! waited forever. std resets the signal mask and SIGPIPE in children, not the others.

use std::io::{Read, Write};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// How long a short command (the CLI, a hook) may take before its test fails.
pub const SHORT: Duration = Duration::from_secs(60);

/// `program`, to be started with every signal at its default disposition.
pub fn command(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut cmd = Command::new(program);
    podgrace_test_process::default_dispositions(&mut cmd);
    cmd
}

/// Makes `cmd` start with `signals` set to `disposition` (`libc::SIG_DFL` or `libc::SIG_IGN`),
/// as a parent with those dispositions would hand them down.
pub fn with_dispositions(
    cmd: &mut Command,
    disposition: libc::sighandler_t,
    signals: &'static [libc::c_int],
) {
    podgrace_test_process::with_dispositions(cmd, disposition, signals);
}

/// Kills (SIGKILL) and reaps the child when dropped: a failed assertion leaves nothing running.
pub struct Guard(pub Child);

impl Guard {
    /// Starts `cmd`.
    pub fn spawn(cmd: &mut Command) -> Guard {
        Guard(
            cmd.spawn()
                .unwrap_or_else(|e| panic!("starting {cmd:?}: {e}")),
        )
    }

    /// The child's pid.
    pub fn id(&self) -> u32 {
        self.0.id()
    }

    /// Waits for the child to exit, at most `limit`; kills it and fails the test after that.
    pub fn wait_within(&mut self, limit: Duration, what: &str) -> ExitStatus {
        wait_within(&mut self.0, limit, what)
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

/// Waits for `child` to exit, at most `limit`; kills it and fails the test after that.
pub fn wait_within(child: &mut Child, limit: Duration, what: &str) -> ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return status,
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(10)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{what}: still running after {limit:?}, killed");
            }
            Err(e) => panic!("{what}: waiting: {e}"),
        }
    }
}

/// Reads `pipe` to its end on a thread; the receiver gets the bytes.
pub fn drain(mut pipe: impl Read + Send + 'static) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = pipe.read_to_end(&mut buf);
        let _ = tx.send(buf);
    });
    rx
}

/// The rest of a pipe drained by [`drain`], once its writer has exited; fails the test if it
/// is still held open (by a grandchild) `limit` later.
pub fn drained(rx: &mpsc::Receiver<Vec<u8>>, limit: Duration, what: &str) -> Vec<u8> {
    rx.recv_timeout(limit)
        .unwrap_or_else(|_| panic!("{what}: output still open {limit:?} after the exit"))
}

/// Runs `cmd` to completion like [`Command::output`], with `input` on its standard input, and
/// fails the test (killing it) if it takes longer than `limit`.
pub fn output_within(cmd: &mut Command, input: Option<&[u8]>, limit: Duration) -> Output {
    let what = format!("{cmd:?}");
    cmd.stdin(if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut guard = Guard::spawn(cmd);
    let stdout = drain(guard.0.stdout.take().expect("piped"));
    let stderr = drain(guard.0.stderr.take().expect("piped"));
    if let (Some(input), Some(mut stdin)) = (input, guard.0.stdin.take()) {
        let input = input.to_vec();
        // A thread, so that a child that does not read cannot block the test on a full pipe.
        thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
    }
    let status = guard.wait_within(limit, &what);
    Output {
        status,
        stdout: drained(&stdout, Duration::from_secs(5), &what),
        stderr: drained(&stderr, Duration::from_secs(5), &what),
    }
}
