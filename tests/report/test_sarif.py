"""SARIF output of `kubezt audit`: valid against the official SARIF 2.1.0 JSON schema (vendored
in `schemas/`, see its README), and within what GitHub code scanning accepts: rule metadata with
security severities, results with a rule, a level from the one severity table, a message, a
repository-relative location with a line, and fingerprints that do not move with lines."""

from __future__ import annotations

import dataclasses
import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest

import kubezt
from kubezt.analysis.audit import RULES, AuditReport, FindingSeverity, audit
from kubezt.report.sarif import (
    FINGERPRINT_KEY,
    SARIF_SCHEMA,
    SEVERITY_TABLE,
    SRCROOT,
    artifact_uri,
    level,
    render_sarif,
    security_severity,
)

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
CASES = ROOT / "tests" / "cases" / "audit"
SCHEMA = json.loads((HERE / "schemas" / "sarif-schema-2.1.0.json").read_text(encoding="utf-8"))


@cache
def audited(relative: str) -> AuditReport:
    """Audit a path given relative to the repository root (as CI would, from the checkout)."""
    result = kubezt.load([str(ROOT / relative)])
    return audit(kubezt.evaluate(result.model))


def sarif(relative: str) -> dict[str, Any]:
    return render_sarif(audited(relative), version="9.9.9", base=str(ROOT))


INPUTS = ["examples/shop"] + [
    str(p.relative_to(ROOT)) for p in sorted(CASES.glob("KZT*/*-fail.yaml"))
]


def test_vendored_schema_is_the_official_one() -> None:
    assert SCHEMA["id"].startswith("https://docs.oasis-open.org/sarif/sarif/v2.1.0/")
    jsonschema.Draft4Validator.check_schema(SCHEMA)


@pytest.mark.parametrize("relative", INPUTS)
def test_sarif_is_valid_against_the_sarif_2_1_0_schema(relative: str) -> None:
    log = sarif(relative)
    errors = sorted(jsonschema.Draft4Validator(SCHEMA).iter_errors(log), key=lambda e: list(e.path))
    assert not errors, [f"{list(e.path)}: {e.message}" for e in errors]
    # and survives a round trip through JSON text
    assert json.loads(json.dumps(log)) == log


@pytest.mark.parametrize("relative", INPUTS)
def test_sarif_has_what_github_code_scanning_needs(relative: str) -> None:
    log = sarif(relative)
    assert log["$schema"] == SARIF_SCHEMA and log["version"] == "2.1.0"
    (run,) = log["runs"]
    driver = run["tool"]["driver"]
    assert driver["name"] == "kubezt" and driver["version"] == "9.9.9"
    assert driver["informationUri"].startswith("https://")
    rules = driver["rules"]
    assert [r["id"] for r in rules] == [r.id for r in RULES]
    for descriptor, rule in zip(rules, RULES, strict=True):
        assert descriptor["name"] == rule.spec.name
        assert descriptor["shortDescription"]["text"] == rule.spec.title
        assert descriptor["fullDescription"]["text"] == rule.spec.help
        assert descriptor["help"]["text"] and descriptor["help"]["markdown"]
        assert descriptor["defaultConfiguration"]["level"] == level(rule.spec.severity)
        props = descriptor["properties"]
        assert 0.0 < float(props["security-severity"]) <= 10.0
        assert "security" in props["tags"] and rule.spec.principle.value in props["tags"]
    assert run["results"], "every input here has findings"
    fingerprints = set()
    for result in run["results"]:
        rule = rules[result["ruleIndex"]]
        assert rule["id"] == result["ruleId"]
        assert result["level"] == rule["defaultConfiguration"]["level"]
        assert result["message"]["text"]
        (location,) = result["locations"]
        artifact = location["physicalLocation"]["artifactLocation"]
        assert artifact["uriBaseId"] == SRCROOT
        assert not artifact["uri"].startswith(("/", "file:")) and ".." not in artifact["uri"]
        assert (ROOT / artifact["uri"]).is_file()
        assert location["physicalLocation"]["region"]["startLine"] >= 1
        assert location["physicalLocation"]["region"]["startColumn"] >= 1
        fingerprint = result["partialFingerprints"][FINGERPRINT_KEY]
        assert fingerprint not in fingerprints
        fingerprints.add(fingerprint)


def test_severity_maps_through_one_table() -> None:
    assert {s: (level(s), security_severity(s)) for s in FindingSeverity} == SEVERITY_TABLE
    assert level(FindingSeverity.HIGH) == "error"
    assert level(FindingSeverity.MEDIUM) == "warning"
    assert level(FindingSeverity.LOW) == "note"
    # GitHub buckets: high ≥ 7.0, medium ≥ 4.0, low ≥ 0.1
    assert float(security_severity(FindingSeverity.HIGH)) >= 7.0
    assert 4.0 <= float(security_severity(FindingSeverity.MEDIUM)) < 7.0
    assert 0.1 <= float(security_severity(FindingSeverity.LOW)) < 4.0


def test_fingerprints_do_not_change_when_lines_move() -> None:
    report = audited("examples/shop")
    moved = dataclasses.replace(
        report,
        findings=tuple(
            dataclasses.replace(
                f, location=dataclasses.replace(f.location, line=f.location.line + 7)
            )
            for f in report.findings
            if f.location is not None
        ),
    )

    def prints(r: AuditReport) -> list[str]:
        run = render_sarif(r, version="1", base=str(ROOT))["runs"][0]
        return [res["partialFingerprints"][FINGERPRINT_KEY] for res in run["results"]]

    assert prints(report) == prints(moved)


@pytest.mark.parametrize(
    ("file", "base", "uri", "uri_base"),
    [
        ("examples/shop/10-shop.yaml", "/repo", "examples/shop/10-shop.yaml", SRCROOT),
        ("./examples/../examples/a b.yaml", "/repo", "examples/a%20b.yaml", SRCROOT),
        ("/repo/policies/np.yaml", "/repo", "policies/np.yaml", SRCROOT),
        ("/elsewhere/np.yaml", "/repo", "file:///elsewhere/np.yaml", None),
        ("../outside.yaml", "/repo", "file:///outside.yaml", None),
        ("policies/np.yaml", None, "policies/np.yaml", SRCROOT),
    ],
)
def test_artifact_uris_are_relative_to_the_source_root(
    file: str, base: str | None, uri: str, uri_base: str | None
) -> None:
    assert artifact_uri(file, base) == (uri, uri_base)
