"""The admission webhook configurations and the three certificate modes."""

from __future__ import annotations

import base64
import datetime
import shutil
import subprocess

import helm_python as helm
import pytest
import yaml
from conftest import CHART, NAMESPACE, render, selector_matches
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

DNS_NAMES = [
    "podgrace",
    "podgrace.podgrace-system",
    "podgrace.podgrace-system.svc",
    "podgrace.podgrace-system.svc.cluster.local",
]


def ns(name: str, inject: str | None = "enabled") -> dict[str, str]:
    labels = {"kubernetes.io/metadata.name": name}
    if inject is not None:
        labels["podgrace.io/inject"] = inject
    return labels


# Mutating webhook ---------------------------------------------------------------------------------


def test_the_mutating_webhook_sees_only_pod_creations():
    hook = render().mutating
    assert hook["name"] == "pods.podgrace.io"
    assert hook["rules"] == [{
        "apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"],
        "resources": ["pods"], "scope": "Namespaced",
    }]


def test_the_mutating_webhook_selects_only_namespaces_that_opt_in():
    selector = render().mutating["namespaceSelector"]
    assert selector == {
        "matchLabels": {"podgrace.io/inject": "enabled"},
        "matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "NotIn",
                              "values": [NAMESPACE, "kube-system"]}],
    }
    assert selector_matches(selector, ns("shop"))
    assert not selector_matches(selector, ns("shop", inject=None))
    assert not selector_matches(selector, ns("shop", inject="disabled"))
    assert not selector_matches(selector, ns("kube-system"))
    assert not selector_matches(selector, ns(NAMESPACE))


def test_more_namespaces_can_be_excluded():
    values = render({"webhook": {"excludeNamespaces": ["monitoring", "kube-system"]}}).mutating[
        "namespaceSelector"]["matchExpressions"][0]["values"]
    assert values == [NAMESPACE, "kube-system", "monitoring"]


def test_the_mutating_webhook_lets_pods_opt_out_by_label():
    selector = render().mutating["objectSelector"]
    assert selector == {"matchExpressions": [
        {"key": "podgrace.io/inject", "operator": "NotIn", "values": ["disabled", "false"]}]}
    assert selector_matches(selector, {"app": "shop"})
    assert selector_matches(selector, {"podgrace.io/inject": "enabled"})
    assert not selector_matches(selector, {"podgrace.io/inject": "disabled"})
    assert not selector_matches(selector, {"podgrace.io/inject": "false"})


def test_the_mutating_webhook_is_side_effect_free_reinvoked_if_needed_and_fails_open():
    hook = render().mutating
    assert hook["sideEffects"] == "None"
    assert hook["reinvocationPolicy"] == "IfNeeded"
    assert hook["matchPolicy"] == "Equivalent"
    assert hook["admissionReviewVersions"] == ["v1"]
    assert hook["failurePolicy"] == "Ignore"
    assert hook["timeoutSeconds"] == 5


def test_failure_policy_fail_and_the_timeout_come_from_the_values():
    r = render({"webhook": {"failurePolicy": "Fail", "timeoutSeconds": 10}})
    assert r.mutating["failurePolicy"] == "Fail"
    assert r.mutating["timeoutSeconds"] == 10
    # The validating webhook has its own setting.
    assert r.validating["failurePolicy"] == "Ignore"
    assert render({"validatingWebhook": {"failurePolicy": "Fail"}}).validating["failurePolicy"] == "Fail"


@pytest.mark.parametrize(("kind", "path"), [("MutatingWebhookConfiguration", "/mutate"),
                                            ("ValidatingWebhookConfiguration", "/validate")])
def test_the_webhooks_call_the_service_on_its_port_and_path(kind, path):
    r = render()
    svc = r.one("Service")
    client = r.one(kind)["webhooks"][0]["clientConfig"]
    assert "url" not in client
    assert client["service"] == {"name": svc["metadata"]["name"], "namespace": NAMESPACE,
                                 "path": path, "port": 443}
    assert svc["spec"]["ports"][0]["port"] == 443


# Validating webhook -------------------------------------------------------------------------------


def test_the_validating_webhook_sees_only_writes_of_the_policy_configmaps():
    hook = render().validating
    assert hook["name"] == "policies.podgrace.io"
    assert hook["rules"] == [{
        "apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"],
        "resources": ["configmaps"], "scope": "Namespaced",
    }]
    assert hook["matchConditions"] == [{"name": "podgrace-policy-configmap",
                                        "expression": "object.metadata.name == 'podgrace-policy'"}]
    assert hook["sideEffects"] == "None"
    assert hook["admissionReviewVersions"] == ["v1"]
    assert hook["failurePolicy"] == "Ignore"
    assert 1 <= hook["timeoutSeconds"] <= 30


def test_the_validating_webhook_follows_the_policy_configmap_name():
    hook = render({"policyConfigMapName": "graceful"}).validating
    assert hook["matchConditions"][0]["expression"] == "object.metadata.name == 'graceful'"


def test_the_validating_webhook_can_be_turned_off():
    r = render({"validatingWebhook": {"enabled": False}})
    assert r.all("ValidatingWebhookConfiguration") == []
    assert len(r.all("MutatingWebhookConfiguration")) == 1


# Certificates: helm -------------------------------------------------------------------------------


def helm_mode_pair(values=None):
    r = render({"certificates": {"mode": "helm"}, **(values or {})})
    secret = r.one("Secret")
    data = {k: base64.b64decode(v) for k, v in secret["data"].items()}
    return r, secret, data


def test_helm_mode_writes_a_ca_and_a_serving_certificate_for_the_service_names():
    r, secret, data = helm_mode_pair()
    assert secret["type"] == "kubernetes.io/tls"
    assert secret["metadata"]["name"] == "podgrace-tls"
    assert set(data) == {"ca.crt", "tls.crt", "tls.key"}
    ca = x509.load_pem_x509_certificate(data["ca.crt"])
    crt = x509.load_pem_x509_certificate(data["tls.crt"])
    key = serialization.load_pem_private_key(data["tls.key"], password=None)

    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    crt.verify_directly_issued_by(ca)
    assert crt.public_key().public_numbers() == key.public_key().public_numbers()
    sans = crt.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == DNS_NAMES
    usages = crt.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.SERVER_AUTH in usages
    days = (crt.not_valid_after_utc - datetime.datetime.now(datetime.timezone.utc)).days
    assert 3640 <= days <= 3650


def test_helm_mode_certificates_follow_the_release_name_and_namespace():
    r = render({"certificates": {"mode": "helm"}}, name="gate", namespace="platform")
    data = {k: base64.b64decode(v) for k, v in r.one("Secret")["data"].items()}
    crt = x509.load_pem_x509_certificate(data["tls.crt"])
    sans = crt.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    svc = r.one("Service")["metadata"]["name"]
    assert svc == "gate-podgrace"
    assert sans.get_values_for_type(x509.DNSName) == [
        svc, f"{svc}.platform", f"{svc}.platform.svc", f"{svc}.platform.svc.cluster.local"]
    assert r.mutating["clientConfig"]["service"]["name"] == svc


def test_helm_mode_puts_the_same_ca_in_the_secret_and_in_both_webhooks():
    r, secret, _ = helm_mode_pair()
    assert r.mutating["clientConfig"]["caBundle"] == secret["data"]["ca.crt"]
    assert r.validating["clientConfig"]["caBundle"] == secret["data"]["ca.crt"]
    assert "annotations" not in r.one("MutatingWebhookConfiguration")["metadata"]


LOOKUP = 'lookup "v1" "Secret" .Release.Namespace $secretName'


def test_helm_mode_reads_the_existing_secret_back_so_upgrades_keep_the_certificate(tmp_path):
    # lookup needs a cluster: offline (as here, and in `helm template`) it returns nothing and each
    # render generates a new pair.
    first, second = helm_mode_pair()[1], helm_mode_pair({"replicas": 3})[1]
    assert first["data"]["ca.crt"] != second["data"]["ca.crt"]
    # The template asks for the very Secret it writes, in the release namespace ...
    source = (CHART / "templates" / "webhooks.yaml").read_text()
    assert source.count(LOOKUP) == 1
    # ... and, given that Secret (lookup replaced by what a cluster would answer, in a copy of the
    # chart), reuses its three keys instead of generating new ones.
    copy_dir = tmp_path / "podgrace"
    shutil.copytree(CHART, copy_dir)
    existing = {"ca.crt": "Q0EK", "tls.crt": "Q1JUCg==", "tls.key": "S0VZCg=="}
    answer = '(dict "data" (dict "ca.crt" "Q0EK" "tls.crt" "Q1JUCg==" "tls.key" "S0VZCg=="))'
    (copy_dir / "templates" / "webhooks.yaml").write_text(source.replace(LOOKUP, answer))
    with helm.Chart.load(copy_dir) as chart:
        files = chart.render({"certificates": {"mode": "helm"}}, name="podgrace", namespace=NAMESPACE)
    objects = [o for o in yaml.safe_load_all(files["podgrace/templates/webhooks.yaml"]) if o]
    secret = next(o for o in objects if o["kind"] == "Secret")
    assert secret["data"] == existing
    for config in objects[1:]:
        assert config["webhooks"][0]["clientConfig"]["caBundle"] == existing["ca.crt"]
    # A Secret missing a key (e.g. no ca.crt) is not reused: a complete new pair is generated.
    partial = '(dict "data" (dict "tls.crt" "Q1JUCg==" "tls.key" "S0VZCg=="))'
    (copy_dir / "templates" / "webhooks.yaml").write_text(source.replace(LOOKUP, partial))
    with helm.Chart.load(copy_dir) as chart:
        files = chart.render({"certificates": {"mode": "helm"}}, name="podgrace", namespace=NAMESPACE)
    secret = next(o for o in yaml.safe_load_all(files["podgrace/templates/webhooks.yaml"]) if o)
    assert secret["data"]["tls.crt"] != existing["tls.crt"]
    assert b"BEGIN CERTIFICATE" in base64.b64decode(secret["data"]["ca.crt"])


# Certificates: cert-manager -----------------------------------------------------------------------


def test_cert_manager_mode_issues_the_serving_certificate_into_the_mounted_secret():
    r = render({"certificates": {"mode": "certManager"}})
    assert r.all("Secret") == []
    issuers = {i["metadata"]["name"]: i for i in r.all("Issuer")}
    certs = {c["metadata"]["name"]: c for c in r.all("Certificate")}
    assert set(issuers) == {"podgrace-selfsigned", "podgrace-ca"}
    assert set(certs) == {"podgrace-ca", "podgrace-serving"}

    assert issuers["podgrace-selfsigned"]["spec"] == {"selfSigned": {}}
    ca = certs["podgrace-ca"]["spec"]
    assert ca["isCA"] is True
    assert ca["issuerRef"] == {"group": "cert-manager.io", "kind": "Issuer", "name": "podgrace-selfsigned"}
    assert issuers["podgrace-ca"]["spec"] == {"ca": {"secretName": ca["secretName"]}}

    serving = certs["podgrace-serving"]["spec"]
    assert serving["issuerRef"] == {"group": "cert-manager.io", "kind": "Issuer", "name": "podgrace-ca"}
    assert serving["dnsNames"] == DNS_NAMES
    assert "server auth" in serving["usages"]
    assert serving["duration"] == "2160h" and serving["renewBefore"] == "360h"
    tls_volume = next(v for v in r.pod["spec"]["volumes"] if v["name"] == "tls")
    assert serving["secretName"] == tls_volume["secret"]["secretName"] == "podgrace-tls"
    assert serving["secretName"] != ca["secretName"]
    for obj in r.all("Issuer") + r.all("Certificate"):
        assert obj["apiVersion"] == "cert-manager.io/v1"
        assert obj["metadata"]["namespace"] == NAMESPACE


def test_cert_manager_mode_injects_the_ca_into_both_webhooks():
    r = render({"certificates": {"mode": "certManager"}})
    for kind in ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"):
        config = r.one(kind)
        assert config["metadata"]["annotations"] == {
            "cert-manager.io/inject-ca-from": f"{NAMESPACE}/podgrace-serving"}
        assert "caBundle" not in config["webhooks"][0]["clientConfig"]


# Certificates: existing Secret --------------------------------------------------------------------


def test_secret_mode_mounts_the_existing_secret_and_encodes_the_pem_ca(podgrace_bin, tmp_path):
    # The workflow of certs/README.md: podgrace certs, then the Secret, then helm install.
    subprocess.run([podgrace_bin, "certs", "--service", "podgrace", "--namespace", NAMESPACE,
                    "--out-dir", tmp_path], check=True, capture_output=True, timeout=30)
    pem = (tmp_path / "ca.crt").read_text()
    r = render({"certificates": {"mode": "secret", "secretName": "my-tls", "caBundle": pem}})
    assert r.all("Secret") == [] and r.all("Certificate") == [] and r.all("Issuer") == []
    tls_volume = next(v for v in r.pod["spec"]["volumes"] if v["name"] == "tls")
    assert tls_volume["secret"]["secretName"] == "my-tls"
    for hook in (r.mutating, r.validating):
        assert base64.b64decode(hook["clientConfig"]["caBundle"]).decode() == pem
    # The certificate podgrace certs makes covers the names the webhooks call.
    crt = x509.load_pem_x509_certificate((tmp_path / "tls.crt").read_bytes())
    sans = crt.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    svc = r.mutating["clientConfig"]["service"]
    assert f"{svc['name']}.{svc['namespace']}.svc" in sans.get_values_for_type(x509.DNSName)
    crt.verify_directly_issued_by(x509.load_pem_x509_certificate(pem.encode()))
