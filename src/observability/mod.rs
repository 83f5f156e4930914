//! What operators see of a running podgrace: the Prometheus metrics ([`metrics`]), the log lines
//! and their set-up ([`logging`]), and the periodic admission summary logged at `info`
//! ([`summary`]).

pub mod logging;
pub mod metrics;
pub(crate) mod summary;
