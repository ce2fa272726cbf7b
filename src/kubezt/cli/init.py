"""`kubezt init`: scaffold an intent (services, ServiceAccounts, ports; no calls) from
existing workloads."""

from __future__ import annotations

from typing import Annotated

import typer
import yaml

from kubezt.cli.common import (
    EXIT_INPUT,
    IntentFileOpt,
    IntentNameOpt,
    LoadOptions,
    PathsArg,
    err,
    guarded,
    load_options,
    load_paths,
    write_output,
)
from kubezt.cli.compile import ModeOpt
from kubezt.dialects.intent import parse_intent_data
from kubezt.generate.intent import intent_document
from kubezt.generate.scaffold import scaffold_intent
from kubezt.ir.intent import Mode

HEADER = """\
# Scaffolded by kubezt init: every service, its ServiceAccount and ports, and no calls.
# Add the calls each service needs (spec.calls), ingress and egress, then run
# `kubezt compile` (docs/intent.md).
"""


@load_options(mesh=False)
def init_command(
    paths: PathsArg = None,
    output: IntentFileOpt = "-",
    name: IntentNameOpt = "intent",
    mode: ModeOpt = None,
    namespace: Annotated[
        list[str] | None,
        typer.Option(
            metavar="NAMESPACE",
            help="Namespace to take into scope; repeatable (default: all but system).",
        ),
    ] = None,
    options: LoadOptions = LoadOptions(),
) -> None:
    """Scaffold an intent from existing workloads: services (selector, ServiceAccount,
    ports), no calls allowed. Exit codes: 0 written, 2 invalid input."""
    loaded = load_paths(paths, options)
    intent, notes = scaffold_intent(
        loaded.model,
        name=name,
        mode=Mode(mode.value) if mode else None,
        namespaces=tuple(namespace or ()),
    )
    document = intent_document(intent)
    if not intent.namespaces:
        err.print("kubezt: no application workloads in the input", markup=False)
        raise typer.Exit(EXIT_INPUT)
    guarded(lambda: parse_intent_data(document, "<scaffold>"))  # the scaffold is a valid intent
    for note in notes:
        err.print(f"kubezt: note: {note}", markup=False)
    text = HEADER + yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=4096)
    write_output(output, text)
