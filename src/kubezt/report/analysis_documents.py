"""JSON-ready documents for blast radius, its ranking and diff results (`-o json|yaml`).

Renders only: every number and verdict comes from `kubezt.analysis`. Keys are camelCase and
every document carries `schemaVersion`.
"""

from __future__ import annotations

from typing import Any

from kubezt.analysis.blast_radius import Access, BlastRadius, Rank, Reached
from kubezt.analysis.diff import Allowance, Change, Decision, Diff, Presence
from kubezt.errors import Diagnostic
from kubezt.report.documents import (
    port_fields,
    request_document,
    requests_document,
    step_document,
)

BLAST_RADIUS_SCHEMA = "kubezt.io/blast-radius/v1"
RANKING_SCHEMA = "kubezt.io/blast-radius-ranking/v1"
DIFF_SCHEMA = "kubezt.io/diff/v1"


def blast_radius_document(
    result: BlastRadius, warnings: tuple[Diagnostic, ...] = ()
) -> dict[str, Any]:
    return {
        "schemaVersion": BLAST_RADIUS_SCHEMA,
        "workload": result.workload,
        "identity": result.identity,
        "hops": result.hops,
        "truncated": result.truncated,
        "summary": {
            "reached": len(result.reached),
            "direct": len(result.direct),
            "depth": result.depth,
            "outside": len(result.outside),
        },
        "reached": [_reached(r) for r in result.reached],
        "outside": [
            {"cell": d.pop("workload"), **d} for d in (_reached(r) for r in result.outside)
        ],
        "sharedIdentity": list(result.shared_identity),
        "warnings": [d.render() for d in warnings],
    }


def _reached(r: Reached) -> dict[str, Any]:
    return {
        "workload": r.workload,
        "hop": r.hop,
        "via": list(r.via),
        "access": [_access(a) for a in r.access],
    }


def _access(access: Access) -> dict[str, Any]:
    port = (
        port_fields(access.cell)
        if access.cell is not None
        else {"port": access.port, "protocol": access.protocol}
    )
    return {"from": access.via, **port, "requests": requests_document(access.requests)}


def ranking_document(ranks: list[Rank], warnings: tuple[Diagnostic, ...] = ()) -> dict[str, Any]:
    return {
        "schemaVersion": RANKING_SCHEMA,
        "workloads": [
            {
                "rank": n,
                "workload": r.workload,
                "identity": r.identity,
                "reached": r.reached,
                "direct": r.direct,
                "sharedIdentity": r.shared_identity,
            }
            for n, r in enumerate(ranks, 1)
        ],
        "warnings": [d.render() for d in warnings],
    }


def diff_document(
    result: Diff,
    old_warnings: tuple[Diagnostic, ...] = (),
    new_warnings: tuple[Diagnostic, ...] = (),
) -> dict[str, Any]:
    return {
        "schemaVersion": DIFF_SCHEMA,
        "summary": {
            "newlyAllowed": len(result.opened),
            "newlyDenied": len(result.closed),
            "pairs": len(result.pairs),
            "addedWorkloads": len(result.added),
            "removedWorkloads": len(result.removed),
        },
        "addedWorkloads": [_presence(p) for p in result.added],
        "removedWorkloads": [_presence(p) for p in result.removed],
        "pairs": [
            {"src": p.src, "dst": p.dst, "changes": [change_document(c) for c in p.changes]}
            for p in result.pairs
        ],
        "warnings": {
            "old": [d.render() for d in old_warnings],
            "new": [d.render() for d in new_warnings],
        },
    }


def _presence(presence: Presence) -> dict[str, Any]:
    return {
        "workload": presence.workload,
        "reaches": presence.reaches,
        "reachedBy": presence.reached_by,
    }


def change_document(change: Change) -> dict[str, Any]:
    doc: dict[str, Any] = {
        **(
            port_fields(change.cell)
            if change.cell is not None
            else {"port": change.port, "protocol": change.protocol}
        ),
        "change": change.kind.value,
        "opens": change.kind.opens,
    }
    if change.requests:
        doc["requests"] = [request_document(r) for r in change.requests]
    doc["old"] = _side(change.old, change.old_decision)
    doc["new"] = _side(change.new, change.new_decision)
    return doc


def _side(allowance: Allowance, decision: Decision) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "allowed": allowance.allowed,
        "requests": requests_document(allowance.requests) if allowance.allowed else "none",
    }
    if not allowance.declared:
        doc["portDeclared"] = False
    doc["explanation"] = decision_document(decision)
    return doc


def decision_document(decision: Decision) -> dict[str, Any]:
    doc: dict[str, Any] = {"verdict": "allow" if decision.allowed else "deny"}
    if decision.denied_by is not None:
        doc["deniedBy"] = decision.denied_by.value
    if decision.service is not None:
        svc = decision.service
        doc["service"] = f"{svc.namespace}/{svc.name}:{svc.port}"
    if decision.request is not None:
        doc["request"] = request_document(decision.request)
    doc["steps"] = [step_document(s) for s in decision.steps]
    return doc
