//! `podgrace prestop`: the preStop sequence run by podgrace's own binary inside the application
//! container (copied there by the injected init container), so that no shell or curl is needed.
//!
//! Order: deregister (bounded by its budget, with retries), then the drain (a sleep, or until the
//! pod's traffic stops: `drain.rs`), then signal nginx and wait for it. Nothing here ends the hook early: a failed deregistration is reported
//! on stderr and the sleep still happens; only at the very end does the exit status say whether
//! everything worked (a non-zero status makes the kubelet record the output in a
//! FailedPreStopHook event, after the drain).

pub(crate) mod drain;
pub(crate) mod install;
pub(crate) mod nacos_client;
pub(crate) mod nginx_quit;
pub(crate) mod sock_diag;
pub(crate) mod traffic;

/// What to do before SIGTERM.
#[derive(Clone, Debug)]
pub struct Sequence {
    /// Deregistration, if any.
    pub nacos: Option<nacos_client::Deregistration>,
    /// The drain.
    pub drain: drain::DrainPlan,
    /// Send nginx a graceful quit and wait at most this long for it to exit.
    pub nginx: Option<nginx_quit::Quit>,
}

/// Runs the sequence; returns whether every step succeeded. Progress goes to stderr.
pub async fn run(seq: &Sequence) -> bool {
    let mut ok = true;
    if let Some(d) = &seq.nacos {
        match d.run().await {
            Ok(()) => eprintln!("podgrace: nacos instance {} disabled", d.describe()),
            Err(e) => {
                eprintln!("podgrace: nacos deregistration failed: {e}");
                ok = false;
            }
        }
    }
    match &seq.drain {
        drain::DrainPlan::Fixed(d) if d.is_zero() => {}
        drain::DrainPlan::Fixed(d) => tokio::time::sleep(*d).await,
        drain::DrainPlan::Adaptive(a) => {
            let a = a.clone();
            // Blocking reads of the kernel, and nothing else to do meanwhile.
            match tokio::task::spawn_blocking(move || {
                let outcome = a.run();
                a.report(&outcome);
            })
            .await
            {
                Ok(()) => {}
                Err(e) => {
                    eprintln!("podgrace: drain failed: {e}");
                    ok = false;
                }
            }
        }
    }
    if let Some(q) = &seq.nginx {
        match q.run().await {
            Ok(msg) => eprintln!("podgrace: {msg}"),
            Err(e) => {
                eprintln!("podgrace: nginx quit failed: {e}");
                ok = false;
            }
        }
    }
    ok
}
