//! The drain step of `podgrace prestop`: a fixed sleep, or an adaptive drain that ends when the
//! pod's inbound traffic has been quiet for `quiet`, never before `min` and never after `max`
//! (the grace period is computed from `max`, so it stays a safe bound).
//!
//! Never worse than a sleep: when the pod's sockets cannot be read (no sock_diag, a seccomp
//! filter, an unexpected answer), the drain lasts `max` and says so. Its outcome (how long,
//! why it stopped, what it saw) is one line on stderr (the kubelet's FailedPreStopHook event
//! shows it when the hook fails) and on the container's own output, so that `kubectl logs`
//! shows it.

use std::fmt;
use std::io::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::sock_diag::SockDiag;
use super::traffic::{Monitor, Scope, Totals};

/// How often the sockets are read: the drain ends within a tick of its quiet period.
pub const TICK: Duration = Duration::from_millis(100);

/// The drain.
#[derive(Clone, Debug)]
pub enum DrainPlan {
    /// Sleep this long.
    Fixed(Duration),
    /// Until the traffic stops.
    Adaptive(Adaptive),
}

/// An adaptive drain's bounds and what it watches.
#[derive(Clone, Debug)]
pub struct Adaptive {
    /// Never shorter.
    pub min: Duration,
    /// Ends this long after the last traffic.
    pub quiet: Duration,
    /// Never longer.
    pub max: Duration,
    /// The sockets that count.
    pub scope: Scope,
    /// Where the outcome line goes besides stderr (the container's PID 1 output, so that
    /// `kubectl logs` shows it); `None`: stderr only.
    pub report_to: Option<PathBuf>,
}

/// Why a drain ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ending {
    /// Quiet for the quiet period, after the minimum.
    Quiet {
        /// When the last traffic arrived, from the drain's start; `None`: none did.
        last: Option<Duration>,
    },
    /// The maximum, with traffic still arriving.
    Max {
        /// When the last traffic arrived, from the drain's start.
        last: Option<Duration>,
    },
    /// The traffic could not be read: the maximum.
    Fallback(String),
}

/// When an adaptive drain ends: the pure decision, tested without a clock.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    start: Instant,
    min: Duration,
    quiet: Duration,
    max: Duration,
    last: Option<Instant>,
}

impl Clock {
    /// A drain starting at `start`.
    pub fn new(start: Instant, min: Duration, quiet: Duration, max: Duration) -> Self {
        Clock {
            start,
            min: min.min(max),
            quiet,
            max,
            last: None,
        }
    }

    /// Traffic arrived at `at`.
    pub fn traffic(&mut self, at: Instant) {
        self.last = Some(self.last.map_or(at, |l| l.max(at)));
    }

    /// Whether the drain is over at `now`, and why.
    pub fn ending(&self, now: Instant) -> Option<Ending> {
        let elapsed = now.saturating_duration_since(self.start);
        let last = self.last.map(|l| l.saturating_duration_since(self.start));
        if elapsed >= self.max {
            let quiet = self
                .last
                .is_none_or(|l| now.saturating_duration_since(l) >= self.quiet);
            return Some(if quiet {
                Ending::Quiet { last }
            } else {
                Ending::Max { last }
            });
        }
        let quiet = self
            .last
            .is_none_or(|l| now.saturating_duration_since(l) >= self.quiet);
        (elapsed >= self.min && quiet).then_some(Ending::Quiet { last })
    }
}

/// A drain's outcome, as reported.
#[derive(Clone, Debug)]
pub struct DrainOutcome {
    /// How long it lasted.
    pub lasted: Duration,
    /// Why it ended.
    pub ending: Ending,
    /// What it counted.
    pub totals: Totals,
    /// The ports it watched.
    pub ports: Vec<u16>,
    /// A caveat on what it could see.
    pub note: Option<String>,
}

impl fmt::Display for DrainOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = |d: Duration| format!("{:.1}s", d.as_secs_f64());
        write!(f, "podgrace: drain ended after {}: ", secs(self.lasted))?;
        match &self.ending {
            Ending::Quiet { last: None } => write!(f, "no traffic")?,
            Ending::Quiet { last: Some(l) } if l.is_zero() => write!(f, "quiet since it began")?,
            Ending::Quiet { last: Some(l) } => write!(f, "quiet since {}", secs(*l))?,
            Ending::Max { last } => write!(
                f,
                "maximum reached, traffic until {}",
                last.map_or("the end".to_owned(), secs)
            )?,
            Ending::Fallback(why) => {
                return write!(f, "maximum, as the traffic could not be read ({why})");
            }
        }
        let ports: Vec<String> = self.ports.iter().map(u16::to_string).collect();
        let t = &self.totals;
        write!(
            f,
            " (ports {}: {} new connection{}, {} bytes received, {} probe{} not counted)",
            if ports.is_empty() {
                "none listening".to_owned()
            } else {
                ports.join(",")
            },
            t.connections,
            if t.connections == 1 { "" } else { "s" },
            t.bytes,
            t.probes,
            if t.probes == 1 { "" } else { "s" },
        )?;
        if let Some(note) = &self.note {
            write!(f, "; {note}")?;
        }
        Ok(())
    }
}

impl Adaptive {
    /// Runs the drain (blocking: it is the only thing the helper does meanwhile).
    pub fn run(&self) -> DrainOutcome {
        let start = Instant::now();
        let mut clock = Clock::new(start, self.min, self.quiet, self.max);
        let mut monitor = Monitor::new(self.scope.clone());
        let fallback = |why: String, monitor: &Monitor| {
            std::thread::sleep(self.max.saturating_sub(start.elapsed()));
            DrainOutcome {
                lasted: start.elapsed(),
                ending: Ending::Fallback(why),
                totals: monitor.totals(),
                ports: monitor.watched_ports(),
                note: None,
            }
        };
        let (mut diag, destroy_error) = match SockDiag::open() {
            Ok(d) => d,
            Err(e) => return fallback(format!("sock_diag: {e}"), &monitor),
        };
        let note =
            destroy_error.map(|e| format!("connections shorter than {TICK:?} may be missed ({e})"));
        loop {
            let now = Instant::now();
            let destroyed = diag.destroyed();
            if destroyed.lost {
                // Events were dropped: something connected, unseen.
                clock.traffic(now);
            }
            for s in &destroyed.sockets {
                if let Some(t) = monitor.destroyed(now, s).traffic {
                    clock.traffic(t);
                }
            }
            match diag.dump() {
                Ok(sockets) => {
                    if let Some(t) = monitor.dump(now, &sockets).traffic {
                        clock.traffic(t);
                    }
                }
                Err(e) => return fallback(format!("sock_diag: {e}"), &monitor),
            }
            if let Some(ending) = clock.ending(now) {
                return DrainOutcome {
                    lasted: start.elapsed(),
                    ending,
                    totals: monitor.totals(),
                    ports: monitor.watched_ports(),
                    note,
                };
            }
            std::thread::sleep(TICK.min(self.max.saturating_sub(start.elapsed())));
        }
    }

    /// Writes the outcome line to stderr and to the container's output.
    pub fn report(&self, outcome: &DrainOutcome) {
        eprintln!("{outcome}");
        if let Some(path) = &self.report_to {
            // Best effort: PID 1 may be another user's (a shared process namespace).
            if let Ok(mut out) = std::fs::OpenOptions::new().append(true).open(path) {
                let _ = writeln!(out, "{outcome}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(secs: f64) -> Duration {
        Duration::from_secs_f64(secs)
    }

    #[test]
    fn without_traffic_the_drain_ends_at_its_minimum() {
        let t = Instant::now();
        let c = Clock::new(t, s(2.0), s(3.0), s(30.0));
        assert_eq!(c.ending(t + s(1.9)), None);
        assert_eq!(c.ending(t + s(2.0)), Some(Ending::Quiet { last: None }));
    }

    #[test]
    fn the_drain_ends_a_quiet_period_after_the_last_traffic() {
        let t = Instant::now();
        let mut c = Clock::new(t, s(2.0), s(3.0), s(30.0));
        c.traffic(t + s(7.0));
        assert_eq!(c.ending(t + s(9.9)), None);
        assert_eq!(
            c.ending(t + s(10.0)),
            Some(Ending::Quiet { last: Some(s(7.0)) })
        );
    }

    #[test]
    fn traffic_that_never_stops_ends_at_the_maximum() {
        let t = Instant::now();
        let mut c = Clock::new(t, s(2.0), s(3.0), s(30.0));
        c.traffic(t + s(29.9));
        assert_eq!(c.ending(t + s(29.95)), None);
        assert_eq!(
            c.ending(t + s(30.0)),
            Some(Ending::Max {
                last: Some(s(29.9))
            })
        );
    }

    #[test]
    fn a_minimum_above_the_maximum_is_the_maximum() {
        let t = Instant::now();
        let c = Clock::new(t, s(40.0), s(3.0), s(30.0));
        assert_eq!(c.ending(t + s(30.0)), Some(Ending::Quiet { last: None }));
    }

    #[test]
    fn the_report_says_how_long_and_why() {
        let o = DrainOutcome {
            lasted: s(5.25),
            ending: Ending::Quiet { last: Some(s(2.2)) },
            totals: Totals {
                connections: 1,
                bytes: 512,
                probes: 2,
            },
            ports: vec![8080],
            note: None,
        };
        assert_eq!(
            o.to_string(),
            "podgrace: drain ended after 5.2s: quiet since 2.2s (ports 8080: 1 new connection, \
             512 bytes received, 2 probes not counted)"
        );
        let f = DrainOutcome {
            ending: Ending::Fallback("sock_diag: Operation not permitted".into()),
            ..o
        };
        assert!(
            f.to_string()
                .contains("maximum, as the traffic could not be read")
        );
    }
}
