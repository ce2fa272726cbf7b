"""Diff two reachability results (e.g. main and a pull request): which connections a change
newly allows or denies, and which policy decided each side.

A connection is (source, destination, port, protocol) between workloads present on both sides;
for HTTP ports the allowed requests are part of what is compared (all, some listed, none). Each
change is explained by running `engine.connection.explain_connection` on each side's model, so
the deciding layer and policy come from the engine's one explainer; this module never evaluates
policy itself. A workload present on one side only is reported as added or removed.

The matrices are compared at class level: workloads are grouped by their class on both sides,
each pair of such groups is compared once per port cell, and only the pairs of groups whose
allowance differs are expanded to workload pairs (the cost follows the classes and the
changes, not pods squared).

`diff(a, a)` is empty and `diff(b, a) == diff(a, b).mirrored()`. The module must not print,
read the environment or import dialects, YAML, Typer or rich. Results are sorted.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum

from kubezt.engine.cells import (
    PortCell,
    PortCuts,
    address_cells,
    address_networks,
    port_cells,
    port_cuts,
)
from kubezt.engine.connection import End, EndKind, explain_connection, is_single_pod
from kubezt.engine.explain import Effect, Layer, Step, Verdict
from kubezt.engine.incremental import (
    ConnectionChange,
    IncrementalReach,
    changes_between,
    objects,
)
from kubezt.engine.index import iter_bits
from kubezt.engine.outside import OutsideDirection, evaluate_outside
from kubezt.engine.reach import SYNTHETIC_ANNOTATION, Reachability, evaluate
from kubezt.engine.requests import ALL, AllRequests, RequestSet, Some
from kubezt.ir.model import Model
from kubezt.ir.ports import PortKey, Protocol
from kubezt.ir.requests import HttpRequest, ServiceAddress
from kubezt.ir.topology import Workload


class ChangeKind(StrEnum):
    ALLOWED = "allowed"
    """Denied before, allowed now (for every request or for some)."""
    DENIED = "denied"
    """Allowed before (for every request or for some), denied now."""
    WIDENED = "widened"
    """Some requests before, every request now."""
    NARROWED = "narrowed"
    """Every request before, some now."""
    REQUESTS_ALLOWED = "requests-allowed"
    """Some requests before and now, and requests denied before are allowed now."""
    REQUESTS_DENIED = "requests-denied"
    """Some requests before and now, and requests allowed before are denied now."""

    @property
    def opens(self) -> bool:
        """The change allows something that was denied."""
        return self in (ChangeKind.ALLOWED, ChangeKind.WIDENED, ChangeKind.REQUESTS_ALLOWED)

    @property
    def mirror(self) -> ChangeKind:
        return _MIRROR[self]


_MIRROR = {
    ChangeKind.ALLOWED: ChangeKind.DENIED,
    ChangeKind.DENIED: ChangeKind.ALLOWED,
    ChangeKind.WIDENED: ChangeKind.NARROWED,
    ChangeKind.NARROWED: ChangeKind.WIDENED,
    ChangeKind.REQUESTS_ALLOWED: ChangeKind.REQUESTS_DENIED,
    ChangeKind.REQUESTS_DENIED: ChangeKind.REQUESTS_ALLOWED,
}


@dataclass(frozen=True, slots=True)
class Allowance:
    """What one side allows on a connection."""

    allowed: bool
    requests: RequestSet = ALL
    """When allowed: `ALL`, or `Some` (the witness requests that pass)."""
    declared: bool = True
    """The destination declares the port on this side (else the matrix never evaluated it)."""


@dataclass(frozen=True, slots=True)
class Decision:
    """One side's verdict from the explainer, reduced to the steps that decided it: for an
    allow every allowing step (each layer's rule or default), for a deny the denying step and
    the steps of the same layer and direction that led to it (tiers applied, passes)."""

    allowed: bool
    denied_by: Layer | None
    steps: tuple[Step, ...]
    service: ServiceAddress | None = None
    """The Service the explained client addressed (None: the pod IP)."""
    request: HttpRequest | None = None
    """The HTTP request explained (None: the connection, whatever is sent on it)."""


@dataclass(frozen=True, slots=True)
class Change:
    """One connection whose verdict differs between the sides."""

    port: int
    protocol: str
    kind: ChangeKind
    old: Allowance
    new: Allowance
    requests: tuple[HttpRequest, ...]
    """For request-level changes: the witness requests gained (or lost), one per cell of both
    sides' patterns; else empty."""
    old_decision: Decision
    new_decision: Decision
    cell: PortCell | None = None
    """The destination ports the change holds for (`port` is its lowest); None: `port`."""

    @property
    def port_label(self) -> str:
        """`80`, `8000-8080`, or `other` (the ports no input names)."""
        return self.cell.label if self.cell is not None else str(self.port)

    def mirrored(self) -> Change:
        return Change(
            self.port,
            self.protocol,
            self.kind.mirror,
            self.new,
            self.old,
            self.requests,
            self.new_decision,
            self.old_decision,
            self.cell,
        )


@dataclass(frozen=True, slots=True)
class PairChanges:
    src: str
    dst: str
    changes: tuple[Change, ...]
    """Sorted by port, protocol, kind."""


@dataclass(frozen=True, slots=True)
class Presence:
    """A workload that only one side has, with its connection counts on that side."""

    workload: str
    reaches: int
    """Other workloads it may connect to."""
    reached_by: int
    """Other workloads that may connect to it."""


@dataclass(frozen=True, slots=True)
class Diff:
    pairs: tuple[PairChanges, ...]
    """Workload pairs with at least one change, sorted by (src, dst)."""
    added: tuple[Presence, ...] = ()
    removed: tuple[Presence, ...] = ()

    @property
    def is_empty(self) -> bool:
        return not (self.pairs or self.added or self.removed)

    def changes(self) -> Iterator[tuple[str, str, Change]]:
        for pair in self.pairs:
            for change in pair.changes:
                yield pair.src, pair.dst, change

    @property
    def opened(self) -> list[tuple[str, str, Change]]:
        """Changes that allow something new."""
        return [c for c in self.changes() if c[2].kind.opens]

    @property
    def closed(self) -> list[tuple[str, str, Change]]:
        """Changes that deny something allowed before."""
        return [c for c in self.changes() if not c[2].kind.opens]

    @property
    def opens(self) -> bool:
        """Anything newly allowed: an opening change, or an added workload that connects or
        is connected to (its connections are new too)."""
        return any(c.kind.opens for _, _, c in self.changes()) or any(
            p.reaches or p.reached_by for p in self.added
        )

    def mirrored(self) -> Diff:
        """The diff with old and new exchanged."""
        return Diff(
            tuple(
                PairChanges(
                    p.src, p.dst, tuple(sorted((c.mirrored() for c in p.changes), key=_change_key))
                )
                for p in self.pairs
            ),
            added=self.removed,
            removed=self.added,
        )


Key = tuple[str, str, int, str]


def diff(old: Reachability, new: Reachability, *, outside: bool = True) -> Diff:
    """What changed from `old` to `new`, connection by connection, each explained on both sides.

    Ports are compared cell by cell (`engine.cells`, both sides cut alike), so a change on a
    port no destination declares is seen. With `outside`, connections between the workloads and
    each outside address cell (`external:198.51.100.0/24`, cut by the CIDRs of both sides) are
    compared too: such a pair has an `external:` source or destination.

    Connections from or to a workload present on one side only are not compared; the workload
    is listed in `added` or `removed`. Two sides that both allow only some requests are compared
    on the listed requests: a request listed on one side that the other side's explainer denies
    is gained (or lost), so spelling the same requests differently is not a change.
    """
    if old.cuts is not None and new.cuts is not None and old.cuts != new.cuts:
        cuts = old.cuts.merged(new.cuts)
        old, new = evaluate(old.input_model, cuts=cuts), evaluate(new.input_model, cuts=cuts)
    old_side, new_side = _Side(old.model, old), _Side(new.model, new)
    common = old_side.workloads.keys() & new_side.workloads.keys()
    changes: dict[tuple[str, str], list[Change]] = {}
    for key, cell, before, after in _class_changes(old_side, new_side, common):
        src, dst, _, _ = key
        for change in _compare(key, before, after, old_side, new_side):
            if cell is not None:
                change = dataclasses.replace(change, cell=cell)
            changes.setdefault((src, dst), []).append(change)
    if outside and old.cuts is not None:
        for src, dst, change in _outside_changes(old_side, new_side, common, old.cuts):
            changes.setdefault((src, dst), []).append(change)
    pairs = tuple(
        PairChanges(src, dst, tuple(sorted(items, key=_change_key)))
        for (src, dst), items in sorted(changes.items())
    )
    return Diff(
        pairs,
        added=new_side.presence(new_side.workloads.keys() - common),
        removed=old_side.presence(old_side.workloads.keys() - common),
    )


INCREMENTAL_SHARE = 0.5
"""`diff_models` evaluates the new side incrementally when more than this share of the
objects of the larger side are unchanged."""


JointKey = tuple[int, int, int, str]
"""(joint source class, joint destination class, port, protocol)."""


def _class_changes(
    old: _Side, new: _Side, common: set[str]
) -> Iterator[tuple[Key, PortCell | None, Allowance, Allowance]]:
    """The connections whose allowance differs between the sides, with both allowances and
    the port cell each stands for, compared class by class and expanded to workload pairs only
    where they differ.

    The workloads both sides have are grouped by their class on each side (a joint class: no
    policy of either side tells its members apart). Every allowed class edge of either side
    names the joint classes it joins; its port cell is cut into the cells of both sides'
    destination ports together (each side's cells refined by the ports the destination
    declares on the other side), and each refined cell is compared once per pair of joint
    classes. A pod and itself take the matrix's rule for a single pod (`Reachability.detailed`)
    and are compared on their own; a single pod on both sides is never policed."""
    joint: dict[tuple[int, int], int] = {}
    members: list[list[str]] = []
    of_side: tuple[dict[int, list[int]], dict[int, list[int]]] = ({}, {})
    for w in sorted(common):
        pair = (old.class_of[w], new.class_of[w])
        j = joint.get(pair)
        if j is None:
            j = joint[pair] = len(members)
            members.append([])
            of_side[0].setdefault(pair[0], []).append(j)
            of_side[1].setdefault(pair[1], []).append(j)
        members[j].append(w)
    classes = list(joint)
    cuts = old.cuts
    parts_memo: dict[tuple[int, str, PortCell], list[PortCell]] = {}

    def refined(side: int, dj: int, port: int, proto: str) -> list[tuple[int, PortCell | None]]:
        if cuts is None:
            return [(port, None)]
        sides = (old, new)
        cell = sides[side].class_port_cell(classes[dj][side], port, proto)
        memo = (dj, proto, cell)
        parts = parts_memo.get(memo)
        if parts is None:
            declared = old.class_declared(classes[dj][0], proto) | new.class_declared(
                classes[dj][1], proto
            )
            # the refined cells lie inside one cell of each side, or outside it
            parts = parts_memo[memo] = [
                part
                for part in port_cells(cuts, Protocol(proto), declared)
                if cell.contains(part.representative)
            ]
        return [(part.representative, part) for part in parts]

    todo: dict[JointKey, PortCell | None] = {}
    for side, this in enumerate((old, new)):
        for s, d, port, proto in this.class_edges():
            for dj in of_side[side].get(d, ()):
                cut = refined(side, dj, port, proto)
                for sj in of_side[side].get(s, ()):
                    for rep, part in cut:
                        todo[(sj, dj, rep, proto)] = part
    # a pod that is a single pod on one side only: its own rows on that side
    lone_joints = {
        j
        for j, ids in enumerate(members)
        if any(is_single_pod(old.workloads[w]) != is_single_pod(new.workloads[w]) for w in ids)
    }
    for j in lone_joints:
        for side, this in enumerate((old, new)):
            for port, proto in this.own_ports(classes[j][side]):
                for rep, part in refined(side, j, port, proto):
                    todo[(j, j, rep, proto)] = part
    out: list[tuple[Key, PortCell | None, Allowance, Allowance]] = []
    for (sj, dj, port, proto), part in todo.items():
        (os, ns), (od, nd) = classes[sj], classes[dj]
        before = old.class_allowance(os, od, port, proto)
        after = new.class_allowance(ns, nd, port, proto)
        differ = before.allowed != after.allowed or before.requests != after.requests
        if differ:
            for src in members[sj]:
                for dst in members[dj]:
                    if src != dst:
                        out.append(((src, dst, port, proto), part, before, after))
        if sj != dj or not (differ or sj in lone_joints):
            continue
        for w in members[sj]:
            singles = (is_single_pod(old.workloads[w]), is_single_pod(new.workloads[w]))
            if singles == (True, True):
                continue  # a single pod reaching itself is never policed
            mine = (
                old.self_allowance(od, port, proto) if singles[0] else before,
                new.self_allowance(nd, port, proto) if singles[1] else after,
            )
            if mine[0].allowed != mine[1].allowed or mine[0].requests != mine[1].requests:
                out.append(((w, w, port, proto), part, *mine))
    out.sort(key=lambda row: row[0])
    yield from out


OutsideIndex = dict[tuple[str, str, str, str], list[tuple[PortCell, RequestSet]]]
"""(direction, workload, address cell label, protocol) → allowed port cells."""


def _outside_changes(
    old: _Side, new: _Side, common: set[str], cuts: PortCuts
) -> Iterator[tuple[str, str, Change]]:
    """Changes between the workloads and the outside cells: both sides evaluated on the cells
    of both sides' CIDRs, each allowed port cell refined by the ports either side declares."""
    networks = address_networks(old.input_model) + address_networks(new.input_model)
    avoid = [
        ipaddress.ip_address(w.ip) for side in (old, new) for w in side.workloads.values() if w.ip
    ]
    cells = address_cells(networks, avoid)
    by_label = {c.label: c for c in cells}
    indexes: list[OutsideIndex] = []
    for side in (old, new):
        result = evaluate_outside(side.input_model, cells, cuts, frozenset(common))
        index: OutsideIndex = {}
        for row in result.connections():
            key = (row.direction.value, row.workload, row.cell.label, row.port.protocol.value)
            index.setdefault(key, []).append((row.port, row.requests))
        indexes.append(index)
    todo: dict[tuple[str, str, str, str, int], PortCell] = {}
    for index in indexes:
        for (direction, workload, label, proto), rows in index.items():
            declared: frozenset[int] = frozenset()
            if direction == OutsideDirection.INGRESS.value:
                declared = old.declared_ports(workload, proto) | new.declared_ports(workload, proto)
            parts = port_cells(cuts, Protocol(proto), declared)
            for cell, _ in rows:
                for part in parts:
                    if cell.contains(part.representative):
                        todo[(direction, workload, label, proto, part.representative)] = part
    for (direction, workload, label, proto, port), part in sorted(todo.items()):
        before, after = (
            _outside_allowance(index.get((direction, workload, label, proto), []), port)
            for index in indexes
        )
        if before == after:
            continue
        outer = End(EndKind.EXTERNAL, ip=str(by_label[label].representative))
        ends = {
            w: End(EndKind.WORKLOAD, workload=side.workloads[workload])
            for w, side in (("old", old), ("new", new))
        }
        if direction == OutsideDirection.EGRESS.value:
            src, dst = workload, label
            pairs = ((ends["old"], outer), (ends["new"], outer))
        else:
            src, dst = label, workload
            pairs = ((outer, ends["old"]), (outer, ends["new"]))
        decisions = [
            _decision(explain_connection(side.model, a, b, port, Protocol(proto)), None, None)
            for side, (a, b) in zip((old, new), pairs, strict=True)
        ]
        kind = _outside_kind(before, after)
        yield (
            src,
            dst,
            Change(port, proto, kind, before, after, (), decisions[0], decisions[1], part),
        )


def _outside_allowance(rows: list[tuple[PortCell, RequestSet]], port: int) -> Allowance:
    for cell, requests in rows:
        if cell.contains(port):
            return Allowance(True, requests)
    return Allowance(False)


def _outside_kind(before: Allowance, after: Allowance) -> ChangeKind:
    if not before.allowed or not after.allowed:
        return ChangeKind.ALLOWED if after.allowed else ChangeKind.DENIED
    old, new = before.requests, after.requests
    if not isinstance(old, Some) or not isinstance(new, Some):
        return ChangeKind.WIDENED if not isinstance(new, Some) else ChangeKind.NARROWED
    gained = set(new.passing) - set(old.passing)
    return ChangeKind.REQUESTS_ALLOWED if gained else ChangeKind.REQUESTS_DENIED


def diff_models(old: Model, new: Model) -> Diff:
    """`diff(evaluate(old), evaluate(new))`; when the sides share most objects, the new side
    is the old side's evaluation with the differing objects applied one by one
    (`engine.incremental`), which re-evaluates only what they reach."""
    before, after = objects(old), objects(new)
    shared = sum(1 for k, v in before.items() if after.get(k) == v)
    cuts = port_cuts(old).merged(port_cuts(new))
    if shared <= INCREMENTAL_SHARE * max(len(before), len(after), 1):
        return diff(evaluate(old, cuts=cuts), evaluate(new, cuts=cuts))
    state = IncrementalReach(old, cuts=cuts)
    old_reach = state.reachability()
    for change in changes_between(old, new):
        state.apply(change)
    return diff(old_reach, state.reachability())


def explain_connections(
    old: Model, new: Model, connections: Iterable[ConnectionChange]
) -> tuple[tuple[str, str, Change], ...]:
    """The connection changes an incremental step yielded (`IncrementalReach.apply`), as
    `diff` reports and explains them, without comparing whole matrices: what `watch` prints
    for each change. A connection from or to a workload one side lacks is left out (the
    workload itself was added or removed)."""
    old_side, new_side = _Side(old), _Side(new)
    out: list[tuple[str, str, Change]] = []
    for c in connections:
        if c.src not in old_side.workloads or c.dst not in old_side.workloads:
            continue
        if c.src not in new_side.workloads or c.dst not in new_side.workloads:
            continue
        before = Allowance(c.was_allowed, c.was_requests if c.was_allowed else ALL)
        after = Allowance(c.allowed, c.requests if c.allowed else ALL)
        for change in _compare(c.key, before, after, old_side, new_side):
            out.append((c.src, c.dst, change))
    out.sort(key=lambda t: (t[0], t[1], *_change_key(t[2])))
    return tuple(out)


def _change_key(change: Change) -> tuple[int, str, str]:
    return (change.port, change.protocol, change.kind.value)


def _compare(
    key: Key, before: Allowance, after: Allowance, old: _Side, new: _Side
) -> Iterator[Change]:
    if before.allowed == after.allowed and before.requests == after.requests:
        return
    if not before.allowed or not after.allowed:
        kind = ChangeKind.ALLOWED if after.allowed else ChangeKind.DENIED
        allowance = after if after.allowed else before
        some = allowance.requests
        request = some.passing[0] if isinstance(some, Some) else None
        yield _change(key, kind, before, after, (), old, new, request)
        return
    if isinstance(after.requests, AllRequests) or isinstance(before.requests, AllRequests):
        if isinstance(after.requests, AllRequests) and isinstance(before.requests, AllRequests):
            return
        widened = isinstance(after.requests, AllRequests)
        restricted = before.requests if widened else after.requests
        assert isinstance(restricted, Some)
        denied = [w for w in restricted.space.witnesses() if w not in restricted.passing]
        kind = ChangeKind.WIDENED if widened else ChangeKind.NARROWED
        yield _change(key, kind, before, after, (), old, new, denied[0] if denied else None)
        return
    assert isinstance(before.requests, Some) and isinstance(after.requests, Some)
    # Both sides allow some requests: compare them on every cell of both sides' patterns.
    space = before.requests.space.merged(after.requests.space)
    gained: list[HttpRequest] = []
    lost: list[HttpRequest] = []
    for w in space.witnesses():
        was, now = old.allows(key, w), new.allows(key, w)
        if now and not was:
            gained.append(w)
        elif was and not now:
            lost.append(w)
    for kind, moved in ((ChangeKind.REQUESTS_ALLOWED, gained), (ChangeKind.REQUESTS_DENIED, lost)):
        if moved:
            yield _change(key, kind, before, after, tuple(moved), old, new, moved[0])


def _change(
    key: Key,
    kind: ChangeKind,
    before: Allowance,
    after: Allowance,
    requests: tuple[HttpRequest, ...],
    old: _Side,
    new: _Side,
    request: HttpRequest | None,
) -> Change:
    """The change with both sides explained on `request` (None: the connection itself), each
    on a route that gives that side's verdict for it."""
    old_allowed = before.allowed and (request is None or old.allows(key, request))
    new_allowed = after.allowed and (request is None or new.allows(key, request))
    return Change(
        key[2],
        key[3],
        kind,
        before,
        after,
        requests,
        old.explain(key, request, old_allowed),
        new.explain(key, request, new_allowed),
    )


class _Side:
    """One side of the diff: its matrix rows, workloads and explainer."""

    def __init__(self, model: Model, reach: Reachability | None = None) -> None:
        self.model: Model = model
        self.reach = reach
        self.workloads: dict[str, Workload] = {
            w.id: w
            for w in self.model.topology.workloads
            if SYNTHETIC_ANNOTATION not in w.annotations
        }
        self._verdicts: dict[tuple[Key, ServiceAddress | None, HttpRequest | None], Verdict] = {}
        self.class_of: dict[str, int] = {}
        """Each workload's class in `reach`."""
        self._port_keys: dict[tuple[int, int, str], list[PortKey]] = {}
        """(destination class, port, protocol) → the ports of the plan it is evaluated on."""
        if reach is None:
            return
        topology_workloads = reach.model.topology.workloads
        for c in reach.classes:
            for wi in c.members:
                self.class_of[topology_workloads[wi].id] = c.index
        for port_key, bits in reach.plan.items():
            for ci in iter_bits(bits):
                key = (ci, port_key.port, port_key.protocol.value)
                self._port_keys.setdefault(key, []).append(port_key)

    @property
    def input_model(self) -> Model:
        return self.reach.input_model if self.reach is not None else self.model

    def class_port_cell(self, ci: int, port: int, proto: str) -> PortCell:
        assert self.reach is not None
        return self.reach.class_port_cell(ci, port, proto)

    @property
    def cuts(self) -> PortCuts | None:
        return self.reach.cuts if self.reach is not None else None

    def declared_ports(self, workload: str, protocol: str) -> frozenset[int]:
        w = self.workloads.get(workload)
        if w is None:
            return frozenset()
        return frozenset(cp.port for cp in w.ports if cp.protocol.value == protocol)

    def class_declared(self, ci: int, protocol: str) -> frozenset[int]:
        """The ports the members of a class declare (a class fixes them)."""
        assert self.reach is not None
        peer = self.reach.classes[ci].peer
        return frozenset(cp.port for cp in peer.ports if cp.protocol.value == protocol)

    def class_edges(self) -> Iterator[tuple[int, int, int, str]]:
        """The allowed class edges the matrix reports: (source class, destination class, port,
        protocol)."""
        reach = self.reach
        assert reach is not None
        for port_key, per_dst in reach.allowed.items():
            for d, srcs in per_dst.items():
                for s in iter_bits(srcs & reach.reported):
                    yield s, d, port_key.port, port_key.protocol.value

    def own_ports(self, ci: int) -> Iterator[tuple[int, str]]:
        """The ports a single pod of a reported class reaches itself on: every port its class
        is evaluated on."""
        reach = self.reach
        assert reach is not None
        if reach.reported >> ci & 1:
            for port_key, bits in reach.plan.items():
                if bits >> ci & 1:
                    yield port_key.port, port_key.protocol.value

    def _row_port(self, d: int, port: int, proto: str) -> int:
        """This side's row port for the cell of destination class `d` holding `port`."""
        if self.cuts is None:
            return port
        return self.class_port_cell(d, port, proto).representative

    def class_allowance(self, s: int, d: int, port: int, proto: str) -> Allowance:
        """What this side allows from a member of class `s` to another workload, member of
        class `d`, on `port` (a row of `Reachability.detailed`)."""
        reach = self.reach
        assert reach is not None
        keys = self._port_keys.get((d, self._row_port(d, port, proto), proto), [])
        declared = bool(self._port_keys.get((d, port, proto))) or self.cuts is not None
        found: RequestSet | None = None
        if reach.reported >> s & 1:
            for port_key in keys:
                if reach.allowed.get(port_key, {}).get(d, 0) >> s & 1:
                    found = reach.partial.get((port_key, d, s), ALL)
        if found is None:
            return Allowance(False, ALL, declared)
        return Allowance(True, found, declared)

    def self_allowance(self, d: int, port: int, proto: str) -> Allowance:
        """What this side allows from a single pod of class `d` to itself on `port`."""
        reach = self.reach
        assert reach is not None
        keys = self._port_keys.get((d, self._row_port(d, port, proto), proto), [])
        declared = bool(self._port_keys.get((d, port, proto))) or self.cuts is not None
        return Allowance(bool(keys) and bool(reach.reported >> d & 1), ALL, declared)

    def presence(self, chosen: set[str]) -> tuple[Presence, ...]:
        """Connection counts of the chosen workloads, from the class edges: the distinct other
        workloads each may connect to and be connected from."""
        reach = self.reach
        if reach is None or not chosen:
            return tuple(Presence(w, 0, 0) for w in sorted(chosen))
        workloads = reach.model.topology.workloads
        out: dict[int, set[int]] = {}
        into: dict[int, set[int]] = {}
        for s, d, _, _ in self.class_edges():
            out.setdefault(s, set()).add(d)
            into.setdefault(d, set()).add(s)
        # a source row names every member of a reported class; a destination only the
        # workloads of the input
        sources = [len(c.members) for c in reach.classes]
        targets = [
            sum(1 for wi in c.members if SYNTHETIC_ANNOTATION not in workloads[wi].annotations)
            for c in reach.classes
        ]
        found: list[Presence] = []
        for w in sorted(chosen):
            ci = self.class_of[w]
            reaches = sum(targets[d] for d in out.get(ci, ()))
            reached_by = sum(sources[s] for s in into.get(ci, ()))
            if ci in out.get(ci, ()):
                reaches -= 1
                reached_by -= 1
            found.append(Presence(w, reaches, reached_by))
        return tuple(found)

    def routes(self, key: Key) -> list[ServiceAddress | None]:
        """How a client may address the destination on this port: its pod IP, or a Service
        selecting it with a port that targets this port (the routes the matrix tried)."""
        server = self.workloads[key[1]]
        out: list[ServiceAddress | None] = [None]
        for svc in self.model.topology.services_selecting(server):
            for sp in svc.ports:
                target = sp.target_on(server)
                if target == key[2] and sp.protocol.value == key[3]:
                    out.append(ServiceAddress(svc.namespace, svc.name, sp.port))
        return out

    def verdict(
        self, key: Key, route: ServiceAddress | None, request: HttpRequest | None
    ) -> Verdict:
        cache = (key, route, request)
        cached = self._verdicts.get(cache)
        if cached is None:
            src, dst = self.workloads[key[0]], self.workloads[key[1]]
            cached = explain_connection(
                self.model,
                End(EndKind.WORKLOAD, workload=src),
                End(EndKind.WORKLOAD, workload=dst),
                key[2],
                Protocol(key[3]),
                service=route,
                http=request,
            )
            self._verdicts[cache] = cached
        return cached

    def allows(self, key: Key, request: HttpRequest) -> bool:
        """Whether this side lets `request` through on some route."""
        return any(self.verdict(key, r, request).allowed for r in self.routes(key))

    def explain(self, key: Key, request: HttpRequest | None, want: bool) -> Decision:
        """The explanation of the connection (or `request`) on the route that gives the
        side's verdict `want`; a connection allowed for every request whose plain-connection
        explanation disagrees is explained on the default request instead."""
        attempts: list[HttpRequest | None] = [request]
        if request is None and want:
            attempts.append(HttpRequest())
        first: tuple[Verdict, ServiceAddress | None, HttpRequest | None] | None = None
        for http in attempts:
            for route in self.routes(key):
                v = self.verdict(key, route, http)
                if first is None:
                    first = (v, route, http)
                if v.allowed is want:
                    return _decision(v, route, http)
        assert first is not None
        return _decision(*first)


def _decision(verdict: Verdict, route: ServiceAddress | None, http: HttpRequest | None) -> Decision:
    return Decision(verdict.allowed, verdict.denied_by, deciding_steps(verdict), route, http)


def deciding_steps(verdict: Verdict) -> tuple[Step, ...]:
    """The steps that decided a verdict: every allowing step of an allowed connection; the
    denying step of a denied one, with the preceding steps of the same layer and direction
    that carried no verdict (the tiers and policies that applied, passes)."""
    steps = verdict.steps
    if verdict.allowed:
        return tuple(s for s in steps if s.effect is Effect.ALLOW)
    last = max((i for i, s in enumerate(steps) if s.effect is Effect.DENY), default=-1)
    if last < 0:
        return ()
    deny = steps[last]
    start = last
    while start > 0:
        prev = steps[start - 1]
        if (
            prev.effect is not Effect.CONTINUE
            or prev.layer is not deny.layer
            or prev.direction != deny.direction
        ):
            break
        start -= 1
    return tuple(steps[start : last + 1])
