"""`compile --cluster-policy`: the default deny of the namespaces in scope, with the platform
allowances, as one Baseline ClusterNetworkPolicy (`policy.networking.k8s.io/v1alpha2`) instead
of a Calico GlobalNetworkPolicy.

The Baseline tier comes after every NetworkPolicy (Calico's `kube-baseline` tier, order
10,000,000), so it decides only for pods and directions no other policy decided: it denies what
nothing allowed and accepts DNS, istiod and, in ambient mode, HBONE (15008) between the
namespaces in scope. Ingress peers of the API name only pods, so kubelet probes (from the node,
or from istio-cni's SNAT address in ambient mode) cannot be named here: node-originated probes
are not policed by Calico's iptables/nftables dataplane, and the ambient probe address stays
allowed by the Calico platform tier. For the same reason the ingress deny covers every pod, but
not addresses outside the cluster: `calico.outside_ingress_deny` denies those in the platform
tier. API: kubernetes-sigs/network-policy-api
`apis/v1alpha2/clusternetworkpolicy_types.go`.
"""

from __future__ import annotations

from typing import Any

from kubezt.generate.plan import HBONE_PORT, WAYPOINT_LABEL, Manifest, Phase, Plan

API = "policy.networking.k8s.io/v1alpha2"
PRIORITY = 1000
"""Last in the Baseline tier, so more specific Baseline policies come first."""
METADATA_NAME = "kubernetes.io/metadata.name"


def _in_namespaces(*namespaces: str) -> dict[str, Any]:
    return {
        "matchExpressions": [
            {"key": METADATA_NAME, "operator": "In", "values": sorted(set(namespaces))}
        ]
    }


def _pods(namespace: str, labels: dict[str, str]) -> dict[str, Any]:
    return {
        "pods": {
            "namespaceSelector": {"matchLabels": {METADATA_NAME: namespace}},
            "podSelector": {"matchLabels": dict(sorted(labels.items()))},
        }
    }


def _port(protocol: str, number: int) -> dict[str, Any]:
    return {protocol: {"destinationPort": {"number": number}}}


def cluster_default_deny(plan: Plan) -> list[Manifest]:
    """The Baseline ClusterNetworkPolicies of the intent's namespaces: the default deny with
    the platform allowances (and, in ambient mode, istiod for waypoints)."""
    intent = plan.intent

    def scope() -> dict[str, Any]:  # a fresh mapping each time: no YAML anchors in the output
        return _in_namespaces(*intent.namespaces)

    egress: list[dict[str, Any]] = []
    ingress: list[dict[str, Any]] = []
    entries = ["namespaces"]
    dns = intent.platform.dns
    if dns is not None:
        entries.append("platform/dns")
        egress.append(
            {
                "name": "allow-dns",
                "action": "Accept",
                "to": [_pods(dns.namespace, dict(dns.selector))],
                "protocols": [_port("udp", dns.port), _port("tcp", dns.port)],
            }
        )
    istiod = intent.platform.istiod
    allow_istiod = {
        "name": "allow-istiod",
        "action": "Accept",
        "to": [_pods(istiod.namespace, dict(istiod.selector))],
        "protocols": [_port("tcp", istiod.port)],
    }
    extra: list[Manifest] = []
    if not plan.ambient:
        entries.append("platform/istiod")
        egress.append(allow_istiod)
    elif plan.waypoints:
        # ztunnel talks to istiod itself; in the namespaces only waypoints do: their own
        # policy, ordered before the default deny.
        name = plan.names.label("ClusterNetworkPolicy", "", intent.name, "waypoint-istiod")
        subject = {
            "pods": {
                "namespaceSelector": scope(),
                "podSelector": {
                    "matchExpressions": [{"key": WAYPOINT_LABEL, "operator": "Exists"}]
                },
            }
        }
        body = {
            "apiVersion": API,
            "kind": "ClusterNetworkPolicy",
            "metadata": plan.meta("ClusterNetworkPolicy", name, None, ["platform/istiod"]),
            "spec": {
                "tier": "Baseline",
                "priority": PRIORITY - 1,
                "subject": subject,
                "egress": [allow_istiod],
            },
        }
        extra.append(Manifest(Phase.DEFAULT_DENY, body))
    if plan.ambient:
        entries.append("mesh")
        egress.append(
            {
                "name": "allow-hbone",
                "action": "Accept",
                "to": [{"namespaces": scope()}],
                "protocols": [_port("tcp", HBONE_PORT)],
            }
        )
        ingress.append(
            {
                "name": "allow-hbone",
                "action": "Accept",
                "from": [{"namespaces": scope()}],
                "protocols": [_port("tcp", HBONE_PORT)],
            }
        )
    ingress.append({"name": "default-deny", "action": "Deny", "from": [{"namespaces": {}}]})
    egress.append(
        {"name": "default-deny", "action": "Deny", "to": [{"networks": ["0.0.0.0/0", "::/0"]}]}
    )
    name = plan.names.label("ClusterNetworkPolicy", "", intent.name, "default-deny")
    body = {
        "apiVersion": API,
        "kind": "ClusterNetworkPolicy",
        "metadata": plan.meta("ClusterNetworkPolicy", name, None, entries),
        "spec": {
            "tier": "Baseline",
            "priority": PRIORITY,
            "subject": {"namespaces": scope()},
            "ingress": ingress,
            "egress": egress,
        },
    }
    return [*extra, Manifest(Phase.DEFAULT_DENY, body)]
