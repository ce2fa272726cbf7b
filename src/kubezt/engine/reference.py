"""A slow, per-pod L3/L4 oracle that the property tests hold the fast evaluator against.

Owns: one straightforward reading of semantics.md §1 and §2.4–2.6, evaluated pair by pair and
rule by rule on the IR, with nothing shared with `engine.l4` / `engine.index` except the IR
types and the selector nodes' `.matches()`. Must stay obviously correct rather than fast (it is
quadratic in workloads times rules) and must never be used outside tests.

Decisions encoded here, each with its reference:
* Both ends must allow: the source endpoint's egress and the destination endpoint's ingress
  (semantics.md §0, §1.1, §2.5 "Full connection verdict").
* A single pod talking to itself is never policed (§1.5).
* hostNetwork pods are no Calico workload endpoints (libcalico-go `conversion.go`
  `IsValidCalicoWorkloadEndpoint`): no selector matches their labels, no policy applies to
  them, none of their ports is named for policy, and rules see them only by address (§1.5).
* A rule selector also matches every address inside a Calico network set it selects (felix
  puts the sets' CIDRs in the selector's IP set), pods and nodes included.
* A workload's address is its first pod IP; a packet's family (for `ipVersion`) is the one of
  whichever end's address is known (pods of one cluster share a family).
* `services` picks the pods a Service selects, and on the destination side only the Service's
  target ports (felix `ServiceIncludePorts`).
* Unknown facts (a pod address not given, an ephemeral source port, the address family of two
  pods without address) never let an Allow rule match, and always let Deny/Pass/Log rules
  match, so the oracle never claims an allow the cluster might refuse.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from kubezt.engine.cells import CELL_PROTOCOLS, PortCuts, port_cells, port_cuts
from kubezt.ir.model import Model
from kubezt.ir.policy import (
    Action,
    Dialect,
    Direction,
    EntityMatch,
    NamespaceScope,
    Network,
    NetworkSet,
    Policy,
    PolicySet,
    Rule,
    Tier,
    Unresolved,
)
from kubezt.ir.ports import PortSet, Protocol
from kubezt.ir.selectors import All, Selector
from kubezt.ir.topology import Topology, Workload

Connection = tuple[str, str, int, str]
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Tri = bool | None
"""Three-valued truth: True, False, or None for "cannot be known from the input"."""

_NAMESPACE_LABEL = "projectcalico.org/namespace"
_ORCHESTRATOR_LABEL = "projectcalico.org/orchestrator"
_SERVICE_ACCOUNT_LABEL = "projectcalico.org/serviceaccount"
_NAME_LABEL = "projectcalico.org/name"


@dataclass(frozen=True, slots=True)
class _End:
    """One workload as an end of a connection."""

    workload: Workload
    endpoint: bool
    """A Calico workload endpoint (a pod on the pod network)."""
    labels: Mapping[str, str]
    """Endpoint labels: pod labels plus the projectcalico.org/* labels (endpoints only)."""
    namespace_labels: Mapping[str, str]
    service_account_labels: Mapping[str, str]
    address: Address | None
    services: frozenset[tuple[str, str]]
    """(namespace, name) of every Service whose selector picks this endpoint."""

    @property
    def id(self) -> str:
        return self.workload.id


@dataclass(frozen=True, slots=True)
class _Packet:
    port: int
    protocol: Protocol
    port_name: str
    """The name the destination endpoint declares for port/protocol ("" if none)."""
    service_ports: frozenset[tuple[str, str]]
    """Services of the destination that forward to this port (a target port of theirs)."""


@dataclass(frozen=True, slots=True)
class _Cluster:
    topology: Topology
    policies: PolicySet

    def namespace_labels(self, namespace: str) -> dict[str, str]:
        ns = self.topology.namespace(namespace)
        return {**ns.labels, _NAME_LABEL: ns.name}


def reference_connections(
    model: Model, port: int | None = None, protocol: Protocol = Protocol.TCP
) -> set[Connection]:
    """Every allowed (source id, destination id, port, protocol) at workload level.

    With `port` None every port cell of each destination is checked at its representative port
    (`engine.cells`: each declared port, and the ports the input names or nobody names, grouped
    where no input tells them apart; that a cell's ports share its representative's verdict is
    proven against the explainer in the tests); otherwise only `port`/`protocol` on every
    destination. Same meaning as `Reachability.connections()`.
    """
    cluster = _Cluster(model.topology, model.policies)
    ends = [_end(w, cluster) for w in model.topology.workloads]
    cuts = port_cuts(model)
    out: set[Connection] = set()
    for dst in ends:
        for packet in _packets(dst, port, protocol, model.topology, cuts):
            for src in ends:
                if _allowed(cluster, src, dst, packet):
                    out.add((src.id, dst.id, packet.port, packet.protocol.value))
    return out


def _end(workload: Workload, cluster: _Cluster) -> _End:
    address = ipaddress.ip_address(workload.ips[0]) if workload.ips else None
    if workload.host_network:
        return _End(workload, False, {}, {}, {}, address, frozenset())
    labels = dict(workload.labels)
    # Calico adds these to every Kubernetes workload endpoint (semantics.md §2.2).
    labels[_NAMESPACE_LABEL] = workload.namespace
    labels[_ORCHESTRATOR_LABEL] = "k8s"
    labels[_SERVICE_ACCOUNT_LABEL] = workload.service_account
    account = cluster.topology.service_account(workload.namespace, workload.service_account)
    account_labels = {**account.labels, _NAME_LABEL: account.name}
    services = frozenset(
        (svc.namespace, svc.name)
        for svc in cluster.topology.services
        if svc.namespace == workload.namespace
        and svc.selector  # a Service without selector picks no pod
        and all(workload.labels.get(k) == v for k, v in svc.selector.items())
    )
    return _End(
        workload,
        True,
        labels,
        cluster.namespace_labels(workload.namespace),
        account_labels,
        address,
        services,
    )


def _packets(
    dst: _End, port: int | None, protocol: Protocol, topology: Topology, cuts: PortCuts
) -> list[_Packet]:
    if port is None:
        wanted = [
            (cell.representative, proto)
            for proto in CELL_PROTOCOLS
            for cell in port_cells(
                cuts, proto, [cp.port for cp in dst.workload.ports if cp.protocol is proto]
            )
        ]
    else:
        wanted = [(port, protocol)]
    out: list[_Packet] = []
    for number, proto in dict.fromkeys(wanted):
        name = ""
        if dst.endpoint:
            for cp in dst.workload.ports:
                if cp.port == number and cp.protocol is proto and cp.name:
                    name = cp.name
                    break
        forwarding = frozenset(
            (svc.namespace, svc.name)
            for svc in topology.services
            if (svc.namespace, svc.name) in dst.services
            and any(
                sp.protocol is proto
                and (sp.target_port == number or (name and sp.target_port == name))
                for sp in svc.ports
            )
        )
        out.append(_Packet(number, proto, name, forwarding))
    return out


def _single_pod(workload: Workload) -> bool:
    return workload.kind == "Pod" or workload.replicas <= 1


def _allowed(cluster: _Cluster, src: _End, dst: _End, packet: _Packet) -> bool:
    if src.id == dst.id and _single_pod(src.workload):
        return True
    if src.endpoint and not _endpoint_allows(cluster, src, Direction.EGRESS, dst, packet):
        return False
    return not dst.endpoint or _endpoint_allows(cluster, dst, Direction.INGRESS, src, packet)


# --- one endpoint, one direction (semantics.md §2.5) --------------------------------------------


def _endpoint_allows(
    cluster: _Cluster, own: _End, direction: Direction, peer: _End, packet: _Packet
) -> bool:
    policies = cluster.policies
    applicable = [
        p for p in policies.policies if not p.staged and direction in p.types and _applies(p, own)
    ]
    if not applicable:
        # The namespace profile kns.<ns> allows everything (Appendix A8).
        return True
    tiers: dict[str, Tier] = {p.tier: policies.tier(p.tier) for p in applicable}
    for tier in sorted(tiers.values(), key=_tier_key):
        members = sorted((p for p in applicable if p.tier == tier.name), key=_policy_key)
        verdict = _tier_verdict(cluster, members, own, direction, peer, packet)
        if verdict is Action.ALLOW:
            return True
        if verdict is Action.DENY:
            return False
        if verdict is Action.PASS:
            continue  # Pass skips to the next applicable tier (Appendix A7)
        if tier.default_action is not Action.PASS:
            return False  # end-of-tier deny
    # Passed by the last applicable tier: the namespace profile allows (A7, A8).
    return True


def _tier_key(tier: Tier) -> tuple[bool, float, str]:
    # Tier order ascending, tiers without order last, then by name.
    return (tier.order is None, tier.order if tier.order is not None else 0.0, tier.name)


def _policy_key(policy: Policy) -> tuple[float, str]:
    # felix policy_sorter: order ascending, no order = +inf, ties by "name/namespace/kind".
    order = policy.order if policy.order is not None else float("inf")
    return (order, f"{policy.name}/{policy.namespace or ''}/{policy.kind}")


def _tier_verdict(
    cluster: _Cluster,
    members: list[Policy],
    own: _End,
    direction: Direction,
    peer: _End,
    packet: _Packet,
) -> Action | None:
    """Allow, Deny or Pass from the first matching rule of the tier, None if none decided.

    Policy-API policies of equal priority have no defined order: every order is tried, and the
    deny-safe outcome of all of them is the verdict (Deny, else Pass, else Allow)."""
    runs: list[list[Policy]] = []
    for policy in members:
        if runs and _unordered(runs[-1][-1], policy, runs[-1]):
            runs[-1].append(policy)
        else:
            runs.append([policy])
    for run in runs:
        outcomes = {
            _first_verdict(cluster, list(order), own, direction, peer, packet)
            for order in itertools.permutations(run)
        }
        for action in (Action.DENY, Action.PASS, Action.ALLOW):
            if action in outcomes:
                return action
    return None


def _unordered(last: Policy, policy: Policy, run: list[Policy]) -> bool:
    return (
        policy.order is not None
        and policy.order == last.order
        and any(p.dialect is Dialect.POLICY_API for p in (*run, policy))
    )


def _first_verdict(
    cluster: _Cluster,
    members: list[Policy],
    own: _End,
    direction: Direction,
    peer: _End,
    packet: _Packet,
) -> Action | None:
    for policy in members:
        for rule in policy.rules(direction):
            matched = _rule_matches(cluster, rule, policy, direction, own, peer, packet)
            hit = matched is True if rule.action is Action.ALLOW else matched is not False
            if hit and rule.action is not Action.LOG:
                return rule.action
    return None


def _applies(policy: Policy, endpoint: _End) -> bool:
    if not endpoint.endpoint:
        return False
    if policy.namespace is not None and policy.namespace != endpoint.workload.namespace:
        return False
    if policy.selector is not None and not policy.selector.matches(endpoint.labels):
        return False
    if policy.namespace_selector is not None and not policy.namespace_selector.matches(
        endpoint.namespace_labels
    ):
        return False
    return policy.service_account_selector is None or policy.service_account_selector.matches(
        endpoint.service_account_labels
    )


# --- one rule ----------------------------------------------------------------------------------


def _all(values: Iterable[Tri]) -> Tri:
    result: Tri = True
    for value in values:
        if value is False:
            return False
        if value is None:
            result = None
    return result


def _any(values: Iterable[Tri]) -> Tri:
    result: Tri = False
    for value in values:
        if value is True:
            return True
        if value is None:
            result = None
    return result


def _not(value: Tri) -> Tri:
    return None if value is None else not value


def _rule_matches(
    cluster: _Cluster,
    rule: Rule,
    policy: Policy,
    direction: Direction,
    own: _End,
    peer: _End,
    packet: _Packet,
) -> Tri:
    number = packet.protocol.number
    if rule.protocol is not None and rule.protocol != number:
        return False
    if rule.not_protocol is not None and rule.not_protocol == number:
        return False
    if rule.icmp:
        return False  # icmp/notICMP only match ICMP packets; these packets carry ports
    src, dst = (peer, own) if direction is Direction.INGRESS else (own, peer)
    return _all(
        [
            _ip_version_matches(rule.ip_version, src, dst),
            _side_matches(cluster, rule.source, policy.namespace, src, None),
            _side_matches(cluster, rule.destination, policy.namespace, dst, packet),
        ]
    )


def _ip_version_matches(version: int | None, src: _End, dst: _End) -> Tri:
    if version is None:
        return True
    known = {end.address.version for end in (src, dst) if end.address is not None}
    if not known:
        return None
    # Both ends of one packet share its address family.
    return known == {version}


def _side_matches(
    cluster: _Cluster,
    side: EntityMatch,
    policy_ns: str | None,
    end: _End,
    packet: _Packet | None,
) -> Tri:
    """Whether `end` satisfies every present criterion of a rule side; `packet` is given for
    the destination side only (source ports are ephemeral, hence unknown)."""
    results: list[Tri] = []
    if side.unresolved is not None:
        # Addresses the input cannot resolve (DNS names; nodes without known addresses, which
        # are never pod-network endpoints): possibly the end, never certainly.
        inside = _address_in(end, side.nets) if side.nets is not None else False
        outside: Tri = False if side.unresolved is Unresolved.NODES and end.endpoint else None
        results.append(True if inside is True else _any([inside, outside]))
        side = dataclasses.replace(side, nets=None, unresolved=None)
    if side.nets is not None:
        results.append(_address_in(end, side.nets))
    if side.not_nets:
        results.append(_not(_address_in(end, side.not_nets)))
    results.append(_selectors_match(cluster, side, policy_ns, end))
    if side.ports is not None or side.not_ports is not None:
        if packet is None:
            results.append(None)
        else:
            if side.ports is not None:
                results.append(_port_in(side.ports, packet))
            if side.not_ports is not None:
                results.append(not _port_in(side.not_ports, packet))
    if side.services is not None and packet is not None:
        # A destination services match covers the Service's endpoint ports only (felix
        # ServiceIncludePorts for destination services).
        results.append(side.services in packet.service_ports)
    return _all(results)


def _address_in(end: _End, nets: Iterable[Network]) -> Tri:
    if end.address is None:
        return None
    address = end.address
    return any(address.version == net.version and address in net for net in nets)


def _port_in(ports: PortSet, packet: _Packet) -> bool:
    # A named port resolves against the destination endpoint's declared ports (§1.4, §2.4).
    if packet.port_name and packet.port_name in ports.names:
        return True
    return any(r.first <= packet.port <= r.last for r in ports.ranges)


def _selectors_match(cluster: _Cluster, side: EntityMatch, policy_ns: str | None, end: _End) -> Tri:
    """The effective selector of a rule side (semantics.md §2.4 box, Appendix A22)."""
    has_service_accounts = (
        side.service_account_names is not None or side.service_account_selector is not None
    )
    scoped = side.namespace_scope in (NamespaceScope.SELECTED, NamespaceScope.GLOBAL)
    positive = (
        side.selector is not None
        or scoped
        or has_service_accounts
        or side.services is not None
        # the namespace term comes with notSelector too (A22), not with nets alone
        or (side.not_selector is not None and side.namespace_scope is NamespaceScope.OWN)
    )
    result: Tri = True
    if positive:
        endpoint = end.endpoint and _endpoint_in_scope(side, policy_ns, end)
        if has_service_accounts:
            names = side.service_account_names
            selector = side.service_account_selector
            endpoint = (
                endpoint
                and (names is None or end.workload.service_account in names)
                and (selector is None or selector.matches(end.service_account_labels))
            )
        if side.selector is not None:
            endpoint = endpoint and side.selector.matches(end.labels)
        if side.services is not None:
            endpoint = endpoint and side.services in end.services
        sets: list[NetworkSet] = []
        if not has_service_accounts and side.services is None:
            chosen = side.selector if side.selector is not None else All()
            sets = [
                s
                for s in cluster.policies.network_sets
                if _set_in_scope(cluster, side, policy_ns, s) and chosen.matches(_set_labels(s))
            ]
        result = _any([endpoint, _in_sets(end, sets)])
    if side.not_selector is not None:
        # The negated selector is applied cluster-wide, to endpoints and network sets (A22).
        excluded = _any(
            [
                end.endpoint and side.not_selector.matches(end.labels),
                _in_sets(end, _sets_matching(cluster, side.not_selector)),
            ]
        )
        result = _all([result, _not(excluded)])
    return result


def _endpoint_in_scope(side: EntityMatch, policy_ns: str | None, end: _End) -> bool:
    if side.services is not None:
        return True  # services stands alone (Calico validation), its namespace is its own
    scope = side.namespace_scope
    if scope is NamespaceScope.OWN:
        return policy_ns is None or end.workload.namespace == policy_ns
    if scope is NamespaceScope.SELECTED:
        selector = side.namespace_selector
        return selector is None or selector.matches(end.namespace_labels)
    # global(): non-namespaced objects only, never a pod
    return scope is not NamespaceScope.GLOBAL


def _set_in_scope(
    cluster: _Cluster, side: EntityMatch, policy_ns: str | None, network_set: NetworkSet
) -> bool:
    scope = side.namespace_scope
    if scope is NamespaceScope.GLOBAL:
        return network_set.namespace is None
    if scope is NamespaceScope.OWN and policy_ns is not None:
        return network_set.namespace == policy_ns
    if scope is NamespaceScope.SELECTED:
        if network_set.namespace is None or side.namespace_selector is None:
            return False
        return side.namespace_selector.matches(cluster.namespace_labels(network_set.namespace))
    return True


def _set_labels(network_set: NetworkSet) -> dict[str, str]:
    labels = dict(network_set.labels)
    if network_set.namespace is not None:
        labels[_NAMESPACE_LABEL] = network_set.namespace
    return labels


def _sets_matching(cluster: _Cluster, selector: Selector) -> list[NetworkSet]:
    return [s for s in cluster.policies.network_sets if selector.matches(_set_labels(s))]


def _in_sets(end: _End, sets: list[NetworkSet]) -> Tri:
    if not sets:
        return False
    return _address_in(end, [net for s in sets for net in s.nets])
