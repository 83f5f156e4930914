"""The real binary with what the chart gives it: the rendered environment, the certificate Helm
generates (RSA, PKCS#1 key), and the cluster policy file. No cluster: namespace policies come from
a directory and the Kubernetes version is given; only loopback is used."""

from __future__ import annotations

import base64
import os
import signal
import socket
import ssl
import subprocess
import time

from conftest import render

SERVICE_NAME = "podgrace.podgrace-system.svc"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(port: int, path: str, ca_file) -> tuple[int, str]:
    """GET over TLS to 127.0.0.1, verifying the certificate for the Service's DNS name."""
    context = ssl.create_default_context(cafile=str(ca_file))
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname=SERVICE_NAME) as tls:
            tls.sendall(f"GET {path} HTTP/1.1\r\nHost: {SERVICE_NAME}\r\nConnection: close\r\n\r\n".encode())
            data = b""
            while chunk := tls.recv(65536):
                data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body.decode(errors="replace")


def test_podgrace_serves_https_with_the_chart_certificate_and_drains_within_the_grace_period(
        podgrace_bin, tmp_path):
    # Helm mode: the certificate is in the render. (Mode self needs an API server:
    # tests/self_certificates.rs.)
    r = render({"certificates": {"mode": "helm"}})
    tls_dir, policy_dir, ns_dir = tmp_path / "tls", tmp_path / "policy", tmp_path / "namespaces"
    for d in (tls_dir, policy_dir, ns_dir):
        d.mkdir()
    for key, value in r.one("Secret")["data"].items():
        (tls_dir / key).write_bytes(base64.b64decode(value))
    (policy_dir / "policy.yaml").write_text(r.one("ConfigMap")["data"]["policy.yaml"])

    # The chart's environment, with the mount paths moved into tmp_path and a loopback port.
    port = free_port()
    env = {k: v.replace("/etc/podgrace", str(tmp_path)) for k, v in r.env.items()}
    env["PODGRACE_LISTEN"] = f"127.0.0.1:{port}"
    env["PODGRACE_POLICY_DIR"] = str(ns_dir)
    env["PODGRACE_KUBE_VERSION"] = "1.36"
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PODGRACE_")}
    proc = subprocess.Popen([podgrace_bin, *r.container["args"]], env={**clean, **env},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 15
        while True:
            assert proc.poll() is None, proc.stdout.read().decode()
            try:
                status, body = get(port, "/readyz", tls_dir / "ca.crt")
                if status == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "podgrace did not become ready"
            time.sleep(0.1)
        assert get(port, "/healthz", tls_dir / "ca.crt")[0] == 200

        # SIGTERM: readiness fails at once while connections are still accepted (the drain), and
        # the process is gone well before the kubelet's SIGKILL.
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        assert get(port, "/readyz", tls_dir / "ca.crt")[0] == 503
        proc.wait(timeout=r.pod["spec"]["terminationGracePeriodSeconds"])
        elapsed = time.monotonic() - started
        assert proc.returncode == 0, proc.stdout.read().decode()
        drain = int(env["PODGRACE_DRAIN_SECONDS"])
        assert drain - 0.5 <= elapsed < r.pod["spec"]["terminationGracePeriodSeconds"]
        # JSON logs, as the chart asks.
        lines = [line for line in proc.stdout.read().decode().splitlines() if line.strip()]
        assert lines and all(line.startswith("{") for line in lines), lines[:3]
        assert any("cluster default policy loaded" in line for line in lines)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()

