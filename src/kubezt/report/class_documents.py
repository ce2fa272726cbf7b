"""Reachability at class level (`reach --by class`) and per pair as JSON lines (`--by pair`).

The class document lists each class of workloads that no policy can tell apart once, and the
allowed edges between classes; its size grows with the answer, not with pods². It expands to
exactly the per-pair rows of `reach_document` (`expand_classes`):

* an edge `src → dst` on a port cell stands for every workload of `src` to every workload of
  `dst`, except a single pod (`singlePods`) to itself;
* a single pod always reaches itself on every port cell its class is evaluated on (`ports`):
  such traffic never leaves its network namespace.

What many classes or edges share is listed once and referenced by index: the port cells
(`portCells`: `port`, `ports` for a cell of several ports, `protocol`, as in the per-pair
rows), the lists of port cells classes are evaluated on (`portSets`), and the sets of HTTP
requests that pass when not all do (`requestSets`). `singlePods` is `"all"` when every
workload of the class is a single pod.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from kubezt.engine.cells import PortCell
from kubezt.engine.connection import is_single_pod
from kubezt.engine.index import bit_indices
from kubezt.engine.reach import Reachability
from kubezt.engine.requests import Some
from kubezt.errors import Diagnostic
from kubezt.ir.ports import PortKey
from kubezt.report.documents import _connection, port_fields, port_order, requests_document

CLASS_SCHEMA = "kubezt.io/reach-classes/v2"
PAIRS_SCHEMA = "kubezt.io/reach-pairs/v1"


def reach_class_document(
    result: Reachability, warnings: tuple[Diagnostic, ...] = ()
) -> dict[str, Any]:
    workloads = result.model.topology.workloads
    reported = result.reported
    cells: dict[PortCell, int] = {}
    cell_docs: list[dict[str, Any]] = []

    def cell_index(cls: int, key: PortKey) -> int:
        cell = result.class_port_cell(cls, key.port, key.protocol)
        at = cells.get(cell)
        if at is None:
            at = cells[cell] = len(cell_docs)
            cell_docs.append(port_fields(cell))
        return at

    # each class's port keys in plan order; the cell of a key depends on the class's declared
    # ports only, so classes with the same declared ports and keys share one port set
    keys_of: dict[int, list[PortKey]] = {}
    for key, bits in result.plan.items():
        for ci in bit_indices(bits & reported):
            keys_of.setdefault(ci, []).append(key)
    port_sets: dict[tuple[int, ...], int] = {}
    set_of_keys: dict[tuple[object, tuple[PortKey, ...]], int] = {}
    out_id: dict[int, int] = {}
    classes: list[dict[str, Any]] = []
    for cls in result.classes:
        if not reported >> cls.index & 1:
            continue
        members = [workloads[w] for w in cls.members if not result._synthetic(w)]
        if not members:
            continue
        keys = tuple(keys_of.get(cls.index, ()))
        group = (cls.peer.ports, keys)
        ports = set_of_keys.get(group)
        if ports is None:
            listed = tuple(cell_index(cls.index, key) for key in keys)
            ports = set_of_keys[group] = port_sets.setdefault(listed, len(port_sets))
        out_id[cls.index] = len(classes)
        entry: dict[str, Any] = {
            "id": len(classes),
            "workloads": sorted(w.id for w in members),
            "ports": ports,
        }
        singles = sorted(w.id for w in members if is_single_pod(w))
        if singles:
            entry["singlePods"] = "all" if len(singles) == len(members) else singles
        classes.append(entry)
    request_sets: dict[Some, int] = {}
    edge_cell: dict[tuple[object, PortKey], int] = {}
    edges: list[tuple[int, int, int, int | str]] = []
    for key, per_dst in result.allowed.items():
        for d, srcs in per_dst.items():
            dst = out_id.get(d)
            if dst is None:
                continue
            at = (result.classes[d].peer.ports, key)
            cell = edge_cell.get(at)
            if cell is None:
                cell = edge_cell[at] = cell_index(d, key)
            for s in bit_indices(srcs & reported):
                src = out_id.get(s)
                if src is None:
                    continue
                requests = result.partial.get((key, d, s))
                ref: int | str = "all"
                if requests is not None:
                    ref = request_sets.setdefault(requests, len(request_sets))
                edges.append((src, dst, cell, ref))
    # cells in port order, then every reference renumbered
    order = sorted(
        range(len(cell_docs)),
        key=lambda i: (
            port_order(cell_docs[i]),
            cell_docs[i]["protocol"],
            cell_docs[i].get("ports", ""),
        ),
    )
    new_at = {old: new for new, old in enumerate(order)}
    edges.sort(key=lambda e: (e[0], e[1], new_at[e[2]]))
    return {
        "schemaVersion": CLASS_SCHEMA,
        "portCells": [cell_docs[i] for i in order],
        "portSets": [[new_at[i] for i in listed] for listed in port_sets],
        "classes": classes,
        "requestSets": [requests_document(rs) for rs in request_sets],
        "allowed": [
            {"src": src, "dst": dst, "cell": new_at[cell], "requests": ref}
            for src, dst, cell, ref in edges
        ],
        "warnings": [d.render() for d in warnings],
    }


def expand_classes(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The per-pair rows (`reach_document`'s `allowed`) a class document stands for, sorted."""
    classes = doc["classes"]
    cells = doc["portCells"]
    port_sets = doc["portSets"]
    request_sets = doc["requestSets"]
    rows: list[dict[str, Any]] = []

    def singles_of(c: dict[str, Any]) -> list[str]:
        singles = c.get("singlePods", [])
        return list(c["workloads"]) if singles == "all" else list(singles)

    for edge in doc["allowed"]:
        src, dst = classes[edge["src"]], classes[edge["dst"]]
        singles = set(singles_of(src))
        ref = edge["requests"]
        requests = "all" if ref == "all" else request_sets[ref]
        port = cells[edge["cell"]]
        for s in src["workloads"]:
            for d in dst["workloads"]:
                if s == d and s in singles:
                    continue
                rows.append({"src": s, "dst": d, **port, "requests": requests})
    for c in classes:
        for w in singles_of(c):
            for cell in port_sets[c["ports"]]:
                rows.append({"src": w, "dst": w, **cells[cell], "requests": "all"})
    rows.sort(key=lambda r: (r["src"], r["dst"], port_order(r), r["protocol"]))
    return rows


def pair_lines(
    result: Reachability, warnings: tuple[Diagnostic, ...] = ()
) -> Iterator[dict[str, Any]]:
    """`--by pair`: a header, then one allowed connection per item, as they are produced."""
    yield {
        "schemaVersion": PAIRS_SCHEMA,
        "workloads": result.workload_ids,
        "warnings": [d.render() for d in warnings],
    }
    for src, dst, port, protocol, requests in result.detailed():
        yield _connection(src, dst, result.port_cell(dst, port, protocol), requests)
