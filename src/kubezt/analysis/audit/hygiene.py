"""Policy hygiene: policies that select nothing, and rules that never decide anything because an
earlier rule matches first (shadowed) or that repeat another rule (redundant).

Which pods a policy or a rule side selects comes from the engine's selector bitsets over the
reachability result's classes (`kubezt.engine.l4.Matcher`), so "covers" means: for every
workload of the input, and structurally for ports, protocols and CIDRs. Evaluation order is the
engine's too: tiers by order, then policies by order and name (`kubezt.engine.l4.chains`). An
earlier rule shadows a later one when it matches everything the later one matches, applies to
every pod the later one applies to, and decides first: an Allow or Deny in an earlier tier, or
an Allow, Deny or Pass in the same tier. Kubernetes rules are a union (order does not matter),
so between Kubernetes rules a narrower rule is redundant with a broader one in either order.
AuthorizationPolicy rules are not compared.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from kubezt.analysis.audit._facts import (
    L4View,
    applied_authz,
    class_views,
    enforced_policies,
    l4_view,
    location_of,
    policy_ref,
    rule_place,
)
from kubezt.analysis.audit.finding import Finding, FindingSeverity, Principle, RuleSpec
from kubezt.engine.l4 import tier_sort_key
from kubezt.engine.reach import Reachability
from kubezt.errors import Location
from kubezt.ir.model import Model
from kubezt.ir.policy import Action, Dialect, Direction, EntityMatch, Policy, Rule
from kubezt.ir.ports import PortSet

KZT601 = RuleSpec(
    id="KZT601",
    name="PolicySelectsNothing",
    title="Policy selects no workload",
    severity=FindingSeverity.LOW,
    principle=Principle.LEAST_PRIVILEGE,
    help=(
        "A policy whose selector matches no workload of the input protects nothing: a typo in "
        "a label or namespace, or a policy left behind. Fix the selector or delete the policy. "
        "(A PeerAuthentication with a selector in the root namespace is ignored by Istio.)"
    ),
)
KZT602 = RuleSpec(
    id="KZT602",
    name="ShadowedRule",
    title="Rule shadowed by an earlier rule",
    severity=FindingSeverity.MEDIUM,
    principle=Principle.LEAST_PRIVILEGE,
    help=(
        "An earlier rule with another action matches every connection this rule matches, for "
        "every pod it applies to, so this rule never decides anything: what it says is not what "
        "happens. Reorder the rules (Calico `order`) or narrow the earlier rule."
    ),
)
KZT603 = RuleSpec(
    id="KZT603",
    name="RedundantRule",
    title="Rule redundant with another rule",
    severity=FindingSeverity.LOW,
    principle=Principle.LEAST_PRIVILEGE,
    help=(
        "Another rule with the same action already matches every connection this rule matches "
        "for every pod it applies to. Delete the narrower rule, or narrow the broader one if it "
        "allows more than intended."
    ),
)


# --- KZT601 ------------------------------------------------------------------------------------


def check_policies_selecting_nothing(model: Model, reach: Reachability) -> list[Finding]:
    """KZT601: enforced L3/L4 policies, AuthorizationPolicies and PeerAuthentications whose
    selector matches no workload of the input."""
    model = reach.model
    view = l4_view(reach)
    views = class_views(reach)
    root = model.mesh_config.root_namespace
    findings: list[Finding] = []
    for policy in enforced_policies(model):
        if view.selected(policy):
            continue
        findings.append(
            KZT601.finding(
                obj=policy_ref(policy),
                namespace=policy.namespace,
                location=location_of(policy.source),
                path="spec.selector" if policy.dialect is Dialect.CALICO else "spec.podSelector",
                message=(
                    "selects no workload of the input"
                    + (f" in namespace {policy.namespace}" if policy.namespace else "")
                    + ": its rules protect nothing"
                ),
                remediation="Correct the selector (labels, namespace) or delete the policy.",
            )
        )
    applied = {id(p) for p in applied_authz(reach)}
    for authz in model.mesh.authorization_policies:
        if authz.target_refs or id(authz) in applied:
            continue
        if authz.namespace == root and not authz.selector:
            continue
        findings.append(
            KZT601.finding(
                obj=authz.ref,
                namespace=authz.namespace,
                location=location_of(authz.source),
                path="spec.selector" if authz.selector else "",
                message=(
                    "applies to no workload of the input"
                    + ("" if authz.selector else f": namespace {authz.namespace} has none")
                ),
                remediation="Correct `selector.matchLabels` or delete the policy.",
            )
        )
    for pa in model.mesh.peer_authentications:
        if not pa.selector:
            continue
        ref = f"PeerAuthentication {pa.namespace}/{pa.name}"
        if pa.namespace == root:
            message = (
                "has a selector but lives in the root namespace, where Istio ignores selector "
                "policies: it changes nothing"
            )
        elif any(
            v.rep.namespace == pa.namespace and pa.selector.matches(v.rep.labels) for v in views
        ):
            continue
        else:
            message = f"selects no workload of namespace {pa.namespace}: it changes nothing"
        findings.append(
            KZT601.finding(
                obj=ref,
                namespace=pa.namespace,
                location=location_of(pa.source),
                path="spec.selector",
                message=message,
                remediation=(
                    "Correct `selector.matchLabels`, or move a mesh-wide policy to the root "
                    "namespace without a selector."
                ),
            )
        )
    return findings


# --- KZT602 / KZT603 ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Entry:
    """One rule in evaluation order, with the pods its policy applies to."""

    position: tuple[object, ...]
    policy: Policy
    rule: Rule
    index: int
    selected: int
    tier_rank: int

    @property
    def place(self) -> str:
        return self.rule.origin.path if self.rule.origin is not None else f"rule {self.index}"


def _entries(view: L4View, model: Model, direction: Direction) -> list[_Entry]:
    policies = [p for p in enforced_policies(model) if direction in p.types and view.selected(p)]
    tiers = sorted({model.policies.tier(p.tier) for p in policies}, key=tier_sort_key)
    rank = {t.name: i for i, t in enumerate(tiers)}
    ordered = sorted(policies, key=lambda p: (rank[p.tier], p.sort_key))
    out: list[_Entry] = []
    for pi, policy in enumerate(ordered):
        selected = view.selected(policy)
        for index, rule in enumerate(policy.rules(direction)):
            if rule.action is Action.LOG:
                continue
            out.append(_Entry((pi, index), policy, rule, index, selected, rank[policy.tier]))
    return out


def _ports_cover(a: PortSet | None, b: PortSet | None) -> bool:
    if a is None:
        return True
    if b is None:
        return False
    if not b.names <= a.names:
        return False
    return all(
        any(ar.first <= br.first and br.last <= ar.last for ar in a.ranges) for br in b.ranges
    )


def _nets_cover(a: EntityMatch, b: EntityMatch) -> bool:
    if a.nets is not None:
        if not b.nets:
            return False
        if not all(
            any(bn.version == an.version and bn.subnet_of(an) for an in a.nets)  # type: ignore[arg-type]
            for bn in b.nets
        ):
            return False
    if a.not_nets and a.not_nets != b.not_nets:
        if not b.nets:
            return False
        return all(not bn.overlaps(xn) for bn in b.nets for xn in a.not_nets)
    return True


def _endpoints(side: EntityMatch) -> EntityMatch:
    return dataclasses.replace(side, nets=None, not_nets=None, ports=None, not_ports=None)


def _side_covers(
    view: L4View, a: EntityMatch, a_ns: str | None, b: EntityMatch, b_ns: str | None
) -> bool:
    if not _ports_cover(a.ports, b.ports):
        return False
    if a.not_ports is not None and a.not_ports != b.not_ports:
        return False
    if not _nets_cover(a, b):
        return False
    a_ep, b_ep = _endpoints(a), _endpoints(b)
    if a_ep.is_empty:
        return True
    if b_ep.is_empty or (not b.selects_endpoints and a.selects_endpoints):
        return False  # b matches addresses outside the cluster too
    a_bits, _ = view.matcher.base(a_ep, a_ns)
    b_bits, _ = view.matcher.base(b_ep, b_ns)
    return b_bits & ~a_bits == 0


def _rule_covers(view: L4View, a: _Entry, b: _Entry) -> bool:
    """`a`'s rule matches every packet `b`'s rule matches (for the workloads of the input)."""
    ra, rb = a.rule, b.rule
    if ra.protocol is not None and ra.protocol != rb.protocol:
        return False
    if (
        ra.not_protocol is not None
        and ra.not_protocol != rb.not_protocol
        and (rb.protocol is None or rb.protocol == ra.not_protocol)
    ):
        return False
    if ra.ip_version is not None and ra.ip_version != rb.ip_version:
        return False
    if ra.icmp and ra != rb:
        return False
    if ra.http is not None and ra.http != rb.http:
        return False
    ns_a, ns_b = a.policy.namespace, b.policy.namespace
    return _side_covers(view, ra.source, ns_a, rb.source, ns_b) and _side_covers(
        view, ra.destination, ns_a, rb.destination, ns_b
    )


def _matches_something(view: L4View, e: _Entry, direction: Direction) -> bool:
    peer = e.rule.source if direction is Direction.INGRESS else e.rule.destination
    ep = _endpoints(peer)
    if ep.is_empty or not peer.selects_endpoints:
        return True
    bits, _ = view.matcher.base(ep, e.policy.namespace)
    return bool(bits & view.real)


def _decides_first(earlier: _Entry, later: _Entry) -> bool:
    if earlier.tier_rank == later.tier_rank:
        return earlier.rule.action in (Action.ALLOW, Action.DENY, Action.PASS)
    return earlier.rule.action in (Action.ALLOW, Action.DENY)


def _overlaps(view: L4View, model: Model) -> list[tuple[Direction, _Entry, _Entry]]:
    """(direction, covering rule, covered rule) for each covered rule, first cover only."""
    calico_in_default = any(
        p.dialect is Dialect.CALICO and p.tier == "default" for p in enforced_policies(model)
    )
    out: list[tuple[Direction, _Entry, _Entry]] = []
    for direction in (Direction.INGRESS, Direction.EGRESS):
        entries = _entries(view, model, direction)
        by_scope: dict[str | None, list[_Entry]] = {}
        for e in entries:
            by_scope.setdefault(e.policy.namespace, []).append(e)
        for later in entries:
            if not _matches_something(view, later, direction):
                continue
            candidates = by_scope.get(None, []) + (
                by_scope.get(later.policy.namespace, []) if later.policy.namespace else []
            )
            candidates.sort(key=lambda e: e.position)
            for earlier in candidates:
                if earlier is later or (
                    earlier.place == later.place and earlier.policy is later.policy
                ):
                    continue
                before = earlier.position < later.position
                union = (
                    earlier.policy.dialect is Dialect.K8S
                    and later.policy.dialect is Dialect.K8S
                    and not calico_in_default
                )
                if not before and not union:
                    continue
                if earlier.selected & later.selected != later.selected:
                    continue
                if before and not _decides_first(earlier, later):
                    continue
                if not _rule_covers(view, earlier, later):
                    continue
                if not before and _rule_covers(view, later, earlier):
                    continue  # identical rules: report only the later one
                out.append((direction, earlier, later))
                break
    return out


def _finding(
    spec: RuleSpec, direction: Direction, earlier: _Entry, later: _Entry, text: str
) -> Finding:
    loc, path = rule_place(later.policy, later.rule, direction, later.index)
    e_loc, e_path = rule_place(earlier.policy, earlier.rule, direction, earlier.index)
    where = f" ({e_loc})" if isinstance(e_loc, Location) else ""
    same = earlier.policy is later.policy
    other = (
        f"{e_path or 'an earlier rule'}"
        if same
        else f"{policy_ref(earlier.policy)} {e_path}".strip()
    )
    peers = [
        _endpoints(e.rule.source if direction is Direction.INGRESS else e.rule.destination)
        for e in (earlier, later)
    ]
    scope = "" if peers[0] == peers[1] else " (for the workloads of the input)"
    return spec.finding(
        obj=policy_ref(later.policy),
        namespace=later.policy.namespace,
        location=loc,
        path=path,
        message=f"{direction.value.lower()} rule {text.format(other=other + where)}{scope}",
        remediation=(
            "Delete this rule, or reorder (Calico `order`, rule order) and narrow the other "
            "rule so each rule decides what it says."
        ),
    )


def check_shadowed_rules(model: Model, reach: Reachability) -> list[Finding]:
    """KZT602: rules that an earlier rule with a different action always pre-empts."""
    view = l4_view(reach)
    findings: list[Finding] = []
    for direction, earlier, later in _overlaps(view, reach.model):
        if earlier.rule.action is later.rule.action:
            continue
        text = (
            f"({later.rule.action.value}) never applies: {{other}} "
            f"({earlier.rule.action.value}) matches all of its traffic first"
        )
        findings.append(_finding(KZT602, direction, earlier, later, text))
    return _dedupe(findings)


def check_redundant_rules(model: Model, reach: Reachability) -> list[Finding]:
    """KZT603: rules whose traffic a rule with the same action already matches."""
    view = l4_view(reach)
    findings: list[Finding] = []
    for direction, earlier, later in _overlaps(view, reach.model):
        if earlier.rule.action is not later.rule.action:
            continue
        text = (
            f"({later.rule.action.value}) is redundant: {{other}} "
            f"({earlier.rule.action.value}) already matches all of its traffic"
        )
        findings.append(_finding(KZT603, direction, earlier, later, text))
    return _dedupe(findings)


def _dedupe(findings: list[Finding]) -> list[Finding]:
    """One finding per rule as written (a Kubernetes rule lowers into one rule per protocol)."""
    seen: dict[tuple[str, str, str], Finding] = {}
    for f in findings:
        seen.setdefault((f.obj, f.path, str(f.location)), f)
    return list(seen.values())
