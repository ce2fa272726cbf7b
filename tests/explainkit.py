"""The matrix against explain, pair by pair: what the conformance and property tests that hold
`kubezt.evaluate` and `kubezt.explain_connection` equal share."""

from __future__ import annotations

from typing import Any

import kubezt
from kubezt.engine.requests import AllRequests, Some, space_of
from kubezt.ir.ports import Protocol
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


# --- verdicts witness by witness ---------------------------------------------------------------


def universe(*models: Any) -> tuple[HttpRequest | None, ...]:
    """The requests every verdict is compared on: one witness per cell of every pattern of
    every AuthorizationPolicy of the models (None when no policy looks at requests; on a port
    that is not HTTP the witnesses all stand for the connection itself)."""
    space = space_of(p for m in models for p in m.mesh.authorization_policies)
    return (None,) if space.empty else space.witnesses()


def row_allows(row: Any, http: HttpRequest | None) -> bool:
    """The matrix's verdict on one request: the verdict of the witness of its cell in the
    row's own request space."""
    if row is None:
        return False
    if isinstance(row, AllRequests):
        return True
    assert isinstance(row, Some), row
    if http is None:
        return True  # allowed for some request
    cell = row.space.cell(http)
    return any(row.space.cell(w) == cell for w in row.passing)


class Explainer:
    """explain's verdict on every route of a connection, per request, cached."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.by_id = {w.id: w for w in model.topology.workloads}
        self._cache: dict[tuple[Key, HttpRequest | None], bool] = {}

    def allows(self, key: Key, http: HttpRequest | None) -> bool:
        found = self._cache.get((key, http))
        if found is None:
            src, dst = self.by_id[key[0]], self.by_id[key[1]]
            protocol = Protocol(key[3])
            found = any(
                kubezt.explain_connection(
                    self.model,
                    kubezt.End(kubezt.EndKind.WORKLOAD, workload=src),
                    kubezt.End(kubezt.EndKind.WORKLOAD, workload=dst),
                    key[2],
                    protocol,
                    service=route,
                    http=http,
                ).allowed
                for route in routes(self.model, dst, key[2])
                if route is None or _route_protocol(self.model, route) is protocol
            )
            self._cache[(key, http)] = found
        return found

    def vector(self, key: Key, requests: tuple[HttpRequest | None, ...]) -> tuple[bool, ...]:
        return tuple(self.allows(key, http) for http in requests)


def _route_protocol(model: Any, route: ServiceAddress) -> Any:
    for svc in model.topology.services:
        if svc.namespace == route.namespace and svc.name == route.name:
            for sp in svc.ports:
                if sp.port == route.port:
                    return sp.protocol
    return None


def considered(result: Any) -> list[Key]:
    """Every (source, destination, port, protocol) the matrix decides: each ordered pair of
    input workloads on every port its destination class is evaluated on (a single pod to
    itself left out: it never leaves its network namespace)."""
    workloads = result.model.topology.workloads
    reported = set(result.workload_ids)
    out: list[Key] = []
    for port, bits in result.plan.items():
        dsts = [
            workloads[wi]
            for ci in range(len(result.classes))
            if bits >> ci & 1
            for wi in result.classes[ci].members
            if workloads[wi].id in reported
        ]
        for dst in dsts:
            for src_id in sorted(reported):
                if src_id == dst.id and (dst.kind == "Pod" or dst.replicas <= 1):
                    continue
                out.append((src_id, dst.id, port.port, port.protocol.value))
    return sorted(out)


def reach_vs_explain_everywhere(model: Any, result: Any) -> list[str]:
    """Every pair, port and request of the universe where the matrix and explain disagree."""
    rows = request_rows(result)
    everything = universe(model)
    explainer = Explainer(model)
    problems: list[str] = []
    for key in considered(result):
        row = rows.get(key)
        for http in everything:
            expected = explainer.allows(key, http)
            if row_allows(row, http) != expected:
                problems.append(
                    f"{key} {http}: matrix {row!r} says "
                    f"{'allowed' if not expected else 'denied'}, explain says "
                    f"{'allowed' if expected else 'denied'}"
                )
                break


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
