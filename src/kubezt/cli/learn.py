"""`kubezt learn` (flow logs → least-privilege intent) and `kubezt replay` (flow logs against a
manifest set: what would break)."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from kubezt.analysis.replay import Replayer, ReplayGroup, ReplayResult, with_workloads
from kubezt.cli.common import (
    EXIT_FINDING,
    EXIT_INPUT,
    EXIT_OK,
    LoadOptions,
    Output,
    emit,
    err,
    guarded,
    load_options,
    load_paths,
    out,
)
from kubezt.cli.compile import ModeOpt
from kubezt.cli.tables import Column, NoHeadersOpt, plain, write_listing
from kubezt.dialects.flows import FlowStats, read_flows
from kubezt.dialects.intent import parse_intent_data
from kubezt.generate.intent import intent_document
from kubezt.generate.learn import DEFAULT_MAX_PATHS, Learner
from kubezt.ir.flows import FlowFormat, FlowRecord
from kubezt.ir.intent import Mode
from kubezt.report.atomic import write_atomic
from kubezt.report.flows import learned_intent_text, replay_document, replay_sarif

FlowsArg = Annotated[
    list[str],
    typer.Argument(help="Flow-log files (plain or gzip), or - for stdin.", show_default=False),
]
ApiServerOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--api-server",
        metavar="CIDR",
        help="Address(es) of the Kubernetes API server: flows from them are its calls into "
        "admission webhooks (Envoy and ztunnel logs name only addresses); repeatable.",
    ),
]
FormatOpt = Annotated[
    FlowFormat | None,
    typer.Option(
        "--format", help="Flow-log format (default: detected from each file's first line)."
    ),
]
HEADER = """\
# Learned by kubezt learn from observed flows: every call below was seen allowed (evidence in
# the comment above it). Review it, then `kubezt compile` it and check the result with
# `kubezt replay FLOWS... OUT-DIR MANIFESTS...` before applying.
"""


@contextmanager
def _progress(
    paths: list[str], quiet: bool = False
) -> Iterator[Callable[[str], Callable[[int], None]] | None]:
    """A progress bar over the bytes of the flow logs, on stderr when it is a terminal (not
    with --quiet)."""
    sizes = {p: os.path.getsize(p) for p in paths if p != "-" and os.path.isfile(p)}
    if quiet or not err.is_terminal or not sizes:
        yield None
        return
    with Progress(
        TextColumn("reading flows"),
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
    ) as bar:
        task = bar.add_task("flows", total=sum(sizes.values()))
        order = list(sizes)

        def for_file(path: str) -> Callable[[int], None]:
            start = sum(sizes[p] for p in order[: order.index(path)]) if path in sizes else 0

            def update(position: int) -> None:
                bar.update(task, completed=start + position)

            return update

        yield for_file


def _stream(
    paths: list[str],
    flow_format: FlowFormat | None,
    stats: FlowStats,
    sink: Callable[[FlowRecord], None],
    quiet: bool = False,
) -> None:
    with _progress(paths, quiet) as progress:
        for record in read_flows(paths, stats, flow_format=flow_format, progress=progress):
            sink(record)
    for diag in stats.diagnostics:
        err.print(diag.render(), markup=False)
    if stats.bad > len(stats.diagnostics):
        err.print(f"… and {stats.bad - len(stats.diagnostics)} more bad line(s)", markup=False)
    if stats.bad:
        err.print(
            f"kubezt: {stats.bad} of {stats.lines} flow-log line(s) could not be read and were "
            "left out",
            markup=False,
        )
    if not stats.records:
        err.print("kubezt: no flow records in the input", markup=False)
        raise typer.Exit(EXIT_INPUT)


@load_options(mesh=True)
def learn_command(
    flows: FlowsArg,
    manifests: Annotated[
        list[str] | None,
        typer.Option(
            "--manifests",
            "-m",
            metavar="PATH",
            help="Manifests of the workloads (files or directories); repeatable. With "
            "--cluster/--context the workloads are read from the live cluster instead.",
        ),
    ] = None,
    output: Annotated[
        str,
        typer.Option(
            "-o",
            "--output",
            metavar="FILE",
            help="Intent file to write (atomically), or - for stdout.",
        ),
    ] = "-",
    name: Annotated[
        str, typer.Option(metavar="NAME", help="metadata.name of the intent.")
    ] = "learned",
    mode: ModeOpt = None,
    namespace: Annotated[
        list[str] | None,
        typer.Option(
            metavar="NAMESPACE",
            help="Namespace to take into scope; repeatable (default: every namespace a "
            "learned workload runs in, but system namespaces).",
        ),
    ] = None,
    max_paths: Annotated[
        int,
        typer.Option(
            "--max-paths",
            min=1,
            help="At most this many path patterns per call; ids become {*} segments first.",
        ),
    ] = DEFAULT_MAX_PATHS,
    flow_format: FormatOpt = None,
    api_server: ApiServerOpt = None,
    options: LoadOptions = LoadOptions(),
) -> None:
    """Write the least-privilege intent that admits the allowed flows of the flow logs:
    callers by identity, ports, HTTP methods and path templates, egress; every entry with
    its evidence. Exit codes: 0 written, 2 invalid input."""
    loaded = load_paths(manifests, options)
    learner = Learner(loaded.model, _networks(api_server))
    stats = FlowStats()
    _stream(flows, flow_format, stats, learner.add, options.quiet)
    result = learner.finish(
        name=name,
        mode=Mode(mode.value) if mode else None,
        namespaces=tuple(namespace or ()),
        max_paths=max_paths,
    )
    if not result.intent.services:
        err.print("kubezt: no application workloads in scope", markup=False)
        raise typer.Exit(EXIT_INPUT)
    guarded(lambda: parse_intent_data(intent_document(result.intent), "<learned>"))
    for note in result.notes:
        err.print(f"kubezt: note: {note}", markup=False)
    err.print(
        f"kubezt: {stats.records} flow(s) read, {result.learned} learned, {result.denied} not "
        f"allowed (left out), {result.unresolved} not joined to workloads; "
        f"{len(result.intent.grants)} call(s), {len(result.intent.egress)} egress entr(ies)",
        markup=False,
    )
    text = learned_intent_text(result, HEADER)
    if output == "-":
        typer.echo(text, nl=False)
        return
    try:
        write_atomic(Path(output), text)
    except OSError as exc:
        err.print(f"kubezt: cannot write {output}: {exc.strerror or exc}", markup=False)
        raise typer.Exit(EXIT_INPUT) from None


class ReplayOutput(StrEnum):
    TABLE = "table"
    WIDE = "wide"
    JSON = "json"
    YAML = "yaml"
    SARIF = "sarif"


@load_options(mesh=True)
def replay_command(
    flows: Annotated[
        list[str],
        typer.Argument(
            help="Flow-log files, then (after --) or with --manifests the manifest paths.",
            show_default=False,
        ),
    ],
    manifests: Annotated[
        list[str] | None,
        typer.Option(
            "--manifests",
            "-m",
            metavar="PATH",
            help="Manifests to replay against (files or directories); repeatable. Without it, "
            "arguments that are directories or YAML/JSON manifests are taken as manifests.",
        ),
    ] = None,
    workloads: Annotated[
        list[str] | None,
        typer.Option(
            "--workloads",
            "-w",
            metavar="PATH",
            help="Take the workloads (pods, controllers, Services, ServiceAccounts, "
            "namespaces) from these manifests, ignoring their policies: replay a new policy "
            "set (kubezt compile output) against the running workloads; repeatable.",
        ),
    ] = None,
    output: Annotated[
        ReplayOutput,
        typer.Option(
            "-o", "--output", help="Output format (wide: a plain table with more columns)."
        ),
    ] = ReplayOutput.TABLE,
    no_headers: NoHeadersOpt = False,
    flow_format: FormatOpt = None,
    api_server: ApiServerOpt = None,
    options: LoadOptions = LoadOptions(),
) -> None:
    """Replay observed flows against a manifest set with the exact evaluator: every flow that
    would be denied (would break), grouped by caller, callee and deciding policy, and every flow
    the cluster denied that the manifests allow. -o wide or --no-headers list one group per row
    (OUTCOME `breaks` or `disagrees`; the counts go to stderr). Exit codes: 0 nothing
    breaks, 1 something would break, 2 invalid input."""
    flow_paths, manifest_paths = _split(flows, manifests or [])
    if not manifest_paths:
        err.print("kubezt: no manifests given (directories, *.yaml, or --manifests)", markup=False)
        raise typer.Exit(EXIT_INPUT)
    if not flow_paths:
        err.print("kubezt: no flow logs given", markup=False)
        raise typer.Exit(EXIT_INPUT)
    loaded = load_paths(manifest_paths, options)
    model = loaded.model
    if workloads:
        model = with_workloads(model, load_paths(workloads, options).model)
    replayer = Replayer(model, _networks(api_server))
    stats = FlowStats()
    _stream(flow_paths, flow_format, stats, replayer.add, options.quiet)
    result = replayer.finish()
    if plain(output, no_headers):
        write_listing(
            GROUP_COLUMNS,
            group_rows(result),
            wide=output is ReplayOutput.WIDE,
            no_headers=no_headers,
        )
        for note in result.notes:
            err.print(f"note: {note}", markup=False)
        err.print(_summary(result), markup=False)
    elif output is ReplayOutput.TABLE:
        _table(result)
    elif output is ReplayOutput.SARIF:
        from kubezt import __version__

        emit(replay_sarif(result, version=__version__, base=os.getcwd()), Output.JSON)
    else:
        warnings = [w.render() for w in loaded.warnings] + [d.render() for d in stats.diagnostics]
        emit(replay_document(result, warnings), Output(output.value))
    raise typer.Exit(EXIT_OK if result.ok else EXIT_FINDING)


def _networks(cidrs: list[str] | None) -> tuple[str, ...]:
    """`--api-server` values, checked: exit 2 on one that is not an address or CIDR."""
    for cidr in cidrs or ():
        try:
            ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            err.print(
                f"kubezt: --api-server: expected an address or CIDR, got {cidr!r}", markup=False
            )
            raise typer.Exit(EXIT_INPUT) from None
    return tuple(cidrs or ())


MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")


def _split(arguments: list[str], manifests: list[str]) -> tuple[list[str], list[str]]:
    """Flow logs and manifest paths: directories and *.yaml/*.yml/*.json files are manifests
    (JSON flow logs are usually *.jsonl, *.log or *.gz), unless --manifests names them."""
    if manifests:
        return arguments, manifests
    flow_paths = [a for a in arguments if not _is_manifest(a)]
    return flow_paths, [a for a in arguments if _is_manifest(a)]


def _is_manifest(path: str) -> bool:
    return os.path.isdir(path) or path.endswith(MANIFEST_SUFFIXES)


GROUP_COLUMNS = (
    Column("OUTCOME"),
    Column("CALLER"),
    Column("CALLEE"),
    Column("PORT"),
    Column("REQUEST"),
    Column("DENIED BY"),
    Column("FLOWS"),
    Column("LAYER", wide=True),
    Column("FIRST SEEN AT", wide=True),
)


def group_rows(result: ReplayResult) -> list[list[str]]:
    """One row per group: the flows that would break, then those the cluster denied that the
    manifests allow (wide: the deciding layer and where the first flow was logged)."""
    return [
        _group_cells(outcome, g)
        for outcome, groups in (("breaks", result.breaks), ("disagrees", result.disagreements))
        for g in groups
    ]


def _group_cells(outcome: str, g: ReplayGroup) -> list[str]:
    """The cells of GROUP_COLUMNS for one group."""
    return [
        outcome,
        g.src,
        g.dst,
        f"{g.port}/{g.protocol.value}",
        g.request,
        g.policy or g.denied_by,
        str(g.count),
        g.denied_by,
        g.first,
    ]


def _summary(result: ReplayResult) -> str:
    verdict = (
        "nothing would break"
        if result.ok
        else f"{sum(g.count for g in result.breaks)} flow(s) in {len(result.breaks)} group(s) "
        "would break"
    )
    return (
        f"{result.evaluated} flow(s) replayed ({result.distinct} distinct), {result.unresolved} "
        f"not joined to workloads, {result.skipped} skipped: {verdict}"
    )


def _table(result: ReplayResult) -> None:
    for title, groups in (
        ("flows that would break", result.breaks),
        ("flows the cluster denied that the manifests allow", result.disagreements),
    ):
        if not groups:
            continue
        table = Table(title=title)
        for column in (
            "caller",
            "callee",
            "port",
            "request",
            "denied by",
            "flows",
            "first seen at",
        ):
            table.add_column(column)
        for g in groups:
            # the listing's cells without OUTCOME (the table's title) and LAYER
            cells = _group_cells("", g)
            table.add_row(*cells[1:7], cells[8])
        out.print(table)
    for note in result.notes:
        err.print(f"note: {note}", markup=False)
    out.print(_summary(result), markup=False)
