"""Reachability between workloads and the outside of the cluster, cell by cell.

The outside is the IPv4 and IPv6 address spaces cut into `engine.cells.AddressCell`s by every
CIDR the input names; ports are cut into `engine.cells.PortCell`s. For every class of workloads
(`engine.reach`) this module asks the one explainer (`engine.connection.explain_connection`)
about each outside cell's representative address and each port cell's representative port, in
both directions: from the workload to the cell (egress) and from the cell to the workload
(ingress). By construction of the cells, the answer holds for every address and port of the
cell. Where requests can matter (AuthorizationPolicies or Calico `http` clauses name HTTP
attributes), the connection is tried with every witness of the request space
(`engine.requests`): allowed for some of them only, it is reported with those.

Pure: no I/O.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum

from kubezt.engine.cells import (
    CELL_PROTOCOLS,
    AddressCell,
    PortCell,
    PortCuts,
    address_cells,
    address_networks,
    port_cells,
    port_cuts,
)
from kubezt.engine.connection import End, EndKind, explain_connection
from kubezt.engine.explain import Layer, Verdict
from kubezt.engine.index import IpAddress, build_classes
from kubezt.engine.reach import SYNTHETIC_ANNOTATION
from kubezt.engine.requests import ALL, NONE, RequestSet, RequestSpace, requests_passing, space_of
from kubezt.ir.model import Model
from kubezt.ir.policy import Network
from kubezt.ir.requests import HttpRequest
from kubezt.ir.topology import Workload

REQUEST_LAYERS = frozenset({Layer.AUTHZ_SIDECAR, Layer.ZTUNNEL, Layer.WAYPOINT, Layer.CALICO_ALP})
"""Layers that may allow some requests of a connection they deny as a whole."""


class OutsideDirection(StrEnum):
    EGRESS = "egress"
    """From the workload to the outside cell."""
    INGRESS = "ingress"
    """From the outside cell to the workload."""


@dataclass(frozen=True, slots=True)
class OutsideConnection:
    """One allowed connection between a workload and an outside cell, on a port cell.
    `requests`: `ALL`, or `Some` (the witness requests that pass)."""

    direction: OutsideDirection
    workload: str
    cell: AddressCell
    port: PortCell
    requests: RequestSet = ALL

    @property
    def src(self) -> str:
        return self.workload if self.direction is OutsideDirection.EGRESS else self.cell.label

    @property
    def dst(self) -> str:
        return self.cell.label if self.direction is OutsideDirection.EGRESS else self.workload

    @property
    def key(self) -> tuple[str, str, str, str]:
        """(src, dst, port cell span, protocol): what a diff compares."""
        return (self.src, self.dst, self.port.span, self.port.protocol.value)


@dataclass(frozen=True, slots=True)
class Outside:
    """Every allowed connection between the workloads and the outside cells."""

    cells: tuple[AddressCell, ...]
    cuts: PortCuts
    connections: tuple[OutsideConnection, ...]
    """Sorted by (direction, workload, cell, port)."""

    def of(self, workload: str) -> Iterator[OutsideConnection]:
        return (c for c in self.connections if c.workload == workload)


def outside_cells(model: Model, networks: tuple[Network, ...] = ()) -> tuple[AddressCell, ...]:
    """The outside cells of `model` (plus `networks`, e.g. the other side of a diff or the
    CIDRs of an intent); representatives avoid the model's workload addresses."""
    avoid = [ip for ip in (_ip(w) for w in model.topology.workloads) if ip is not None]
    return address_cells(address_networks(model) + networks, avoid)


def evaluate_outside(
    model: Model,
    cells: tuple[AddressCell, ...] | None = None,
    cuts: PortCuts | None = None,
    workloads: frozenset[str] | None = None,
) -> Outside:
    """Every allowed connection between the model's workloads (or those of `workloads`) and
    each outside cell, both ways, on every port cell (`cells`/`cuts`: default the model's
    own; pass common ones to compare two models)."""
    cells = outside_cells(model) if cells is None else cells
    cuts = port_cuts(model) if cuts is None else cuts
    topology = model.topology
    http = [r.http for p in model.policies.policies for r in (*p.ingress, *p.egress) if r.http]
    space = space_of(model.mesh.authorization_policies, http)
    egress_ports = [c for p in CELL_PROTOCOLS for c in port_cells(cuts, p)]
    rows: list[OutsideConnection] = []
    for cls in build_classes(model, address_networks(model)):
        members = [
            topology.workloads[i]
            for i in cls.members
            if SYNTHETIC_ANNOTATION not in topology.workloads[i].annotations
            and (workloads is None or topology.workloads[i].id in workloads)
        ]
        if not members:
            continue
        rep = topology.workloads[cls.members[0]]
        inner = End(EndKind.WORKLOAD, workload=rep)
        ingress_ports = [
            c
            for p in CELL_PROTOCOLS
            for c in port_cells(cuts, p, (cp.port for cp in rep.ports if cp.protocol is p))
        ]
        for cell in cells:
            outer = End(EndKind.EXTERNAL, ip=str(cell.representative))
            for direction, src, dst, ports in (
                (OutsideDirection.EGRESS, inner, outer, egress_ports),
                (OutsideDirection.INGRESS, outer, inner, ingress_ports),
            ):
                for port in ports:
                    passing = _decide(model, src, dst, port, space)
                    if passing is not NONE:
                        rows.extend(
                            OutsideConnection(direction, w.id, cell, port, passing) for w in members
                        )
    rows.sort(key=_row_key)
    return Outside(cells, cuts, tuple(rows))


def _decide(model: Model, src: End, dst: End, port: PortCell, space: RequestSpace) -> RequestSet:
    """Which requests pass: `ALL`, `Some` or `NONE`."""
    verdict = explain_port(model, src, dst, port)
    if not verdict.allowed and verdict.denied_by not in REQUEST_LAYERS:
        return NONE
    if len(space.witnesses()) <= 1:
        return ALL if verdict.allowed else NONE
    passing = requests_passing(space, lambda r: explain_port(model, src, dst, port, r).allowed)
    return ALL if verdict.allowed and passing is NONE else passing


def explain_port(
    model: Model, src: End, dst: End, port: PortCell, http: HttpRequest | None = None
) -> Verdict:
    """The explainer's verdict for a port cell: that of its representative port."""
    return explain_connection(model, src, dst, port.representative, port.protocol, http=http)


def _row_key(row: OutsideConnection) -> tuple[object, ...]:
    cell = row.cell
    return (
        row.direction.value,
        row.workload,
        cell.version,
        int(cell.network.network_address),
        cell.network.prefixlen,
        row.port.protocol.value,
        row.port.representative,
    )


def _ip(workload: Workload) -> IpAddress | None:
    return ipaddress.ip_address(workload.ip) if workload.ip else None


__all__ = [
    "Outside",
    "OutsideConnection",
    "OutsideDirection",
    "evaluate_outside",
    "explain_port",
    "outside_cells",
]
