"""Port and outside-address cells are complete and homogeneous, proven against the explainer.

For random clusters (K8s NetworkPolicies with ipBlock cidr/except and port ranges, Calico
policies with nets/notNets, ports/notPorts and named ports, network sets) and a random concrete
address or port, brute force over the cells finds exactly one cell holding it, and
`explain_connection` gives the concrete address or port the verdict that the cell's
representative gets and that `evaluate_outside` reports for the cell, in both directions.
"""

from __future__ import annotations

import ipaddress

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_properties import load_model, with_calico

from kubezt.engine.cells import (
    CELL_PROTOCOLS,
    PORT_MAX,
    PORT_MIN,
    address_cells,
    address_networks,
    port_cells,
    port_cuts,
)
from kubezt.engine.connection import End, EndKind, explain_connection
from kubezt.engine.outside import OutsideDirection, evaluate_outside, outside_cells
from strategies import CIDRS, PORT_NUMBERS, MixedCluster, mixed_clusters

CELLS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])

_V4 = [ipaddress.ip_network(c) for c in CIDRS if ipaddress.ip_network(c).version == 4]
_V6 = [ipaddress.ip_network(c) for c in CIDRS if ipaddress.ip_network(c).version == 6]


def _near(nets: list, version: int) -> st.SearchStrategy[ipaddress._BaseAddress]:
    """Addresses at and around the edges of the CIDRs the strategies use, plus any address."""
    edges = sorted(
        {int(n.network_address) + d for n in nets for d in (-1, 0, 1)}
        | {int(n.broadcast_address) + d for n in nets for d in (-1, 0, 1)}
    )
    top = 2**32 - 1 if version == 4 else 2**128 - 1
    factory = ipaddress.IPv4Address if version == 4 else ipaddress.IPv6Address
    return st.one_of(
        st.sampled_from([e for e in edges if 0 <= e <= top]),
        st.integers(int(ipaddress.ip_address("10.0.0.0")), int(ipaddress.ip_address("10.0.1.0")))
        if version == 4
        else st.integers(
            int(ipaddress.ip_address("fd00::")), int(ipaddress.ip_address("fd00::1ff"))
        ),
        st.integers(0, top),
    ).map(factory)


ADDRESSES = st.one_of(_near(_V4, 4), _near(_V6, 6))
PORTS = st.one_of(
    st.sampled_from(sorted({p + d for p in (*PORT_NUMBERS, 481, 843) for d in (-1, 0, 1)})),
    st.integers(PORT_MIN, PORT_MAX),
)


def _model(mixed: MixedCluster):
    return with_calico(load_model(mixed.cluster.objects), mixed)


@CELLS
@given(mixed=mixed_clusters(), ip=ADDRESSES, data=st.data())
def test_an_address_gets_the_verdict_of_its_cell_both_ways(mixed, ip, data) -> None:
    model = _model(mixed)
    cells = outside_cells(model)
    holding = [c for c in cells if c.contains(ip)]
    assert len(holding) == 1, f"{ip} in {[c.label for c in holding]}"
    cell = holding[0]
    workload = data.draw(st.sampled_from(model.topology.workloads))
    protocol = data.draw(st.sampled_from(CELL_PROTOCOLS))
    port = data.draw(PORTS)
    outside = evaluate_outside(model, workloads=frozenset({workload.id}))
    inner = End(EndKind.WORKLOAD, workload=workload)
    for direction, src, dst, declared in (
        (OutsideDirection.EGRESS, inner, End(EndKind.EXTERNAL, ip=str(ip)), ()),
        (
            OutsideDirection.INGRESS,
            End(EndKind.EXTERNAL, ip=str(ip)),
            inner,
            [cp.port for cp in workload.ports if cp.protocol is protocol],
        ),
    ):
        concrete = explain_connection(model, src, dst, port, protocol).allowed
        port_cell = next(
            c for c in port_cells(outside.cuts, protocol, declared) if c.contains(port)
        )
        reported = any(
            r.direction is direction and r.cell == cell and r.port == port_cell
            for r in outside.of(workload.id)
        )
        assert concrete == reported, (
            f"{direction} {workload.id} {ip} ({cell.label}) {port}/{protocol}: "
            f"explain {concrete}, cell {reported}"
        )


@CELLS
@given(mixed=mixed_clusters(), port=PORTS, data=st.data())
def test_a_port_gets_the_verdict_of_its_cell(mixed, port, data) -> None:
    model = _model(mixed)
    workloads = model.topology.workloads
    src = data.draw(st.sampled_from(workloads))
    dst = data.draw(st.sampled_from(workloads))
    protocol = data.draw(st.sampled_from(CELL_PROTOCOLS))
    declared = [cp.port for cp in dst.ports if cp.protocol is protocol]
    cells = port_cells(port_cuts(model), protocol, declared)
    holding = [c for c in cells if c.contains(port)]
    assert len(holding) == 1
    a, b = End(EndKind.WORKLOAD, workload=src), End(EndKind.WORKLOAD, workload=dst)
    concrete = explain_connection(model, a, b, port, protocol)
    cell = explain_connection(model, a, b, holding[0].representative, protocol)
    assert concrete.allowed == cell.allowed, f"{port} vs {holding[0].label}"
    assert concrete.denied_by == cell.denied_by


@CELLS
@given(mixed=mixed_clusters(), data=st.data())
def test_port_cells_cover_every_port_exactly_once(mixed, data) -> None:
    model = _model(mixed)
    cuts = port_cuts(model)
    protocol = data.draw(st.sampled_from((*CELL_PROTOCOLS,)))
    declared = data.draw(st.lists(st.sampled_from(PORT_NUMBERS), max_size=3))
    cells = port_cells(cuts, protocol, declared)
    owner = [0] * (PORT_MAX + 2)
    for cell in cells:
        for r in cell.ranges:
            for p in range(r.first, r.last + 1):
                owner[p] += 1
    assert owner[PORT_MIN : PORT_MAX + 1] == [1] * PORT_MAX
    assert sum(c.size for c in cells) == PORT_MAX
    assert sum(c.other for c in cells) <= 1
    for p in declared:
        assert any(c.is_single and c.representative == p for c in cells)


@CELLS
@given(mixed=mixed_clusters())
def test_address_cells_cover_a_small_space_exactly_once(mixed) -> None:
    """Brute force over every address of 10.0.0.0/24 and fd00::/120 plus their neighbours."""
    model = _model(mixed)
    cells = address_cells(address_networks(model))
    for base in ("10.0.0.0/23", "fd00::/119"):
        for ip in ipaddress.ip_network(base):
            assert sum(c.contains(ip) for c in cells) == 1, ip
    for cell in cells:
        assert cell.contains(cell.representative)
