"""Acceptance tests of podgrace on real-world workloads (issue 14).

Every pod template of every manifest in tests/fixtures/realworld, under every policy of
tests/fixtures/policies/realworld (each over the same cluster policy), goes through the real
binary, and each test below checks one promise on the result, independently of podgrace's own code:

  a. the patch applies to the original document (RFC 6902, applied with `jsonpatch`) and equals
     what `-o pod` prints, read back as kubectl reads YAML (1.1);
  b. the result is schema-valid (kubernetes-validate 1.36, strict);
  c. the result passes the API server's semantic pod rules (apiserver_rules.py) and no env var is
     duplicated by podgrace;
  d. the Pod Security level (pod_security.py) is not lowered;
  e. podgrace on its own result changes nothing (`reinvocationPolicy: IfNeeded` is safe);
  f. the grace period covers every hook that will run;
  g. a probe podgrace adds targets a port its own container declares (or is the liveness probe's
     own check, run earlier by a startupProbe), never HTTP to HTTPS, and never the pod IP when
     the container's own probes name another address (`host`);
  h. every warning fits in 120 characters and is not cut;
  i. graceful start: a container whose liveness probe would restart it before its declared start
     time gets a startupProbe covering that time, running its liveness check (or the readiness
     check podgrace added); a user's startupProbe is never changed; none is added elsewhere;
  j. nothing that only runs on Linux (the helper's init container) is added to a pod that runs
     on Windows nodes, whether it says so in `spec.os` or in its node selector;
  k. proxies that drain by their own protocol (Istio's and Linkerd's, Knative's queue-proxy) are
     left as they are;
  l. static pods' mirrors (`kubernetes.io/config.mirror`) are left as they are: the kubelet runs
     the manifest on its disk, and the API server refuses a mirror that references a Secret.

Each test collects every violation of the (manifest, policy) pair before failing, naming the
object and container, so that one run lists every broken workload.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest

import apiserver_rules
import pod_security
from harness import (
    BUFFER_SECONDS,
    EXCLUDED_CONTAINERS,
    KUBERNETES_VERSION,
    PODGRACE,
    SHUTDOWN_SECONDS,
    case_id,
    cases,
    declared_start,
    mutate,
    remutate,
    validate_strict,
)
from hook_time import hook_seconds

CASES = pytest.mark.parametrize(("manifest", "policy"), cases(), ids=case_id)

GRACE_ANNOTATION = "podgrace.io/grace"
# The annotation the kubelet gives a static pod's copy in the API (its mirror pod).
MIRROR = "kubernetes.io/config.mirror"
PROBES = ("readinessProbe", "livenessProbe", "startupProbe")
MAX_WARNING = 120


@pytest.fixture(scope="session", autouse=True)
def _binary_is_built():
    # Missing is a failure, not a skip: `make test` builds it (cargo test --all-targets) first.
    assert PODGRACE.is_file(), "target/debug/podgrace is missing: run `cargo build` (make test does)"


def _fail_if(problems: list[str], what: str) -> None:
    if problems:
        pytest.fail(f"{what}:\n  " + "\n  ".join(problems), pytrace=False)


def _serving_containers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """Regular containers and native sidecars (initContainers with restartPolicy Always)."""
    return list(spec.get("containers") or []) + [c for c in spec.get("initContainers") or [] if c.get("restartPolicy") == "Always"]


# ------------------------------------------------------------------------------------------ a


@CASES
def test_patch_applies_to_the_original_and_equals_the_printed_pod(manifest: Path, policy: str):
    m = mutate(manifest, policy)
    _fail_if(m.apply_errors, "the JSON patch does not apply to the original document")
    problems = []
    if len(m.printed) != len(m.patched):
        problems.append(f"-o pod printed {len(m.printed)} documents, the manifest has {len(m.patched)}")
    for i, (printed, patched) in enumerate(zip(m.printed, m.patched)):
        if printed != patched:
            name = f"{patched.get('kind')} {patched.get('metadata', {}).get('name')}"
            problems.append(f"document {i} ({name}): -o pod differs from the patched original: {_first_difference(patched, printed)}")
    _fail_if(problems, "`-o pod` is not the patched manifest as kubectl would read it")


def _first_difference(expected: Any, actual: Any, path: str = "") -> str:
    if isinstance(expected, dict) and isinstance(actual, dict):
        for key in list(expected) + [k for k in actual if k not in expected]:
            if expected.get(key, "<absent>") != actual.get(key, "<absent>"):
                return _first_difference(expected.get(key, "<absent>"), actual.get(key, "<absent>"), f"{path}/{key}")
    if isinstance(expected, list) and isinstance(actual, list) and len(expected) == len(actual):
        for i, (e, a) in enumerate(zip(expected, actual)):
            if e != a:
                return _first_difference(e, a, f"{path}/{i}")
    return f"{path or '/'}: expected {json.dumps(expected)[:120]}, printed {json.dumps(actual)[:120]}"


# ------------------------------------------------------------------------------------------ b


@CASES
def test_mutated_objects_are_schema_valid(manifest: Path, policy: str):
    m = mutate(manifest, policy)
    problems = []
    for t, _, _ in m.pods():
        try:
            validate_strict(m.patched[t.doc_index])
        except kubernetes_validate.ValidationError as e:
            problems.append(f"{t.label}: {'.'.join(map(str, e.path))}: {e.message}")
    _fail_if(problems, f"not valid against the Kubernetes {KUBERNETES_VERSION} schemas")


# ------------------------------------------------------------------------------------------ c


@CASES
def test_mutated_pods_pass_the_api_servers_pod_validation(manifest: Path, policy: str):
    m = mutate(manifest, policy)
    problems = []
    for t, (_, before), (meta, after) in m.pods():
        problems += [f"{t.label}: {e}" for e in apiserver_rules.validate_pod(meta, after, t.claim_templates)]
        problems += [f"{t.label}: {e}" for e in apiserver_rules.added_duplicate_env(before, after)]
    _fail_if(problems, "the API server would reject the mutated pod")


# ------------------------------------------------------------------------------------------ d


@CASES
def test_pod_security_level_is_not_lowered(manifest: Path, policy: str):
    m = mutate(manifest, policy)
    problems = []
    for t, (meta0, before), (meta1, after) in m.pods():
        was, now = pod_security.level(meta0, before), pod_security.level(meta1, after)
        if was != now:
            lost = pod_security.violations(meta1, after, was)
            problems.append(f"{t.label}: {was} → {now}: " + "; ".join(lost))
    _fail_if(problems, "podgrace lowered the Pod Security level")


# ------------------------------------------------------------------------------------------ e


@CASES
def test_mutating_the_result_again_changes_nothing(manifest: Path, policy: str):
    m = mutate(manifest, policy)
    again = remutate(manifest, policy)
    problems = [f"{t.label}: {p}" for t, p in zip(m.templates, again) if json.loads(p) != []]
    _fail_if(problems, "podgrace patches its own output again (not idempotent)")


# ------------------------------------------------------------------------------------------ f


def _stated_total(annotation: str) -> int:
    """The seconds `podgrace.io/grace` says the pod needs: the target of `30 → 75:`, `60 ≥ 45:`,
    `30 < 45 (...)`, and the sum of the arithmetic's terms (`preStop 35s + shutdown 30s + ...`),
    parenthesised sources left out."""
    head, _, arithmetic = annotation.partition(": ")
    numbers = [int(n) for n in re.findall(r"\d+", head)]
    stated = max(numbers[1:], default=0)
    terms = [int(n) for n in re.findall(r"(\d+)s\b", re.sub(r"\([^)]*\)", "", arithmetic))]
    return max(stated, sum(terms))


@CASES
def test_grace_period_covers_every_hook(manifest: Path, policy: str):
    m = mutate(manifest, policy)
    problems = []
    for t, (_, before), (meta, after) in m.pods():
        grace = apiserver_rules.grace_period(after)
        old_grace = apiserver_rules.grace_period(before)
        containers = _serving_containers(after)
        # Every native preStop sleep must fit: the API server rejects the pod otherwise.
        for c in containers:
            sleep = (((c.get("lifecycle") or {}).get("preStop") or {}).get("sleep") or {}).get("seconds")
            if sleep is not None and sleep > grace:
                problems.append(f"{t.label}: container {c['name']}: preStop sleep {sleep}s > terminationGracePeriodSeconds {grace}")
        if policy == "keep":
            if grace != old_grace:
                problems.append(f"{t.label}: gracePeriod keep, yet terminationGracePeriodSeconds {old_grace} → {grace}")
            continue
        annotation = ((meta.get("annotations") or {}).get(GRACE_ANNOTATION)) if meta else None
        if annotation is not None and grace < _stated_total(annotation):
            problems.append(f"{t.label}: terminationGracePeriodSeconds {grace} < the {_stated_total(annotation)}s its {GRACE_ANNOTATION} states ({annotation})")
        # A hook the user wrote is kept by default and runs in full before SIGTERM: where its
        # duration is certain, the grace period must cover it and, for a container the policy
        # manages, the app's shutdown and buffer after it.
        if (after.get("restartPolicy") or "Always") != "Always":
            continue  # Jobs and debug pods are skipped by design
        before_by_name = {c["name"]: c for c in _serving_containers(before)}
        for c in containers:
            original = before_by_name.get(c["name"])
            own_hook = ((original or {}).get("lifecycle") or {}).get("preStop")
            if not own_hook:
                continue
            seconds = hook_seconds(own_hook)
            if seconds is None:
                continue
            needed = seconds if c["name"] in EXCLUDED_CONTAINERS else seconds + SHUTDOWN_SECONDS + BUFFER_SECONDS
            if grace < needed:
                what = "hook" if c["name"] in EXCLUDED_CONTAINERS else f"hook + shutdown {SHUTDOWN_SECONDS}s + buffer {BUFFER_SECONDS}s"
                problems.append(f"{t.label}: container {c['name']}: its own preStop takes {seconds}s; {what} = {needed}s > terminationGracePeriodSeconds {grace}")
    _fail_if(problems, "the grace period does not cover the hooks that will run")


# ------------------------------------------------------------------------------------------ g


def _https_named(name: str | None) -> bool:
    return bool(name) and (name == "https" or name.startswith("https-") or name.endswith("-https"))


def _hosts(probe: dict[str, Any] | None) -> list[str]:
    """The addresses a probe names (`host`); none means the pod IP."""
    return [probe[a]["host"] for a in ("httpGet", "tcpSocket") if probe and (probe.get(a) or {}).get("host")]


def _port_number(container: dict[str, Any], port: int | str | None) -> int | None:
    """A probe's port as a number: itself, or the container port of that name."""
    if isinstance(port, int):
        return port
    return next((p["containerPort"] for p in container.get("ports") or [] if p.get("name") == port), None)


def _path_base(path: str | None) -> str:
    return (path or "/").split("?")[0].lstrip("/").split("/")[0]


def _own_probe_ports(container: dict[str, Any], path: str) -> set[int | None]:
    """The ports on which the container's own HTTP probes check a path with the same first
    segment as `path` (the same server: `/actuator/health/liveness` and `.../readiness`)."""
    base = _path_base(path)
    if not base:
        return set()
    return {
        _port_number(container, container[k]["httpGet"].get("port"))
        for k in PROBES
        if (container.get(k) or {}).get("httpGet") and _path_base(container[k]["httpGet"].get("path")) == base
    }


def _management_port(container: dict[str, Any]) -> int | None:
    """Spring Boot's management port, where the container sets it as a plain number
    (`MANAGEMENT_SERVER_PORT`, or `management.server.port=` in an argument or env value)."""
    for e in container.get("env") or []:
        if e.get("name") in ("MANAGEMENT_SERVER_PORT", "MANAGEMENT_PORT") and str(e.get("value", "")).isdigit():
            return int(e["value"])
    texts = [*(container.get("command") or []), *(container.get("args") or []), *(str(e.get("value", "")) for e in container.get("env") or [])]
    for text in texts:
        found = re.search(r"management\.(?:server\.)?port=(\d+)", text)
        if found:
            return int(found.group(1))
    return None


@CASES
def test_added_probes_target_ports_their_container_declares(manifest: Path, policy: str):
    m = mutate(manifest, policy)
    problems = []
    for t, (_, before), (_, after) in m.pods():
        old = {(f, c["name"]): c for f in ("containers", "initContainers") for c in before.get(f) or []}
        for field in ("containers", "initContainers"):
            for c in after.get(field) or []:
                was = old.get((field, c["name"]), {})
                ports = c.get("ports") or []
                by_number = {p.get("containerPort"): p for p in ports}
                by_name = {p.get("name"): p for p in ports if p.get("name")}
                for kind in PROBES:
                    probe = c.get(kind)
                    if not probe or was.get(kind) == probe:
                        continue
                    # A startupProbe running the liveness probe's own check passes when it does.
                    if kind == "startupProbe" and was.get("livenessProbe") and _handler(probe) == _handler(was["livenessProbe"]):
                        continue
                    where = f"{t.label}: {field} {c['name']}: added {kind}"
                    own_hosts = sorted({h for k in PROBES for h in _hosts(was.get(k))})
                    if own_hosts and not _hosts(probe):
                        problems.append(f"{where} at the pod IP, where the container's own probes check {own_hosts}")
                    get = probe.get("httpGet")
                    served_at = _own_probe_ports(was, get["path"]) if get else set()
                    if get and served_at and _port_number(c, get["port"]) not in served_at:
                        problems.append(f"{where} of {get['path']} on port {get['port']!r}; the container's own probes check that path's server on {sorted(served_at)}")
                    management = _management_port(was)
                    if get and management and get["path"].startswith("/actuator") and _port_number(c, get["port"]) != management:
                        problems.append(f"{where} of {get['path']} on port {get['port']!r}; Spring Boot serves it on its management port {management}")
                    for action in ("httpGet", "tcpSocket", "grpc"):
                        if not probe.get(action):
                            continue
                        target = probe[action].get("port")
                        port = by_name.get(target) if isinstance(target, str) else by_number.get(target)
                        if port is None and action == "httpGet" and _port_number(c, target) in served_at:
                            continue  # where the container's own probe of that path goes
                        if port is None:
                            declared = [p.get("name") or p.get("containerPort") for p in ports] or "none"
                            problems.append(f"{where} on port {target!r}, which the container does not declare (declares {declared})")
                            continue
                        if action == "httpGet":
                            scheme = probe["httpGet"].get("scheme", "HTTP")
                            if _https_named(port.get("name")) and scheme == "HTTP":
                                problems.append(f"{where}: plain HTTP on port {port.get('name')} ({port['containerPort']}), which serves HTTPS")
                            elif scheme == "HTTPS" and (port.get("name") or "").startswith("http") and not _https_named(port.get("name")):
                                problems.append(f"{where}: HTTPS on port {port.get('name')}, which serves HTTP")
    _fail_if(problems, "a probe podgrace added can never pass")


# ------------------------------------------------------------------------------------------ h


@CASES
def test_warnings_fit_in_120_characters_and_are_not_cut(manifest: Path, policy: str):
    m = mutate(manifest, policy)
    problems = []
    for obj, message in m.warnings():
        if len(message) >= MAX_WARNING:
            problems.append(f"{obj}: {len(message)} characters: {message}")
        elif message.endswith("…"):
            problems.append(f"{obj}: cut: {message}")
    _fail_if(problems, f"warnings must be shorter than {MAX_WARNING} characters and complete")


# ------------------------------------------------------------------------------------------ i

PROBE_HANDLERS = ("exec", "httpGet", "tcpSocket", "grpc")


def _handler(probe: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in probe.items() if k in PROBE_HANDLERS and v is not None}


def _allowance(probe: dict[str, Any]) -> int:
    """How long a probe lets a container start: initialDelaySeconds + failureThreshold ×
    periodSeconds, with the API server's defaults (SetDefaults_Probe: 3 and 10)."""
    delay = max(probe.get("initialDelaySeconds") or 0, 0)
    return delay + (probe.get("failureThreshold") or 3) * (probe.get("periodSeconds") or 10)


@CASES
def test_a_startup_probe_covers_the_declared_start_where_liveness_would_not(manifest: Path, policy: str):
    m = mutate(manifest, policy)
    problems = []
    for t, (meta0, before), (_, after) in m.pods():
        declared = declared_start(policy, meta0.get("labels") or {})
        # Batch pods and static pods' mirrors (check l) are left alone.
        batch = (before.get("restartPolicy") or "Always") != "Always" or MIRROR in ((meta0 or {}).get("annotations") or {})
        for field in ("containers", "initContainers"):
            old = {c["name"]: c for c in before.get(field) or []}
            for c in after.get(field) or []:
                was = old.get(c["name"], {})
                where = f"{t.label}: {field} {c['name']}"
                startup, liveness = c.get("startupProbe"), was.get("livenessProbe")
                if was.get("startupProbe") is not None:
                    if startup != was["startupProbe"]:
                        problems.append(f"{where}: its own startupProbe was changed to {startup}")
                    continue
                expected = (
                    field == "containers"
                    and not batch
                    and c["name"] not in EXCLUDED_CONTAINERS
                    and liveness is not None
                    and len(_handler(liveness)) == 1
                    and declared is not None
                    and _allowance(liveness) < declared
                )
                if startup is None:
                    if expected:
                        problems.append(f"{where}: liveness allows {_allowance(liveness)}s < the declared {declared}s start, and no startupProbe was added")
                    continue
                if not expected:
                    problems.append(f"{where}: startupProbe added where none was due: {startup}")
                    continue
                handler = _handler(startup)
                added_readiness = was.get("readinessProbe") is None and _handler(c.get("readinessProbe") or {}) == handler
                if handler != _handler(liveness) and not added_readiness:
                    problems.append(f"{where}: startupProbe runs {handler}, neither the liveness check nor an added readiness check")
                if startup.get("successThreshold", 1) != 1:
                    problems.append(f"{where}: startupProbe successThreshold {startup['successThreshold']} (must be 1)")
                covered = (startup.get("failureThreshold") or 3) * (startup.get("periodSeconds") or 10)
                if covered < declared:
                    problems.append(f"{where}: startupProbe allows {covered}s < the declared {declared}s start")
    _fail_if(problems, "graceful start: the startupProbe is missing, misplaced or too short")


# ------------------------------------------------------------------------------------------ j


def _windows(spec: dict[str, Any]) -> bool:
    selector = spec.get("nodeSelector") or {}
    return (spec.get("os") or {}).get("name") == "windows" or "windows" in (
        selector.get("kubernetes.io/os"),
        selector.get("beta.kubernetes.io/os"),
    )


@CASES
def test_nothing_linux_only_is_added_to_windows_pods(manifest: Path, policy: str):
    m = mutate(manifest, policy)
    problems = []
    for t, (_, before), (_, after) in m.pods():
        if not _windows(before):
            continue
        had = {c["name"] for c in before.get("initContainers") or []}
        added = [c["name"] for c in after.get("initContainers") or [] if c["name"] not in had]
        if added:
            problems.append(f"{t.label}: init containers {added} added to a pod on Windows nodes")
    _fail_if(problems, "a Linux-only container added to a Windows pod")


# ------------------------------------------------------------------------------------------ k


@CASES
def test_proxies_that_drain_themselves_are_left_alone(manifest: Path, policy: str):
    m = mutate(manifest, policy)
    problems = []
    for t, (_, before), (_, after) in m.pods():
        for field in ("containers", "initContainers"):
            old = {c["name"]: c for c in before.get(field) or []}
            for c in after.get(field) or []:
                if c["name"] in EXCLUDED_CONTAINERS and c != old.get(c["name"]):
                    problems.append(f"{t.label}: {field} {c['name']} was changed")
    _fail_if(problems, "a proxy that drains itself was changed")


# ------------------------------------------------------------------------------------------ l


@CASES
def test_static_pods_mirrors_are_left_alone(manifest: Path, policy: str):
    m = mutate(manifest, policy)
    problems = []
    for t, (meta_before, before), (meta_after, after) in m.pods():
        if MIRROR in ((meta_before or {}).get("annotations") or {}):
            if before != after or meta_before != meta_after:
                problems.append(f"{t.label}: the mirror of a static pod was changed")
    _fail_if(problems, "the kubelet runs a static pod's manifest, not its API copy")
