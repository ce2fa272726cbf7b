"""`kubezt blast-radius`: what an attacker holding one workload's pod reaches, or every workload
ranked by how far it reaches."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from kubezt.analysis.blast_radius import Access, BlastRadius, Rank, Reached, blast_radius, rank
from kubezt.cli.common import (
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
from kubezt.cli.port_cells import ports_text
from kubezt.cli.progress import shown
from kubezt.cli.render import requests_cell
from kubezt.cli.tables import (
    Column,
    ListOutput,
    ListOutputOpt,
    NoHeadersOpt,
    plain,
    write_listing,
)
from kubezt.engine.outside import evaluate_outside
from kubezt.engine.reach import evaluate
from kubezt.engine.requests import AllRequests, NoRequests, RequestSet
from kubezt.ir.requests import HttpRequest
from kubezt.report.analysis_documents import blast_radius_document, ranking_document


@load_options()
def blast_radius_command(
    args: Annotated[
        list[str],
        typer.Argument(
            metavar="[WORKLOAD] PATH",
            help="The workload held (namespace/name of a Pod or controller), then manifest "
            "files or directories (or - for stdin). With --all, only the paths.",
            show_default=False,
        ),
    ],
    hops: Annotated[
        int | None,
        typer.Option(
            metavar="N", help="Stop after this many hops (default: until nothing new).", min=1
        ),
    ] = None,
    all_workloads: Annotated[
        bool,
        typer.Option(
            "--all", help="Rank every workload by blast radius (transitive, then direct reach)."
        ),
    ] = False,
    output: ListOutputOpt = ListOutput.TABLE,
    no_headers: NoHeadersOpt = False,
    options: LoadOptions = LoadOptions(),
) -> None:
    """What an attacker holding a pod of WORKLOAD (its address and its ServiceAccount's
    certificate) reaches: hop 1 is every workload it may connect to, and every workload reached
    becomes a new foothold, hop by hop, with the ports and the requests allowed. Also lists the
    workloads sharing its identity (same namespace and ServiceAccount, same SPIFFE ID).

    kubezt blast-radius shop/customer examples/shop --hops 2

    kubezt blast-radius --all examples/shop

    -o wide or --no-headers list one connection per row (with --all: one workload per row).

    Exit codes: 0 success, 2 invalid input."""
    if all_workloads:
        if hops is not None:
            usage_error("--hops applies to one workload; --all ranks the full transitive reach")
        workload, paths = None, args
    else:
        if len(args) < (1 if options.live else 2):
            usage_error(
                "expected WORKLOAD then at least one PATH (or --all with paths only), e.g. "
                "kubezt blast-radius shop/customer examples/shop"
            )
        workload, paths = args[0], args[1:]
    loaded = load_paths(paths, options)
    with shown(options.quiet, "evaluating every connection"):
        reach = guarded(lambda: evaluate(loaded.model))
    wide = output is ListOutput.WIDE
    if workload is None:
        ranks = rank(reach)
        if plain(output, no_headers):
            write_listing(RANK_COLUMNS, rank_rows(ranks), wide=wide, no_headers=no_headers)
        elif output is ListOutput.TABLE:
            ranking_table(out, ranks)
        else:
            emit(ranking_document(ranks, loaded.warnings), Output(output.value))
        return
    outside = guarded(lambda: evaluate_outside(loaded.model))
    result = guarded(lambda: blast_radius(reach, workload, hops, outside))
    if plain(output, no_headers):
        write_listing(REACHED_COLUMNS, reached_rows(result, wide), wide=wide, no_headers=no_headers)
        if result.truncated:
            err.print(f"kubezt: --hops {result.hops} stopped the search", markup=False)
    elif output is ListOutput.TABLE:
        blast_radius_table(out, result)
    else:
        emit(blast_radius_document(result, loaded.warnings), Output(output.value))


REACHED_COLUMNS = (
    Column("HOP"),
    Column("WORKLOAD"),
    Column("VIA"),
    Column("PORT"),
    Column("REQUESTS"),
)
RANK_COLUMNS = (
    Column("RANK"),
    Column("WORKLOAD"),
    Column("REACHED"),
    Column("DIRECT"),
    Column("SAME IDENTITY"),
    Column("IDENTITY", wide=True),
)


def reached_rows(result: BlastRadius, wide: bool) -> list[list[str]]:
    """One row per connection a foothold may open (wide: with the requests that pass)."""
    return [
        [
            str(r.hop),
            r.workload,
            a.via,
            f"{a.port_label}/{a.protocol}",
            requests_cell(a.requests, wide),
        ]
        for r in (*result.reached, *result.outside)
        for a in r.access
    ]


def rank_rows(ranks: list[Rank]) -> list[list[str]]:
    return [
        [str(n), r.workload, str(r.reached), str(r.direct), str(r.shared_identity), r.identity]
        for n, r in enumerate(ranks, 1)
    ]


def blast_radius_table(console: Console, result: BlastRadius) -> None:
    head = Text(f"Blast radius of {result.workload}", style="bold")
    head.append(f" (identity {result.identity}): ", style="")
    head.append(
        f"{len(result.reached)} workload(s) reached, {len(result.direct)} directly, "
        f"in {result.depth} hop(s); {len(result.outside)} outside address cell(s)"
    )
    console.print(head)
    if result.reached or result.outside:
        table = Table(show_edge=False, pad_edge=False, box=None, title_justify="left")
        table.add_column("hop", justify="right", no_wrap=True)
        table.add_column("workload", no_wrap=True)
        table.add_column("via", no_wrap=True)
        table.add_column("ports and requests")
        for r in (*result.reached, *result.outside):
            table.add_row(str(r.hop), r.workload, ", ".join(r.via), "\n".join(access_lines(r)))
        console.print(table)
    if result.truncated:
        console.print(
            Text(
                f"--hops {result.hops} stopped the search: the last footholds reach more.",
                style="yellow",
            )
        )
    if result.shared_identity:
        console.print(
            f"Shares its identity with {len(result.shared_identity)} workload(s): "
            + ", ".join(result.shared_identity),
            markup=False,
        )
    else:
        console.print("No other workload shares its identity.", markup=False)


def access_lines(reached: Reached) -> list[str]:
    """One line per foothold, protocol and requests, its port cells together
    (`from a/b: 80,other/TCP: GET /x`; `all/TCP` when they cover every port)."""
    groups: dict[tuple[str, str, RequestSet], list[Access]] = {}
    for a in reached.access:
        groups.setdefault((a.via, a.protocol, a.requests), []).append(a)
    several = len(reached.via) > 1
    return [
        (f"from {via}: " if several else "")
        + ports_text([a.cell for a in same], [a.port_label for a in same], protocol)
        + requests_suffix(requests)
        for (via, protocol, requests), same in groups.items()
    ]


def ranking_table(console: Console, ranks: list[Rank]) -> None:
    if not ranks:
        console.print("no workloads in the input")
        return
    table = Table(
        title="Workloads by blast radius (reached transitively, then directly)",
        title_justify="left",
        show_edge=False,
        pad_edge=False,
        box=None,
    )
    table.add_column("#", justify="right", no_wrap=True)
    table.add_column("workload", no_wrap=True)
    table.add_column("reached", justify="right", no_wrap=True)
    table.add_column("direct", justify="right", no_wrap=True)
    table.add_column("same identity", justify="right", no_wrap=True)
    for n, r in enumerate(ranks, 1):
        table.add_row(
            str(n),
            r.workload,
            str(r.reached),
            str(r.direct),
            str(r.shared_identity),
        )
    console.print(table)


def requests_suffix(requests: RequestSet) -> str:
    """ "" for every request, else `: GET /a, POST *` (the representative requests that pass)."""
    if isinstance(requests, AllRequests):
        return ""
    if isinstance(requests, NoRequests):
        return ": no request"
    return ": " + ", ".join(request_text(r) for r in requests.summary)


def request_text(request: HttpRequest) -> str:
    text = f"{request.method} {request.path}"
    if request.host:
        text += f" host={request.host}"
    if request.headers == (("*", "*"),):
        text += " headers=*"
    else:
        text += "".join(f" {k}={v}" for k, v in request.headers)
    return text
