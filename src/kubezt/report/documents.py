"""JSON-ready documents for reach and explain results (`-o json|yaml`)."""

from __future__ import annotations

import json
from typing import Any

from kubezt.engine.cells import PortCell
from kubezt.engine.explain import Step, Verdict
from kubezt.engine.outside import Outside
from kubezt.engine.reach import Reachability
from kubezt.engine.requests import AllRequests, NoRequests, RequestSet
from kubezt.errors import Diagnostic
from kubezt.ir.requests import HttpRequest
from kubezt.report.steps import step_text

REACH_SCHEMA = "kubezt.io/reach/v1"
EXPLAIN_SCHEMA = "kubezt.io/explain/v1"


def reach_document(
    result: Reachability, warnings: tuple[Diagnostic, ...] = (), outside: Outside | None = None
) -> dict[str, Any]:
    fields = _PortFields()
    doc: dict[str, Any] = {
        "schemaVersion": REACH_SCHEMA,
        "workloads": result.workload_ids,
        "allowed": [
            {
                "src": src,
                "dst": dst,
                **fields(result.port_cell(dst, port, protocol)),
                "requests": requests_document(requests),
            }
            for src, dst, port, protocol, requests in result.detailed()
        ],
    }
    if outside is not None:
        doc["outside"] = outside_documents(outside, fields)
    doc["warnings"] = [d.render() for d in warnings]
    return doc


def outside_documents(outside: Outside, fields: _PortFields | None = None) -> list[dict[str, Any]]:
    """`outside_document` for every allowed connection of `outside`, each cell's and port
    cell's text made once."""
    fields = fields or _PortFields()
    cells: dict[int, tuple[str, list[str] | None, str]] = {}
    out: list[dict[str, Any]] = []
    for row in outside.connections():
        cell = row.cell
        text = cells.get(id(cell))
        if text is None:
            excluded = [str(n) for n in cell.excluded] if cell.excluded else None
            text = cells[id(cell)] = (cell.label, excluded, str(cell.representative))
        label, excluded, address = text
        doc: dict[str, Any] = {
            "direction": row.direction.value,
            "workload": row.workload,
            "cell": label,
        }
        if excluded is not None:
            doc["except"] = list(excluded)
        doc["address"] = address
        doc.update(fields(row.port))
        doc["requests"] = requests_document(row.requests)
        out.append(doc)
    return out


class _PortFields:
    """`port_fields`, made once per cell (by identity: the cells of one result are shared)."""

    def __init__(self) -> None:
        self._made: dict[int, tuple[PortCell, dict[str, Any]]] = {}

    def __call__(self, cell: PortCell) -> dict[str, Any]:
        made = self._made.get(id(cell))
        if made is None:
            made = self._made[id(cell)] = (cell, port_fields(cell))
        return made[1]


def port_fields(cell: PortCell) -> dict[str, Any]:
    """`port` (a number; for a cell of several ports `8000-8080` or `other`, with the ports
    as ranges in `ports`) and `protocol`."""
    if cell.is_single:
        return {"port": cell.representative, "protocol": cell.protocol.value}
    return {"port": cell.label, "ports": cell.span, "protocol": cell.protocol.value}


def port_order(doc: dict[str, Any]) -> int:
    """The lowest port of a document's `port` fields (to sort rows as the engine does)."""
    if isinstance(doc["port"], int):
        return doc["port"]
    return int(doc["ports"].split(",")[0].split("-")[0])


def _connection(src: str, dst: str, cell: PortCell, requests: RequestSet) -> dict[str, Any]:
    doc: dict[str, Any] = {"src": src, "dst": dst, **port_fields(cell)}
    doc["requests"] = requests_document(requests)
    return doc


def requests_document(requests: RequestSet) -> str | list[dict[str, Any]]:
    """`"all"`, `"none"`, or the witness requests that pass (`*` = any value)."""
    if isinstance(requests, AllRequests):
        return "all"
    if isinstance(requests, NoRequests):
        return "none"
    return [request_document(r) for r in requests.summary]


def request_document(request: HttpRequest) -> dict[str, Any]:
    doc: dict[str, Any] = {"method": request.method, "path": request.path}
    if request.host:
        doc["host"] = request.host
    if request.headers == (("*", "*"),):
        doc["headers"] = "*"
    elif request.headers:
        doc["headers"] = dict(request.headers)
    return doc


def step_document(step: Step) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "layer": step.layer.value,
        "reason": step.reason,
        "effect": step.effect.value,
        "detail": step_text(step),
    }
    if step.direction is not None:
        doc["direction"] = step.direction.value
    if step.tier:
        doc["tier"] = step.tier
    if step.rule_index is not None:
        doc["rule"] = step.rule_index
    if step.action is not None:
        doc["action"] = step.action.value
    if step.source is not None:
        doc["object"] = step.source.ref
        if step.source.path:
            doc["path"] = step.source.path
        if step.source.location is not None:
            doc["location"] = str(step.source.location)
    return doc


def explain_document(
    src: str,
    dst: str,
    port: int,
    protocol: str,
    verdict: Verdict,
    warnings: tuple[Diagnostic, ...] = (),
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "schemaVersion": EXPLAIN_SCHEMA,
        "src": src,
        "dst": dst,
        "port": port,
        "protocol": protocol,
        "verdict": verdict.verdict,
    }
    if verdict.denied_by is not None:
        doc["denied_by"] = verdict.denied_by.value
    doc["steps"] = [step_document(s) for s in verdict.steps]
    doc["warnings"] = [d.render() for d in warnings]
    return doc


def to_json(doc: Any) -> str:
    return json.dumps(doc, indent=2, sort_keys=False) + "\n"
