"""Blast radius: what an attacker who holds one pod can reach, hop by hop.

An attacker holding a pod has its address and its ServiceAccount's certificate, so it can open
exactly the connections the engine allows from that workload. Every workload it reaches becomes
a new foothold with the same power (breadth-first search over the allowed connections). Every
other workload running as the same ServiceAccount of the same namespace presents the same
SPIFFE identity, so the certificate speaks for them too; they are listed apart, because holding
a certificate does not give their addresses.

This module reads one `Reachability` and never evaluates policy itself. It must not print, read
the environment or import dialects, YAML, Typer or rich. Results are sorted.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from kubezt.engine.cells import PortCell
from kubezt.engine.index import iter_bits
from kubezt.engine.mesh import principal
from kubezt.engine.outside import Outside, OutsideDirection
from kubezt.engine.reach import SYNTHETIC_ANNOTATION, Reachability
from kubezt.engine.requests import RequestSet
from kubezt.errors import KubeztError, did_you_mean
from kubezt.ir.topology import Workload


@dataclass(frozen=True, slots=True)
class Access:
    """One connection a foothold may open to a reached workload."""

    via: str
    """The foothold the connection starts from."""
    port: int
    protocol: str
    requests: RequestSet
    """`ALL`, or `Some` (the witness requests that pass)."""
    cell: PortCell | None = None
    """The destination ports this access holds for (`port` is the lowest; None: `port`)."""

    @property
    def port_label(self) -> str:
        """`80`, `8000-8080`, or `other` (the ports no input names)."""
        return self.cell.label if self.cell is not None else str(self.port)


@dataclass(frozen=True, slots=True)
class Reached:
    """A workload first reached at `hop` (1 = directly from the held pod)."""

    workload: str
    hop: int
    via: tuple[str, ...]
    """Footholds of the previous hop that reach it (the held workload itself at hop 1)."""
    access: tuple[Access, ...]
    """Every connection those footholds may open to it, sorted by (via, port, protocol)."""


@dataclass(frozen=True, slots=True)
class BlastRadius:
    workload: str
    identity: str
    """The SPIFFE identity of its ServiceAccount (without `spiffe://`)."""
    hops: int | None
    """The hop limit searched (None: until nothing new is reached)."""
    reached: tuple[Reached, ...]
    """Sorted by hop, then workload id; the held workload itself is never listed."""
    shared_identity: tuple[str, ...]
    """Other workloads with the same namespace and ServiceAccount, hence the same identity."""
    truncated: bool
    """The hop limit stopped the search while the last footholds still reached new workloads."""
    outside: tuple[Reached, ...] = ()
    """Outside address cells (`external:198.51.100.0/24`) the held pod or a foothold may
    connect to, each at the hop after its first foothold's (given `Outside`, else empty)."""

    @property
    def direct(self) -> tuple[str, ...]:
        return tuple(r.workload for r in self.reached if r.hop == 1)

    @property
    def workloads(self) -> tuple[str, ...]:
        """Every reached workload, sorted by id."""
        return tuple(sorted(r.workload for r in self.reached))

    @property
    def depth(self) -> int:
        """The largest hop needed (0 when nothing is reached)."""
        return max((r.hop for r in self.reached), default=0)


@dataclass(frozen=True, slots=True)
class Rank:
    """One workload's blast radius in numbers, for ranking every workload."""

    workload: str
    identity: str
    reached: int
    """Workloads reachable directly or transitively (the workload itself excluded)."""
    direct: int
    shared_identity: int


_Conn = tuple[int, str, RequestSet, PortCell | None]
"""(port, protocol, requests, port cell if several ports) of one allowed connection."""

Graph = dict[str, dict[str, list[_Conn]]]
"""src → dst → allowed (port, protocol, requests, port cell if several ports), without
connections to oneself."""


def blast_radius(
    reach: Reachability,
    workload_id: str,
    hops: int | None = None,
    outside: Outside | None = None,
) -> BlastRadius:
    """What an attacker holding a pod of `workload_id` reaches, hop by hop.

    Hop 1 is every workload the held pod may connect to; hop n+1 every workload a hop-n
    workload may connect to that no earlier hop reached. A connection counts even when only
    some requests pass (`Access.requests` lists them): the attacker chooses the request. The
    held workload's own other replicas add nothing (same address class, same identity) and are
    not listed. `hops` limits the search (0 reaches nothing); raises `KubeztError` for a
    workload id that is not in the result. With `outside` (`engine.outside`), the outside cells
    the held pod and every foothold may connect to are listed too.
    """
    workloads = reported_workloads(reach)
    held = workloads.get(workload_id)
    if held is None:
        hint = did_you_mean(workload_id, workloads)
        raise KubeztError(
            f"no workload {workload_id!r} in the input (expected namespace/name of a Pod or "
            f"controller){'; ' + hint if hint else ''}"
        )
    graph = _ClassGraph(reach)
    reached: list[Reached] = []
    seen = {workload_id}
    frontier = [workload_id]
    hop = 0
    while frontier and (hops is None or hop < hops):
        hop += 1
        access: dict[str, list[Access]] = {}
        for src in frontier:
            for dst, rows in graph.successors(src):
                if dst in seen:
                    continue
                access.setdefault(dst, []).extend(
                    Access(src, p, proto, r, cell) for p, proto, r, cell in rows
                )
        for dst in sorted(access):
            entries = tuple(sorted(access[dst], key=_access_key))
            via = tuple(sorted({a.via for a in entries}))
            reached.append(Reached(dst, hop, via, entries))
        seen.update(access)
        frontier = sorted(access)
    truncated = any(dst not in seen for src in frontier for dst, _ in graph.successors(src))
    footholds = {workload_id: 0} | {r.workload: r.hop for r in reached}
    return BlastRadius(
        workload=workload_id,
        identity=_identity(reach, held),
        hops=hops,
        reached=tuple(reached),
        shared_identity=_sharing(workloads, held),
        truncated=truncated,
        outside=_outside(outside, footholds) if outside is not None else (),
    )


def _outside(outside: Outside, footholds: dict[str, int]) -> tuple[Reached, ...]:
    """Outside cells reached from the footholds (hop: theirs + 1), sorted by hop and cell."""
    access: dict[str, list[tuple[int, Access]]] = {}
    for workload, hop in footholds.items():
        for row in outside.of(workload):
            if row.direction is not OutsideDirection.EGRESS:
                continue
            port = row.port
            entry = Access(
                row.workload,
                port.representative,
                port.protocol.value,
                row.requests,
                None if port.is_single else port,
            )
            access.setdefault(row.cell.label, []).append((hop + 1, entry))
    out = []
    for label, entries in access.items():
        first = min(h for h, _ in entries)
        items = tuple(sorted((a for _, a in entries), key=_access_key))
        out.append(Reached(label, first, tuple(sorted({a.via for a in items})), items))
    out.sort(key=lambda r: (r.hop, r.workload))
    return tuple(out)


def rank(reach: Reachability) -> list[Rank]:
    """Every workload's blast radius (transitive reach, then direct reach), largest first; ties
    by workload id. The counts equal those of `blast_radius(reach, id)` without a hop limit.

    Computed on the graph of classes, never expanded to pairs: a workload of class C reaches
    every workload of each class D != C reachable from C in one or more steps, and the other
    workloads of C when C is on a cycle (its own edge included): the workloads of a class are
    interchangeable, and a step between two classes can always pick another workload."""
    workloads = reported_workloads(reach)
    members: dict[int, list[str]] = {}
    for c in reach.classes:
        if reach.reported >> c.index & 1:
            ids_here = [
                w.id
                for wi in c.members
                if (w := reach.model.topology.workloads[wi]).id in workloads
                and SYNTHETIC_ANNOTATION not in w.annotations
            ]
            if ids_here:
                members[c.index] = ids_here
    nodes = sorted(members)
    node_of = {c: i for i, c in enumerate(nodes)}
    succ_bits = [0] * len(nodes)
    for per_dst in reach.allowed.values():
        for d, srcs in per_dst.items():
            j = node_of.get(d)
            if j is None:
                continue
            for s in iter_bits(srcs & reach.reported):
                i = node_of.get(s)
                if i is not None:
                    succ_bits[i] |= 1 << j
    successors = [list(iter_bits(bits)) for bits in succ_bits]
    closure = _closures(successors)
    size = [len(members[c]) for c in nodes]
    totals: dict[int, int] = {}

    def count(i: int, bits: int) -> int:
        """Workloads of the classes in `bits`, a workload of class `i` itself not counted."""
        total = totals.get(bits)
        if total is None:
            total = sum(size[j] for j in iter_bits(bits))
            totals[bits] = total
        return total - (1 if bits >> i & 1 else 0)

    accounts: dict[tuple[str, str], int] = {}
    for w in workloads.values():
        key = (w.namespace, w.service_account)
        accounts[key] = accounts.get(key, 0) + 1
    ranks: list[Rank] = []
    for i, ci in enumerate(nodes):
        reached, direct = count(i, closure[i]), count(i, succ_bits[i])
        for w_id in members[ci]:
            w = workloads[w_id]
            ranks.append(
                Rank(
                    workload=w_id,
                    identity=_identity(reach, w),
                    reached=reached,
                    direct=direct,
                    shared_identity=accounts[(w.namespace, w.service_account)] - 1,
                )
            )
    ranks.sort(key=lambda r: (-r.reached, -r.direct, r.workload))
    return ranks


def reported_workloads(reach: Reachability) -> dict[str, Workload]:
    """The workloads of the input by id (not the waypoint pods the engine adds)."""
    return {
        w.id: w for w in reach.model.topology.workloads if SYNTHETIC_ANNOTATION not in w.annotations
    }


class _ClassGraph:
    """`connection_graph` read from the class-level result on demand: the successors of a
    workload are the workloads of the classes its class reaches, each with the connections of
    its class edge (in the order `Reachability.detailed` lists them). Only the workloads a
    search visits are expanded, never every pair."""

    def __init__(self, reach: Reachability) -> None:
        self._reach = reach
        workloads = reach.model.topology.workloads
        self._class_of: dict[str, int] = {}
        self._members: dict[int, list[str]] = {}
        for c in reach.classes:
            ids = [
                workloads[wi].id
                for wi in c.members
                if SYNTHETIC_ANNOTATION not in workloads[wi].annotations
            ]
            self._members[c.index] = ids
            for w_id in ids:
                self._class_of.setdefault(w_id, c.index)
        # source class → destination class → (port, protocol, requests, port cell if several
        # ports) in detailed()'s order
        self._edges: dict[int, dict[int, list[_Conn]]] = {}
        for port, per_dst in reach.allowed.items():
            for d, srcs in per_dst.items():
                cell = reach.class_port_cell(d, port.port, port.protocol)
                kept = None if cell.is_single else cell
                for s in iter_bits(srcs & reach.reported):
                    self._edges.setdefault(s, {}).setdefault(d, []).append(
                        (port.port, port.protocol.value, reach.admission(port, d, s), kept)
                    )
        self._rows: dict[int, list[tuple[str, list[_Conn]]]] = {}

    def successors(self, src: str) -> list[tuple[str, list[_Conn]]]:
        """(destination workload, its connections sorted by port and protocol) for every
        workload `src` may connect to (itself excluded), sorted by workload id."""
        s = self._class_of.get(src)
        if s is None:
            return []
        rows = self._rows.get(s)
        if rows is None:
            found: dict[str, list[_Conn]] = {}
            for d, edge in self._edges.get(s, {}).items():
                for dst in self._members[d]:
                    found.setdefault(dst, []).extend(edge)
            rows = self._rows[s] = [
                (dst, sorted(found[dst], key=lambda r: r[:2])) for dst in sorted(found)
            ]
        return [(dst, conns) for dst, conns in rows if dst != src]


def connection_graph(reach: Reachability) -> Graph:
    graph: Graph = {}
    for src, dst, port, protocol, requests in reach.detailed():
        if src != dst:
            cell = reach.port_cell(dst, port, protocol)
            graph.setdefault(src, {}).setdefault(dst, []).append(
                (port, protocol, requests, None if cell.is_single else cell)
            )
    return graph


def _access_key(a: Access) -> tuple[str, int, str]:
    return (a.via, a.port, a.protocol)


def _identity(reach: Reachability, workload: Workload) -> str:
    return principal(reach.model.mesh_config, workload.namespace, workload.service_account)


def _sharing(workloads: dict[str, Workload], held: Workload) -> tuple[str, ...]:
    return tuple(
        sorted(
            w.id
            for w in workloads.values()
            if w.id != held.id
            and w.namespace == held.namespace
            and w.service_account == held.service_account
        )
    )


def _closures(successors: list[list[int]]) -> list[int]:
    """For each node, the bitset of nodes reachable in one or more steps (itself included only
    on a cycle): strongly connected components (Tarjan, iteratively), then one union per
    component edge in reverse topological order."""
    n = len(successors)
    order = [-1] * n
    low = [0] * n
    on_stack = [False] * n
    stack: list[int] = []
    component = [-1] * n
    members: list[int] = []  # component → bitset of its nodes
    counter = 0
    for root in range(n):
        if order[root] >= 0:
            continue
        work: list[tuple[int, Iterator[int]]] = [(root, iter(successors[root]))]
        order[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack[root] = True
        while work:
            node, it = work[-1]
            advanced = False
            for nxt in it:
                if order[nxt] < 0:
                    order[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack[nxt] = True
                    work.append((nxt, iter(successors[nxt])))
                    advanced = True
                    break
                if on_stack[nxt]:
                    low[node] = min(low[node], order[nxt])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == order[node]:
                bits = 0
                while True:
                    top = stack.pop()
                    on_stack[top] = False
                    component[top] = len(members)
                    bits |= 1 << top
                    if top == node:
                        break
                members.append(bits)
    # Tarjan numbers components in reverse topological order: successors come first.
    reach_of = [0] * len(members)
    for c, bits in enumerate(members):
        acc = bits if bits & (bits - 1) else 0  # a component of several nodes is a cycle
        node_bits = bits
        while node_bits:
            low_bit = node_bits & -node_bits
            node = low_bit.bit_length() - 1
            node_bits ^= low_bit
            for nxt in successors[node]:
                d = component[nxt]
                if d != c:
                    acc |= members[d] | reach_of[d]
                else:  # an edge inside the component: a self-loop makes one node a cycle too
                    acc |= bits
        reach_of[c] = acc
    return [reach_of[component[i]] for i in range(n)]
