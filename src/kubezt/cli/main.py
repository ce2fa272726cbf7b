"""The `kubezt` command line: one module per command group registers on the shared app."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from kubezt.cli import (
    analyse,  # noqa: F401  (registers reach, explain)
    audit,  # noqa: F401
    blast,  # noqa: F401
    compile,  # noqa: F401  (registers compile)
    diff,  # noqa: F401
    init,  # noqa: F401  (registers init)
    verify,  # noqa: F401  (registers verify)
)
from kubezt.cli.common import EXIT_OK, app, err, out


def version_callback(value: bool) -> None:
    if value:
        from kubezt import __version__

        out.print(f"kubezt {__version__}", markup=False)
        raise typer.Exit(EXIT_OK)


@app.callback()
def root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=version_callback, is_eager=True, help="Print the version."
        ),
    ] = False,
) -> None:
    """Make a Kubernetes cluster zero-trust and prove it."""


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:  # pragma: no cover - interactive only
        err.print("kubezt: interrupted", markup=False)
        sys.exit(130)
