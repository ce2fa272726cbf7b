"""kubectl-like plain tables: columns padded to their widest cell, never cut (in a pipe a name is
printed whole), written row by row in time linear in the size of the table. `--no-headers`
drops the header row and `-o wide` adds a listing's wide columns, as with kubectl.

Every command that lists things offers both: its `-o` choices include `wide` (`ListOutput`, or
the command's own choices with `wide` among them), it takes `--no-headers` (`NoHeadersOpt`), and
it describes its listing once as `Column`s and rows for `write_listing`. With `-o wide` or
`--no-headers` the listing is written as such a table, one row per item, nothing else on
stdout; otherwise the command draws its usual table."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, TextIO

import typer

NoHeadersOpt = Annotated[
    bool,
    typer.Option("--no-headers", help="Print the listing as a plain table without its header row."),
]


class ListOutput(StrEnum):
    """`-o` of a command that lists things."""

    TABLE = "table"
    WIDE = "wide"
    JSON = "json"
    YAML = "yaml"


ListOutputOpt = Annotated[
    ListOutput,
    typer.Option("-o", "--output", help="Output format (wide: a plain table with more columns)."),
]

NONE = "<none>"
"""An empty cell, as kubectl prints it (a cell is never blank, so columns split on spaces)."""


@dataclass(frozen=True, slots=True)
class Column:
    header: str
    wide: bool = False
    """Shown only with `-o wide`."""


def plain(output: str, no_headers: bool) -> bool:
    """Whether the listing is asked for as a plain table: `-o wide` or `--no-headers`."""
    return output == ListOutput.WIDE.value or no_headers


def write_listing(
    columns: Sequence[Column],
    rows: Iterable[Sequence[str]],
    *,
    wide: bool,
    no_headers: bool,
    file: TextIO | None = None,
) -> None:
    """The rows (one cell per column) as a plain table; without `wide` the wide columns are
    left out. An empty cell is written `<none>`."""
    keep = [i for i, column in enumerate(columns) if wide or not column.wide]
    write_table(
        [columns[i].header for i in keep],
        [[row[i] or NONE for i in keep] for row in rows],
        no_headers=no_headers,
        file=file,
    )


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
