"""The report page's outside cells: every allowed connection between a workload and an outside
cell (`engine.outside`, what `kubezt reach -o json` lists) is one outside edge of the page, on
its cell and port cell, and each precomputed explanation is `kubezt explain` for the cell's
representative address and the port cell's lowest port, and allows. Within a small budget the
page explains no more edges than the budget."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

import kubezt
from kubezt.engine.outside import evaluate_outside
from kubezt.report.html import report_data

ROOT = Path(__file__).resolve().parents[2]
CASE = yaml.safe_load((ROOT / "tests/cases/report/shop.yaml").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def reach() -> kubezt.Reachability:
    return kubezt.evaluate(kubezt.load([str(ROOT / CASE["example"])]).model)


def _data(reach: kubezt.Reachability, budget: int) -> dict[str, Any]:
    return report_data(
        reach, kubezt.audit(reach), [], title="t", paths=[CASE["example"]], budget=budget
    )


def _workload_rows(data: dict[str, Any]) -> set[tuple[str, str, str, str]]:
    """(direction, workload, cell, port span/protocol) for every member of each edge's class."""
    members: dict[int, list[str]] = {}
    for w in data["workloads"]:
        members.setdefault(w[2], []).append(w[0])
    return {
        ("ingress" if e[0] == "in" else "egress", w, data["cells"][e[6]][0], data["ports"][e[2]])
        for e in data["outsideEdges"]
        for w in members[e[1]]
    }


def test_every_outside_connection_is_an_edge_of_its_cell(reach: kubezt.Reachability) -> None:
    outside = evaluate_outside(reach.input_model)
    data = _data(reach, 4000)
    assert [c[0] for c in data["cells"]] == [c.label for c in outside.cells]
    assert [c[1] for c in data["cells"]] == [str(c.representative) for c in outside.cells]
    expected = {
        (c.direction.value, c.workload, c.cell.label, f"{c.port.span}/{c.port.protocol.value}")
        for c in outside.connections()
    }
    assert expected
    assert _workload_rows(data) == expected


def test_outside_explanations_allow_for_the_representative(reach: kubezt.Reachability) -> None:
    data = _data(reach, 4000)
    assert data["outsideEdges"]
    for e in data["outsideEdges"]:
        assert e[5] >= 0
        doc = data["explanations"][e[5]]
        address = f"external:{data['cells'][e[6]][1]}"
        port = data["ports"][e[2]].split("/")[0].split("-")[0].split(",")[0]
        assert doc["verdict"] == "allow", (e, doc)
        words = doc["command"].split()
        assert words[2 if e[0] == "in" else 3] == address
        assert words[words.index("--port") + 1] == port


def test_outside_edges_within_a_small_budget(reach: kubezt.Reachability) -> None:
    data = _data(reach, 10)
    assert data["counts"]["explained"] == 10
    assert len(data["outsideEdges"]) == len(_data(reach, 4000)["outsideEdges"])
    assert all(e[5] == -1 for e in data["outsideEdges"])
