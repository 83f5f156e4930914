"""`podgrace mutate -o pod` read back by YAML 1.1 readers, the kind kubectl (go-yaml) and PyYAML
are: every value must come back as the engine produced it (the input with the patch of
`podgrace mutate -o patch` applied), with the keys in the order the user wrote them.

Strings such as `no`, `on`, `y`, `0755`, `1e3`, `12:30`, `null` and `~` are what a YAML 1.1 reader
turns into booleans, numbers or nulls when they are written unquoted; kubectl then rejects the
Deployment (or, worse, sends `false`)."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

# Strings that YAML 1.1 resolves to something else when plain: booleans (go-yaml also takes
# y/n), octal and exponent numbers, base-60 integers, nulls.
TRICKY = ["no", "on", "yes", "off", "y", "n", "Y", "NO", "True", "0755", "1e3", "1_000", "0x1F", "12:30", ".inf", "null", "~", "2001-12-14"]

# Keys deliberately not in alphabetical order, at every level.
MANIFEST: dict[str, Any] = {
    "kind": "Deployment",
    "apiVersion": "apps/v1",
    "metadata": {
        "name": "tricky",
        "namespace": "shop",
        "annotations": {f"example.com/v{i}": v for i, v in enumerate(TRICKY)},
    },
    "spec": {
        "template": {
            "spec": {
                "terminationGracePeriodSeconds": 30,
                "containers": [
                    {
                        "name": "app",
                        "image": "registry.example/app:1",
                        "args": ["--save", *TRICKY],
                        "env": [{"value": v, "name": f"V{i}"} for i, v in enumerate(TRICKY)],
                        "ports": [{"containerPort": 8080, "name": "http"}],
                    }
                ],
            },
            "metadata": {"labels": {"app": "tricky"}},
        },
        "selector": {"matchLabels": {"app": "tricky"}},
        "replicas": 2,
    },
}


def run(podgrace: Path, manifest: Path, output: str) -> str:
    out = subprocess.run(
        [str(podgrace), "mutate", "-f", str(manifest), "-o", output],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def apply_patch(doc: Any, patch: list[dict[str, Any]]) -> Any:
    """RFC 6902 `add`, the only operation podgrace writes."""
    doc = copy.deepcopy(doc)
    for op in patch:
        assert op["op"] == "add", op
        tokens = [t.replace("~1", "/").replace("~0", "~") for t in op["path"].split("/")[1:]]
        parent = doc
        for t in tokens[:-1]:
            parent = parent[int(t)] if isinstance(parent, list) else parent[t]
        last = tokens[-1]
        if isinstance(parent, list):
            parent.insert(len(parent) if last == "-" else int(last), op["value"])
        else:
            parent[last] = op["value"]
    return doc


def assert_same_order(written: Any, read: Any, where: str = "") -> None:
    """Every mapping the user wrote comes back with its keys in the same order (keys podgrace
    added may follow)."""
    if isinstance(written, dict):
        assert isinstance(read, dict), where
        kept = [k for k in read if k in written]
        assert kept == list(written), f"{where or '/'}: {kept} != {list(written)}"
        for k, v in written.items():
            assert_same_order(v, read[k], f"{where}/{k}")
    elif isinstance(written, list):
        for i, (w, r) in enumerate(zip(written, read)):
            assert_same_order(w, r, f"{where}/{i}")


@pytest.fixture(scope="module")
def mutated(podgrace_bin: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Any]:
    """The `-o pod` text, and what the engine produced: the input with its patch applied."""
    manifest = tmp_path_factory.mktemp("cli-yaml") / "tricky.json"
    # JSON: the input itself is unambiguous for every reader.
    manifest.write_text(json.dumps(MANIFEST, indent=1))
    [entry] = json.loads(run(podgrace_bin, manifest, "patch"))
    patch = entry["patch"]
    assert patch, "the engine changed something"
    return run(podgrace_bin, manifest, "pod"), apply_patch(MANIFEST, patch)


def test_a_yaml_1_1_reader_reads_back_what_the_engine_produced(mutated: tuple[str, Any]):
    text, expected = mutated
    read = yaml.safe_load(text)
    assert read == expected
    container = read["spec"]["template"]["spec"]["containers"][0]
    assert container["args"][1:] == TRICKY
    assert "lifecycle" in container, "the hook is in the output"


def test_keys_come_back_in_the_order_they_were_written(mutated: tuple[str, Any]):
    text, _ = mutated
    assert_same_order(MANIFEST, yaml.safe_load(text))
    assert text.startswith("kind: Deployment\napiVersion: apps/v1\n"), text[:80]


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kubectl_reads_back_what_the_engine_produced(mutated: tuple[str, Any], tmp_path: Path):
    text, expected = mutated
    out_file = tmp_path / "out.yaml"
    out_file.write_text(text)
    # --local: kubectl reads the file with its own YAML reader and prints it, no cluster needed.
    out = subprocess.run(
        ["kubectl", "annotate", "--local", "-f", str(out_file), "example.com/read=by-kubectl", "-o", "json"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    read = json.loads(out.stdout)
    del read["metadata"]["annotations"]["example.com/read"]
    assert read == expected
