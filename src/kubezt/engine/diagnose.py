"""Warnings about the analysed model as a whole: places where the mesh or the dataplane does not
do what a manifest says, or where kubezt resolves an unknown fact conservatively.

They are data (a code and its parameters); `kubezt.report.warnings` writes their sentences.
"""

from __future__ import annotations

from dataclasses import dataclass

from kubezt.engine.authz import Enforcer, rewritten, workload_policies
from kubezt.engine.explain import StepParam
from kubezt.engine.index import policy_networks
from kubezt.engine.mesh import mesh_mode
from kubezt.errors import Location
from kubezt.ir.mesh import AuthorizationPolicy, AuthzAction
from kubezt.ir.model import Model
from kubezt.ir.topology import MeshMode


@dataclass(frozen=True, slots=True)
class ModelWarning:
    """One warning about the model: its code (`W060` ambient L7 rules, `W061` CUSTOM policy,
    `W062` workloads without a pod IP where policies match CIDRs), the object it names
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
    narrowed: set[AuthorizationPolicy] = set()
    for workload in ambient:
        for policy in workload_policies(policies, workload, model.mesh_config):
            if policy.action in (AuthzAction.ALLOW, AuthzAction.DENY) and rewritten(
                policy, Enforcer.ZTUNNEL, http=False
            ):
                narrowed.add(policy)
    for policy in sorted(narrowed, key=lambda p: (p.namespace, p.name)):
        out.append(_about("W060", policy, ("action", policy.action.value)))
    for policy in policies:
        if policy.action is AuthzAction.CUSTOM and not policy.dry_run:
            out.append(_about("W061", policy, ("provider", policy.provider)))
    if policy_networks(model.policies):
        unknown = [w for w in topology.workloads if not w.ips and not w.host_network]
        if unknown:
            out.append(ModelWarning("W062", (("count", len(unknown)), ("example", unknown[0].id))))
    return tuple(out)
