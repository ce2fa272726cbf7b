"""The intent format: every bad intent in tests/cases/intent-bad gives exactly one located error
(tests/cases/intent-bad/expected.yaml), several problems are reported together, the checked-in
JSON Schema is the one the model generates and accepts the example, and defaults resolve as
docs/intent.md says.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from typer.testing import CliRunner

from casekit import CASES
from intentkit import EXAMPLE, ROOT
from kubezt.cli.main import app
from kubezt.dialects.intent import intent_json_schema, load_intent, parse_intent_data
from kubezt.errors import InputError
from kubezt.generate.intent import intent_document
from kubezt.ir.intent import Identity, Mode, Port, ServiceRef
from kubezt.ir.ports import Protocol

BAD = CASES / "intent-bad"
EXPECTED: dict[str, dict[str, Any]] = yaml.safe_load((BAD / "expected.yaml").read_text("utf-8"))
FILES = sorted(p.name for p in BAD.iterdir() if p.name != "expected.yaml")
SCHEMA_FILE = ROOT / "src" / "kubezt" / "schemas" / "intent.schema.json"


def test_every_bad_intent_has_an_expectation() -> None:
    assert sorted(EXPECTED) == FILES
    codes = {e["code"] for e in EXPECTED.values()}
    assert {"E101", "E110", "E111", "E112", "E113"} <= codes


@pytest.mark.parametrize("name", FILES)
def test_bad_intent_gives_one_located_error(name: str) -> None:
    path = BAD / name
    want = EXPECTED[name]
    with pytest.raises(InputError) as info:
        load_intent(str(path))
    diagnostics = info.value.diagnostics
    assert len(diagnostics) == 1, "\n".join(d.render() for d in diagnostics)
    (diag,) = diagnostics
    assert diag.code == want["code"], diag.render()
    assert diag.location is not None and diag.location.file == str(path)
    assert diag.location.line == want["line"], diag.render()
    assert diag.path == want["path"], diag.render()
    assert diag.message == want["message"], diag.render()
    assert diag.hint.startswith("did you mean") == ("hint" in want), diag.render()
    if "hint" in want:
        assert diag.hint == want["hint"]
    rendered = diag.render()
    assert rendered.startswith(f"{path}:{want['line']}:"), rendered


def test_cli_reports_a_bad_intent_with_file_and_line_and_exit_code_2() -> None:
    path = BAD / "unknown-field.yaml"
    result = CliRunner().invoke(app, ["compile", str(path)])
    assert result.exit_code == 2
    assert f"{path}:13:12: error E101" in result.output
    assert "did you mean 'serviceAccount'?" in result.output


def test_every_problem_of_an_intent_is_reported_together(tmp_path: Path) -> None:
    text = (BAD / "unknown-service.yaml").read_text("utf-8")
    text += "  - from: {serviceAccount: ghost}\n    to: shop/summary\n    ports: [1]\n"
    path = tmp_path / "many.yaml"
    path.write_text(text, "utf-8")
    with pytest.raises(InputError) as info:
        load_intent(str(path))
    codes = sorted(d.code for d in info.value.diagnostics)
    assert codes == ["E110", "E111", "E117"]


def test_schema_file_is_up_to_date(update_golden: bool) -> None:
    generated = json.dumps(intent_json_schema(), indent=2) + "\n"
    if update_golden:
        SCHEMA_FILE.write_text(generated, "utf-8")
    assert SCHEMA_FILE.read_text("utf-8") == generated, (
        "the JSON Schema is stale: run pytest --update-golden"
    )


def test_schema_accepts_the_example_and_rejects_unknown_fields() -> None:
    schema = json.loads(SCHEMA_FILE.read_text("utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    example = yaml.safe_load(EXAMPLE.read_text("utf-8"))
    jsonschema.validate(example, schema)
    example["spec"]["calls"][0]["form"] = example["spec"]["calls"][0].pop("from")
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(example, schema)


def test_defaults_resolve() -> None:
    intent = load_intent(str(EXAMPLE))
    assert intent.mode is Mode.SIDECAR
    assert intent.trust_domain == "cluster.local"
    assert intent.root_namespace == "istio-system"
    summary = intent.service(ServiceRef("shop", "summary"))
    assert dict(summary.selector) == {"app": "summary"}
    assert summary.service_account == "summary"
    assert summary.ports == (Port(8080, Protocol.TCP),)
    call = next(g for g in intent.grants if g.entry == "calls/customer-to-summary")
    # caller namespace defaults to the service's; ports default to all of the service's
    assert call.caller == Identity("shop", "customer")
    assert call.ports == summary.ports
    assert call.http is not None and call.http.methods == ("GET",)
    ingress = [g for g in intent.grants if g.from_gateway]
    assert [g.entry for g in ingress] == ["ingress/web"]
    assert intent.platform.dns is not None and intent.platform.istiod.port == 15012


def test_document_round_trip_keeps_the_intent() -> None:
    intent = load_intent(str(EXAMPLE))
    again = parse_intent_data(intent_document(intent))
    assert again == intent
