"""Which workloads `reach` lists and counts, from tests/cases/reach/listed-workloads.yaml: the
JSON document's `workloads`, its connections' ends, and the table's totals."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

import kubezt
from kubezt.cli.main import app
from kubezt.report.documents import reach_document

CASES = yaml.safe_load(
    (Path(__file__).parent.parent / "cases" / "reach" / "listed-workloads.yaml").read_text()
)["cases"]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c["name"])
def test_reach_lists_and_counts_the_input_workloads(case: dict[str, Any], tmp_path: Path) -> None:
    path = tmp_path / "input.yaml"
    path.write_text(yaml.safe_dump_all(case["objects"], sort_keys=False), encoding="utf-8")
    result = kubezt.evaluate(kubezt.load([str(path)]).model)
    doc = reach_document(result)
    assert doc["workloads"] == case["workloads"]
    ends = {c["src"] for c in doc["allowed"]} | {c["dst"] for c in doc["allowed"]}
    assert ends <= set(case["workloads"])
    out = CliRunner().invoke(app, ["reach", str(path)])
    assert case["table"] in out.output, out.output
