//! `podgrace prestop`: turns the flags the engine wrote into the hook into a sequence and runs
//! it. Missing inputs (an empty pod IP) fail only their step; the drain still happens.

use std::process::ExitCode;
use std::time::Duration;

use super::{DrainArg, DrainTrafficArg, NacosApiArg, PrestopArgs, Registry};
use crate::helper::drain::{Adaptive, DrainPlan};
use crate::helper::traffic::{Counted, Scope};
use crate::helper::{self, Sequence, nacos_client::Deregistration, nginx_quit::Quit};
use crate::policy::spec::NacosApi;
use crate::protocols::nacos::Instance;

pub(super) fn run(args: &PrestopArgs) -> anyhow::Result<ExitCode> {
    if args.drain == DrainArg::Adaptive && args.sleep.get() > 0 {
        anyhow::bail!("--sleep is the fixed drain; an adaptive drain takes --drain-max instead");
    }
    let mut ok = true;
    let nacos = match args.deregister {
        Some(Registry::Nacos) => match deregistration(args) {
            Ok(d) => Some(d),
            Err(e) => {
                eprintln!("podgrace: nacos deregistration skipped: {e}");
                ok = false;
                None
            }
        },
        None => None,
    };
    let seq = Sequence {
        nacos,
        drain: drain(args),
        nginx: args.signal_nginx.then(|| Quit {
            pid_file: args.nginx_pid_file.clone(),
            wait: Duration::from_secs(u64::from(args.nginx_wait.get())),
        }),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    ok &= runtime.block_on(helper::run(&seq));
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn drain(args: &PrestopArgs) -> DrainPlan {
    let secs = |s: crate::policy::seconds::Seconds| Duration::from_secs(u64::from(s.get()));
    match args.drain {
        DrainArg::Fixed => DrainPlan::Fixed(secs(args.sleep)),
        DrainArg::Adaptive => DrainPlan::Adaptive(Adaptive {
            min: secs(args.drain_min),
            quiet: secs(args.drain_quiet),
            max: secs(args.drain_max),
            scope: Scope {
                ports: args.ports.iter().copied().collect(),
                ignored: args.ignore_ports.iter().copied().collect(),
                probes: args.probes.clone(),
                counted: match args.drain_traffic {
                    DrainTrafficArg::All => Counted::All,
                    DrainTrafficArg::NewConnections => Counted::NewConnections,
                },
            },
            report_to: Some(args.report_to.clone()),
        }),
    }
}

fn deregistration(args: &PrestopArgs) -> Result<Deregistration, String> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let ip = var(&args.ip_env).ok_or_else(|| format!("{} is empty", args.ip_env))?;
    let credentials = match (&args.username_env, &args.password_env) {
        (Some(u), p) => var(u).map(|user| (user, p.as_deref().and_then(var).unwrap_or_default())),
        _ => None,
    };
    let timeout = Duration::from_secs(u64::from(args.timeout.get().max(1)));
    let calls = if credentials.is_some() { 2 } else { 1 };
    Ok(Deregistration {
        server: args
            .nacos_server
            .clone()
            .unwrap_or_default()
            .trim_end_matches('/')
            .to_owned(),
        api: match args.nacos_api {
            NacosApiArg::V1 => NacosApi::V1,
            NacosApiArg::V2 => NacosApi::V2,
            NacosApiArg::V3 => NacosApi::V3,
        },
        instance: Instance {
            namespace_id: args.nacos_namespace.clone(),
            group: args.nacos_group.clone(),
            service: args.nacos_service.clone().unwrap_or_default(),
            cluster: args.nacos_cluster.clone(),
            port: args.nacos_port.unwrap_or_default(),
            ephemeral: args.nacos_ephemeral,
        },
        ip,
        credentials,
        timeout,
        budget: args.budget.map_or(timeout * calls, |b| {
            Duration::from_secs(u64::from(b.get().max(1)))
        }),
    })
}
