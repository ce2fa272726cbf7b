"""Reachability at class level (`reach --by class`) and per pair as JSON lines (`--by pair`).

The class document lists each class of workloads that no policy can tell apart once, and the
allowed edges between classes; its size grows with the answer, not with pods². It expands to
exactly the per-pair rows of `reach_document` (`expand_classes`):

* an edge `src → dst` on a port stands for every workload of `src` to every workload of `dst`,
  except a single pod (`singlePods`) to itself;
* a single pod always reaches itself on every port its class is evaluated on (`ports`): such
  traffic never leaves its network namespace.

Request sets (the HTTP requests that pass when not all do) are listed once in `requestSets`
and referenced by index.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from kubezt.engine.connection import is_single_pod
from kubezt.engine.index import iter_bits
from kubezt.engine.reach import Reachability
from kubezt.engine.requests import Some
from kubezt.errors import Diagnostic
from kubezt.report.documents import _connection, port_fields, port_order, requests_document

CLASS_SCHEMA = "kubezt.io/reach-classes/v1"
PAIRS_SCHEMA = "kubezt.io/reach-pairs/v1"


def reach_class_document(
    result: Reachability, warnings: tuple[Diagnostic, ...] = ()
) -> dict[str, Any]:
    workloads = result.model.topology.workloads
    out_id: dict[int, int] = {}
    classes: list[dict[str, Any]] = []
    ports_of: dict[int, list[dict[str, Any]]] = {}
    for key, bits in result.plan.items():
        for ci in iter_bits(bits & result.reported):
            cell = result.class_port_cell(ci, key.port, key.protocol)
            ports_of.setdefault(ci, []).append(port_fields(cell))
    for cls in result.classes:
        if not result.reported >> cls.index & 1:
            continue
        members = [workloads[w] for w in cls.members if not result._synthetic(w)]
        if not members:
            continue
        out_id[cls.index] = len(classes)
        entry: dict[str, Any] = {
            "id": len(classes),
            "workloads": sorted(w.id for w in members),
            "ports": ports_of.get(cls.index, []),
        }
        singles = sorted(w.id for w in members if is_single_pod(w))
        if singles:
            entry["singlePods"] = singles
        classes.append(entry)
    request_sets: dict[Some, int] = {}
    edges: list[dict[str, Any]] = []
    for key, per_dst in result.allowed.items():
        for d, srcs in per_dst.items():
            dst = out_id.get(d)
            if dst is None:
                continue
            for s in iter_bits(srcs & result.reported):
                src = out_id.get(s)
                if src is None:
                    continue
                requests = result.partial.get((key, d, s))
                ref: int | str = "all"
                if requests is not None:
                    ref = request_sets.setdefault(requests, len(request_sets))
                edges.append(
                    {
                        "src": src,
                        "dst": dst,
                        **port_fields(result.class_port_cell(d, key.port, key.protocol)),
                        "requests": ref,
                    }
                )
    edges.sort(key=lambda e: (e["src"], e["dst"], port_order(e), e["protocol"]))
    return {
        "schemaVersion": CLASS_SCHEMA,
        "classes": classes,
        "requestSets": [requests_document(rs) for rs in request_sets],
        "allowed": edges,
        "warnings": [d.render() for d in warnings],
    }


def expand_classes(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The per-pair rows (`reach_document`'s `allowed`) a class document stands for, sorted."""
    classes = doc["classes"]
    request_sets = doc["requestSets"]
    rows: list[dict[str, Any]] = []
    for edge in doc["allowed"]:
        src, dst = classes[edge["src"]], classes[edge["dst"]]
        singles = set(src.get("singlePods", ()))
        ref = edge["requests"]
        requests = "all" if ref == "all" else request_sets[ref]
        for s in src["workloads"]:
            for d in dst["workloads"]:
                if s == d and s in singles:
                    continue
                port = {k: edge[k] for k in ("port", "ports", "protocol") if k in edge}
                rows.append({"src": s, "dst": d, **port, "requests": requests})
    for c in classes:
        for w in c.get("singlePods", ()):
            for port in c["ports"]:
                rows.append({"src": w, "dst": w, **port, "requests": "all"})
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
