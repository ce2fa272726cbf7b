"""Kubernetes core output: one ServiceAccount per service (no workload is left on `default`)
and the namespaces in scope with their mesh enrolment labels.

Sources: semantics.md §5.1 (ambient enrolment), §5.4 (`istio.io/use-waypoint`,
`istio.io/ingress-use-waypoint`), §6.1 (identities are ServiceAccounts).
"""

from __future__ import annotations

from typing import Any

from kubezt.generate.plan import WAYPOINT, Manifest, Phase, Plan
from kubezt.ir.intent import Service


def generate_k8s(plan: Plan) -> list[Manifest]:
    out = [Manifest(Phase.SERVICE_ACCOUNTS, _service_account(plan, s)) for s in _owners(plan)]
    for ns in plan.intent.namespaces:
        out.append(Manifest(Phase.MESH_ENROLMENT, _namespace(plan, ns)))
    return out


def _owners(plan: Plan) -> list[Service]:
    return sorted(plan.intent.services, key=lambda s: (s.namespace, s.service_account))


def _service_account(plan: Plan, service: Service) -> dict[str, Any]:
    # Only identities that call the Kubernetes API get a token mounted by default; Istio's
    # own credentials come from a separate projected token, not from this setting.
    calls_api = service.identity in plan.intent.platform.kube_api_server.callers
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": plan.meta(
            "ServiceAccount", service.service_account, service.namespace, [service.entry]
        ),
        "automountServiceAccountToken": calls_api,
    }


def _namespace(plan: Plan, namespace: str) -> dict[str, Any]:
    """Labels only; applying merges them into an existing namespace. No intent label (a
    shared kind), so deleting the intent's objects by label never deletes a namespace."""
    if plan.ambient:
        labels = {"istio.io/dataplane-mode": "ambient"}
        if namespace in plan.waypoints:
            labels["istio.io/use-waypoint"] = WAYPOINT
        if namespace in plan.ingress_waypoints:
            labels["istio.io/ingress-use-waypoint"] = "true"
    else:
        labels = {"istio-injection": "enabled"}
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": plan.meta("Namespace", namespace, None, ["namespaces", "mesh"], labels=labels),
    }
