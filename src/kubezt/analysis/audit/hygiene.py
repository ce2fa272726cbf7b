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
    Workloads,
    applied_authz,
    class_views,
    enforced_policies,
    l4_view,
    location_of,
    policy_ref,
    rule_place,
)
from kubezt.analysis.audit.finding import Finding, FindingSeverity, Principle, RuleSpec
from kubezt.engine.explain import Step
from kubezt.engine.index import iter_bits
from kubezt.engine.l4 import decide, tier_sort_key
from kubezt.engine.reach import Reachability
from kubezt.errors import Location
from kubezt.ir.model import Model
from kubezt.ir.policy import Action, Dialect, Direction, EntityMatch, Policy, Rule
from kubezt.ir.ports import PortKey, PortSet, Protocol

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
                if _unordered(earlier.policy, later.policy):
                    continue  # equal priorities: no rule comes first (KZT605)
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


def _unordered(a: Policy, b: Policy) -> bool:
    """Two different policies whose relative order the policy API leaves undefined."""
    return (
        a is not b
        and Dialect.POLICY_API in (a.dialect, b.dialect)
        and a.tier == b.tier
        and a.order is not None
        and a.order == b.order
    )


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


KZT604 = RuleSpec(
    id="KZT604",
    name="PassToAllowAll",
    title="Pass falls through to allow-all",
    severity=FindingSeverity.MEDIUM,
    principle=Principle.DENY_ALL_BY_DEFAULT,
    help=(
        "An Admin-tier Pass hands the connection to the namespace's NetworkPolicies and the "
        "Baseline tier, but nothing there selects the pod, so Kubernetes' default allows it: "
        "the Pass delegates to nobody. Add a namespace default deny or a Baseline "
        "ClusterNetworkPolicy, or Deny instead of Pass."
    ),
)
KZT605 = RuleSpec(
    id="KZT605",
    name="EqualPriorityOverlap",
    title="Equal priorities with overlapping rules",
    severity=FindingSeverity.MEDIUM,
    principle=Principle.LEAST_PRIVILEGE,
    help=(
        "Two cluster policies of the same tier and priority select the same pods and have rules "
        "with different actions for the same traffic. The API leaves their order undefined, so "
        "implementations may decide either way (kubezt reports the deny-safe answer). Give the "
        "policies distinct priorities."
    ),
)


# --- KZT604 ------------------------------------------------------------------------------------


def check_pass_to_allow_all(model: Model, reach: Reachability) -> list[Finding]:
    """KZT604: policy-API Pass rules after which no later tier decides for some workload, so the
    connection is allowed by default."""
    view = l4_view(reach)
    names = Workloads(reach)
    findings: list[Finding] = []
    seen: set[tuple[str, str, int | None, Direction]] = set()
    for direction in (Direction.INGRESS, Direction.EGRESS):
        ingress = direction is Direction.INGRESS
        per_class = view.chains(direction)
        for ci in iter_bits(view.real & view.endpoints):
            chain = per_class[ci]
            for policy in chain.policies:
                if policy.dialect is not Dialect.POLICY_API:
                    continue
                for index, rule in enumerate(policy.rules(direction)):
                    key = (policy.kind, policy.name, rule.index, direction)
                    if rule.action is not Action.PASS or key in seen:
                        continue
                    port = _probe_port(rule)
                    side = rule.source if ingress else rule.destination
                    peers, _ = view.matcher.side(side, None, not ingress, port)
                    for peer in iter_bits(peers & view.real & ~(1 << ci)):
                        trace: list[Step] = []
                        allowed = decide(view.matcher, chain, direction, ci, port, 1 << peer, trace)
                        if not allowed or trace[-1].reason != "profile-allow":
                            continue
                        seen.add(key)
                        findings.append(
                            _pass_finding(names, policy, rule, index, direction, ci, peer)
                        )
                        break
    return _dedupe(findings)


def _probe_port(rule: Rule) -> PortKey:
    protocol = Protocol.TCP
    for p in Protocol:
        if p.number == rule.protocol:
            protocol = p
    ports = rule.destination.ports
    if ports is not None and ports.ranges:
        return PortKey(ports.ranges[0].first, protocol)
    return PortKey(65432, protocol)


def _pass_finding(
    names: Workloads,
    policy: Policy,
    rule: Rule,
    index: int,
    direction: Direction,
    own: int,
    peer: int,
) -> Finding:
    loc, path = rule_place(policy, rule, direction, index)
    mine = names.members(own)[0].id
    other = names.members(peer)[0].id
    word = direction.value.lower()
    toward = f"from {other}" if direction is Direction.INGRESS else f"to {other}"
    return KZT604.finding(
        obj=policy_ref(policy),
        namespace=None,
        location=loc,
        path=path,
        message=(
            f"{word} rule (Pass) hands {mine}'s {word} {toward} to the next tiers, where no "
            "NetworkPolicy or Baseline policy decides: Kubernetes' default allows it"
        ),
        remediation=(
            "Add a default deny in the namespace (or a Baseline ClusterNetworkPolicy), or use "
            "Deny instead of Pass when nothing is meant to allow it."
        ),
    )


# --- KZT605 ------------------------------------------------------------------------------------


def check_equal_priority_overlap(model: Model, reach: Reachability) -> list[Finding]:
    """KZT605: policy-API policies of equal tier and priority that select common workloads and
    have rules of different actions matching common traffic."""
    view = l4_view(reach)
    policies = sorted(
        (p for p in enforced_policies(model) if p.dialect is Dialect.POLICY_API),
        key=lambda p: (p.tier, p.order if p.order is not None else -1.0, p.kind, p.name),
    )
    findings: list[Finding] = []
    for i, first in enumerate(policies):
        for second in policies[i + 1 :]:
            if (second.tier, second.order) != (first.tier, first.order) or second.order is None:
                continue
            if (second.kind, second.name) == (first.kind, first.name):
                continue  # one policy lowered per subject namespace
            common = view.selected(first) & view.selected(second) & view.real
            if not common:
                continue
            clash = _clash(view, first, second)
            if clash is None:
                continue
            direction, rule, index, other_rule = clash
            loc, path = rule_place(second, rule, direction, index)
            findings.append(
                KZT605.finding(
                    obj=policy_ref(second),
                    namespace=None,
                    location=loc,
                    path=path,
                    message=(
                        f"{policy_ref(first)} and {policy_ref(second)} both have priority "
                        f"{second.order:g} in tier {second.tier!r} and select the same pods; "
                        f"this {direction.value.lower()} rule ({rule.action.value}) and "
                        f"{policy_ref(first)}'s ({other_rule.action.value}) match common traffic, "
                        "so the verdict depends on an order the API leaves undefined"
                    ),
                    remediation=(
                        f"Give {policy_ref(first)} and {policy_ref(second)} distinct priorities."
                    ),
                )
            )
    return _dedupe(findings)


def _clash(view: L4View, first: Policy, second: Policy) -> tuple[Direction, Rule, int, Rule] | None:
    for direction in (Direction.INGRESS, Direction.EGRESS):
        ingress = direction is Direction.INGRESS
        for index, rule in enumerate(second.rules(direction)):
            for other in first.rules(direction):
                if other.action is rule.action:
                    continue
                if None not in (rule.protocol, other.protocol) and rule.protocol != other.protocol:
                    continue
                a = rule.source if ingress else rule.destination
                b = other.source if ingress else other.destination
                if not _ports_meet(rule.destination.ports, other.destination.ports):
                    continue
                if _peers_meet(view, a, b):
                    return direction, rule, index, other
    return None


def _ports_meet(a: PortSet | None, b: PortSet | None) -> bool:
    if a is None or b is None:
        return True
    if a.names & b.names or (a.names and b.names):
        return True
    return any(x.first <= y.last and y.first <= x.last for x in a.ranges for y in b.ranges)


def _peers_meet(view: L4View, a: EntityMatch, b: EntityMatch) -> bool:
    if (
        a.nets is not None
        and b.nets is not None
        and any(x.version == y.version and x.overlaps(y) for x in a.nets for y in b.nets)
    ):
        return True
    if a.unresolved is not None or b.unresolved is not None:
        return True
    _, maybe_a = view.matcher.base(a, None)
    _, maybe_b = view.matcher.base(b, None)
    return bool(maybe_a & maybe_b)
