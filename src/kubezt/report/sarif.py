"""SARIF 2.1.0 for audit results, in the shape GitHub code scanning accepts. Renders only.

One run; `tool.driver.rules` lists every rule that ran (id, name, short and full description,
help, default level, `security-severity` and tags with the principle); each finding becomes a
result whose location is the manifest line it names, as a URI relative to the source root
(`uriBaseId` `%SRCROOT%`), with a `partialFingerprints` entry that stays the same when lines
move. Severities map to SARIF levels and GitHub security severities through `SEVERITY_TABLE`
only (after checkov's `checkov/common/output/sarif.py`).

Spec: https://docs.oasis-open.org/sarif/sarif/v2.1.0/ ; GitHub's subset:
https://docs.github.com/en/code-security/code-scanning/integrating-with-code-scanning/sarif-support-for-code-scanning
"""

from __future__ import annotations

import hashlib
from pathlib import PurePath, PurePosixPath
from typing import Any
from urllib.parse import quote

from kubezt.analysis.audit import AuditReport, Finding, FindingSeverity, RuleSpec
from kubezt.errors import Location
from kubezt.report.audit import finding_message

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
SARIF_VERSION = "2.1.0"
TOOL_NAME = "kubezt"
INFORMATION_URI = "https://github.com/kubezt/kubezt"
SRCROOT = "%SRCROOT%"
FINGERPRINT_KEY = "kubeztFinding/v1"

SEVERITY_TABLE: dict[FindingSeverity, tuple[str, str]] = {
    FindingSeverity.HIGH: ("error", "8.0"),
    FindingSeverity.MEDIUM: ("warning", "5.5"),
    FindingSeverity.LOW: ("note", "3.0"),
}
"""Finding severity → (SARIF `level`, GitHub `security-severity`: high ≥ 7.0, medium ≥ 4.0,
low ≥ 0.1)."""


def level(severity: FindingSeverity) -> str:
    return SEVERITY_TABLE[severity][0]


def security_severity(severity: FindingSeverity) -> str:
    return SEVERITY_TABLE[severity][1]


def artifact_uri(file: str, base: str | None) -> tuple[str, str | None]:
    """(URI, uriBaseId) of an input file: relative to `base` (the source root, e.g. the
    working directory the paths were given from) when the file is inside it, else an absolute
    `file:` URI. Relative file names are taken relative to `base`."""
    path = PurePath(file)
    if base is not None:
        root = PurePath(base)
        full = path if path.is_absolute() else root / path
        parts: list[str] = []
        for part in full.parts:
            if part == "..":
                if parts:
                    parts.pop()
            elif part != ".":
                parts.append(part)
        normal = PurePath(*parts) if parts else full
        try:
            rel = normal.relative_to(root)
        except ValueError:
            rel = None
        if rel is not None:
            return quote(PurePosixPath(*rel.parts).as_posix()), SRCROOT
        if normal.is_absolute():
            return _file_uri(normal), None
    if path.is_absolute():
        return _file_uri(path), None
    return quote(PurePosixPath(*path.parts).as_posix()), SRCROOT


def _file_uri(path: PurePath) -> str:
    posix = PurePosixPath(*path.parts).as_posix()
    if not posix.startswith("/"):
        posix = "/" + posix.replace("\\", "/")
    return "file://" + quote(posix)


def rule_descriptor(spec: RuleSpec) -> dict[str, Any]:
    lvl = level(spec.severity)
    return {
        "id": spec.id,
        "name": spec.name,
        "shortDescription": {"text": spec.title},
        "fullDescription": {"text": spec.help},
        "help": {
            "text": f"{spec.title}\n\n{spec.help}\n\nPrinciple: {spec.principle.value}.",
            "markdown": (
                f"**{spec.title}** ({spec.id})\n\n{spec.help}\n\n"
                f"Zero-trust principle: `{spec.principle.value}`."
            ),
        },
        "defaultConfiguration": {"level": lvl},
        "properties": {
            "security-severity": security_severity(spec.severity),
            "tags": ["security", "kubernetes", "zero-trust", spec.principle.value],
        },
    }


def _location(finding: Finding, base: str | None) -> dict[str, Any] | None:
    loc: Location | None = finding.location
    if loc is None or not loc.file:
        return None
    uri, uri_base = artifact_uri(loc.file, base)
    artifact: dict[str, Any] = {"uri": uri}
    if uri_base is not None:
        artifact["uriBaseId"] = uri_base
    physical: dict[str, Any] = {"artifactLocation": artifact}
    if loc.line > 0:
        region: dict[str, Any] = {"startLine": loc.line}
        if loc.column > 0:
            region["startColumn"] = loc.column
        physical["region"] = region
    return {
        "physicalLocation": physical,
        "logicalLocations": [
            {
                "name": finding.obj,
                "kind": "resource",
                **({"fullyQualifiedName": f"{finding.obj}#{finding.path}"} if finding.path else {}),
            }
        ],
    }


def _fingerprint(finding: Finding, uri: str) -> str:
    """Stable across line moves: rule, object, field path and file, not the line."""
    digest = hashlib.sha256()
    for part in (finding.rule_id, finding.obj, finding.path, uri):
        digest.update(part.encode("utf-8"))
        digest.update(b"\x00")
    return digest.hexdigest()[:32]


def render_sarif(report: AuditReport, *, version: str, base: str | None = None) -> dict[str, Any]:
    """The SARIF log of an audit. `version` is kubezt's version; `base` the directory that
    relative URIs are relative to (GitHub resolves them against the repository root)."""
    index = {r.id: i for i, r in enumerate(report.rules)}
    results: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for finding in report.findings:
        location = _location(finding, base)
        uri = location["physicalLocation"]["artifactLocation"]["uri"] if location else ""
        fingerprint = _fingerprint(finding, uri)
        seen[fingerprint] = seen.get(fingerprint, 0) + 1
        result: dict[str, Any] = {
            "ruleId": finding.rule_id,
            "level": level(finding.severity),
            "message": {
                "text": f"{finding.obj}: {finding_message(finding)}.\nFix: {finding.remediation}"
            },
            "locations": [location] if location else [],
            "partialFingerprints": {FINGERPRINT_KEY: f"{fingerprint}:{seen[fingerprint]}"},
            "properties": {
                "object": finding.obj,
                "principle": finding.principle.value,
                "remediation": finding.remediation,
                **({"namespace": finding.namespace} if finding.namespace else {}),
                **({"path": finding.path} if finding.path else {}),
            },
        }
        if finding.rule_id in index:
            result["ruleIndex"] = index[finding.rule_id]
        results.append(result)
    run: dict[str, Any] = {
        "tool": {
            "driver": {
                "name": TOOL_NAME,
                "version": version,
                "semanticVersion": version,
                "informationUri": INFORMATION_URI,
                "rules": [rule_descriptor(r.spec) for r in report.rules],
            }
        },
        "columnKind": "unicodeCodePoints",
        "results": results,
        "properties": {"score": report.score},
    }
    if base is not None:
        root = PurePath(base)
        if root.is_absolute():
            run["originalUriBaseIds"] = {SRCROOT: {"uri": _file_uri(root).rstrip("/") + "/"}}
    return {"$schema": SARIF_SCHEMA, "version": SARIF_VERSION, "runs": [run]}
