"""Warnings about the analysed model as a whole: places where the mesh or the dataplane does not
do what a manifest says, or where kubezt resolves an unknown fact conservatively.

They are data (a code and its parameters); `kubezt.report.warnings` writes their sentences.
"""

from __future__ import annotations

from dataclasses import dataclass

from kubezt.engine import capture
from kubezt.engine.authz import Enforcer, rewritten, workload_policies
from kubezt.engine.explain import StepParam
from kubezt.engine.index import policy_networks
from kubezt.engine.mesh import mesh_mode
from kubezt.errors import Location
from kubezt.ir.mesh import AuthorizationPolicy, AuthzAction
from kubezt.ir.model import Model
from kubezt.ir.topology import Labels, MeshMode, Service


@dataclass(frozen=True, slots=True)
class ModelWarning:
    """One warning about the model: its code (`W060` ambient L7 rules, `W061` CUSTOM policy,
    `W062` workloads without a pod IP where policies match CIDRs, `W063` a Service without
    `spec.clusterIP` and `W064` workloads without a pod IP where sidecar clients' capture
    depends on the address), the object it names
    (`Kind ns/name`) and where that was written, and the parameters of its message."""

    code: str
    params: tuple[tuple[str, StepParam], ...] = ()
    location: Location | None = None
    obj: str = ""

    def param(self, name: str) -> StepParam:
        return dict(self.params).get(name)


def _about(code: str, policy: AuthorizationPolicy, *params: tuple[str, StepParam]) -> ModelWarning:
    src = policy.source
    return ModelWarning(code, params, src.location if src else None, policy.ref)


def model_warnings(model: Model) -> tuple[ModelWarning, ...]:
    out: list[ModelWarning] = []
    topology = model.topology
    ambient = [
        w
        for w in topology.workloads
        if mesh_mode(w, topology.namespace(w.namespace), model.mesh) is MeshMode.AMBIENT
    ]
    policies = model.mesh.authorization_policies
    applied: dict[int, AuthorizationPolicy] = {}
    # which policies apply depends on a workload's namespace and labels only: each pair once
    seen: set[tuple[str, Labels]] = set()
    for workload in ambient:
        key = (workload.namespace, workload.labels)
        if key in seen:
            continue
        seen.add(key)
        for policy in workload_policies(policies, workload, model.mesh_config):
            applied.setdefault(id(policy), policy)
    narrowed = {
        policy
        for policy in applied.values()
        if policy.action in (AuthzAction.ALLOW, AuthzAction.DENY)
        and rewritten(policy, Enforcer.ZTUNNEL, http=False)
    }
    for policy in sorted(narrowed, key=lambda p: (p.namespace, p.name)):
        out.append(_about("W060", policy, ("action", policy.action.value)))
    for policy in policies:
        if policy.action is AuthzAction.CUSTOM and not policy.dry_run:
            out.append(_about("W061", policy, ("provider", policy.provider)))
    if policy_networks(model.policies):
        unknown = [w for w in topology.workloads if not w.ips and not w.host_network]
        if unknown:
            out.append(ModelWarning("W062", (("count", len(unknown)), ("example", unknown[0].id))))
    out.extend(_unknown_capture(model))
    return tuple(out)


_CLIENTS_NAMED = 3
"""How many clients a capture warning names (with the count of all)."""


def _unknown_capture(model: Model) -> list[ModelWarning]:
    """W063 (per Service without `spec.clusterIP`) and W064 (workloads without a pod IP):
    destinations whose address the capture range annotations of some sidecar client would
    need, so that kubezt decides connections to them both ways (`capture`)."""
    topology = model.topology
    clients: list[str] = []
    keys: dict[str, None] = {}
    for w in topology.workloads:
        if w.host_network:
            continue
        dependent = capture.address_dependent(w)
        if not dependent:
            continue
        namespace = topology.namespace(w.namespace)
        if mesh_mode(w, namespace, model.mesh) is not MeshMode.SIDECAR:
            continue
        clients.append(w.id)
        keys.update(dict.fromkeys(dependent))
    if not clients:
        return []
    named = tuple(sorted(clients)[:_CLIENTS_NAMED])
    common: tuple[tuple[str, StepParam], ...] = (
        ("clients", named),
        ("client_count", len(clients)),
        ("annotations", tuple(keys)),
    )
    out: list[ModelWarning] = []
    selected: dict[Service, None] = {}
    for services in topology.services_selecting_each(topology.workloads):
        selected.update(dict.fromkeys(services))
    for svc in sorted(selected, key=lambda s: (s.namespace, s.name)):
        if svc.cluster_ip is not None or not svc.ports:
            continue
        src = svc.source
        out.append(
            ModelWarning(
                "W063", common, src.location if src else None, f"Service {svc.namespace}/{svc.name}"
            )
        )
    unknown = [w.id for w in topology.workloads if not w.ip]
    if unknown:
        out.append(
            ModelWarning("W064", (("count", len(unknown)), ("example", unknown[0]), *common))
        )
    return out
