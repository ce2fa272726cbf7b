"""Reachability between workloads and the outside of the cluster, cell by cell.

The outside is the IPv4 and IPv6 address spaces cut into `engine.cells.AddressCell`s by every
CIDR the input names; ports are cut into `engine.cells.PortCell`s. Every outside cell is a peer
of its own (its representative address, `index.external_peer`) in one class index with the
classes of workloads (`engine.reach`), so the same evaluators as the in-cluster matrix decide
every cell at once, as bitsets:

- L3/L4 (`engine.l4.decide`): egress of each source class to every cell, on every port cell;
  ingress of each destination class from every cell, on each of its port cells. An outside
  end has no policy of its own.
- The mesh, from the outside in: a caller outside the cluster is outside the mesh, so it
  speaks plaintext without a principal. The path (`connection.plan_path`: inbound capture,
  server mode) depends on the destination and port only; mTLS admission and authorization at
  the sidecar or ztunnel (`mesh_sets.MeshSets` over the cells as sources, read by address:
  ipBlocks, remoteIpBlocks, `source.ip`) and Calico application layer policy decide every
  cell at once, on every witness request of the destination's request space (`engine.requests`)
  when the port carries HTTP and the policies look at requests. From the inside out the mesh
  adds nothing: the destination has no proxy (`connection.mesh_decision`).

By construction of the cells, the answer holds for every address and port of a cell. The
explainer (`engine.connection.explain_connection`) decides one connection with the same
layers; the tests hold the two together for every class, cell, port cell and direction.

Pure: no I/O.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum

from kubezt.engine.authz import authz_networks
from kubezt.engine.authz_sets import SourceSpace
from kubezt.engine.capture import address_networks as splitting_networks
from kubezt.engine.cells import (
    CELL_PROTOCOLS,
    AddressCell,
    PortCell,
    PortCuts,
    address_cells,
    address_networks,
    port_cells,
    port_cuts,
)
from kubezt.engine.connection import End, EndKind, plan_path
from kubezt.engine.index import (
    ClassIndex,
    EndpointClass,
    IpAddress,
    build_classes,
    external_peer,
    iter_bits,
)
from kubezt.engine.l4 import Matcher, chains, decide
from kubezt.engine.mesh_sets import MeshSets
from kubezt.engine.meshview import MeshView
from kubezt.engine.reach import SYNTHETIC_ANNOTATION, grouped_chains
from kubezt.engine.requests import ALL, NONE, RequestSet, RequestSpace, Some
from kubezt.ir.model import Model
from kubezt.ir.policy import Direction, Network
from kubezt.ir.ports import PortKey, Protocol
from kubezt.ir.requests import HttpRequest
from kubezt.ir.topology import ContainerPort, MeshMode, Workload


class OutsideDirection(StrEnum):
    EGRESS = "egress"
    """From the workload to the outside cell."""
    INGRESS = "ingress"
    """From the outside cell to the workload."""


@dataclass(frozen=True, slots=True)
class OutsideConnection:
    """One allowed connection between a workload and an outside cell, on a port cell.
    `requests`: `ALL`, or `Some` (the witness requests that pass)."""

    direction: OutsideDirection
    workload: str
    cell: AddressCell
    port: PortCell
    requests: RequestSet = ALL

    @property
    def src(self) -> str:
        return self.workload if self.direction is OutsideDirection.EGRESS else self.cell.label

    @property
    def dst(self) -> str:
        return self.cell.label if self.direction is OutsideDirection.EGRESS else self.workload

    @property
    def key(self) -> tuple[str, str, str, str]:
        """(src, dst, port cell span, protocol): what a diff compares."""
        return (self.src, self.dst, self.port.span, self.port.protocol.value)


ClassRow = tuple[OutsideDirection, AddressCell, PortCell, RequestSet]
"""One allowed connection of a class of workloads with an outside cell."""


@dataclass(frozen=True, slots=True)
class Outside:
    """Every allowed connection between the workloads and the outside cells."""

    cells: tuple[AddressCell, ...]
    cuts: PortCuts
    by_class: tuple[tuple[tuple[str, ...], tuple[ClassRow, ...]], ...]
    """Per class of workloads: its workloads (sorted ids) and its allowed connections, sorted
    by (direction, cell, port)."""
    _class_of: dict[str, int] = field(default_factory=dict, init=False, repr=False, compare=False)

    def connections(self) -> Iterator[OutsideConnection]:
        """Allowed connections at workload level, sorted by (direction, workload, cell, port);
        streamed (the class rows are shared by every workload of the class)."""
        order = sorted(
            (w, i) for i, (workloads, rows) in enumerate(self.by_class) if rows for w in workloads
        )
        for direction in OutsideDirection:
            for workload, i in order:
                for d, cell, port, requests in self.by_class[i][1]:
                    if d is direction:
                        yield OutsideConnection(d, workload, cell, port, requests)

    def of(self, workload: str) -> Iterator[OutsideConnection]:
        """The allowed connections of one workload, sorted by (direction, cell, port)."""
        if not self._class_of:
            for index, (workloads, _) in enumerate(self.by_class):
                self._class_of.update(dict.fromkeys(workloads, index))
        found = self._class_of.get(workload)
        if found is not None:
            for d, cell, port, requests in self.by_class[found][1]:
                yield OutsideConnection(d, workload, cell, port, requests)

    def __len__(self) -> int:
        return sum(len(w) * len(rows) for w, rows in self.by_class)


def outside_cells(model: Model, networks: tuple[Network, ...] = ()) -> tuple[AddressCell, ...]:
    """The outside cells of `model` (plus `networks`, e.g. the other side of a diff or the
    CIDRs of an intent); representatives avoid the model's workload addresses."""
    avoid = [ip for ip in (_ip(w) for w in model.topology.workloads) if ip is not None]
    return address_cells(address_networks(model) + networks, avoid)


def evaluate_outside(
    model: Model,
    cells: tuple[AddressCell, ...] | None = None,
    cuts: PortCuts | None = None,
    workloads: frozenset[str] | None = None,
) -> Outside:
    """Every allowed connection between the model's workloads (or those of `workloads`) and
    each outside cell, both ways, on every port cell (`cells`/`cuts`: default the model's
    own; pass common ones to compare two models)."""
    cells = outside_cells(model) if cells is None else cells
    cuts = port_cuts(model) if cuts is None else cuts
    # the same classes as the in-cluster matrix (capture ranges split them too)
    classes = build_classes(model, splitting_networks(model))
    evaluation = _Evaluation(model, classes, cells, cuts)
    topology = model.topology
    by_class: list[tuple[tuple[str, ...], tuple[ClassRow, ...]]] = []
    for c in classes:
        ids = tuple(
            sorted(
                topology.workloads[i].id
                for i in c.members
                if SYNTHETIC_ANNOTATION not in topology.workloads[i].annotations
                and (workloads is None or topology.workloads[i].id in workloads)
            )
        )
        if ids:
            by_class.append((ids, evaluation.rows(c.index)))
    return Outside(cells, cuts, tuple(by_class))


class _Evaluation:
    """The classes of workloads and the outside cells as peers of one class index: class `i`
    is bit `i`, cell `j` is bit `len(classes) + j`."""

    def __init__(
        self,
        model: Model,
        classes: tuple[EndpointClass, ...],
        cells: tuple[AddressCell, ...],
        cuts: PortCuts,
    ) -> None:
        self.model = model
        self.classes = classes
        self.cells = cells
        self.cuts = cuts
        self.shift = len(classes)
        peers = [c.peer for c in classes]
        peers += [external_peer(cell.representative, model.policies) for cell in cells]
        index = ClassIndex(peers, model.topology, model.policies)
        self.matcher = Matcher(index)
        self.outer = ((1 << len(cells)) - 1) << self.shift
        self.egress_ports = [c for p in CELL_PROTOCOLS for c in port_cells(cuts, p)]
        self._egress = self._l4_egress()
        self._ingress: dict[tuple[int, PortKey], int] = {}
        self._port_cells: dict[tuple[ContainerPort, ...], tuple[tuple[PortCell, PortKey], ...]] = {}
        self._l4_ingress()
        self._mesh: _OutsideMesh | None = None

    # L3/L4 -----------------------------------------------------------------------------------
    def _l4_egress(self) -> dict[tuple[int, PortCell], int]:
        """(source class, port cell) → the cells its egress policy lets it reach."""
        out: dict[tuple[int, PortCell], int] = {}
        groups = [g for g in grouped_chains(self.matcher, Direction.EGRESS) if g[2] & self._classes]
        decided: dict[tuple[object, ...], list[tuple[int, int]]] = {}
        for cell in self.egress_ports:
            key = PortKey(cell.representative, cell.protocol, "")
            signature = self.matcher.port_signature(key)
            found = decided.get(signature)
            if found is None:
                found = decided[signature] = [
                    (
                        members & self._classes,
                        self.outer
                        if chain.empty
                        else decide(self.matcher, chain, Direction.EGRESS, rep, key, self.outer),
                    )
                    for chain, rep, members in groups
                ]
            for members, reached in found:
                if reached:
                    for c in iter_bits(members):
                        out[(c, cell)] = reached >> self.shift
        return out

    @property
    def _classes(self) -> int:
        return (1 << self.shift) - 1

    def ingress_ports(self, c: int) -> tuple[tuple[PortCell, PortKey], ...]:
        """The port cells of destination class `c` (its declared ports alone), with the key
        each is evaluated at."""
        peer = self.classes[c].peer
        found = self._port_cells.get(peer.ports)
        if found is None:
            found = tuple(
                (cell, PortKey(cell.representative, p, peer.port_name(cell.representative, p)))
                for p in CELL_PROTOCOLS
                for cell in port_cells(
                    self.cuts, p, (cp.port for cp in peer.ports if cp.protocol is p)
                )
            )
            self._port_cells[peer.ports] = found
        return found

    def _l4_ingress(self) -> None:
        """(destination class, port) → the cells its ingress policy admits."""
        plan: dict[PortKey, int] = {}
        for c in range(self.shift):
            for _, key in self.ingress_ports(c):
                plan[key] = plan.get(key, 0) | 1 << c
        alike: dict[tuple[object, ...], list[PortKey]] = {}
        for key in plan:
            alike.setdefault(self.matcher.port_signature(key), []).append(key)
        groups = grouped_chains(self.matcher, Direction.INGRESS)
        for keys in alike.values():
            dsts = 0
            for key in keys:
                dsts |= plan[key]
            for chain, rep, members in groups:
                targets = members & dsts
                if not targets:
                    continue
                admitted = (
                    self.outer
                    if chain.empty
                    else decide(self.matcher, chain, Direction.INGRESS, rep, keys[0], self.outer)
                )
                if not admitted:
                    continue
                for key in keys:
                    for d in iter_bits(targets & plan[key]):
                        self._ingress[(d, key)] = admitted >> self.shift

    # rows ------------------------------------------------------------------------------------
    def rows(self, c: int) -> tuple[ClassRow, ...]:
        """The allowed connections of class `c` with the outside cells, sorted by (direction,
        cell, port)."""
        found: list[tuple[tuple[object, ...], ClassRow]] = []
        for port in self.egress_ports:
            reached = self._egress.get((c, port), 0)
            for j in iter_bits(reached):
                cell = self.cells[j]
                found.append(
                    (
                        _row_key(OutsideDirection.EGRESS, cell, port),
                        (OutsideDirection.EGRESS, cell, port, ALL),
                    )
                )
        for port, key in self.ingress_ports(c):
            admitted = self._ingress.get((c, key), 0)
            if not admitted:
                continue
            for j, requests in self._mesh_ingress(c, key, admitted):
                cell = self.cells[j]
                found.append(
                    (
                        _row_key(OutsideDirection.INGRESS, cell, port),
                        (OutsideDirection.INGRESS, cell, port, requests),
                    )
                )
        found.sort(key=lambda item: item[0])
        return tuple(row for _, row in found)

    def _mesh_ingress(self, d: int, key: PortKey, admitted: int) -> list[tuple[int, RequestSet]]:
        """The cells (indices) admitted at L3/L4 that the destination's mesh lets in, with the
        requests that pass."""
        if key.protocol is not Protocol.TCP:
            return [(j, ALL) for j in iter_bits(admitted)]
        if self._mesh is None:
            self._mesh = _OutsideMesh(self)
        return self._mesh.decide(d, key, admitted)


class _OutsideMesh:
    """mTLS admission, authorization and Calico application layer policy for plaintext
    callers from the outside cells, every cell at once."""

    def __init__(self, evaluation: _Evaluation) -> None:
        model = evaluation.model
        self.evaluation = evaluation
        self.view = MeshView(model, evaluation.classes)
        authz_nets = authz_networks(model.mesh.authorization_policies)
        cells = evaluation.cells
        callers = SourceSpace(
            [None] * len(cells),
            [str(c.representative) for c in cells],
            [tuple(c.representative in net for net in authz_nets) for c in cells],
            model.mesh_config,
        )
        self.sets = MeshSets(
            model,
            evaluation.classes,
            self.view.reps,
            self.view.services,
            authz_nets,
            spaces=(callers, callers),
        )
        # any cell's address: the path an outside caller takes does not depend on it
        self.caller = End(EndKind.EXTERNAL, ip=str(cells[0].representative))
        self._ingress_chains = chains(evaluation.matcher, Direction.INGRESS)
        self._somes: dict[tuple[RequestSpace, tuple[int, ...]], Some] = {}

    def decide(self, d: int, key: PortKey, admitted: int) -> list[tuple[int, RequestSet]]:
        view = self.view
        if view.modes[d] is MeshMode.NONE:
            return [(j, ALL) for j in iter_bits(admitted)]
        path = plan_path(
            self.evaluation.model, self.caller, view.ends[d], key.port, key.protocol, None, None
        )
        space = view.request_space(d, key, path)
        witnesses: tuple[HttpRequest | None, ...] = (None,) if space is None else space.witnesses()
        per_request = self.sets.allowed(admitted, d, key, None, path, witnesses)
        if view.alp_applies(d, path):
            per_request = [
                bits & self._alp(d, key, w or HttpRequest(method="", path=""))
                for bits, w in zip(per_request, witnesses, strict=True)
            ]
        if space is None:
            return [(j, ALL) for j in iter_bits(per_request[0])]
        out: list[tuple[int, RequestSet]] = []
        some = 0
        for bits in per_request:
            some |= bits
        for j in iter_bits(some):
            passing = tuple(i for i, bits in enumerate(per_request) if bits >> j & 1)
            out.append((j, self._requests(space, passing)))
        return out

    def _alp(self, d: int, key: PortKey, http: HttpRequest) -> int:
        """The cells whose request the destination's ingress policy, read again by Dikastes
        with its `http` clauses, allows."""
        ev = self.evaluation
        chain = self._ingress_chains[d]
        allowed = decide(ev.matcher, chain, Direction.INGRESS, d, key, ev.outer, http=http)
        return allowed >> ev.shift

    def _requests(self, space: RequestSpace, passing: tuple[int, ...]) -> RequestSet:
        witnesses = space.witnesses()
        if len(passing) == len(witnesses):
            return ALL
        if not passing:
            return NONE
        found = self._somes.get((space, passing))
        if found is None:
            found = Some(tuple(witnesses[i] for i in passing), space)
            self._somes[(space, passing)] = found
        return found


def _row_key(direction: OutsideDirection, cell: AddressCell, port: PortCell) -> tuple[object, ...]:
    return (
        direction.value,
        cell.version,
        int(cell.network.network_address),
        cell.network.prefixlen,
        port.protocol.value,
        port.representative,
    )


def _ip(workload: Workload) -> IpAddress | None:
    return ipaddress.ip_address(workload.ip) if workload.ip else None


__all__ = [
    "Outside",
    "OutsideConnection",
    "OutsideDirection",
    "evaluate_outside",
    "outside_cells",
]
