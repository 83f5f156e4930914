//! `terminationGracePeriodSeconds` arithmetic. The grace period counts from the start of
//! termination and *includes* the preStop hook, so each container needs
//! preStop + application shutdown + buffer, and the pod needs the largest of those; native
//! sidecars are stopped only after every main container has exited, one after the other, so
//! their hook and shutdown times add up on top. podgrace only ever raises the value: a longer
//! grace period costs nothing when the app exits early, a shorter one means SIGKILL mid-request.

use super::hook_estimate::EstimateBasis;
use crate::policy::spec::GraceMode;

/// What the API server assumes when the field is not set.
pub const KUBERNETES_DEFAULT: i64 = 30;

/// Whose preStop a budget counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HookKind {
    /// podgrace's own hook (or none).
    Injected,
    /// podgrace's own hook with an adaptive drain: its time is a ceiling.
    Adaptive,
    /// The user's hook, kept, with how its duration was estimated.
    Kept(EstimateBasis),
}

/// One container's termination budget.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Budget {
    /// Container name.
    pub container: String,
    /// preStop time (deregistration timeouts + sleep, a kept hook's estimate, …).
    pub pre_stop: u32,
    /// Whose hook that is.
    pub hook: HookKind,
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

    /// `preStop 35s + shutdown 30s + buffer 5s`, or `kept preStop 55s (read from hook) + …`.
    pub fn arithmetic(&self) -> String {
        let hook = match self.hook {
            HookKind::Injected => format!("preStop {}s", self.pre_stop),
            HookKind::Adaptive => format!("preStop ≤{}s (adaptive drain)", self.pre_stop),
            HookKind::Kept(source) => {
                format!("kept preStop {}s ({})", self.pre_stop, source.as_str())
            }
        };
        format!(
            "{hook} + shutdown {}s + buffer {}s",
            self.shutdown, self.buffer
        )
    }
}

/// A native sidecar's share: its hook and shutdown, after the main containers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SidecarTime {
    /// Container name.
    pub container: String,
    /// Hook + shutdown, in seconds.
    pub seconds: u32,
    /// It has a hook (its own, or a drain podgrace gives it): the grace period must cover it
    /// even when no main container has a budget.
    pub hooked: bool,
}

/// The outcome for the pod.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// The value the pod has (the Kubernetes default when unset).
    pub current: i64,
    /// The largest budget of a main container, if any container has one.
    pub largest: Option<Budget>,
    /// Native sidecars stopped after the main containers (counted only with a main budget).
    pub sidecars: Vec<SidecarTime>,
    /// The new value, when podgrace raises it.
    pub raised_to: Option<i64>,
}

impl Decision {
    /// The grace period the pod will have.
    pub fn effective(&self) -> i64 {
        self.raised_to.unwrap_or(self.current)
    }

    /// Seconds the pod needs to stop: the largest budget plus the sidecars, when a main
    /// container has a budget or a sidecar has a hook.
    pub fn needed(&self) -> Option<i64> {
        let hooked_sidecar = self.sidecars.iter().any(|s| s.hooked);
        if self.largest.is_none() && !hooked_sidecar {
            return None;
        }
        Some(self.largest.as_ref().map_or(0, Budget::total) + self.sidecar_seconds())
    }

    /// The container named in warnings: the largest budget's, else the first sidecar's.
    pub fn lead(&self) -> Option<&str> {
        self.largest
            .as_ref()
            .map(|b| b.container.as_str())
            .or_else(|| self.sidecars.first().map(|s| s.container.as_str()))
    }

    fn sidecar_seconds(&self) -> i64 {
        self.sidecars.iter().map(|s| i64::from(s.seconds)).sum()
    }

    /// The arithmetic: `preStop 35s + shutdown 30s + buffer 5s (app) + sidecars 5s (log)`.
    pub fn arithmetic(&self) -> Option<String> {
        self.needed()?;
        let names: Vec<&str> = self.sidecars.iter().map(|s| s.container.as_str()).collect();
        let sidecars = format!(
            "sidecars {}s ({})",
            self.sidecar_seconds(),
            names.join(", ")
        );
        Some(
            self.join(
                self.largest
                    .as_ref()
                    .map(|b| format!("{} ({})", b.arithmetic(), b.container)),
                sidecars,
            ),
        )
    }

    /// The arithmetic without names, for a warning that must fit in a line.
    pub fn short_arithmetic(&self) -> Option<String> {
        self.needed()?;
        let sidecars = format!("sidecars {}s", self.sidecar_seconds());
        Some(self.join(self.largest.as_ref().map(Budget::arithmetic), sidecars))
    }

    fn join(&self, main: Option<String>, sidecars: String) -> String {
        match (main, self.sidecars.is_empty()) {
            (Some(main), true) => main,
            (Some(main), false) => format!("{main} + {sidecars}"),
            (None, _) => sidecars,
        }
    }

    /// `30 → 70: preStop 35s + shutdown 30s + buffer 5s (app)` when raised, `60 ≥ 45: ...` when
    /// the pod already had enough, `30 < 45 (not raised: gracePeriod keep): ...` otherwise.
    pub fn summary(&self) -> Option<String> {
        let needed = self.needed()?;
        let arithmetic = self.arithmetic()?;
        Some(match self.raised_to {
            Some(new) => format!("{} → {new}: {arithmetic}", self.current),
            None if self.current >= needed => format!("{} ≥ {needed}: {arithmetic}", self.current),
            None => format!(
                "{} < {needed} (not raised: gracePeriod keep): {arithmetic}",
                self.current
            ),
        })
    }
}

/// Decides the grace period from the main containers' budgets and the native sidecars.
pub fn decide(
    current: Option<i64>,
    budgets: &[Budget],
    sidecars: Vec<SidecarTime>,
    mode: GraceMode,
) -> Decision {
    let current = current.unwrap_or(KUBERNETES_DEFAULT);
    // The first of equal budgets wins, so the record is deterministic.
    let largest = budgets
        .iter()
        .fold(None::<&Budget>, |best, b| match best {
            Some(x) if x.total() >= b.total() => Some(x),
            _ => Some(b),
        })
        .cloned();
    let mut decision = Decision {
        current,
        largest,
        sidecars: sidecars.into_iter().filter(|s| s.seconds > 0).collect(),
        raised_to: None,
    };
    if mode == GraceMode::Raise {
        decision.raised_to = decision.needed().filter(|n| *n > current);
    }
    decision
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(name: &str, pre_stop: u32, shutdown: u32, buffer: u32) -> Budget {
        Budget {
            container: name.into(),
            pre_stop,
            hook: HookKind::Injected,
            shutdown,
            buffer,
        }
    }

    #[test]
    fn the_operators_spring_nacos_case_needs_seventy_seconds() {
        // 35 s preStop + Spring Boot's 30 s shutdown phase under a 60 s grace period loses requests.
        let d = decide(
            Some(60),
            &[budget("app", 35, 30, 5)],
            vec![],
            GraceMode::Raise,
        );
        assert_eq!(d.raised_to, Some(70));
        assert_eq!(
            d.summary().unwrap(),
            "60 → 70: preStop 35s + shutdown 30s + buffer 5s (app)"
        );
    }

    #[test]
    fn a_kept_hook_says_how_it_was_estimated() {
        let mut b = budget("app", 55, 30, 5);
        b.hook = HookKind::Kept(EstimateBasis::Read);
        let d = decide(Some(60), &[b], vec![], GraceMode::Raise);
        assert_eq!(
            d.summary().unwrap(),
            "60 → 90: kept preStop 55s (read from hook) + shutdown 30s + buffer 5s (app)"
        );
    }

    #[test]
    fn grace_never_decreases() {
        let d = decide(
            Some(300),
            &[budget("app", 10, 30, 5)],
            vec![],
            GraceMode::Raise,
        );
        assert_eq!(d.raised_to, None);
        assert_eq!(d.effective(), 300);
        assert!(d.summary().unwrap().starts_with("300 ≥ 45"));
    }

    #[test]
    fn unset_means_the_kubernetes_default() {
        assert_eq!(
            decide(None, &[budget("a", 0, 20, 5)], vec![], GraceMode::Raise).raised_to,
            None
        );
        assert_eq!(
            decide(None, &[budget("a", 10, 20, 5)], vec![], GraceMode::Raise).raised_to,
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
        let d = decide(Some(30), &budgets, vec![], GraceMode::Raise);
        assert_eq!(d.largest.as_ref().unwrap().container, "app");
        assert_eq!(d.raised_to, Some(65));
        let d = decide(Some(30), &budgets, vec![], GraceMode::Keep);
        assert_eq!(d.raised_to, None);
        assert!(d.summary().unwrap().contains("not raised"));
    }

    #[test]
    fn native_sidecars_stop_after_the_app_so_their_time_adds_up() {
        let sidecars = vec![
            SidecarTime {
                container: "istio-proxy".into(),
                seconds: 30,
                hooked: false,
            },
            SidecarTime {
                container: "log".into(),
                seconds: 5,
                hooked: false,
            },
        ];
        let d = decide(
            Some(30),
            &[budget("app", 10, 30, 5)],
            sidecars,
            GraceMode::Raise,
        );
        assert_eq!(d.raised_to, Some(80));
        assert_eq!(
            d.summary().unwrap(),
            "30 → 80: preStop 10s + shutdown 30s + buffer 5s (app) + sidecars 35s (istio-proxy, log)"
        );
    }

    #[test]
    fn no_budgets_no_change() {
        let sidecar = vec![SidecarTime {
            container: "log".into(),
            seconds: 5,
            hooked: false,
        }];
        let d = decide(Some(30), &[], sidecar, GraceMode::Raise);
        assert_eq!((d.raised_to, d.summary()), (None, None));
    }

    #[test]
    fn a_hooked_sidecar_is_covered_even_when_no_main_container_drains() {
        let sidecar = vec![SidecarTime {
            container: "proxy".into(),
            seconds: 31,
            hooked: true,
        }];
        let d = decide(Some(30), &[], sidecar, GraceMode::Raise);
        assert_eq!(d.raised_to, Some(31));
        assert_eq!(d.summary().unwrap(), "30 → 31: sidecars 31s (proxy)");
    }
}
