"""JSON-ready documents for audit results (`kubezt audit -o json|yaml`). Renders only.

```
schemaVersion: kubezt.io/audit/v1
score: 0-100
namespaces: [{namespace, score, workloads, findings, rules}]
clusterRules: [rule ids with cluster-wide findings]
findings: [{ruleId, severity, title, principle, object, namespace, file, line, column,
            location, path, message, remediation}]
rules: [{id, name, title, severity, principle, help}]
warnings: [rendered input warnings]
```
"""

from __future__ import annotations

from typing import Any

from kubezt.analysis.audit import AuditReport, Finding, RuleSpec
from kubezt.errors import Diagnostic
from kubezt.report.steps import step_text

AUDIT_SCHEMA = "kubezt.io/audit/v1"


def finding_document(finding: Finding) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "ruleId": finding.rule_id,
        "severity": finding.severity.value,
        "title": finding.title,
        "principle": finding.principle.value,
        "object": finding.obj,
        "namespace": finding.namespace,
    }
    loc = finding.location
    if loc is not None:
        doc["file"] = loc.file
        if loc.line:
            doc["line"] = loc.line
        if loc.column:
            doc["column"] = loc.column
        doc["location"] = str(loc)
    if finding.path:
        doc["path"] = finding.path
    doc["message"] = finding_message(finding)
    doc["remediation"] = finding.remediation
    return doc


def finding_message(finding: Finding) -> str:
    """The finding's message, with the sentence of the step that shows it in parentheses."""
    why = step_text(finding.because) if finding.because is not None else ""
    return f"{finding.message} ({why})" if why else finding.message


def rule_document(spec: RuleSpec) -> dict[str, Any]:
    return {
        "id": spec.id,
        "name": spec.name,
        "title": spec.title,
        "severity": spec.severity.value,
        "principle": spec.principle.value,
        "help": spec.help,
    }


def audit_document(report: AuditReport, warnings: tuple[Diagnostic, ...] = ()) -> dict[str, Any]:
    return {
        "schemaVersion": AUDIT_SCHEMA,
        "score": report.score,
        "namespaces": [
            {
                "namespace": ns.namespace,
                "score": ns.score,
                "workloads": ns.workloads,
                "findings": ns.findings,
                "rules": list(ns.rules),
            }
            for ns in report.namespaces
        ],
        "clusterRules": list(report.cluster_rules),
        "findings": [finding_document(f) for f in report.findings],
        "rules": [rule_document(r.spec) for r in report.rules],
        "warnings": [d.render() for d in warnings],
    }
