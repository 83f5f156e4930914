//! The admission summary: at `info`, one line per period with what the webhook answered since
//! the last one, read from the metrics' counters. Each admission has its own line at `debug`
//! only: the API server's audit log and the pod's `podgrace.io/*` annotations already record
//! every one, and at thousands of pods a minute a line each costs more than the admission
//! (docs/PERFORMANCE.md). Admissions that warned, failed or were refused keep their own line at `info`
//! or above.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

use super::metrics::{Endpoint, Metrics, Outcome, Refusal, RequestLabels};

/// The counts a summary line reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// `/mutate` by outcome, in the order of [`Outcome::MUTATE`].
    pub mutate: [u64; Outcome::MUTATE.len()],
    /// `/validate` by outcome, in the order of [`Outcome::VALIDATE`].
    pub validate: [u64; Outcome::VALIDATE.len()],
    /// Requests refused before their body was read.
    pub refused: u64,
}

impl Counts {
    /// The counters now.
    pub fn read(metrics: &Metrics) -> Counts {
        let count = |endpoint, outcome| {
            metrics
                .requests
                .get_or_create(&RequestLabels { endpoint, outcome })
                .get()
        };
        Counts {
            mutate: Outcome::MUTATE.map(|o| count(Endpoint::Mutate, o)),
            validate: Outcome::VALIDATE.map(|o| count(Endpoint::Validate, o)),
            refused: Refusal::ALL.iter().map(|&r| metrics.refused_count(r)).sum(),
        }
    }

    /// What happened between `earlier` and `self`.
    pub fn since(&self, earlier: &Counts) -> Counts {
        let sub = |a: u64, b: u64| a.saturating_sub(b);
        Counts {
            mutate: std::array::from_fn(|i| sub(self.mutate[i], earlier.mutate[i])),
            validate: std::array::from_fn(|i| sub(self.validate[i], earlier.validate[i])),
            refused: sub(self.refused, earlier.refused),
        }
    }

    /// Whether nothing was counted.
    pub fn is_empty(&self) -> bool {
        *self == Counts::default()
    }

    fn pods(&self, outcome: Outcome) -> u64 {
        let i = Outcome::MUTATE.iter().position(|&o| o == outcome);
        i.map_or(0, |i| self.mutate[i])
    }

    fn policies(&self, outcome: Outcome) -> u64 {
        let i = Outcome::VALIDATE.iter().position(|&o| o == outcome);
        i.map_or(0, |i| self.validate[i])
    }

    /// Logs the period's line (`Some(seconds)`) or the totals since start (`None`), unless
    /// nothing happened (an idle webhook stays quiet).
    pub fn log(&self, period: Option<u64>) {
        if self.is_empty() {
            return;
        }
        macro_rules! line {
            ($($period:ident,)? $message:literal) => {
                tracing::info!(
                    $($period,)?
                    patched = self.pods(Outcome::Patched),
                    unchanged = self.pods(Outcome::Unchanged),
                    skipped = self.pods(Outcome::Skipped),
                    ignored = self.pods(Outcome::Ignored) + self.policies(Outcome::Ignored),
                    errors = self.pods(Outcome::Error),
                    bad_requests =
                        self.pods(Outcome::BadRequest) + self.policies(Outcome::BadRequest),
                    policies_allowed = self.policies(Outcome::Allowed),
                    policies_denied = self.policies(Outcome::Denied),
                    refused = self.refused,
                    $message
                )
            };
        }
        match period {
            Some(seconds) => line!(seconds, "admission summary"),
            None => line!("admission totals"),
        }
    }
}

/// Logs a summary every `period`, of what happened during it.
pub fn every(period: Duration, metrics: Arc<Metrics>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut last = Counts::read(&metrics);
        let mut ticks = tokio::time::interval(period);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks.tick().await;
        loop {
            ticks.tick().await;
            let now = Counts::read(&metrics);
            now.since(&last).log(Some(period.as_secs()));
            last = now;
        }
    })
}

/// Logs the totals since start (at shutdown: the last period's summary would be lost).
pub fn log_totals(metrics: &Metrics) {
    Counts::read(metrics).log(None);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_summary_counts_what_happened_since_the_last_one() {
        let metrics = Metrics::new();
        metrics.request(Endpoint::Mutate, Outcome::Patched);
        let before = Counts::read(&metrics);
        for _ in 0..3 {
            metrics.request(Endpoint::Mutate, Outcome::Patched);
        }
        metrics.request(Endpoint::Mutate, Outcome::Error);
        metrics.request(Endpoint::Validate, Outcome::Denied);
        metrics.request_refused(Refusal::BodyBudget);
        let period = Counts::read(&metrics).since(&before);
        assert_eq!(period.pods(Outcome::Patched), 3);
        assert_eq!(period.pods(Outcome::Error), 1);
        assert_eq!(period.policies(Outcome::Denied), 1);
        assert_eq!(period.refused, 1);
        assert!(!period.is_empty());
        assert!(
            Counts::read(&metrics)
                .since(&Counts::read(&metrics))
                .is_empty()
        );
    }
}
