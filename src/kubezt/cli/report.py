"""`kubezt report`: the self-contained HTML report (graph, matrix, findings, blast radius)."""

from __future__ import annotations

from typing import Annotated

import typer

from kubezt.analysis.audit import audit
from kubezt.analysis.blast_radius import rank
from kubezt.analysis.diff import Diff
from kubezt.cli.common import (
    EXIT_OK,
    LoadOptions,
    PathsArg,
    err,
    guarded,
    load_options,
    load_paths,
)
from kubezt.cli.progress import Progress
from kubezt.engine.reach import Reachability, evaluate
from kubezt.report.atomic import write_atomic
from kubezt.report.html import DEFAULT_BUDGET, diff_data, render_html, report_data

OutFileOpt = Annotated[
    str,
    typer.Option("-o", "--output", metavar="FILE", help="Where to write the page (- for stdout)."),
]
BudgetOpt = Annotated[
    int,
    typer.Option(
        "--explain-budget",
        metavar="N",
        min=0,
        help="Precompute at most N explanations; past it an edge shows the `kubezt explain` "
        "command to run, and denied edges are drawn only when every edge fits.",
    ),
]
TitleOpt = Annotated[str | None, typer.Option(metavar="TEXT", help="Title of the page.")]


@load_options()
def report_command(
    paths: PathsArg = None,
    output: OutFileOpt = "report.html",
    title: TitleOpt = None,
    explain_budget: BudgetOpt = DEFAULT_BUDGET,
    options: LoadOptions = LoadOptions(),
) -> None:
    """One HTML file that opens offline (no network, everything inlined): the connectivity
    graph by namespace with drill-down to workloads (edges coloured by the layer that decides
    them, plaintext dashed, each outside address cell as a node), the reachability matrix as a
    heatmap with namespace, port and layer filters, the audit findings and scores, the
    blast-radius ranking (select a workload to see what it reaches hop by hop), and the
    explanation of an edge on click.

    kubezt report examples/shop -o report.html

    Exit codes: 0 written, 2 invalid input."""
    progress = Progress(options.quiet)
    progress.stage("loading manifests")
    loaded = load_paths(paths, options)
    progress.stage("evaluating every connection")
    reach = guarded(lambda: evaluate(loaded.model))
    sources = paths or ["cluster"]
    title = title or "kubezt report: " + " ".join(sources)
    page = page_for(reach, sources, title, budget=explain_budget, progress=progress)
    progress.done()
    write_page(page, output)
    raise typer.Exit(EXIT_OK)


def page_for(
    reach: Reachability,
    paths: list[str],
    title: str,
    changes: Diff | None = None,
    old: str = "",
    *,
    budget: int = DEFAULT_BUDGET,
    progress: Progress | None = None,
) -> str:
    """The report page of one reachability result; with `changes`, the diff page."""
    progress = progress or Progress(quiet=True)
    progress.stage("auditing")
    findings = audit(reach)
    progress.stage("ranking blast radius")
    ranks = rank(reach)
    data = report_data(
        reach, findings, ranks, title=title, paths=paths, budget=budget, progress=progress.step
    )
    if changes is not None:
        data = diff_data(data, changes, old, " ".join(paths))
    return render_html(data)


def write_page(page: str, output: str) -> None:
    if output == "-":
        import sys

        sys.stdout.write(page)
        return
    write_atomic(output, page)
    err.print(f"kubezt: wrote {output} ({len(page.encode()) // 1024} KiB)", markup=False)
