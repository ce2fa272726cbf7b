"""`kubezt.analysis.audit`: every rule fires where its fail fixtures say, and nowhere in its pass
fixtures; rule ids are stable; the bundled example; the score formula.

Fixtures are `tests/cases/audit/KZT###/<name>-pass.yaml` and `<name>-fail.yaml` (checkov's
naming). A fail fixture lists, in its header, every finding of its rule it must produce:

    # expect: KZT301 | Kubernetes NetworkPolicy shop/db | 31 | spec.ingress[0].from[0]

(rule, object, line, and the field path when the finding has one), and optionally what the
finding at a line must say:

    # says: 31 | from pods running as ServiceAccount monitor
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import pytest
import yaml

import kubezt
from kubezt.analysis.audit import (
    PENALTY,
    RETIRED,
    RULES,
    AuditReport,
    Finding,
    FindingSeverity,
    Principle,
    audit,
    score,
)
from kubezt.errors import Location

CASES = Path(__file__).resolve().parents[1] / "cases" / "audit"
SHOP = Path(__file__).resolve().parents[2] / "examples" / "shop"
EXPECT = re.compile(r"^#\s*expect:\s*(KZT\d{3})\s*\|\s*([^|]+?)\s*\|\s*(\d+)\s*(?:\|\s*(\S+)\s*)?$")
SAYS = re.compile(r"^#\s*says:\s*(\d+)\s*\|\s*(.+?)\s*$")
FAMILIES = {
    "1": "isolation",
    "2": "mtls",
    "3": "identity",
    "4": "breadth",
    "5": "ambient",
    "6": "hygiene",
}


@cache
def audited(path: str) -> AuditReport:
    result = kubezt.load([path])
    return audit(kubezt.evaluate(result.model))


def fixtures(outcome: str) -> list[pytest.ParameterSet]:
    return [
        pytest.param(path.parent.name, path, id=f"{path.parent.name}/{path.stem}")
        for path in sorted(CASES.glob(f"KZT*/*-{outcome}.yaml"))
    ]


def expected(path: Path) -> set[tuple[str, str, int, str]]:
    out: set[tuple[str, str, int, str]] = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        m = EXPECT.match(line)
        if m:
            out.add((m.group(1), m.group(2), int(m.group(3)), m.group(4) or ""))
    return out


def where(finding: Finding) -> tuple[str, str, int, str]:
    line = finding.location.line if finding.location is not None else 0
    return (finding.rule_id, finding.obj, line, finding.path)


@pytest.mark.parametrize(("rule_id", "path"), fixtures("fail"))
def test_fail_fixture_reports_exactly_the_expected_findings(rule_id: str, path: Path) -> None:
    wanted = expected(path)
    assert wanted, f"{path.name} lists no `# expect:` line"
    assert {w[0] for w in wanted} == {rule_id}
    report = audited(str(path))
    got = {where(f) for f in report.findings if f.rule_id == rule_id}
    assert got == wanted
    for f in report.findings:
        assert f.location is not None and f.location.file == str(path), f
    for line, text in said(path):
        messages = [
            f.message
            for f in report.findings
            if f.rule_id == rule_id and f.location is not None and f.location.line == line
        ]
        assert any(text in m for m in messages), (line, text, messages)


def said(path: Path) -> list[tuple[int, str]]:
    out: list[tuple[int, str]] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        m = SAYS.match(line)
        if m:
            out.append((int(m.group(1)), m.group(2)))
    return out


@pytest.mark.parametrize(("rule_id", "path"), fixtures("pass"))
def test_pass_fixture_reports_nothing_for_its_rule(rule_id: str, path: Path) -> None:
    report = audited(str(path))
    assert [where(f) for f in report.findings if f.rule_id == rule_id] == []


def test_every_rule_has_pass_and_fail_fixtures() -> None:
    for r in RULES:
        folder = CASES / r.id
        assert list(folder.glob("*-pass.yaml")), f"{r.id}: no pass fixture"
        assert list(folder.glob("*-fail.yaml")), f"{r.id}: no fail fixture"
    ids = {r.id for r in RULES}
    for folder in CASES.glob("KZT*"):
        assert folder.name in ids, f"fixtures for unknown rule {folder.name}"
        for path in folder.glob("*.yaml"):
            assert path.name.endswith(("-pass.yaml", "-fail.yaml")), path.name


def test_rule_ids_are_stable_unique_and_grouped_by_family() -> None:
    ids = [r.id for r in RULES]
    assert len(ids) == len(set(ids))
    assert ids == sorted(ids), "RULES runs in id order"
    assert not set(ids) & RETIRED
    names = [r.spec.name for r in RULES]
    assert len(names) == len(set(names))
    for r in RULES:
        assert re.fullmatch(r"KZT[1-9]\d\d", r.id)
        assert re.fullmatch(r"[A-Z][A-Za-z0-9]+", r.spec.name)
        assert r.spec.title and r.spec.help.endswith((".", ")"))
        assert r.check.__name__.startswith("check_")
        family = r.check.__module__.rsplit(".", 1)[-1]
        assert family == FAMILIES[r.id[3]], (r.id, family)
    assert {r.spec.principle for r in RULES} == set(Principle)


def test_findings_carry_their_rule_metadata_and_are_sorted() -> None:
    specs = {r.id: r.spec for r in RULES}
    for _, path in (p.values for p in fixtures("fail") + fixtures("pass")):
        report = audited(str(path))
        assert list(report.findings) == sorted(report.findings, key=Finding.sort_key)
        for f in report.findings:
            spec = specs[f.rule_id]
            assert (f.severity, f.title, f.principle) == (spec.severity, spec.title, spec.principle)
            assert f.message and f.remediation and f.obj


def test_audit_is_deterministic() -> None:
    path = str(CASES / "KZT602" / "deny-before-allow-fail.yaml")
    result = kubezt.load([path])
    first = audit(kubezt.evaluate(result.model))
    second = audit(kubezt.evaluate(result.model))
    assert first.findings == second.findings
    assert first.namespaces == second.namespaces


def test_bundled_example_findings() -> None:
    """examples/shop: the system namespaces (kube-system with CoreDNS, istio-system with istiod)
    have no L3/L4 policy at all, and storefront is outside the mesh; of the application
    namespaces, default (ambient, STRICT, HBONE allowed, L4 AuthorizationPolicy) has no finding
    and shop (sidecar, Calico allow-lists by ServiceAccount) only lacks an AuthorizationPolicy
    in the mesh (KZT205)."""
    data = yaml.safe_load((CASES / "examples-shop.yaml").read_text(encoding="utf-8"))
    report = audited(str(SHOP))
    got = {
        (f.rule_id, f.obj, Path(f.location.file).name if f.location else "", where(f)[2])
        for f in report.findings
    }
    want = {(e["rule"], e["object"], e["file"], e["line"]) for e in data["findings"]}
    assert got == want
    assert report.score == data["score"]
    assert {ns.namespace: ns.score for ns in report.namespaces} == data["namespaces"]


def _finding(rule_id: str, severity: FindingSeverity, namespace: str | None) -> Finding:
    return Finding(
        rule_id=rule_id,
        severity=severity,
        title="t",
        message="m",
        principle=Principle.LEAST_PRIVILEGE,
        obj="Pod x/y",
        namespace=namespace,
        location=Location("f.yaml", 1, 1),
        remediation="r",
    )


def test_score_counts_each_rule_once_per_namespace_and_weights_by_workloads() -> None:
    high, medium, low = FindingSeverity.HIGH, FindingSeverity.MEDIUM, FindingSeverity.LOW
    findings = [
        _finding("KZT101", high, "a"),
        _finding("KZT303", medium, "a"),
        _finding("KZT303", medium, "a"),  # same rule again: no extra penalty
        _finding("KZT601", low, "b"),
        _finding("KZT201", high, None),
    ]
    overall, namespaces, cluster = score(findings, {"a": 3, "b": 1, "c": 0})
    by_ns = {ns.namespace: ns for ns in namespaces}
    assert by_ns["a"].score == 100 - PENALTY[high] - PENALTY[medium] == 72
    assert by_ns["a"].findings == 3 and by_ns["a"].rules == ("KZT101", "KZT303")
    assert by_ns["b"].score == 98
    assert by_ns["c"].score == 100
    # weights 3, 1 and 1 (a namespace without workloads counts once), minus the cluster rule
    assert overall == round((3 * 72 + 98 + 100) / 5 - PENALTY[high]) == 63
    assert cluster == ("KZT201",)


def test_score_is_floored_at_zero() -> None:
    findings = [_finding(f"KZT1{i:02d}", FindingSeverity.HIGH, "a") for i in range(1, 7)]
    overall, namespaces, _ = score(findings, {"a": 1})
    assert namespaces[0].score == 0 and overall == 0


def test_at_least_filters_by_severity() -> None:
    report = audited(str(CASES / "KZT101" / "k8s-no-policy-fail.yaml"))
    assert all(f.severity is FindingSeverity.HIGH for f in report.at_least(FindingSeverity.HIGH))
    assert len(report.at_least(FindingSeverity.LOW)) == len(report.findings)
