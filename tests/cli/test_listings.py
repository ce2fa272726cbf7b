"""`-o wide` and `--no-headers` on every command that lists things (tests/cases/cli/listings.yaml):
the header row, one row per item of the command's own `-o json` document with the same values,
the narrow listing the wide one without its wide columns, and `--no-headers` the same rows
without the header; nothing else on stdout, and the exit code of the table form."""

from __future__ import annotations

import json
import re
import shutil
import string
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from kubezt.cli.main import app
from kubezt.cli.tables import NONE

ROOT = Path(__file__).resolve().parents[2]
CASES = ROOT / "tests" / "cases"
LISTINGS = yaml.safe_load((CASES / "cli" / "listings.yaml").read_text(encoding="utf-8"))
runner = CliRunner()


class CellFormat(string.Formatter):
    """Format strings of the case file: `{field}`, and `{requests:reqs}` for a request set."""

    def format_field(self, value: Any, format_spec: str) -> str:
        if format_spec == "reqs":
            if value == "all":
                return "all"
            return "; ".join(
                f"{r['method']} {r['path']}" + (f" host={r['host']}" if r.get("host") else "")
                for r in value
            )
        return "" if value is None else str(value)

    def get_value(self, key: int | str, args: Any, kwargs: Any) -> Any:
        return kwargs.get(key, "") if isinstance(key, str) else args[key]


def items_of(doc: dict[str, Any], path: str) -> list[dict[str, Any]]:
    if " + " in path:
        return [item for part in path.split(" + ") for item in items_of(doc, part)]
    outer, _, inner = path.partition("/")
    items = doc[outer]
    if not inner:
        return list(items)
    return [{**item, **sub} for item in items for sub in item[inner]]


def parse(header: str, lines: list[str]) -> list[list[str]]:
    """Cut each line at the columns' starts in the header row."""
    names = re.split(r"\s{3,}", header.strip())
    starts = []
    at = 0
    for name in names:
        at = header.index(name, at)
        starts.append(at)
        at += len(name)
    ends = [*starts[1:], None]
    return [[line[s:e].strip() for s, e in zip(starts, ends, strict=True)] for line in lines]


def words(line: str) -> list[str]:
    return line.split()


@pytest.fixture(scope="module")
def places(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    base = tmp_path_factory.mktemp("listings")
    plan = base / "plan"
    result = runner.invoke(app, ["probe", "plan", str(ROOT / "examples" / "shop"), "-o", str(plan)])
    assert result.exit_code == 0, result.output
    return {
        "shop": str(ROOT / "examples" / "shop"),
        "examples": str(ROOT / "examples"),
        "cases": str(CASES),
        "plan": str(plan),
        "base": str(base),
    }


def command(case: dict[str, Any], places: dict[str, str], tmp_path: Path) -> list[str]:
    where = dict(places)
    if "append" in case:
        new = tmp_path / "new"
        shutil.copytree(places["shop"], new)
        with (new / "50-calico.yaml").open("a", encoding="utf-8") as fh:
            fh.write(case["append"])
        where["new"] = str(new)
    return [arg.format(**where) for arg in case["args"]]


def invoke(args: list[str], code: int) -> list[str]:
    result = runner.invoke(app, args)
    assert result.exit_code == code, (args, result.output)
    return result.stdout.splitlines()


@pytest.mark.parametrize("case", LISTINGS, ids=[c["name"] for c in LISTINGS])
def test_wide_and_no_headers_list_what_the_document_holds(
    case: dict[str, Any], places: dict[str, str], tmp_path: Path
) -> None:
    args = command(case, places, tmp_path)
    code = case["exit"]
    doc = json.loads("\n".join(invoke([*args, "-o", "json"], code)))
    items = items_of(doc, case["items"])
    assert len(items) == case["rows"] > 0

    wide = invoke([*args, "-o", "wide"], code)
    headers = [c.lstrip("+") for c in case["columns"]]
    assert re.split(r"\s{3,}", wide[0].strip()) == headers
    rows = parse(wide[0], wide[1:])
    assert len(rows) == len(items)
    fmt = CellFormat()
    for row, item in zip(rows, items, strict=True):
        assert all(row), f"a blank cell in {row}"
        for column, spec in case["cells"].items():
            expected = fmt.format(spec, **item) or NONE
            assert row[headers.index(column)] == expected, (column, item)

    narrow_columns = [i for i, c in enumerate(case["columns"]) if not c.startswith("+")]
    narrow = invoke([*args, "--no-headers"], code)
    assert len(narrow) == len(items)
    for line, row in zip(narrow, rows, strict=True):
        projected = [row[i] for i in narrow_columns]
        # narrow cells are the wide ones, but for requests (wide lists them; narrow counts them)
        cells = re.split(r"\s{3,}", line.strip())
        assert len(cells) == len(projected)
        for column, cell, full in zip(
            [headers[i] for i in narrow_columns], cells, projected, strict=True
        ):
            if column in ("REQUESTS", "OLD", "NEW") and full != cell:
                assert cell.startswith("some (") and cell == f"some ({full.count('; ') + 1})"
            else:
                assert cell == full, column

    bare = invoke([*args, "-o", "wide", "--no-headers"], code)
    assert [words(line) for line in bare] == [words(line) for line in wide[1:]]
