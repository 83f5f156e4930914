"""The chart as a whole: metadata, lint, values schema, and Kubernetes schema validity of
everything it renders."""

from __future__ import annotations

import copy

import helm_python as helm
import kubernetes_validate
import pytest
import yaml
from conftest import (
    CERT_MANAGER_KINDS,
    CHART,
    KUBERNETES_VERSION,
    NAMESPACE,
    PROMETHEUS_OPERATOR_SCHEMAS,
    chart,
    render,
)

# Value sets that together reach every branch of the templates.
SCENARIOS = {
    "defaults": {},
    "cert-manager": {"certificates": {"mode": "certManager"}},
    "existing-secret": {
        "certificates": {
            "mode": "secret",
            "secretName": "podgrace-tls",
            "caBundle": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
        }
    },
    "failure-policy-fail": {"webhook": {"failurePolicy": "Fail"}, "validatingWebhook": {"failurePolicy": "Fail"}},
    "single-replica-no-validation": {"replicas": 1, "validatingWebhook": {"enabled": False}},
    "network-policy": {"networkPolicy": {"enabled": True, "apiServerCIDRs": ["10.0.0.10/32"],
                                         "extraFrom": [{"podSelector": {}}]}},
    "scheduling": {
        "podAntiAffinity": {"type": "hard"},
        "topologySpreadConstraints": [
            {"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "ScheduleAnyway"}
        ],
        "nodeSelector": {"kubernetes.io/os": "linux"},
        "tolerations": [{"key": "CriticalAddonsOnly", "operator": "Exists"}],
        "priorityClassName": "system-cluster-critical",
    },
    "monitoring-https": {"metrics": {"podAnnotations": True, "serviceMonitor": {"enabled": True},
                                     "prometheusRule": {"enabled": True}, "dashboard": {"enabled": True}}},
    "monitoring-http-autoscaled": {
        "metrics": {"scheme": "http", "podAnnotations": True,
                    "serviceMonitor": {"enabled": True, "labels": {"release": "prom"}},
                    "prometheusRule": {"enabled": True, "additionalAlertLabels": {"team": "platform"}},
                    "dashboard": {"enabled": True}},
        "networkPolicy": {"enabled": True, "apiServerCIDRs": ["10.0.0.10/32"],
                          "metricsFrom": [{"podSelector": {}}]},
        "autoscaling": {"enabled": True, "targetMemoryUtilizationPercentage": 80},
        "events": {"enabled": False},
    },
    "everything-set": {
        "image": {"repository": "registry.example/podgrace", "tag": "0.2.0", "pullPolicy": "Always"},
        "imagePullSecrets": [{"name": "regcred"}],
        "serviceAccount": {"annotations": {"example.com/owner": "platform"}},
        "policyConfigMapName": "graceful-policy",
        "policy": {"shutdownSeconds": 45, "preStop": {"sleepSeconds": 15},
                   "startup": {"inject": True, "maxSeconds": 120}},
        "log": {"format": "text", "level": "debug"},
        "server": {"drainSeconds": 10, "shutdownTimeoutSeconds": 40, "kubeVersion": "1.30",
                   "extraEnv": [{"name": "PODGRACE_MAX_CONNECTIONS", "value": "256"}]},
        "webhook": {"timeoutSeconds": 3, "excludeNamespaces": ["monitoring"]},
        "podAnnotations": {"example.com/team": "platform"},
        "podLabels": {"team": "platform"},
        "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": [
                {"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64", "arm64"]}]}]}}},
    },
}


def test_the_chart_is_a_v2_chart_for_kubernetes_1_30_and_later():
    meta = chart().metadata
    assert meta["apiVersion"] == "v2"
    assert meta["name"] == "podgrace"
    assert meta["version"] == "0.1.0"
    assert meta["appVersion"] == "0.1.0"
    assert meta["kubeVersion"] == ">=1.30.0-0"


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_every_rendered_manifest_is_valid_kubernetes_1_36(scenario):
    # render() validates each object (strict: unknown fields are errors); count them here so that
    # a scenario rendering nothing cannot pass.
    rendered = render(SCENARIOS[scenario])
    crds = CERT_MANAGER_KINDS | set(PROMETHEUS_OPERATOR_SCHEMAS)
    validated = [o for o in rendered.objects if (o["apiVersion"], o["kind"]) not in crds]
    assert len(validated) >= 8, rendered.kinds()
    for obj in validated:
        assert kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True) == "1.36"


def test_only_cert_manager_kinds_are_left_unvalidated():
    # The one exception to schema validation is cert-manager's CRDs, which have no schema in
    # kubernetes-validate; they only appear in certManager mode.
    kinds = {(o["apiVersion"], o["kind"]) for s in SCENARIOS.values() for o in render(s).objects}
    assert kinds & CERT_MANAGER_KINDS == CERT_MANAGER_KINDS
    for values in SCENARIOS.values():
        if values.get("certificates", {}).get("mode") != "certManager":
            assert not {(o["apiVersion"], o["kind"]) for o in render(values).objects} & CERT_MANAGER_KINDS


def test_the_kubernetes_schema_check_rejects_what_a_cluster_would_reject():
    # Guard against a vacuous validator: an unknown field and a wrong type must both fail.
    deployment = render().deployment
    bad = copy.deepcopy(deployment)
    bad["spec"]["template"]["spec"]["containers"][0]["securityContext"]["readOnlyRootFilesystm"] = True
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, KUBERNETES_VERSION, strict=True)
    bad = copy.deepcopy(deployment)
    bad["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_the_chart_lints_clean_in_strict_mode(scenario):
    report = helm.lint(CHART, SCENARIOS[scenario], strict=True, namespace=NAMESPACE)
    assert report["errors"] == []
    # Severity 1 is informational ("icon is recommended"); warnings (2) and errors (3) are not
    # allowed.
    assert [m for m in report["messages"] if m["severity"] >= 2] == []


def test_the_default_values_are_documented_and_pass_the_schema():
    chart().validate_schema({})
    text = (CHART / "values.yaml").read_text()
    values = yaml.safe_load(text)
    lines = text.splitlines()
    for key in values:
        # Every top-level key has a comment right above it or inside its block.
        at = lines.index(next(line for line in lines if line.startswith(f"{key}:")))
        block = []
        for line in lines[at + 1:]:
            if line and not line.startswith((" ", "#")):
                break
            block.append(line)
        assert lines[at - 1].startswith("#") or any("#" in line for line in block), (
            f"values.yaml: {key} is not documented"
        )
    assert chart().values == values


BAD_VALUES = {
    "failurePolicy not an enum value": ({"webhook": {"failurePolicy": "Maybe"}}, "/webhook/failurePolicy"),
    "validating failurePolicy not an enum value": (
        {"validatingWebhook": {"failurePolicy": "ignore"}}, "/validatingWebhook/failurePolicy"),
    "unknown certificates mode": ({"certificates": {"mode": "letsencrypt"}}, "/certificates/mode"),
    "unknown log format": ({"log": {"format": "xml"}}, "/log/format"),
    "unknown pull policy": ({"image": {"pullPolicy": "Sometimes"}}, "/image/pullPolicy"),
    "unknown top-level key": ({"replicaCount": 3}, "replicaCount"),
    "unknown nested key": ({"webhook": {"timeout": 5}}, "timeout"),
    "misspelt policy field": ({"policy": {"shutdownSecond": 30}}, "shutdownSecond"),
    "timeoutSeconds above 30": ({"webhook": {"timeoutSeconds": 60}}, "/webhook/timeoutSeconds"),
    "timeoutSeconds below 1": ({"webhook": {"timeoutSeconds": 0}}, "/webhook/timeoutSeconds"),
    "zero replicas": ({"replicas": 0}, "/replicas"),
    "replicas as a string": ({"replicas": "2"}, "/replicas"),
    "negative drain": ({"server": {"drainSeconds": -1}}, "/server/drainSeconds"),
    "bad policy ConfigMap name": ({"policyConfigMapName": "Podgrace Policy"}, "/policyConfigMapName"),
    "bad kube version": ({"server": {"kubeVersion": "latest"}}, "/server/kubeVersion"),
    "bad anti-affinity type": ({"podAntiAffinity": {"type": "always"}}, "/podAntiAffinity/type"),
    "network policy source not a CIDR": (
        {"networkPolicy": {"apiServerCIDRs": ["10.0.0.1"]}}, "/networkPolicy/apiServerCIDRs/0"),
}


@pytest.mark.parametrize("case", sorted(BAD_VALUES))
def test_the_schema_rejects_bad_values_naming_the_key(case):
    values, where = BAD_VALUES[case]
    with pytest.raises(helm.HelmValuesError) as err:
        chart().validate_schema(values)
    assert where in str(err.value)
    # `helm install` / `helm template` refuse them too, before rendering anything.
    with pytest.raises(helm.HelmValuesError):
        chart().render(values, name="podgrace", namespace=NAMESPACE)


def test_secret_mode_without_secret_name_fails_with_a_clear_error():
    with pytest.raises(helm.HelmRenderError) as err:
        chart().render({"certificates": {"mode": "secret", "caBundle": "x"}}, name="podgrace", namespace=NAMESPACE)
    assert "certificates.secretName is required when certificates.mode is secret" in str(err.value)


def test_secret_mode_without_ca_bundle_fails_with_a_clear_error():
    with pytest.raises(helm.HelmRenderError) as err:
        chart().render({"certificates": {"mode": "secret", "secretName": "tls"}}, name="podgrace", namespace=NAMESPACE)
    assert "certificates.caBundle is required when certificates.mode is secret" in str(err.value)


def test_secret_mode_rejects_a_ca_bundle_that_is_not_pem():
    values = {"certificates": {"mode": "secret", "secretName": "tls", "caBundle": "LS0tLS1CRUdJTg=="}}
    with pytest.raises(helm.HelmRenderError) as err:
        chart().render(values, name="podgrace", namespace=NAMESPACE)
    assert "certificates.caBundle must be a PEM certificate" in str(err.value)


def test_an_existing_service_account_must_be_named():
    with pytest.raises(helm.HelmRenderError) as err:
        chart().render({"serviceAccount": {"create": False}}, name="podgrace", namespace=NAMESPACE)
    assert "serviceAccount.name is required" in str(err.value)


def test_every_namespaced_object_is_in_the_release_namespace():
    for values in SCENARIOS.values():
        for obj in render(values, namespace="platform").objects:
            if obj["kind"] in ("ClusterRole", "ClusterRoleBinding", "MutatingWebhookConfiguration",
                               "ValidatingWebhookConfiguration"):
                assert "namespace" not in obj["metadata"]
            else:
                assert obj["metadata"]["namespace"] == "platform", obj["kind"]


def test_the_notes_tell_the_next_commands():
    notes = render().notes
    assert "kubectl label namespace NAME podgrace.io/inject=enabled" in notes
    assert "podgrace mutate -f" in notes
    assert "kubectl -n NAME create configmap podgrace-policy --from-file=policy.yaml" in notes
    assert "podgrace policy check" in notes
    assert "cert-manager must be running" in render({"certificates": {"mode": "certManager"}}).notes
    assert "(2 replica(s)," in notes and "Monitoring" not in notes
    autoscaled = render({"autoscaling": {"enabled": True}, "metrics": {"prometheusRule": {"enabled": True}}}).notes
    assert "(2 to 5 replicas, autoscaled," in autoscaled
    assert "Monitoring: PrometheusRule." in autoscaled
