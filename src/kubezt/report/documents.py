"""JSON-ready documents for reach and explain results (`-o json|yaml`)."""

from __future__ import annotations

import json
from typing import Any

from kubezt.engine.cells import PortCell
from kubezt.engine.explain import Step, Verdict
from kubezt.engine.outside import Outside, OutsideConnection
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
    doc: dict[str, Any] = {
        "schemaVersion": REACH_SCHEMA,
        "workloads": result.workload_ids,
        "allowed": [
            _connection(src, dst, result.port_cell(dst, port, protocol), requests)
            for src, dst, port, protocol, requests in result.detailed()
        ],
    }
    if outside is not None:
        doc["outside"] = [outside_document(row) for row in outside.connections]
    doc["warnings"] = [d.render() for d in warnings]
    return doc


def outside_document(row: OutsideConnection) -> dict[str, Any]:
    """One allowed connection between a workload and an outside address cell."""
    doc: dict[str, Any] = {
        "direction": row.direction.value,
        "workload": row.workload,
        "cell": row.cell.label,
    }
    if row.cell.excluded:
        doc["except"] = [str(n) for n in row.cell.excluded]
    doc["address"] = str(row.cell.representative)
    doc.update(port_fields(row.port))
    doc["requests"] = requests_document(row.requests)
    return doc


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
