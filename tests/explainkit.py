"""The matrix against explain, pair by pair: what the conformance and property tests that hold
`kubezt.evaluate` and `kubezt.explain_connection` equal share."""

from __future__ import annotations

from typing import Any

import kubezt
from kubezt.engine.requests import AllRequests, Some, space_of
from kubezt.ir.requests import HttpRequest, ServiceAddress

Key = tuple[str, str, int, str]


def routes(model: Any, server: Any, port: int) -> list[ServiceAddress | None]:
    """Every way to address `server`'s port: directly (None) and through each Service port."""
    out: list[ServiceAddress | None] = [None]
    for svc in model.topology.services:
        if svc.selects(server):
            for sp in svc.ports:
                if sp.target_on(server) == port:
                    out.append(ServiceAddress(svc.namespace, svc.name, sp.port))
    return out


def request_rows(result: Any) -> dict[Key, Any]:
    """(src, dst, port, protocol) → the requests that pass (`ALL` or `Some`)."""
    return {(s, d, p, proto): req for s, d, p, proto, req in result.detailed()}


def matrix_vs_explain(model: Any, rows: dict[Key, Any]) -> list[str]:
    """Every pair and declared port where the matrix rows and explain disagree: an absent pair
    must be denied for every witness request, an "all" pair allowed (for a request without
    HTTP, or for every witness), and a "some" pair must let exactly its passing witnesses
    through (every other witness of its request space is denied on every route)."""
    everything = space_of(model.mesh.authorization_policies).witnesses()
    problems: list[str] = []
    for src in model.topology.workloads:
        for dst in model.topology.workloads:
            for cp in dst.ports:
                key = (src.id, dst.id, cp.port, cp.protocol.value)
                rts = routes(model, dst, cp.port)

                def passes(http: HttpRequest | None, src: Any = src, dst: Any = dst,
                           cp: Any = cp, rts: Any = rts) -> bool:  # fmt: skip
                    return any(
                        kubezt.explain_connection(
                            model,
                            kubezt.End(kubezt.EndKind.WORKLOAD, workload=src),
                            kubezt.End(kubezt.EndKind.WORKLOAD, workload=dst),
                            cp.port,
                            cp.protocol,
                            service=route,
                            http=http,
                        ).allowed
                        for route in rts
                    )

                row = rows.get(key)
                if row is None:
                    for http in [None, *everything]:
                        if passes(http):
                            problems.append(f"{key}: matrix denies, explain allows {http}")
                            break
                elif isinstance(row, AllRequests):
                    if not passes(None) and not all(passes(h) for h in everything):
                        problems.append(f"{key}: matrix allows all requests, explain denies")
                else:
                    assert isinstance(row, Some), (key, row)
                    for http in row.space.witnesses():
                        if passes(http) != (http in row.passing):
                            problems.append(
                                f"{key}: matrix {'allows' if http in row.passing else 'denies'} "
                                f"{http}, explain does not"
                            )
    return problems


def outside_vs_explain(model: Any, outside: Any) -> list[str]:
    """Every workload, outside cell, port cell and direction where `evaluate_outside` and
    explain disagree (explain asked about the cell's representative address and port): the
    same relation as `matrix_vs_explain` — an absent connection denied for every witness
    request, an "all" one allowed, a "some" one letting exactly its passing witnesses
    through."""
    from kubezt.engine.cells import CELL_PROTOCOLS, port_cells
    from kubezt.engine.outside import OutsideDirection

    http = [r.http for p in model.policies.policies for r in p.ingress if r.http is not None]
    everything = space_of(model.mesh.authorization_policies, http).witnesses()
    problems: list[str] = []
    for w in model.topology.workloads:
        rows = {(r.direction, r.cell, r.port): r.requests for r in outside.of(w.id)}
        inner = kubezt.End(kubezt.EndKind.WORKLOAD, workload=w)
        for cell in outside.cells:
            outer = kubezt.End(kubezt.EndKind.EXTERNAL, ip=str(cell.representative))
            for protocol in CELL_PROTOCOLS:
                declared = [cp.port for cp in w.ports if cp.protocol is protocol]
                for direction, src, dst, ports in (
                    (OutsideDirection.EGRESS, inner, outer, port_cells(outside.cuts, protocol)),
                    (
                        OutsideDirection.INGRESS,
                        outer,
                        inner,
                        port_cells(outside.cuts, protocol, declared),
                    ),
                ):
                    for port in ports:

                        def passes(h: HttpRequest | None, src: Any = src, dst: Any = dst,
                                   port: Any = port) -> bool:  # fmt: skip
                            return kubezt.explain_connection(
                                model, src, dst, port.representative, port.protocol, http=h
                            ).allowed

                        key = f"{direction} {w.id} {cell.label} {port.label}/{protocol.value}"
                        row = rows.get((direction, cell, port))
                        if row is None:
                            for h in [None, *everything]:
                                if passes(h):
                                    problems.append(f"{key}: cells deny, explain allows {h}")
                                    break
                        elif isinstance(row, AllRequests):
                            if not passes(None) and not all(passes(h) for h in everything):
                                problems.append(f"{key}: cells allow all requests, explain denies")
                        else:
                            assert isinstance(row, Some), (key, row)
                            for h in row.space.witnesses():
                                if passes(h) != (h in row.passing):
                                    problems.append(f"{key}: cells differ from explain on {h}")
    return problems
