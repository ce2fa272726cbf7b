"""kubectl-like plain tables: columns padded to their widest cell, never cut (in a pipe a name is
printed whole), written row by row in time linear in the size of the table. `--no-headers`
drops the header row, as with kubectl."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Annotated, TextIO

import typer

NoHeadersOpt = Annotated[
    bool, typer.Option("--no-headers", help="Print tables without their header row.")
]


def write_table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    no_headers: bool = False,
    file: TextIO | None = None,
) -> None:
    """Columns separated by three spaces; the last column is not padded."""
    stream = file or sys.stdout
    every = rows if no_headers else [headers, *rows]
    if not every:
        return
    widths = [0] * len(headers)
    for row in every:
        for i, cell in enumerate(row):
            if len(cell) > widths[i]:
                widths[i] = len(cell)
    last = len(headers) - 1
    out = []
    for row in every:
        out.append(
            "   ".join(
                cell if i == last else cell.ljust(widths[i]) for i, cell in enumerate(row)
            ).rstrip()
        )
        if len(out) >= 4096:
            stream.write("\n".join(out) + "\n")
            out.clear()
    if out:
        stream.write("\n".join(out) + "\n")
