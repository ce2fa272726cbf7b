"""The `kubezt` command line: parse options, call one library function, render.

Exit codes (every command):
  0  success; for `explain`: the connection is allowed
  1  a finding: for `explain`, the connection is denied
  2  invalid input or usage (every problem is listed, with file:line)
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from enum import StrEnum
from typing import Annotated, NoReturn, TypeVar

import typer
from rich.console import Console

from kubezt.cli import render
from kubezt.dialects.registry import LoadResult, load
from kubezt.engine.connection import End, EndKind, explain_connection
from kubezt.engine.reach import evaluate
from kubezt.errors import Diagnostic, InputError, KubeztError, Severity
from kubezt.ir.ports import Protocol
from kubezt.report.documents import explain_document, reach_document, to_json

EXIT_OK = 0
EXIT_FINDING = 1
EXIT_INPUT = 2
MAX_SHOWN = 50

app = typer.Typer(
    name="kubezt",
    help="Make a Kubernetes cluster zero-trust and prove it: analyse NetworkPolicy, Calico and "
    "Istio manifests into effective connectivity, with an explanation of every verdict.\n\n"
    "Exit codes: 0 success/allowed, 1 denied or findings, 2 invalid input.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
err = Console(stderr=True, highlight=False, soft_wrap=True)
out = Console(highlight=False, soft_wrap=True)

T = TypeVar("T")


class Output(StrEnum):
    TABLE = "table"
    JSON = "json"
    YAML = "yaml"


class ProtocolOption(StrEnum):
    TCP = "TCP"
    UDP = "UDP"
    SCTP = "SCTP"


PathsArg = Annotated[
    list[str],
    typer.Argument(
        help="Manifest files or directories (recursive: *.yaml, *.yml, *.json), or - for stdin."
    ),
]
OutputOpt = Annotated[Output, typer.Option("-o", "--output", help="Output format.")]
VerboseOpt = Annotated[
    bool, typer.Option("--verbose", "-v", help="Also list skipped objects of unknown kinds.")
]


def fail_input(diagnostics: tuple[Diagnostic, ...]) -> NoReturn:
    for diag in diagnostics[:MAX_SHOWN]:
        err.print(diag.render(), markup=False)
    if len(diagnostics) > MAX_SHOWN:
        err.print(f"… and {len(diagnostics) - MAX_SHOWN} more", markup=False)
    errors = sum(1 for d in diagnostics if d.severity is Severity.ERROR)
    err.print(f"kubezt: {errors} error(s) in the input; nothing was evaluated", markup=False)
    raise typer.Exit(EXIT_INPUT)


def usage_error(message: str) -> NoReturn:
    err.print(f"kubezt: {message}", markup=False)
    raise typer.Exit(EXIT_INPUT)


def guarded(call: Callable[[], T]) -> T:
    """Run a library call; input problems become the documented exit code, never a traceback."""
    try:
        return call()
    except InputError as exc:
        fail_input(exc.diagnostics)
    except KubeztError as exc:
        usage_error(str(exc))


def load_paths(paths: list[str], verbose: bool) -> LoadResult:
    result = guarded(lambda: load(paths))
    for diag in result.warnings:
        err.print(diag.render(), markup=False)
    if verbose:
        for skipped in result.skipped:
            err.print(f"skipped (kind not read by kubezt): {skipped}", markup=False)
    return result


def emit(doc: object, output: Output) -> None:
    if output is Output.JSON:
        sys.stdout.write(to_json(doc))
    else:
        import yaml

        sys.stdout.write(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))


@app.command()
def reach(
    paths: PathsArg,
    port: Annotated[
        int | None,
        typer.Option(
            help="Only this destination port (for every pair), instead of each declared port.",
            min=1,
            max=65535,
        ),
    ] = None,
    protocol: Annotated[
        ProtocolOption, typer.Option(help="Protocol of --port.", case_sensitive=False)
    ] = ProtocolOption.TCP,
    output: OutputOpt = Output.TABLE,
    verbose: VerboseOpt = False,
) -> None:
    """Which workload may connect to which, on every port the destination declares."""
    loaded = load_paths(paths, verbose)
    result = guarded(lambda: evaluate(loaded.model, port, Protocol(protocol.value)))
    if output is Output.TABLE:
        render.reach_tables(out, result)
    else:
        emit(reach_document(result, loaded.warnings), output)


def parse_end(text: str, model_lookup: Callable[[str], object | None], role: str) -> End:
    from kubezt.ir.topology import Workload

    if text in ("node", "kubelet-probe"):
        if role == "destination":
            usage_error(f"{text} can only be a source")
        return End(EndKind(text))
    if text.startswith("external:"):
        import ipaddress

        ip = text.removeprefix("external:")
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            usage_error(f"{role} {text!r}: expected external:<ip address>")
        return End(EndKind.EXTERNAL, ip=ip)
    workload = model_lookup(text)
    if not isinstance(workload, Workload):
        usage_error(
            f"{role} {text!r}: no workload with that namespace/name in the input "
            "(use ns/name, external:<ip>, node or kubelet-probe)"
        )
    return End(EndKind.WORKLOAD, workload=workload)


@app.command()
def explain(
    src: Annotated[
        str, typer.Argument(help="Source: ns/name, external:<ip>, node or kubelet-probe.")
    ],
    dst: Annotated[str, typer.Argument(help="Destination: ns/name or external:<ip>.")],
    paths: PathsArg,
    port: Annotated[
        int, typer.Option(help="Destination (container) port.", min=1, max=65535)
    ] = ...,  # type: ignore[assignment]
    protocol: Annotated[
        ProtocolOption, typer.Option(help="Protocol.", case_sensitive=False)
    ] = ProtocolOption.TCP,
    output: OutputOpt = Output.TABLE,
    verbose: VerboseOpt = False,
) -> None:
    """Whether one connection is allowed, and why: exit 0 allowed, 1 denied, 2 input error."""
    loaded = load_paths(paths, verbose)
    topology = loaded.model.topology
    src_end = parse_end(src, topology.workload, "source")
    dst_end = parse_end(dst, topology.workload, "destination")
    verdict = guarded(
        lambda: explain_connection(loaded.model, src_end, dst_end, port, Protocol(protocol.value))
    )
    if output is Output.TABLE:
        render.explanation(out, src_end.label, dst_end.label, port, protocol.value, verdict)
    else:
        emit(
            explain_document(
                src_end.label, dst_end.label, port, protocol.value, verdict, loaded.warnings
            ),
            output,
        )
    raise typer.Exit(EXIT_OK if verdict.allowed else EXIT_FINDING)


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:  # pragma: no cover - interactive only
        err.print("kubezt: interrupted", markup=False)
        sys.exit(130)
