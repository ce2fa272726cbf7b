"""What an audit reports: findings, the rules that produce them, severities and principles.

Owns the data only. Checks (one module per finding family) build findings through their rule's
`RuleSpec.finding()`, so a finding always carries its rule's id, title, severity and principle.
Must not evaluate anything or render text for a terminal.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from kubezt.errors import Location

if TYPE_CHECKING:
    from kubezt.engine.explain import Step
    from kubezt.engine.reach import Reachability
    from kubezt.ir.model import Model


class FindingSeverity(StrEnum):
    """How bad a finding is; ordered low < medium < high (`rank`)."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {FindingSeverity.LOW: 1, FindingSeverity.MEDIUM: 2, FindingSeverity.HIGH: 3}


class Principle(StrEnum):
    """The zero-trust principle a finding violates."""

    DENY_ALL_BY_DEFAULT = "deny-all-by-default"
    IDENTITY_NOT_IP = "identity-not-ip"
    LEAST_PRIVILEGE = "least-privilege"
    ENCRYPT_IN_TRANSIT = "encrypt-in-transit"


@dataclass(frozen=True, slots=True, kw_only=True)
class Finding:
    """One problem, on one object, at one place in the input."""

    rule_id: str
    """Stable rule code, `KZT101` …"""
    severity: FindingSeverity
    title: str
    """The rule's title (the same for every finding of the rule)."""
    message: str
    """What is wrong with this object, in one or two sentences."""
    principle: Principle
    obj: str
    """The object the finding is about, `Kind ns/name` (or `Kind name` when cluster-scoped)."""
    namespace: str | None
    """The namespace the finding counts against; None for cluster-wide findings."""
    location: Location | None
    """Where the object (or the offending field) is written."""
    path: str = ""
    """The field inside the object (`spec.ingress[0].from[0]`), when the finding is about one."""
    remediation: str
    """What to change, naming the fix."""
    because: Step | None = None
    """The evaluation step that shows the problem; the report adds its sentence to `message`
    in parentheses."""

    def sort_key(self) -> tuple[int, str, str, str, str, int, int, str, str]:
        """High severity first, then by rule, namespace, object and place."""
        loc = self.location or Location("")
        return (
            -self.severity.rank,
            self.rule_id,
            self.namespace or "",
            self.obj,
            loc.file,
            loc.line,
            loc.column,
            self.path,
            self.message,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class RuleSpec:
    """A rule's stable identity and documentation (checkov's check metadata)."""

    id: str
    """`KZT###`: grouped by hundreds (1xx isolation, 2xx mTLS, 3xx identity, 4xx broad allows,
    5xx ambient layering, 6xx hygiene); never reused once published."""
    name: str
    """PascalCase name (SARIF `rule.name`)."""
    title: str
    severity: FindingSeverity
    principle: Principle
    help: str
    """Why it matters and how to fix it, in a few sentences."""

    def finding(
        self,
        *,
        obj: str,
        namespace: str | None,
        message: str,
        remediation: str,
        location: Location | None,
        path: str = "",
        because: Step | None = None,
    ) -> Finding:
        return Finding(
            rule_id=self.id,
            severity=self.severity,
            title=self.title,
            message=message,
            principle=self.principle,
            obj=obj,
            namespace=namespace,
            location=location,
            path=path,
            remediation=remediation,
            because=because,
        )


Check = Callable[["Model", "Reachability"], list[Finding]]


@dataclass(frozen=True, slots=True)
class AuditRule:
    """A rule and the check function that produces its findings."""

    spec: RuleSpec
    check: Check

    @property
    def id(self) -> str:
        return self.spec.id
