"""The least-privilege ClusterRole for reading a cluster: get/list/watch on exactly the
resources `kubezt.live.read` lists, and get on the one mesh ConfigMap."""

from __future__ import annotations

from typing import Any

from kubezt.live.read import MESH_CONFIG, every_resource

ROLE_NAME = "kubezt-reader"
READ_VERBS = ["get", "list", "watch"]


def reader_cluster_role(name: str = ROLE_NAME) -> dict[str, Any]:
    """A `rbac.authorization.k8s.io/v1` ClusterRole (API discovery needs no grant: every
    authenticated user may read it)."""
    groups: dict[str, list[str]] = {}
    for res in every_resource():
        plurals = groups.setdefault(res.group, [])
        if res.plural not in plurals:
            plurals.append(res.plural)
    rules: list[dict[str, Any]] = [
        {"apiGroups": [group], "resources": sorted(plurals), "verbs": list(READ_VERBS)}
        for group, plurals in groups.items()
    ]
    rules.append(
        {
            "apiGroups": [""],
            "resources": ["configmaps"],
            "resourceNames": [MESH_CONFIG[1]],
            "verbs": ["get"],
        }
    )
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {
            "name": name,
            "labels": {"app.kubernetes.io/managed-by": "kubezt"},
            "annotations": {
                "kubezt.io/purpose": "read-only access kubezt needs to analyse this cluster"
            },
        },
        "rules": rules,
    }
