"""The connections for which only some requests pass, kept per class cell.

The mesh composition decides a (port, destination class) cell for a set of source classes at
once; the sources for which only some requests pass come out as disjoint bitsets, each with the
requests that pass. `PartialCells` keeps those bitsets as they are and answers the per-source
question `(port, destination, source) → Some` by testing the source's bit, so a cluster with
millions of such (cell, source) entries never writes them one by one.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import TypeVar, overload

from kubezt.engine.index import bit_indices
from kubezt.engine.requests import Some
from kubezt.ir.ports import PortKey

_T = TypeVar("_T")

CellKey = tuple[PortKey, int]
Groups = tuple[tuple[int, Some], ...]
"""Disjoint bitsets of source classes, each with the requests that pass for them."""


class PartialCells(Mapping[tuple[PortKey, int, int], Some]):
    """(port, destination class, source class) → the requests that pass, when not all do.

    Read as a mapping; written a cell at a time (`set_cell`, `pop_cell`)."""

    __slots__ = ("_cells",)

    def __init__(self, cells: Mapping[CellKey, Groups] | None = None) -> None:
        self._cells: dict[CellKey, Groups] = dict(cells) if cells else {}

    def set_cell(self, key: PortKey, d: int, groups: Sequence[tuple[int, Some]]) -> None:
        """The partial sources of one cell (replacing what it held; empty groups are left
        out, and a cell without any is removed)."""
        kept = tuple((members, requests) for members, requests in groups if members)
        if kept:
            self._cells[(key, d)] = kept
        else:
            self._cells.pop((key, d), None)

    def pop_cell(self, key: PortKey, d: int) -> dict[int, Some]:
        """Remove one cell and return its sources with their requests."""
        out: dict[int, Some] = {}
        for members, requests in self._cells.pop((key, d), ()):
            for s in bit_indices(members):
                out[s] = requests
        return out

    def cell(self, key: PortKey, d: int) -> Groups:
        """The disjoint source bitsets of one cell with their requests."""
        return self._cells.get((key, d), ())

    def copy(self) -> PartialCells:
        return PartialCells(self._cells)

    def __getitem__(self, item: tuple[PortKey, int, int]) -> Some:
        key, d, s = item
        for members, requests in self._cells.get((key, d), ()):
            if members >> s & 1:
                return requests
        raise KeyError(item)

    @overload
    def get(self, item: tuple[PortKey, int, int], /) -> Some | None: ...
    @overload
    def get(self, item: tuple[PortKey, int, int], default: Some, /) -> Some: ...
    @overload
    def get(self, item: tuple[PortKey, int, int], default: _T, /) -> Some | _T: ...
    def get(self, item: tuple[PortKey, int, int], default: object = None) -> object:
        key, d, s = item
        for members, requests in self._cells.get((key, d), ()):
            if members >> s & 1:
                return requests
        return default

    def __contains__(self, item: object) -> bool:
        if not isinstance(item, tuple) or len(item) != 3:
            return False
        key, d, s = item
        return any(members >> s & 1 for members, _ in self._cells.get((key, d), ()))

    def __iter__(self) -> Iterator[tuple[PortKey, int, int]]:
        for (key, d), groups in self._cells.items():
            for members, _ in groups:
                for s in bit_indices(members):
                    yield (key, d, s)

    def __len__(self) -> int:
        return sum(members.bit_count() for groups in self._cells.values() for members, _ in groups)

    def __repr__(self) -> str:
        return f"PartialCells({len(self._cells)} cells, {len(self)} entries)"
