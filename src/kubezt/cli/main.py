"""The `kubezt` command line: parse options, call one library function, render.

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

from kubezt.cli import render
from kubezt.dialects.registry import LoadResult, load
from kubezt.engine.connection import End, EndKind, explain_connection
from kubezt.engine.diagnose import model_warnings
from kubezt.engine.reach import evaluate
from kubezt.errors import Diagnostic, InputError, KubeztError, Severity
from kubezt.ir.config import MeshConfig
from kubezt.ir.model import Model
from kubezt.ir.ports import Protocol
from kubezt.ir.requests import HttpRequest, ServiceAddress
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
    root_namespace: RootNamespaceOpt = None,
    trust_domain: TrustDomainOpt = None,
    trust_domain_alias: AliasOpt = None,
) -> None:
    """Which workload may connect to which, on every port the destination declares, through
    every layer (Kubernetes/Calico L3/L4, Istio mTLS and authorization); for HTTP ports whether
    all, some (listed) or no requests are allowed."""
    loaded = load_paths(paths, verbose, root_namespace, trust_domain, trust_domain_alias)
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
    service: Annotated[
        str | None,
        typer.Option(help="The client addressed this Service, as ns/name:port (else the pod IP)."),
    ] = None,
    method: Annotated[str | None, typer.Option(help="HTTP method of the request.")] = None,
    path: Annotated[str | None, typer.Option("--path", help="HTTP path of the request.")] = None,
    host: Annotated[str | None, typer.Option(help="HTTP Host header.")] = None,
    header: Annotated[
        list[str] | None, typer.Option(help="HTTP header as NAME=VALUE; repeatable.")
    ] = None,
    output: OutputOpt = Output.TABLE,
    verbose: VerboseOpt = False,
    root_namespace: RootNamespaceOpt = None,
    trust_domain: TrustDomainOpt = None,
    trust_domain_alias: AliasOpt = None,
) -> None:
    """Whether one connection (or HTTP request) is allowed, and why, layer by layer.

    Exit code 0 allowed, 1 denied, 2 input error."""
    loaded = load_paths(paths, verbose, root_namespace, trust_domain, trust_domain_alias)
    topology = loaded.model.topology
    src_end = parse_end(src, topology.workload, "source")
    dst_end = parse_end(dst, topology.workload, "destination")
    address = parse_service(service) if service else None
    http = None
    if method or path or host or header:
        headers: list[tuple[str, str]] = []
        for item in header or []:
            name, sep, value = item.partition("=")
            if not sep or not name:
                usage_error(f"--header {item!r}: expected NAME=VALUE")
            headers.append((name, value))
        http = HttpRequest(method or "GET", path or "/", host or "", tuple(headers))
    verdict = guarded(
        lambda: explain_connection(
            loaded.model,
            src_end,
            dst_end,
            port,
            Protocol(protocol.value),
            service=address,
            http=http,
        )
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


def parse_service(text: str) -> ServiceAddress:
    ns_name, sep, port_text = text.rpartition(":")
    namespace, slash, name = ns_name.partition("/")
    if not sep or not slash or not namespace or not name or not port_text.isdigit():
        usage_error(f"--service {text!r}: expected namespace/name:port")
    return ServiceAddress(namespace, name, int(port_text))


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:  # pragma: no cover - interactive only
        err.print("kubezt: interrupted", markup=False)
        sys.exit(130)
