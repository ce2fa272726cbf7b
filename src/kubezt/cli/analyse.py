"""`kubezt reach` and `kubezt explain`: connectivity through every layer, and why."""

from __future__ import annotations

import sys
from collections.abc import Callable
from enum import StrEnum
from typing import Annotated

import typer

from kubezt.analysis.nearest import Caller, nearest_allow_rule
from kubezt.analysis.summary import focused, namespace_pairs
from kubezt.cli import render
from kubezt.cli.common import (
    EXIT_FINDING,
    EXIT_OK,
    LoadOptions,
    Output,
    PathsArg,
    ProtocolOption,
    emit,
    err,
    frozen_heap,
    guarded,
    load_options,
    load_paths,
    out,
    usage_error,
)
from kubezt.cli.pipes import decided
from kubezt.cli.progress import Progress
from kubezt.cli.tables import (
    Column,
    ListOutput,
    ListOutputOpt,
    NoHeadersOpt,
    plain,
    write_listing,
    write_table,
)
from kubezt.engine.connection import End, EndKind, explain_connection, plan_path
from kubezt.engine.explain import Layer
from kubezt.engine.mesh import principal
from kubezt.engine.outside import evaluate_outside
from kubezt.engine.reach import evaluate
from kubezt.ir.ports import Protocol
from kubezt.ir.requests import HttpRequest, ServiceAddress
from kubezt.ir.topology import Topology
from kubezt.report.class_documents import pair_lines, reach_class_document
from kubezt.report.documents import explain_document, reach_document, request_document
from kubezt.report.steps import tls_text

ReachOutput = ListOutput
ReachOutputOpt = ListOutputOpt

CLASS_LEVEL_ABOVE = 2_000
"""`-o json|yaml` without --by writes the class-level result above this many workloads."""


class By(StrEnum):
    AUTO = "auto"
    CLASS = "class"
    PAIR = "pair"


@load_options()
def reach(
    paths: PathsArg = None,
    port: Annotated[
        int | None,
        typer.Option(
            metavar="PORT",
            help="Only this destination port (for every pair), instead of each declared port.",
            min=1,
            max=65535,
        ),
    ] = None,
    protocol: Annotated[
        ProtocolOption, typer.Option(help="Protocol of --port.", case_sensitive=False)
    ] = ProtocolOption.TCP,
    namespace: Annotated[
        str | None,
        typer.Option(
            "--namespace",
            "-n",
            metavar="NAMESPACE",
            help="Table: list the connections from or to this namespace's workloads.",
        ),
    ] = None,
    workload: Annotated[
        str | None,
        typer.Option(
            metavar="NAMESPACE/NAME",
            help="Table: list the connections from or to this workload.",
        ),
    ] = None,
    output: ReachOutputOpt = ReachOutput.TABLE,
    no_headers: NoHeadersOpt = False,
    by: Annotated[
        By,
        typer.Option(
            "--by",
            help="With -o json|yaml: `class` lists each class of workloads no policy tells "
            "apart once, with the allowed edges between classes; `pair` writes one allowed "
            "connection per line (JSON lines, streamed; a header line first). `auto`: one "
            f"per-pair document up to {CLASS_LEVEL_ABOVE:,} workloads, the class level above.",
            case_sensitive=False,
        ),
    ] = By.AUTO,
    options: LoadOptions = LoadOptions(),
) -> None:
    """Which workload may connect to which, on every port cell of the destination (its
    declared ports, each port or range a policy names, and `other`: the ports nobody names),
    through every layer (Kubernetes/Calico L3/L4, Istio mTLS and authorization); for HTTP ports
    whether all, some (listed) or no requests are allowed. The per-pair -o json|yaml document
    also lists, under `outside`, the connections between each workload and each outside
    address cell (`external:198.51.100.0/24`: the CIDRs of the policies cut the outside).

    The table is a matrix per port for up to 40 workloads; above that, one row per pair of
    namespaces with counts (use --namespace or --workload for the connections themselves).
    -o wide adds the requests that pass where only some do."""
    progress = Progress(options.quiet)
    progress.stage("loading manifests")
    loaded = load_paths(paths, options)
    progress.stage("evaluating every connection")
    with frozen_heap():
        result = guarded(lambda: evaluate(loaded.model, port, Protocol(protocol.value)))
    progress.done()
    if workload is not None and loaded.model.topology.workload(workload) is None:
        usage_error(f"--workload {workload!r}: no workload with that namespace/name in the input")
    wide = output is ReachOutput.WIDE
    if output in (ReachOutput.JSON, ReachOutput.YAML):
        if by is By.AUTO and len(loaded.model.topology.workloads) > CLASS_LEVEL_ABOVE:
            err.print(
                f"kubezt: {len(loaded.model.topology.workloads):,} workloads (more than "
                f"{CLASS_LEVEL_ABOVE:,}): writing the class-level result (--by class); "
                "--by pair gives one line per pair"
            )
            by = By.CLASS
        if by is By.CLASS:
            doc = reach_class_document(result, loaded.warnings)
            if output is ReachOutput.JSON:
                import orjson  # measured: 10-20x faster than json.dumps on these documents

                sys.stdout.flush()
                sys.stdout.buffer.write(
                    orjson.dumps(doc, option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE)
                )
                sys.stdout.flush()
            else:
                emit(doc, Output(output.value))
        elif by is By.PAIR and output is ReachOutput.JSON:
            import orjson

            sys.stdout.flush()
            write = sys.stdout.buffer.write if hasattr(sys.stdout, "buffer") else None
            for item in pair_lines(result, loaded.warnings):
                line = orjson.dumps(item, option=orjson.OPT_APPEND_NEWLINE)
                if write is not None:
                    write(line)
                else:
                    sys.stdout.write(line.decode())
            sys.stdout.flush()
        else:
            progress.stage("evaluating the outside address cells")
            outside = guarded(lambda: evaluate_outside(loaded.model))
            progress.done()
            doc = reach_document(result, loaded.warnings, outside)
            if output is ReachOutput.JSON:
                import orjson

                # the same text as json.dumps(indent=2) (the document holds no floats), 30x
                # faster; a document with non-ASCII text keeps json.dumps's \u escapes
                data = orjson.dumps(doc, option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE)
                if data.isascii():
                    if hasattr(sys.stdout, "buffer"):
                        sys.stdout.flush()
                        sys.stdout.buffer.write(data)
                        sys.stdout.flush()
                    else:
                        sys.stdout.write(data.decode())
                    return
            emit(doc, Output(output.value))
    elif workload is not None or namespace is not None:
        rows = focused(result, namespace=namespace, workload=workload)
        write_table(
            ["SOURCE", "DESTINATION", "PORT", "REQUESTS"],
            [
                [s, d, f"{result.port_label(d, p, proto)}/{proto}", render.requests_cell(r, wide)]
                for s, d, p, proto, r in rows
            ],
            no_headers=no_headers,
        )
    elif len(result.workload_ids) > render.MATRIX_LIMIT or wide or no_headers:
        write_table(
            ["SOURCE NAMESPACE", "DESTINATION NAMESPACE", "CONNECTIONS", "SOME REQUESTS", "PORTS"],
            [
                [p.src, p.dst, str(p.allowed), str(p.partial), ",".join(p.ports)]
                for p in namespace_pairs(result)
            ],
            no_headers=no_headers,
        )
    else:
        render.reach_tables(out, result)


STEP_COLUMNS = (
    Column("LAYER"),
    Column("DIRECTION"),
    Column("EFFECT"),
    Column("REASON"),
    Column("DETAIL", wide=True),
    Column("SOURCE", wide=True),
)


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
        str,
        typer.Argument(
            metavar="SRC", help="Source: ns/name, external:<ip>, node or kubelet-probe."
        ),
    ],
    dst: Annotated[
        str, typer.Argument(metavar="DST", help="Destination: ns/name or external:<ip>.")
    ],
    paths: PathsArg = None,
    port: Annotated[
        int, typer.Option(metavar="PORT", help="Destination (container) port.", min=1, max=65535)
    ] = ...,  # type: ignore[assignment]
    protocol: Annotated[
        ProtocolOption, typer.Option(help="Protocol.", case_sensitive=False)
    ] = ProtocolOption.TCP,
    service: Annotated[
        str | None,
        typer.Option(
            metavar="NAMESPACE/NAME:PORT",
            help="The client addressed this Service, as ns/name:port (else the pod IP).",
        ),
    ] = None,
    method: Annotated[
        str | None, typer.Option(metavar="METHOD", help="HTTP method of the request.")
    ] = None,
    path: Annotated[
        str | None, typer.Option("--path", metavar="PATH", help="HTTP path of the request.")
    ] = None,
    host: Annotated[str | None, typer.Option(metavar="HOST", help="HTTP Host header.")] = None,
    header: Annotated[
        list[str] | None, typer.Option(metavar="NAME=VALUE", help="HTTP header; repeatable.")
    ] = None,
    output: ListOutputOpt = ListOutput.TABLE,
    no_headers: NoHeadersOpt = False,
    options: LoadOptions = LoadOptions(),
) -> None:
    """Whether one connection (or HTTP request) is allowed, and why, layer by layer.

    -o wide or --no-headers list the steps as a plain table (the request and the verdict go
    to stderr). Exit code 0 allowed, 1 denied, 2 input error."""
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
    decided(EXIT_OK if verdict.allowed else EXIT_FINDING)
    model = loaded.model
    path_taken = plan_path(model, src_end, dst_end, port, Protocol(protocol.value), None, None)
    who = None
    if path_taken.mtls and src_end.workload is not None:
        w = src_end.workload
        who = principal(model.mesh_config, w.namespace, w.service_account)
    near = None
    if verdict.denied_by in (Layer.AUTHZ_SIDECAR, Layer.ZTUNNEL) and dst_end.workload is not None:
        near = nearest_allow_rule(model, dst_end.workload, Caller(who, port, http))
    if plain(output, no_headers):
        err.print(
            render.request_line(
                src_end.label, dst_end.label, port, protocol.value, who, service, http
            ),
            markup=False,
        )
        verdict_line = f"{src_end.label} → {dst_end.label} {port}/{protocol.value}: "
        verdict_line += verdict.verdict.upper()
        if verdict.denied_by is not None:
            verdict_line += f" (denied by {verdict.denied_by.value})"
        err.print(verdict_line, markup=False)
        if near is not None:
            render.nearest(err, near)
        write_listing(
            STEP_COLUMNS,
            render.step_rows(verdict),
            wide=output is ListOutput.WIDE,
            no_headers=no_headers,
        )
    elif output is ListOutput.TABLE:
        out.print(
            render.request_line(
                src_end.label, dst_end.label, port, protocol.value, who, service, http
            ),
            markup=False,
        )
        render.explanation(out, src_end.label, dst_end.label, port, protocol.value, verdict)
        if near is not None:
            render.nearest(out, near)
        if verdict.denied_by is Layer.PEER_AUTHENTICATION and not path_taken.mtls:
            out.print(
                "  the server requires mTLS; the caller sent plaintext "
                f"({tls_text(path_taken.tls, path_taken.not_captured)})",
                markup=False,
            )
    else:
        doc = explain_document(
            src_end.label, dst_end.label, port, protocol.value, verdict, loaded.warnings
        )
        doc["request"] = {"principal": who, "service": service}
        if http is not None:
            doc["request"]["http"] = request_document(http)
        if near is not None:
            doc["nearestRule"] = {
                "policy": near.policy,
                "rule": near.rule,
                "location": near.location,
                "mismatches": [
                    {"field": m.field, "required": list(m.required), "had": m.had}
                    for m in near.mismatches
                ],
            }
        emit(doc, Output(output.value))
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
