"""Reachability of every pair at once: the same layers as `engine.connection`, evaluated once per
class of workloads.

L3/L4 runs as bitsets (`engine.l4.decide` over all peers at once) for every destination port
and, when any workload is in the mesh, for the HBONE port 15008. Each pair then takes the path
the mesh gives it (direct, HBONE, or two legs through a waypoint), and mesh pairs go through
`engine.connection.mesh_decision` (`engine.meshview`) — once per source identity, destination
class, port and route, and for HTTP ports once per representative request, so a connection is
allowed for all requests, for some (listed), or for none.

Ports are a complete space (`engine.cells`): besides the ports a destination declares, every
cell of the ports the input names (and the `other` cell of the ports nobody names) is
evaluated at its representative port, so exposure on undeclared ports is seen. A row's `port`
is the cell's representative; `Reachability.port_cell` gives the cell.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import NamedTuple

from kubezt.engine.capture import address_networks
from kubezt.engine.cells import CELL_PROTOCOLS, PortCell, PortCuts, port_cells, port_cuts
from kubezt.engine.connection import is_single_pod
from kubezt.engine.index import (
    ClassIndex,
    EndpointClass,
    Peer,
    bit_indices,
    bits_of,
    build_classes,
    iter_bits,
)
from kubezt.engine.l4 import Matcher, TierChain, chains, decide
from kubezt.engine.mesh import HBONE_PORT, WAYPOINT_GATEWAY_LABEL, WaypointRef, waypoint_workload
from kubezt.engine.meshview import MeshView
from kubezt.engine.requests import ALL, NONE, RequestSet, Some
from kubezt.ir.mesh import Waypoint
from kubezt.ir.model import Model
from kubezt.ir.policy import Direction
from kubezt.ir.ports import PortKey, PortRange, Protocol
from kubezt.ir.topology import Topology, Workload

SYNTHETIC_ANNOTATION = "kubezt.io/synthetic"


class Connection(NamedTuple):
    """One allowed connection at workload level: source and destination workload ids, the
    destination port and its protocol."""

    src: str
    dst: str
    port: int
    protocol: str


class AllowedConnection(NamedTuple):
    """An allowed connection with the requests that pass on it (`ALL` or `Some`)."""

    src: str
    dst: str
    port: int
    protocol: str
    requests: RequestSet


@dataclass(frozen=True, slots=True)
class Reachability:
    """The class-level matrix: for each destination port and destination class, the source
    classes allowed to connect (for at least one request). Expand with `connections()`."""

    model: Model
    classes: tuple[EndpointClass, ...]
    plan: Mapping[PortKey, int]
    """Destination classes evaluated at each port."""
    allowed: Mapping[PortKey, Mapping[int, int]] = field(repr=False)
    """port → destination class → bitset of allowed source classes."""
    partial: Mapping[tuple[PortKey, int, int], Some] = field(
        default_factory=lambda: MappingProxyType({}), repr=False
    )
    """(port, destination class, source class) → the witness requests that pass, when not all
    of them do."""
    reported: int = -1
    """Bitset of classes of real workloads (synthetic waypoint pods are not reported)."""
    input_model: Model = field(kw_only=True, repr=False)
    """The model as given to `evaluate` (`model` adds the synthetic waypoint pods)."""
    cuts: PortCuts | None = field(default=None, kw_only=True, repr=False)
    """The port cuts evaluated (None: only the ports destinations declare, or the one port
    asked for)."""
    _peers: dict[str, Peer] = field(default_factory=dict, init=False, repr=False, compare=False)
    _cell_at: dict[tuple[object, Protocol], tuple[tuple[PortCell, ...], dict[int, PortCell]]] = (
        field(default_factory=dict, init=False, repr=False, compare=False)
    )
    """(destination ports, protocol) → its cells, and the cell of each representative port."""

    def port_cell(self, dst: str, port: int, protocol: str | Protocol) -> PortCell:
        """The cell of destination ports a row's `port` stands for on workload `dst`."""
        peer = self._peer_of(dst)
        return self.class_port_cell(peer, port, protocol)

    def class_port_cell(
        self, peer: Peer | int | None, port: int, protocol: str | Protocol
    ) -> PortCell:
        """The cell of destination ports `port` stands for on a destination class (its peer or
        index)."""
        proto = Protocol(protocol)
        if isinstance(peer, int):
            peer = self.classes[peer].peer
        if self.cuts is None or peer is None:
            return PortCell(proto, (PortRange(port, port),))
        cells = self._cell_at.get((peer.ports, proto))
        if cells is None:
            declared = frozenset(cp.port for cp in peer.ports if cp.protocol is proto)
            listed = _cells_memo(self.cuts, proto, declared)
            cells = self._cell_at[(peer.ports, proto)] = (
                listed,
                {c.representative: c for c in listed},
            )
        cell = cells[1].get(port)
        if cell is None:
            single = PortCell(proto, (PortRange(port, port),))
            cell = next((c for c in cells[0] if c.contains(port)), single)
        return cell

    def port_label(self, dst: str, port: int, protocol: str | Protocol) -> str:
        """`80`, `8000-8080` or `other`: how a row's port is shown."""
        return self.port_cell(dst, port, protocol).label

    def _peer_of(self, workload_id: str) -> Peer | None:
        if not self._peers:
            workloads = self.model.topology.workloads
            for c in self.classes:
                for wi in c.members:
                    self._peers[workloads[wi].id] = c.peer
        return self._peers.get(workload_id)

    @property
    def workload_ids(self) -> list[str]:
        """The workloads of the input (not the waypoint pods kubezt stands in for a Gateway
        whose pod is not in the input)."""
        return sorted(
            w.id for w in self.model.topology.workloads if SYNTHETIC_ANNOTATION not in w.annotations
        )

    def _synthetic(self, wi: int) -> bool:
        return SYNTHETIC_ANNOTATION in self.model.topology.workloads[wi].annotations

    def sources(self, port: PortKey, dst_class: int) -> int:
        """Bitset of the source classes allowed to connect to a destination class on a port
        (for at least one request)."""
        return self.allowed.get(port, {}).get(dst_class, 0)

    def admission(self, port: PortKey, dst_class: int, src_class: int) -> RequestSet:
        """Which requests from a source class to a destination class on a port pass."""
        if not self.sources(port, dst_class) >> src_class & 1:
            return NONE
        return self.partial.get((port, dst_class, src_class), ALL)

    def connections(self) -> Iterator[Connection]:
        """Allowed connections, sorted, at workload level."""
        for src, dst, port, protocol, _ in self.detailed():
            yield Connection(src, dst, port, protocol)

    def detailed(self) -> Iterator[AllowedConnection]:
        """Like `connections()`, with the requests that pass (`ALL` or `Some`).

        Streamed: the rows of one source workload at a time, so memory holds the class-level
        edges and one source's rows, never the whole pair list."""
        workloads = self.model.topology.workloads
        # per source class: (port, destination class, requests) of every allowed edge
        out_edges: dict[int, list[tuple[PortKey, int, RequestSet]]] = {}
        for port, per_dst in self.allowed.items():
            for d, srcs in per_dst.items():
                for s in bit_indices(srcs & self.reported):
                    out_edges.setdefault(s, []).append(
                        (port, d, self.partial.get((port, d, s), ALL))
                    )
        dst_ids: dict[int, list[str]] = {}

        def ids_of(d: int) -> list[str]:
            found = dst_ids.get(d)
            if found is None:
                found = [
                    workloads[wj].id for wj in self.classes[d].members if not self._synthetic(wj)
                ]
                dst_ids[d] = found
            return found

        # a single pod reaching itself never leaves its network namespace: every port its
        # class is evaluated on
        own_ports: dict[int, list[PortKey]] = {}
        for port, dsts in self.plan.items():
            for d in bit_indices(dsts & self.reported):
                own_ports.setdefault(d, []).append(port)
        sources = sorted(
            (workloads[wi].id, wi, c.index)
            for c in self.classes
            if c.index in out_edges or c.index in own_ports
            for wi in c.members
        )
        i = 0
        while i < len(sources):
            src_id = sources[i][0]
            rows: list[AllowedConnection] = []
            while i < len(sources) and sources[i][0] == src_id:
                _, wi, s = sources[i]
                i += 1
                single = is_single_pod(workloads[wi])
                for port, d, requests in out_edges.get(s, ()):
                    for dst_id in ids_of(d):
                        if src_id == dst_id and single:
                            continue
                        rows.append(
                            AllowedConnection(
                                src_id, dst_id, port.port, port.protocol.value, requests
                            )
                        )
                if single and not self._synthetic(wi):
                    for port in own_ports.get(s, ()):
                        rows.append(
                            AllowedConnection(src_id, src_id, port.port, port.protocol.value, ALL)
                        )
            rows.sort(key=lambda r: r[:4])
            yield from rows


def with_waypoint_pods(model: Model) -> Model:
    """The model plus a pod for every waypoint Gateway whose pod is not in the input (the pod
    Istio would create), so waypoint legs can be evaluated."""
    extra: list[Workload] = []
    for wp in model.mesh.waypoints:
        present = any(
            w.namespace == wp.namespace and w.labels.get(WAYPOINT_GATEWAY_LABEL) == wp.name
            for w in model.topology.workloads
        )
        if not present:
            extra.append(synthetic_waypoint_pod(model, wp))
    if not extra:
        return model
    topology = Topology(
        model.topology.namespaces,
        model.topology.service_accounts,
        model.topology.workloads + tuple(extra),
        model.topology.services,
    )
    return dataclasses.replace(model, topology=topology)


def synthetic_waypoint_pod(model: Model, waypoint: Waypoint) -> Workload:
    """The pod Istio would create for a waypoint Gateway, marked as not from the input."""
    pod = waypoint_workload(model, WaypointRef(waypoint.name, waypoint.namespace))
    return dataclasses.replace(
        pod, annotations=pod.annotations.merged({SYNTHETIC_ANNOTATION: "waypoint"})
    )


_CELLS: dict[tuple[PortCuts, Protocol, frozenset[int]], tuple[PortCell, ...]] = {}


def _cells_memo(
    cuts: PortCuts, protocol: Protocol, declared: frozenset[int]
) -> tuple[PortCell, ...]:
    key = (cuts, protocol, declared)
    cells = _CELLS.get(key)
    if cells is None:
        if len(_CELLS) > 4096:
            _CELLS.clear()
        cells = _CELLS[key] = port_cells(cuts, protocol, declared)
    return cells


def port_keys(peer: Peer, cuts: PortCuts) -> list[PortKey]:
    """The ports evaluated for a destination: each port it declares, and the representative
    of every other port cell of each protocol (undeclared, so unnamed)."""
    keys = [cp.key for cp in peer.ports]
    for protocol in CELL_PROTOCOLS:
        declared = frozenset(cp.port for cp in peer.ports if cp.protocol is protocol)
        for cell in _cells_memo(cuts, protocol, declared):
            if not (cell.is_single and cell.representative in declared):
                keys.append(PortKey(cell.representative, protocol))
    return keys


def evaluate(
    model: Model,
    port: int | None = None,
    protocol: Protocol = Protocol.TCP,
    *,
    cuts: PortCuts | None = None,
    declared_only: bool = False,
) -> Reachability:
    """The verdict of every ordered pair of workloads, on every port cell of each destination
    (`engine.cells`: its declared ports and the cells of the ports the input names, cut by
    `cuts`, default the model's own), or on `port`/`protocol` only, through every layer,
    computed once per class. `declared_only`: only the ports destinations declare (the
    ports a deployment documents; exposure on other ports is not evaluated)."""
    if port is None and cuts is None and not declared_only:
        cuts = port_cuts(model)
    if port is not None or declared_only:
        cuts = None
    work = with_waypoint_pods(model)
    classes = build_classes(work, address_networks(model))
    index = ClassIndex([c.peer for c in classes], work.topology, work.policies)
    matcher = Matcher(index)
    reported_list: list[int] = []
    members_of: dict[PortKey, list[int]] = {}
    keys_of: dict[object, list[PortKey]] = {}
    for c in classes:
        rep = work.topology.workloads[c.members[0]]
        if SYNTHETIC_ANNOTATION not in rep.annotations:
            reported_list.append(c.index)
        if cuts is not None:
            keys = keys_of.get(c.peer.ports)
            if keys is None:
                # port_keys reads only the declared ports
                keys = keys_of[c.peer.ports] = port_keys(c.peer, cuts)
        elif port is not None:
            keys = [PortKey(port, protocol, c.peer.port_name(port, protocol))]
        else:
            keys = [cp.key for cp in c.peer.ports]
        for key in keys:
            members_of.setdefault(key, []).append(c.index)
    reported = bits_of(reported_list)
    plan = {key: bits_of(members_of[key]) for key in sorted(members_of)}
    mesh = MeshView(work, classes)
    l4_plan = dict(plan)
    if mesh.active:
        hbone: dict[PortKey, list[int]] = {}
        for c in classes:
            key = PortKey(HBONE_PORT, Protocol.TCP, c.peer.port_name(HBONE_PORT, Protocol.TCP))
            hbone.setdefault(key, []).append(c.index)
        for key, indices in hbone.items():
            l4_plan[key] = l4_plan.get(key, 0) | bits_of(indices)
    l4 = l4_matrix(matcher, index, l4_plan)
    if not mesh.active:
        allowed = {
            key: {d: l4[key][d] for d in bit_indices(dsts) if l4[key].get(d)}
            for key, dsts in plan.items()
        }
        return _frozen(model, classes, plan, allowed, {}, reported, model, cuts)
    allowed, partial = mesh.compose(plan, l4, reported)
    return _frozen(work, classes, plan, allowed, partial, reported, model, cuts)


def _frozen(
    model: Model,
    classes: tuple[EndpointClass, ...],
    plan: dict[PortKey, int],
    allowed: dict[PortKey, dict[int, int]],
    partial: Mapping[tuple[PortKey, int, int], Some],
    reported: int,
    input_model: Model,
    cuts: PortCuts | None,
) -> Reachability:
    """A reachability result over read-only views of the matrices just computed."""
    return Reachability(
        model,
        classes,
        MappingProxyType(plan),
        MappingProxyType({key: MappingProxyType(per_dst) for key, per_dst in allowed.items()}),
        MappingProxyType(partial),
        reported,
        input_model=input_model,
        cuts=cuts,
    )


def l4_matrix(
    matcher: Matcher, index: ClassIndex, plan: dict[PortKey, int]
) -> dict[PortKey, dict[int, int]]:
    """For each port and destination class in `plan`, the source classes whose egress policy
    and the destination's ingress policy both allow the connection."""
    ingress, egress = l4_sides(matcher, index, plan)
    return l4_both(ingress, egress, plan)


L4Side = dict[PortKey, dict[int, int]]
"""port → destination class → bitset of source classes one side's policy lets through."""


def l4_sides(
    matcher: Matcher,
    index: ClassIndex,
    plan: dict[PortKey, int],
    egress_rows: L4Side | None = None,
) -> tuple[L4Side, L4Side]:
    """Each side of the L3/L4 matrix on its own, for every port and destination class in
    `plan`: the source classes the destination's ingress policy admits, and the source classes
    whose egress policy lets them reach the destination. Each policy chain is decided once per
    group of classes that share it (`grouped_chains`), and once for all the ports none of its
    own rules tells apart (`_ChainVerdicts`; ports no rule at all tells apart, e.g. the cells
    of ports only a Service names, are grouped first by `Matcher.port_signature`).
    `egress_rows` (a dict per port of `plan`), when given, also gets the egress side by
    source: source class -> destinations."""
    everyone = index.all
    ingress: L4Side = {key: {} for key in plan}
    egress: L4Side = {key: {} for key in plan}
    alike: dict[tuple[object, ...], list[PortKey]] = {}
    for key in plan:
        alike.setdefault(matcher.port_signature(key), []).append(key)
    inbound = _ChainVerdicts(matcher, Direction.INGRESS, everyone)
    outbound = _ChainVerdicts(matcher, Direction.EGRESS, everyone)
    for signature, keys in alike.items():
        first = keys[0]
        union = 0
        for key in keys:
            union |= plan[key]
        for i, (_, _, members) in enumerate(inbound.groups):
            targets = members & union
            if not targets:
                continue
            sources = inbound.verdict(i, signature, first)
            for key in keys:
                row = ingress[key]
                for d in bit_indices(targets & plan[key]):
                    row[d] = sources
        # source groups whose egress reaches the same destinations, together
        by_reach: dict[int, int] = {}
        for i, (_, _, members) in enumerate(outbound.groups):
            reachable = outbound.verdict(i, signature, first) & union
            if reachable:
                by_reach[reachable] = by_reach.get(reachable, 0) | members
            if egress_rows is not None and reachable:
                group = list(iter_bits(members))
                for key in keys:
                    here = reachable & plan[key]
                    if here:
                        egress_rows[key].update(dict.fromkeys(group, here))
        for key in keys:
            row = egress[key]
            bits = plan[key]
            for reachable, members in by_reach.items():
                for d in bit_indices(reachable & bits):
                    row[d] = row.get(d, 0) | members
    return ingress, egress


class _ChainVerdicts:
    """`decide` for each group of classes sharing a chain (`grouped_chains`), towards every
    peer, once per distinct view the chain's own rules have of a port (`Matcher.chain_port_view`):
    ports that no rule of the chain tells apart share the verdict. `decide` treats every peer
    bit on its own, so a verdict towards every peer, masked, is the verdict towards the mask."""

    def __init__(self, matcher: Matcher, direction: Direction, everyone: int) -> None:
        self.matcher = matcher
        self.direction = direction
        self.everyone = everyone
        self.groups = grouped_chains(matcher, direction)
        self._views = [
            None if chain.empty else matcher.chain_port_view(chain, direction)
            for chain, _, _ in self.groups
        ]
        self._memo: list[dict[tuple[object, ...], int]] = [{} for _ in self.groups]

    def verdict(self, i: int, signature: tuple[object, ...], port: PortKey) -> int:
        """Peers that group `i`'s chain lets through on `port` (whose `port_signature` is
        `signature`)."""
        view = self._views[i]
        if view is None:
            return self.everyone
        conditions, services = signature[1], signature[2]
        assert isinstance(conditions, tuple) and isinstance(services, tuple)
        local = (
            signature[0],
            tuple([conditions[j] for j in view[0]]),
            tuple([services[j] for j in view[1]]),
        )
        memo = self._memo[i]
        got = memo.get(local)
        if got is None:
            chain, rep, _ = self.groups[i]
            got = memo[local] = decide(
                self.matcher, chain, self.direction, rep, port, self.everyone
            )
        return got


def l4_both(ingress: L4Side, egress: L4Side, plan: dict[PortKey, int]) -> L4Side:
    """The cells both sides allow (empty cells left out)."""
    out: L4Side = {}
    for key, dsts in plan.items():
        ing, eg = ingress[key], egress[key]
        per_dst: dict[int, int] = {}
        for d in bit_indices(dsts):
            both = ing.get(d, 0) & eg.get(d, 0)
            if both:
                per_dst[d] = both
        out[key] = per_dst
    return out


def grouped_chains(matcher: Matcher, direction: Direction) -> list[tuple[TierChain, int, int]]:
    """Classes that share a chain and see every rule's own side alike: (chain, representative,
    member bitset)."""
    per_class = chains(matcher, direction)
    groups: dict[tuple[object, ...], list[int]] = {}
    reps: dict[tuple[object, ...], TierChain] = {}
    for ci, chain in enumerate(per_class):
        key = chain_signature(matcher, direction, ci, chain)
        groups.setdefault(key, []).append(ci)
        reps[key] = chain
    out: list[tuple[TierChain, int, int]] = []
    for key, members in groups.items():
        bits = 0
        for ci in members:
            bits |= 1 << ci
        out.append((reps[key], members[0], bits))
    return out


def chain_signature(
    matcher: Matcher, direction: Direction, ci: int, chain: TierChain
) -> tuple[object, ...]:
    """What `decide` reads of class `ci` itself under `chain`: classes with equal signatures
    get equal verdicts towards every peer."""
    signature: list[object] = [id(chain)]
    bit = 1 << ci
    ingress = direction is Direction.INGRESS
    for policy in chain.policies:
        for rule in policy.rules(direction):
            if rule.ip_version is not None:
                # the connection's family follows the endpoint's own address (l4.family)
                ip = matcher.ix.peers[ci].ip
                signature.append(ip.version if ip is not None else None)
            own_side = rule.destination if ingress else rule.source
            if own_side.is_empty:
                continue
            yes, maybe = matcher.base(own_side, policy.namespace)
            signature.append((bool(yes & bit), bool(maybe & bit)))
    return tuple(signature)
