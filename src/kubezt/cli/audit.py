"""`kubezt audit`: zero-trust findings with file:line, a score, and SARIF for code scanning.

Exit codes: 0 no finding at or above `--fail-on` (default high), 1 such findings, 2 invalid
input.
"""

from __future__ import annotations

import os
from enum import StrEnum
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from kubezt.analysis.audit import AuditReport, FindingSeverity, audit
from kubezt.cli.common import (
    EXIT_FINDING,
    EXIT_OK,
    LoadOptions,
    Output,
    PathsArg,
    emit,
    err,
    guarded,
    load_options,
    load_paths,
    out,
)
from kubezt.cli.pipes import decided
from kubezt.cli.progress import shown
from kubezt.cli.tables import Column, NoHeadersOpt, plain, write_listing
from kubezt.engine.reach import evaluate
from kubezt.report.audit import audit_document
from kubezt.report.sarif import render_sarif

SEVERITY_STYLE = {
    FindingSeverity.HIGH: "bold red",
    FindingSeverity.MEDIUM: "yellow",
    FindingSeverity.LOW: "cyan",
}


class AuditOutput(StrEnum):
    TABLE = "table"
    WIDE = "wide"
    JSON = "json"
    YAML = "yaml"
    SARIF = "sarif"


class FailOn(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


@load_options()
def audit_command(
    paths: PathsArg = None,
    output: Annotated[
        AuditOutput,
        typer.Option(
            "-o", "--output", help="Output format (wide: a plain table with more columns)."
        ),
    ] = AuditOutput.TABLE,
    no_headers: NoHeadersOpt = False,
    fail_on: Annotated[
        FailOn,
        typer.Option("--fail-on", help="Exit 1 when a finding has this severity or a higher one."),
    ] = FailOn.HIGH,
    namespace: Annotated[
        list[str] | None,
        typer.Option(
            "--namespace",
            "-n",
            metavar="NAMESPACE",
            help="Report and score only these namespaces (repeatable; cluster-wide findings "
            "are always reported). The whole input is still analysed.",
        ),
    ] = None,
    options: LoadOptions = LoadOptions(),
) -> None:
    """Audit the manifests against zero-trust practice: default deny, mTLS, identities
    instead of IPs, least privilege, ambient mesh pitfalls and policy hygiene. Each finding has
    a stable rule id (KZT101…), a severity, the file:line to fix and a remediation.

    -o wide or --no-headers list one finding per row (the counts go to stderr).

    Exit code 0 no finding at or above --fail-on, 1 such findings, 2 input error."""
    loaded = load_paths(paths, options)
    scope = frozenset(namespace) if namespace else None
    with shown(options.quiet, "evaluating and auditing"):
        report = guarded(lambda: audit(evaluate(loaded.model), namespaces=scope))
    failing = report.at_least(FindingSeverity(fail_on.value))
    decided(EXIT_FINDING if failing else EXIT_OK)
    if plain(output, no_headers):
        write_listing(
            FINDING_COLUMNS,
            finding_rows(report),
            wide=output is AuditOutput.WIDE,
            no_headers=no_headers,
        )
        err.print(f"{counts_line(report)}; score {report.score}", markup=False)
    elif output is AuditOutput.TABLE:
        audit_tables(out, report)
    elif output is AuditOutput.SARIF:
        from kubezt import __version__

        emit(render_sarif(report, version=__version__, base=os.getcwd()), Output.JSON)
    else:
        emit(audit_document(report, loaded.warnings), Output(output.value))
    raise typer.Exit(EXIT_FINDING if failing else EXIT_OK)


def audit_tables(console: Console, report: AuditReport) -> None:
    """Findings grouped by namespace (cluster-wide ones first), then the scores."""
    groups: dict[str, list[int]] = {}
    for i, finding in enumerate(report.findings):
        groups.setdefault(finding.namespace or "", []).append(i)
    for ns in sorted(groups):
        table = Table(
            title=f"namespace {ns}" if ns else "cluster-wide",
            title_justify="left",
            show_edge=False,
            pad_edge=False,
            box=None,
        )
        table.add_column("rule", no_wrap=True)
        table.add_column("severity", no_wrap=True)
        table.add_column("finding")
        for i in groups[ns]:
            f = report.findings[i]
            cell = Text(f.obj, style="bold")
            if f.location is not None:
                cell.append(f"  {f.location}" + (f" {f.path}" if f.path else ""), style="dim")
            cell.append(f"\n{f.message}\n")
            cell.append(f"fix: {f.remediation}", style="italic")
            table.add_row(f.rule_id, Text(f.severity.value, style=SEVERITY_STYLE[f.severity]), cell)
        console.print(table)
        console.print()
    if not report.findings:
        console.print(Text("no findings", style="bold green"))
    scores = Table(title="score", title_justify="left", show_edge=False, box=None)
    scores.add_column("namespace")
    scores.add_column("score", justify="right")
    scores.add_column("findings", justify="right")
    scores.add_column("rules")
    for item in report.namespaces:
        scores.add_row(item.namespace, str(item.score), str(item.findings), ", ".join(item.rules))
    if report.cluster_rules:
        scores.add_row("(cluster-wide)", "", "", ", ".join(report.cluster_rules))
    scores.add_row(Text("overall", style="bold"), Text(str(report.score), style="bold"), "", "")
    console.print(scores)
    console.print(counts_line(report))


def counts_line(report: AuditReport) -> str:
    counts = {s: sum(1 for f in report.findings if f.severity is s) for s in FindingSeverity}
    return f"{len(report.findings)} finding(s): " + ", ".join(
        f"{counts[s]} {s.value}" for s in reversed(FindingSeverity)
    )


FINDING_COLUMNS = (
    Column("RULE"),
    Column("SEVERITY"),
    Column("NAMESPACE"),
    Column("KIND"),
    Column("NAME"),
    Column("LOCATION"),
    Column("PRINCIPLE", wide=True),
    Column("PATH", wide=True),
    Column("MESSAGE", wide=True),
    Column("FIX", wide=True),
)


def finding_rows(report: AuditReport) -> list[list[str]]:
    """One row per finding, in the report's order."""
    return [
        [
            f.rule_id,
            f.severity.value,
            f.namespace or "",
            *f.obj.partition(" ")[::2],
            str(f.location) if f.location is not None else "",
            str(f.principle.value),
            f.path,
            f.message,
            f.remediation,
        ]
        for f in report.findings
    ]
