"""Disagreements the property tests found between the evaluator and the per-pod oracle, pinned
as plain examples once decided from semantics.md and upstream source."""

from __future__ import annotations

from typing import Any

import pytest

import kubezt
from casekit import load_objects
from kubezt.engine.reference import reference_connections
from kubezt.ir.policy import Direction
from kubezt.ir.ports import Protocol


def _pod(name: str, ip: str, labels: dict[str, str], **spec: Any) -> dict[str, Any]:
    container = {"name": "c", "image": "app", "ports": [{"containerPort": 80, "name": "http"}]}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "shop", "labels": labels},
        "spec": {"containers": [container], **spec},
        "status": {"podIP": ip},
    }


def _egress_to_named_port(peers: list[dict[str, Any]] | None) -> dict[str, Any]:
    rule: dict[str, Any] = {"ports": [{"port": "http"}]}
    if peers is not None:
        rule["to"] = peers
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "client-egress", "namespace": "shop"},
        "spec": {
            "podSelector": {"matchLabels": {"app": "client"}},
            "policyTypes": ["Egress"],
            "egress": [rule],
        },
    }


NAMED_PORT_PEERS = [
    pytest.param(None, id="any-destination"),
    pytest.param([{"ipBlock": {"cidr": "10.0.0.0/24"}}], id="ipblock-covering-the-host-pod"),
]


@pytest.mark.parametrize("peers", NAMED_PORT_PEERS)
@pytest.mark.parametrize("port", [None, 80])
def test_named_port_never_resolves_on_a_host_network_pod(peers, port, tmp_path) -> None:
    # hostNetwork pods are no Calico workload endpoints (libcalico-go conversion.go,
    # IsValidCalicoWorkloadEndpoint), so felix's named-port IP sets never contain them: an egress
    # rule allowing port "http" does not allow 80/TCP to such a pod, whatever it declares.
    objects = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}},
        _pod("client", "10.0.0.5", {"app": "client"}),
        _pod("node-agent", "10.0.0.10", {"app": "agent"}, hostNetwork=True),
        _pod("web", "10.0.0.20", {"app": "web"}),
        _egress_to_named_port(peers),
    ]
    model = load_objects(tmp_path, objects).model
    got = set(kubezt.evaluate(model, port, Protocol.TCP).connections())
    assert ("shop/client", "shop/node-agent", 80, "TCP") not in got
    assert ("shop/client", "shop/web", 80, "TCP") in got  # a pod-network peer resolves it
    assert got == reference_connections(model, port, Protocol.TCP)


def test_empty_policy_types_default_like_absent_ones(tmp_path) -> None:
    """The API server defaults `policyTypes: []` exactly as if it were absent
    (SetDefaults_NetworkPolicy): Ingress, plus Egress when egress rules are given."""
    objects = [
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "a", "namespace": "x", "labels": {"app": "a"}},
            "spec": {"containers": [{"name": "c", "image": "i"}]},
        },
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "p", "namespace": "x"},
            "spec": {"podSelector": {}, "policyTypes": [], "egress": [{"ports": [{"port": 53}]}]},
        },
    ]
    (policy,) = load_objects(tmp_path, objects).model.policies.policies
    assert policy.types == frozenset({Direction.INGRESS, Direction.EGRESS})


def test_udp_between_mesh_pods_is_not_captured_by_the_mesh(tmp_path) -> None:
    """Sidecars and ztunnel capture TCP only: a UDP flow between mesh pods is decided by L3/L4
    policy alone, whatever the AuthorizationPolicies say."""
    for label in ({"istio-injection": "enabled"}, {"istio.io/dataplane-mode": "ambient"}):
        objects = [
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x", "labels": label}},
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "client", "namespace": "x"},
                "spec": {"containers": [{"name": "c", "image": "i"}]},
            },
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "syslog", "namespace": "x"},
                "spec": {
                    "containers": [
                        {
                            "name": "c",
                            "image": "i",
                            "ports": [{"containerPort": 514, "protocol": "UDP"}],
                        }
                    ]
                },
            },
            {
                "apiVersion": "security.istio.io/v1",
                "kind": "AuthorizationPolicy",
                "metadata": {"name": "deny-all", "namespace": "x"},
                "spec": {},
            },
        ]
        model = load_objects(tmp_path, objects).model
        rows = set(kubezt.evaluate(model).connections())
        assert ("x/client", "x/syslog", 514, "UDP") in rows, label
        topo = model.topology
        verdict = kubezt.explain_connection(
            model,
            kubezt.End(kubezt.EndKind.WORKLOAD, workload=topo.workload("x/client")),
            kubezt.End(kubezt.EndKind.WORKLOAD, workload=topo.workload("x/syslog")),
            514,
            Protocol.UDP,
        )
        assert verdict.allowed, label


def test_classic_ingress_gateway_is_a_gateway_not_a_sidecar_client() -> None:
    from kubezt.engine.mesh import proxy_role
    from kubezt.ir.mesh import MeshPolicies
    from kubezt.ir.topology import Labels, ProxyRole, Workload

    for labels, notes in (
        ({"istio": "ingressgateway"}, {}),
        ({"app": "gw"}, {"inject.istio.io/templates": "gateway"}),
    ):
        pod = Workload("istio-system", "gw", "Pod", Labels(labels), annotations=Labels(notes))
        assert proxy_role(pod, MeshPolicies()) is ProxyRole.GATEWAY
