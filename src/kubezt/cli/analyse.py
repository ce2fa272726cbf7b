"""`kubezt reach` and `kubezt explain`: connectivity through every layer, and why."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import typer

from kubezt.cli import render
from kubezt.cli.common import (
    EXIT_FINDING,
    EXIT_OK,
    LoadOptions,
    Output,
    OutputOpt,
    PathsArg,
    ProtocolOption,
    emit,
    guarded,
    load_options,
    load_paths,
    out,
    usage_error,
)
from kubezt.engine.connection import End, EndKind, explain_connection
from kubezt.engine.reach import evaluate
from kubezt.ir.ports import Protocol
from kubezt.ir.requests import HttpRequest, ServiceAddress
from kubezt.ir.topology import Topology
from kubezt.report.documents import explain_document, reach_document


@load_options()
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
    options: LoadOptions = LoadOptions(),
) -> None:
    """Which workload may connect to which, on every port the destination declares, through
    every layer (Kubernetes/Calico L3/L4, Istio mTLS and authorization); for HTTP ports whether
    all, some (listed) or no requests are allowed."""
    loaded = load_paths(paths, options)
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


@load_options()
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
    options: LoadOptions = LoadOptions(),
) -> None:
    """Whether one connection (or HTTP request) is allowed, and why, layer by layer.

    Exit code 0 allowed, 1 denied, 2 input error."""
    loaded = load_paths(paths, options)
    topology = loaded.model.topology
    src_end = parse_end(src, topology.workload, "source")
    dst_end = parse_end(dst, topology.workload, "destination")
    address = parse_service(service) if service else None
    if address is not None:
        check_service(address, topology)
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


def check_service(address: ServiceAddress, topology: Topology) -> None:
    """A `--service` that names no Service, or no port of it, is an input error (else the
    request would silently be explained as pod-IP traffic)."""
    from kubezt.errors import did_you_mean

    services = {f"{s.namespace}/{s.name}": s for s in topology.services}
    ref = f"{address.namespace}/{address.name}"
    svc = services.get(ref)
    if svc is None:
        hint = did_you_mean(ref, services)
        usage_error(
            f"--service {ref}: no Service with that namespace/name in the input"
            + (f"; {hint}" if hint else "")
        )
    ports = [sp.port for sp in svc.ports]
    if address.port not in ports:
        hint = did_you_mean(str(address.port), [str(p) for p in ports])
        usage_error(
            f"--service {ref}:{address.port}: the Service has no port {address.port} "
            f"(ports: {', '.join(map(str, ports)) or 'none'})" + (f"; {hint}" if hint else "")
        )


def parse_service(text: str) -> ServiceAddress:
    ns_name, sep, port_text = text.rpartition(":")
    namespace, slash, name = ns_name.partition("/")
    if not sep or not slash or not namespace or not name or not port_text.isdigit():
        usage_error(f"--service {text!r}: expected namespace/name:port")
    return ServiceAddress(namespace, name, int(port_text))
