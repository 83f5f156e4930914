"""A real Prometheus (Debian's package) scraping a running `podgrace serve --standalone`, on
loopback only: over HTTPS, verifying podgrace's generated certificate with the CA it writes
(--ca-out), and over the plain metrics port (--metrics-listen). After real admissions, every
metric the alerts and the dashboard name is in Prometheus with data, every dashboard query returns
data for both scrape jobs and names only metrics podgrace exports, and the alert rules load and
evaluate cleanly, the refused policy's alert going pending for its namespace. The latency alert
near the webhook timeout reads podgrace's own histogram, whose buckets reach the timeout: its
expression gives each job's p99 from the real admissions, and the same rule with its threshold at
0 fires for each job."""

from __future__ import annotations

import json
import re
import shutil
import socket
import ssl
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml
from conftest import REPO
from monitoring import (
    EXTERNAL_METRICS,
    RULES_FILE,
    base_metric,
    dashboard,
    metric_names,
    panels,
    promtool,
    rule_groups,
    substitute,
)

JOBS = ("podgrace", "podgrace-plain")
NEAR_TIMEOUT = "PodgraceAdmissionNearTimeout"
# The chart's default webhook timeout, which the plain rules file is rendered with.
TIMEOUT = 5


def near_timeout_rule() -> dict:
    [rule] = [r for g in rule_groups()["groups"] for r in g["rules"] if r.get("alert") == NEAR_TIMEOUT]
    return rule


def without_threshold(expr: str, threshold: str = "") -> str:
    """The near-timeout expression with its comparisons to 0.8 x the timeout replaced."""
    pattern = rf"\s*> 0\.8 \* {TIMEOUT}\n"
    assert len(re.findall(pattern, expr)) == 2, expr
    return re.sub(pattern, f"{threshold}\n", expr)
FIXTURES = REPO / "tests" / "fixtures" / "admission"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what: str, within: float, check):
    deadline = time.monotonic() + within
    while True:
        result = check()
        if result:
            return result
        assert time.monotonic() < deadline, f"not within {within}s: {what}"
        time.sleep(0.2)


class Podgrace:
    """The standalone webhook, talked to over verified TLS."""

    def __init__(self, binary: Path, tmp: Path):
        self.port, self.metrics_port = free_port(), free_port()
        self.ca = tmp / "ca.pem"
        self.policies = tmp / "policies"
        self.policies.mkdir()
        shutil.copy(REPO / "examples" / "policies" / "probe.yaml", self.policies / "probe.yaml")
        (self.policies / "broken.yaml").write_text("preStop: {sleepSeconds: many}\n")
        self.log = open(tmp / "podgrace.log", "wb")
        self.proc = subprocess.Popen(
            [binary, "serve", "--standalone", "--listen", f"127.0.0.1:{self.port}", "--ca-out", self.ca,
             "--metrics-listen", f"127.0.0.1:{self.metrics_port}", "--policy-dir", self.policies,
             "--kube-version", "1.36", "--log-format", "text", "--reload-poll-seconds", "1"],
            stdout=self.log, stderr=subprocess.STDOUT)
        wait_for("podgrace ready", 20, lambda: self._ready())

    def _ready(self) -> bool:
        assert self.proc.poll() is None, (self.log.name, Path(self.log.name).read_text())
        try:
            return self.call("GET", "/readyz")[0] == 200
        except OSError:
            return False

    def call(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        context = ssl.create_default_context(cafile=str(self.ca))
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as raw:
            with context.wrap_socket(raw, server_hostname="localhost") as tls:
                head = (f"{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
                        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n")
                tls.sendall(head.encode() + body)
                data = b""
                while chunk := tls.recv(65536):
                    data += chunk
        head, _, answer = data.partition(b"\r\n\r\n")
        return int(head.split()[1]), answer

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


class Prometheus:
    """Debian's Prometheus with a temporary configuration and storage, on loopback."""

    def __init__(self, tmp: Path, podgrace: Podgrace):
        binary = shutil.which("prometheus")
        assert binary, "prometheus is missing: `make deps` installs Debian's prometheus package"
        self.port = free_port()
        rules = tmp / "podgrace-rules.yaml"
        rules.write_text(RULES_FILE.read_text())
        # The near-timeout alert as shipped but for its threshold (0) and its `for`, in a group
        # of its own: podgrace answers in microseconds, so only this one can fire here.
        probe = {**near_timeout_rule(), "alert": f"{NEAR_TIMEOUT}AtZero", "for": "0s"}
        probe["expr"] = without_threshold(probe["expr"], " > 0")
        probe_rules = tmp / "probe-rules.yaml"
        probe_rules.write_text(yaml.safe_dump({"groups": [{"name": "probe", "rules": [probe]}]}))
        config = {
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(rules), str(probe_rules)],
            "scrape_configs": [
                {"job_name": "podgrace", "scheme": "https",
                 "tls_config": {"ca_file": str(podgrace.ca), "server_name": "localhost"},
                 "static_configs": [{"targets": [f"127.0.0.1:{podgrace.port}"]}]},
                {"job_name": "podgrace-plain",
                 "static_configs": [{"targets": [f"127.0.0.1:{podgrace.metrics_port}"]}]},
            ],
        }
        (tmp / "prometheus.yml").write_text(yaml.safe_dump(config))
        check = subprocess.run([promtool(), "check", "config", str(tmp / "prometheus.yml")],
                               capture_output=True, text=True, timeout=60)
        assert check.returncode == 0, check.stdout + check.stderr
        self.log = open(tmp / "prometheus.log", "wb")
        self.proc = subprocess.Popen(
            [binary, f"--config.file={tmp / 'prometheus.yml'}", f"--storage.tsdb.path={tmp / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}"],
            stdout=self.log, stderr=subprocess.STDOUT)
        wait_for("Prometheus ready", 30, self._ready)

    def _ready(self) -> bool:
        assert self.proc.poll() is None, Path(self.log.name).read_text()[-3000:]
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/-/ready", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    def api(self, path: str, **params: str) -> dict:
        url = f"http://127.0.0.1:{self.port}/api/v1/{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        try:
            with urllib.request.urlopen(url, timeout=10) as r:
                body = json.load(r)
        except urllib.error.HTTPError as e:
            body = json.load(e)
        assert body["status"] == "success", (path, params, body)
        return body["data"]

    def query(self, expr: str) -> list[dict]:
        data = self.api("query", query=expr)
        assert data["resultType"] in ("vector", "matrix", "scalar"), data
        return data["result"] if data["resultType"] != "scalar" else [data["result"]]

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def configmap_review(uid: str, namespace: str, policy: str) -> bytes:
    review = {
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": uid, "kind": {"group": "", "version": "v1", "kind": "ConfigMap"},
            "resource": {"group": "", "version": "v1", "resource": "configmaps"},
            "name": "podgrace-policy", "namespace": namespace, "operation": "CREATE",
            "userInfo": {"username": "dev"},
            "object": {"apiVersion": "v1", "kind": "ConfigMap",
                       "metadata": {"name": "podgrace-policy", "namespace": namespace},
                       "data": {"policy.yaml": policy}},
        },
    }
    return json.dumps(review).encode()


@pytest.fixture(scope="module")
def scraped(podgrace_bin, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("prometheus")
    podgrace = Podgrace(podgrace_bin, tmp)
    prometheus = None
    try:
        prometheus = Prometheus(tmp, podgrace)
        # Both targets up before anything happens, so that what follows is seen as increases.
        def targets_up():
            active = prometheus.api("targets")["activeTargets"]
            return len(active) == 2 and all(t["health"] == "up" for t in active) and active
        wait_for("both targets up", 30, targets_up)
        time.sleep(2)
        # Admissions: pods patched by the probe namespace's policy and batch pods skipped, policy ConfigMaps allowed and
        # denied, an unreadable review, and a refused policy file changed again.
        for fixture, patched in [("pod-create-kubectl-apply.json", True)] * 30 + [("pod-create-kubectl-run.json", False)] * 10:
            status, answer = podgrace.call("POST", "/mutate", (FIXTURES / fixture).read_bytes())
            # kubectl run's pod has restartPolicy Never: a batch pod, skipped.
            assert status == 200 and (b'"patch"' in answer) == patched, answer[:300]
        for i in range(5):
            assert podgrace.call("POST", "/validate", configmap_review(f"ok-{i}", "shop", "preStop: {sleepSeconds: 9}"))[0] == 200
            status, answer = podgrace.call("POST", "/validate", configmap_review(f"bad-{i}", "shop", "preStop: {sleepSeconds: x}"))
            assert status == 200 and b'"allowed":false' in answer, answer[:300]
        assert podgrace.call("POST", "/mutate", b"{not json")[0] == 400
        (podgrace.policies / "broken.yaml").write_text("preStop: {sleepSeconds: never}\n")
        # Scrapes after all that, for rates over the last minute.
        time.sleep(4)
        yield prometheus
    finally:
        if prometheus:
            prometheus.stop()
        podgrace.stop()


def referenced_metrics() -> dict[str, set[str]]:
    """Metric name -> where it is used (alert names, panel titles)."""
    used: dict[str, set[str]] = {}
    for group in rule_groups()["groups"]:
        for rule in group["rules"]:
            for name in metric_names(rule["expr"]):
                used.setdefault(name, set()).add(rule["alert"])
    for panel in panels(dashboard()):
        for target in panel["targets"]:
            for name in metric_names(substitute(target["expr"])):
                used.setdefault(name, set()).add(panel["title"])
    return used


def test_the_metric_name_lexer_finds_selected_metrics_only():
    assert metric_names('sum by (job, le) (rate(a_total{x="y", le=~"1|2"}[5m])) / on (job) b offset 1h > 0.5') == {"a_total", "b"}
    assert metric_names('label_replace(c, "namespace", "$1", "exported_namespace", "(.+)") - time() < 7 * 24') == {"c"}
    assert metric_names("histogram_quantile(0.99, d_bucket) unless on () e") == {"d_bucket", "e"}


def test_every_metric_the_alerts_and_dashboard_use_is_exported_and_has_data(scraped):
    used = referenced_metrics()
    external = {name for name in used if name in EXTERNAL_METRICS}
    # Anything not from podgrace is one of the documented external metrics, and only alerts use
    # them: the dashboard needs nothing but podgrace.
    assert set(used) - external == {n for n in used if n.startswith("podgrace_")}, used
    assert external == set(EXTERNAL_METRICS), external
    dashboard_titles = {p["title"] for p in panels(dashboard())}
    for name in external:
        assert not used[name] & dashboard_titles, (name, used[name])
    stored = set(scraped.api("label/__name__/values"))
    for name in sorted(set(used) - external):
        assert name in stored, f"{name} (used by {sorted(used[name])}) is not a metric podgrace exports"
        for job in JOBS:
            result = scraped.query(f'{name}{{job="{job}"}}')
            assert result, f"no data for {name} from job {job}"


def test_every_dashboard_query_returns_data_for_each_scrape_job(scraped):
    for panel in panels(dashboard()):
        for target in panel["targets"]:
            for job in JOBS:
                expr = substitute(target["expr"], job=job)
                result = scraped.query(expr)
                assert result, f"{panel['title']} / {target['refId']}: no data for job {job}: {expr}"


def test_the_admissions_show_in_the_dashboard_numbers(scraped):
    # Not only present: the traffic sent is what the queries count.
    def value(expr):
        [sample] = scraped.query(expr)
        return float(sample["value"][1])
    for job in JOBS:
        sel = f'job="{job}"'
        assert value(f'sum(podgrace_admission_requests_total{{{sel}, endpoint="mutate", outcome="patched"}})') == 30
        assert value(f'sum(podgrace_admission_requests_total{{{sel}, endpoint="mutate", outcome="skipped"}})') == 10
        assert value(f'sum(podgrace_admission_requests_total{{{sel}, endpoint="mutate", outcome="bad_request"}})') == 1
        assert value(f'sum(podgrace_admission_requests_total{{{sel}, endpoint="validate", outcome="denied"}})') == 5
        assert value(f'sum(podgrace_injections_total{{{sel}, namespace="probe", kind="prestop"}})') == 30
        assert value(f'podgrace_policy_errors_total{{{sel}, namespace="broken"}}') == 2
        assert value(f'podgrace_namespace_policies{{{sel}}}') == 1
        days = value(f'(podgrace_certificate_expiry_timestamp_seconds{{{sel}}} - time()) / 86400')
        assert 29 < days <= 30


def test_the_alert_rules_load_and_evaluate_cleanly_on_real_metrics(scraped):
    def loaded():
        groups = scraped.api("rules")["groups"]
        rules = [r for g in groups if g["name"] == "podgrace" for r in g["rules"]]
        return len(rules) == 8 and all(r.get("lastEvaluation", "").startswith("20") for r in rules) and rules
    rules = wait_for("rules evaluated", 20, loaded)
    for rule in rules:
        assert rule["health"] == "ok", rule
    # The refused policy file: its namespace's alert goes pending (for: 1m), with the namespace.
    def pending():
        alerts = scraped.api("alerts")["alerts"]
        return [a for a in alerts if a["labels"]["alertname"] == "PodgracePolicyRefused"]
    refused = wait_for("PodgracePolicyRefused pending", 20, pending)
    assert [a["labels"]["namespace"] for a in refused] == ["broken"]
    assert refused[0]["state"] in ("pending", "firing")
    # Nothing else is wrong with this podgrace.
    others = {a["labels"]["alertname"] for a in scraped.api("alerts")["alerts"]}
    assert others - {"PodgracePolicyRefused", f"{NEAR_TIMEOUT}AtZero"} == set(), others


def test_the_latency_histogram_reaches_the_webhook_timeout(scraped):
    # 25 buckets per endpoint, the last finite one at the longest timeout the API allows (30 s),
    # one at the chart's timeout and one at 80 % of it (the alert's threshold).
    for job in JOBS:
        buckets = scraped.query(f'podgrace_admission_duration_seconds_bucket{{job="{job}", endpoint="mutate"}}')
        bounds = sorted(float(b["metric"]["le"]) for b in buckets)
        assert len(bounds) == 25 and bounds[-1] == float("inf") and bounds[-2] == 30, bounds
        assert 0.8 * TIMEOUT in bounds and TIMEOUT in bounds, bounds
        assert bounds[0] == 0.00005, bounds
        # Every pod admission (the unreadable review is not timed) is within the first second.
        counts = {float(b["metric"]["le"]): float(b["value"][1]) for b in buckets}
        assert counts[1.6384] == counts[30] == counts[float("inf")] == 40, counts


def test_the_near_timeout_alert_reads_podgraces_own_latency(scraped):
    rule = near_timeout_rule()
    # Its expression without the threshold: the p99 of podgrace's own answers for each job, from
    # the real admissions (the API server's half has no data here), far below the timeout.
    p99 = {r["metric"].get("job"): float(r["value"][1]) for r in scraped.query(without_threshold(rule["expr"]))}
    assert set(p99) == set(JOBS), p99
    for job, seconds in p99.items():
        assert 0 < seconds < 0.8 * TIMEOUT, (job, seconds)
    # The shipped rule does not fire; with the threshold at 0 the same rule fires for each job,
    # with podgrace's own description.
    def firing():
        alerts = [a for a in scraped.api("alerts")["alerts"] if a["labels"]["alertname"] == f"{NEAR_TIMEOUT}AtZero"]
        return len(alerts) == 2 and all(a["state"] == "firing" for a in alerts) and alerts
    fired = wait_for("the near-timeout alert at threshold 0 firing", 20, firing)
    assert {a["labels"]["job"] for a in fired} == set(JOBS)
    for alert in fired:
        description = alert["annotations"]["description"]
        assert description.startswith(
            f"The 99th percentile of podgrace's own pod admission time ({alert['labels']['job']}) is "), description
        assert f"near the webhook's timeout of {TIMEOUT}s" in description, description
    assert not [a for a in scraped.api("alerts")["alerts"] if a["labels"]["alertname"] == NEAR_TIMEOUT]
