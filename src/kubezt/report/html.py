"""The self-contained HTML report (`kubezt report`, `kubezt diff -o html`). Renders only.

The page is one file: the data below as JSON inside a `<script type="application/json">`
element, and the page's own style sheet and script (package data in `report/assets/`) inlined.
Nothing is fetched when it opens.

The data is class-level, as the engine computes it: workloads that no policy tells apart share
a class and every edge joins two classes on one port. The page aggregates it by namespace first
and expands a namespace's workloads only when asked, so a 10,000-pod cluster stays small.

Edges carry the layer that decided them. Allowed edges are always present; a denied class pair
is present (with the layer that denied it) while the whole edge set fits `budget` explanations,
and the page says when it does not. Each edge's explanation is the one `kubezt explain` prints
for a representative pair of its classes (identical for every member pair, since no policy tells
members apart).

Each outside address cell (`engine.outside`: `external:0.0.0.0/0`, …) is a node of its own.
Its edges are the allowed connections of each class with the cell on each port cell (the
outside evaluation lists only those), explained for the cell's representative address and the
port cell's lowest port within the same budget.
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import resources
from typing import Any

from kubezt.analysis.audit import AuditReport
from kubezt.analysis.blast_radius import Rank
from kubezt.analysis.diff import Diff
from kubezt.analysis.summary import real_members
from kubezt.engine.cells import AddressCell, PortCell
from kubezt.engine.connection import End, EndKind, explain_connection, plan_path
from kubezt.engine.explain import Layer, Verdict
from kubezt.engine.index import iter_bits
from kubezt.engine.outside import Outside, OutsideDirection, evaluate_outside
from kubezt.engine.reach import Reachability
from kubezt.engine.requests import AllRequests, RequestSet, Some
from kubezt.ir.ports import PortKey, Protocol
from kubezt.report.analysis_documents import change_document
from kubezt.report.audit import audit_document
from kubezt.report.documents import request_document, step_document

REPORT_SCHEMA = "kubezt.io/report/v1"
DEFAULT_BUDGET = 4000
"""Most explanations precomputed for one page; past it, edges carry the command to run."""

LAYER_GROUP = {
    Layer.K8S_NETPOL: "l4",
    Layer.CALICO: "l4",
    Layer.PEER_AUTHENTICATION: "mtls",
    Layer.TLS_MISMATCH: "mtls",
    Layer.AUTHZ_SIDECAR: "authz",
    Layer.ZTUNNEL: "authz",
    Layer.WAYPOINT: "authz",
    Layer.CALICO_ALP: "authz",
    Layer.DATAPLANE: "l4",
}
"""What the page colours a denial by: L3/L4, mTLS, or authorization."""

Progress = Callable[[str, int, int], None]


def _no_progress(_stage: str, _done: int, _total: int) -> None:
    return None


@dataclass
class _Builder:
    reach: Reachability
    budget: int
    progress: Progress
    explanations: list[dict[str, Any]]
    seen: dict[str, int]
    ports: dict[str, int]

    def port(self, key: PortKey) -> int:
        return self.label(f"{key.port}/{key.protocol.value}")

    def label(self, label: str) -> int:
        return self.ports.setdefault(label, len(self.ports))

    def explain(self, src: End, dst: End, key: PortKey, cmd: str) -> tuple[Verdict, int]:
        model = self.reach.input_model
        verdict = explain_connection(model, src, dst, key.port, key.protocol)
        doc: dict[str, Any] = {
            "verdict": verdict.verdict,
            "steps": [step_document(s) for s in verdict.steps],
            "command": cmd,
        }
        if verdict.denied_by is not None:
            doc["deniedBy"] = verdict.denied_by.value
        text = json.dumps(doc, sort_keys=True)
        index = self.seen.get(text)
        if index is None:
            index = self.seen[text] = len(self.explanations)
            self.explanations.append(doc)
        return verdict, index


def _status(verdict: Verdict) -> str:
    """allow, or the group of the layer that denied: l4, mtls, authz."""
    if verdict.allowed:
        return "allow"
    return LAYER_GROUP[verdict.denied_by or Layer.DATAPLANE]


def _triples(reach: Reachability, members: list[list[int]]) -> Iterator[tuple[PortKey, int, int]]:
    """Every (port, destination class, source class) the matrix judged, reported classes only."""
    for key, dsts in reach.plan.items():
        for d in iter_bits(dsts & reach.reported):
            if not members[d]:
                continue
            for s in iter_bits(reach.reported):
                if members[s] and not (s == d and len(members[s]) == 1):
                    yield key, d, s


OutsideRow = tuple[OutsideDirection, int, AddressCell, PortCell, RequestSet]


def _outside_rows(outside: Outside, class_of: dict[str, int]) -> list[OutsideRow]:
    """The allowed connections of every class with each outside cell, once per class of the
    matrix (every workload of an outside class is in one matrix class: the same splits)."""
    rows: dict[tuple[object, ...], OutsideRow] = {}
    for ids, class_rows in outside.by_class:
        for c in sorted({class_of[w] for w in ids if w in class_of}):
            for direction, cell, port, requests in class_rows:
                key = (direction.value, c, cell.label, port.protocol.value, port.span)
                rows.setdefault(key, (direction, c, cell, port, requests))
    return [rows[k] for k in sorted(rows, key=lambda k: tuple(map(str, k)))]


def report_data(
    reach: Reachability,
    audit_report: AuditReport,
    ranks: list[Rank],
    *,
    title: str,
    paths: list[str],
    budget: int = DEFAULT_BUDGET,
    progress: Progress = _no_progress,
) -> dict[str, Any]:
    """Everything the page shows, as JSON-ready data (see the module docstring)."""
    topo = reach.model.topology
    members = real_members(reach)
    workloads = topo.workloads
    b = _Builder(reach, budget, progress, [], {}, {})
    ns_names = sorted({workloads[wi].namespace for ms in members for wi in ms})
    ns_index = {n: i for i, n in enumerate(ns_names)}
    # workloads in id order; their class
    rows: list[tuple[str, int, int, int]] = []
    for c, ms in enumerate(members):
        for wi in ms:
            w = workloads[wi]
            rows.append((w.id, ns_index[w.namespace], c, wi))
    rows.sort()
    wl_docs = [
        [wid, ns, c, workloads[wi].kind, workloads[wi].service_account, workloads[wi].replicas]
        for wid, ns, c, wi in rows
    ]
    path_text = " ".join(paths)
    rep = {c: workloads[ms[0]] for c, ms in enumerate(members) if ms}

    allowed_triples: list[tuple[PortKey, int, int]] = []
    denied_triples: list[tuple[PortKey, int, int]] = []
    for key, d, s in _triples(reach, members):
        if reach.allowed.get(key, {}).get(d, 0) >> s & 1:
            allowed_triples.append((key, d, s))
        else:
            denied_triples.append((key, d, s))
    outside = evaluate_outside(reach.input_model)
    class_of = {workloads[wi].id: c for c, ms in enumerate(members) for wi in ms}
    outside_rows = _outside_rows(outside, class_of)
    total = len(allowed_triples) + len(denied_triples) + len(outside_rows)
    complete = total <= budget
    explained = 0

    def cmd(src: str, dst: str, key: PortKey) -> str:
        proto = "" if key.protocol is Protocol.TCP else f" --protocol {key.protocol.value}"
        return f"kubezt explain {src} {dst} --port {key.port}{proto} {path_text}".rstrip()

    edges: list[list[Any]] = []
    work = allowed_triples + (denied_triples if complete else [])
    for n, (key, d, s) in enumerate(work):
        if n % 500 == 0:
            progress("explaining edges", n, len(work))
        src_end = End(EndKind.WORKLOAD, workload=rep[s])
        dst_end = End(EndKind.WORKLOAD, workload=rep[d])
        is_allowed = n < len(allowed_triples)
        expl = -1
        group = "allow"
        if explained < budget:
            verdict, expl = b.explain(src_end, dst_end, key, cmd(rep[s].id, rep[d].id, key))
            explained += 1
            group = _status(verdict)
        partial = reach.partial.get((key, d, s)) if is_allowed else None
        status = ("partial" if partial is not None else "allow") if is_allowed else group
        mtls = plan_path(reach.input_model, src_end, dst_end, key.port, key.protocol, None, None)
        edge: list[Any] = [s, d, b.port(key), status, int(mtls.mtls), expl]
        if partial is not None:
            edge.append([request_document(r) for r in partial])
        edges.append(edge)
    progress("explaining edges", len(work), len(work))

    cells = {cell.label: i for i, cell in enumerate(outside.cells)}
    outside_edges: list[list[Any]] = []
    for direction, c, cell, port, requests in outside_rows:
        key = PortKey(port.representative, port.protocol)
        end = End(EndKind.WORKLOAD, workload=rep[c])
        ext = End(EndKind.EXTERNAL, ip=str(cell.representative))
        address = f"external:{cell.representative}"
        expl = -1
        if explained < budget:
            if direction is OutsideDirection.INGRESS:
                _, expl = b.explain(ext, end, key, cmd(address, rep[c].id, key))
            else:
                _, expl = b.explain(end, ext, key, cmd(rep[c].id, address, key))
            explained += 1
        status = "allow" if isinstance(requests, AllRequests) else "partial"
        port_label = b.label(f"{port.span}/{port.protocol.value}")
        edge = ["in" if direction is OutsideDirection.INGRESS else "out", c, port_label, status]
        edge += [0, expl, cells[cell.label]]
        if isinstance(requests, Some):
            edge.append([request_document(r) for r in requests.passing])
        outside_edges.append(edge)

    audit_doc = audit_document(audit_report)
    return {
        "schemaVersion": REPORT_SCHEMA,
        "title": title,
        "paths": paths,
        "cells": [[cell.label, str(cell.representative)] for cell in outside.cells],
        "namespaces": ns_names,
        "workloads": wl_docs,
        "ports": list(b.ports),
        "edges": edges,
        "outsideEdges": outside_edges,
        "complete": complete,
        "counts": {
            "allowed": len(allowed_triples),
            "denied": len(denied_triples),
            "explained": explained,
            "budget": budget,
        },
        "explanations": b.explanations,
        "audit": {
            "score": audit_doc["score"],
            "namespaces": audit_doc["namespaces"],
            "findings": audit_doc["findings"],
        },
        "ranking": [
            {
                "workload": r.workload,
                "reached": r.reached,
                "direct": r.direct,
                "sharedIdentity": r.shared_identity,
            }
            for r in ranks
        ],
    }


def diff_data(base: dict[str, Any], result: Diff, old: str, new: str) -> dict[str, Any]:
    """The NEW side's report data with the changes between OLD and NEW."""
    changes = []
    for src, dst, change in result.changes():
        doc = change_document(change)
        doc["src"], doc["dst"] = src, dst
        changes.append(doc)
    # a cell only OLD names (or one both sides' CIDRs cut) still gets its node
    cells = list(base["cells"])
    known = {label for label, _ in cells}
    for doc in changes:
        for end in (doc["src"], doc["dst"]):
            if end.startswith("external:") and end not in known:
                known.add(end)
                cells.append([end, end.removeprefix("external:")])
    return base | {
        "cells": cells,
        "diff": {
            "old": old,
            "new": new,
            "changes": changes,
            "added": [p.workload for p in result.added],
            "removed": [p.workload for p in result.removed],
        },
    }


def _asset(name: str) -> str:
    return resources.files("kubezt.report").joinpath("assets", name).read_text(encoding="utf-8")


def render_html(data: dict[str, Any]) -> str:
    """The page: one HTML document with its data, style sheet and script inlined."""
    payload = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    # inside <script>, "</" must not appear literally
    payload = payload.replace("</", "<\\/")
    page = _asset("report.html").replace("TITLE", html.escape(str(data["title"])), 1)
    return (
        page.replace("/*STYLE*/", _asset("report.css"))
        .replace("/*DATA*/", payload)
        .replace("/*SCRIPT*/", _asset("report.js"))
    )
