"""The real-world corpus itself is sound: otherwise a failure of the acceptance tests could be the
corpus' fault rather than podgrace's. Every file names the public workload it models, parses, and
every pod template in it is valid Kubernetes *before* mutation (strict schema, the API server's
pod rules) with the Pod Security level its original has."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import apiserver_rules
import pod_security
from harness import CORPUS, MANIFESTS, find_templates, load, validate_strict

HEADER = re.compile(r"^# Models [\w.-]+/[\w.-]+:\S+ — \S.*$")
MIN_FILES = 30


def test_the_corpus_has_enough_real_world_manifests():
    assert len(MANIFESTS) >= MIN_FILES, f"{len(MANIFESTS)} manifests in {CORPUS}, at least {MIN_FILES} expected"


@pytest.mark.parametrize("manifest", MANIFESTS, ids=lambda p: p.stem)
def test_each_manifest_names_what_it_models_and_is_valid_before_mutation(manifest: Path):
    first = manifest.read_text().splitlines()[0]
    assert HEADER.match(first), f"first line must be `# Models <owner/repo>:<path> — <shape>`, got {first!r}"
    docs = load(manifest)
    templates = find_templates(docs)
    assert templates, "no pod template in the file"
    assert len(templates) == len(docs), "only pod-bearing documents belong in the corpus"
    for doc in docs:
        validate_strict(doc)
    for t in templates:
        meta, spec = t.pod(docs[t.doc_index])
        errors = apiserver_rules.validate_pod(meta, spec, t.claim_templates)
        assert not errors, f"{t.label}: the original already breaks the API server's rules: {errors}"


def test_the_corpus_covers_every_pod_security_level_and_shape():
    """The traps the acceptance tests rely on are present: restricted, baseline and privileged pods,
    native sidecars, grace periods 0 and 5, no ports, 63-character names, ports named https, users'
    preStop hooks of every kind, liveness-only containers of every probe handler, users' own
    startupProbes, readiness identical to liveness."""
    levels, shapes = set(), set()
    for manifest in MANIFESTS:
        docs = load(manifest)
        for t in find_templates(docs):
            meta, spec = t.pod(docs[t.doc_index])
            levels.add(pod_security.level(meta, spec))
            containers = spec.get("containers", []) + spec.get("initContainers", [])
            if any(c.get("restartPolicy") == "Always" for c in spec.get("initContainers", [])):
                shapes.add("native sidecar")
            if spec.get("terminationGracePeriodSeconds") in (0, 5):
                shapes.add(f"grace {spec['terminationGracePeriodSeconds']}")
            if any(not c.get("ports") for c in spec.get("containers", [])):
                shapes.add("no ports")
            if any(len(c["name"]) == 63 for c in containers):
                shapes.add("63-character name")
            if any(p.get("name") == "https" for c in containers for p in c.get("ports") or []):
                shapes.add("port named https")
            for c in containers:
                hook = (c.get("lifecycle") or {}).get("preStop") or {}
                for kind in ("sleep", "exec", "httpGet", "tcpSocket"):
                    if kind in hook:
                        shapes.add(f"user preStop {kind}")
                liveness = c.get("livenessProbe")
                if liveness and not c.get("readinessProbe") and not c.get("startupProbe"):
                    for kind in ("exec", "httpGet", "tcpSocket", "grpc"):
                        if kind in liveness:
                            shapes.add(f"liveness only {kind}")
                if c.get("startupProbe"):
                    shapes.add("user startupProbe")
                readiness = c.get("readinessProbe") or {}
                if liveness and "httpGet" in liveness and liveness.get("httpGet") == readiness.get("httpGet"):
                    shapes.add("HTTP readiness identical to liveness")
    assert levels == {pod_security.RESTRICTED, pod_security.BASELINE, pod_security.PRIVILEGED}
    expected = {
        "native sidecar",
        "grace 0",
        "grace 5",
        "no ports",
        "63-character name",
        "port named https",
        "user preStop sleep",
        "user preStop exec",
        "user preStop httpGet",
        "user preStop tcpSocket",
        "liveness only exec",
        "liveness only httpGet",
        "liveness only tcpSocket",
        "liveness only grpc",
        "user startupProbe",
        "HTTP readiness identical to liveness",
    }
    assert expected <= shapes, f"missing from the corpus: {sorted(expected - shapes)}"
