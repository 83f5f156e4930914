//! `terminationGracePeriodSeconds` arithmetic. The grace period counts from the start of
//! termination and *includes* the preStop hook, so each container needs
//! preStop + application shutdown + buffer, and the pod needs the largest of those. podgrace only
//! ever raises the value: a longer grace period costs nothing when the app exits early, a shorter
//! one means SIGKILL mid-request.

use crate::policy::spec::GraceMode;

/// What the API server assumes when the field is not set.
pub const KUBERNETES_DEFAULT: i64 = 30;

/// One container's termination budget.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Budget {
    /// Container name.
    pub container: String,
    /// preStop time (deregistration timeouts + sleep, or the declared exec duration).
    pub pre_stop: u32,
    /// Application shutdown allowance.
    pub shutdown: u32,
    /// Margin.
    pub buffer: u32,
}

impl Budget {
    /// The seconds this container needs.
    pub fn total(&self) -> i64 {
        i64::from(self.pre_stop) + i64::from(self.shutdown) + i64::from(self.buffer)
    }

    /// `preStop 35s + shutdown 30s + buffer 5s`.
    pub fn arithmetic(&self) -> String {
        format!(
            "preStop {}s + shutdown {}s + buffer {}s",
            self.pre_stop, self.shutdown, self.buffer
        )
    }
}

/// The outcome for the pod.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// The value the pod has (the Kubernetes default when unset).
    pub current: i64,
    /// The largest budget, if any container has one.
    pub largest: Option<Budget>,
    /// The new value, when podgrace raises it.
    pub raised_to: Option<i64>,
}

impl Decision {
    /// The grace period the pod will have.
    pub fn effective(&self) -> i64 {
        self.raised_to.unwrap_or(self.current)
    }

    /// `30 → 70: preStop 35s + shutdown 30s + buffer 5s (app)` when raised, or
    /// `60 ≥ 45: ...` when the pod already had enough.
    pub fn summary(&self) -> Option<String> {
        let b = self.largest.as_ref()?;
        Some(match self.raised_to {
            Some(new) => format!(
                "{} → {new}: {} ({})",
                self.current,
                b.arithmetic(),
                b.container
            ),
            None if self.current >= b.total() => format!(
                "{} ≥ {}: {} ({})",
                self.current,
                b.total(),
                b.arithmetic(),
                b.container
            ),
            None => format!(
                "{} < {} (not raised: gracePeriod keep): {} ({})",
                self.current,
                b.total(),
                b.arithmetic(),
                b.container
            ),
        })
    }
}

/// Decides the grace period from the container budgets.
pub fn decide(current: Option<i64>, budgets: &[Budget], mode: GraceMode) -> Decision {
    let current = current.unwrap_or(KUBERNETES_DEFAULT);
    // The first of equal budgets wins, so the record is deterministic.
    let largest = budgets
        .iter()
        .fold(None::<&Budget>, |best, b| match best {
            Some(x) if x.total() >= b.total() => Some(x),
            _ => Some(b),
        })
        .cloned();
    let raised_to = match (&largest, mode) {
        (Some(b), GraceMode::Raise) if b.total() > current => Some(b.total()),
        _ => None,
    };
    Decision {
        current,
        largest,
        raised_to,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(name: &str, pre_stop: u32, shutdown: u32, buffer: u32) -> Budget {
        Budget {
            container: name.into(),
            pre_stop,
            shutdown,
            buffer,
        }
    }

    #[test]
    fn the_operators_spring_nacos_case_needs_seventy_seconds() {
        // 35 s preStop + Spring Boot's 30 s shutdown phase under a 60 s grace period loses requests.
        let d = decide(Some(60), &[budget("app", 35, 30, 5)], GraceMode::Raise);
        assert_eq!(d.raised_to, Some(70));
        assert_eq!(
            d.summary().unwrap(),
            "60 → 70: preStop 35s + shutdown 30s + buffer 5s (app)"
        );
    }

    #[test]
    fn grace_never_decreases() {
        let d = decide(Some(300), &[budget("app", 10, 30, 5)], GraceMode::Raise);
        assert_eq!(d.raised_to, None);
        assert_eq!(d.effective(), 300);
        assert!(d.summary().unwrap().starts_with("300 ≥ 45"));
    }

    #[test]
    fn unset_means_the_kubernetes_default() {
        assert_eq!(
            decide(None, &[budget("a", 0, 20, 5)], GraceMode::Raise).raised_to,
            None
        );
        assert_eq!(
            decide(None, &[budget("a", 10, 20, 5)], GraceMode::Raise).raised_to,
            Some(35)
        );
    }

    #[test]
    fn the_largest_container_budget_wins_and_keep_mode_never_raises() {
        let budgets = [
            budget("sidecar", 5, 5, 5),
            budget("app", 30, 30, 5),
            budget("b", 30, 30, 5),
        ];
        let d = decide(Some(30), &budgets, GraceMode::Raise);
        assert_eq!(d.largest.as_ref().unwrap().container, "app");
        assert_eq!(d.raised_to, Some(65));
        let d = decide(Some(30), &budgets, GraceMode::Keep);
        assert_eq!(d.raised_to, None);
        assert!(d.summary().unwrap().contains("not raised"));
    }

    #[test]
    fn no_budgets_no_change() {
        let d = decide(Some(30), &[], GraceMode::Raise);
        assert_eq!((d.raised_to, d.summary()), (None, None));
    }
}
