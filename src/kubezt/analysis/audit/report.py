"""Run the audit rules over one reachability result and score the outcome.

Score (0-100, higher is better), per namespace and overall:

* a namespace loses points once per *rule* that has at least one finding in it, by the rule's
  severity: high 20, medium 8, low 2 (`PENALTY`); its score is `max(0, 100 - sum)`. Counting
  rules rather than findings keeps a namespace with many workloads comparable to a small one:
  the score says which weaknesses a namespace has, the findings say where;
* the overall score is the mean of the namespace scores weighted by each namespace's number of
  workloads (at least 1), minus the penalties of the rules with cluster-wide findings (those
  with no namespace: GlobalNetworkPolicies, the mesh-wide mTLS mode), floored at 0 and rounded
  to an integer.

Scored namespaces are those with a workload of the input or a finding.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from kubezt.analysis.audit._facts import Workloads
from kubezt.analysis.audit.finding import AuditRule, Finding, FindingSeverity
from kubezt.analysis.audit.rules import RULES
from kubezt.engine.reach import Reachability

PENALTY: dict[FindingSeverity, int] = {
    FindingSeverity.HIGH: 20,
    FindingSeverity.MEDIUM: 8,
    FindingSeverity.LOW: 2,
}


@dataclass(frozen=True, slots=True)
class NamespaceScore:
    namespace: str
    score: int
    workloads: int
    findings: int
    rules: tuple[str, ...]
    """Ids of the rules with findings in this namespace."""


@dataclass(frozen=True, slots=True)
class AuditReport:
    findings: tuple[Finding, ...]
    """Sorted: high severity first, then by rule, namespace, object and place."""
    namespaces: tuple[NamespaceScore, ...]
    score: int
    """Overall score, 0-100."""
    cluster_rules: tuple[str, ...]
    """Ids of the rules with cluster-wide findings (no namespace)."""
    rules: tuple[AuditRule, ...]
    """The rules that ran, in order."""

    def at_least(self, severity: FindingSeverity) -> tuple[Finding, ...]:
        """Findings of `severity` or worse."""
        return tuple(f for f in self.findings if f.severity.rank >= severity.rank)


def _penalty(findings: Sequence[Finding]) -> tuple[int, tuple[str, ...]]:
    by_rule = {f.rule_id: f.severity for f in findings}
    return sum(PENALTY[s] for s in by_rule.values()), tuple(sorted(by_rule))


def score(
    findings: Sequence[Finding], workloads: dict[str, int]
) -> tuple[int, tuple[NamespaceScore, ...], tuple[str, ...]]:
    """(overall score, per-namespace scores, cluster-wide rule ids), as documented above.
    `workloads` maps each namespace to its number of workloads."""
    by_ns: dict[str, list[Finding]] = {ns: [] for ns in workloads}
    cluster: list[Finding] = []
    for f in findings:
        if f.namespace is None:
            cluster.append(f)
        else:
            by_ns.setdefault(f.namespace, []).append(f)
    scores: list[NamespaceScore] = []
    for ns, items in sorted(by_ns.items()):
        penalty, rules = _penalty(items)
        scores.append(
            NamespaceScore(ns, max(0, 100 - penalty), workloads.get(ns, 0), len(items), rules)
        )
    cluster_penalty, cluster_rules = _penalty(cluster)
    if scores:
        weights = [max(1, s.workloads) for s in scores]
        mean = sum(w * s.score for w, s in zip(weights, scores, strict=True)) / sum(weights)
    else:
        mean = 100.0
    overall = max(0, round(mean - cluster_penalty))
    return overall, tuple(scores), cluster_rules


def audit(
    reach: Reachability,
    *,
    rules: Sequence[AuditRule] = RULES,
    namespaces: frozenset[str] | None = None,
) -> AuditReport:
    """Run `rules` (all of them by default, in order) over a reachability result (from
    `kubezt.evaluate(model)`) and the model it was evaluated on, and score the findings.

    With `namespaces`, only findings in those namespaces (and cluster-wide ones) are reported
    and scored: the scope a team owns, e.g. the namespaces of an intent. Every check still sees
    the whole input. Every check reads the same result; none evaluates policy again. Findings
    are sorted and deterministic for a given input.
    """
    findings: list[Finding] = []
    for r in rules:
        findings.extend(r.check(reach.input_model, reach))
    if namespaces is not None:
        findings = [f for f in findings if f.namespace is None or f.namespace in namespaces]
    findings.sort(key=Finding.sort_key)
    counts: dict[str, int] = {}
    for w in Workloads(reach).real():
        if namespaces is None or w.namespace in namespaces:
            counts[w.namespace] = counts.get(w.namespace, 0) + 1
    overall, scores, cluster_rules = score(findings, counts)
    return AuditReport(tuple(findings), scores, overall, cluster_rules, tuple(rules))
