"""`kubezt verify`: does a cluster allow exactly what an intent grants?"""

from __future__ import annotations

import dataclasses
from typing import Any

import typer
from rich.table import Table

from kubezt.analysis.verify import Difference, VerifyResult, verify
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
from kubezt.cli.compile import IntentArg, ModeOpt
from kubezt.cli.pipes import decided
from kubezt.cli.port_cells import ports_text
from kubezt.cli.progress import shown
from kubezt.cli.tables import (
    Column,
    ListOutput,
    ListOutputOpt,
    NoHeadersOpt,
    plain,
    write_listing,
)
from kubezt.dialects.intent import load_intent
from kubezt.errors import Diagnostic
from kubezt.ir.intent import Mode
from kubezt.report.documents import port_fields, request_document

VERIFY_SCHEMA = "kubezt.io/verify/v1"


@load_options(mesh=False)
def verify_command(
    intent_path: IntentArg,
    paths: PathsArg = None,
    mode: ModeOpt = None,
    output: ListOutputOpt = ListOutput.TABLE,
    no_headers: NoHeadersOpt = False,
    options: LoadOptions = LoadOptions(),
) -> None:
    """Compare manifests and workloads with an intent: every connection (and HTTP request) the
    cluster allows that the intent does not grant, and every granted one it blocks.

    -o wide or --no-headers list one difference per row (the verdict goes to stderr).

    Exit code 0 no difference, 1 differences, 2 input error."""
    intent = guarded(lambda: load_intent(intent_path, Mode(mode.value) if mode else None))
    loaded = load_paths(
        paths,
        dataclasses.replace(
            options, root_namespace=intent.root_namespace, trust_domain=intent.trust_domain
        ),
    )
    with shown(options.quiet, "checking every connection against the intent"):
        result = guarded(lambda: verify(intent, loaded.model, Mode(mode.value) if mode else None))
    decided(EXIT_OK if result.ok else EXIT_FINDING)
    if plain(output, no_headers):
        wide = output is ListOutput.WIDE
        write_listing(
            DIFFERENCE_COLUMNS, difference_rows(result, wide), wide=wide, no_headers=no_headers
        )
        for note in result.notes:
            err.print(f"note: {note}", markup=False)
        err.print(_verdict(result), markup=False)
    elif output is ListOutput.TABLE:
        _table(result)
    else:
        emit(verify_document(result, loaded.warnings), Output(output.value))
    raise typer.Exit(EXIT_OK if result.ok else EXIT_FINDING)


DIFFERENCE_COLUMNS = (
    Column("DIFFERENCE"),
    Column("SOURCE"),
    Column("DESTINATION"),
    Column("PORT"),
    Column("REQUESTS"),
    Column("ENTRY", wide=True),
    Column("DENIED BY", wide=True),
    Column("DETAIL", wide=True),
)


def difference_rows(result: VerifyResult, wide: bool) -> list[list[str]]:
    """One row per difference (wide: the requests themselves, the intent entry, the layer
    that denied and the detail)."""
    return [
        [
            d.kind.value,
            d.src,
            d.dst,
            f"{d.port_label}/{d.protocol}" if d.port else "",
            _requests_cell(d, wide),
            d.entry,
            d.denied_by,
            d.detail,
        ]
        for d in result.differences
    ]


def _verdict(result: VerifyResult) -> str:
    verdict = (
        "matches the intent"
        if result.ok
        else f"differs from the intent in {len(result.differences)} place(s)"
    )
    return f"{result.checked} connections and requests checked: the cluster {verdict}"


def _requests_cell(diff: Difference, wide: bool) -> str:
    """`all` (the whole connection), or the requests that differ (how many; wide: which)."""
    if diff.requests is None:
        return _requests(diff)
    if not wide:
        return f"some ({len(diff.requests)})"
    return "; ".join(
        f"{r.method} {r.path}" + (f" host={r.host}" if r.host else "") for r in diff.requests
    )


def _requests(diff: Difference) -> str:
    if diff.requests is None:
        return "all" if diff.port else ""
    return ", ".join(
        f"{r.method} {r.path}" + (f" host={r.host}" if r.host else "") for r in diff.requests
    )


def _table(result: VerifyResult) -> None:
    intent = result.intent
    if result.differences:
        table = Table(title=f"intent {intent.name} ({intent.mode.value}): differences")
        for column in (
            "difference",
            "source",
            "destination",
            "port",
            "requests",
            "entry",
            "denied by / detail",
        ):
            table.add_column(column)
        groups: dict[tuple[object, ...], list[Difference]] = {}
        for d in result.differences:
            key = (d.kind, d.src, d.dst, d.protocol, d.requests, d.entry, d.denied_by, d.detail)
            groups.setdefault(key, []).append(d)
        for same in groups.values():
            d = same[0]
            port = (
                ports_text([x.cell for x in same], [x.port_label for x in same], d.protocol)
                if d.port
                else ""
            )
            table.add_row(
                d.kind.value,
                d.src,
                d.dst,
                port,
                _requests(d),
                d.entry,
                d.denied_by or d.detail,
            )
        out.print(table)
    for note in result.notes:
        err.print(f"note: {note}", markup=False)
    out.print(_verdict(result), markup=False)


def difference_document(d: Difference) -> dict[str, Any]:
    doc: dict[str, Any] = {"kind": d.kind.value, "src": d.src, "dst": d.dst}
    if d.port:
        if d.cell is not None:
            doc.update(port_fields(d.cell))
        else:
            doc["port"] = d.port
            doc["protocol"] = d.protocol
        doc["requests"] = "all" if d.requests is None else [request_document(r) for r in d.requests]
    for key, value in (("entry", d.entry), ("deniedBy", d.denied_by), ("detail", d.detail)):
        if value:
            doc[key] = value
    return doc


def verify_document(result: VerifyResult, warnings: tuple[Diagnostic, ...] = ()) -> dict[str, Any]:
    return {
        "schemaVersion": VERIFY_SCHEMA,
        "intent": result.intent.name,
        "mode": result.intent.mode.value,
        "checked": result.checked,
        "ok": result.ok,
        "differences": [difference_document(d) for d in result.differences],
        "notes": list(result.notes),
        "warnings": [w.render() for w in warnings],
    }
