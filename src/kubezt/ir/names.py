"""Typed identifiers, so a namespace name cannot stand in for a workload name."""

from __future__ import annotations

from typing import NewType

NamespaceName = NewType("NamespaceName", str)
WorkloadName = NewType("WorkloadName", str)
ServiceAccountName = NewType("ServiceAccountName", str)
PolicyRef = NewType("PolicyRef", str)
WorkloadId = NewType("WorkloadId", str)
"""`namespace/name` of a Pod or of the controller owning the pod template."""


def workload_id(namespace: str, name: str) -> WorkloadId:
    return WorkloadId(f"{namespace}/{name}")
