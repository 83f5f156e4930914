"""A checker of the Pod Security Standards (https://kubernetes.io/docs/concepts/security/pod-security-standards/),
as enforced by the PodSecurity admission controller at version `latest` (Kubernetes 1.36).

podgrace promises never to lower a pod's level: what it adds (an init container, env, probes,
hooks) must meet `restricted` when the pod did. A namespace labelled
`pod-security.kubernetes.io/enforce: restricted` rejects the pod otherwise, and the webhook's
`failurePolicy: Ignore` does not help because the webhook answered. The real-world tests compute
`level(before)` and `level(after)` with this module and require them to be equal.

Each control is a function named after its check in k8s.io/pod-security-admission/policy
(check_*.go) returning the list of its violations. Every control applies to containers,
initContainers and ephemeralContainers alike (visitContainers). Windows pods (spec.os.name
windows) are exempt from the Linux-only restricted controls, as in the 1.25+ check versions.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

RESTRICTED = "restricted"
BASELINE = "baseline"
PRIVILEGED = "privileged"

# check_capabilities_baseline.go: the container runtimes' default set, minus NET_RAW.
BASELINE_CAPABILITIES = frozenset(
    {
        "AUDIT_WRITE",
        "CHOWN",
        "DAC_OVERRIDE",
        "FOWNER",
        "FSETID",
        "KILL",
        "MKNOD",
        "NET_BIND_SERVICE",
        "SETFCAP",
        "SETGID",
        "SETPCAP",
        "SETUID",
        "SYS_CHROOT",
    }
)
# check_sysctls.go at its newest version (1.32): the namespaced, node-isolated "safe" set.
SAFE_SYSCTLS = frozenset(
    {
        "kernel.shm_rmid_forced",
        "net.ipv4.ip_local_port_range",
        "net.ipv4.ip_unprivileged_port_start",
        "net.ipv4.tcp_syncookies",
        "net.ipv4.ping_group_range",
        "net.ipv4.ip_local_reserved_ports",
        "net.ipv4.tcp_keepalive_time",
        "net.ipv4.tcp_fin_timeout",
        "net.ipv4.tcp_keepalive_intvl",
        "net.ipv4.tcp_keepalive_probes",
    }
)
# check_seLinuxOptions.go (1.31+).
SELINUX_TYPES = frozenset({"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"})
# check_restrictedVolumes.go: the only inline volume sources `restricted` allows.
RESTRICTED_VOLUME_SOURCES = frozenset(
    {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "image", "persistentVolumeClaim", "projected", "secret"}
)
APPARMOR_ANNOTATION = "container.apparmor.security.beta.kubernetes.io/"

Pod = tuple[dict[str, Any], dict[str, Any]]  # (metadata, spec)


def all_containers(spec: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """visitContainers: containers, initContainers and ephemeralContainers."""
    for field in ("containers", "initContainers", "ephemeralContainers"):
        yield from spec.get(field) or []


def _sc(obj: dict[str, Any]) -> dict[str, Any]:
    return obj.get("securityContext") or {}


def _is_windows(spec: dict[str, Any]) -> bool:
    return ((spec.get("os") or {}).get("name")) == "windows"


def _user_namespaced(spec: dict[str, Any]) -> bool:
    # spec.hostUsers: false runs the pod in its own user namespace.
    return spec.get("hostUsers") is False


# ------------------------------------------------------------------------------ baseline


def windows_host_process(meta, spec) -> list[str]:
    """check_windowsHostProcess.go: windowsOptions.hostProcess must be unset or false."""
    bad = []
    if (_sc(spec).get("windowsOptions") or {}).get("hostProcess"):
        bad.append("pod sets windowsOptions.hostProcess=true")
    bad += [f"container {c['name']} sets windowsOptions.hostProcess=true" for c in all_containers(spec) if (_sc(c).get("windowsOptions") or {}).get("hostProcess")]
    return bad


def host_namespaces(meta, spec) -> list[str]:
    """check_hostNamespaces.go: hostNetwork, hostPID, hostIPC must be unset or false."""
    return [f"{field}=true" for field in ("hostNetwork", "hostPID", "hostIPC") if spec.get(field)]


def privileged(meta, spec) -> list[str]:
    """check_privileged.go: securityContext.privileged must be unset or false."""
    return [f"container {c['name']} is privileged" for c in all_containers(spec) if _sc(c).get("privileged")]


def capabilities_baseline(meta, spec) -> list[str]:
    """check_capabilities_baseline.go: capabilities.add only from the default set."""
    bad = []
    for c in all_containers(spec):
        extra = sorted(set((_sc(c).get("capabilities") or {}).get("add") or []) - BASELINE_CAPABILITIES)
        if extra:
            bad.append(f"container {c['name']} adds {extra}")
    return bad


def host_path_volumes(meta, spec) -> list[str]:
    """check_hostPathVolumes.go: no hostPath volume."""
    return [f"volume {v['name']} is a hostPath" for v in spec.get("volumes") or [] if "hostPath" in v]


def host_ports(meta, spec) -> list[str]:
    """check_hostPorts.go: hostPort unset or 0 (PodSecurity admission supports no allow-list)."""
    return [f"container {c['name']} uses hostPort {p['hostPort']}" for c in all_containers(spec) for p in c.get("ports") or [] if p.get("hostPort")]


def app_armor_profile(meta, spec) -> list[str]:
    """check_appArmorProfile.go: profile type RuntimeDefault or Localhost (or unset), and the
    deprecated annotations runtime/default or localhost/*."""
    bad = []
    contexts = [("pod", _sc(spec))] + [(f"container {c['name']}", _sc(c)) for c in all_containers(spec)]
    for who, sc in contexts:
        profile = sc.get("appArmorProfile")
        if profile is not None and profile.get("type") not in ("RuntimeDefault", "Localhost"):
            bad.append(f"{who} sets appArmorProfile.type={profile.get('type')}")
    for key, value in ((meta or {}).get("annotations") or {}).items():
        if key.startswith(APPARMOR_ANNOTATION) and value != "runtime/default" and not value.startswith("localhost/"):
            bad.append(f"annotation {key}={value}")
    return bad


def se_linux_options(meta, spec) -> list[str]:
    """check_seLinuxOptions.go: type from the container types only; user and role unset."""
    bad = []
    contexts = [("pod", _sc(spec))] + [(f"container {c['name']}", _sc(c)) for c in all_containers(spec)]
    for who, sc in contexts:
        opts = sc.get("seLinuxOptions")
        if opts is None:
            continue
        if opts.get("type", "") not in SELINUX_TYPES:
            bad.append(f"{who} sets seLinuxOptions.type={opts.get('type')}")
        for field in ("user", "role"):
            if opts.get(field):
                bad.append(f"{who} sets seLinuxOptions.{field}")
    return bad


def proc_mount_baseline(meta, spec) -> list[str]:
    """check_procMount_baseline.go (1.35): procMount Default or unset, except that a pod in its own
    user namespace (hostUsers: false) may use Unmasked."""
    if _user_namespaced(spec):
        return []
    return proc_mount_restricted(meta, spec)


def seccomp_profile_baseline(meta, spec) -> list[str]:
    """check_seccompProfile_baseline.go: seccompProfile.type must not be Unconfined."""
    bad = []
    if (_sc(spec).get("seccompProfile") or {}).get("type") == "Unconfined":
        bad.append("pod sets seccompProfile Unconfined")
    bad += [f"container {c['name']} sets seccompProfile Unconfined" for c in all_containers(spec) if (_sc(c).get("seccompProfile") or {}).get("type") == "Unconfined"]
    return bad


def sysctls(meta, spec) -> list[str]:
    """check_sysctls.go: only the safe sysctls."""
    return [f"sysctl {s['name']}" for s in _sc(spec).get("sysctls") or [] if s.get("name") not in SAFE_SYSCTLS]


def host_probes_and_host_lifecycle(meta, spec) -> list[str]:
    """check_hostProbesAndHostLifecycle.go (1.34): probes and hooks must not set httpGet.host or
    tcpSocket.host (a pod could otherwise make the kubelet reach any host)."""
    bad = []
    for c in all_containers(spec):
        handlers = [c.get(k) for k in ("livenessProbe", "readinessProbe", "startupProbe")]
        handlers += [(c.get("lifecycle") or {}).get(k) for k in ("postStart", "preStop")]
        for h in handlers:
            for kind in ("httpGet", "tcpSocket"):
                if h and (h.get(kind) or {}).get("host"):
                    bad.append(f"container {c['name']} sets {kind}.host")
    return bad


BASELINE_CHECKS: list[Callable[[Any, Any], list[str]]] = [
    windows_host_process,
    host_namespaces,
    privileged,
    capabilities_baseline,
    host_path_volumes,
    host_ports,
    app_armor_profile,
    se_linux_options,
    proc_mount_baseline,
    seccomp_profile_baseline,
    sysctls,
    host_probes_and_host_lifecycle,
]

# ------------------------------------------------------------------------------ restricted


def restricted_volumes(meta, spec) -> list[str]:
    """check_restrictedVolumes.go: only the core volume sources."""
    bad = []
    for v in spec.get("volumes") or []:
        sources = [k for k in v if k != "name"] or ["emptyDir"]  # no source: defaulted to emptyDir
        if not all(s in RESTRICTED_VOLUME_SOURCES for s in sources):
            bad.append(f"volume {v['name']} uses {sources}")
    return bad


def allow_privilege_escalation(meta, spec) -> list[str]:
    """check_allowPrivilegeEscalation.go: every container sets allowPrivilegeEscalation=false."""
    if _is_windows(spec):
        return []
    return [f"container {c['name']} does not set allowPrivilegeEscalation=false" for c in all_containers(spec) if _sc(c).get("allowPrivilegeEscalation") is not False]


def run_as_non_root(meta, spec) -> list[str]:
    """check_runAsNonRoot.go: runAsNonRoot=true on the pod (and no container sets false), or on
    every container. Relaxed for pods in their own user namespace (1.33+, hostUsers: false)."""
    if _user_namespaced(spec):
        return []
    pod_value = _sc(spec).get("runAsNonRoot")
    bad = []
    if pod_value is False:
        bad.append("pod sets runAsNonRoot=false")
    for c in all_containers(spec):
        value = _sc(c).get("runAsNonRoot")
        if value is False:
            bad.append(f"container {c['name']} sets runAsNonRoot=false")
        elif value is None and pod_value is not True:
            bad.append(f"container {c['name']} does not set runAsNonRoot=true (nor does the pod)")
    return bad


def run_as_user(meta, spec) -> list[str]:
    """check_runAsUser.go: runAsUser must not be 0 (unset is fine). Relaxed with hostUsers: false."""
    if _user_namespaced(spec):
        return []
    bad = ["pod sets runAsUser=0"] if _sc(spec).get("runAsUser") == 0 else []
    bad += [f"container {c['name']} sets runAsUser=0" for c in all_containers(spec) if _sc(c).get("runAsUser") == 0]
    return bad


def seccomp_profile_restricted(meta, spec) -> list[str]:
    """check_seccompProfile_restricted.go: RuntimeDefault or Localhost on the pod, or on every
    container that does not inherit it; never Unconfined."""
    if _is_windows(spec):
        return []
    ok = ("RuntimeDefault", "Localhost")
    pod_type = (_sc(spec).get("seccompProfile") or {}).get("type")
    bad = []
    if pod_type is not None and pod_type not in ok:
        bad.append(f"pod sets seccompProfile {pod_type}")
    for c in all_containers(spec):
        ctype = (_sc(c).get("seccompProfile") or {}).get("type")
        if ctype is not None and ctype not in ok:
            bad.append(f"container {c['name']} sets seccompProfile {ctype}")
        elif ctype is None and pod_type not in ok:
            bad.append(f"container {c['name']} must set seccompProfile RuntimeDefault or Localhost (the pod does not)")
    return bad


def capabilities_restricted(meta, spec) -> list[str]:
    """check_capabilities_restricted.go: drop ALL, add nothing but NET_BIND_SERVICE."""
    if _is_windows(spec):
        return []
    bad = []
    for c in all_containers(spec):
        caps = _sc(c).get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []):
            bad.append(f"container {c['name']} does not drop ALL capabilities")
        extra = sorted(set(caps.get("add") or []) - {"NET_BIND_SERVICE"})
        if extra:
            bad.append(f"container {c['name']} adds {extra}")
    return bad


def proc_mount_restricted(meta, spec) -> list[str]:
    """check_procMount_restricted.go (1.35): procMount Default or unset, whatever the user namespace."""
    return [f"container {c['name']} sets procMount {_sc(c)['procMount']}" for c in all_containers(spec) if _sc(c).get("procMount") not in (None, "Default")]


RESTRICTED_CHECKS: list[Callable[[Any, Any], list[str]]] = [
    restricted_volumes,
    allow_privilege_escalation,
    run_as_non_root,
    run_as_user,
    seccomp_profile_restricted,
    capabilities_restricted,
    proc_mount_restricted,
]


def violations(meta: dict[str, Any], spec: dict[str, Any], level_name: str) -> list[str]:
    """Every violation of `level_name` (`baseline` or `restricted`, which includes baseline)."""
    checks = list(BASELINE_CHECKS)
    if level_name == RESTRICTED:
        checks += RESTRICTED_CHECKS
    elif level_name != BASELINE:
        raise ValueError(level_name)
    return [f"{check.__name__}: {v}" for check in checks for v in check(meta, spec)]


def level(meta: dict[str, Any], spec: dict[str, Any]) -> str:
    """The most restrictive standard the pod meets."""
    if violations(meta, spec, BASELINE):
        return PRIVILEGED
    if violations(meta, spec, RESTRICTED):
        return BASELINE
    return RESTRICTED
