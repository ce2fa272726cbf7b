"""Blast radius and diff see every port cell and every outside cell (tests/cases/analysis/
cells.yaml): a neighbour that declares no port is reached, egress to a CIDR is an outside cell
reached, and opening a pod to the internet, or on a port nobody declares, is newly allowed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import kubezt
from casekit import load_objects, read_cases
from kubezt.analysis.blast_radius import blast_radius
from kubezt.analysis.diff import diff_models
from kubezt.engine.cells import PORT_MAX
from kubezt.engine.outside import evaluate_outside

[(_, DOC)] = read_cases("analysis", "cells.yaml")


def _model(policies: list[dict[str, Any]], tmp_path: Path, name: str = "objects.yaml"):
    return load_objects(tmp_path, [*DOC["topology"], *policies], name).model


def _ports(items: list[Any]) -> list[str]:
    """`all/TCP` for cells covering every port of a protocol, else each cell's label."""
    by_protocol: dict[str, list[Any]] = {}
    for item in items:
        by_protocol.setdefault(item.protocol, []).append(item)
    out = []
    for protocol, same in sorted(by_protocol.items()):
        size = sum(1 if a.cell is None else a.cell.size for a in same)
        if size == PORT_MAX:
            out.append(f"all/{protocol}")
        else:
            out.extend(f"{a.port_label}/{protocol}" for a in same)
    return sorted(out)


@pytest.mark.parametrize("case", DOC["blast"], ids=lambda c: c["name"])
def test_blast_radius_sees_every_port_and_outside_cell(case, tmp_path) -> None:
    model = _model(case["policies"], tmp_path)
    result = blast_radius(kubezt.evaluate(model), case["workload"], None, evaluate_outside(model))
    reached = [
        {"workload": r.workload, "hop": r.hop, "ports": _ports(list(r.access))}
        for r in result.reached
    ]
    assert reached == case["expect"]["reached"]
    assert [r.workload for r in result.outside] == case["expect"]["outside"]


@pytest.mark.parametrize("case", DOC["diff"], ids=lambda c: c["name"])
def test_diff_sees_every_port_and_outside_cell(case, tmp_path) -> None:
    result = diff_models(
        _model(case["old"], tmp_path, "old.yaml"), _model(case["new"], tmp_path, "new.yaml")
    )
    assert result.opens is case["expect"]["opens"]
    pairs = [[p.src, p.dst, _ports(list(p.changes))] for p in result.pairs]
    assert pairs == case["expect"]["pairs"]
    assert all(c.kind.opens for _, _, c in result.changes())
