"""Running the real podgrace binary on the real-world corpus, once per (manifest, policy).

The corpus is tests/fixtures/realworld/*.yaml (one public project's workload per file); the
policies are tests/fixtures/policies/realworld/*.yaml, each a namespace policy layered over the
same cluster policy (tests/fixtures/policies/cluster.yaml). For each pair the binary runs three
times at most, cached for the session: `mutate -o patch` and `mutate -o pod` on the manifest, and
`mutate -o patch` again on the result (idempotency). Everything else (applying the patch, schema and API checks, Pod Security) is done
here, independently of podgrace.
"""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import tempfile
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import jsonpatch
import jsonschema
import kubernetes_validate
import kubernetes_validate.utils
import yaml
from referencing import Registry, Resource

REPO = Path(__file__).resolve().parents[2]
# Built by `cargo test --all-targets` (make test runs test-rust before test-chart). PODGRACE_BIN
# points the tests at another build (e.g. an older release, to see what they catch).
PODGRACE = Path(os.environ.get("PODGRACE_BIN", REPO / "target" / "debug" / "podgrace"))
CORPUS = REPO / "tests" / "fixtures" / "realworld"
POLICY_DIR = REPO / "tests" / "fixtures" / "policies" / "realworld"
CLUSTER_POLICY = REPO / "tests" / "fixtures" / "policies" / "cluster.yaml"
KUBERNETES_VERSION = "1.36.0"
# Every binary call is bounded: a hang is a failure, not a stuck `make test`.
TIMEOUT = 60

# Namespace policies by test id; `defaults` has none (only the cluster policy).
POLICIES: dict[str, Path | None] = {
    "defaults": None,
    "nacos-helper": POLICY_DIR / "nacos-helper.yaml",
    "keep": POLICY_DIR / "keep.yaml",
    "http-readiness": POLICY_DIR / "http-readiness.yaml",
    "http-readiness-named": POLICY_DIR / "http-readiness-named.yaml",
    "startup": POLICY_DIR / "startup.yaml",
    "startup-readiness": POLICY_DIR / "startup-readiness.yaml",
    "adaptive-drain": POLICY_DIR / "adaptive-drain.yaml",
}
# What the policies above leave at the cluster policy's values (cluster.yaml): the shutdown and
# buffer allowances a container's budget adds to its preStop time, and the containers a policy
# leaves alone by default (`containers.exclude` of the built-in defaults).
SHUTDOWN_SECONDS = 30
BUFFER_SECONDS = 5
EXCLUDED_CONTAINERS = frozenset({"istio-proxy", "linkerd-proxy", "queue-proxy"})
# The start time (startup.maxSeconds, with startup.inject true) each namespace policy above
# declares for every container; otherwise the cluster policy's spring-boot rule declares 120 s for
# pods labelled framework=spring-boot, and nothing is declared for the others.
STARTUP_SECONDS = {"startup": 120, "startup-readiness": 300}
SPRING_BOOT_STARTUP_SECONDS = 120


def declared_start(policy: str, pod_labels: dict[str, str]) -> int | None:
    """The start time `policy` declares for a pod with these labels, if any."""
    if policy in STARTUP_SECONDS:
        return STARTUP_SECONDS[policy]
    if pod_labels.get("framework") == "spring-boot":
        return SPRING_BOOT_STARTUP_SECONDS
    return None

MANIFESTS = sorted(CORPUS.glob("*.yaml"))

# Where each kind keeps its pod (a Kubernetes fact; podgrace's own table is not reused).
TEMPLATE_PATHS: dict[tuple[str, str], tuple[str, ...]] = {
    ("v1", "Pod"): (),
    ("v1", "PodTemplate"): ("template",),
    ("v1", "ReplicationController"): ("spec", "template"),
    ("apps/v1", "Deployment"): ("spec", "template"),
    ("apps/v1", "StatefulSet"): ("spec", "template"),
    ("apps/v1", "DaemonSet"): ("spec", "template"),
    ("apps/v1", "ReplicaSet"): ("spec", "template"),
    ("batch/v1", "Job"): ("spec", "template"),
    ("batch/v1", "CronJob"): ("spec", "jobTemplate", "spec", "template"),
}

# `warning: <object>: podgrace: ...` on stderr (<object> is `Kind [namespace/]name`); the message
# is what the webhook returns as an admission warning, `podgrace: ...`.
WARNING_LINE = re.compile(r"^warning: (?P<object>.+?): (?P<message>podgrace: .*)$")


@lru_cache(maxsize=None)
def _schema(filename: str) -> Any:
    return kubernetes_validate.utils.schema_contents(filename, KUBERNETES_VERSION)


@lru_cache(maxsize=None)
def _validator(kind: str, api_version: str) -> jsonschema.protocols.Validator:
    # kubernetes_validate.validate's own steps (same schema files, registry and validator class),
    # except that the multi-megabyte definitions are parsed once instead of on every call: the
    # corpus has hundreds of objects to check.
    group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    schema_dir = f"kubernetes-json-schema/v{KUBERNETES_VERSION}-local-strict"
    try:
        schema = _schema(f"{schema_dir}/{kind.lower()}-{group_version}.json")
    except FileNotFoundError:
        raise kubernetes_validate.SchemaNotFoundError(version=KUBERNETES_VERSION, kind=kind, api_version=api_version) from None
    registry = Resource.from_contents(_schema(f"{schema_dir}/_definitions.json")) @ (Resource.from_contents(schema) @ Registry())
    return jsonschema.validators.Draft202012Validator(schema, registry=registry)


def validate_strict(obj: dict[str, Any]) -> None:
    """kubernetes_validate.validate(obj, "1.36.0", strict=True): unknown fields are errors.
    Raises kubernetes_validate.ValidationError."""
    try:
        _validator(obj["kind"], obj["apiVersion"]).validate(obj)
    except jsonschema.ValidationError as e:
        raise kubernetes_validate.ValidationError(e, version=KUBERNETES_VERSION) from None


class PodgraceError(AssertionError):
    """The binary failed or timed out."""


def run_podgrace(*args: str) -> subprocess.CompletedProcess[str]:
    """Runs the binary with a timeout; a non-zero exit is a failure carrying its stderr."""
    try:
        out = subprocess.run([str(PODGRACE), *args], capture_output=True, text=True, timeout=TIMEOUT, check=False)
    except subprocess.TimeoutExpired as e:
        raise PodgraceError(f"podgrace {' '.join(args)} did not finish in {TIMEOUT}s") from e
    if out.returncode != 0:
        raise PodgraceError(f"podgrace {' '.join(args)} exited {out.returncode}:\n{out.stderr}")
    return out


def policy_args(policy: str) -> list[str]:
    args = ["--cluster-policy", str(CLUSTER_POLICY)]
    if POLICIES[policy] is not None:
        args += ["--namespace-policy", str(POLICIES[policy])]
    return args


@dataclass(frozen=True)
class Template:
    """One pod (template) of a document."""

    doc_index: int
    label: str  # `Deployment shop/web`, as podgrace names objects
    path: tuple[str, ...]  # from the document root to the pod
    claim_templates: tuple[str, ...]  # a StatefulSet's volumeClaimTemplates names

    def pod(self, doc: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """(metadata, spec) of this pod inside `doc` (the original or the mutated document)."""
        node = doc
        for token in self.path:
            node = node[token]
        return node.get("metadata") or {}, node.get("spec") or {}


def find_templates(docs: list[dict[str, Any]]) -> list[Template]:
    found = []
    for i, doc in enumerate(docs):
        path = TEMPLATE_PATHS.get((doc.get("apiVersion", ""), doc.get("kind", "")))
        if path is None:
            continue
        meta = doc.get("metadata") or {}
        ns = meta.get("namespace")
        name = meta.get("name") or meta.get("generateName") or "-"
        label = f"{doc['kind']} {ns}/{name}" if ns else f"{doc['kind']} {name}"
        claims = tuple(t["metadata"]["name"] for t in (doc.get("spec") or {}).get("volumeClaimTemplates") or []) if doc["kind"] == "StatefulSet" else ()
        found.append(Template(i, label, path, claims))
    return found


@lru_cache(maxsize=None)
def _load(manifest: Path) -> tuple[str, ...]:
    # Cached as JSON text so that every caller gets fresh, unshared objects.
    return tuple(json.dumps(d) for d in yaml.safe_load_all(manifest.read_text()) if d)


def load(manifest: Path) -> list[dict[str, Any]]:
    """The manifest's documents, as a YAML 1.1 reader (kubectl, PyYAML) reads them."""
    return [json.loads(d) for d in _load(manifest)]


def split_patch_output(stdout: str, templates: list[Template]) -> list[list[dict[str, Any]]]:
    """`-o patch` prints a list with one {document, item, kind, namespace, name, patch} entry per
    workload, whatever the input (README); returns one patch per template, in order."""
    out = json.loads(stdout)
    assert isinstance(out, list) and len(out) == len(templates), f"expected {len(templates)} patches, got {stdout[:300]}"
    patches = []
    for entry, t in zip(out, templates):
        assert set(entry) == {"document", "item", "kind", "namespace", "name", "patch"}, entry
        # In document order; the label's exact wording is podgrace's, only the name is checked.
        name = t.label.rsplit(" ", 1)[-1].rsplit("/", 1)[-1]
        assert entry["name"] == name, f"patch for {entry['kind']} {entry['name']!r} where {t.label!r} was expected"
        patches.append(entry["patch"])
    return patches


@dataclass
class Mutation:
    """podgrace's answer for one manifest under one policy, and the patch applied by jsonpatch."""

    manifest: Path
    policy: str
    original: list[dict[str, Any]]
    templates: list[Template]
    patches: list[list[dict[str, Any]]]
    printed: list[dict[str, Any]]  # `-o pod`, read as YAML 1.1
    stderr: str
    patched: list[dict[str, Any]] | None = None  # None when a patch does not apply
    apply_errors: list[str] = field(default_factory=list)

    def pods(self):
        """(template, (meta, spec) before, (meta, spec) after) for every template."""
        assert self.patched is not None, f"the patch does not apply: {self.apply_errors}"
        for t in self.templates:
            yield t, t.pod(self.original[t.doc_index]), t.pod(self.patched[t.doc_index])

    def warnings(self) -> list[tuple[str, str]]:
        """(object, message) of every `warning:` line."""
        found = []
        for line in self.stderr.splitlines():
            m = WARNING_LINE.match(line)
            if line.startswith("warning:"):
                assert m, f"malformed warning line: {line!r}"
                found.append((m["object"], m["message"]))
        return found


@lru_cache(maxsize=None)
def _mutate(manifest: Path, policy: str) -> Mutation:
    original = load(manifest)
    templates = find_templates(original)
    args = ["mutate", "-f", str(manifest), *policy_args(policy)]
    patch_run = run_podgrace(*args, "-o", "patch")
    pod_run = run_podgrace(*args, "-o", "pod")
    m = Mutation(
        manifest=manifest,
        policy=policy,
        original=original,
        templates=templates,
        patches=split_patch_output(patch_run.stdout, templates),
        printed=[d for d in yaml.safe_load_all(pod_run.stdout) if d is not None],
        stderr=patch_run.stderr,
    )
    patched = copy.deepcopy(original)
    for t, patch in zip(templates, m.patches):
        try:
            patched[t.doc_index] = jsonpatch.apply_patch(patched[t.doc_index], patch)
        except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as e:
            m.apply_errors.append(f"{t.label}: {e}")
    if not m.apply_errors:
        m.patched = patched
    return m


def mutate(manifest: Path, policy: str) -> Mutation:
    """podgrace on `manifest` under `policy` (cached; treat the result as read-only)."""
    return _mutate(manifest, policy)


@lru_cache(maxsize=None)
def remutate(manifest: Path, policy: str) -> tuple[str, ...]:
    """The patches podgrace computes for its own result (the independently patched documents,
    written as a stream of JSON documents), as JSON text per template.

    JSON, because every YAML reader reads it alike: PyYAML's writer leaves `y` and `n` plain,
    which kubectl's reader (go-yaml v2) and podgrace's take for booleans."""
    m = mutate(manifest, policy)
    assert m.patched is not None, f"the patch does not apply: {m.apply_errors}"
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", prefix="podgrace-mutated-") as f:
        f.write("\n---\n".join(json.dumps(d) for d in m.patched))
        f.flush()
        out = run_podgrace("mutate", "-f", f.name, *policy_args(policy), "-o", "patch")
    return tuple(json.dumps(p) for p in split_patch_output(out.stdout, m.templates))


def cases() -> list[tuple[Path, str]]:
    return [(manifest, policy) for manifest in MANIFESTS for policy in POLICIES]


def case_id(value: Any) -> str:
    return value.stem if isinstance(value, Path) else str(value)
