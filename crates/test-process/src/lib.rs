//! How podgrace's tests and benchmarks set up the processes and threads they start: signal
//! dispositions, network namespaces, credentials, a seccomp filter, resource limits. These need
//! `unsafe` (`pre_exec` closures run between fork and exec, raw system calls); they live here so
//! that podgrace and its test files can forbid it. A dev-dependency only.
//!
//! Every `pre_exec` closure makes only async-signal-safe system calls and touches nothing else.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::process::Command;

pub use libc::{SIG_DFL, SIG_IGN, c_int, sighandler_t};

/// Makes `cmd` start with every standard signal at its default disposition, whatever this
/// process has (an ignored signal stays ignored across fork and exec).
pub fn default_dispositions(cmd: &mut Command) {
    // SAFETY: between fork and exec only signal(2), async-signal-safe, is called.
    unsafe {
        cmd.pre_exec(|| {
            // Every standard signal; SIGKILL and SIGSTOP refuse (EINVAL), and are never ignored.
            for s in 1..32 {
                libc::signal(s, libc::SIG_DFL);
            }
            Ok(())
        });
    }
}

/// Makes `cmd` start with `signals` set to `disposition` ([`SIG_DFL`] or [`SIG_IGN`]), as a
/// parent with those dispositions would hand them down.
pub fn with_dispositions(cmd: &mut Command, disposition: sighandler_t, signals: &'static [c_int]) {
    // SAFETY: between fork and exec only signal(2), async-signal-safe, is called.
    unsafe {
        cmd.pre_exec(move || {
            for &s in signals {
                libc::signal(s, disposition);
            }
            Ok(())
        });
    }
}

/// Makes `cmd` start inside the network namespace `netns` (a `/run/netns/NAME` file), as user
/// and group `id` with no supplementary groups, no capabilities and no way to gain any (what
/// Pod Security `restricted` leaves a container).
pub fn in_netns_unprivileged(cmd: &mut Command, netns: File, id: u32) {
    // SAFETY: between fork and exec only async-signal-safe system calls are made, on a file
    // descriptor the closure owns.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setns(netns.as_raw_fd(), libc::CLONE_NEWNET) != 0
                || libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
                || libc::setgroups(0, std::ptr::null()) != 0
                || libc::setresgid(id, id, id) != 0
                // Leaving uid 0 clears every capability.
                || libc::setresuid(id, id, id) != 0
            {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Makes `cmd` unable to open netlink sockets, as a stricter seccomp profile than a container
/// runtime's default would (`socket(AF_NETLINK, …)` fails with EPERM).
pub fn deny_netlink(cmd: &mut Command) {
    // A classic BPF seccomp program: on x86-64, socket(2) with a first argument of AF_NETLINK
    // returns EPERM; everything else is allowed.
    const LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
    const JEQ_K: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
    const RET_K: u16 = 0x06; // BPF_RET | BPF_K
    const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
    const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;
    const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;
    let f = |code, jt, jf, k| libc::sock_filter { code, jt, jf, k };
    let program = vec![
        f(LD_W_ABS, 0, 0, 4), // arch
        f(JEQ_K, 0, 4, AUDIT_ARCH_X86_64),
        f(LD_W_ABS, 0, 0, 0), // syscall number
        f(JEQ_K, 0, 2, libc::SYS_socket as u32),
        f(LD_W_ABS, 0, 0, 16), // args[0], low half
        f(JEQ_K, 1, 0, libc::AF_NETLINK as u32),
        f(RET_K, 0, 0, SECCOMP_RET_ALLOW),
        f(RET_K, 0, 0, SECCOMP_RET_ERRNO | libc::EPERM as u32),
    ];
    let program: &'static [libc::sock_filter] = Box::leak(program.into_boxed_slice());
    // SAFETY: prctl with a filter that lives for the whole process; async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            let prog = libc::sock_fprog {
                len: program.len() as u16,
                filter: program.as_ptr() as *mut _,
            };
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
                || libc::prctl(
                    libc::PR_SET_SECCOMP,
                    libc::SECCOMP_MODE_FILTER,
                    &prog as *const libc::sock_fprog,
                ) != 0
            {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Moves the calling thread (only it) into the network namespace `netns`.
pub fn enter_netns(netns: &File) -> io::Result<()> {
    // SAFETY: setns(2) on a namespace file held open; it affects only this thread.
    match unsafe { libc::setns(netns.as_raw_fd(), libc::CLONE_NEWNET) } {
        0 => Ok(()),
        _ => Err(io::Error::last_os_error()),
    }
}

/// Whether this process runs as root.
pub fn is_root() -> bool {
    // SAFETY: geteuid(2) cannot fail and touches no memory.
    unsafe { libc::geteuid() == 0 }
}

/// Sends `signal` to process `pid` (a child not reaped yet).
pub fn kill(pid: u32, signal: c_int) -> io::Result<()> {
    let pid = libc::pid_t::try_from(pid).map_err(io::Error::other)?;
    // SAFETY: kill(2) touches no memory.
    match unsafe { libc::kill(pid, signal) } {
        0 => Ok(()),
        _ => Err(io::Error::last_os_error()),
    }
}

/// Raises this process's open-file limit to its hard limit (thousands of short connections a
/// minute, on both ends, in one process).
pub fn raise_open_files_limit() -> io::Result<()> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit on a local struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return Err(io::Error::last_os_error());
        }
        limit.rlim_cur = limit.rlim_max;
        if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Re-exported signal numbers the tests name.
pub mod signal {
    pub use libc::{SIGCHLD, SIGHUP, SIGINT, SIGKILL, SIGQUIT, SIGTERM};
}
