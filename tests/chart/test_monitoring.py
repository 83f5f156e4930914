"""Monitoring objects of the chart, rendered with the Helm SDK on and off: the ServiceMonitor and
the PrometheusRule (validated against schemas written from the Prometheus Operator's API, their
rules through Debian's promtool), the Grafana dashboard ConfigMap, the prometheus.io annotations,
the plain rules file made from the chart and its promtool unit tests, and the runbooks."""

from __future__ import annotations

import copy
import json
import re

import helm_python as helm
import jsonschema
import pytest
import yaml
from conftest import NAMESPACE, REPO, chart, operator_schema, render, selector_matches
from monitoring import (
    ALERTS,
    DASHBOARD,
    EXTERNAL_METRICS,
    EXTERNAL_SERIES,
    SCRAPE_LABELS,
    OPERATIONS,
    RULES_FILE,
    RULES_TEST,
    dashboard,
    panels,
    rule_groups,
    rules_file_text,
    run_promtool,
    substitute,
)

MONITORING_KINDS = {"ServiceMonitor", "PrometheusRule"}


def alerts(spec: dict) -> dict[str, dict]:
    return {r["alert"]: r for g in spec["groups"] for r in g["rules"] if "alert" in r}


def promtool_check(spec: dict, tmp_path, name: str = "rules.yaml") -> None:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(spec))
    done = run_promtool("check", "rules", str(path))
    assert done.returncode == 0, done.stdout + done.stderr


# Off by default ------------------------------------------------------------------------------------


def test_no_monitoring_object_and_no_scrape_annotation_by_default():
    r = render()
    assert not MONITORING_KINDS & set(r.kinds())
    assert [c for c in r.all("ConfigMap") if c["metadata"]["name"].endswith("-dashboard")] == []
    assert r.all("HorizontalPodAutoscaler") == []
    assert not any(k.startswith("prometheus.io/") for k in r.pod["metadata"].get("annotations", {}))


# ServiceMonitor -----------------------------------------------------------------------------------


def test_the_service_monitor_scrapes_the_webhook_port_over_verified_tls():
    r = render({"metrics": {"serviceMonitor": {"enabled": True}}, "certificates": {"mode": "helm"}})
    sm = r.one("ServiceMonitor")
    assert sm["metadata"]["namespace"] == NAMESPACE
    service = r.one("Service")
    # It selects the chart's Service, in the release namespace, by port name.
    assert selector_matches(sm["spec"]["selector"], service["metadata"]["labels"])
    assert sm["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    [endpoint] = sm["spec"]["endpoints"]
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
    assert endpoint["port"] == "https" and endpoint["scheme"] == "https" and endpoint["path"] == "/metrics"
    assert (endpoint["interval"], endpoint["scrapeTimeout"]) == ("30s", "10s")
    # The certificate is verified: the server name is one the certificate carries, the CA is the
    # one in the Secret the chart writes.
    tls = endpoint["tlsConfig"]
    assert "insecureSkipVerify" not in tls
    assert tls["serverName"] == f"podgrace.{NAMESPACE}.svc"
    secret = r.one("Secret")
    assert tls["ca"] == {"secret": {"name": secret["metadata"]["name"], "key": "ca.crt"}}
    assert "ca.crt" in secret["data"]


def test_in_mode_self_the_ca_bundle_comes_from_the_secret_podgrace_keeps():
    # During a CA roll the bundle holds both CAs: a scrape verifies whichever pair a replica
    # serves.
    r = render({"metrics": {"serviceMonitor": {"enabled": True}}})
    tls = r.one("ServiceMonitor")["spec"]["endpoints"][0]["tlsConfig"]
    assert tls["serverName"] == f"podgrace.{NAMESPACE}.svc"
    assert tls["ca"] == {"secret": {"name": "podgrace-certs", "key": "ca-bundle.crt"}}
    assert r.deployment["spec"]["template"]["spec"]["containers"][0]["env"][1] == {
        "name": "PODGRACE_CERTIFICATES", "value": "self"}


def test_with_cert_manager_the_ca_comes_from_the_certificate_secret():
    r = render({"certificates": {"mode": "certManager"}, "metrics": {"serviceMonitor": {"enabled": True}}})
    tls = r.one("ServiceMonitor")["spec"]["endpoints"][0]["tlsConfig"]
    serving = [c for c in r.all("Certificate") if c["spec"]["secretName"] == tls["ca"]["secret"]["name"]]
    assert len(serving) == 1 and tls["serverName"] in serving[0]["spec"]["dnsNames"]


def test_the_service_monitor_follows_its_values_and_the_plain_port():
    values = {"metrics": {"scheme": "http", "httpPort": 9102, "serviceMonitor": {
        "enabled": True, "namespace": "monitoring", "labels": {"release": "kube-prometheus-stack"},
        "interval": "15s", "scrapeTimeout": "5s",
        "relabelings": [{"sourceLabels": ["__meta_kubernetes_pod_node_name"], "targetLabel": "node"}],
        "metricRelabelings": [{"sourceLabels": ["__name__"], "regex": "go_.*", "action": "drop"}],
    }}}
    r = render(values)
    sm = r.one("ServiceMonitor")
    assert sm["metadata"]["namespace"] == "monitoring"
    assert sm["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert sm["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    [endpoint] = sm["spec"]["endpoints"]
    assert endpoint["port"] == "metrics" and endpoint["scheme"] == "http"
    assert "tlsConfig" not in endpoint
    assert {"name": "metrics", "port": 9102, "targetPort": "metrics", "protocol": "TCP"} in r.one(
        "Service")["spec"]["ports"]
    assert (endpoint["interval"], endpoint["scrapeTimeout"]) == ("15s", "5s")
    assert endpoint["relabelings"] == values["metrics"]["serviceMonitor"]["relabelings"]
    assert endpoint["metricRelabelings"] == values["metrics"]["serviceMonitor"]["metricRelabelings"]


def test_the_service_monitor_needs_a_ca_it_can_reach():
    secret_mode = {"certificates": {"mode": "secret", "secretName": "tls",
                                    "caBundle": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"}}
    with pytest.raises(helm.HelmRenderError) as err:
        chart().render({**secret_mode, "metrics": {"serviceMonitor": {"enabled": True}}},
                       name="podgrace", namespace=NAMESPACE)
    assert "metrics.serviceMonitor with certificates.mode secret needs metrics.serviceMonitor.tlsConfig" in str(err.value)
    with pytest.raises(helm.HelmRenderError) as err:
        chart().render({"metrics": {"serviceMonitor": {"enabled": True, "namespace": "monitoring"}}},
                       name="podgrace", namespace=NAMESPACE)
    assert "metrics.serviceMonitor.namespace must be the release namespace" in str(err.value)
    own = {"serverName": "podgrace.podgrace-system.svc", "ca": {"configMap": {"name": "webhook-ca", "key": "ca.crt"}}}
    r = render({**secret_mode, "metrics": {"serviceMonitor": {"enabled": True, "tlsConfig": own}}})
    assert r.one("ServiceMonitor")["spec"]["endpoints"][0]["tlsConfig"] == own


@pytest.mark.parametrize("kind", sorted(MONITORING_KINDS))
def test_the_operator_schemas_reject_what_the_operator_would(kind):
    # Guard against a vacuous schema: unknown fields, wrong enums, missing required fields fail.
    r = render({"metrics": {"serviceMonitor": {"enabled": True}, "prometheusRule": {"enabled": True}}})
    good = r.one(kind)
    schema = operator_schema(f"{kind.lower()}.json")
    jsonschema.validate(good, schema)
    if kind == "ServiceMonitor":
        breakages = [
            lambda o: o["spec"]["endpoints"][0].update(scheme="ftp"),
            lambda o: o["spec"]["endpoints"][0].update(interval="30 seconds"),
            lambda o: o["spec"]["endpoints"][0]["tlsConfig"].update(caBundle="x"),
            lambda o: o["spec"].pop("selector"),
            lambda o: o["spec"].update(endpoint=[]),
        ]
    else:
        breakages = [
            lambda o: o["spec"]["groups"][0]["rules"][0].pop("expr"),
            lambda o: o["spec"]["groups"][0]["rules"][0].update(record="x"),
            lambda o: o["spec"]["groups"][0]["rules"][0].update({"for": "ten minutes"}),
            lambda o: o["spec"]["groups"][0]["rules"][0].update(severity="warning"),
            lambda o: o["spec"]["groups"][0].pop("name"),
            lambda o: o["spec"]["groups"][0]["rules"][0]["labels"].update(severity=2),
        ]
    for i, breakage in enumerate(breakages):
        bad = copy.deepcopy(good)
        breakage(bad)
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, schema)
            pytest.fail(f"breakage {i} of {kind} passed the schema")


# PrometheusRule and the plain rules file ----------------------------------------------------------


def test_the_prometheus_rule_holds_every_alert_and_passes_promtool(tmp_path):
    r = render({"metrics": {"prometheusRule": {"enabled": True, "labels": {"release": "kube-prometheus-stack"}}}})
    rule = r.one("PrometheusRule")
    assert rule["metadata"]["namespace"] == NAMESPACE
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert list(alerts(rule["spec"])) == ALERTS
    names = [g["name"] for g in rule["spec"]["groups"]]
    assert len(names) == len(set(names))
    promtool_check(rule["spec"], tmp_path)


def test_every_alert_has_a_for_a_severity_a_summary_a_description_and_a_runbook():
    operations = OPERATIONS.read_text()
    headings = {re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-")
                for h in re.findall(r"^#+ (.+)$", operations, flags=re.MULTILINE)}
    for name, rule in alerts(rule_groups()).items():
        assert re.fullmatch(r"[0-9]+[mh]", rule["for"]), name
        assert rule["labels"]["severity"] in {"warning", "critical"}, name
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], name
        url = rule["annotations"]["runbook_url"]
        assert url == f"https://github.com/podgrace/podgrace/blob/main/docs/OPERATIONS.md#{name.lower()}"
        assert name.lower() in headings, f"docs/OPERATIONS.md has no section {name}"


def test_the_rules_follow_the_values(tmp_path):
    values = {
        "fullnameOverride": "gate",
        "webhook": {"timeoutSeconds": 10, "failurePolicy": "Fail"},
        "policyConfigMapName": "graceful",
        "metrics": {"prometheusRule": {
            "namespace": "monitoring",
            "additionalAlertLabels": {"team": "platform", "severity": "info"},
            "disabledAlerts": ["PodgraceNotReady", "PodgraceNoAdmissions"],
            "runbookBaseURL": "https://wiki.example/podgrace",
        }},
    }
    spec = rule_groups(values, namespace="platform")
    got = alerts(spec)
    assert set(got) == set(ALERTS) - {"PodgraceNotReady", "PodgraceNoAdmissions"}
    for name, rule in got.items():
        assert rule["labels"]["team"] == "platform"
        # An extra label cannot lower an alert's severity.
        assert rule["labels"]["severity"] != "info"
        assert rule["annotations"]["runbook_url"] == f"https://wiki.example/podgrace#{name.lower()}"
    # failurePolicy Fail: failing or timing-out calls block pod creation.
    assert got["PodgraceWebhookCallsFailing"]["labels"]["severity"] == "critical"
    assert got["PodgraceAdmissionNearTimeout"]["labels"]["severity"] == "critical"
    assert "pod creation in opted-in namespaces is failing" in got["PodgraceWebhookCallsFailing"]["annotations"]["description"]
    assert got["PodgraceAdmissionNearTimeout"]["expr"].count("> 0.8 * 10\n") == 2
    assert "kubectl describe configmap graceful" in got["PodgracePolicyRefused"]["annotations"]["description"]
    promtool_check(spec, tmp_path)
    # The readiness alert follows the release's namespace and names.
    ready = alerts(rule_groups({"fullnameOverride": "gate"}, namespace="platform"))["PodgraceNotReady"]["expr"]
    assert 'namespace="platform"' in ready and 'pod=~"gate-[a-z0-9]+-[a-z0-9]+"' in ready
    # A short timeout lowers podgrace's own latency threshold below it.
    assert alerts(rule_groups({"webhook": {"timeoutSeconds": 1}}))["PodgraceAdmissionLatencyHigh"][
        "expr"].strip().endswith("> 0.5")


def test_the_rule_values_are_checked_by_the_schema():
    for values, where in [
        ({"metrics": {"prometheusRule": {"disabledAlerts": ["PodgraceDown"]}}}, "/metrics/prometheusRule/disabledAlerts/0"),
        ({"metrics": {"prometheusRule": {"runbookBaseURL": "docs/OPERATIONS.md"}}}, "/metrics/prometheusRule/runbookBaseURL"),
        ({"metrics": {"serviceMonitor": {"interval": "30 seconds"}}}, "/metrics/serviceMonitor/interval"),
        ({"metrics": {"scheme": "grpc"}}, "/metrics/scheme"),
        ({"metrics": {"httpPort": 8443}}, "/metrics/httpPort"),
    ]:
        with pytest.raises(helm.HelmValuesError) as err:
            chart().validate_schema(values)
        assert where in str(err.value)


def test_the_plain_rules_file_is_the_chart_rendered_with_its_defaults(tmp_path):
    # One source: deploy/prometheus/podgrace-rules.yaml is `make prometheus-rules`' output.
    assert RULES_FILE.read_text() == rules_file_text(), "run `make prometheus-rules`"
    assert yaml.safe_load(RULES_FILE.read_text()) == rule_groups()
    done = run_promtool("check", "rules", str(RULES_FILE))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 8 rules found" in done.stdout


def test_the_alert_unit_tests_pass_and_cover_every_alert_firing_and_not():
    done = run_promtool("test", "rules", RULES_TEST.name, cwd=RULES_TEST.parent)
    assert done.returncode == 0, done.stdout + done.stderr
    tests = yaml.safe_load(RULES_TEST.read_text())
    assert tests["rule_files"] == [RULES_FILE.name]
    fires, silent = set(), set()
    for test in tests["tests"]:
        for case in test.get("alert_rule_test", []):
            (fires if case["exp_alerts"] else silent).add(case["alertname"])
    assert fires == set(ALERTS), set(ALERTS) - fires
    assert silent == set(ALERTS), set(ALERTS) - silent


_SELECTOR = re.compile(r"([A-Za-z_:][A-Za-z0-9_:]*)\{([^}]*)\}")
_MATCHER = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*,?')


def selectors(text: str) -> list[tuple[str, list[tuple[str, str, str]]]]:
    """Each `metric{label op "value", ...}` in a PromQL expression or series: the metric and its
    matchers."""
    out = []
    for metric, body in _SELECTOR.findall(text):
        found = _MATCHER.findall(body)
        assert "".join(f'{l}{o}"{v}"' for l, o, v in found) == re.sub(r'\s|,', "", body), body
        out.append((metric, found))
    return out


def test_the_alerts_and_their_tests_use_the_external_series_as_their_exporters_write_them():
    assert set(EXTERNAL_SERIES) == set(EXTERNAL_METRICS)
    # The API server's type label: "admit" for the mutating webhook, "validating" for the
    # validating one (its dispatchers).
    rendered = render()
    webhook_type = {
        **{w["name"]: "admit" for w in rendered.one("MutatingWebhookConfiguration")["webhooks"]},
        **{w["name"]: "validating" for w in rendered.one("ValidatingWebhookConfiguration")["webhooks"]},
    }
    assert set(webhook_type) == {"pods.podgrace.io", "policies.podgrace.io"}, webhook_type

    def check(metric: str, label: str, op: str, value: str, where: str) -> None:
        documented = EXTERNAL_SERIES[metric]
        assert label in set(documented) | SCRAPE_LABELS, f"{where}: {metric} has no label {label}"
        allowed = documented.get(label)
        if allowed is not None and op in ("=", "=~"):
            for v in value.split("|") if op == "=~" else [value]:
                assert v in allowed, f"{where}: {metric} never has {label}={v!r}"

    # The rules select on labels the metrics have, with values they take.
    read = set()
    for rule in alerts(rule_groups()).values():
        for metric, matchers in selectors(rule["expr"]):
            if metric in EXTERNAL_SERIES:
                read.add(metric)
                for label, op, value in matchers:
                    check(metric, label, op, value, rule["alert"])
    assert read == set(EXTERNAL_SERIES)
    # The unit tests feed series with exactly the exporters' labels (and a scrape's).
    fed = set()
    for test in yaml.safe_load(RULES_TEST.read_text())["tests"]:
        for series in test["input_series"]:
            [(metric, matchers)] = selectors(series["series"])
            if metric not in EXTERNAL_SERIES:
                continue
            fed.add(metric)
            labels = {label: value for label, _, value in matchers}
            where = f"{test['name']}: {series['series']}"
            assert set(labels) - SCRAPE_LABELS == set(EXTERNAL_SERIES[metric]), where
            for label, value in labels.items():
                check(metric, label, "=", value, where)
            if metric.startswith("apiserver_") and labels["name"] in webhook_type:
                assert labels["type"] == webhook_type[labels["name"]], where
    assert fed == set(EXTERNAL_SERIES)


def test_promtool_catches_a_broken_rule(tmp_path):
    # Guard against a check that passes anything: a rule that does not parse fails.
    spec = rule_groups()
    spec["groups"][0]["rules"][0]["expr"] = "sum by (job (rate(podgrace_admission_requests_total[5m]))"
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(spec))
    done = run_promtool("check", "rules", str(path))
    assert done.returncode != 0


# Grafana dashboard ---------------------------------------------------------------------------------


def test_the_dashboard_configmap_carries_the_dashboard_for_the_sidecar():
    r = render({"metrics": {"dashboard": {"enabled": True}}})
    [cm] = [c for c in r.all("ConfigMap") if c["metadata"]["name"] == "podgrace-dashboard"]
    assert cm["metadata"]["namespace"] == NAMESPACE
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(cm["data"]["podgrace.json"]) == dashboard()
    custom = render({"metrics": {"dashboard": {
        "enabled": True, "namespace": "grafana", "labels": {"dashboards": "platform"},
        "annotations": {"grafana_folder": "Platform"}}}})
    [cm] = [c for c in custom.all("ConfigMap") if c["metadata"]["name"] == "podgrace-dashboard"]
    assert cm["metadata"]["namespace"] == "grafana"
    assert cm["metadata"]["labels"]["dashboards"] == "platform"
    assert cm["metadata"]["annotations"] == {"grafana_folder": "Platform"}


def test_the_dashboard_has_the_panels_an_operator_needs():
    board = dashboard()
    assert board["uid"] == "podgrace"
    titles = {p["title"] for p in panels(board)}
    for needed in ["Pod admissions by outcome", "Admitted without podgrace's changes (its own trouble)",
                   "Pod admission latency", "Injections by kind", "Injections by namespace (dashboard range)",
                   "Refused policies by namespace",
                   "Serving certificate expires in", "Log lines dropped"]:
        assert needed in titles
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    for panel in panels(board):
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert 'job=~"$job"' in target["expr"], (panel["title"], target["expr"])
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))


def test_every_dashboard_query_parses(tmp_path):
    # promtool parses every expression as a recording rule's (the queries with Grafana's variables
    # replaced as Grafana sends them).
    rules = [{"record": f"dashboard:panel_{i}_{t['refId'].lower()}", "expr": substitute(t["expr"])}
             for i, p in enumerate(panels(dashboard())) for t in p["targets"]]
    spec = {"groups": [{"name": "dashboard", "rules": rules}]}
    promtool_check(spec, tmp_path, "dashboard.yaml")
    # ... and the check is real: one broken query fails it.
    rules[0]["expr"] = rules[0]["expr"].replace("rate(", "rate((", 1)
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(spec))
    assert run_promtool("check", "rules", str(path)).returncode != 0


# Scrape annotations and the network policy -----------------------------------------------------


@pytest.mark.parametrize(("scheme", "port"), [("https", "8443"), ("http", "9090")])
def test_scrape_annotations_point_at_the_metrics_port(scheme, port):
    r = render({"metrics": {"scheme": scheme, "podAnnotations": True},
                "podAnnotations": {"example.com/team": "platform"}})
    annotations = r.pod["metadata"]["annotations"]
    assert annotations == {
        "example.com/team": "platform",
        "prometheus.io/scrape": "true",
        "prometheus.io/port": port,
        "prometheus.io/scheme": scheme,
        "prometheus.io/path": "/metrics",
    }
    assert int(port) in {p["containerPort"] for p in r.container["ports"]}


def test_the_network_policy_opens_the_plain_metrics_port_to_the_scrapers_only():
    scrapers = [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}]
    base = {"enabled": True, "apiServerCIDRs": ["10.0.0.10/32"]}
    r = render({"metrics": {"scheme": "http"}, "networkPolicy": {**base, "metricsFrom": scrapers}})
    webhook, metrics = r.one("NetworkPolicy")["spec"]["ingress"]
    assert webhook["ports"] == [{"port": "https", "protocol": "TCP"}]
    assert metrics == {"ports": [{"port": "metrics", "protocol": "TCP"}], "from": scrapers}
    # Nobody listed: the port stays closed; scheme https: no second rule at all.
    assert len(render({"metrics": {"scheme": "http"}, "networkPolicy": base}).one("NetworkPolicy")["spec"]["ingress"]) == 1
    assert len(render({"networkPolicy": {**base, "metricsFrom": scrapers}}).one("NetworkPolicy")["spec"]["ingress"]) == 1


def test_the_runbooks_document_every_alert_and_every_value_they_mention_exists():
    text = OPERATIONS.read_text()
    for name in ALERTS:
        assert f"### {name}" in text
    assert str(RULES_FILE.relative_to(REPO)) in text
    assert str(DASHBOARD.relative_to(REPO)) in text
