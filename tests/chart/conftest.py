"""Shared helpers of the Helm chart tests.

The chart is rendered with the real Helm v4 Go SDK (``helm_python``, no helm binary) and every
rendered object is validated against the Kubernetes 1.36 OpenAPI schemas (``kubernetes_validate``,
strict: unknown fields are errors) as it is rendered, whatever the test.
"""

from __future__ import annotations

import copy
import json
import logging
from functools import lru_cache
from pathlib import Path
from typing import Any

import helm_python as helm
import jsonschema
import kubernetes_validate
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "podgrace"
# Built by `cargo test --all-targets` (make test runs test-rust before test-chart).
PODGRACE = REPO / "target" / "debug" / "podgrace"

KUBERNETES_VERSION = "1.36.0"
RELEASE = "podgrace"
NAMESPACE = "podgrace-system"

# cert-manager's kinds are CRDs: kubernetes-validate has no schema for them. Exactly these are not
# schema-validated (the cert-manager tests check their fields); any other kind without a schema is
# an error.
CERT_MANAGER_KINDS = frozenset({("cert-manager.io/v1", "Issuer"), ("cert-manager.io/v1", "Certificate")})

# The Prometheus Operator's kinds are CRDs too: they are validated against JSON schemas written from
# the Operator's documented API (tests/chart/schemas), strict like the rest.
PROMETHEUS_OPERATOR_SCHEMAS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): "servicemonitor.json",
    ("monitoring.coreos.com/v1", "PrometheusRule"): "prometheusrule.json",
}
SCHEMAS = Path(__file__).resolve().parent / "schemas"

# The library's own log records (e.g. `required` warnings) go to Python logging, which pytest
# captures, instead of the terminal.
helm.enable_logging(logging.WARNING)


@lru_cache(maxsize=1)
def chart() -> helm.Chart:
    return helm.Chart.load(CHART)


@lru_cache(maxsize=None)
def operator_schema(file: str) -> dict[str, Any]:
    return json.loads((SCHEMAS / file).read_text())


def validate_manifest(obj: dict[str, Any]) -> None:
    """Validate one object against the Kubernetes schemas, or the Prometheus Operator's kinds
    against ours; cert-manager kinds are skipped."""
    kind = (obj.get("apiVersion"), obj.get("kind"))
    if kind in CERT_MANAGER_KINDS:
        return
    if kind in PROMETHEUS_OPERATOR_SCHEMAS:
        jsonschema.validate(obj, operator_schema(PROMETHEUS_OPERATOR_SCHEMAS[kind]))
        return
    kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


class Rendered:
    """The objects of one render, by kind and name."""

    def __init__(self, files: dict[str, str]):
        self.files = files
        self.notes = files.get(f"{CHART.name}/templates/NOTES.txt", "")
        self.objects: list[dict[str, Any]] = []
        for path, text in sorted(files.items()):
            if not path.endswith((".yaml", ".yml")):
                continue
            for doc in yaml.safe_load_all(text):
                if doc:
                    self.objects.append(doc)

    def all(self, kind: str) -> list[dict[str, Any]]:
        return [o for o in self.objects if o["kind"] == kind]

    def one(self, kind: str) -> dict[str, Any]:
        found = self.all(kind)
        assert len(found) == 1, f"expected one {kind}, got {[o['metadata']['name'] for o in found]}"
        return found[0]

    def named(self, kind: str, name: str) -> dict[str, Any]:
        found = [o for o in self.all(kind) if o["metadata"]["name"] == name]
        assert len(found) == 1, f"expected one {kind} {name}, got {len(found)}"
        return found[0]

    def kinds(self) -> list[str]:
        return sorted(o["kind"] for o in self.objects)

    # Shortcuts for the objects every test looks at.
    @property
    def deployment(self) -> dict[str, Any]:
        return self.one("Deployment")

    @property
    def pod(self) -> dict[str, Any]:
        return self.deployment["spec"]["template"]

    @property
    def container(self) -> dict[str, Any]:
        containers = self.pod["spec"]["containers"]
        assert len(containers) == 1
        return containers[0]

    @property
    def env(self) -> dict[str, str]:
        """The container's variables with a literal value."""
        return {e["name"]: e.get("value") for e in self.container["env"] if "valueFrom" not in e}

    @property
    def env_from(self) -> dict[str, dict[str, Any]]:
        """The container's variables the kubelet fills in (valueFrom)."""
        return {e["name"]: e["valueFrom"] for e in self.container["env"] if "valueFrom" in e}

    @property
    def mutating(self) -> dict[str, Any]:
        webhooks = self.one("MutatingWebhookConfiguration")["webhooks"]
        assert len(webhooks) == 1
        return webhooks[0]

    @property
    def validating(self) -> dict[str, Any]:
        webhooks = self.one("ValidatingWebhookConfiguration")["webhooks"]
        assert len(webhooks) == 1
        return webhooks[0]


@lru_cache(maxsize=64)
def _render_cached(values_json: str, name: str, namespace: str) -> Rendered:
    files = chart().render(json.loads(values_json), name=name, namespace=namespace)
    rendered = Rendered(files)
    for obj in rendered.objects:
        validate_manifest(obj)
    return rendered


def render(values: dict[str, Any] | None = None, *, name: str = RELEASE, namespace: str = NAMESPACE) -> Rendered:
    """Render the chart as `helm template NAME charts/podgrace -n NAMESPACE` would, and validate
    every object. Results are cached: treat them as read-only (tests get deep copies)."""
    rendered = _render_cached(json.dumps(values or {}, sort_keys=True), name, namespace)
    return copy.deepcopy(rendered)


def selector_matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """Kubernetes label-selector semantics (matchLabels AND every matchExpression)."""
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


@pytest.fixture(scope="session")
def podgrace_bin() -> Path:
    """The podgrace binary. Missing is a failure, not a skip: `make test` builds it first."""
    assert PODGRACE.is_file(), (
        f"{PODGRACE.relative_to(REPO)} is missing: build it first "
        "(`make test` runs `cargo test --all-targets`, which builds it, before the chart tests)"
    )
    return PODGRACE
