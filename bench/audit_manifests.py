#!/usr/bin/env python3
"""Writes N Deployments of realistic shapes as manifests, for timing `podgrace audit -f DIR`
(bench/results/audit.md; bench/mutate_large.sh uses it too).

Usage: bench/audit_manifests.py DIR [N] [PER_FILE] [PER_NAMESPACE]
(defaults 5000, 100, 250). Each namespace gets a Namespace object (half opted in) and
files of PER_FILE Deployments; each Deployment has an application container (ports, probes,
env, resources, a preStop on some), a log shipper and, on every third, an Istio proxy; some
have a shell as PID 1, a Nacos client's environment, nginx or a Spring Boot label (which the
cluster policy tests/fixtures/policies/cluster.yaml gives a declared start time). Standard library only.
"""

import json
import os
import re
import sys

PLAIN = re.compile(r"^[A-Za-z/][A-Za-z0-9./_:-]*$")
SPECIAL = {"y", "n", "yes", "no", "on", "off", "true", "false", "null"}


def scalar(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if PLAIN.match(v) and v.lower() not in SPECIAL and not v.endswith(":"):
        return v
    return json.dumps(v)


def block(v, indent=""):
    """YAML block style, as people write manifests (JSON strings where quoting is needed)."""
    lines = []
    if isinstance(v, dict):
        for k, x in v.items():
            if isinstance(x, (dict, list)) and x:
                lines.append(f"{indent}{k}:")
                lines.extend(block(x, indent + "  " if isinstance(x, dict) else indent))
            elif isinstance(x, (dict, list)):
                lines.append(f"{indent}{k}: {json.dumps(x)}")
            else:
                lines.append(f"{indent}{k}: {scalar(x)}")
    else:
        for x in v:
            sub = block(x, indent + "  ") if isinstance(x, (dict, list)) else [indent + "  " + scalar(x)]
            lines.append(f"{indent}- {sub[0].strip()}")
            lines.extend(sub[1:])
    return lines


def deployment(i, namespace):
    name = f"svc-{i:05d}"
    app = {
        "name": "app",
        "image": ["eclipse-temurin:21", "nginx:1.27", "python:3.12-slim", "gcr.io/distroless/java21"][i % 4],
        "ports": [{"containerPort": 8080, "name": "http"}, {"containerPort": 9090, "name": "metrics"}],
        "env": [
            {"name": "JAVA_OPTS", "value": "-Xms512m -Xmx512m"},
            {"name": "SPRING_PROFILES_ACTIVE", "value": "prod"},
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": f"{name}-db", "key": "password"}}},
        ],
        "resources": {"requests": {"cpu": "250m", "memory": "768Mi"}, "limits": {"memory": "1Gi"}},
        "livenessProbe": {
            "httpGet": {"path": "/actuator/health/liveness", "port": 8080},
            "initialDelaySeconds": 30,
            "periodSeconds": 10,
        },
        "volumeMounts": [{"name": "config", "mountPath": "/etc/app"}],
    }
    if i % 3 != 0:
        app["readinessProbe"] = {
            "httpGet": {"path": "/actuator/health/readiness", "port": 8080},
            "periodSeconds": 5,
        }
    if i % 2 == 0:
        app["lifecycle"] = {"preStop": {"exec": {"command": ["sleep", str(5 + i % 30)]}}}
    if i % 7 == 0:
        app["command"] = ["/bin/sh", "-c", "exec java $JAVA_OPTS -jar /app.jar"]
    if i % 11 == 0:
        app["env"].append({"name": "SPRING_CLOUD_NACOS_DISCOVERY_SERVER_ADDR", "value": "nacos:8848"})
    containers = [
        app,
        {
            "name": "fluent-bit",
            "image": "fluent/fluent-bit:3.1",
            "resources": {"requests": {"cpu": "20m", "memory": "32Mi"}},
            "volumeMounts": [{"name": "logs", "mountPath": "/var/log/app"}],
        },
    ]
    if i % 3 == 0:
        containers.append(
            {
                "name": "istio-proxy",
                "image": "docker.io/istio/proxyv2:1.23.0",
                "ports": [{"containerPort": 15090, "name": "http-envoy-prom"}],
                "readinessProbe": {"httpGet": {"path": "/healthz/ready", "port": 15021}},
            }
        )
    labels = {"app": name, "version": "v1"}
    if i % 4 == 0:
        # The cluster policy's spring-boot rule (tests/fixtures/policies/cluster.yaml).
        labels["framework"] = "spring-boot"
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": name, "team": f"team-{i % 17}"}},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": labels, "annotations": {"prometheus.io/scrape": "true"}},
                "spec": {
                    "terminationGracePeriodSeconds": [30, 60, 20][i % 3],
                    "containers": containers,
                    "volumes": [{"name": "config", "configMap": {"name": f"{name}-config"}}, {"name": "logs", "emptyDir": {}}],
                },
            },
        },
    }


def main():
    out = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 5000
    per_file = int(sys.argv[3]) if len(sys.argv) > 3 else 100
    per_namespace = int(sys.argv[4]) if len(sys.argv) > 4 else 250
    os.makedirs(out, exist_ok=True)
    docs = {}
    for i in range(n):
        ns = f"team-{i // per_namespace:03d}"
        docs.setdefault(ns, []).append(deployment(i, ns))
    for k, (ns, items) in enumerate(sorted(docs.items())):
        namespace = {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": ns, "labels": {"podgrace.io/inject": "enabled"} if k % 2 == 0 else {}},
        }
        with open(os.path.join(out, f"{ns}-namespace.yaml"), "w") as f:
            f.write("\n".join(block(namespace)) + "\n")
        for start in range(0, len(items), per_file):
            path = os.path.join(out, f"{ns}-{start // per_file:03d}.yaml")
            with open(path, "w") as f:
                f.write("\n---\n".join("\n".join(block(d)) for d in items[start : start + per_file]))
                f.write("\n")


if __name__ == "__main__":
    main()
