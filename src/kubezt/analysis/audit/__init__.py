"""Zero-trust audit: findings about the analysed input, each tied to a stable rule, a principle
and the place in the manifests to fix, plus a 0-100 score.

`audit(reach)` runs the ordered `RULES` (one check per rule, grouped in one module per
finding family: `isolation`, `mtls`, `identity`, `breadth`, `ambient`, `hygiene`) over one
reachability result. Checks read engine facts and the IR; they never print, read the clock or
the environment, and never evaluate policy a second way.
"""

from kubezt.analysis.audit.finding import (
    AuditRule,
    Finding,
    FindingSeverity,
    Principle,
    RuleSpec,
)
from kubezt.analysis.audit.report import PENALTY, AuditReport, NamespaceScore, audit, score
from kubezt.analysis.audit.rules import RETIRED, RULES, rule

__all__ = [
    "PENALTY",
    "RETIRED",
    "RULES",
    "AuditReport",
    "AuditRule",
    "Finding",
    "FindingSeverity",
    "NamespaceScore",
    "Principle",
    "RuleSpec",
    "audit",
    "rule",
    "score",
]
