"""Inputs kubezt reads with a warning, never silently: every file in tests/cases/warnings loads
and gives exactly the warning tests/cases/warnings/expected.yaml names, shown without
--verbose."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

import kubezt
from casekit import CASES
from kubezt.cli.main import app
from kubezt.errors import Severity

FOLDER = CASES / "warnings"
EXPECTED: dict[str, dict[str, Any]] = yaml.safe_load(
    (FOLDER / "expected.yaml").read_text(encoding="utf-8")
)
NAMES = sorted(p.name for p in FOLDER.iterdir() if p.name != "expected.yaml")


def test_every_case_has_an_expectation() -> None:
    assert sorted(EXPECTED) == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_the_input_loads_with_the_expected_warning(name: str) -> None:
    path = FOLDER / name
    want = EXPECTED[name]
    result = kubezt.load([str(path)])
    warnings = [d for d in result.warnings if d.severity is Severity.WARNING]
    assert len(warnings) == 1, [d.render() for d in warnings]
    (diag,) = warnings
    assert diag.code == want["code"], diag.render()
    assert diag.location is not None and diag.location.line == want["line"], diag.render()
    assert diag.obj == want["obj"], diag.render()
    assert diag.path == want["path"], diag.render()
    assert want["message"] in diag.message, diag.render()


@pytest.mark.parametrize("name", NAMES)
def test_the_warning_is_printed_without_verbose(name: str) -> None:
    result = CliRunner().invoke(app, ["reach", str(FOLDER / name)])
    assert EXPECTED[name]["code"] in result.output, result.output
