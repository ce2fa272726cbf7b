"""The policy-API reader: its warnings (tests/cases/policy-api/diagnostics/warnings.yaml), the
tiers and orders it lowers into, and the IR it builds for each peer kind."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from casekit import CASES, load_objects
from kubezt.errors import Severity
from kubezt.ir.policy import (
    BUILTIN_TIERS,
    KUBE_ADMIN_TIER,
    KUBE_BASELINE_TIER,
    Action,
    Dialect,
    PolicySet,
    Unresolved,
)

WARNINGS = yaml.safe_load(
    (CASES / "policy-api" / "diagnostics" / "warnings.yaml").read_text(encoding="utf-8")
)["cases"]


@pytest.mark.parametrize("case", WARNINGS, ids=lambda c: c["name"])
def test_loader_warns_exactly_as_listed(case: dict, tmp_path: Path) -> None:
    loaded = load_objects(tmp_path, case["objects"])
    got = sorted(
        (d.code, d.obj, d.path) for d in loaded.diagnostics if d.severity is Severity.WARNING
    )
    want = sorted((w["code"], w["obj"], w["path"]) for w in case["warnings"])
    assert got == want


def test_fail_closed_rules_lower_to_deny_all_or_nothing(tmp_path: Path) -> None:
    objects = [
        {
            "apiVersion": "policy.networking.k8s.io/v1alpha2",
            "kind": "ClusterNetworkPolicy",
            "metadata": {"name": "future"},
            "spec": {
                "tier": "Admin",
                "priority": 3,
                "subject": {"namespaces": {}},
                "ingress": [
                    {"action": "Accept", "from": [{"future": {}}]},
                    {"action": "Pass", "from": [{"future": {}}]},
                ],
            },
        }
    ]
    (policy,) = load_objects(tmp_path, objects).model.policies.policies
    assert policy.dialect is Dialect.POLICY_API
    assert (policy.tier, policy.order) == (KUBE_ADMIN_TIER, 3.0)
    (rule,) = policy.ingress  # the Accept matches nothing and is dropped
    assert rule.action is Action.DENY and rule.index == 1
    assert rule.source.is_empty and rule.destination.is_empty and rule.protocol is None


def test_builtin_tiers_are_calicos() -> None:
    policies = PolicySet()
    admin, baseline = policies.tier(KUBE_ADMIN_TIER), policies.tier(KUBE_BASELINE_TIER)
    assert (admin.order, admin.default_action) == (1000.0, Action.PASS)
    assert (baseline.order, baseline.default_action) == (10_000_000.0, Action.PASS)
    default = policies.tier("default")
    assert admin.order < default.order < baseline.order  # type: ignore[operator]
    assert {"adminnetworkpolicy", "baselineadminnetworkpolicy"} <= set(BUILTIN_TIERS)


def test_domain_names_and_unresolved_nodes_are_unresolved(tmp_path: Path) -> None:
    objects = [
        {
            "apiVersion": "policy.networking.k8s.io/v1alpha2",
            "kind": "ClusterNetworkPolicy",
            "metadata": {"name": "out"},
            "spec": {
                "tier": "Baseline",
                "priority": 0,
                "subject": {"namespaces": {}},
                "egress": [
                    {"action": "Accept", "to": [{"domainNames": ["example.com"]}]},
                    {"action": "Deny", "to": [{"nodes": {}}]},
                ],
            },
        }
    ]
    (policy,) = load_objects(tmp_path, objects).model.policies.policies
    assert [r.destination.unresolved for r in policy.egress] == [
        Unresolved.DOMAINS,
        Unresolved.NODES,
    ]


def test_calico_rejects_moving_a_builtin_tier(tmp_path: Path) -> None:
    import kubezt

    objects = [
        {
            "apiVersion": "projectcalico.org/v3",
            "kind": "Tier",
            "metadata": {"name": "kube-admin"},
            "spec": {"order": 5, "defaultAction": "Deny"},
        }
    ]
    with pytest.raises(kubezt.InputError) as info:
        load_objects(tmp_path, objects)
    codes = {(d.code, d.path) for d in info.value.diagnostics}
    assert codes == {("E070", "spec.order"), ("E070", "spec.defaultAction")}
