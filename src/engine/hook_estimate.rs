//! How long a user's own preStop hook runs, so that the grace period covers it (podgrace keeps a
//! user's hook by default, and a kept hook that outlives the grace period is SIGKILLed with the
//! app mid-shutdown).
//!
//! The estimate is an upper bound read from the hook where it can be: the native `sleep`
//! handler; in an exec argv or a `sh -c` script, `sleep N`, `timeout N cmd`, curl's
//! `-m/--max-time` (times `--retry`), wget's `-T/--timeout` (times `-t/--tries`), summed over
//! `;`, `&&` and `||` sequences; instant commands (`nginx -s quit`, `kill`, `echo`, …) count 0.
//! What cannot be read (an opaque script, a loop, an `httpGet` or `tcpSocket` handler, curl
//! without `-m`) counts the policy's allowance once; the pod can state the exact value with the
//! `podgrace.io/prestop-seconds` annotation.

use k8s_openapi::api::core::v1::LifecycleHandler;

use super::shell;

/// Where an estimate comes from (shown in the grace arithmetic).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EstimateBasis {
    /// The native `sleep` handler.
    NativeSleep,
    /// Every command of the hook was read.
    Read,
    /// Some commands were read; the rest counted the policy's allowance.
    ReadAndAllowance,
    /// Nothing could be read: the policy's allowance (`preStop.unknownHookSeconds`).
    Allowance,
    /// The pod's `podgrace.io/prestop-seconds` annotation.
    Annotation,
}

impl EstimateBasis {
    /// Short text for the record and warnings.
    pub fn as_str(self) -> &'static str {
        match self {
            EstimateBasis::NativeSleep => "sleep",
            EstimateBasis::Read => "read from hook",
            EstimateBasis::ReadAndAllowance => "read + allowance",
            EstimateBasis::Allowance => "allowance",
            EstimateBasis::Annotation => "annotation",
        }
    }
}

/// A kept hook's duration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Estimate {
    /// Seconds, an upper bound.
    pub seconds: u32,
    /// How it was found.
    pub source: EstimateBasis,
}

/// Estimates `hook`; `allowance` is counted for what cannot be read, `declared` (from the pod's
/// annotation) wins over everything.
pub fn estimate(hook: &LifecycleHandler, allowance: u32, declared: Option<u32>) -> Estimate {
    if let Some(seconds) = declared {
        return Estimate {
            seconds,
            source: EstimateBasis::Annotation,
        };
    }
    if let Some(s) = &hook.sleep {
        return Estimate {
            seconds: u32::try_from(s.seconds.max(0)).unwrap_or(u32::MAX),
            source: EstimateBasis::NativeSleep,
        };
    }
    let Some(argv) = hook.exec.as_ref().and_then(|e| e.command.as_deref()) else {
        // httpGet, tcpSocket, or nothing readable.
        return unread(allowance);
    };
    let read = match shell::dash_c_script(argv) {
        Some(script) => read_script(script),
        None if argv.first().is_some_and(|p| shell::is_shell(p)) => Read::default().unknown(),
        None => read_command(argv),
    };
    match (read.unknown, read.seconds) {
        (false, seconds) => Estimate {
            seconds,
            source: EstimateBasis::Read,
        },
        (true, 0) => unread(allowance),
        (true, seconds) => Estimate {
            seconds: seconds.saturating_add(allowance),
            source: EstimateBasis::ReadAndAllowance,
        },
    }
}

fn unread(allowance: u32) -> Estimate {
    Estimate {
        seconds: allowance,
        source: EstimateBasis::Allowance,
    }
}

/// What reading found: the sum of the bounded commands, and whether anything was unbounded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Read {
    seconds: u32,
    unknown: bool,
}

impl Read {
    fn add(mut self, other: Read) -> Read {
        self.seconds = self.seconds.saturating_add(other.seconds);
        self.unknown |= other.unknown;
        self
    }

    fn unknown(mut self) -> Read {
        self.unknown = true;
        self
    }

    fn known(seconds: u32) -> Read {
        Read {
            seconds,
            unknown: false,
        }
    }
}

/// Reads a `-c` script: simple commands separated by `;`, `&&`, `||`, `|`, `&` or newlines.
/// Compound commands (loops, conditionals, functions, subshells) cannot be bounded.
fn read_script(script: &str) -> Read {
    const COMPOUND: [&str; 9] = [
        "while", "until", "for", "if", "case", "select", "function", "{", "(",
    ];
    let mut total = Read::default();
    for command in script.split(['\n', ';', '&', '|']) {
        let words = split_words(command);
        if words.is_empty() {
            continue;
        }
        if COMPOUND.contains(&words[0].as_str())
            || words[0].starts_with('(')
            || words[0].ends_with("()")
        {
            return total.unknown();
        }
        total = total.add(read_command(&words));
    }
    total
}

/// Splits one simple command into words, honouring single and double quotes (enough to read
/// numbers and flags; expansions are left as they are).
fn split_words(command: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    for c in command.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            (None, c) => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

/// Commands that return at once.
const INSTANT: [&str; 16] = [
    "true", ":", "echo", "printf", "kill", "pkill", "rm", "touch", "cd", "export", "set", "exit",
    "test", "[", "date", "logger",
];

/// Reads one simple command given as words.
fn read_command<S: AsRef<str>>(words: &[S]) -> Read {
    let mut words: Vec<&str> = words.iter().map(AsRef::as_ref).collect();
    // Prefixes that run the rest: assignments, `exec`, `command`, `nohup`, `env`.
    while let Some(first) = words.first() {
        let assignment = first
            .split_once('=')
            .is_some_and(|(name, _)| !name.is_empty() && !name.starts_with('-'));
        if assignment || matches!(*first, "exec" | "command" | "nohup" | "env") {
            words.remove(0);
        } else {
            break;
        }
    }
    // `env sh -c '…'`: the shell's script, read like any other.
    if let Some(script) = shell::dash_c_script(&words) {
        return read_script(script);
    }
    let Some((program, args)) = words.split_first() else {
        return Read::default();
    };
    match program.rsplit('/').next().unwrap_or(program) {
        "sleep" => sleep_args(args),
        "timeout" => timeout_args(args),
        "curl" => curl_args(args),
        "wget" => wget_args(args),
        "nginx" if args.contains(&"-s") => Read::default(),
        name if INSTANT.contains(&name) => Read::default(),
        _ => Read::default().unknown(),
    }
}

/// `sleep 5`, `sleep 1m 30s` (GNU sums its operands); `infinity` is unbounded.
fn sleep_args(args: &[&str]) -> Read {
    if args.is_empty() {
        return Read::default().unknown();
    }
    args.iter()
        .fold(Read::default(), |acc, a| match duration(a) {
            Some(s) => acc.add(Read::known(s)),
            None => acc.unknown(),
        })
}

/// `timeout [-s SIG] [-k KILL] N cmd`: at most N (+ KILL) whatever the command.
fn timeout_args(args: &[&str]) -> Read {
    let mut kill_after = 0;
    let mut i = 0;
    while i < args.len() {
        let a = args[i];
        match a {
            "-s" | "--signal" => i += 2,
            "-k" | "--kill-after" => {
                kill_after = args.get(i + 1).and_then(|v| duration(v)).unwrap_or(0);
                i += 2;
            }
            _ if a.starts_with("--kill-after=") => {
                kill_after = duration(&a["--kill-after=".len()..]).unwrap_or(0);
                i += 1;
            }
            _ if a.starts_with("-k") => {
                kill_after = duration(&a[2..]).unwrap_or(0);
                i += 1;
            }
            _ if a.starts_with('-') => i += 1,
            _ => {
                return match duration(a) {
                    Some(s) => Read::known(s.saturating_add(kill_after)),
                    None => Read::default().unknown(),
                };
            }
        }
    }
    Read::default().unknown()
}

/// The value of `-X N`, `-XN`, `--long N` or `--long=N` (`short` empty: long form only).
fn flag_value<'a>(args: &[&'a str], short: &str, long: &str) -> Option<&'a str> {
    let mut found = None;
    for (i, a) in args.iter().enumerate() {
        if (!short.is_empty() && *a == short) || *a == long {
            found = args.get(i + 1).copied();
        } else if let Some(v) = a.strip_prefix(&format!("{long}=")) {
            found = Some(v);
        } else if !short.is_empty()
            && !a.starts_with("--")
            && let Some(v) = a.strip_prefix(short).filter(|v| !v.is_empty())
        {
            found = Some(v);
        }
    }
    found
}

/// curl: `-m/--max-time` bounds each attempt; `--retry N` adds attempts.
fn curl_args(args: &[&str]) -> Read {
    let Some(max) = flag_value(args, "-m", "--max-time").and_then(seconds_up) else {
        return Read::default().unknown();
    };
    let retries = flag_value(args, "", "--retry")
        .and_then(|v| v.parse::<u32>().ok())
        .unwrap_or(0);
    Read::known(max.saturating_mul(retries.saturating_add(1)))
}

/// wget: `-T/--timeout` bounds each try; `-t/--tries` (busybox makes one try).
fn wget_args(args: &[&str]) -> Read {
    let Some(timeout) = flag_value(args, "-T", "--timeout").and_then(seconds_up) else {
        return Read::default().unknown();
    };
    let tries = flag_value(args, "-t", "--tries")
        .and_then(|v| v.parse::<u32>().ok())
        .filter(|t| *t > 0)
        .unwrap_or(1);
    Read::known(timeout.saturating_mul(tries))
}

/// Whole seconds, rounded up (`2.5` → 3).
fn seconds_up(v: &str) -> Option<u32> {
    let f: f64 = v.parse().ok()?;
    (f.is_finite() && f >= 0.0 && f <= f64::from(u32::MAX)).then(|| f.ceil() as u32)
}

/// A `sleep`/`timeout` duration: a number with an optional `s`, `m`, `h` or `d` suffix.
fn duration(v: &str) -> Option<u32> {
    let (number, unit) = match v.char_indices().last()? {
        (i, 's') => (&v[..i], 1),
        (i, 'm') => (&v[..i], 60),
        (i, 'h') => (&v[..i], 3600),
        (i, 'd') => (&v[..i], 86_400),
        _ => (v, 1),
    };
    seconds_up(number)?.checked_mul(unit)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{ExecAction, HTTPGetAction, SleepAction};
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

    fn exec(args: &[&str]) -> LifecycleHandler {
        LifecycleHandler {
            exec: Some(ExecAction {
                command: Some(args.iter().map(|s| s.to_string()).collect()),
            }),
            ..Default::default()
        }
    }

    fn est(args: &[&str]) -> (u32, EstimateBasis) {
        let e = estimate(&exec(args), 30, None);
        (e.seconds, e.source)
    }

    #[test]
    fn the_seeds_curl_and_sleep_hook_is_read_as_55_seconds() {
        let seed = [
            "/bin/sh",
            "-c",
            "curl -s --connect-timeout 10 -m 20 -X PUT \"http://nacos:8848/nacos/v1/ns/instance?ip=${POD_IP}&enabled=false\" && sleep 35",
        ];
        assert_eq!(est(&seed), (55, EstimateBasis::Read));
    }

    #[test]
    fn sleeps_timeouts_and_instant_commands_are_read() {
        assert_eq!(est(&["/bin/sleep", "9"]), (9, EstimateBasis::Read));
        assert_eq!(est(&["sleep", "1m", "30s"]), (90, EstimateBasis::Read));
        assert_eq!(
            est(&["sh", "-c", "timeout 20 /opt/drain.sh; nginx -s quit"]),
            (20, EstimateBasis::Read)
        );
        assert_eq!(
            est(&["bash", "-c", "timeout -k 5 10s ./x && echo done"]),
            (15, EstimateBasis::Read)
        );
        assert_eq!(
            est(&["sh", "-c", "wget -q -T 3 -t 2 -O- http://x/ ; sleep 5"]),
            (11, EstimateBasis::Read)
        );
        assert_eq!(
            est(&["sh", "-c", "curl --retry 2 --max-time=4 http://x"]),
            (12, EstimateBasis::Read)
        );
        assert_eq!(est(&["nginx", "-s", "quit"]), (0, EstimateBasis::Read));
    }

    /// Spellings that were read as the allowance (30 s) or short of the kill-after, below what
    /// the hook takes: the grace period came out too short for them.
    #[test]
    fn other_spellings_of_a_shell_and_a_timeout_are_read_in_full() {
        assert_eq!(
            est(&["/bin/sh", "-c", "--", "sleep 40"]),
            (40, EstimateBasis::Read)
        );
        assert_eq!(
            est(&["env", "sh", "-c", "sleep 50"]),
            (50, EstimateBasis::Read)
        );
        assert_eq!(
            est(&["sh", "-c", "env TERM=dumb bash -c 'sleep 45'"]),
            (45, EstimateBasis::Read)
        );
        assert_eq!(
            est(&["timeout", "-k5", "20", "./drain"]),
            (25, EstimateBasis::Read)
        );
    }

    #[test]
    fn what_cannot_be_read_counts_the_allowance() {
        assert_eq!(est(&["/opt/offline.sh"]), (30, EstimateBasis::Allowance));
        assert_eq!(
            est(&["sh", "/opt/offline.sh"]),
            (30, EstimateBasis::Allowance)
        );
        assert_eq!(
            est(&["sh", "-c", "/opt/offline.sh && sleep 10"]),
            (40, EstimateBasis::ReadAndAllowance)
        );
        assert_eq!(
            est(&["sh", "-c", "curl http://x/deregister; sleep 5"]),
            (35, EstimateBasis::ReadAndAllowance)
        );
        assert_eq!(
            est(&["sh", "-c", "sleep 2; while kill -0 1; do sleep 1; done"]),
            (32, EstimateBasis::ReadAndAllowance)
        );
        assert_eq!(est(&["sleep", "infinity"]), (30, EstimateBasis::Allowance));
        let http = LifecycleHandler {
            http_get: Some(HTTPGetAction {
                path: Some("/shutdown".into()),
                port: IntOrString::Int(8080),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(estimate(&http, 12, None).seconds, 12);
    }

    #[test]
    fn native_sleep_and_the_annotation_are_exact() {
        let native = LifecycleHandler {
            sleep: Some(SleepAction { seconds: 12 }),
            ..Default::default()
        };
        assert_eq!(
            estimate(&native, 30, None),
            Estimate {
                seconds: 12,
                source: EstimateBasis::NativeSleep
            }
        );
        assert_eq!(
            estimate(&exec(&["/opt/offline.sh"]), 30, Some(75)),
            Estimate {
                seconds: 75,
                source: EstimateBasis::Annotation
            }
        );
    }
}
