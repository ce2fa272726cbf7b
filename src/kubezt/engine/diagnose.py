"""Warnings about the analysed model as a whole: places where the mesh or the dataplane does not
do what a manifest says, or where kubezt resolves an unknown fact conservatively."""

from __future__ import annotations

from kubezt.engine.authz import Enforcer, rewritten, workload_policies
from kubezt.engine.index import policy_networks
from kubezt.engine.mesh import mesh_mode
from kubezt.errors import Diagnostic, Severity
from kubezt.ir.mesh import AuthorizationPolicy, AuthzAction
from kubezt.ir.model import Model
from kubezt.ir.topology import MeshMode


def _diag(code: str, policy: AuthorizationPolicy, message: str) -> Diagnostic:
    src = policy.source
    return Diagnostic(Severity.WARNING, code, message, src.location if src else None, policy.ref)


def model_warnings(model: Model) -> tuple[Diagnostic, ...]:
    out: list[Diagnostic] = []
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
        if policy.action is AuthzAction.ALLOW:
            text = (
                "applies to ambient workloads, where ztunnel enforces only L4 attributes: "
                "its rules with HTTP/L7 attributes are dropped, so the workload may deny "
                "all traffic; bind L7 rules to a waypoint with targetRefs"
            )
        else:
            text = (
                "applies to ambient workloads, where ztunnel enforces only L4 attributes: "
                "L7 attributes are removed from its rules, so an L7-only rule denies "
                "nothing and an L4+L7 rule denies all of that L4 traffic; bind it to a "
                "waypoint with targetRefs"
            )
        out.append(_diag("W060", policy, text))
    for policy in policies:
        if policy.action is AuthzAction.CUSTOM and not policy.dry_run:
            out.append(
                _diag(
                    "W061",
                    policy,
                    f"CUSTOM policy (provider {policy.provider!r}): "
                    "the external authorizer's answer is not modelled; kubezt assumes "
                    "it denies the requests the policy matches",
                )
            )
    if policy_networks(model.policies):
        unknown = [w for w in topology.workloads if not w.ips and not w.host_network]
        if unknown:
            out.append(
                Diagnostic(
                    Severity.WARNING,
                    "W062",
                    f"{len(unknown)} workload(s) have no pod IP (e.g. {unknown[0].id}) while "
                    "policies match CIDRs: kubezt assumes such rules do not allow them and do "
                    "deny them; give status.podIP to evaluate them exactly",
                )
            )
    return tuple(out)
