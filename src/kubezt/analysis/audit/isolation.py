"""Deny all by default at L3/L4: workloads that are not isolated, and egress to the internet.

"Default deny" for a pod and a direction means: some enforced policy (Kubernetes or Calico)
selects the pod in that direction, and traffic that no rule names ends in a deny. The engine
answers the second part: `kubezt.engine.l4.decide` runs the pod's own chain for a connection
from (or to) an address and port that no policy mentions. A Kubernetes policy isolates
(end-of-tier deny); a Calico chain that passes to the profile, or that allows everything, does
not (semantics.md §1.1, §2.5).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from kubezt.analysis.audit._facts import (
    L4View,
    Workloads,
    anchor,
    any_address,
    enforced_policies,
    l4_view,
    listing,
    location_of,
    namespace_ref,
    policy_ref,
    rule_place,
    traffic,
    workload_ref,
)
from kubezt.analysis.audit.finding import Finding, FindingSeverity, Principle, RuleSpec
from kubezt.engine.explain import Effect, Step
from kubezt.engine.index import ClassIndex, external_peer, iter_bits, policy_networks
from kubezt.engine.l4 import Matcher, TierChain, chains, decide
from kubezt.engine.reach import Reachability
from kubezt.errors import Location
from kubezt.ir.model import Model
from kubezt.ir.policy import Action, Dialect, Direction, Policy
from kubezt.ir.ports import PortKey, Protocol
from kubezt.ir.topology import Workload

KZT101 = RuleSpec(
    id="KZT101",
    name="IngressDefaultDeny",
    title="No default deny for ingress",
    severity=FindingSeverity.HIGH,
    principle=Principle.DENY_ALL_BY_DEFAULT,
    help=(
        "A pod that no policy isolates for ingress accepts connections from every pod and "
        "address. Select every pod of the namespace with an isolating policy (Kubernetes "
        "NetworkPolicy `podSelector: {}` with `policyTypes: [Ingress]` and no rules, or a Calico "
        "policy whose tier ends in Deny) and allow only the connections each workload needs."
    ),
)
KZT102 = RuleSpec(
    id="KZT102",
    name="EgressDefaultDeny",
    title="No default deny for egress",
    severity=FindingSeverity.MEDIUM,
    principle=Principle.DENY_ALL_BY_DEFAULT,
    help=(
        "A pod that no policy isolates for egress may open connections to any pod and to the "
        "internet. Isolate egress (`policyTypes: [Egress]` with no rules, or a Calico default "
        "deny) and allow what is needed: DNS to kube-dns (UDP and TCP 53), istiod (TCP 15012) "
        "for mesh workloads, HBONE (TCP 15008) between ambient pods, and the workload's peers."
    ),
)
KZT103 = RuleSpec(
    id="KZT103",
    name="EgressToInternet",
    title="Egress allowed to any address",
    severity=FindingSeverity.MEDIUM,
    principle=Principle.LEAST_PRIVILEGE,
    help=(
        "An egress Allow rule without a destination, or to 0.0.0.0/0 or ::/0 without an "
        "exception, lets the selected pods reach every address on the internet (and every pod "
        "by IP). Name the destinations: pods by selector or ServiceAccount, external services by "
        "their CIDRs, or send traffic through an egress gateway; at least carve out the ranges "
        "that must stay unreachable (`except` / `notNets`)."
    ),
)

RESIDUAL_ADDRESSES = ("192.0.2.10", "198.51.100.10", "203.0.113.10", "100.64.255.10")
"""Documentation addresses (RFC 5737) and one from RFC 6598: stand-ins for "an address no policy
names"; the first that no policy CIDR contains is used."""
RESIDUAL_PORTS = (65432, 40999, 20999, 1999)


def residual_address(model: Model) -> ipaddress.IPv4Address:
    nets = [n for n in policy_networks(model.policies) if n.version == 4]
    nets += [n for ns in model.policies.network_sets for n in ns.nets if n.version == 4]
    for text in RESIDUAL_ADDRESSES:
        ip = ipaddress.IPv4Address(text)
        if not any(ip in net for net in nets):
            return ip
    return ipaddress.IPv4Address(RESIDUAL_ADDRESSES[0])


def residual_port(model: Model) -> int:
    ranges = [
        r
        for p in model.policies.policies
        for rule in (*p.ingress, *p.egress)
        for side in (rule.source, rule.destination)
        for ports in (side.ports, side.not_ports)
        if ports is not None
        for r in ports.ranges
    ]
    for port in RESIDUAL_PORTS:
        if not any(r.contains(port) for r in ranges):
            return port
    return RESIDUAL_PORTS[0]


@dataclass(frozen=True, slots=True)
class Isolation:
    """One pod-network workload's isolation in one direction."""

    workload: Workload
    chain: TierChain
    open_by: Step | None
    """Why traffic no rule names is still allowed (the deciding step), None when it is denied."""

    @property
    def isolated(self) -> bool:
        return not self.chain.empty and self.open_by is None


def isolation(
    reach: Reachability, direction: Direction, cluster_only: bool = False
) -> list[Isolation]:
    """For every pod-network workload of the input, whether its own policy chain denies a
    connection from (ingress) or to (egress) an address and port that no policy names.
    `cluster_only` keeps only the cluster-scoped policies of each chain."""
    model = reach.model
    view: L4View = l4_view(reach)
    outsider = external_peer(residual_address(model), model.policies)
    peers = [*view.index.peers, outsider]
    index = ClassIndex(peers, model.topology, model.policies)
    matcher = Matcher(index)
    per_class = chains(matcher, direction)
    port = PortKey(residual_port(model), Protocol.TCP)
    other = 1 << (len(peers) - 1)
    workloads = Workloads(reach)
    out: list[Isolation] = []
    for ci in iter_bits(view.real & view.endpoints):
        chain = per_class[ci]
        if cluster_only:
            chain = TierChain(
                tuple(
                    (tier, kept)
                    for tier, policies in chain.tiers
                    if (kept := tuple(p for p in policies if p.namespace is None))
                )
            )
        open_by: Step | None = None
        if not chain.empty:
            trace: list[Step] = []
            if decide(matcher, chain, direction, ci, port, other, trace):
                open_by = next(
                    (s for s in reversed(trace) if s.effect is Effect.ALLOW),
                    Step(layer=trace[-1].layer, reason="allowed", effect=Effect.ALLOW),
                )
        out.extend(Isolation(w, chain, open_by) for w in workloads.members(ci))
    return sorted(out, key=lambda i: i.workload.id)


def _check_default_deny(reach: Reachability, direction: Direction, spec: RuleSpec) -> list[Finding]:
    word = direction.value.lower()
    results = isolation(reach, direction)
    by_ns: dict[str, list[Isolation]] = {}
    for item in results:
        by_ns.setdefault(item.workload.namespace, []).append(item)
    workloads = Workloads(reach)
    findings: list[Finding] = []
    for ns, items in sorted(by_ns.items()):
        open_items = [i for i in items if not i.isolated]
        if not open_items:
            continue
        if len(open_items) == len(items) and all(i.chain.empty for i in items):
            ids = [i.workload.name for i in items]
            findings.append(
                spec.finding(
                    obj=namespace_ref(ns),
                    namespace=ns,
                    location=workloads.namespace_location(ns),
                    message=(
                        f"no policy selects the pods of namespace {ns} ({listing(ids)}) for "
                        f"{word}: they "
                        + (
                            "accept connections from any pod or address"
                            if direction is Direction.INGRESS
                            else "may connect to any pod or address"
                        )
                    ),
                    remediation=_remediation(direction, ns),
                )
            )
            continue
        for item in open_items:
            w = item.workload
            because = None
            if item.chain.empty:
                message = f"no policy selects {w.id} for {word}, so all {word} traffic is allowed"
                remediation = _remediation(direction, ns)
            else:
                names = listing(policy_ref(p) for p in item.chain.policies)
                message = (
                    f"{names} select{'s' if len(item.chain.policies) == 1 else ''} {w.id} for "
                    f"{word}, but traffic that no rule names is still allowed"
                )
                because = item.open_by
                remediation = (
                    "End the policy chain in a deny: remove the allow-all rule or the Pass that "
                    "leads to the namespace profile, or add a Calico policy in a tier with "
                    "defaultAction Deny (or a Kubernetes NetworkPolicy) that selects the pod "
                    f"for {word}."
                )
            findings.append(
                spec.finding(
                    obj=workload_ref(w),
                    namespace=ns,
                    location=location_of(w.source),
                    message=message,
                    remediation=remediation,
                    because=because,
                )
            )
    return findings


def _remediation(direction: Direction, ns: str) -> str:
    if direction is Direction.INGRESS:
        return (
            f"Add a NetworkPolicy in namespace {ns} with `podSelector: {{}}`, "
            "`policyTypes: [Ingress]` and no ingress rules (or a Calico GlobalNetworkPolicy "
            "default deny selecting the namespace), then allow each needed connection."
        )
    return (
        f"Add a NetworkPolicy in namespace {ns} with `podSelector: {{}}`, "
        "`policyTypes: [Egress]` and no egress rules (or a Calico default deny), then allow "
        "DNS to kube-dns on UDP and TCP 53, istiod on TCP 15012 for mesh workloads and each "
        "needed peer."
    )


def check_ingress_default_deny(model: Model, reach: Reachability) -> list[Finding]:
    """KZT101: pods (or whole namespaces) whose ingress no policy isolates."""
    return _check_default_deny(reach, Direction.INGRESS, KZT101)


def check_egress_default_deny(model: Model, reach: Reachability) -> list[Finding]:
    """KZT102: pods (or whole namespaces) whose egress no policy isolates."""
    return _check_default_deny(reach, Direction.EGRESS, KZT102)


def check_egress_to_internet(model: Model, reach: Reachability) -> list[Finding]:
    """KZT103: egress Allow rules to any address (no destination, or a /0 without exception)
    in policies that select at least one workload."""
    view = l4_view(reach)
    workloads = Workloads(reach)
    seen: dict[tuple[str, str], list[str]] = {}
    places: dict[tuple[str, str], tuple[Policy, Location | None, int]] = {}
    for policy in enforced_policies(reach.model):
        if Direction.EGRESS not in policy.types:
            continue
        selected = view.selected(policy) & view.real
        if not selected:
            continue
        for index, rule in enumerate(policy.egress):
            if rule.action is not Action.ALLOW or not any_address(rule.destination):
                continue
            loc, path = rule_place(policy, rule, Direction.EGRESS, index)
            key = (policy_ref(policy), path)
            seen.setdefault(key, []).append(traffic(rule))
            places.setdefault(key, (policy, loc, selected))
    findings: list[Finding] = []
    for (ref, path), what in sorted(seen.items()):
        policy, loc, selected = places[(ref, path)]
        ids = [w.id for w in workloads.members_of(selected)]
        findings.append(
            KZT103.finding(
                obj=ref,
                namespace=policy.namespace,
                location=loc,
                path=path,
                message=(
                    f"allows egress from {listing(ids)} to any address ({'; '.join(what)}), "
                    "with no exception"
                ),
                remediation=(
                    "Restrict the destination to the pods (selector, ServiceAccount) or external "
                    "CIDRs the workload needs, or add `except`/`notNets` for the ranges it must "
                    "not reach; route internet egress through an egress gateway."
                ),
            )
        )
    return findings


KZT104 = RuleSpec(
    id="KZT104",
    name="ClusterDefaultDeny",
    title="No cluster-wide default deny",
    severity=FindingSeverity.MEDIUM,
    principle=Principle.DENY_ALL_BY_DEFAULT,
    help=(
        "Neither a cluster-wide policy (a ClusterNetworkPolicy in tier Admin or Baseline, a "
        "BaselineAdminNetworkPolicy, or a Calico GlobalNetworkPolicy) nor a per-namespace "
        "policy denies ingress by default for some namespaces, so a new namespace (or a "
        "forgotten one) starts open. Add a Baseline ClusterNetworkPolicy that denies by default "
        "and lets namespace owners allow what they need (`kubezt compile --cluster-policy`)."
    ),
)


def check_cluster_default_deny(model: Model, reach: Reachability) -> list[Finding]:
    """KZT104: no cluster-scoped policy denies by default anywhere (no Admin/Baseline policy
    with a Deny for every namespace, no cluster-scoped Calico policy that isolates a pod), and
    some namespaces have no default deny of their own: one finding for the cluster."""
    items = isolation(reach, Direction.INGRESS)
    open_ns = sorted({i.workload.namespace for i in items if not i.isolated})
    if not open_ns:
        return []
    if any(i.isolated for i in isolation(reach, Direction.INGRESS, cluster_only=True)):
        return []
    if any(_denies_every_namespace(p) for p in enforced_policies(model)):
        return []
    return [
        KZT104.finding(
            obj="cluster",
            namespace=None,
            location=Workloads(reach).namespace_location(open_ns[0]) or anchor(model),
            message=(
                "no cluster-wide policy (ClusterNetworkPolicy Admin/Baseline, "
                "BaselineAdminNetworkPolicy or Calico GlobalNetworkPolicy) denies ingress by "
                f"default, and namespace{'s' if len(open_ns) > 1 else ''} {listing(open_ns)} "
                "have no default deny of their own"
            ),
            remediation=(
                "Apply a Baseline ClusterNetworkPolicy selecting every namespace with a final "
                "Deny rule (and the platform allowances: DNS, kubelet probes, istiod, HBONE); "
                "`kubezt compile INTENT --cluster-policy` writes one."
            ),
        )
    ]


_ANY_POD = {"projectcalico.org/orchestrator": "k8s"}


def _denies_every_namespace(policy: Policy) -> bool:
    """A policy-API policy with a Deny rule for all pods of all namespaces (or all addresses)
    on every port: a cluster default deny, even though ingress peers cannot name addresses."""
    if policy.dialect is not Dialect.POLICY_API:
        return False
    for rule in (*policy.ingress, *policy.egress):
        if rule.action is not Action.DENY or rule.protocol is not None:
            continue
        for side in (rule.source, rule.destination):
            if side.ports is not None:
                break
        else:
            peer = rule.source if rule in policy.ingress else rule.destination
            if peer.is_empty or (
                peer.namespace_selector is not None
                and peer.namespace_selector.matches({})
                and (peer.selector is None or peer.selector.matches(_ANY_POD))
                and peer.nets is None
            ):
                return True
    return False
