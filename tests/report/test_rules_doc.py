"""docs/audit-rules.md lists every audit rule of the registry, as generated from it."""

from __future__ import annotations

from pathlib import Path

from kubezt.analysis.audit.rules import RULES
from kubezt.report.rules_doc import render

DOC = Path(__file__).resolve().parents[2] / "docs" / "audit-rules.md"


def test_rules_doc_is_generated_from_the_registry(update_golden: bool) -> None:
    if update_golden:
        DOC.write_text(render(), encoding="utf-8")
    assert DOC.read_text(encoding="utf-8") == render(), (
        "regenerate: python -m kubezt.report.rules_doc > docs/audit-rules.md"
    )


def test_every_rule_has_its_section_with_trigger_and_fix() -> None:
    text = DOC.read_text(encoding="utf-8")
    for r in RULES:
        section = text.split(f"\n## {r.id}\n", 1)[1].split("\n## ", 1)[0]
        assert r.spec.severity.value in section and r.spec.principle.value in section
        assert "*Triggered by:* " in section and len(section.split("*Triggered by:* ")[1]) > 20
        assert r.spec.help in section
