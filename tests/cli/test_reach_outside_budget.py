"""`reach -o json` lists the outside address cells unless deciding them would take more
explanations than the budget: then it says so on stderr and leaves them out, and `--outside`
lists them anyway. The listed cells are those `evaluate_outside` decides."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import kubezt
from kubezt.cli import analyse
from kubezt.cli.main import app
from kubezt.engine.outside import evaluate_outside, outside_questions

SHOP = Path(__file__).resolve().parents[2] / "examples" / "shop"
runner = CliRunner()


def reach(*args: str) -> tuple[dict[str, object], str]:
    result = runner.invoke(app, ["reach", str(SHOP), "-o", "json", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout), result.stderr


def expected_outside() -> int:
    return len(evaluate_outside(kubezt.load([str(SHOP)]).model).connections)


def test_under_the_budget_the_outside_is_listed() -> None:
    assert outside_questions(kubezt.load([str(SHOP)]).model) <= analyse.OUTSIDE_QUESTIONS
    doc, stderr = reach()
    assert len(doc["outside"]) == expected_outside() > 0  # type: ignore[arg-type]
    assert "outside address cells are not listed" not in stderr


def test_over_the_budget_it_warns_and_leaves_the_outside_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(analyse, "OUTSIDE_QUESTIONS", 0)
    doc, stderr = reach()
    assert "outside" not in doc
    assert "warning: the outside address cells are not listed" in stderr
    doc, stderr = reach("--outside")
    assert len(doc["outside"]) == expected_outside()  # type: ignore[arg-type]


def test_no_outside_leaves_them_out() -> None:
    doc, stderr = reach("--no-outside")
    assert "outside" not in doc
    assert "--no-outside" in stderr
