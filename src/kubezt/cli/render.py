"""Terminal rendering (rich): reach matrices and explanations. Decides nothing."""

from __future__ import annotations

from collections import defaultdict

from rich.console import Console
from rich.table import Table
from rich.text import Text

from kubezt.analysis.nearest import NearestRule
from kubezt.engine.cells import OTHER
from kubezt.engine.explain import Effect, Verdict
from kubezt.engine.index import iter_bits
from kubezt.engine.reach import Reachability
from kubezt.engine.requests import AllRequests, NoRequests, RequestSet
from kubezt.ir.requests import HttpRequest
from kubezt.report.steps import step_text

MATRIX_LIMIT = 40
"""Above this many workloads `reach` summarises by namespace instead of drawing matrices."""


def requests_cell(requests: RequestSet, wide: bool) -> str:
    """`all`, `none`, or how many witness requests pass (wide: which, `*` = any value)."""
    if isinstance(requests, AllRequests):
        return "all"
    if isinstance(requests, NoRequests):
        return "none"
    summary = requests.summary
    if not wide:
        return f"some ({len(summary)})"
    return "; ".join(
        f"{r.method} {r.path}" + (f" host={r.host}" if r.host else "") for r in summary
    )


EFFECT_STYLE = {
    Effect.ALLOW: "green",
    Effect.DENY: "red",
    Effect.CONTINUE: "yellow",
    Effect.INFO: "dim",
}


def reach_tables(console: Console, result: Reachability) -> None:
    """One matrix per destination port cell (`80/TCP`, `8000-8080/TCP`, `other/TCP`: ports no
    input names); cells with the same matrix share one table. Rows are sources, numbered
    columns destinations."""
    ids = result.workload_ids
    allowed: dict[tuple[str, str], set[tuple[str, str]]] = defaultdict(set)
    order: dict[tuple[str, str], tuple[int, str]] = {}
    for src, dst, port, protocol in result.connections():
        cell = (result.port_label(dst, port, protocol), protocol)
        allowed[cell].add((src, dst))
    targets: dict[tuple[str, str], set[str]] = defaultdict(set)
    workloads = result.model.topology.workloads
    for key, bits in result.plan.items():
        for ci in iter_bits(bits):
            for wi in result.classes[ci].members:
                dst = workloads[wi].id
                cell = (result.port_label(dst, key.port, key.protocol), key.protocol.value)
                targets[cell].add(dst)
                order[cell] = min(order.get(cell, (key.port, "")), (key.port, ""))
    if not ids:
        console.print("no workloads in the input")
        return
    tables: dict[tuple[frozenset[tuple[str, str]], tuple[str, ...]], list[str]] = {}
    for cell in sorted(targets, key=lambda c: (c[1] == "SCTP", c[1], c[0] == OTHER, order[c])):
        dsts = tuple(sorted(targets[cell]))
        pairs = frozenset(allowed.get(cell, set()))
        tables.setdefault((pairs, dsts), []).append(f"{cell[0]}/{cell[1]}")
    for (pairs, dsts), names in tables.items():
        table = Table(
            title=f"{', '.join(names)}: {len(pairs)} allowed of {len(ids) * len(dsts)} connections",
            title_justify="left",
            show_edge=False,
            pad_edge=False,
            box=None,
        )
        table.add_column("source \\ destination", no_wrap=True)
        for n, _ in enumerate(dsts, 1):
            table.add_column(str(n), justify="center", no_wrap=True)
        for src in ids:
            cells = [
                Text("✓", style="green") if (src, dst) in pairs else Text("·", style="dim")
                for dst in dsts
            ]
            table.add_row(src, *cells)
        console.print(table)
        legend = "  ".join(f"{n}={dst}" for n, dst in enumerate(dsts, 1))
        console.print(Text(f"destinations: {legend}", style="dim"))
        console.print()
    if result.cuts is not None:
        console.print(
            Text(
                f"{OTHER}: the ports no policy, Service or mesh resource names "
                "(containers may listen on ports they do not declare)",
                style="dim",
            )
        )


def request_line(
    src: str,
    dst: str,
    port: int,
    protocol: str,
    principal: str | None,
    service: str | None,
    http: HttpRequest | None,
) -> str:
    """The request as judged: ends, port, the source's identity, the address, the HTTP request."""
    text = f"request: {src} → {dst} {port}/{protocol}"
    text += f", as {principal}" if principal else ", without a mesh identity"
    text += f", via Service {service}" if service else ", to the pod address"
    if http is not None:
        text += f", {http.method} {http.path}"
        if http.host:
            text += f" host={http.host}"
        text += "".join(f" {k}={v}" for k, v in http.headers)
    return text


def nearest(console: Console, rule: NearestRule) -> None:
    where = f" ({rule.location})" if rule.location else ""
    console.print(
        Text(f"  nearest rule: {rule.policy} spec.rules[{rule.rule}]{where}", style="bold"),
    )
    for m in rule.mismatches:
        console.print(
            f"    {m.field} requires {' or '.join(m.required)}; the caller had {m.had}",
            markup=False,
        )


def step_rows(verdict: Verdict) -> list[list[str]]:
    """The steps of an explanation as listing rows: layer, direction, effect, reason, detail,
    and where the deciding object is written."""
    rows = []
    for step in verdict.steps:
        where = ""
        if step.source is not None and step.source.location is not None:
            where = str(step.source.location)
            where += f" {step.source.path}" if step.source.path else ""
        rows.append(
            [
                step.layer.value,
                step.direction.value.lower() if step.direction is not None else "",
                step.effect.value,
                step.reason,
                step_text(step),
                where,
            ]
        )
    return rows


def explanation(
    console: Console, src: str, dst: str, port: int, protocol: str, verdict: Verdict
) -> None:
    style = "bold green" if verdict.allowed else "bold red"
    head = Text(f"{src} → {dst} {port}/{protocol}: ")
    head.append(verdict.verdict.upper(), style=style)
    if verdict.denied_by is not None:
        head.append(f" (denied by {verdict.denied_by.value})")
    console.print(head)
    for step in verdict.steps:
        line = Text("  ")
        line.append(f"[{step.layer.value}]", style="bold")
        if step.direction is not None:
            line.append(f" {step.direction.value.lower()}")
        line.append(" ")
        line.append(step.effect.value, style=EFFECT_STYLE[step.effect])
        line.append(f" {step.reason}: {step_text(step)}")
        if step.source is not None and step.source.location is not None:
            where = f" ({step.source.location}"
            where += f", {step.source.path})" if step.source.path else ")"
            line.append(where, style="dim")
        console.print(line)
