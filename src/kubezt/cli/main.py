"""The `kubezt` command line: the Typer app and the table of its commands.

Each command is a plain function in its own module; `COMMANDS` below is the one place that
names and registers them (in the order `kubezt --help` lists them).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Annotated

import typer

from kubezt.cli import (
    analyse,
    apply,
    audit,
    blast,
    compile,
    completion,
    diff,
    init,
    learn,
    probe,
    rbac,
    report,
    verify,
    watch,
)
from kubezt.cli.common import EXIT_OK, err, out
from kubezt.cli.helptext import readable_help
from kubezt.cli.pipes import closed_pipe_safe

COMMANDS: tuple[tuple[str, Callable[..., None]], ...] = (
    ("reach", analyse.reach),
    ("explain", analyse.explain),
    ("audit", audit.audit_command),
    ("blast-radius", blast.blast_radius_command),
    ("compile", compile.compile_command),
    ("diff", diff.diff_command),
    ("init", init.init_command),
    ("verify", verify.verify_command),
    ("learn", learn.learn_command),
    ("replay", learn.replay_command),
    ("report", report.report_command),
    ("completion", completion.completion_command),
    ("apply", apply.apply_command),
    ("rbac", rbac.rbac_command),
    ("watch", watch.watch_command),
)
SUBCOMMANDS: tuple[tuple[str, typer.Typer], ...] = (("probe", probe.probe_app),)


def version_callback(value: bool) -> None:
    if value:
        from kubezt import __version__

        out.print(f"kubezt {__version__}", markup=False)
        raise typer.Exit(EXIT_OK)


def root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=version_callback, is_eager=True, help="Print the version."
        ),
    ] = False,
) -> None:
    """Make a Kubernetes cluster zero-trust and prove it."""


def build_app() -> typer.Typer:
    """The `kubezt` app with every command of `COMMANDS` registered."""
    readable_help()
    completion.enable()
    application = typer.Typer(
        name="kubezt",
        help="Make a Kubernetes cluster zero-trust and prove it: analyse NetworkPolicy, Calico "
        "and Istio manifests into effective connectivity, with an explanation of every "
        "verdict.\n\nExit codes: 0 success/allowed, 1 denied or findings, 2 invalid input.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,
    )
    application.callback()(root)
    for name, command in COMMANDS:
        application.command(name)(closed_pipe_safe(command))
    for name, group in SUBCOMMANDS:
        application.add_typer(group, name=name)
    return application


app = build_app()


def main() -> None:
    """Console-script entry point (`kubezt`, and `kubectl-zt` for `kubectl zt ...`)."""
    try:
        plugin = os.path.basename(sys.argv[0]) == "kubectl-zt"
        app(prog_name="kubectl zt" if plugin else "kubezt")
    except KeyboardInterrupt:  # pragma: no cover - interactive only
        err.print("kubezt: interrupted", markup=False)
        sys.exit(130)
