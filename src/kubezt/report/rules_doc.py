"""docs/audit-rules.md, generated from the audit rule registry (`python -m
kubezt.report.rules_doc > docs/audit-rules.md`; a test keeps the file equal to it)."""

from __future__ import annotations

import inspect

from kubezt.analysis.audit.rules import RETIRED, RULES

HEADER = """# Audit rules

Every rule `kubezt audit` runs, in the order it runs them: the stable id (never reused), the
severity, the zero-trust principle it checks, what triggers a finding and how to fix it. SARIF
output carries the same text (`rules[].help`). Ids are grouped by hundreds: 1xx deny all by
default at L3/L4, 2xx mTLS and mesh membership, 3xx identities, 4xx broad allows, 5xx ambient
layering, 6xx policy hygiene.

This file is generated from the rule registry (`src/kubezt/analysis/audit/rules.py`):
`python -m kubezt.report.rules_doc > docs/audit-rules.md`.

| id | name | severity | principle | title |
|---|---|---|---|---|
"""


def _trigger(rule_id: str, doc: str | None) -> str:
    text = inspect.cleandoc(doc or "").split("\n\n")[0].replace("\n", " ")
    return text.removeprefix(f"{rule_id}:").strip()


def render() -> str:
    lines = [HEADER.rstrip("\n")]
    for r in RULES:
        s = r.spec
        lines.append(
            f"| [{s.id}](#{s.id.lower()}) | {s.name} | {s.severity.value} | "
            f"{s.principle.value} | {s.title} |"
        )
    for r in RULES:
        s = r.spec
        lines += [
            "",
            f"## {s.id}",
            "",
            f"**{s.title}** — `{s.name}`, severity **{s.severity.value}**, principle "
            f"`{s.principle.value}`.",
            "",
            f"*Triggered by:* {_trigger(s.id, r.check.__doc__)}",
            "",
            f"*Why and how to fix:* {s.help}",
        ]
    lines += ["", "## Retired ids", "", ", ".join(sorted(RETIRED)) or "None so far.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    print(render(), end="")
