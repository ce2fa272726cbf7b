"""Reachability summarised for people at scale: connections counted per namespace pair, and the
connections of one namespace or workload, both computed from the class-level matrix (never by
expanding every pair of the cluster)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from kubezt.engine.connection import is_single_pod
from kubezt.engine.index import iter_bits
from kubezt.engine.reach import SYNTHETIC_ANNOTATION, Reachability
from kubezt.engine.requests import ALL, RequestSet


@dataclass(frozen=True, slots=True)
class NamespacePair:
    src: str
    dst: str
    allowed: int
    """Allowed (source workload, destination workload, port) connections."""
    partial: int
    """Of which only some requests pass."""
    ports: tuple[str, ...]
    """`port/PROTOCOL` of the allowed connections, sorted by number."""


def real_members(reach: Reachability) -> list[list[int]]:
    """Per class, its workloads (topology indexes) without the waypoint pods the engine adds."""
    workloads = reach.model.topology.workloads
    return [
        [wi for wi in c.members if SYNTHETIC_ANNOTATION not in workloads[wi].annotations]
        for c in reach.classes
    ]


def namespace_pairs(reach: Reachability) -> list[NamespacePair]:
    """Allowed connections per (source namespace, destination namespace), sorted by names."""
    workloads = reach.model.topology.workloads
    members = real_members(reach)
    per_ns: list[dict[str, int]] = []
    singles: list[dict[str, int]] = []
    for ms in members:
        counts: dict[str, int] = {}
        single: dict[str, int] = {}
        for wi in ms:
            counts[workloads[wi].namespace] = counts.get(workloads[wi].namespace, 0) + 1
            if is_single_pod(workloads[wi]):
                single[workloads[wi].namespace] = single.get(workloads[wi].namespace, 0) + 1
        per_ns.append(counts)
        singles.append(single)
    totals: dict[tuple[str, str], list[int]] = {}
    ports: dict[tuple[str, str], set[tuple[int, str, str]]] = {}
    for key, per_dst in reach.allowed.items():
        for d, srcs in per_dst.items():
            for s in iter_bits(srcs & reach.reported):
                partial = (key, d, s) in reach.partial
                for a, na in per_ns[s].items():
                    for b, nb in per_ns[d].items():
                        n = na * nb
                        if s == d and a == b:
                            n -= singles[s].get(a, 0)  # a pod to itself is counted below
                        if n <= 0:
                            continue
                        t = totals.setdefault((a, b), [0, 0])
                        t[0] += n
                        t[1] += n if partial else 0
                        label = reach.class_port_cell(d, key.port, key.protocol).label
                        ports.setdefault((a, b), set()).add((key.port, key.protocol.value, label))
        # a single pod reaching itself (never policed)
        for d in iter_bits(reach.plan.get(key, 0) & reach.reported):
            for a, n in singles[d].items():
                t = totals.setdefault((a, a), [0, 0])
                t[0] += n
                label = reach.class_port_cell(d, key.port, key.protocol).label
                ports.setdefault((a, a), set()).add((key.port, key.protocol.value, label))
    return [
        NamespacePair(
            a,
            b,
            t[0],
            t[1],
            tuple(dict.fromkeys(f"{label}/{proto}" for _, proto, label in sorted(ports[(a, b)]))),
        )
        for (a, b), t in sorted(totals.items())
    ]


def focused(
    reach: Reachability, *, namespace: str | None = None, workload: str | None = None
) -> Iterator[tuple[str, str, int, str, RequestSet]]:
    """The allowed connections from or to `workload` (ns/name), or from or to any workload of
    `namespace`, like `Reachability.detailed()` but expanding only the classes involved."""
    workloads = reach.model.topology.workloads

    def hit(wi: int) -> bool:
        w = workloads[wi]
        return w.id == workload if workload is not None else w.namespace == namespace

    members = real_members(reach)
    involved = [any(hit(wi) for wi in ms) for ms in members]
    rows: list[tuple[str, str, int, str, RequestSet]] = []
    for key, per_dst in reach.allowed.items():
        for d, srcs in per_dst.items():
            for s in iter_bits(srcs & reach.reported):
                if not (involved[s] or involved[d]):
                    continue
                requests: RequestSet = reach.partial.get((key, d, s), ALL)
                for wi in members[s]:
                    for wj in members[d]:
                        if wi == wj and is_single_pod(workloads[wi]):
                            continue
                        if hit(wi) or hit(wj):
                            rows.append(
                                (
                                    workloads[wi].id,
                                    workloads[wj].id,
                                    key.port,
                                    key.protocol.value,
                                    requests,
                                )
                            )
        for d in iter_bits(reach.plan.get(key, 0) & reach.reported):
            for wi in members[d]:
                if hit(wi) and is_single_pod(workloads[wi]):
                    rows.append(
                        (workloads[wi].id, workloads[wi].id, key.port, key.protocol.value, ALL)
                    )
    rows.sort(key=lambda r: r[:4])
    return iter(rows)
