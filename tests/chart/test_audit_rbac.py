"""The optional read-only ClusterRole for `podgrace audit` (audit.rbac.create)."""

from __future__ import annotations

import helm_python as helm
import pytest
from conftest import render


def test_no_audit_role_unless_asked():
    assert not [o for o in render().all("ClusterRole") if o["metadata"]["name"].endswith("-audit")]


def test_the_audit_role_reads_what_the_audit_lists_and_nothing_else():
    r = render({"audit": {"rbac": {"create": True}}})
    role = r.named("ClusterRole", "podgrace-audit")
    verbs = {verb for rule in role["rules"] for verb in rule["verbs"]}
    assert verbs == {"get", "list"}
    granted = {(g, res) for rule in role["rules"] for g in rule["apiGroups"] for res in rule["resources"]}
    assert granted == {
        ("", "namespaces"), ("", "pods"), ("", "configmaps"),
        ("apps", "deployments"), ("apps", "statefulsets"), ("apps", "daemonsets"), ("apps", "replicasets"),
        ("batch", "cronjobs"),
    }
    configmaps = next(rule for rule in role["rules"] if "configmaps" in rule["resources"])
    assert configmaps["resourceNames"] == ["podgrace-policy", "podgrace-cluster-policy"]
    # No subjects: no binding (teams bind it to their CI identity).
    assert not [o for o in r.all("ClusterRoleBinding") if o["metadata"]["name"].endswith("-audit")]


def test_the_audit_role_is_bound_to_the_given_subjects():
    subjects = [{"kind": "ServiceAccount", "name": "ci", "namespace": "ci"}]
    r = render({"audit": {"rbac": {"create": True, "subjects": subjects}}})
    binding = r.named("ClusterRoleBinding", "podgrace-audit")
    assert binding["subjects"] == subjects
    assert binding["roleRef"]["name"] == "podgrace-audit"


def test_a_subject_without_a_name_is_refused_by_the_schema():
    with pytest.raises(helm.HelmValuesError) as err:
        render({"audit": {"rbac": {"create": True, "subjects": [{"kind": "ServiceAccount"}]}}})
    assert "name" in str(err.value)
