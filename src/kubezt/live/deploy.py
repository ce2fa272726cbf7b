"""The manifests that run `kubezt watch` in the cluster it guards (`kubezt watch
--print-manifests`): a namespace, a ServiceAccount, the least-privilege ClusterRole (what
`kubezt rbac` prints, plus watching the mesh ConfigMap and creating Events) and its binding, a
Role for the leader-election Lease, a two-replica Deployment and a Service for the metrics;
with `policy`, also kubezt's own zero-trust policy set, compiled by kubezt from an intent
(default deny; only DNS, the API server and the Prometheus scrape)."""

from __future__ import annotations

from typing import Any

from kubezt.live.rbac import reader_cluster_role
from kubezt.live.read import MESH_CONFIG

NAME = "kubezt-watch"
METRICS_PORT = 9090
LABELS = {"app": NAME, "app.kubernetes.io/name": "kubezt", "app.kubernetes.io/component": "watch"}
MANAGED = {"app.kubernetes.io/managed-by": "kubezt"}


def watch_intent(namespace: str, monitoring: str = "monitoring") -> dict[str, Any]:
    """kubezt's own intent: one service, no calls; DNS, the API server and the scrape of its
    metrics port by Prometheus (ServiceAccount `prometheus` in `monitoring`)."""
    return {
        "apiVersion": "kubezt.io/v1alpha1",
        "kind": "ZeroTrustIntent",
        "metadata": {"name": NAME},
        "spec": {
            "mesh": {"mode": "ambient"},
            "namespaces": [namespace],
            "services": [
                {
                    "name": NAME,
                    "namespace": namespace,
                    "selector": {"app": NAME},
                    "serviceAccount": NAME,
                    "ports": [{"port": METRICS_PORT, "name": "metrics", "metrics": True}],
                }
            ],
            "platform": {
                "kubeApiServer": {"from": [{"serviceAccount": NAME, "namespace": namespace}]},
                "metrics": {"from": {"serviceAccount": "prometheus", "namespace": monitoring}},
            },
        },
    }


def watch_cluster_role() -> dict[str, Any]:
    role = reader_cluster_role(NAME)
    role["metadata"]["annotations"]["kubezt.io/purpose"] = (
        "what kubezt watch needs: read and watch the kinds it analyses, record Events"
    )
    role["rules"] += [
        {
            "apiGroups": [""],
            "resources": ["configmaps"],
            "resourceNames": [MESH_CONFIG[1]],
            "verbs": ["list", "watch"],
        },
        {"apiGroups": [""], "resources": ["events"], "verbs": ["create"]},
    ]
    return role


def watch_manifests(
    namespace: str, image: str, *, policy: bool = False, replicas: int = 2
) -> list[dict[str, Any]]:
    """Every object, in the order `kubectl apply -f` needs them."""
    meta = {"name": NAME, "namespace": namespace, "labels": {**LABELS, **MANAGED}}
    docs: list[dict[str, Any]] = [
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": namespace, "labels": dict(MANAGED)},
        },
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": dict(meta)},
        watch_cluster_role(),
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": NAME, "labels": dict(MANAGED)},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": NAME,
            },
            "subjects": [{"kind": "ServiceAccount", "name": NAME, "namespace": namespace}],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {
                "name": f"{NAME}-lease",
                "namespace": namespace,
                "labels": dict(MANAGED),
            },
            "rules": [
                {
                    "apiGroups": ["coordination.k8s.io"],
                    "resources": ["leases"],
                    "resourceNames": [NAME],
                    "verbs": ["get", "update"],
                },
                # create cannot be limited by name (the object does not exist yet)
                {
                    "apiGroups": ["coordination.k8s.io"],
                    "resources": ["leases"],
                    "verbs": ["create"],
                },
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {
                "name": f"{NAME}-lease",
                "namespace": namespace,
                "labels": dict(MANAGED),
            },
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": f"{NAME}-lease",
            },
            "subjects": [{"kind": "ServiceAccount", "name": NAME, "namespace": namespace}],
        },
        _deployment(meta, image, replicas),
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": dict(meta),
            "spec": {
                "selector": {"app": NAME},
                "ports": [
                    {
                        "name": "metrics",
                        "port": METRICS_PORT,
                        "targetPort": "metrics",
                        "protocol": "TCP",
                        "appProtocol": "http",
                    }
                ],
            },
        },
    ]
    if policy:
        compiled = own_policy(namespace)
        for obj in compiled:
            if obj["kind"] == "Namespace":  # its mesh enrolment labels
                labels = docs[0]["metadata"]["labels"]
                labels.update(obj["metadata"].get("labels") or {})
        docs += [o for o in compiled if o["kind"] not in ("Namespace", "ServiceAccount")]
    return docs


def own_policy(namespace: str) -> list[dict[str, Any]]:
    """kubezt's own zero-trust policy set, compiled from `watch_intent` (Calico + Istio
    ambient): the objects in its namespace and the cluster-wide ones that select only it. The
    mesh-wide STRICT PeerAuthentication of the root namespace is left to the mesh's owner."""
    from kubezt.dialects.intent import parse_intent_data
    from kubezt.generate import compile_intent

    intent = parse_intent_data(watch_intent(namespace), "<kubezt watch intent>")
    return [
        o
        for o in compile_intent(intent).objects()
        if (o["metadata"].get("namespace") or namespace) == namespace
    ]


def _deployment(meta: dict[str, Any], image: str, replicas: int) -> dict[str, Any]:
    args = [
        "watch",
        "--leader-elect",
        "--lease-name",
        NAME,
        "--identity",
        "$(POD_NAME)",
        "--metrics-addr",
        f":{METRICS_PORT}",
        "--events",
        "-o",
        "json",
    ]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": dict(meta),
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": NAME}},
            "template": {
                "metadata": {"labels": dict(LABELS)},
                "spec": {
                    "serviceAccountName": NAME,
                    "automountServiceAccountToken": True,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": 65532,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [
                        {
                            "name": "kubezt",
                            "image": image,
                            "args": args,
                            "env": [
                                {
                                    "name": "POD_NAME",
                                    "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}},
                                },
                            ],
                            "ports": [
                                {
                                    "name": "metrics",
                                    "containerPort": METRICS_PORT,
                                    "protocol": "TCP",
                                }
                            ],
                            "readinessProbe": {
                                "httpGet": {"path": "/metrics", "port": "metrics"},
                                "periodSeconds": 10,
                            },
                            "resources": {
                                "requests": {"cpu": "100m", "memory": "256Mi"},
                                "limits": {"memory": "2Gi"},
                            },
                            "securityContext": {
                                "allowPrivilegeEscalation": False,
                                "readOnlyRootFilesystem": True,
                                "capabilities": {"drop": ["ALL"]},
                            },
                        }
                    ],
                },
            },
        },
    }
