"""For a request an AuthorizationPolicy denied for want of a matching ALLOW rule: the rule that
came nearest, what it required and what the caller had. Explains a denial; decides nothing
(the verdict is the engine's)."""

from __future__ import annotations

from dataclasses import dataclass

from kubezt.engine.authz import Enforcer, path_match, principal_match, string_match
from kubezt.engine.authz import workload_policies as applicable
from kubezt.ir.mesh import AuthzAction, AuthzOperation, AuthzSource
from kubezt.ir.model import Model
from kubezt.ir.requests import HttpRequest
from kubezt.ir.topology import Workload


@dataclass(frozen=True, slots=True)
class Mismatch:
    field: str
    """`from.source.principals`, `to.operation.paths`, …"""
    required: tuple[str, ...]
    had: str


@dataclass(frozen=True, slots=True)
class NearestRule:
    policy: str
    """`AuthorizationPolicy ns/name`"""
    rule: int
    location: str
    mismatches: tuple[Mismatch, ...]


@dataclass(frozen=True, slots=True)
class Caller:
    principal: str | None
    """None: plaintext, no identity."""
    port: int
    http: HttpRequest | None


def _source_mismatches(src: AuthzSource, caller: Caller, model: Model) -> list[Mismatch]:
    had = caller.principal or "no identity (plaintext)"
    ns = caller.principal.split("/ns/")[1].split("/")[0] if caller.principal else None
    out = []
    if src.principals is not None and not any(
        principal_match(p, caller.principal, Enforcer.SIDECAR, model.mesh_config)
        for p in src.principals
    ):
        out.append(Mismatch("from.source.principals", src.principals, had))
    if src.namespaces is not None and not any(string_match(p, ns) for p in src.namespaces):
        out.append(Mismatch("from.source.namespaces", src.namespaces, ns or had))
    return out


def _operation_mismatches(op: AuthzOperation, caller: Caller) -> list[Mismatch]:
    out = []
    http = caller.http
    if op.ports is not None and str(caller.port) not in op.ports:
        out.append(Mismatch("to.operation.ports", op.ports, str(caller.port)))
    if op.methods is not None and not any(
        string_match(m, http.method if http else None) for m in op.methods
    ):
        out.append(Mismatch("to.operation.methods", op.methods, http.method if http else "-"))
    if op.paths is not None and not any(
        path_match(p, http.path if http else None) for p in op.paths
    ):
        out.append(Mismatch("to.operation.paths", op.paths, http.path if http else "-"))
    if op.hosts is not None and not any(
        string_match(h, http.host if http else None) for h in op.hosts
    ):
        out.append(Mismatch("to.operation.hosts", op.hosts, (http.host if http else "") or "-"))
    return out


def nearest_allow_rule(model: Model, server: Workload, caller: Caller) -> NearestRule | None:
    """Of the ALLOW rules the server's sidecar or ztunnel enforces, the one with the fewest
    conditions the caller fails (first in file order on a tie); None when none applies."""
    best: NearestRule | None = None
    policies = applicable(model.mesh.authorization_policies, server, model.mesh_config)
    for policy in policies:
        if policy.action is not AuthzAction.ALLOW:
            continue
        for n, rule in enumerate(policy.rules):
            sources = [_source_mismatches(s, caller, model) for s in rule.sources or ()]
            ops = [_operation_mismatches(o, caller) for o in rule.operations or ()]
            missing = min(sources, key=len, default=[]) + min(ops, key=len, default=[])
            if not missing:
                continue
            loc = str(policy.source.location) if policy.source and policy.source.location else ""
            found = NearestRule(
                f"AuthorizationPolicy {policy.namespace}/{policy.name}", n, loc, tuple(missing)
            )
            if best is None or len(found.mismatches) < len(best.mismatches):
                best = found
    return best
