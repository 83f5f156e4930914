"""Scale options of the chart: the optional HorizontalPodAutoscaler (validated against the
Kubernetes 1.36 schema by conftest.render), the Deployment and PodDisruptionBudget that follow it,
topology spread and priority class (test_workload covers their pass-through)."""

from __future__ import annotations

import helm_python as helm
import pytest
from conftest import NAMESPACE, chart, render


def test_there_is_no_autoscaler_by_default_and_the_deployment_sets_its_replicas():
    r = render()
    assert r.all("HorizontalPodAutoscaler") == []
    assert r.deployment["spec"]["replicas"] == 2


def test_the_autoscaler_scales_the_deployment_on_cpu_and_leaves_it_the_replicas():
    r = render({"autoscaling": {"enabled": True}, "replicas": 7})
    hpa = r.one("HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["metadata"]["namespace"] == NAMESPACE
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                             "name": r.deployment["metadata"]["name"]}
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 5)
    assert hpa["spec"]["metrics"] == [{"type": "Resource", "resource": {
        "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}]
    # `helm upgrade` must not reset what the autoscaler chose.
    assert "replicas" not in r.deployment["spec"]
    assert "behavior" not in hpa["spec"]


def test_the_autoscaler_follows_its_values():
    behavior = {"scaleDown": {"stabilizationWindowSeconds": 600}}
    hpa = render({"autoscaling": {"enabled": True, "minReplicas": 3, "maxReplicas": 10,
                                  "targetCPUUtilizationPercentage": 60,
                                  "targetMemoryUtilizationPercentage": 75,
                                  "behavior": behavior}}).one("HorizontalPodAutoscaler")
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (3, 10)
    assert [m["resource"]["name"] for m in hpa["spec"]["metrics"]] == ["cpu", "memory"]
    assert [m["resource"]["target"]["averageUtilization"] for m in hpa["spec"]["metrics"]] == [60, 75]
    assert hpa["spec"]["behavior"] == behavior


def test_the_pdb_follows_the_autoscaler_minimum():
    assert render({"autoscaling": {"enabled": True, "minReplicas": 1}, "replicas": 3}).all(
        "PodDisruptionBudget") == []
    assert render({"autoscaling": {"enabled": True, "minReplicas": 2}, "replicas": 1}).one(
        "PodDisruptionBudget")["spec"]["minAvailable"] == 1


@pytest.mark.parametrize(("values", "message"), [
    ({"minReplicas": 6, "maxReplicas": 5}, "autoscaling.minReplicas (6) is above autoscaling.maxReplicas (5)"),
])
def test_an_impossible_autoscaler_is_refused_with_a_clear_error(values, message):
    with pytest.raises(helm.HelmRenderError) as err:
        chart().render({"autoscaling": {"enabled": True, **values}}, name="podgrace", namespace=NAMESPACE)
    assert message in str(err.value)


def test_utilization_targets_need_the_matching_requests():
    with pytest.raises(helm.HelmRenderError) as err:
        chart().render({"autoscaling": {"enabled": True}, "resources": {"requests": {"cpu": None}}},
                       name="podgrace", namespace=NAMESPACE)
    assert "autoscaling needs resources.requests.cpu" in str(err.value)
    with pytest.raises(helm.HelmRenderError) as err:
        chart().render({"autoscaling": {"enabled": True, "targetMemoryUtilizationPercentage": 80},
                        "resources": {"requests": {"memory": None}}}, name="podgrace", namespace=NAMESPACE)
    assert "autoscaling.targetMemoryUtilizationPercentage needs resources.requests.memory" in str(err.value)


def test_the_schema_rejects_bad_autoscaler_values():
    for values, where in [
        ({"autoscaling": {"minReplicas": 0}}, "/autoscaling/minReplicas"),
        ({"autoscaling": {"targetCPUUtilizationPercentage": 0}}, "/autoscaling/targetCPUUtilizationPercentage"),
        ({"autoscaling": {"enabled": "yes"}}, "/autoscaling/enabled"),
    ]:
        with pytest.raises(helm.HelmValuesError) as err:
            chart().validate_schema(values)
        assert where in str(err.value)


def test_spread_and_priority_reach_the_pods_with_the_autoscaler_too():
    r = render({"autoscaling": {"enabled": True},
                "priorityClassName": "system-cluster-critical",
                "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone",
                                               "whenUnsatisfiable": "ScheduleAnyway"}]})
    spec = r.pod["spec"]
    assert spec["priorityClassName"] == "system-cluster-critical"
    [constraint] = spec["topologySpreadConstraints"]
    assert constraint["labelSelector"]["matchLabels"] == r.deployment["spec"]["selector"]["matchLabels"]
