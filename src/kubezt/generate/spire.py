"""SPIRE output (`--spire`): one `ClusterSPIFFEID` (spire-controller-manager) per service, and
one for the ingress gateway, issuing exactly the SPIFFE IDs Istio's authorization policies name:
`spiffe://<trust domain>/ns/<namespace>/sa/<service account>`.

Each registration is limited to the service's pods (namespace and pod labels, plus the label the
Istio `spire` injection template sets) and to its ServiceAccount (`k8s:sa:` selector), so a pod
running under another account gets no certificate at all. Sources: semantics.md §6.4-§6.5.
Istio documents SPIRE for sidecars and gateways only; ambient is reported as unsupported.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from kubezt.generate.plan import NAMESPACE_NAME_LABEL, WAYPOINT, Manifest, Phase, Plan
from kubezt.ir.intent import Identity

API = "spire.spiffe.io/v1alpha1"
MANAGED_LABEL = "spiffe.io/spire-managed-identity"
"""Set on pods by the Istio `spire` injection template (values.sidecarInjectorWebhook)."""


def generate_spire(plan: Plan, unsupported: Callable[[str], None]) -> list[Manifest]:
    intent = plan.intent
    if plan.ambient:
        unsupported(
            "--spire: Istio documents SPIRE as the certificate authority for sidecars and "
            "gateways only; ztunnel and waypoints keep istiod's certificates"
        )
    out = [
        _registration(plan, s.identity, s.selector, [s.entry])
        for s in sorted(intent.services, key=lambda s: (s.namespace, s.name))
    ]
    if any(g.from_gateway for g in intent.grants):
        out.append(_registration(plan, intent.gateway, {}, ["ingress"]))
    for ns in plan.waypoints:
        out.append(_registration(plan, Identity(ns, WAYPOINT), {}, ["mesh"]))
    return out


def _registration(
    plan: Plan, identity: Identity, labels: Mapping[str, str], entries: list[str]
) -> Manifest:
    name = plan.names.label(
        "ClusterSPIFFEID", "", plan.intent.name, identity.namespace, identity.service_account
    )
    spiffe_id = f"spiffe://{plan.intent.principal(identity)}"
    spec: dict[str, Any] = {
        "spiffeIDTemplate": spiffe_id,
        "namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: identity.namespace}},
        "podSelector": {"matchLabels": dict(sorted({**labels, MANAGED_LABEL: "true"}.items()))},
        "workloadSelectorTemplates": [f"k8s:sa:{identity.service_account}"],
    }
    body = {
        "apiVersion": API,
        "kind": "ClusterSPIFFEID",
        "metadata": plan.meta("ClusterSPIFFEID", name, None, entries),
        "spec": spec,
    }
    return Manifest(Phase.SPIRE, body)
