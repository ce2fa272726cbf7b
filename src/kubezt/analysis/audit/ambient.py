"""Ambient layering: where the ambient data path does something else than the manifests say.

* L7 attributes in policies that ztunnel enforces are dropped (ALLOW rules) or removed (DENY
  rules) — `kubezt.engine.authz.rewritten` (semantics.md §5.3, A1);
* traffic through a waypoint reaches the destination's ztunnel with the waypoint's identity, so
  selector policies there cannot tell the clients apart (§5.4);
* L3/L4 policy sees ambient traffic on the HBONE port 15008, not on the application port (§0,
  §5.5): a rule that allows the application port between ambient pods is dead, and 15008 must be
  allowed instead.

Facts come from the engine: membership and waypoints (`engine.mesh`), policy applicability and
matching (`engine.authz`), the reachability result, and L3/L4 verdicts over the result's own
classes (`engine.reach.l4_matrix`, `engine.l4.decide`). The HBONE check looks at pod-to-pod
tunnels (client and server both in the mesh, one of them ambient); the legs to and from a
waypoint are not checked separately. With Calico's port-preserving ztunnel
(`ambient_wire_port = calico-preserved`) the application port is on the wire and nothing is
reported.
"""

from __future__ import annotations

import dataclasses

from kubezt.analysis.audit._facts import (
    ClassView,
    L4View,
    Workloads,
    authz_at,
    class_views,
    identity_fields,
    is_proxy,
    l4_view,
    listing,
    location_of,
    mode_of,
    policy_ref,
    workload_ref,
)
from kubezt.analysis.audit.finding import Finding, FindingSeverity, Principle, RuleSpec
from kubezt.engine.authz import (
    AuthzRequest,
    Enforcer,
    authorize,
    rewritten,
    waypoint_policies,
)
from kubezt.engine.explain import Effect, Step
from kubezt.engine.index import iter_bits
from kubezt.engine.l4 import decide
from kubezt.engine.mesh import (
    HBONE_PORT,
    WaypointRef,
    principal,
    waypoint_for,
    waypoint_workload,
)
from kubezt.engine.reach import Reachability, l4_matrix
from kubezt.errors import Location
from kubezt.ir.config import AmbientWirePort
from kubezt.ir.mesh import AuthorizationPolicy, AuthzAction, AuthzRule
from kubezt.ir.model import Model
from kubezt.ir.policy import Direction
from kubezt.ir.ports import PortKey, Protocol
from kubezt.ir.provenance import Source
from kubezt.ir.topology import MeshMode, ProxyRole, Workload

KZT501 = RuleSpec(
    id="KZT501",
    name="AmbientL7AtZtunnel",
    title="L7 authorization rule enforced by ztunnel",
    severity=FindingSeverity.HIGH,
    principle=Principle.LEAST_PRIVILEGE,
    help=(
        "ztunnel enforces only L4 attributes. An ALLOW rule with methods, paths, hosts, "
        "request principals or other L7 conditions is dropped (the workload may then deny all "
        "traffic); a DENY rule loses its L7 items, so an L7-only rule denies nothing and a mixed "
        "rule denies all of its L4 traffic. Deploy a waypoint, bind the workload or its Service "
        "to it (`istio.io/use-waypoint`) and attach L7 rules with `targetRefs`."
    ),
)
KZT502 = RuleSpec(
    id="KZT502",
    name="WaypointBypassesSelectorPolicy",
    title="Selector policy bypassed by traffic through a waypoint",
    severity=FindingSeverity.HIGH,
    principle=Principle.IDENTITY_NOT_IP,
    help=(
        "Traffic through a waypoint reaches the destination's ztunnel with the waypoint's "
        "identity. A selector or namespace-wide policy that names client identities therefore "
        "never matches waypoint traffic (a DENY is bypassed), and an ALLOW that admits the "
        "waypoint admits every client the waypoint forwards. Put client rules on the waypoint "
        "(`targetRefs`) and let the destination admit only the waypoint's principal."
    ),
)
KZT503 = RuleSpec(
    id="KZT503",
    name="HboneBlocked",
    title="L3/L4 policy blocks HBONE between ambient pods",
    severity=FindingSeverity.MEDIUM,
    principle=Principle.ENCRYPT_IN_TRANSIT,
    help=(
        "Ambient mesh traffic travels as HBONE to TCP 15008 of the destination pod; Calico and "
        "Kubernetes policy never see the application port. A rule that allows the application "
        "port between ambient pods is dead, and the connection fails unless both the client's "
        "egress and the server's ingress allow TCP 15008. Allow 15008 between the pods and "
        "restrict application ports with an AuthorizationPolicy."
    ),
)


def _ambient(reach: Reachability) -> list[tuple[ClassView, list[AuthorizationPolicy]]]:
    """Classes of ambient application workloads, with the policies their ztunnel enforces."""
    model = reach.model
    return [
        (view, [p for p in policies if _enforced_at_ztunnel(p)])
        for view, policies in authz_at(reach)
        if not is_proxy(model, view.rep) and mode_of(model, view.rep) is MeshMode.AMBIENT
    ]


def _enforced_at_ztunnel(authz: AuthorizationPolicy) -> bool:
    return (
        not authz.target_refs
        and not authz.dry_run
        and authz.action in (AuthzAction.ALLOW, AuthzAction.DENY)
    )


def _waypoints(model: Model, w: Workload) -> list[WaypointRef]:
    """Waypoints that traffic to `w` goes through: for its pod address or any of its Services."""
    refs: list[WaypointRef] = []
    for svc in (None, *model.topology.services_selecting(w)):
        ref = waypoint_for(model, w, svc, ProxyRole.NONE)
        if ref is not None and ref not in refs:
            refs.append(ref)
    return refs


# --- KZT501 ------------------------------------------------------------------------------------


def check_l7_at_ztunnel(model: Model, reach: Reachability) -> list[Finding]:
    """KZT501: AuthorizationPolicies with L7 attributes that ztunnel enforces for ambient pods."""
    model = reach.model
    targets: dict[int, list[ClassView]] = {}
    for view, policies in _ambient(reach):
        for authz in policies:
            if rewritten(authz, Enforcer.ZTUNNEL, http=False):
                targets.setdefault(id(authz), []).append(view)
    findings: list[Finding] = []
    for authz in model.mesh.authorization_policies:
        views = targets.get(id(authz))
        if not views:
            continue
        rule = next(
            r
            for r in authz.rules
            if rewritten(dataclasses.replace(authz, rules=(r,)), Enforcer.ZTUNNEL, http=False)
        )
        bound = sorted({f"{r.namespace}/{r.name}" for v in views for r in _waypoints(model, v.rep)})
        if authz.action is AuthzAction.ALLOW:
            effect = "its rules with L7 attributes are dropped, so they allow nothing"
        else:
            effect = (
                "L7 attributes are removed from its rules, so an L7-only rule denies nothing "
                "and a rule with L4 attributes denies all of that L4 traffic"
            )
        where = (
            f"waypoint {listing(bound)} is bound, but selector policies are enforced by ztunnel"
            if bound
            else "no waypoint is bound"
        )
        ids = sorted(m.id for v in views for m in v.members)
        findings.append(
            KZT501.finding(
                obj=authz.ref,
                namespace=authz.namespace,
                location=location_of(authz.source),
                path=f"spec.rules[{rule.index}]",
                message=f"applies to ambient workloads {listing(ids)} ({where}): {effect}",
                remediation=(
                    "Move the L7 rules to a policy with `targetRefs` to the waypoint (Gateway) "
                    "or the Service"
                    + (
                        ""
                        if bound
                        else ", after deploying a waypoint and labelling the "
                        "namespace or Service `istio.io/use-waypoint`"
                    )
                    + "; keep only L4 attributes in selector policies."
                ),
            )
        )
    return findings


# --- KZT502 ------------------------------------------------------------------------------------


def _rule_matches(
    authz: AuthorizationPolicy, rule: AuthzRule, who: str | None, w: Workload, model: Model
) -> bool:
    """The rule alone matches a connection from principal `who` to `w`, at ztunnel."""
    single = dataclasses.replace(authz, rules=(rule,), action=AuthzAction.DENY)
    port = w.ports[0].port if w.ports else 0
    request = AuthzRequest(who, None, w.ip, port, None)
    return not authorize([single], request, Enforcer.ZTUNNEL, model.mesh_config, w.id).allowed


def _waypoint_enforces_allow(model: Model, w: Workload, ref: WaypointRef) -> bool:
    """An ALLOW policy is bound to the waypoint for traffic to `w` (its Gateway, a Service of
    `w`, or GatewayClass istio-waypoint)."""
    config = model.mesh_config
    return any(
        p.action is AuthzAction.ALLOW and not p.dry_run
        for svc in (None, *model.topology.services_selecting(w))
        for p in waypoint_policies(
            model.mesh.authorization_policies,
            ref.name,
            ref.namespace,
            svc.name if svc else None,
            svc.namespace if svc else None,
            config,
        )
    )


def check_waypoint_bypass(model: Model, reach: Reachability) -> list[Finding]:
    """KZT502: selector / namespace policies at the destination ztunnel that name client
    identities, for ambient pods whose traffic goes through a waypoint."""
    model = reach.model
    config = model.mesh_config
    clients = [
        v
        for v in class_views(reach)
        if not is_proxy(model, v.rep) and mode_of(model, v.rep) is not MeshMode.NONE
    ]
    texts: dict[tuple[int, int], list[str]] = {}
    for view, policies in _ambient(reach):
        w = view.rep
        targets = listing(m.id for m in view.members)
        for ref in _waypoints(model, w):
            wp = waypoint_workload(model, ref)
            wp_principal = principal(config, wp.namespace, wp.service_account)
            guarded = _waypoint_enforces_allow(model, w, ref)
            for authz in policies:
                for rule in authz.rules:
                    if not identity_fields(rule):
                        continue
                    admits_waypoint = _rule_matches(authz, rule, wp_principal, w, model)
                    if authz.action is AuthzAction.DENY and not admits_waypoint:
                        named = [
                            c
                            for c in clients
                            if c.index != view.index
                            and _rule_matches(
                                authz,
                                rule,
                                principal(config, c.rep.namespace, c.rep.service_account),
                                w,
                                model,
                            )
                        ]
                        evidence = _reaching(reach, named, view.index)
                        text = (
                            f"traffic to {targets} through waypoint {ref.namespace}/{ref.name} "
                            f"arrives with the identity {wp_principal}, which this DENY rule "
                            "does not name, so it never matches that traffic"
                            + (f"; {listing(evidence)} can still reach it" if evidence else "")
                        )
                    elif authz.action is AuthzAction.ALLOW and admits_waypoint and not guarded:
                        text = (
                            f"this ALLOW rule admits waypoint {ref.namespace}/{ref.name} "
                            f"({wp_principal}) at {targets}, and no ALLOW policy is bound to the "
                            "waypoint: every client the waypoint forwards is admitted, whatever "
                            "identities the rule lists"
                        )
                    else:
                        continue
                    found = texts.setdefault((id(authz), rule.index), [])
                    if text not in found:
                        found.append(text)
    findings: list[Finding] = []
    for authz in model.mesh.authorization_policies:
        for rule in authz.rules:
            for text in texts.get((id(authz), rule.index), []):
                findings.append(
                    KZT502.finding(
                        obj=authz.ref,
                        namespace=authz.namespace,
                        location=location_of(authz.source),
                        path=f"spec.rules[{rule.index}]",
                        message=text,
                        remediation=(
                            "Attach the client rules to the waypoint with `targetRefs` (Gateway "
                            "or Service), and at the destination allow only the waypoint's "
                            "principal (plus gateways that do not use the waypoint)."
                        ),
                    )
                )
    return findings


def _reaching(reach: Reachability, sources: list[ClassView], dst: int) -> list[str]:
    """Workloads of `sources` that the reachability result lets reach class `dst`."""
    out: list[str] = []
    for src in sources:
        if any(per_dst.get(dst, 0) >> src.index & 1 for per_dst in reach.allowed.values()):
            out.extend(m.id for m in src.members)
    return sorted(out)


# --- KZT503 ------------------------------------------------------------------------------------


def check_hbone_blocked(model: Model, reach: Reachability) -> list[Finding]:
    """KZT503: pairs of mesh pods that talk HBONE (at least one end ambient) where L3/L4 policy
    allows the application port but denies TCP 15008, reported at the rule that allows the
    application port. With Calico's port-preserving ztunnel the application port is on the
    wire and nothing is reported."""
    model = reach.model
    if model.mesh_config.ambient_wire_port is AmbientWirePort.CALICO_PRESERVED:
        return []
    view = l4_view(reach)
    workloads = Workloads(reach)
    modes: dict[int, MeshMode] = {}
    for ci in iter_bits(view.real & view.endpoints):
        members = workloads.members(ci)
        if members and not is_proxy(model, members[0]):
            modes[ci] = mode_of(model, members[0])
    ambient = {ci for ci, m in modes.items() if m is MeshMode.AMBIENT}
    mesh = {ci for ci, m in modes.items() if m is not MeshMode.NONE}
    if not ambient:
        return []
    plan: dict[PortKey, int] = {}
    servers: dict[int, list[PortKey]] = {}
    for key, dsts in reach.plan.items():
        if key.protocol is not Protocol.TCP:
            continue
        for d in iter_bits(dsts):
            if d in mesh:
                plan[key] = plan.get(key, 0) | 1 << d
                servers.setdefault(d, []).append(key)
    hbone: dict[int, PortKey] = {}
    for d in servers:
        key = PortKey(
            HBONE_PORT, Protocol.TCP, view.index.peers[d].port_name(HBONE_PORT, Protocol.TCP)
        )
        hbone[d] = key
        plan[key] = plan.get(key, 0) | 1 << d
    l4 = l4_matrix(view.matcher, view.index, plan)
    blame = _Blame(model, view, workloads)
    grouped: dict[tuple[str, str], tuple[str | None, Location | None, list[str]]] = {}
    for d, keys in sorted(servers.items()):
        tunnel_ok = l4.get(hbone[d], {}).get(d, 0)
        for key in keys:
            app_ok = l4.get(key, {}).get(d, 0)
            for c in iter_bits(app_ok & ~tunnel_ok):
                if c == d or c not in mesh or not ({c, d} & ambient):
                    continue
                culprit = blame(c, d, key, hbone[d])
                if culprit is None:
                    continue
                obj, namespace, loc, path = culprit
                src, dst = workloads.members(c)[0], workloads.members(d)[0]
                entry = grouped.setdefault((obj, path), (namespace, loc, []))
                entry[2].append(f"{src.id} → {dst.id}:{key.port}")
    findings: list[Finding] = []
    for (obj, path), (namespace, loc, pairs) in sorted(grouped.items()):
        findings.append(
            KZT503.finding(
                obj=obj,
                namespace=namespace,
                location=loc,
                path=path,
                message=(
                    f"allows {listing(pairs)} on the application port, but these pods talk "
                    "HBONE to TCP 15008 and the L3/L4 policy denies that port, so the mesh "
                    "connection fails"
                ),
                remediation=(
                    "Allow TCP 15008 between these pods (client egress and server ingress) and "
                    "restrict application ports with an AuthorizationPolicy `ports` field."
                ),
            )
        )
    return findings


class _Blame:
    """Which rule allows the application port in the direction (client egress or server
    ingress) that denies 15008: the engine's first-match evaluator with a trace, over the
    result's own classes."""

    def __init__(self, model: Model, view: L4View, workloads: Workloads) -> None:
        self.model = model
        self.view = view
        self.workloads = workloads
        self.egress = view.chains(Direction.EGRESS)
        self.ingress = view.chains(Direction.INGRESS)

    def _decide(
        self, direction: Direction, c: int, d: int, key: PortKey
    ) -> tuple[bool, list[Step]]:
        trace: list[Step] = []
        if direction is Direction.EGRESS:
            ok = decide(self.view.matcher, self.egress[c], direction, c, key, 1 << d, trace)
        else:
            ok = decide(self.view.matcher, self.ingress[d], direction, d, key, 1 << c, trace)
        return bool(ok), trace

    def __call__(
        self, c: int, d: int, app: PortKey, tunnel: PortKey
    ) -> tuple[str, str | None, Location | None, str] | None:
        for direction in (Direction.EGRESS, Direction.INGRESS):
            ok, _ = self._decide(direction, c, d, tunnel)
            if ok:
                continue
            _, steps = self._decide(direction, c, d, app)
            allow = next(
                (s for s in steps if s.effect is Effect.ALLOW and s.source is not None), None
            )
            return self._culprit(allow.source if allow else None, c, d, direction)
        return None

    def _culprit(
        self, source: Source | None, c: int, d: int, direction: Direction
    ) -> tuple[str, str | None, Location | None, str]:
        if source is None:
            owner = self.workloads.members(c if direction is Direction.EGRESS else d)[0]
            return workload_ref(owner), owner.namespace, location_of(owner.source), ""
        file = source.location.file if source.location else None
        for policy in self.model.policies.policies:
            here = policy.source
            here_loc = location_of(here)
            if here is not None and here.ref == source.ref and here_loc and here_loc.file == file:
                return policy_ref(policy), policy.namespace, source.location, source.path
        return source.ref, source.namespace, source.location, source.path
