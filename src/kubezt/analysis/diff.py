"""Diff two reachability results (e.g. main and a pull request): which connections a change
newly allows or denies, and which policy decided each side.

A connection is (source, destination, port, protocol) between workloads present on both sides;
for HTTP ports the allowed requests are part of what is compared (all, some listed, none). Each
change is explained by running `engine.connection.explain_connection` on each side's model, so
the deciding layer and policy come from the engine's one explainer; this module never evaluates
policy itself. A workload present on one side only is reported as added or removed.

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
from kubezt.ir.ports import Protocol
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
    for key, cell in _refined(old_side, new_side, common):
        src, dst, _, _ = key
        if (
            src == dst
            and is_single_pod(old_side.workloads[src])
            and is_single_pod(new_side.workloads[src])
        ):
            continue  # a single pod reaching itself is never policed (only its ports change)
        before, after = old_side.allowance(key), new_side.allowance(key)
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


def _refined(old: _Side, new: _Side, common: set[str]) -> Iterator[tuple[Key, PortCell | None]]:
    """The connections to compare, sorted: every allowed row of either side, cut into the
    cells of both sides' destination ports together (each side's cells refined by the ports
    the destination declares on the other side), with the cell each key stands for."""
    cuts = old.cuts
    out: dict[Key, PortCell | None] = {}
    for side in (old, new):
        for key in side.rows:
            src, dst, port, proto = key
            if src not in common or dst not in common:
                continue
            if cuts is None:
                out[key] = None
                continue
            cell = side.port_cell(dst, port, proto)
            declared = old.declared_ports(dst, proto) | new.declared_ports(dst, proto)
            # the refined cells lie inside one cell of each side, or outside it
            for part in port_cells(cuts, Protocol(proto), declared):
                if cell.contains(part.representative):
                    out[(src, dst, part.representative, proto)] = part
    for key in sorted(out):
        yield key, out[key]


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
        self.rows: dict[Key, RequestSet] = {}
        self.declared: set[tuple[str, int, str]] = set()
        if reach is None:
            return
        self.rows = {(s, d, p, proto): r for s, d, p, proto, r in reach.detailed()}
        topology_workloads = reach.model.topology.workloads
        for port_key, bits in reach.plan.items():
            for ci in iter_bits(bits):
                for wi in reach.classes[ci].members:
                    self.declared.add(
                        (topology_workloads[wi].id, port_key.port, port_key.protocol.value)
                    )

    @property
    def input_model(self) -> Model:
        return self.reach.input_model if self.reach is not None else self.model

    def port_cell(self, dst: str, port: int, proto: str) -> PortCell:
        assert self.reach is not None
        return self.reach.port_cell(dst, port, proto)

    @property
    def cuts(self) -> PortCuts | None:
        return self.reach.cuts if self.reach is not None else None

    def declared_ports(self, workload: str, protocol: str) -> frozenset[int]:
        w = self.workloads.get(workload)
        if w is None:
            return frozenset()
        return frozenset(cp.port for cp in w.ports if cp.protocol.value == protocol)

    def row_key(self, key: Key) -> Key:
        """The key of this side's row for the cell holding the key's port."""
        if self.reach is None or self.reach.cuts is None:
            return key
        src, dst, port, proto = key
        return (src, dst, self.port_cell(dst, port, proto).representative, proto)

    def allowance(self, key: Key) -> Allowance:
        declared = (key[1], key[2], key[3]) in self.declared or self.cuts is not None
        row = self.row_key(key)
        if row in self.rows:
            return Allowance(True, self.rows[row], declared)
        return Allowance(False, ALL, declared)

    def presence(self, chosen: set[str]) -> tuple[Presence, ...]:
        out: dict[str, set[str]] = {w: set() for w in chosen}
        into: dict[str, set[str]] = {w: set() for w in chosen}
        for src, dst, _, _ in self.rows:
            if src == dst:
                continue
            if src in out:
                out[src].add(dst)
            if dst in into:
                into[dst].add(src)
        return tuple(Presence(w, len(out[w]), len(into[w])) for w in sorted(chosen))

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
