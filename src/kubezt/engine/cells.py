"""Cells: the port space and the address space cut by every value any input names.

A connection's verdict depends on its destination port only through the port ranges, single
ports and named ports that policies, Services and mesh resources name, and on an outside
address only through the CIDRs that policies and network sets name. Cutting each space at
those values gives cells whose members no input can tell apart, so evaluating one member (the
cell's representative) decides the whole cell, and the cells together cover the space: every
port of 1-65535 (per protocol) and every IPv4 and IPv6 address falls in exactly one cell.

- Ports (`port_cuts`, `port_cells`): for one destination, each port it declares is a cell of its
  own (a named port of a rule resolves only there); the other ports are grouped by which of the
  input's port ranges contain them. Ports no input names form the `other` cell of the protocol.
- Outside addresses (`address_cells`): CIDRs nest or are disjoint, so an address is told apart
  only by the smallest CIDR that contains it. Each CIDR's cell is the CIDR minus the CIDRs
  inside it; `0.0.0.0/0` and `::/0` hold what no CIDR names.

Pure: no I/O. Does not decide verdicts; `engine.outside` and `engine.reach` evaluate cells.
"""

from __future__ import annotations

import ipaddress
import itertools
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from kubezt.engine import capture
from kubezt.engine.authz import authz_networks
from kubezt.engine.index import IpAddress, class_networks
from kubezt.engine.mesh import HBONE_PORT, sidecar_injected
from kubezt.ir.mesh import AuthorizationPolicy, DestinationRule, PeerAuthentication
from kubezt.ir.model import Model
from kubezt.ir.policy import Network, Policy
from kubezt.ir.ports import PortRange, Protocol
from kubezt.ir.topology import Namespace, Service, Workload

PORT_MIN = 1
PORT_MAX = 65535
CELL_PROTOCOLS = (Protocol.TCP, Protocol.UDP, Protocol.SCTP)
"""Protocols whose packets carry a destination port."""
MESH_PROTOCOLS = (Protocol.TCP,)
"""Protocols the mesh sees: sidecars and ztunnel capture TCP only, so the ports mesh objects,
capture annotations and HBONE name cut TCP's cells and no other protocol's."""
OTHER = "other"
"""How the cell of ports no input names is shown."""
CAPTURE_PORT_ANNOTATIONS = (
    "traffic.sidecar.istio.io/includeInboundPorts",
    "traffic.sidecar.istio.io/excludeInboundPorts",
    "traffic.sidecar.istio.io/includeOutboundPorts",
    "traffic.sidecar.istio.io/excludeOutboundPorts",
)
"""Workload annotations that list ports the sidecar's traffic capture treats apart."""


# --- ports ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, order=True)
class PortCell:
    """Destination ports no input tells apart, for one protocol: `ranges` sorted and disjoint.
    `other` marks the cell of ports no input names (shown as `other`)."""

    protocol: Protocol
    ranges: tuple[PortRange, ...]
    other: bool = False

    @property
    def representative(self) -> int:
        """The port evaluated for the whole cell: its lowest."""
        return self.ranges[0].first

    @property
    def is_single(self) -> bool:
        return len(self.ranges) == 1 and self.ranges[0].first == self.ranges[0].last

    @property
    def span(self) -> str:
        """The ports as ranges: `1-79,81-65535`."""
        return ",".join(str(r) for r in self.ranges)

    @property
    def label(self) -> str:
        """`80`, `8000-8080`, or `other`."""
        return OTHER if self.other else self.span

    @property
    def size(self) -> int:
        return sum(r.last - r.first + 1 for r in self.ranges)

    def contains(self, port: int) -> bool:
        return any(r.contains(port) for r in self.ranges)


@dataclass(frozen=True, slots=True)
class PortCuts:
    """Per protocol, the port ranges the input names, sorted (equal inputs, equal cuts)."""

    ranges: tuple[tuple[Protocol, tuple[PortRange, ...]], ...] = ()
    _hash: int = field(default=0, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # cuts key the memos of cells: hash them once
        object.__setattr__(self, "_hash", hash(self.ranges))

    def __hash__(self) -> int:
        return self._hash

    @classmethod
    def of(cls, found: Mapping[Protocol, Iterable[PortRange]]) -> PortCuts:
        return cls(tuple((p, tuple(sorted(set(found.get(p, ()))))) for p in CELL_PROTOCOLS))

    def of_protocol(self, protocol: Protocol) -> tuple[PortRange, ...]:
        return next((r for p, r in self.ranges if p is protocol), ())

    def merged(self, other: PortCuts) -> PortCuts:
        """The cuts of both (a common refinement, e.g. for the two sides of a diff)."""
        return PortCuts.of({p: self.of_protocol(p) + other.of_protocol(p) for p in CELL_PROTOCOLS})

    def with_ports(self, ports: Iterable[tuple[int, Protocol]]) -> PortCuts:
        """These cuts plus single ports (e.g. the ports an intent names)."""
        extra: dict[Protocol, list[PortRange]] = {}
        for port, protocol in ports:
            extra.setdefault(protocol, []).append(PortRange(port, port))
        return self.merged(PortCuts.of(extra))


def port_cuts(model: Model) -> PortCuts:
    """Every port range the input names: policy rule ports and notPorts (numbers and ranges;
    named ports resolve to declared ports, which cut every destination that declares them),
    Service ports and numeric targetPorts, AuthorizationPolicy ports and `destination.port`
    conditions, PeerAuthentication and DestinationRule port-level settings, sidecar capture
    port annotations, the ports of sidecars that capture never takes, and the HBONE port."""
    found: dict[Protocol, dict[PortRange, None]] = {p: {} for p in CELL_PROTOCOLS}
    topology = model.topology
    objects: Iterable[object] = itertools.chain(
        model.policies.policies,
        topology.services,
        model.mesh.authorization_policies,
        model.mesh.peer_authentications,
        model.mesh.destination_rules,
    )
    for obj in objects:
        for protocols, ranges in object_port_ranges(obj):
            for protocol in protocols:
                found[protocol].update(dict.fromkeys(ranges))
    for w in topology.workloads:
        for protocols, ranges in workload_port_ranges(w, topology.namespace(w.namespace)):
            for protocol in protocols:
                found[protocol].update(dict.fromkeys(ranges))
    for protocol in MESH_PROTOCOLS:
        found[protocol][PortRange(HBONE_PORT, HBONE_PORT)] = None
    return PortCuts.of(found)


PortContribution = list[tuple[tuple[Protocol, ...], tuple[PortRange, ...]]]
"""The port ranges one object names, with the protocols they cut."""


def object_port_ranges(obj: object) -> PortContribution:
    """The port ranges a policy, Service, AuthorizationPolicy, PeerAuthentication or
    DestinationRule adds to `port_cuts` (nothing for other objects; workloads:
    `workload_port_ranges`)."""
    out: PortContribution = []
    if isinstance(obj, Policy):
        for rule in (*obj.ingress, *obj.egress):
            protocols = _rule_protocols(rule.protocol)
            for side in (rule.source, rule.destination):
                for ports in (side.ports, side.not_ports):
                    if ports is not None and ports.ranges:
                        out.append((protocols, ports.ranges))
    elif isinstance(obj, Service):
        for sp in obj.ports:
            singles = [sp.port] + ([sp.target_port] if isinstance(sp.target_port, int) else [])
            out.append(((sp.protocol,), _singles(singles)))
    elif isinstance(obj, AuthorizationPolicy):
        numbers: list[str] = []
        for arule in obj.rules:
            for op in arule.operations or ():
                numbers.extend(op.ports or ())
                numbers.extend(op.not_ports or ())
            for cond in arule.conditions:
                if cond.key == "destination.port":
                    numbers.extend((cond.values or ()) + (cond.not_values or ()))
        out.append((MESH_PROTOCOLS, _singles(int(n) for n in numbers if n.strip().isdigit())))
    elif isinstance(obj, PeerAuthentication):
        out.append((MESH_PROTOCOLS, _singles(p for p, _ in obj.port_modes)))
    elif isinstance(obj, DestinationRule):
        out.append((MESH_PROTOCOLS, _singles(p for p, _ in obj.port_tls)))
    return [(protocols, ranges) for protocols, ranges in out if ranges and protocols]


def workload_port_ranges(workload: Workload, namespace: Namespace) -> PortContribution:
    """The ports a workload adds to `port_cuts`: those its sidecar capture annotations list,
    and, when a sidecar is injected into it (read with its namespace's labels), the ports of
    the sidecar that capture never takes."""
    singles: list[int] = []
    for key in CAPTURE_PORT_ANNOTATIONS:
        text = workload.annotations.get(key) or ""
        singles += [int(t) for t in text.split(",") if t.strip().isdigit()]
    if sidecar_injected(workload, namespace):
        singles += capture.proxy_ports(workload)
    ranges = _singles(singles)
    return [(MESH_PROTOCOLS, ranges)] if ranges else []


def _singles(ports: Iterable[int]) -> tuple[PortRange, ...]:
    return tuple(PortRange(p, p) for p in ports if PORT_MIN <= p <= PORT_MAX)


def _rule_protocols(number: int | None) -> tuple[Protocol, ...]:
    if number is None:
        return CELL_PROTOCOLS
    return tuple(p for p in CELL_PROTOCOLS if p.number == number)


def port_cells(
    cuts: PortCuts, protocol: Protocol, declared: Iterable[int] = ()
) -> tuple[PortCell, ...]:
    """The cells of `protocol`'s ports for a destination declaring `declared`: each declared
    port alone, the rest grouped by the cut ranges that contain them; sorted by lowest port.
    Together they cover 1-65535 exactly once."""
    own = sorted({p for p in declared if PORT_MIN <= p <= PORT_MAX})
    base = _base_cells(cuts, protocol)
    if not own:
        return base
    cells = [PortCell(protocol, (PortRange(p, p),)) for p in own]
    for cell in base:
        rest = _without(cell.ranges, own)
        if rest:
            cells.append(PortCell(protocol, rest, other=cell.other))
    return tuple(sorted(cells, key=lambda c: c.representative))


_BASE: dict[tuple[PortCuts, Protocol], tuple[PortCell, ...]] = {}


def _base_cells(cuts: PortCuts, protocol: Protocol) -> tuple[PortCell, ...]:
    """The cells of a destination that declares no port: ports grouped by the cut ranges that
    contain them (one sweep over the ranges' bounds); remembered per cuts."""
    key = (cuts, protocol)
    found = _BASE.get(key)
    if found is not None:
        return found
    ranges = cuts.of_protocol(protocol)
    starts: dict[int, list[int]] = {}
    ends: dict[int, list[int]] = {}
    bounds = {PORT_MIN, PORT_MAX + 1}
    for i, r in enumerate(ranges):
        first, end = max(r.first, PORT_MIN), min(r.last, PORT_MAX) + 1
        if first < end:
            starts.setdefault(first, []).append(i)
            ends.setdefault(end, []).append(i)
            bounds.update((first, end))
    active: set[int] = set()
    groups: dict[frozenset[int], list[PortRange]] = {}
    for lo, hi in itertools.pairwise(sorted(bounds)):
        active.difference_update(ends.get(lo, ()))
        active.update(starts.get(lo, ()))
        chunk = groups.setdefault(frozenset(active), [])
        if chunk and chunk[-1].last + 1 == lo:
            chunk[-1] = PortRange(chunk[-1].first, hi - 1)
        else:
            chunk.append(PortRange(lo, hi - 1))
    cells = [
        PortCell(protocol, tuple(chunk), other=not signature) for signature, chunk in groups.items()
    ]
    found = tuple(sorted(cells, key=lambda c: c.representative))
    if len(_BASE) > 64:
        _BASE.clear()
    _BASE[key] = found
    return found


def _without(ranges: tuple[PortRange, ...], ports: list[int]) -> tuple[PortRange, ...]:
    """`ranges` (sorted, disjoint) less the sorted `ports`."""
    out: list[PortRange] = []
    for r in ranges:
        first = r.first
        for p in ports:
            if p < first or p > r.last:
                continue
            if p > first:
                out.append(PortRange(first, p - 1))
            first = p + 1
        if first <= r.last:
            out.append(PortRange(first, r.last))
    return tuple(out)


def cell_of_port(cells: Iterable[PortCell], port: int) -> PortCell:
    """The cell holding `port` (every port of 1-65535 is in exactly one)."""
    for cell in cells:
        if cell.contains(port):
            return cell
    raise ValueError(f"port {port} is in no cell")


# --- outside addresses ------------------------------------------------------------------------

ROOTS: tuple[Network, ...] = (
    ipaddress.ip_network("0.0.0.0/0"),
    ipaddress.ip_network("::/0"),
)


@dataclass(frozen=True, slots=True)
class AddressCell:
    """Addresses no input tells apart: `network` minus the (disjoint, maximal) CIDRs of the
    input inside it, `excluded`."""

    network: Network
    excluded: tuple[Network, ...]
    representative: IpAddress
    """An address of the cell (not an address of a workload of the input where one exists)."""

    @property
    def label(self) -> str:
        """`external:198.51.100.0/24` (the cell's CIDR; `excluded` carves it)."""
        return f"external:{self.network}"

    @property
    def version(self) -> int:
        return self.network.version

    def contains(self, ip: IpAddress) -> bool:
        return (
            ip.version == self.network.version
            and ip in self.network
            and not any(ip in n for n in self.excluded)
        )


def address_networks(model: Model) -> tuple[Network, ...]:
    """Every CIDR any input names: policy nets and notNets (K8s ipBlock cidr/except, Calico,
    policy API networks), Calico network sets, AuthorizationPolicy ipBlocks, remoteIpBlocks,
    notIpBlocks and `source.ip`/`remote.ip` conditions."""
    return class_networks(model, authz_networks(model.mesh.authorization_policies))


def address_cells(
    networks: Iterable[Network], avoid: Iterable[IpAddress] = ()
) -> tuple[AddressCell, ...]:
    """The cells of the IPv4 and IPv6 address spaces cut by `networks`, sorted by family and
    address; cells that the CIDRs inside them cover entirely are left out. `avoid`: addresses
    a representative should not be (workload addresses) where the cell has another."""
    nets = sorted(
        set(ROOTS) | set(networks),
        key=lambda n: (n.version, int(n.network_address), n.prefixlen),
    )
    avoided = set(avoid)
    cells: list[AddressCell] = []
    for net in nets:
        inside = _maximal_inside(net, nets)
        if sum(n.num_addresses for n in inside) == net.num_addresses:
            continue
        cells.append(AddressCell(net, inside, _representative(net, inside, avoided)))
    return tuple(cells)


def _maximal_inside(net: Network, nets: list[Network]) -> tuple[Network, ...]:
    """The CIDRs of `nets` strictly inside `net` that no other such CIDR contains."""
    strict = [
        n
        for n in nets
        if n.version == net.version and n != net and n.subnet_of(net)  # type: ignore[arg-type]
    ]
    out = [
        n
        for n in strict
        if not any(m != n and n.subnet_of(m) for m in strict)  # type: ignore[arg-type]
    ]
    return tuple(sorted(out, key=lambda n: int(n.network_address)))


PREFERRED: tuple[IpAddress, ...] = (
    ipaddress.ip_address("203.0.113.10"),
    ipaddress.ip_address("198.51.100.10"),
    ipaddress.ip_address("192.0.2.10"),
    ipaddress.ip_address("2001:db8::10"),
)
"""Documentation addresses (RFC 5737, RFC 3849), shown for a cell that holds one."""


def _representative(net: Network, inside: tuple[Network, ...], avoid: set[IpAddress]) -> IpAddress:
    """A documentation address of the cell, else its lowest address not in `avoid` (after the
    network address when the cell is larger than two addresses), else its lowest."""
    for ip in PREFERRED:
        inside_cell = ip.version == net.version and ip in net and not any(ip in n for n in inside)
        if inside_cell and ip not in avoid:
            return ip
    fallback: IpAddress | None = None
    skip = net.num_addresses > 2
    for ip in _cell_addresses(net, inside):
        if fallback is None:
            fallback = ip
        if ip not in avoid and not (skip and ip == net.network_address):
            return ip
    assert fallback is not None
    return fallback


def _cell_addresses(net: Network, inside: tuple[Network, ...]) -> Iterator[IpAddress]:
    """Addresses of `net` outside `inside`, ascending (a bounded number tried per gap)."""
    cursor = int(net.network_address)
    end = int(net.broadcast_address)
    factory = ipaddress.IPv4Address if net.version == 4 else ipaddress.IPv6Address
    for hole in (*inside, None):
        stop = int(hole.network_address) - 1 if hole is not None else end
        tried = 0
        while cursor <= stop and tried < 64:
            yield factory(cursor)
            cursor += 1
            tried += 1
        if hole is not None:
            cursor = max(cursor, int(hole.broadcast_address) + 1)


def cell_of_address(cells: Iterable[AddressCell], ip: IpAddress) -> AddressCell:
    """The cell holding `ip` (every address is in exactly one)."""
    for cell in cells:
        if cell.contains(ip):
            return cell
    raise ValueError(f"address {ip} is in no cell")
