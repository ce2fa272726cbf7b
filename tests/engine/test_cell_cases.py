"""Case tables for port and outside-address cells (tests/cases/cells, each naming its upstream
source): for every expectation, the concrete address falls in the named outside cell, the
concrete port in the named port cell, `explain` gives the expected verdict, and the verdict the
cell-level evaluation reports (`evaluate_outside` for outside ends, `evaluate` between
workloads) is the same."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from casekit import load_objects, read_cases
from kubezt.engine.cells import cell_of_address, port_cells
from kubezt.engine.connection import End, EndKind, explain_connection
from kubezt.engine.outside import OutsideDirection, evaluate_outside
from kubezt.engine.reach import evaluate
from kubezt.ir.ports import Protocol

CASES = read_cases("cells")
EXPECTATIONS = [
    (f"{name}:{n}", case, e) for name, case in CASES for n, e in enumerate(case["expect"])
]


def _end(model, text: str) -> End:
    if text.startswith("external:"):
        return End(EndKind.EXTERNAL, ip=text.removeprefix("external:"))
    workload = next(w for w in model.topology.workloads if w.id == text)
    return End(EndKind.WORKLOAD, workload=workload)


_LOADED: dict[str, Any] = {}


def _evaluated(case: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Any:
    if case["name"] not in _LOADED:
        tmp = tmp_path_factory.mktemp("cells")
        model = load_objects(tmp, case["resources"]).model
        _LOADED[case["name"]] = (model, evaluate(model), evaluate_outside(model))
    return _LOADED[case["name"]]


def test_case_files_name_their_source() -> None:
    assert CASES
    for name, case in CASES:
        assert case["source"].startswith("https://"), name
        assert case["expect"], name


@pytest.mark.parametrize(
    ("label", "case", "expect"), EXPECTATIONS, ids=[e[0] for e in EXPECTATIONS]
)
def test_cell_expectation(label, case, expect, tmp_path_factory) -> None:
    model, reach, outside = _evaluated(case, tmp_path_factory)
    src, dst = _end(model, expect["from"]), _end(model, expect["to"])
    port = expect["port"]
    protocol = Protocol(expect.get("protocol", "TCP"))
    allowed = expect["verdict"] == "allow"
    verdict = explain_connection(model, src, dst, port, protocol)
    assert verdict.allowed is allowed, f"explain: {verdict}"
    declared = (
        [cp.port for cp in dst.workload.ports if cp.protocol is protocol]
        if dst.workload is not None
        else []
    )
    port_cell = next(c for c in port_cells(outside.cuts, protocol, declared) if c.contains(port))
    assert port_cell.label == str(expect["port_cell"])
    if src.kind is EndKind.EXTERNAL or dst.kind is EndKind.EXTERNAL:
        outer, inner, direction = (
            (src, dst, OutsideDirection.INGRESS)
            if src.kind is EndKind.EXTERNAL
            else (dst, src, OutsideDirection.EGRESS)
        )
        cell = cell_of_address(outside.cells, ipaddress.ip_address(outer.ip))
        assert cell.label == expect["cell"]
        reported = any(
            r.direction is direction and r.cell == cell and r.port == port_cell
            for r in outside.of(inner.workload.id)
        )
    else:
        assert reach.port_label(dst.workload.id, port_cell.representative, protocol) == str(
            expect["port_cell"]
        )
        rows = {(s, d, p, proto) for s, d, p, proto in reach.connections()}
        key = (src.workload.id, dst.workload.id, port_cell.representative, protocol.value)
        reported = key in rows
    assert reported is allowed, f"cell-level verdict differs ({expect['why']})"
