"""The JSON Schema of the intent format and the loader agree: an intent the schema accepts is
one the loader reads without a format error (E101-E109), and the other way round — on the
example, every bad intent of tests/cases/intent-bad, the intents `kubezt init` scaffolds from
the examples in both modes, and variants that leave out each optional part the documentation
names (egress `from.namespace` is required: an egress entry has no callee to default to;
`spec.mesh` may be left out when the command is given --mode).

The loader is given --mode, as the commands that read an intent accept it; semantic problems
(E110 and above: unknown services, conflicts) are beyond a schema and are not compared."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

import kubezt
from casekit import CASES
from kubezt.dialects._yaml import Document
from kubezt.dialects.intent import parse_intent
from kubezt.errors import InputError
from kubezt.generate.intent import intent_document
from kubezt.generate.scaffold import scaffold_intent
from kubezt.ir.intent import Mode

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "src" / "kubezt" / "schemas" / "intent.schema.json").read_text("utf-8"))
EXAMPLE = yaml.safe_load((ROOT / "examples" / "intent.yaml").read_text("utf-8"))
FORMAT_CODES = {f"E10{i}" for i in range(1, 10)}
NOT_A_SCHEMA_MATTER = {"two-documents.yaml", "duplicate-key.yaml"}
"""A stream of two documents and a key written twice are YAML matters, not the format's."""


def _bad_intents() -> list[tuple[str, Any]]:
    out = []
    for path in sorted((CASES / "intent-bad").glob("*.yaml")):
        if path.name == "expected.yaml" or path.name in NOT_A_SCHEMA_MATTER:
            continue
        out.append((f"intent-bad/{path.name}", yaml.safe_load(path.read_text("utf-8"))))
    return out


def _scaffolded() -> list[tuple[str, Any]]:
    out = []
    for example in ("shop", "cluster-policy"):
        model = kubezt.load([str(ROOT / "examples" / example)]).model
        for mode in Mode:
            intent, _ = scaffold_intent(model, name=example, mode=mode)
            if intent.namespaces:
                out.append((f"init {example} --mode {mode.value}", intent_document(intent)))
    return out


def _variants() -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = [("examples/intent.yaml", EXAMPLE)]
    no_mesh = copy.deepcopy(EXAMPLE)
    del no_mesh["spec"]["mesh"]
    out.append(("without spec.mesh", no_mesh))
    no_mode = copy.deepcopy(EXAMPLE)
    no_mode["spec"]["mesh"].pop("mode")
    out.append(("without spec.mesh.mode", no_mode))
    for i, _entry in enumerate(EXAMPLE["spec"].get("egress", [])):
        variant = copy.deepcopy(EXAMPLE)
        variant["spec"]["egress"][i]["from"].pop("namespace", None)
        out.append((f"egress[{i}] without from.namespace", variant))
    for i, _call in enumerate(EXAMPLE["spec"].get("calls", [])):
        variant = copy.deepcopy(EXAMPLE)
        variant["spec"]["calls"][i]["from"].pop("namespace", None)
        out.append((f"calls[{i}] without from.namespace", variant))
    platform = EXAMPLE["spec"].get("platform", {})
    for i, _caller in enumerate(platform.get("kubeApiServer", {}).get("from", [])):
        variant = copy.deepcopy(EXAMPLE)
        variant["spec"]["platform"]["kubeApiServer"]["from"][i].pop("namespace")
        out.append((f"kubeApiServer.from[{i}] without namespace", variant))
    if "metrics" in platform:
        variant = copy.deepcopy(EXAMPLE)
        variant["spec"]["platform"]["metrics"]["from"].pop("namespace")
        out.append(("metrics.from without namespace", variant))
    return out


CASES_ = _variants() + _bad_intents() + _scaffolded()


def test_the_cases_cover_both_answers() -> None:
    verdicts = {_schema_accepts(doc) for _, doc in CASES_}
    assert verdicts == {True, False}
    assert any(name.startswith("init ") for name, _ in CASES_)
    assert any("egress" in name for name, _ in CASES_)


def _schema_accepts(doc: Any) -> bool:
    return jsonschema.Draft202012Validator(SCHEMA).is_valid(doc)


def _loader_format_errors(doc: Any) -> list[str]:
    try:
        parse_intent(Document(doc, "<case>", 1, None), Mode.SIDECAR)
    except InputError as exc:
        return [d.render() for d in exc.diagnostics if d.code in FORMAT_CODES]
    return []


@pytest.mark.parametrize(("name", "doc"), CASES_, ids=[n for n, _ in CASES_])
def test_schema_and_loader_agree(name: str, doc: Any) -> None:
    errors = _loader_format_errors(doc)
    accepted = _schema_accepts(doc)
    assert accepted == (not errors), (name, accepted, errors)
