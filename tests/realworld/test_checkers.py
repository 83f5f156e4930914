"""The acceptance tests' own checkers can fail: each Pod Security control, each API server rule the
tests rely on and the hook-duration reader, on small hand-made pods (one case per control/rule,
next to a passing one)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

import apiserver_rules as api
import pod_security as pss
from hook_time import hook_seconds


def restricted_pod() -> tuple[dict[str, Any], dict[str, Any]]:
    """A pod that meets `restricted`, to be broken one control at a time."""
    meta = {"name": "web", "annotations": {}}
    spec = {
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [
            {
                "name": "app",
                "image": "registry.example.com/app:1",
                "ports": [{"containerPort": 8080, "name": "http"}],
                "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
            }
        ],
        "initContainers": [
            {
                "name": "init",
                "image": "registry.example.com/init:1",
                "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
            }
        ],
        "volumes": [{"name": "tmp", "emptyDir": {}}],
    }
    return meta, spec


def test_the_reference_pod_is_restricted():
    assert pss.level(*restricted_pod()) == pss.RESTRICTED


def _app(spec):
    return spec["containers"][0]


def _init(spec):
    return spec["initContainers"][0]


# Each breaks one baseline control: the pod becomes `privileged`.
BASELINE_BREAKERS = {
    "windows_host_process": lambda m, s: _app(s)["securityContext"].update(windowsOptions={"hostProcess": True}),
    "host_network": lambda m, s: s.update(hostNetwork=True),
    "host_pid": lambda m, s: s.update(hostPID=True),
    "host_ipc": lambda m, s: s.update(hostIPC=True),
    "privileged": lambda m, s: _init(s)["securityContext"].update(privileged=True),
    "capabilities_baseline": lambda m, s: _app(s)["securityContext"]["capabilities"].update(add=["NET_ADMIN"]),
    "host_path_volumes": lambda m, s: s["volumes"].append({"name": "logs", "hostPath": {"path": "/var/log"}}),
    "host_ports": lambda m, s: _app(s)["ports"][0].update(hostPort=8080),
    "app_armor_profile": lambda m, s: _app(s)["securityContext"].update(appArmorProfile={"type": "Unconfined"}),
    "app_armor_annotation": lambda m, s: m["annotations"].update({"container.apparmor.security.beta.kubernetes.io/app": "unconfined"}),
    "se_linux_type": lambda m, s: s["securityContext"].update(seLinuxOptions={"type": "spc_t"}),
    "se_linux_user": lambda m, s: _init(s)["securityContext"].update(seLinuxOptions={"user": "system_u"}),
    "proc_mount": lambda m, s: _app(s)["securityContext"].update(procMount="Unmasked"),
    "seccomp_unconfined": lambda m, s: _init(s)["securityContext"].update(seccompProfile={"type": "Unconfined"}),
    "sysctls": lambda m, s: s["securityContext"].update(sysctls=[{"name": "kernel.msgmax", "value": "65536"}]),
    "host_probe": lambda m, s: _app(s).update(readinessProbe={"httpGet": {"host": "10.0.0.1", "port": 8080, "path": "/"}}),
    "host_hook": lambda m, s: _app(s).update(lifecycle={"preStop": {"tcpSocket": {"host": "node", "port": 22}}}),
    "ephemeral_privileged": lambda m, s: s.update(ephemeralContainers=[{"name": "debug", "image": "busybox", "securityContext": {"privileged": True}}]),
}


@pytest.mark.parametrize("control", sorted(BASELINE_BREAKERS))
def test_each_baseline_control_makes_the_pod_privileged(control: str):
    meta, spec = restricted_pod()
    BASELINE_BREAKERS[control](meta, spec)
    assert pss.level(meta, spec) == pss.PRIVILEGED, pss.violations(meta, spec, pss.BASELINE)


# Each breaks one restricted control only: the pod becomes `baseline`.
RESTRICTED_BREAKERS = {
    "restricted_volumes": lambda s: s["volumes"].append({"name": "nfs", "nfs": {"server": "nfs", "path": "/"}}),
    "allow_privilege_escalation_unset": lambda s: _init(s)["securityContext"].pop("allowPrivilegeEscalation"),
    "allow_privilege_escalation_true": lambda s: _app(s)["securityContext"].update(allowPrivilegeEscalation=True),
    "run_as_non_root_unset": lambda s: s["securityContext"].pop("runAsNonRoot"),
    "run_as_non_root_false_in_container": lambda s: _init(s)["securityContext"].update(runAsNonRoot=False),
    "run_as_user_0": lambda s: _app(s)["securityContext"].update(runAsUser=0),
    "seccomp_unset": lambda s: s["securityContext"].pop("seccompProfile"),
    "capabilities_not_dropped": lambda s: _init(s)["securityContext"].pop("capabilities"),
    "capabilities_added": lambda s: _app(s)["securityContext"]["capabilities"].update(add=["CHOWN"]),
    "ephemeral_without_hardening": lambda s: s.update(ephemeralContainers=[{"name": "debug", "image": "busybox"}]),
}


@pytest.mark.parametrize("control", sorted(RESTRICTED_BREAKERS))
def test_each_restricted_control_makes_the_pod_baseline(control: str):
    meta, spec = restricted_pod()
    RESTRICTED_BREAKERS[control](spec)
    assert pss.level(meta, spec) == pss.BASELINE, pss.violations(meta, spec, pss.RESTRICTED)


def test_what_restricted_allows():
    meta, spec = restricted_pod()
    # Container-level settings may replace the pod's; NET_BIND_SERVICE may be added; safe sysctls,
    # container SELinux types, RuntimeDefault AppArmor and the core volume types are fine.
    del spec["securityContext"]["seccompProfile"]
    for c in spec["containers"] + spec["initContainers"]:
        c["securityContext"]["seccompProfile"] = {"type": "Localhost", "localhostProfile": "p.json"}
    _app(spec)["securityContext"]["capabilities"]["add"] = ["NET_BIND_SERVICE"]
    spec["securityContext"]["sysctls"] = [{"name": "net.ipv4.ip_unprivileged_port_start", "value": "0"}]
    spec["securityContext"]["seLinuxOptions"] = {"type": "container_t", "level": "s0:c1,c2"}
    spec["securityContext"]["appArmorProfile"] = {"type": "RuntimeDefault"}
    spec["volumes"] += [{"name": "c", "configMap": {"name": "c"}}, {"name": "p", "projected": {"sources": []}}]
    assert pss.level(meta, spec) == pss.RESTRICTED, pss.violations(meta, spec, pss.RESTRICTED)


# ---------------------------------------------------------------------------------- API rules


def valid_pod() -> dict[str, Any]:
    return {
        "terminationGracePeriodSeconds": 30,
        "containers": [
            {
                "name": "app",
                "image": "app:1",
                "ports": [{"containerPort": 8080, "name": "http"}],
                "env": [{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}],
                "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
                "readinessProbe": {"httpGet": {"path": "/ready", "port": "http"}},
                "lifecycle": {"preStop": {"sleep": {"seconds": 10}}},
            }
        ],
        "initContainers": [
            {"name": "sidecar", "image": "log:1", "restartPolicy": "Always", "readinessProbe": {"tcpSocket": {"port": 9000}}},
            {"name": "setup", "image": "setup:1"},
        ],
        "volumes": [{"name": "tmp", "emptyDir": {}}],
    }


def test_the_reference_pod_passes_the_api_rules():
    assert api.validate_pod({}, valid_pod()) == []


def _app0(spec):
    return spec["containers"][0]


API_BREAKERS = {
    # validateSleepAction, with the grace period defaulted to 30 when unset.
    "sleep longer than grace": (lambda s: s.update(terminationGracePeriodSeconds=5), "less than terminationGracePeriodSeconds (5)"),
    "sleep longer than the default grace": (lambda s: (s.pop("terminationGracePeriodSeconds"), _app0(s)["lifecycle"]["preStop"]["sleep"].update(seconds=31)), "(30)"),
    "negative sleep": (lambda s: _app0(s)["lifecycle"]["preStop"]["sleep"].update(seconds=-1), "non-negative"),
    # validateHandler
    "two preStop handlers": (lambda s: _app0(s)["lifecycle"]["preStop"].update(exec={"command": ["drain"]}), "more than 1 handler type"),
    "no probe handler": (lambda s: _app0(s).update(readinessProbe={"periodSeconds": 5}), "must specify a handler type"),
    "empty exec": (lambda s: _app0(s)["lifecycle"].update(postStart={"exec": {"command": []}}), "exec.command: Required"),
    # validateLivenessProbe / validateStartupProbe
    "liveness successThreshold": (lambda s: _app0(s).update(livenessProbe={"tcpSocket": {"port": 8080}, "successThreshold": 2}), "must be 1"),
    "startup successThreshold": (lambda s: _app0(s).update(startupProbe={"tcpSocket": {"port": 8080}, "successThreshold": 3}), "must be 1"),
    # validateStartupProbe → validateProbe / validateHandler
    "startup with two handlers": (lambda s: _app0(s).update(startupProbe={"tcpSocket": {"port": 8080}, "exec": {"command": ["true"]}}), "startupProbe.tcpSocket: Forbidden: may not specify more than 1 handler type"),
    "startup without a handler": (lambda s: _app0(s).update(startupProbe={"failureThreshold": 12, "periodSeconds": 10}), "startupProbe: Required value: must specify a handler type"),
    "startup negative failureThreshold": (lambda s: _app0(s).update(startupProbe={"grpc": {"port": 8080}, "failureThreshold": -1}), "startupProbe.failureThreshold: Invalid value: -1"),
    "startup probe grace 0": (lambda s: _app0(s).update(startupProbe={"tcpSocket": {"port": 8080}, "terminationGracePeriodSeconds": 0}), "must be greater than 0"),
    "startup on a sleep handler": (lambda s: _app0(s).update(startupProbe={"sleep": {"seconds": 1}}), "startupProbe.sleep: Forbidden"),
    "startup on an undeclared port name": (lambda s: _app0(s).update(startupProbe={"tcpSocket": {"port": "admin"}}), "startupProbe.tcpSocket.port: Not found"),
    "startup on a plain init container": (lambda s: s["initContainers"][1].update(startupProbe={"tcpSocket": {"port": 1}}), "startupProbe: Forbidden"),
    # validateInitContainers
    "probe on a plain init container": (lambda s: s["initContainers"][1].update(readinessProbe={"tcpSocket": {"port": 1}}), "without restartPolicy=Always"),
    "lifecycle on a plain init container": (lambda s: s["initContainers"][1].update(lifecycle={"preStop": {"sleep": {"seconds": 1}}}), "without restartPolicy=Always"),
    "init container restartPolicy Never": (lambda s: s["initContainers"][0].update(restartPolicy="Never"), "Unsupported value"),
    "container name shared with an init container": (lambda s: s["initContainers"][1].update(name="app"), "Duplicate value"),
    "container name of 64 characters": (lambda s: _app0(s).update(name="a" * 64), "RFC 1123"),
    # validateEphemeralContainers
    "ephemeral name taken": (lambda s: s.update(ephemeralContainers=[{"name": "setup", "image": "busybox"}]), "Duplicate value"),
    "ephemeral with a probe": (lambda s: s.update(ephemeralContainers=[{"name": "dbg", "image": "busybox", "readinessProbe": {"tcpSocket": {"port": 1}}}]), "Ephemeral Container"),
    # validateContainers: restartPolicy only on init containers
    "restartPolicy on a regular container": (lambda s: _app0(s).update(restartPolicy="Always"), "non-init containers"),
    # ValidateVolumes / ValidateVolumeMounts
    "duplicate volume": (lambda s: s["volumes"].append({"name": "tmp", "emptyDir": {}}), "Duplicate value"),
    "mount of a missing volume": (lambda s: _app0(s)["volumeMounts"].append({"name": "helper", "mountPath": "/h"}), "Not found"),
    "mountPath twice": (lambda s: (s["volumes"].append({"name": "b", "emptyDir": {}}), _app0(s)["volumeMounts"].append({"name": "b", "mountPath": "/tmp"})), "must be unique"),
    # validateContainerPorts / ValidatePortNumOrName
    "port 0": (lambda s: _app0(s)["ports"].append({"containerPort": 0}), "containerPort: Required"),
    "port 70000": (lambda s: _app0(s)["ports"].append({"containerPort": 70000}), "between 1 and 65535"),
    "duplicate port name": (lambda s: _app0(s)["ports"].append({"containerPort": 9090, "name": "http"}), "Duplicate value"),
    "probe on port 0": (lambda s: _app0(s).update(readinessProbe={"tcpSocket": {"port": 0}}), "between 1 and 65535"),
    "http scheme": (lambda s: _app0(s).update(readinessProbe={"httpGet": {"port": 8080, "scheme": "TCP"}}), "Unsupported value"),
    # ValidateEnv
    "valueFrom and value": (lambda s: _app0(s)["env"][0].update(value="1.2.3.4"), "may not be specified"),
    "unknown fieldPath": (lambda s: _app0(s)["env"].append({"name": "X", "valueFrom": {"fieldRef": {"fieldPath": "status.phase"}}}), "Unsupported value"),
    # checkHostPortConflicts
    "host port twice": (lambda s: s["containers"].append({"name": "b", "image": "b", "ports": [{"containerPort": 81, "hostPort": 80}]}) or _app0(s)["ports"][0].update(hostPort=80), "Duplicate value"),
    # the kubelet's port resolution
    "probe on an undeclared port name": (lambda s: _app0(s)["readinessProbe"]["httpGet"].update(port="metrics"), "named port"),
    "negative grace": (lambda s: s.update(terminationGracePeriodSeconds=-1), "must be >= 0"),
    # validatePodResourceConsistency: the pod-level budget covers what the containers request
    "pod-level requests under the containers'": (lambda s: (s.update(resources={"requests": {"cpu": "50m"}}), _app0(s).update(resources={"requests": {"cpu": "100m"}})), "aggregate container requests"),
    "pod-level requests under an init container's": (lambda s: (s.update(resources={"requests": {"memory": "48Mi"}}), s["initContainers"][1].update(resources={"requests": {"memory": "64Mi"}})), "requests[memory]"),
    "container limit over the pod's": (lambda s: (s.update(resources={"limits": {"memory": "96Mi"}}), _app0(s).update(resources={"limits": {"memory": "0.1Gi"}})), "less than or equal to pod limits"),
}


@pytest.mark.parametrize("rule", sorted(API_BREAKERS))
def test_each_api_rule_rejects(rule: str):
    spec = valid_pod()
    breaker, expected = API_BREAKERS[rule]
    breaker(spec)
    errors = api.validate_pod({}, spec)
    assert any(expected in e for e in errors), errors


def test_statefulset_claims_are_volumes():
    spec = valid_pod()
    _app0(spec)["volumeMounts"].append({"name": "data", "mountPath": "/data"})
    assert api.validate_pod({}, spec) != []
    assert api.validate_pod({}, spec, claim_templates=("data",)) == []


def test_a_duplicated_env_var_is_reported_only_when_added():
    before = valid_pod()
    after = copy.deepcopy(before)
    _app0(after)["env"].append({"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}})
    assert api.added_duplicate_env(before, after)
    assert api.added_duplicate_env(after, after) == []


# ---------------------------------------------------------------------------------- hook time


@pytest.mark.parametrize(
    ("hook", "seconds"),
    [
        ({"sleep": {"seconds": 5}}, 5),
        ({"exec": {"command": ["/bin/sleep", "20"]}}, 20),
        ({"exec": {"command": ["sh", "-c", "sleep 10"]}}, 10),
        ({"exec": {"command": ["/bin/sh", "-c", "kill -15 1; sleep 15s"]}}, 15),
        ({"exec": {"command": ["/bin/sh", "-c", 'curl -s --connect-timeout 10 -m 20 -X POST "http://n:8848/x?a=1&b=2" && sleep 35\n']}}, 55),
        ({"exec": {"command": ["/bin/sh", "-c", "timeout 20 ./offline.sh"]}}, 20),
        ({"exec": {"command": ["/bin/sh", "-c", "sh /opt/service_offline_nacos.sh"]}}, None),
        ({"exec": {"command": ["/wait-shutdown"]}}, None),
        ({"httpGet": {"path": "/shutdown", "port": 8080}}, None),
    ],
)
def test_hook_seconds(hook, seconds):
    assert hook_seconds(hook) == seconds
