"""What the monitoring tests share: podgrace's alerting rules as the chart renders them, the plain
rules file made from them, Debian's promtool, the Grafana dashboard and a PromQL metric-name
lexer.

Run as a script, it writes the plain rules file (`make prometheus-rules`):

    python tests/chart/monitoring.py > deploy/prometheus/podgrace-rules.yaml
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from conftest import CHART, REPO, render  # noqa: E402

RULES_FILE = REPO / "deploy" / "prometheus" / "podgrace-rules.yaml"
RULES_TEST = REPO / "deploy" / "prometheus" / "podgrace-rules.test.yaml"
DASHBOARD = CHART / "files" / "grafana-dashboard.json"
OPERATIONS = REPO / "docs" / "OPERATIONS.md"

ALERTS = [
    "PodgraceAdmissionErrors",
    "PodgraceWebhookCallsFailing",
    "PodgraceAdmissionLatencyHigh",
    "PodgraceAdmissionNearTimeout",
    "PodgraceCertificateExpiringSoon",
    "PodgracePolicyRefused",
    "PodgraceNoAdmissions",
    "PodgraceNotReady",
]

# Metrics the alerts read from other exporters, which no test here can run: the API server's
# admission-webhook metrics (kube-apiserver /metrics) and kube-state-metrics. Every other metric a
# rule or panel names must be one podgrace exports.
EXTERNAL_METRICS = {
    "apiserver_admission_webhook_fail_open_count": "kube-apiserver",
    "apiserver_admission_webhook_rejection_count": "kube-apiserver",
    "apiserver_admission_webhook_admission_duration_seconds_bucket": "kube-apiserver",
    "apiserver_admission_webhook_admission_duration_seconds_count": "kube-apiserver",
    "kube_pod_status_ready": "kube-state-metrics",
}

# The series those exporters write: each metric's own labels and the values they take. Sources:
# - kube-apiserver: k8s.io/apiserver pkg/admission/metrics/metrics.go (label names, the histogram's
#   buckets 0.005 0.025 0.1 0.5 1 2.5 10 25, error_type's values) and
#   pkg/admission/plugin/webhook/{mutating,validating}/dispatcher.go (type is "admit" for mutating
#   webhooks, "validating" for validating ones; rejection_code is the HTTP status, 400 for a call
#   that got none); listed in https://kubernetes.io/docs/reference/instrumentation/metrics/.
# - kube-state-metrics: docs/metrics/workload/pod-metrics.md (kube_pod_status_ready{namespace, pod,
#   uid, condition=true|false|unknown}, STABLE).
# A value of None: any value. Target labels a scrape adds (job, instance) come on top.
_APISERVER_WEBHOOK = {"name": None, "type": {"admit", "validating"}}
_APISERVER_HISTOGRAM = {**_APISERVER_WEBHOOK, "operation": {"CREATE", "UPDATE", "DELETE", "CONNECT"},
                        "rejected": {"true", "false"}}
EXTERNAL_SERIES: dict[str, dict[str, set[str] | None]] = {
    "apiserver_admission_webhook_fail_open_count": _APISERVER_WEBHOOK,
    "apiserver_admission_webhook_rejection_count": {
        **_APISERVER_WEBHOOK, "operation": _APISERVER_HISTOGRAM["operation"],
        "error_type": {"calling_webhook_error", "apiserver_internal_error", "no_error"},
        "rejection_code": None,
    },
    "apiserver_admission_webhook_admission_duration_seconds_bucket": {
        **_APISERVER_HISTOGRAM, "le": {"0.005", "0.025", "0.1", "0.5", "1", "2.5", "10", "25", "+Inf"},
    },
    "apiserver_admission_webhook_admission_duration_seconds_count": _APISERVER_HISTOGRAM,
    "kube_pod_status_ready": {"namespace": None, "pod": None, "uid": None,
                              "condition": {"true", "false", "unknown"}},
}
SCRAPE_LABELS = {"job", "instance"}

HEADER = """\
# podgrace's alerting rules, for a Prometheus without the Prometheus Operator (rule_files).
# Generated from the Helm chart with its default values (release podgrace in namespace
# podgrace-system, webhook timeout 5s, failurePolicy Ignore) by `make prometheus-rules`: do not
# edit; change charts/podgrace/templates/_alerts.tpl. For other values, render the chart's
# PrometheusRule (metrics.prometheusRule.enabled) and take its spec. Runbooks: docs/OPERATIONS.md.
# Unit tests: promtool test rules deploy/prometheus/podgrace-rules.test.yaml
"""


def rule_groups(values: dict[str, Any] | None = None, **kwargs: Any) -> dict[str, Any]:
    """The `spec` of the chart's PrometheusRule rendered with `values` (the rule file's content)."""
    merged = {"metrics": {"prometheusRule": {"enabled": True}}}
    for key, value in (values or {}).items():
        if key == "metrics":
            merged["metrics"] = {**merged["metrics"], **value}
            merged["metrics"]["prometheusRule"] = {"enabled": True, **value.get("prometheusRule", {})}
        else:
            merged[key] = value
    return render(merged, **kwargs).one("PrometheusRule")["spec"]


class _BlockDumper(yaml.SafeDumper):
    """Multi-line strings (the expressions) as literal blocks, as a person would write them."""


def _str(dumper: yaml.SafeDumper, data: str) -> yaml.Node:
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_BlockDumper.add_representer(str, _str)


def rules_file_text() -> str:
    """The plain rules file, as `make prometheus-rules` writes it."""
    order = ["alert", "record", "expr", "for", "keep_firing_for", "labels", "annotations"]
    spec = rule_groups()
    for group in spec["groups"]:
        group["rules"] = [{k: rule[k] for k in order if k in rule} for rule in group["rules"]]
    body = yaml.dump(spec, Dumper=_BlockDumper, sort_keys=False, width=4096, allow_unicode=True)
    return HEADER + body


def promtool() -> str:
    """Debian's promtool (package prometheus; `make deps` installs it). Missing is a failure."""
    path = shutil.which("promtool")
    assert path, "promtool is missing: `make deps` installs Debian's prometheus package"
    return path


def run_promtool(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([promtool(), *args], capture_output=True, text=True, timeout=120, cwd=cwd)


def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel with queries, rows' collapsed panels included."""
    out = []
    for panel in board["panels"]:
        out.extend(panel.get("panels", []))
        if panel.get("type") != "row":
            out.append(panel)
    return out


# Grafana's variables, as a query sent from the dashboard would carry them.
GRAFANA_VARIABLES = {
    "$__rate_interval": "1m",
    "$__range": "10m",
    "$__interval": "15s",
}


def substitute(expr: str, job: str = ".+") -> str:
    """A panel's expression with Grafana's variables replaced as Grafana would."""
    for var, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(var, value)
    expr = expr.replace("${job:regex}", job).replace("$job", job)
    assert "$" not in re.sub(r'"\$1"', "", expr), f"unknown variable in {expr}"
    return expr


# PromQL's reserved words, aggregation operators and modifiers; function names are told apart by
# the "(" that follows them.
_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or",
             "unless", "offset", "inf", "nan", "atan2", "start", "end",
             # Aggregation operators, which a by/without clause may separate from their "(".
             "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
             "bottomk", "topk", "quantile", "limitk", "limit_ratio"}


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects: identifiers that are not functions, keywords,
    label names (in braces, or in by/without/on/ignoring/group_x lists) or inside strings."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)          # string literals
    text = re.sub(r"'(?:[^'\\]|\\.)*'", "''", text)
    text = re.sub(r"\{[^}]*\}", "{}", text)                   # label matchers
    text = re.sub(r"\[[^\]]*\]", "[]", text)                  # ranges and subqueries
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", r"\1()", text)
    names = set()
    for m in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        word = m.group(0)
        rest = text[m.end():].lstrip()
        if rest.startswith("(") or word.lower() in _KEYWORDS:
            continue
        # Duration suffixes and exponents of numbers (5m, 1e3) are not names.
        if m.start() > 0 and (text[m.start() - 1].isdigit() or text[m.start() - 1] == "."):
            continue
        names.add(word)
    return names


def base_metric(name: str) -> str:
    """The metric family a sample name belongs to (OpenMetrics `# TYPE` names counters without
    `_total`)."""
    for suffix in ("_bucket", "_count", "_sum", "_total"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


if __name__ == "__main__":
    sys.stdout.write(rules_file_text())
