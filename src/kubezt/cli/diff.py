"""`kubezt diff`: connectivity before and after a change (e.g. main and a pull request), each
change explained by the policy that decided it on each side."""

from __future__ import annotations

import dataclasses
import sys
from enum import StrEnum
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from kubezt.analysis.diff import Allowance, Change, Decision, Diff, diff_models
from kubezt.analysis.diff import diff as compare
from kubezt.cli.blast import request_text, requests_suffix
from kubezt.cli.common import (
    EXIT_FINDING,
    EXIT_OK,
    LoadOptions,
    Output,
    emit,
    err,
    guarded,
    load_options,
    load_paths,
    out,
    usage_error,
)
from kubezt.cli.pipes import decided
from kubezt.cli.port_cells import ports_text
from kubezt.cli.progress import shown
from kubezt.cli.render import requests_cell
from kubezt.cli.tables import Column, NoHeadersOpt, plain, write_listing
from kubezt.dialects.registry import LoadResult
from kubezt.engine.reach import evaluate
from kubezt.engine.requests import AllRequests
from kubezt.report.analysis_documents import diff_document
from kubezt.report.steps import step_text

CLUSTER = "cluster"


class DiffOutput(StrEnum):
    TABLE = "table"
    WIDE = "wide"
    JSON = "json"
    YAML = "yaml"
    HTML = "html"


DiffOutputOpt = Annotated[
    DiffOutput,
    typer.Option(
        "-o",
        "--output",
        help="Output format; wide: a plain table with more columns; html: the report page of "
        "NEW with the changed edges highlighted (a pull-request artefact), on stdout.",
    ),
]


@load_options()
def diff_command(
    old: Annotated[
        str,
        typer.Argument(
            metavar="OLD",
            help="Manifests before the change: a file or directory (e.g. main), or `cluster` "
            "for the live cluster (--context/--kubeconfig choose which).",
        ),
    ],
    new: Annotated[
        str | None,
        typer.Argument(
            metavar="NEW",
            help="Manifests after the change: a file or directory (e.g. the PR); `cluster` for "
            "the live cluster. With OLD `cluster` (or --cluster), NEW is applied over the live "
            "state: what applying it would change.",
            show_default=False,
        ),
    ] = None,
    output: DiffOutputOpt = DiffOutput.TABLE,
    no_headers: NoHeadersOpt = False,
    options: LoadOptions = LoadOptions(),
) -> None:
    """Which connections NEW allows that OLD denied and the reverse, by workload pair, port
    and protocol; on HTTP ports also a change in the requests allowed (all, some, none). Each
    change names the layer and policy that decided it in OLD and in NEW. A workload that only
    one side has is listed as added or removed (with its connection counts), not compared.

    kubezt diff main/manifests pr/manifests

    kubezt diff --cluster out/      (what applying out/ to the cluster would change)

    kubezt diff main/manifests cluster   (what the cluster holds that main does not)

    -o wide or --no-headers list one change per row (the summary and the workloads added or
    removed go to stderr).

    Exit codes: 0 nothing newly allowed, 1 something newly allowed (a connection, every request
    where only some passed, more requests, or an added workload that connects or is connected
    to), 2 invalid input."""
    if options.cluster:
        if new is not None:
            usage_error("with --cluster give one PATH: the manifests to apply over the cluster")
        old, new = CLUSTER, old
    if new is None:
        usage_error("expected OLD and NEW (or --cluster NEW)")
    on_cluster = dataclasses.replace(options, cluster=True)
    on_files = dataclasses.replace(options, cluster=False, context=None, kubeconfig=None)

    def side(path: str, over: str | None) -> LoadResult:
        if path == CLUSTER:
            return load_paths([over] if over else [], on_cluster)
        return load_paths([path], on_files)

    before = side(old, None)
    after = side(CLUSTER, new) if old == CLUSTER and new != CLUSTER else side(new, None)
    with shown(options.quiet, "comparing every connection"):
        if output is DiffOutput.HTML:
            # The page draws the new side's whole matrix, so both sides are evaluated in full.
            old_reach = guarded(lambda: evaluate(before.model))
            new_reach = guarded(lambda: evaluate(after.model))
            result = guarded(lambda: compare(old_reach, new_reach))
        else:
            result = guarded(lambda: diff_models(before.model, after.model))
    decided(EXIT_FINDING if result.opens else EXIT_OK)
    if plain(output, no_headers):
        wide = output is DiffOutput.WIDE
        write_listing(CHANGE_COLUMNS, change_rows(result, wide), wide=wide, no_headers=no_headers)
        summary(err, result)
    elif output is DiffOutput.TABLE:
        diff_table(out, result)
    elif output is DiffOutput.HTML:
        from kubezt.cli.report import page_for

        page = page_for(new_reach, [new], f"kubezt diff: {old} → {new}", result, old)
        sys.stdout.write(page)
    else:
        emit(diff_document(result, before.warnings, after.warnings), Output(output.value))
    raise typer.Exit(EXIT_FINDING if result.opens else EXIT_OK)


CHANGE_COLUMNS = (
    Column("SOURCE"),
    Column("DESTINATION"),
    Column("PORT"),
    Column("CHANGE"),
    Column("OLD"),
    Column("NEW"),
    Column("OLD DECISION", wide=True),
    Column("NEW DECISION", wide=True),
    Column("REQUESTS", wide=True),
)


def change_rows(result: Diff, wide: bool) -> list[list[str]]:
    """One row per change: what each side allows (wide: which requests, the layer that decided
    on each side, and the requests gained or lost)."""
    return [
        [
            src,
            dst,
            f"{change.port_label}/{change.protocol}",
            change.kind.value,
            _allowance_cell(change.old, wide),
            _allowance_cell(change.new, wide),
            _decision_cell(change.old_decision),
            _decision_cell(change.new_decision),
            ", ".join(request_text(r) for r in change.requests),
        ]
        for src, dst, change in result.changes()
    ]


def _allowance_cell(allowance: Allowance, wide: bool) -> str:
    text = requests_cell(allowance.requests, wide) if allowance.allowed else "denied"
    return text if allowance.declared else f"{text} (port not declared)"


def _decision_cell(decision: Decision) -> str:
    if decision.allowed:
        return "allow"
    return f"deny by {decision.denied_by.value}" if decision.denied_by is not None else "deny"


def summary(console: Console, result: Diff) -> None:
    """The counts, then each workload only one side has."""
    opened, closed = len(result.opened), len(result.closed)
    head = Text()
    head.append(f"{opened} newly allowed", style="bold red" if opened else "bold")
    head.append(f", {closed} newly denied", style="bold green" if closed else "bold")
    head.append(
        f" across {len(result.pairs)} workload pair(s); "
        f"{len(result.added)} workload(s) added, {len(result.removed)} removed"
    )
    console.print(head)
    for title, items in (("added", result.added), ("removed", result.removed)):
        for p in items:
            console.print(
                f"{title}: {p.workload} (reaches {p.reaches}, reached by {p.reached_by})",
                markup=False,
            )


def diff_table(console: Console, result: Diff) -> None:
    """A summary line, one row per change, then each change's explanation on both sides."""
    summary(console, result)
    if not result.pairs:
        return
    table = Table(show_edge=False, pad_edge=False, box=None)
    for column in ("source", "destination", "port", "change", "old", "new"):
        table.add_column(column, no_wrap=column != "new" and column != "old")
    groups = grouped_changes(result)
    for src, dst, ports, change in groups:
        table.add_row(
            src,
            dst,
            ports,
            Text(change.kind.value, style="red" if change.kind.opens else "green"),
            _allowance(change.old),
            _allowance(change.new),
        )
    console.print(table)
    console.print()
    console.print(Text("Why", style="bold"))
    for src, dst, ports, change in groups:
        line = Text(f"{src} → {dst} {ports} ")
        line.append(change.kind.value, style="red" if change.kind.opens else "green")
        if change.requests:
            line.append(": " + ", ".join(request_text(r) for r in change.requests))
        console.print(line)
        _decision(console, "old", change.old_decision)
        _decision(console, "new", change.new_decision)


def grouped_changes(result: Diff) -> list[tuple[str, str, str, Change]]:
    """Changes of a pair that differ only by port cell, with the same verdicts and deciding
    steps on both sides, as one row: (src, dst, ports text, first change). The ports text
    lists the cells (`80,443,other/TCP`), or says `all/TCP` when they cover every port."""
    groups: dict[tuple[object, ...], list[Change]] = {}
    heads: dict[tuple[object, ...], tuple[str, str]] = {}
    for src, dst, change in result.changes():
        key = (
            src,
            dst,
            change.protocol,
            change.kind,
            change.old,
            change.new,
            change.requests,
            change.old_decision,
            change.new_decision,
        )
        groups.setdefault(key, []).append(change)
        heads[key] = (src, dst)
    rows: list[tuple[str, str, str, Change]] = []
    for group, changes in groups.items():
        ports = ports_text(
            [c.cell for c in changes], [c.port_label for c in changes], changes[0].protocol
        )
        rows.append((*heads[group], ports, changes[0]))
    return rows


def _allowance(allowance: Allowance) -> Text:
    if not allowance.allowed:
        text = Text("denied")
    elif isinstance(allowance.requests, AllRequests):
        text = Text("all requests")
    else:
        text = Text("only" + requests_suffix(allowance.requests).removeprefix(":"))
    if not allowance.declared:
        text.append(" (port not declared)", style="dim")
    return text


def _decision(console: Console, side: str, decision: Decision) -> None:
    line = Text(f"  {side}  ")
    line.append(
        "allow" if decision.allowed else "deny", style="green" if decision.allowed else "red"
    )
    if decision.denied_by is not None:
        line.append(f" by {decision.denied_by.value}")
    if decision.request is not None:
        line.append(f" for {request_text(decision.request)}")
    if decision.service is not None:
        svc = decision.service
        line.append(f" via Service {svc.namespace}/{svc.name}:{svc.port}")
    console.print(line)
    for step in decision.steps:
        text = Text(f"       [{step.layer.value}]")
        if step.direction is not None:
            text.append(f" {step.direction.value.lower()}")
        text.append(f" {step.reason}: {step_text(step)}")
        if step.source is not None and step.source.location is not None:
            text.append(f" ({step.source.location})", style="dim")
        console.print(text)
