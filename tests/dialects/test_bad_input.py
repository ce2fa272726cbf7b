"""Bad input never gives a traceback: every bad manifest in tests/cases/bad-input is reported as
`file:line:col: error Exxx: Kind ns/name: spec.path: expected …, got …`, with exit code 2, and
errors from every file are reported together.

tests/cases/bad-input/expected.yaml maps each file to the one error it must produce.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

import kubezt
from casekit import CASES
from kubezt.cli.main import app
from kubezt.errors import Diagnostic, Severity

BAD = CASES / "bad-input"
EXPECTED: dict[str, dict[str, Any]] = yaml.safe_load(
    (BAD / "expected.yaml").read_text(encoding="utf-8")
)
FILES = sorted(p for p in BAD.iterdir() if p.name != "expected.yaml")
NAMES = [p.name for p in FILES]


def load_errors(*paths: str) -> tuple[Diagnostic, ...]:
    with pytest.raises(kubezt.InputError) as info:
        kubezt.load(list(paths))
    diagnostics = info.value.diagnostics
    assert diagnostics, "an InputError must carry its diagnostics"
    assert all(d.severity is Severity.ERROR for d in diagnostics)
    return diagnostics


def test_every_case_has_an_expectation_and_they_are_distinct() -> None:
    assert sorted(EXPECTED) == NAMES
    assert len(NAMES) >= 30
    contents = {p.read_bytes() for p in FILES}
    assert len(contents) == len(FILES), "two case files are identical"
    messages = {(e["code"], e["path"], e["message"]) for e in EXPECTED.values()}
    assert len(messages) == len(EXPECTED), "two cases expect the same error"


@pytest.mark.parametrize("name", NAMES)
def test_bad_input_gives_the_expected_located_error(name: str) -> None:
    path = BAD / name
    want = EXPECTED[name]
    diagnostics = load_errors(str(path))
    assert len(diagnostics) == 1, "\n".join(d.render() for d in diagnostics)
    (diag,) = diagnostics
    assert diag.code == want["code"], diag.render()
    assert diag.location is not None
    assert diag.location.file == str(path)
    assert diag.location.line == want["line"], diag.render()
    assert diag.location.column == want.get("column", diag.location.column) >= 1, diag.render()
    assert diag.obj == want["obj"], diag.render()
    assert diag.path == want["path"], diag.render()
    assert want["message"] in diag.message, diag.render()
    assert "expected " in diag.message and ", got " in diag.message, diag.render()
    rendered = diag.render()
    head = f"{path}:{want['line']}:{diag.location.column}: error {want['code']}: "
    assert rendered.startswith(head)
    if want["obj"] or want["path"]:
        where = ": ".join(part for part in (want["obj"], want["path"]) if part)
        assert rendered.startswith(f"{head}{where}: expected "), rendered


def test_errors_from_several_files_are_reported_together_in_file_and_line_order(
    tmp_path: Path,
) -> None:
    (tmp_path / "a-syntax.yaml").write_text(
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: [shop\n", encoding="utf-8"
    )
    (tmp_path / "b-good.yaml").write_text(
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: good\n", encoding="utf-8"
    )
    (tmp_path / "c-json.json").write_text('{"apiVersion": "v1",\n "kind": }\n', encoding="utf-8")
    (tmp_path / "d-two.yaml").write_text(
        "apiVersion: v1\n"
        "kind: Pod\n"
        "metadata: {name: web, namespace: shop, labels: {tier: 3}}\n"
        "spec:\n"
        "  containers:\n"
        "    - name: c\n"
        "      ports: [{containerPort: 0}]\n"
        "---\n"
        "kind: Service\n",
        encoding="utf-8",
    )
    diagnostics = load_errors(str(tmp_path))
    got = [(Path(d.location.file).name, d.location.line, d.code) for d in diagnostics if d.location]
    assert got == [
        ("a-syntax.yaml", 4, "E003"),
        ("c-json.json", 2, "E003"),
        ("d-two.yaml", 3, "E011"),
        ("d-two.yaml", 7, "E010"),
        ("d-two.yaml", 9, "E006"),
    ]


def test_all_bad_inputs_at_once() -> None:
    """One run over every case file reports (at least) the first error of each, sorted."""
    diagnostics = load_errors(*(str(p) for p in FILES))
    keys = [d.sort_key() for d in diagnostics]
    assert keys == sorted(keys)
    files = {d.location.file for d in diagnostics if d.location}
    assert files == {str(p) for p in FILES}


def test_a_missing_path_is_an_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    (diag,) = load_errors(str(missing))
    assert (diag.code, str(diag.location)) == ("E001", str(missing))


def test_a_file_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("apiVersion: v1\nkind: Namespace\nmetadata: {name: café}\n".encode("latin-1"))
    (diag,) = load_errors(str(path))
    assert diag.code == "E002"
    assert diag.message.startswith("expected UTF-8 text, got the byte 0xe9")


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_deep_nesting_is_an_error_not_a_crash(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"deep{suffix}"
    path.write_text("[" * 100_000 + "]" * 100_000 + "\n", encoding="utf-8")
    (diag,) = load_errors(str(path))
    assert diag.code == "E003"
    assert diag.message.startswith("malformed ")


def test_alias_bombs_are_cheap(tmp_path: Path) -> None:
    lines = ["a: &a [x, x, x, x, x, x, x, x, x]"]
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 9) + "]")
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    (diag,) = load_errors(str(path))
    assert diag.code == "E006"


def test_a_syntax_error_keeps_the_documents_before_it(tmp_path: Path) -> None:
    path = tmp_path / "half.yaml"
    path.write_text(
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: Bad}\n---\nkind: [\n",
        encoding="utf-8",
    )
    assert [d.code for d in load_errors(str(path))] == ["E007", "E003"]


# -- command line ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_cli_exits_2_with_the_located_message(name: str) -> None:
    path = BAD / name
    want = EXPECTED[name]
    for command in (["reach", str(path)], ["explain", "a/b", "c/d", "--port", "80", str(path)]):
        result = CliRunner().invoke(app, command)
        assert result.exit_code == 2, result.output
        assert result.exception is None or isinstance(result.exception, SystemExit)
        assert result.stdout == ""
        assert f"{path}:{want['line']}:" in result.stderr
        assert f"error {want['code']}: " in result.stderr
        assert want["message"] in result.stderr
        assert "Traceback" not in result.stderr
        assert "kubezt: 1 error(s) in the input; nothing was evaluated" in result.stderr


def test_cli_process_reports_every_bad_input_without_traceback() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "kubezt", "reach", *(str(p) for p in FILES)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.splitlines()
    assert lines[-1].startswith("kubezt: ") and lines[-1].endswith("nothing was evaluated")
    shown = [line for line in lines if ": error E" in line]
    assert len(shown) == 50  # the first 50, in file and line order, then a count of the rest
    assert lines[-2].startswith("… and ")
    assert shown[0].startswith(f"{FILES[0]}:")


def test_cli_process_reads_bad_stdin() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "kubezt", "reach", "-"],
        input="apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  labels: {a: [b]}\n",  # no spec
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.splitlines() == [
        "<stdin>:1:1: error E010: Pod default/web: spec: expected a pod spec, got nothing",
        "<stdin>:5:12: error E011: Pod default/web: metadata.labels.a: expected a label value "
        'string (quote values such as "true" or "1"), got a list',
        "kubezt: 2 error(s) in the input; nothing was evaluated",
    ]


# -- the API server's endPort validation (tests/cases/k8s-netpol-api) -----------------------------

ENDPORT = yaml.safe_load(
    (CASES / "k8s-netpol-api" / "endport-validation.yaml").read_text(encoding="utf-8")
)


def test_all_endport_steps_are_present() -> None:
    assert [c["step"] for c in ENDPORT["cases"]] == [1, 2, 3, 4, 5]


@pytest.mark.parametrize("case", ENDPORT["cases"], ids=lambda c: f"step{c['step']}")
def test_endport_validation_matches_the_api_server(case: dict[str, Any], tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(case["policy"], sort_keys=False), encoding="utf-8")
    if case["accepted"]:
        result = kubezt.load([str(path)])
        (policy,) = result.model.policies.policies
        port = case["policy"]["spec"]["egress"][0]["ports"][0]
        (rule,) = policy.egress
        assert rule.destination is not None and rule.destination.ports is not None
        (span,) = rule.destination.ports.ranges
        assert (span.first, span.last) == (port["port"], port["endPort"])
    else:
        (diag,) = load_errors(str(path))
        assert diag.code == "E022"
        assert diag.path == "spec.egress[0].ports[0].endPort"
