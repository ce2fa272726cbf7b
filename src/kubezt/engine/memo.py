"""Indexes built once per input object and found again by its identity.

The model's tuples (policies, waypoints, workloads) are immutable and large; an index over one
of them is kept with the tuple itself, so the id in the key cannot be reused while the entry
lives. A few entries are kept (the models of one process: a diff's two sides, incremental
updates), the oldest dropped first.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import TypeVar

T = TypeVar("T")

KEEP = 8


def by_identity(
    cache: dict[Hashable, tuple[object, T]],
    holder: object,
    build: Callable[[], T],
    *extra: Hashable,
) -> T:
    """The index `build` makes of `holder` (with `extra` parameters), built on first use."""
    key = (id(holder), *extra)
    entry = cache.get(key)
    if entry is not None and entry[0] is holder:
        return entry[1]
    value = build()
    if len(cache) >= KEEP:
        cache.pop(next(iter(cache)))
    cache[key] = (holder, value)
    return value
