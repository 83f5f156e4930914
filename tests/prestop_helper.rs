//! `podgrace prestop` (the helper binary) against the Nacos test server
//! (tests/common/nacos_server.rs) for v1, v2 and v3, and in every failure mode the issue names,
//! with the elapsed time checked against the budget; nginx quit against a real process; and the
//! injected hook run the way a distroless container runs it: argv executed directly, no shell.

mod common;

use std::time::{Duration, Instant};

use common::child::{self, Guard, SHORT};
use common::nacos_server::{FakeNacos, Fault, Generation};
use common::*;
use podgrace::engine::ClusterInfo;

struct Run {
    code: i32,
    stderr: String,
    elapsed: Duration,
}

impl Run {
    /// The outcome of a child that was started at `start`.
    fn of(out: &std::process::Output, start: Instant) -> Run {
        Run {
            code: out.status.code().unwrap_or(-1),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            elapsed: start.elapsed(),
        }
    }
}

fn prestop(args: &[&str], env: &[(&str, &str)]) -> Run {
    run_argv(
        env!("CARGO_BIN_EXE_podgrace"),
        &[&["prestop"], args].concat(),
        env,
    )
}

fn run_argv(program: &str, args: &[&str], env: &[(&str, &str)]) -> Run {
    let start = Instant::now();
    let out = child::output_within(
        child::command(program)
            .args(args)
            .env_clear()
            .envs(env.iter().copied()),
        None,
        SHORT,
    );
    Run::of(&out, start)
}

const SERVICE: &str = "kevin-app@@customer-services";
const ENV: [(&str, &str); 3] = [
    ("POD_IP", "10.1.2.3"),
    ("PODGRACE_NACOS_USERNAME", "nacos"),
    ("PODGRACE_NACOS_PASSWORD", "s3cret&=?"),
];

fn nacos_args<'a>(url: &'a str, api: &'a str) -> Vec<&'a str> {
    vec![
        "--deregister",
        "nacos",
        "--nacos-server",
        url,
        "--nacos-api",
        api,
        "--nacos-namespace",
        "online",
        "--nacos-group",
        "kevin-app",
        "--nacos-service",
        "customer-services",
        "--nacos-port",
        "9810",
        "--username-env",
        "PODGRACE_NACOS_USERNAME",
        "--password-env",
        "PODGRACE_NACOS_PASSWORD",
        "--timeout",
        "1",
    ]
}

#[test]
fn every_api_generation_logs_in_and_disables_the_instance() {
    for (generation, api, login, update) in [
        (
            Generation::V1x,
            "v1",
            "/nacos/v1/auth/login",
            "/nacos/v1/ns/instance",
        ),
        (
            Generation::V2x,
            "v2",
            "/nacos/v1/auth/login",
            "/nacos/v2/ns/instance",
        ),
        (
            Generation::V3x,
            "v3",
            "/nacos/v3/auth/user/login",
            "/nacos/v3/admin/ns/instance",
        ),
    ] {
        let nacos = FakeNacos::start(
            generation,
            Some(("nacos", "s3cret&=?")),
            &[SERVICE],
            Fault::None,
        );
        let url = nacos.url();
        let run = prestop(&nacos_args(&url, api), &ENV);
        assert_eq!(run.code, 0, "{api}: {}", run.stderr);
        assert!(
            run.stderr
                .contains("nacos instance kevin-app@@customer-services 10.1.2.3:9810 disabled"),
            "{}",
            run.stderr
        );
        let reqs = nacos.requests();
        assert_eq!(reqs.len(), 2, "{api}");
        assert_eq!(
            (reqs[0].method.as_str(), reqs[0].path.as_str()),
            ("POST", login)
        );
        assert_eq!(
            reqs[0].form.get("password").map(String::as_str),
            Some("s3cret&=?")
        );
        let put = &reqs[1];
        assert_eq!((put.method.as_str(), put.path.as_str()), ("PUT", update));
        assert_eq!(
            put.query.get("accessToken").map(String::as_str),
            Some(FakeNacos::token())
        );
        let params = if api == "v1" { &put.query } else { &put.form };
        for (k, v) in [
            ("ip", "10.1.2.3"),
            ("port", "9810"),
            ("enabled", "false"),
            ("namespaceId", "online"),
            ("serviceName", "customer-services"),
        ] {
            assert_eq!(params.get(k).map(String::as_str), Some(v), "{api} {k}");
        }
        assert_eq!(
            nacos.disabled(),
            ["online/kevin-app@@customer-services#10.1.2.3#9810"]
        );
    }
}

#[test]
fn refused_connections_are_retried_with_backoff_inside_the_budget_and_the_sleep_still_runs() {
    let closed = closed_addr();
    let url = format!("http://{closed}");
    let mut args = nacos_args(&url, "v1");
    args.extend(["--budget", "2", "--sleep", "1"]);
    let run = prestop(&args, &ENV);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("retrying in"), "{}", run.stderr);
    assert!(
        run.stderr.contains("Connection refused") || run.stderr.contains("connection refused"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("within the 2s budget"),
        "{}",
        run.stderr
    );
    // Budget (2 s) + sleep (1 s), and not much more.
    assert!(run.elapsed >= Duration::from_secs(2), "{:?}", run.elapsed);
    assert!(
        run.elapsed < Duration::from_millis(3800),
        "{:?}",
        run.elapsed
    );
}

#[test]
fn a_nacos_3_server_without_v1_says_to_use_v3_and_is_not_retried() {
    let nacos = FakeNacos::start(Generation::V3x, None, &[SERVICE], Fault::None);
    let url = nacos.url();
    let run = prestop(&nacos_args(&url, "v1"), &[("POD_IP", "10.1.2.3")]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("HTTP 410"), "{}", run.stderr);
    assert!(run.stderr.contains("use apiVersion v3"), "{}", run.stderr);
    assert_eq!(nacos.requests().len(), 1, "a 410 will not change: no retry");

    let nacos32 = FakeNacos::start(Generation::V32, None, &[SERVICE], Fault::None);
    let url = nacos32.url();
    let run = prestop(&nacos_args(&url, "v2"), &[("POD_IP", "10.1.2.3")]);
    assert!(
        run.stderr.contains("HTTP 404") && run.stderr.contains("Nacos 3.2+"),
        "{}",
        run.stderr
    );
}

#[test]
fn bad_credentials_are_a_clear_403_without_retries() {
    let nacos = FakeNacos::start(
        Generation::V2x,
        Some(("nacos", "right")),
        &[SERVICE],
        Fault::None,
    );
    let url = nacos.url();
    let run = prestop(&nacos_args(&url, "v2"), &ENV);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr
            .contains("login refused, HTTP 403: authentication failed"),
        "{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("s3cret"),
        "the password never reaches the logs"
    );
    assert_eq!(nacos.requests().len(), 1);
}

#[test]
fn a_hanging_server_is_bounded_by_the_budget() {
    let nacos = FakeNacos::start(Generation::V1x, None, &[SERVICE], Fault::Hang);
    let url = nacos.url();
    let mut args = nacos_args(&url, "v1");
    args.extend(["--budget", "2"]);
    let run = prestop(&args, &[("POD_IP", "10.1.2.3")]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("timed out"), "{}", run.stderr);
    assert!(
        run.elapsed < Duration::from_millis(2600),
        "{:?}",
        run.elapsed
    );
}

#[test]
fn server_errors_are_retried_then_reported() {
    let nacos = FakeNacos::start(Generation::V2x, None, &[SERVICE], Fault::Status(503));
    let url = nacos.url();
    let mut args = nacos_args(&url, "v2");
    args.extend(["--budget", "1"]);
    let run = prestop(&args, &[("POD_IP", "10.1.2.3")]);
    assert_eq!(run.code, 1);
    assert!(
        nacos.requests().len() >= 2,
        "retried: {}",
        nacos.requests().len()
    );
    assert!(run.stderr.contains("HTTP 503"), "{}", run.stderr);
}

#[test]
fn a_missing_pod_ip_skips_deregistration_but_not_the_drain() {
    let run = prestop(
        &[
            "--deregister",
            "nacos",
            "--nacos-server",
            "http://127.0.0.1:9",
            "--nacos-service",
            "s",
            "--nacos-port",
            "80",
            "--sleep",
            "1",
        ],
        &[],
    );
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("POD_IP is empty"), "{}", run.stderr);
    assert!(run.elapsed >= Duration::from_secs(1));
}

/// A stand-in nginx master that takes a moment to finish after SIGQUIT, like nginx with
/// in-flight requests. It gets default signal dispositions whatever this test process has:
/// a shell cannot trap a signal it inherited as ignored.
fn nginx_master() -> Guard {
    Guard::spawn(child::command("/bin/sh").args([
        "-c",
        "trap 'sleep 0.3; exit 0' QUIT; while :; do sleep 0.05; done",
    ]))
}

/// `podgrace prestop --signal-nginx` against `master`, with `--nginx-wait 5`.
fn quit_nginx(master: &Guard, helper: &mut std::process::Command) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("nginx.pid");
    std::fs::write(&pid_file, master.id().to_string()).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let start = Instant::now();
    let out = child::output_within(
        helper.args([
            "prestop",
            "--signal-nginx",
            "--nginx-pid-file",
            pid_file.to_str().unwrap(),
            "--nginx-wait",
            "5",
        ]),
        None,
        SHORT,
    );
    Run::of(&out, start)
}

#[test]
fn nginx_gets_a_graceful_quit_and_the_hook_waits_for_it() {
    let mut master = nginx_master();
    let run = quit_nginx(&master, &mut child::command(env!("CARGO_BIN_EXE_podgrace")));
    let status = master.wait_within(Duration::from_secs(10), "the nginx stand-in");
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("quit gracefully"), "{}", run.stderr);
    assert!(
        run.elapsed >= Duration::from_millis(300),
        "waited for the master: {:?}",
        run.elapsed
    );
    assert!(status.success(), "the master quit on SIGQUIT: {status}");
}

/// The helper only sends signals: whatever it inherits (the kubelet's exec, a shell with
/// traps) changes nothing.
#[test]
fn the_helper_quits_nginx_whatever_signal_dispositions_it_inherits() {
    let mut master = nginx_master();
    let mut helper = child::command(env!("CARGO_BIN_EXE_podgrace"));
    child::with_dispositions(
        &mut helper,
        libc::SIG_IGN,
        &[
            libc::SIGQUIT,
            libc::SIGTERM,
            libc::SIGINT,
            libc::SIGHUP,
            libc::SIGCHLD,
        ],
    );
    let run = quit_nginx(&master, &mut helper);
    master.wait_within(Duration::from_secs(10), "the nginx stand-in");
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("quit gracefully"), "{}", run.stderr);
}

/// The regression: `make test` started from a script in the background (`nohup`, `&`, `trap ''
/// QUIT`) runs the tests with SIGQUIT ignored, and the nginx test waited forever. It runs here
/// in this test binary started that way, and must pass in bounded time.
#[test]
fn the_nginx_test_passes_when_the_test_process_inherits_sigquit_ignored() {
    let mut tests = child::command(std::env::current_exe().unwrap());
    child::with_dispositions(&mut tests, libc::SIG_IGN, &[libc::SIGQUIT]);
    let out = child::output_within(
        tests.args([
            "--exact",
            "nginx_gets_a_graceful_quit_and_the_hook_waits_for_it",
            "--test-threads",
            "1",
        ]),
        None,
        SHORT,
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("1 passed"), "{stdout}");
}

#[test]
fn install_helper_copies_an_executable_binary() {
    let dir = tempfile::tempdir().unwrap();
    let run = run_argv(
        env!("CARGO_BIN_EXE_podgrace"),
        &["install-helper", dir.path().to_str().unwrap()],
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let copy = dir.path().join("podgrace");
    let version = run_argv(copy.to_str().unwrap(), &["--version"], &[]);
    assert_eq!(version.code, 0);
}

/// The whole path for a shell-less image: the engine's patch, the init container's install, and
/// the container's preStop argv run directly (no `/bin/sh`, an empty PATH) against Nacos.
#[test]
fn a_distroless_container_deregisters_and_drains_through_the_injected_helper() {
    let nacos = FakeNacos::start(
        Generation::V2x,
        Some(("nacos", "pw")),
        &[SERVICE],
        Fault::None,
    );
    let raw = pod_json(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p, labels: {app: customer-services}}\nspec:\n  containers:\n  - name: app\n    image: gcr.io/distroless/java21-debian12\n    ports: [{containerPort: 9810}]\n",
    );
    let eff = policy(&format!(
        "preStop:\n  action: nacos\n  helper: inject\n  sleepSeconds: 1\n  nacos:\n    server: {}\n    apiVersion: v2\n    groupName: kevin-app\n    timeoutSeconds: 1\n    auth: {{secretName: nacos-auth}}\n",
        nacos.url()
    ));
    let m = mutate_raw(&raw, &eff, &ClusterInfo::default());
    let out = apply(&raw, &m);
    assert!(
        !m.warnings.iter().any(|w| w.contains("needs /bin/sh")),
        "{:?}",
        m.warnings
    );

    // The init container's command, with the shared volume in a temporary directory.
    let volume = tempfile::tempdir().unwrap();
    let init = &out["spec"]["initContainers"][0];
    assert_eq!(init["command"][1], "install-helper");
    let installed = run_argv(
        env!("CARGO_BIN_EXE_podgrace"),
        &["install-helper", volume.path().to_str().unwrap()],
        &[],
    );
    assert_eq!(installed.code, 0);

    // The preStop argv, with the mount path mapped to that directory.
    let argv: Vec<String> = serde_json::from_value(
        out["spec"]["containers"][0]["lifecycle"]["preStop"]["exec"]["command"].clone(),
    )
    .unwrap();
    assert_eq!(argv[0], "/podgrace-helper/podgrace");
    let program = volume.path().join("podgrace");
    let args: Vec<&str> = argv[1..].iter().map(String::as_str).collect();
    let run = run_argv(
        program.to_str().unwrap(),
        &args,
        &[
            ("PATH", ""),
            ("POD_IP", "10.7.7.7"),
            ("PODGRACE_NACOS_USERNAME", "nacos"),
            ("PODGRACE_NACOS_PASSWORD", "pw"),
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.elapsed >= Duration::from_secs(1), "drained");
    assert_eq!(
        nacos.disabled(),
        ["public/kevin-app@@customer-services#10.7.7.7#9810"]
    );
}
