"""Documents for `kubezt learn` and `kubezt replay`: the learned intent as YAML text with its
evidence in comments, and the replay result as JSON/YAML and SARIF 2.1.0. Renders only."""

from __future__ import annotations

import re
from typing import Any

import yaml

from kubezt.analysis.replay import Outcome, ReplayGroup, ReplayResult
from kubezt.generate.intent import intent_document
from kubezt.generate.learn import LearnResult
from kubezt.report.sarif import (
    INFORMATION_URI,
    SARIF_SCHEMA,
    SARIF_VERSION,
    TOOL_NAME,
    artifact_uri,
)

_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
"""libyaml's emitter when PyYAML has it (the same YAML, several times faster)."""

REPLAY_SCHEMA = "kubezt.io/replay/v1"
_ENTRY_LINE = re.compile(r"^(\s*)- name: (\S+)\s*$")

RULES = {
    Outcome.BREAKS: (
        "KZT901",
        "flow-would-break",
        "An observed flow the manifests deny: applying them would break it.",
        "error",
    ),
    Outcome.DISAGREES: (
        "KZT902",
        "flow-model-disagreement",
        "A flow the cluster denied that the manifests allow: model and cluster disagree.",
        "warning",
    ),
}


def learned_intent_text(result: LearnResult, header: str = "") -> str:
    """The intent as YAML, each learned entry preceded by its evidence as comments, and a
    header saying what the compiled policies grant although flows may not show it."""
    document = intent_document(result.intent)
    body = yaml.dump(document, Dumper=_DUMPER, sort_keys=False, allow_unicode=True, width=4096)
    by_name: dict[str, str] = {}
    for entry, evidence in result.evidence.items():
        section, _, name = entry.partition("/")
        if section in ("calls", "ingress.allow", "egress", "exceptions"):
            by_name[name] = evidence.comment()
    lines: list[str] = []
    for line in body.splitlines():
        match = _ENTRY_LINE.match(line)
        if match and match.group(2) in by_name:
            lines.append(f"{match.group(1)}# {by_name[match.group(2)]}")
        lines.append(line)
    top = [header.rstrip("\n")] if header else []
    top.append("# Granted by the compiled policies although flow logs rarely show it:")
    top += [f"#   - {note}" for note in result.platform]
    platform_evidence = sorted(
        (entry, ev) for entry, ev in result.evidence.items() if entry.startswith("platform/")
    )
    if platform_evidence:
        top.append("# Platform traffic in the flows:")
        top += [f"#   {entry}: {ev.comment()}" for entry, ev in platform_evidence]
    for note in result.notes:
        top.append(f"# note: {note}")
    return "\n".join(top + lines) + "\n"


def _group_document(g: ReplayGroup) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "kind": g.outcome.value,
        "src": g.src,
        "dst": g.dst,
        "port": g.port,
        "protocol": g.protocol.value,
    }
    if g.request:
        doc["request"] = g.request
    if g.denied_by:
        doc["deniedBy"] = g.denied_by
    if g.policy:
        doc["policy"] = g.policy
    doc.update({"flows": g.count, "lines": g.lines, "first": g.first})
    return doc


def replay_document(result: ReplayResult, warnings: list[str] | None = None) -> dict[str, Any]:
    return {
        "schemaVersion": REPLAY_SCHEMA,
        "ok": result.ok,
        "flows": result.flows,
        "evaluated": result.evaluated,
        "distinct": result.distinct,
        "unresolved": result.unresolved,
        "skipped": result.skipped,
        "breaks": [_group_document(g) for g in result.breaks],
        "disagreements": [_group_document(g) for g in result.disagreements],
        "notes": list(result.notes),
        "warnings": list(warnings or []),
    }


def replay_sarif(result: ReplayResult, *, version: str, base: str | None = None) -> dict[str, Any]:
    """One SARIF result per group, located at the flow-log line of its first flow."""
    rules = [
        {
            "id": rule_id,
            "name": name,
            "shortDescription": {"text": text},
            "fullDescription": {"text": text},
            "defaultConfiguration": {"level": level},
        }
        for rule_id, name, text, level in RULES.values()
    ]
    index = {outcome: i for i, outcome in enumerate(RULES)}
    results = []
    for g in result.groups:
        rule_id, _, _, level = RULES[g.outcome]
        uri, base_id = artifact_uri(g.file, base)
        location: dict[str, Any] = {"uri": uri}
        if base_id:
            location["uriBaseId"] = base_id
        what = f"{g.src} → {g.dst}:{g.port}/{g.protocol.value}" + (
            f" {g.request}" if g.request else ""
        )
        if g.outcome is Outcome.BREAKS:
            message = f"{what}: seen {g.count} time(s), denied by {g.policy or g.denied_by}"
        else:
            message = f"{what}: the cluster denied it {g.count} time(s), the manifests allow it"
        results.append(
            {
                "ruleId": rule_id,
                "ruleIndex": index[g.outcome],
                "level": level,
                "message": {"text": message},
                "locations": [
                    {
                        "physicalLocation": {
                            "artifactLocation": location,
                            "region": {"startLine": max(g.line, 1)},
                        }
                    }
                ],
                "properties": _group_document(g),
            }
        )
    run = {
        "tool": {
            "driver": {
                "name": TOOL_NAME,
                "version": version,
                "semanticVersion": version,
                "informationUri": INFORMATION_URI,
                "rules": rules,
            }
        },
        "columnKind": "unicodeCodePoints",
        "results": results,
    }
    return {"$schema": SARIF_SCHEMA, "version": SARIF_VERSION, "runs": [run]}
