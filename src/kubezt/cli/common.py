"""What every command shares: the Typer app, consoles, options, loading with overrides, input
errors → exit code 2, and emitting JSON/YAML documents.

Exit codes (every command):
  0  success; for `explain`: the connection is allowed
  1  a finding: for `explain`, the connection is denied
  2  invalid input or usage (every problem is listed, with file:line)
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, NoReturn, TypeVar

import typer
from rich.console import Console

from kubezt.dialects.registry import LoadResult, load
from kubezt.engine.diagnose import model_warnings
from kubezt.errors import Diagnostic, InputError, KubeztError, Severity
from kubezt.ir.config import MeshConfig
from kubezt.ir.model import Model
from kubezt.report.documents import to_json

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


RootNamespaceOpt = Annotated[
    str | None,
    typer.Option(
        "--root-namespace",
        help="Istio root namespace (default: from the mesh ConfigMap, else istio-system).",
    ),
]
TrustDomainOpt = Annotated[
    str | None,
    typer.Option(
        "--trust-domain",
        help="Istio trust domain (default: from the mesh ConfigMap, else cluster.local).",
    ),
]
AliasOpt = Annotated[
    list[str] | None, typer.Option("--trust-domain-alias", help="Trust-domain alias; repeatable.")
]


@dataclass(frozen=True)
class Analysis:
    model: Model
    warnings: tuple[Diagnostic, ...]


def load_paths(
    paths: list[str],
    verbose: bool,
    root_namespace: str | None = None,
    trust_domain: str | None = None,
    aliases: list[str] | None = None,
) -> Analysis:
    """Load manifests, apply mesh overrides, print warnings to stderr."""
    result: LoadResult = guarded(lambda: load(paths))
    model = result.model
    config = model.mesh_config
    if root_namespace or trust_domain or aliases:
        config = MeshConfig(
            root_namespace=root_namespace or config.root_namespace,
            trust_domain=trust_domain or config.trust_domain,
            trust_domain_aliases=tuple(aliases) if aliases else config.trust_domain_aliases,
            enable_auto_mtls=config.enable_auto_mtls,
            calico_alp=config.calico_alp,
            ambient_wire_port=config.ambient_wire_port,
        )
        model = dataclasses.replace(model, mesh_config=config)
    warnings = result.warnings + model_warnings(model)
    for diag in warnings:
        err.print(diag.render(), markup=False)
    if verbose:
        for skipped in result.skipped:
            err.print(f"skipped (kind not read by kubezt): {skipped}", markup=False)
    return Analysis(model, warnings)


def emit(doc: object, output: Output) -> None:
    """Write a document to stdout as JSON or YAML."""
    if output is Output.JSON:
        sys.stdout.write(to_json(doc))
    else:
        import yaml

        sys.stdout.write(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))

