"""Help that shows placeholders people read (PATH, PORT, NAMESPACE/NAME), not Python types.

Typer prints an argument's annotation next to its name (`PATH <list[str]>`); an argument's
name or metavar already says what it is, so the type is left out. Options name their
placeholder with `metavar=` where they are declared.
"""

from __future__ import annotations

from typer import core


def _no_type(self: core.TyperArgument, ctx: object) -> None:
    return None


def readable_help() -> None:
    core.TyperArgument.display_type_rich = _no_type  # type: ignore[assignment, method-assign]
