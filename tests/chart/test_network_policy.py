"""The optional NetworkPolicy: ingress to the webhook port only from the API server's addresses
and the peers listed, rendered with the Helm SDK and validated against the Kubernetes schemas
(conftest.render)."""

from __future__ import annotations

import helm_python as helm
import pytest
from conftest import NAMESPACE, chart, render, selector_matches

API_SERVERS = ["10.0.0.10/32", "10.0.0.11/32", "fd00::10/128"]
MONITORING = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}


def test_there_is_no_network_policy_unless_asked_for():
    assert render().all("NetworkPolicy") == []
    assert render({"networkPolicy": {"enabled": False, "apiServerCIDRs": API_SERVERS}}).all("NetworkPolicy") == []


def test_the_network_policy_admits_only_the_api_server_and_the_listed_peers_to_the_webhook_port():
    r = render({"networkPolicy": {"enabled": True, "apiServerCIDRs": API_SERVERS, "extraFrom": [MONITORING]}})
    policy = r.one("NetworkPolicy")
    assert policy["metadata"]["namespace"] == NAMESPACE
    spec = policy["spec"]
    # It isolates exactly the webhook's pods, for ingress only.
    pod_labels = r.pod["metadata"]["labels"]
    assert selector_matches(spec["podSelector"], pod_labels)
    assert spec["podSelector"] == r.deployment["spec"]["selector"]
    assert spec["policyTypes"] == ["Ingress"]
    # One rule: the webhook port, from the API server's addresses and the extra peers.
    [rule] = spec["ingress"]
    assert rule["ports"] == [{"port": "https", "protocol": "TCP"}]
    assert {p["name"] for p in r.container["ports"]} == {"https"}
    assert rule["from"] == [{"ipBlock": {"cidr": cidr}} for cidr in API_SERVERS] + [MONITORING]


def test_the_network_policy_may_list_peers_only():
    r = render({"networkPolicy": {"enabled": True, "extraFrom": [{"ipBlock": {"cidr": "192.168.0.0/24"}}]}})
    assert r.one("NetworkPolicy")["spec"]["ingress"][0]["from"] == [{"ipBlock": {"cidr": "192.168.0.0/24"}}]


def test_a_network_policy_without_any_source_is_refused_with_a_clear_error():
    with pytest.raises(helm.HelmRenderError) as err:
        chart().render({"networkPolicy": {"enabled": True}}, name="podgrace", namespace=NAMESPACE)
    assert "networkPolicy.enabled needs networkPolicy.apiServerCIDRs or networkPolicy.extraFrom" in str(err.value)


@pytest.mark.parametrize("cidr", ["10.0.0.10", "api-server", "10.0.0.0/24 "])
def test_the_schema_rejects_an_api_server_address_that_is_not_a_cidr(cidr):
    with pytest.raises(helm.HelmValuesError) as err:
        chart().validate_schema({"networkPolicy": {"enabled": True, "apiServerCIDRs": [cidr]}})
    assert "/networkPolicy/apiServerCIDRs/0" in str(err.value)
