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
