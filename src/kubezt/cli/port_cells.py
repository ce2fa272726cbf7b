"""How a group of port cells reads in a table: `80,443,other/TCP`, or `all/TCP` when the
cells cover every port of the protocol. Decides nothing."""

from __future__ import annotations

from collections.abc import Sequence

from kubezt.engine.cells import PORT_MAX, PORT_MIN, PortCell


def ports_text(cells: Sequence[PortCell | None], labels: Sequence[str], protocol: str) -> str:
    """`labels` name the cells (None: a single port, labelled by its number); the cells are
    distinct cells of one destination, hence disjoint."""
    covered = sum(1 if c is None else c.size for c in cells)  # distinct cells: disjoint
    if covered == PORT_MAX - PORT_MIN + 1:
        return f"all/{protocol}"
    return ",".join(labels) + f"/{protocol}"
