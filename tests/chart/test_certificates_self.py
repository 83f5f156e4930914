"""certificates.mode self (the default): podgrace keeps its own certificate and caBundle, so the chart
renders the same bytes every time (Argo CD, Flux), and binds podgrace only the rights it needs."""

from __future__ import annotations

import json
import os
import subprocess

import helm_python as helm
import pytest
from conftest import CHART, NAMESPACE, REPO, RELEASE, Rendered, chart, render, validate_manifest

RBAC_FIXTURE = REPO / "tests" / "fixtures" / "rbac" / "serviceaccount-self-certificates.json"


def fresh_render(values=None, name=RELEASE, namespace=NAMESPACE) -> dict[str, str]:
    """An uncached render by a freshly loaded chart: what `helm template` does on each sync."""
    with helm.Chart.load(CHART) as loaded:
        return loaded.render(values or {}, name=name, namespace=namespace)


def test_mode_self_is_the_default():
    r = render()
    assert r.deployment["spec"]["template"]["spec"]["containers"][0]["env"][1] == {
        "name": "PODGRACE_CERTIFICATES", "value": "self"}


def test_every_offline_render_is_byte_identical():
    first, second = fresh_render(), fresh_render()
    third = chart().render({}, name=RELEASE, namespace=NAMESPACE)
    assert first == second == third
    # Also with everything optional turned on.
    everything = {"metrics": {"serviceMonitor": {"enabled": True}, "prometheusRule": {"enabled": True}},
                  "networkPolicy": {"enabled": True, "apiServerCIDRs": ["10.0.0.10/32"]},
                  "autoscaling": {"enabled": True}, "audit": {"rbac": {"create": True}}}
    assert fresh_render(everything) == fresh_render(everything)


def test_the_helm_mode_in_contrast_generates_a_new_ca_on_every_offline_render():
    # What the issue measured: this is why mode self exists, and it shows the comparison above
    # can fail.
    values = {"certificates": {"mode": "helm"}}
    assert fresh_render(values) != fresh_render(values)


def test_no_secret_and_no_ca_bundle_are_rendered():
    r = render()
    assert r.all("Secret") == []
    for config in r.all("MutatingWebhookConfiguration") + r.all("ValidatingWebhookConfiguration"):
        for hook in config["webhooks"]:
            assert "caBundle" not in hook["clientConfig"]
            assert hook["clientConfig"]["service"]["name"] == "podgrace"
        assert "annotations" not in config["metadata"]


def rules_bound_to(r: Rendered, service_account: str) -> list[dict]:
    """Every rule of every (Cluster)Role bound to the ServiceAccount, a Role's with its namespace."""
    rules = []
    for binding in r.all("ClusterRoleBinding") + r.all("RoleBinding"):
        if not any(s["kind"] == "ServiceAccount" and s["name"] == service_account
                   and s["namespace"] == NAMESPACE for s in binding["subjects"]):
            continue
        role = r.named(binding["roleRef"]["kind"], binding["roleRef"]["name"])
        for rule in role["rules"]:
            if role["kind"] == "Role":
                rule = {"namespace": role["metadata"]["namespace"], **rule}
            rules.append(rule)
    return rules


def canonical(rules: list[dict]) -> list[str]:
    return sorted(json.dumps(rule, sort_keys=True) for rule in rules)


def test_the_service_account_gets_exactly_the_rules_the_end_to_end_tests_run_with():
    # tests/self_certificates.rs runs podgrace against the test API server limited to the rules in
    # the fixture; here the chart must bind exactly those.
    expected = json.loads(RBAC_FIXTURE.read_text())["rules"]
    assert canonical(rules_bound_to(render(), "podgrace")) == canonical(expected)


def test_secrets_are_limited_by_name_except_create_which_rbac_cannot_limit():
    r = render()
    role = r.named("Role", "podgrace-certificates")
    secrets = [rule for rule in role["rules"] if rule["resources"] == ["secrets"]]
    assert {"resourceNames": ["podgrace-certs"], "verbs": ["get", "update"]}.items() <= secrets[0].items()
    assert secrets[1] == {"apiGroups": [""], "resources": ["secrets"], "verbs": ["create"]}
    assert role["metadata"]["namespace"] == NAMESPACE
    # Never list, watch, patch or delete on Secrets, in any role.
    for rule in rules_bound_to(r, "podgrace"):
        if "secrets" in rule["resources"]:
            assert set(rule["verbs"]) <= {"get", "create", "update"}
    # The webhook configurations: by name only.
    cluster = r.named("ClusterRole", "podgrace-certificates")
    assert all(rule["resourceNames"] == ["podgrace"] for rule in cluster["rules"])


def test_the_names_follow_the_release_and_the_validating_webhook():
    r = render({"validatingWebhook": {"enabled": False}}, name="gate", namespace="platform")
    assert r.env["PODGRACE_CERT_SECRET"] == "gate-podgrace-certs"
    assert r.env["PODGRACE_SERVICE"] == "gate-podgrace"
    assert r.env["PODGRACE_MUTATING_WEBHOOK"] == "gate-podgrace"
    assert "PODGRACE_VALIDATING_WEBHOOK" not in r.env
    cluster = r.named("ClusterRole", "gate-podgrace-certificates")
    assert [rule["resources"] for rule in cluster["rules"]] == [["mutatingwebhookconfigurations"]]
    assert cluster["rules"][0]["resourceNames"] == ["gate-podgrace"]
    role = r.named("Role", "gate-podgrace-certificates")
    assert role["rules"][0]["resourceNames"] == ["gate-podgrace-certs"]
    assert role["metadata"]["namespace"] == "platform"


def test_lifetimes_follow_the_values_and_a_renewal_after_expiry_is_refused():
    r = render({"certificates": {"self": {"validityDays": 30, "renewBeforeDays": 10}}})
    assert r.env["PODGRACE_CERT_VALIDITY_SECONDS"] == str(30 * 86400)
    assert r.env["PODGRACE_CERT_RENEW_BEFORE_SECONDS"] == str(10 * 86400)
    with pytest.raises(Exception) as err:
        chart().render({"certificates": {"self": {"validityDays": 10, "renewBeforeDays": 10}}},
                       name=RELEASE, namespace=NAMESPACE)
    assert "certificates.self.renewBeforeDays must be less than certificates.self.validityDays" in str(err.value)


def apply_two_renders(tmp_path, values) -> str:
    """Renders twice offline and has tests/self_certificates.rs apply both renders (server-side
    apply) to its test API server while two replicas of the real binary serve and a verifying
    client plays the API server calling the webhook; the test's output."""
    renders = []
    for _ in range(2):
        objects = Rendered(fresh_render(values)).objects
        for obj in objects:
            validate_manifest(obj)
        renders.append(objects)
    (tmp_path / "first.json").write_text(json.dumps(renders[0]))
    (tmp_path / "second.json").write_text(json.dumps(renders[1]))
    test = "applying_two_renders_of_the_chart_fails_no_handshake"
    done = subprocess.run(
        ["cargo", "test", "--quiet", "--test", "self_certificates", "--", "--ignored", "--exact", test,
         "--nocapture"],
        cwd=REPO, env={**os.environ, "PODGRACE_CHART_RENDERS": str(tmp_path)},
        capture_output=True, text=True, timeout=900)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    assert "1 passed" in output, output[-4000:]
    print(next(line for line in output.splitlines() if " calls, " in line))
    return output


def test_applying_two_offline_renders_fails_no_handshake(tmp_path):
    # What an Argo CD or Flux sync does, twice.
    output = apply_two_renders(tmp_path, {})
    assert " 0 failures" in output, output[-4000:]


def test_in_contrast_two_offline_renders_in_helm_mode_fail_handshakes(tmp_path):
    # The control: the same sequence in mode helm breaks calls (the Rust test asserts failures),
    # which shows the test above can fail.
    output = apply_two_renders(tmp_path, {"certificates": {"mode": "helm"}})
    assert " 0 failures" not in output, output[-4000:]
