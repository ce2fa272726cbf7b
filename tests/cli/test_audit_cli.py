"""`kubezt audit`: exit codes (0 clean, 1 findings at or above --fail-on, 2 input errors) and the
table, JSON, YAML and SARIF outputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from kubezt.analysis.audit import RULES
from kubezt.cli.main import app
from kubezt.report.audit import AUDIT_SCHEMA

ROOT = Path(__file__).resolve().parents[2]
SHOP = str(ROOT / "examples" / "shop")
CASES = ROOT / "tests" / "cases" / "audit"
runner = CliRunner()

# A clean input: one ambient namespace with STRICT mTLS, a default deny in both directions and an
# allow-nothing AuthorizationPolicy.
CLEAN = """\
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {istio.io/dataplane-mode: ambient}}
---
apiVersion: v1
kind: Pod
metadata: {name: api, namespace: shop, labels: {app: api}}
spec:
  serviceAccountName: api
  containers: [{name: api, image: api}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: default-deny, namespace: shop}
spec:
  podSelector: {}
  policyTypes: [Ingress, Egress]
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: istio-system}
spec:
  mtls: {mode: STRICT}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-nothing, namespace: shop}
spec: {}
"""
# The same plus a NetworkPolicy that selects nothing: one low finding (KZT601).
TYPO = """\
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: typo, namespace: shop}
spec:
  podSelector: {matchLabels: {app: apii}}
  policyTypes: [Ingress]
"""
LOW_ONLY = CLEAN + TYPO
TYPO_LINE = len(CLEAN.splitlines()) + 2  # the line of its apiVersion


@pytest.fixture()
def low_only(tmp_path: Path) -> str:
    path = tmp_path / "low.yaml"
    path.write_text(LOW_ONLY, encoding="utf-8")
    return str(path)


@pytest.fixture()
def clean(tmp_path: Path) -> str:
    path = tmp_path / "clean.yaml"
    path.write_text(CLEAN, encoding="utf-8")
    return str(path)


def test_clean_input_exits_0_and_says_so(clean: str) -> None:
    result = runner.invoke(app, ["audit", clean, "--fail-on", "low"])
    assert result.exit_code == 0, result.output
    assert "no findings" in result.stdout
    assert "overall" in result.stdout and "100" in result.stdout


def test_fail_on_threshold_decides_the_exit_code(low_only: str) -> None:
    assert runner.invoke(app, ["audit", low_only]).exit_code == 0  # default: high
    assert runner.invoke(app, ["audit", low_only, "--fail-on", "medium"]).exit_code == 0
    result = runner.invoke(app, ["audit", low_only, "--fail-on", "low"])
    assert result.exit_code == 1
    assert "KZT601" in result.stdout


def test_bundled_example_fails_on_its_high_findings() -> None:
    result = runner.invoke(app, ["audit", SHOP])
    assert result.exit_code == 1
    out = result.stdout
    assert "namespace kube-system" in out and "namespace storefront" in out
    assert "KZT101" in out and "KZT203" in out
    assert "00-namespaces.yaml:24:1" in out
    assert "overall" in out and "90" in out


def test_json_document(low_only: str) -> None:
    result = runner.invoke(app, ["audit", low_only, "-o", "json"])
    assert result.exit_code == 0
    doc = json.loads(result.stdout)
    assert doc["schemaVersion"] == AUDIT_SCHEMA
    assert [r["id"] for r in doc["rules"]] == [r.id for r in RULES]
    (finding,) = doc["findings"]
    assert finding["ruleId"] == "KZT601"
    assert finding["severity"] == "low"
    assert finding["principle"] == "least-privilege"
    assert finding["object"] == "Kubernetes NetworkPolicy shop/typo"
    assert finding["file"] == low_only and finding["line"] == TYPO_LINE
    assert finding["remediation"]
    assert doc["score"] == 98
    assert doc["namespaces"] == [
        {"namespace": "shop", "score": 98, "workloads": 1, "findings": 1, "rules": ["KZT601"]}
    ]


def test_yaml_document_matches_json(low_only: str) -> None:
    as_json = json.loads(runner.invoke(app, ["audit", low_only, "-o", "json"]).stdout)
    as_yaml = yaml.safe_load(runner.invoke(app, ["audit", low_only, "-o", "yaml"]).stdout)
    assert as_yaml == as_json


def test_sarif_output_is_relative_to_the_working_directory(
    low_only: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(Path(low_only).parent)
    result = runner.invoke(app, ["audit", "low.yaml", "-o", "sarif", "--fail-on", "low"])
    assert result.exit_code == 1
    log = json.loads(result.stdout)
    assert log["version"] == "2.1.0"
    (res,) = log["runs"][0]["results"]
    location = res["locations"][0]["physicalLocation"]
    assert location["artifactLocation"] == {"uri": "low.yaml", "uriBaseId": "%SRCROOT%"}
    assert location["region"]["startLine"] == TYPO_LINE
    assert res["ruleId"] == "KZT601" and res["level"] == "note"


def test_input_errors_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
        "metadata: {name: x, namespace: a}\nspec: {podSelecter: {}}\n",
        encoding="utf-8",
    )
    result = runner.invoke(app, ["audit", str(bad)])
    assert result.exit_code == 2
    assert "bad.yaml" in result.stderr


def test_unknown_output_or_threshold_is_a_usage_error(low_only: str) -> None:
    assert runner.invoke(app, ["audit", low_only, "-o", "html"]).exit_code == 2
    assert runner.invoke(app, ["audit", low_only, "--fail-on", "critical"]).exit_code == 2


@pytest.mark.parametrize(
    "path", sorted(CASES.glob("KZT*/*-fail.yaml")), ids=lambda p: f"{p.parent.name}/{p.stem}"
)
def test_every_fail_fixture_fails_at_low(path: Path) -> None:
    result = runner.invoke(app, ["audit", str(path), "--fail-on", "low", "-o", "json"])
    assert result.exit_code == 1
    assert path.parent.name in {f["ruleId"] for f in json.loads(result.stdout)["findings"]}
