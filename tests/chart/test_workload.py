"""The webhook's own workload: Deployment, PodDisruptionBudget, Service, ServiceAccount, RBAC and
the cluster default policy ConfigMap."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import PurePosixPath

import pytest
import yaml
from conftest import CHART, NAMESPACE, REPO, render, selector_matches

# certificates.mode self (the default): podgrace keeps its certificate in the Secret named here.
SELF_CERTIFICATES_ENV = {
    "PODGRACE_CERTIFICATES": "self",
    "PODGRACE_CERT_SECRET": "podgrace-certs",
    "PODGRACE_SERVICE": "podgrace",
    "PODGRACE_MUTATING_WEBHOOK": "podgrace",
    "PODGRACE_VALIDATING_WEBHOOK": "podgrace",
    "PODGRACE_CERT_VALIDITY_SECONDS": str(90 * 86400),
    "PODGRACE_CERT_RENEW_BEFORE_SECONDS": str(30 * 86400),
    "PODGRACE_CA_VALIDITY_SECONDS": str(3650 * 86400),
    "PODGRACE_CA_RENEW_BEFORE_SECONDS": str(365 * 86400),
}
# The other modes: mounted files.
FILE_CERTIFICATES_ENV = {
    "PODGRACE_TLS_CERT_FILE": "/etc/podgrace/tls/tls.crt",
    "PODGRACE_TLS_KEY_FILE": "/etc/podgrace/tls/tls.key",
}
HELM = {"certificates": {"mode": "helm"}}
SERVE_ENV = {
    "PODGRACE_LISTEN": "0.0.0.0:8443",
    **SELF_CERTIFICATES_ENV,
    "PODGRACE_CLUSTER_POLICY": "/etc/podgrace/policy/policy.yaml",
    "PODGRACE_POLICY_NAME": "podgrace-policy",
    "PODGRACE_LOG_FORMAT": "json",
    "PODGRACE_LOG": "info",
    "PODGRACE_DRAIN_SECONDS": "5",
    "PODGRACE_SHUTDOWN_TIMEOUT_SECONDS": "20",
    "PODGRACE_POLICY_EVENTS": "true",
}
# Filled in by the kubelet: the replica's name, for the Events it reports, and (mode self) its
# namespace, where its certificate Secret is.
SERVE_ENV_FROM = {
    "PODGRACE_NAMESPACE": {"fieldRef": {"fieldPath": "metadata.namespace"}},
    "PODGRACE_POD_NAME": {"fieldRef": {"fieldPath": "metadata.name"}},
}


# Deployment ---------------------------------------------------------------------------------------


def test_the_deployment_runs_two_replicas_of_podgrace_serve_from_the_chart_image():
    r = render()
    assert r.deployment["spec"]["replicas"] == 2
    assert r.container["image"] == "ghcr.io/podgrace/podgrace:0.1.0"
    assert r.container["imagePullPolicy"] == "IfNotPresent"
    assert r.container["args"] == ["serve"]
    assert "command" not in r.container  # the image's ENTRYPOINT is /podgrace
    # A rollout starts a new replica before stopping an old one.
    assert r.deployment["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}


def test_the_image_tag_and_digest_can_be_pinned():
    r = render({"image": {"repository": "registry.example/pg", "tag": "0.2.0", "pullPolicy": "Always"}})
    assert r.container["image"] == "registry.example/pg:0.2.0"
    assert r.container["imagePullPolicy"] == "Always"
    digest = "sha256:" + "ab" * 32
    assert render({"image": {"digest": digest}}).container["image"] == f"ghcr.io/podgrace/podgrace@{digest}"


def test_the_container_gets_exactly_the_environment_podgrace_serve_reads():
    assert render().env == SERVE_ENV
    assert render().env_from == SERVE_ENV_FROM


def test_in_the_file_modes_the_container_reads_its_certificate_from_files():
    files_env = {k: v for k, v in SERVE_ENV.items() if k not in SELF_CERTIFICATES_ENV}
    r = render(HELM)
    assert r.env == {**files_env, **FILE_CERTIFICATES_ENV}
    assert r.env_from == {"PODGRACE_POD_NAME": SERVE_ENV_FROM["PODGRACE_POD_NAME"]}


def test_events_can_be_turned_off_with_their_rbac():
    r = render({"events": {"enabled": False}, **HELM})
    files_env = {k: v for k, v in SERVE_ENV.items() if k not in SELF_CERTIFICATES_ENV}
    assert r.env == {**files_env, **FILE_CERTIFICATES_ENV, "PODGRACE_POLICY_EVENTS": "false"}
    assert r.env_from == {}
    assert all(rule["apiGroups"] != ["events.k8s.io"] for rule in r.one("ClusterRole")["rules"])
    # In mode self the certificate Events stay (namespaced, on podgrace's own Secret): policy
    # Events are what events.enabled turns off.
    r = render({"events": {"enabled": False}})
    assert "PODGRACE_POD_NAME" in r.env_from
    assert all(rule["apiGroups"] != ["events.k8s.io"] for rule in r.named("ClusterRole", "podgrace")["rules"])


def test_a_plain_metrics_port_is_configured_end_to_end():
    r = render({"metrics": {"scheme": "http", "httpPort": 9102}})
    assert r.env["PODGRACE_METRICS_LISTEN"] == "0.0.0.0:9102"
    assert {"name": "metrics", "containerPort": 9102, "protocol": "TCP"} in r.container["ports"]
    assert {"name": "metrics", "port": 9102, "targetPort": "metrics", "protocol": "TCP"} in r.one(
        "Service")["spec"]["ports"]
    # The probes stay on the webhook's port.
    assert r.container["readinessProbe"]["httpGet"]["port"] == "https"
    assert "PODGRACE_METRICS_LISTEN" not in render().env


def test_the_environment_follows_the_values():
    r = render({
        "policyConfigMapName": "graceful",
        "log": {"format": "text", "level": "debug"},
        "server": {"drainSeconds": 10, "shutdownTimeoutSeconds": 40, "kubeVersion": "1.31",
                   "extraEnv": [{"name": "PODGRACE_MAX_CONNECTIONS", "value": "256"}]},
    })
    assert r.env == {
        **SERVE_ENV,
        "PODGRACE_POLICY_NAME": "graceful",
        "PODGRACE_LOG_FORMAT": "text",
        "PODGRACE_LOG": "debug",
        "PODGRACE_DRAIN_SECONDS": "10",
        "PODGRACE_SHUTDOWN_TIMEOUT_SECONDS": "40",
        "PODGRACE_KUBE_VERSION": "1.31",
        "PODGRACE_MAX_CONNECTIONS": "256",
    }


def test_the_kube_version_override_is_absent_unless_set():
    assert "PODGRACE_KUBE_VERSION" not in render().env
    assert "PODGRACE_KUBE_VERSION" not in render({"server": {"kubeVersion": ""}}).env


def test_every_variable_the_chart_sets_is_one_podgrace_serve_reads(podgrace_bin):
    help_text = subprocess.run([podgrace_bin, "serve", "--help"], capture_output=True, text=True,
                               check=True, timeout=30).stdout
    read = set(re.findall(r"\[env: (PODGRACE_[A-Z_]+)=", help_text))
    everything = render({"server": {"kubeVersion": "1.30"}, "metrics": {"scheme": "http"}})
    names = set(everything.env) | set(everything.env_from)
    assert "PODGRACE_METRICS_LISTEN" in names and "PODGRACE_POD_NAME" in names
    assert names <= read, names - read


def test_the_tls_and_policy_mounts_are_where_the_environment_points():
    r = render(HELM)
    mounts = {m["name"]: m for m in r.container["volumeMounts"]}
    volumes = {v["name"]: v for v in r.pod["spec"]["volumes"]}
    assert set(mounts) == set(volumes) == {"tls", "policy"}

    cert, key = PurePosixPath(r.env["PODGRACE_TLS_CERT_FILE"]), PurePosixPath(r.env["PODGRACE_TLS_KEY_FILE"])
    assert mounts["tls"]["mountPath"] == str(cert.parent) == str(key.parent) == "/etc/podgrace/tls"
    assert mounts["tls"]["readOnly"] is True
    assert volumes["tls"]["secret"]["items"] == [
        {"key": "tls.crt", "path": cert.name},
        {"key": "tls.key", "path": key.name},
    ]
    assert volumes["tls"]["secret"]["secretName"] == r.one("Secret")["metadata"]["name"]

    policy = PurePosixPath(r.env["PODGRACE_CLUSTER_POLICY"])
    assert mounts["policy"]["mountPath"] == str(policy.parent) == "/etc/podgrace/policy"
    assert mounts["policy"]["readOnly"] is True
    assert volumes["policy"]["configMap"]["items"] == [{"key": "policy.yaml", "path": policy.name}]
    assert volumes["policy"]["configMap"]["name"] == r.one("ConfigMap")["metadata"]["name"]
    # Whole-directory mounts: a subPath mount would never see the kubelet's updates, and podgrace
    # reloads both on change.
    assert all("subPath" not in m for m in mounts.values())


def test_the_probes_and_the_port_are_https_on_8443():
    r = render()
    assert r.container["ports"] == [{"name": "https", "containerPort": 8443, "protocol": "TCP"}]
    assert r.env["PODGRACE_LISTEN"].endswith(":8443")
    assert r.container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "https", "scheme": "HTTPS"}
    assert r.container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "https", "scheme": "HTTPS"}


def test_in_mode_self_nothing_but_the_policy_is_mounted():
    r = render()
    assert [m["name"] for m in r.container["volumeMounts"]] == ["policy"]
    assert [v["name"] for v in r.pod["spec"]["volumes"]] == ["policy"]


def test_the_pod_runs_as_non_root_with_no_privileges():
    r = render(HELM)
    pod_sc = r.pod["spec"]["securityContext"]
    assert pod_sc["runAsNonRoot"] is True
    assert pod_sc["runAsUser"] == 65532
    assert pod_sc["runAsGroup"] == 65532
    assert pod_sc["seccompProfile"] == {"type": "RuntimeDefault"}
    # The key file is not world-readable; the pod's group can read it.
    tls = next(v for v in r.pod["spec"]["volumes"] if v["name"] == "tls")
    assert tls["secret"]["defaultMode"] == 0o440 and pod_sc["fsGroup"] == 65532
    sc = r.container["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc.get("privileged") is False
    assert "add" not in sc["capabilities"]
    assert not r.pod["spec"].get("hostNetwork") and not r.pod["spec"].get("hostPID")


@pytest.mark.parametrize(("drain", "shutdown", "grace"), [(5, 20, 30), (0, 10, 15), (10, 40, 55)])
def test_termination_grace_is_drain_plus_shutdown_plus_five(drain, shutdown, grace):
    r = render({"server": {"drainSeconds": drain, "shutdownTimeoutSeconds": shutdown}})
    assert r.pod["spec"]["terminationGracePeriodSeconds"] == grace
    assert r.env["PODGRACE_DRAIN_SECONDS"] == str(drain)
    assert r.env["PODGRACE_SHUTDOWN_TIMEOUT_SECONDS"] == str(shutdown)


def test_the_podgrace_pods_opt_themselves_out_of_injection():
    # Even a podLabels value cannot remove the opt-out label.
    for values in ({}, {"podLabels": {"podgrace.io/inject": "enabled", "team": "platform"}}):
        r = render(values)
        labels = r.pod["metadata"]["labels"]
        assert labels["podgrace.io/inject"] == "disabled"
        assert not selector_matches(r.mutating["objectSelector"], labels)
    assert render({"podLabels": {"team": "platform"}}).pod["metadata"]["labels"]["team"] == "platform"
    # ... and their namespace is never selected, labelled or not.
    ns_labels = {"kubernetes.io/metadata.name": NAMESPACE, "podgrace.io/inject": "enabled"}
    assert not selector_matches(render().mutating["namespaceSelector"], ns_labels)


def test_resources_come_from_the_values():
    assert render().container["resources"] == {
        "requests": {"cpu": "50m", "memory": "48Mi"},
        "limits": {"memory": "192Mi"},
    }
    custom = {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"cpu": "1", "memory": "256Mi"}}
    assert render({"resources": custom}).container["resources"] == custom


def test_replicas_prefer_different_nodes_by_default():
    r = render()
    terms = r.pod["spec"]["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert len(terms) == 1
    term = terms[0]["podAffinityTerm"]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    assert term["labelSelector"]["matchLabels"] == r.deployment["spec"]["selector"]["matchLabels"]
    assert "requiredDuringSchedulingIgnoredDuringExecution" not in r.pod["spec"]["affinity"]["podAntiAffinity"]


def test_anti_affinity_can_be_required_or_turned_off_or_replaced():
    hard = render({"podAntiAffinity": {"type": "hard", "topologyKey": "topology.kubernetes.io/zone"}})
    required = hard.pod["spec"]["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert required[0]["topologyKey"] == "topology.kubernetes.io/zone"
    assert "affinity" not in render({"podAntiAffinity": {"type": "none"}}).pod["spec"]
    own = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]}]}]}}}
    assert render({"affinity": own}).pod["spec"]["affinity"] == own


def test_topology_spread_constraints_get_the_pod_selector_when_they_have_none():
    r = render({"topologySpreadConstraints": [
        {"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "ScheduleAnyway"},
        {"maxSkew": 2, "topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": "DoNotSchedule",
         "labelSelector": {"matchLabels": {"custom": "yes"}}},
    ]})
    first, second = r.pod["spec"]["topologySpreadConstraints"]
    assert first["labelSelector"]["matchLabels"] == r.deployment["spec"]["selector"]["matchLabels"]
    assert second["labelSelector"] == {"matchLabels": {"custom": "yes"}}
    assert "topologySpreadConstraints" not in render().pod["spec"]


def test_scheduling_values_are_passed_to_the_pods():
    spec = render({
        "nodeSelector": {"kubernetes.io/os": "linux"},
        "tolerations": [{"key": "CriticalAddonsOnly", "operator": "Exists"}],
        "priorityClassName": "system-cluster-critical",
        "imagePullSecrets": [{"name": "regcred"}],
    }).pod["spec"]
    assert spec["nodeSelector"] == {"kubernetes.io/os": "linux"}
    assert spec["tolerations"] == [{"key": "CriticalAddonsOnly", "operator": "Exists"}]
    assert spec["priorityClassName"] == "system-cluster-critical"
    assert spec["imagePullSecrets"] == [{"name": "regcred"}]
    plain = render().pod["spec"]
    assert not {"nodeSelector", "tolerations", "priorityClassName", "imagePullSecrets"} & set(plain)


def test_a_policy_change_does_not_roll_the_pods():
    # podgrace reloads the mounted policy file itself: the pod template must not change with it.
    before = render({"policy": {"shutdownSeconds": 30}})
    after = render({"policy": {"shutdownSeconds": 60}})
    assert before.one("ConfigMap")["data"] != after.one("ConfigMap")["data"]
    assert before.deployment == after.deployment


# PodDisruptionBudget ------------------------------------------------------------------------------


def test_the_pdb_keeps_one_webhook_pod_available():
    r = render()
    pdb = r.one("PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] == 1
    assert "maxUnavailable" not in pdb["spec"]
    assert pdb["spec"]["selector"] == r.deployment["spec"]["selector"]
    assert selector_matches(pdb["spec"]["selector"], r.pod["metadata"]["labels"])


def test_there_is_no_pdb_for_a_single_replica_or_when_disabled():
    assert render({"replicas": 1}).all("PodDisruptionBudget") == []
    assert render({"podDisruptionBudget": {"enabled": False}}).all("PodDisruptionBudget") == []
    assert render({"replicas": 3, "podDisruptionBudget": {"minAvailable": 2}}).one(
        "PodDisruptionBudget")["spec"]["minAvailable"] == 2


# Service ------------------------------------------------------------------------------------------


def test_the_service_maps_443_to_the_https_container_port():
    r = render()
    svc = r.one("Service")
    assert svc["spec"]["type"] == "ClusterIP"
    assert svc["spec"]["ports"] == [{"name": "https", "port": 443, "targetPort": "https", "protocol": "TCP"}]
    assert selector_matches({"matchLabels": svc["spec"]["selector"]}, r.pod["metadata"]["labels"])


# ServiceAccount and RBAC --------------------------------------------------------------------------


def test_rbac_reads_only_the_policy_configmaps_and_creates_events():
    # The file modes; mode self adds its own roles (test_certificates_self.py).
    r = render(HELM)
    role = r.one("ClusterRole")
    assert role["rules"] == [{
        "apiGroups": [""],
        "resources": ["configmaps"],
        "resourceNames": ["podgrace-policy"],
        "verbs": ["get", "list", "watch"],
    }, {
        # The Events on refused policy ConfigMaps (kube-runtime's recorder: create, and patch for
        # a repeated Event); no read access to Events, no core-group events.
        "apiGroups": ["events.k8s.io"],
        "resources": ["events"],
        "verbs": ["create", "patch"],
    }]
    # Nothing else grants anything.
    assert r.all("Role") == [] and r.all("RoleBinding") == []
    assert "aggregationRule" not in role


def test_rbac_follows_the_policy_configmap_name():
    r = render({"policyConfigMapName": "graceful"})
    assert r.named("ClusterRole", "podgrace")["rules"][0]["resourceNames"] == ["graceful"]
    assert r.env["PODGRACE_POLICY_NAME"] == "graceful"


def test_the_role_is_bound_to_the_service_account_the_pods_run_as():
    r = render()
    sa = r.one("ServiceAccount")
    bindings = r.all("ClusterRoleBinding") + r.all("RoleBinding")
    assert len(bindings) == 3  # the policy role, and mode self's two
    for binding in bindings:
        kind = binding["roleRef"]["kind"]
        assert kind == binding["kind"].replace("Binding", "")
        r.named(kind, binding["roleRef"]["name"])
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": sa["metadata"]["name"],
                                        "namespace": NAMESPACE}]
    assert r.pod["spec"]["serviceAccountName"] == sa["metadata"]["name"]


def test_an_existing_service_account_can_be_used():
    r = render({"serviceAccount": {"create": False, "name": "platform-webhooks"}})
    assert r.all("ServiceAccount") == []
    assert r.pod["spec"]["serviceAccountName"] == "platform-webhooks"
    for binding in r.all("ClusterRoleBinding") + r.all("RoleBinding"):
        assert binding["subjects"][0]["name"] == "platform-webhooks"


# Cluster default policy ---------------------------------------------------------------------------


def cluster_policy(values=None) -> dict:
    return yaml.safe_load(render(values).one("ConfigMap")["data"]["policy.yaml"])


def test_the_cluster_policy_is_the_policy_value_with_the_chart_image_as_helper():
    assert cluster_policy() == {
        "helperImage": {"image": "ghcr.io/podgrace/podgrace:0.1.0", "pullPolicy": "IfNotPresent"},
    }
    policy = {"shutdownSeconds": 45, "preStop": {"action": "sleep", "sleepSeconds": 15},
              "rules": [{"name": "spring", "match": {"podLabels": {"framework": "spring-boot"}},
                         "set": {"presets": ["spring-boot"]}}]}
    values = {"policy": policy, "image": {"repository": "registry.example/pg", "tag": "1.2.3", "pullPolicy": "Always"}}
    assert cluster_policy(values) == {
        **policy, "helperImage": {"image": "registry.example/pg:1.2.3", "pullPolicy": "Always"},
    }


def test_a_helper_image_set_in_the_policy_wins_over_the_chart_image():
    assert cluster_policy({"policy": {"helperImage": {"image": "mirror.example/podgrace:0.1.0"}}})["helperImage"] == {
        "image": "mirror.example/podgrace:0.1.0", "pullPolicy": "IfNotPresent",
    }
    assert cluster_policy({"policy": {"helperImage": {"pullPolicy": "Never"}}})["helperImage"] == {
        "image": "ghcr.io/podgrace/podgrace:0.1.0", "pullPolicy": "Never",
    }


def test_the_cluster_policy_configmap_is_not_named_like_a_namespace_policy():
    # Otherwise podgrace would also watch, cache and validate it as the release namespace's policy.
    r = render()
    assert r.one("ConfigMap")["metadata"]["name"] == "podgrace-cluster-policy"
    assert r.one("ConfigMap")["metadata"]["name"] != r.env["PODGRACE_POLICY_NAME"]


@pytest.mark.parametrize("policy_file", [None, "examples/cluster-policy.yaml"])
def test_the_rendered_cluster_policy_passes_podgrace_policy_check(podgrace_bin, tmp_path, policy_file):
    values = {} if policy_file is None else {"policy": yaml.safe_load((REPO / policy_file).read_text())}
    configmap = render(values).one("ConfigMap")
    manifest = tmp_path / "cluster-policy-configmap.yaml"
    manifest.write_text(yaml.safe_dump(configmap))
    plain = tmp_path / "policy.yaml"
    plain.write_text(configmap["data"]["policy.yaml"])
    for path in (manifest, plain):
        done = subprocess.run([podgrace_bin, "policy", "check", path], capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, done.stdout + done.stderr


def test_podgrace_policy_check_rejects_what_the_schema_lets_through(podgrace_bin, tmp_path):
    # The schema checks only the top level of `policy`; the binary checks the rest. Guard against a
    # check that accepts anything.
    configmap = render({"policy": {"preStop": {"action": "teleport"}}}).one("ConfigMap")
    manifest = tmp_path / "bad.yaml"
    manifest.write_text(yaml.safe_dump(configmap))
    done = subprocess.run([podgrace_bin, "policy", "check", manifest], capture_output=True, text=True, timeout=30)
    assert done.returncode != 0


def test_the_values_schema_knows_every_top_level_policy_field(podgrace_bin):
    defaults = yaml.safe_load(subprocess.run([podgrace_bin, "policy", "defaults"], capture_output=True,
                                             text=True, check=True, timeout=30).stdout)
    schema = json.loads((CHART / "values.schema.json").read_text())
    known = set(schema["properties"]["policy"]["properties"])
    assert set(defaults) <= known, set(defaults) - known
