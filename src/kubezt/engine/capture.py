"""Whether the mesh data plane sees a connection at all: the sidecar's iptables capture as the
`traffic.sidecar.istio.io/*` annotations configure it (istio-iptables, Istio 1.31), and
ztunnel's inbound capture (`ambient.istio.io/bypass-inbound-capture`).

Inbound (server sidecar): `includeInboundPorts` is `*` by default (every port), an empty value
captures nothing, otherwise a comma-separated port list; `excludeInboundPorts` removes ports.
A port that is not captured reaches the application directly: no mTLS termination, no
PeerAuthentication, no AuthorizationPolicy.

Outbound (client sidecar), in the order of istio-iptables' ISTIO_OUTPUT chain
(`tools/istio-iptables/pkg/capture/run.go`): a port in `excludeOutboundPorts` is never
captured; then a destination address in `excludeOutboundIPRanges` is not captured (RETURN,
"must be applied before inclusions") — even on a port `includeOutboundPorts` lists; then a
port in `includeOutboundPorts` is captured; then `includeOutboundIPRanges` decides (`*` by
default, empty for none). A connection that is not captured leaves the pod as plaintext with no
identity.

The address those rules see is the one the application connects to, in the pod's own network
namespace: for a Service, its ClusterIP — kube-proxy translates it to a pod address only later,
on the node — so a ClusterIP inside `excludeOutboundIPRanges` (or outside
`includeOutboundIPRanges`) is not captured even when the pod behind it would be. A headless
Service resolves to the pod addresses themselves.

When the input does not give that address (a Service without `spec.clusterIP`, a workload
without `status.podIP`) and the ranges decide, capture is unknown (`Capture.captured` None):
the evaluator then decides the connection both ways and counts it allowed when either way
allows it (`engine.connection.plan_paths`), and `engine.diagnose` warns (W063, W064).
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from kubezt.engine.authz import authz_networks
from kubezt.engine.explain import Message
from kubezt.ir.model import Model
from kubezt.ir.topology import Workload

INCLUDE_INBOUND_PORTS = "traffic.sidecar.istio.io/includeInboundPorts"
EXCLUDE_INBOUND_PORTS = "traffic.sidecar.istio.io/excludeInboundPorts"
INCLUDE_OUTBOUND_PORTS = "traffic.sidecar.istio.io/includeOutboundPorts"
EXCLUDE_OUTBOUND_PORTS = "traffic.sidecar.istio.io/excludeOutboundPorts"
INCLUDE_OUTBOUND_RANGES = "traffic.sidecar.istio.io/includeOutboundIPRanges"
EXCLUDE_OUTBOUND_RANGES = "traffic.sidecar.istio.io/excludeOutboundIPRanges"
BYPASS_INBOUND_CAPTURE = "ambient.istio.io/bypass-inbound-capture"
STATUS_PORT = "status.sidecar.istio.io/port"
DEFAULT_STATUS_PORT = 15020
PROXY_INBOUND_PORTS = (15090, 15021)
"""Envoy's Prometheus stats and readiness ports: the injection template passes them to
istio-iptables' `-d` (exclude inbound) before any annotation, with the pilot-agent status port
(`status.sidecar.istio.io/port`, default 15020; "0" for none)."""


@dataclass(frozen=True, slots=True)
class Capture:
    captured: bool | None
    """None: it depends on a destination address the input does not give (outbound only)."""
    why: Message | None = None
    """The annotation that decided, as a message (`inbound-port-excluded`, …,
    `outbound-address-unknown`); None when capture is the default."""


_CAPTURED = Capture(True)


def _ports(text: str) -> set[str]:
    return {p.strip() for p in text.split(",") if p.strip()}


def _in_ranges(text: str, ip: str | None) -> bool | None:
    """Is `ip` in the comma-separated CIDR list (`*` = everything)? None when unknown."""
    items = [t.strip() for t in text.split(",") if t.strip()]
    if "*" in items:
        return True
    if not items:
        return False
    if ip is None:
        return None
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return None
    for item in items:
        try:
            if address in ipaddress.ip_network(item, strict=False):
                return True
        except ValueError:
            continue
    return False


def proxy_ports(workload: Workload) -> tuple[int, ...]:
    """The sidecar's own plaintext ports that inbound capture never takes (`PROXY_INBOUND_PORTS`
    and the status port)."""
    return _proxy_ports(workload.annotations.get(STATUS_PORT))


@functools.lru_cache(maxsize=1024)
def _proxy_ports(annotation: str | None) -> tuple[int, ...]:
    text = (annotation or "").strip()
    status = int(text) if text.isdigit() else DEFAULT_STATUS_PORT
    return PROXY_INBOUND_PORTS if status == 0 else (*PROXY_INBOUND_PORTS, status)


def _digits(text: str | None) -> set[int]:
    return {int(p) for p in _ports(text or "") if p.isascii() and p.isdigit()}


def inbound_ports_named(server: Workload) -> frozenset[int]:
    """Every port `inbound` may answer differently for: the proxy's own ports and the ports the
    inbound-capture annotations list. Any two other ports are captured alike."""
    return frozenset(
        {
            *proxy_ports(server),
            *_digits(server.annotations.get(INCLUDE_INBOUND_PORTS)),
            *_digits(server.annotations.get(EXCLUDE_INBOUND_PORTS)),
        }
    )


def outbound_ports_named(client: Workload) -> frozenset[int]:
    """Every port `outbound` may answer differently for (its outbound port annotations)."""
    return frozenset(
        {
            *_digits(client.annotations.get(INCLUDE_OUTBOUND_PORTS)),
            *_digits(client.annotations.get(EXCLUDE_OUTBOUND_PORTS)),
        }
    )


def inbound(server: Workload, port: int) -> Capture:
    """Does the server's sidecar capture inbound connections to `port`?"""
    if port in proxy_ports(server):
        return Capture(False, Message("inbound-proxy-port", (("port", port),)))
    annotations = server.annotations
    include = annotations.get(INCLUDE_INBOUND_PORTS)
    exclude = annotations.get(EXCLUDE_INBOUND_PORTS)
    if exclude is not None and str(port) in _ports(exclude):
        return Capture(False, Message("inbound-port-excluded", (("port", port),)))
    if include is None:
        return _CAPTURED
    ports = _ports(include)
    if "*" in ports or str(port) in ports:
        return _CAPTURED
    code = "inbound-ports-empty" if not ports else "inbound-port-not-listed"
    return Capture(False, Message(code, (("port", port),)))


def outbound(client: Workload, port: int, destination_ip: str | None) -> Capture:
    """Does the client's sidecar capture an outbound connection to `destination_ip:port`?
    With `destination_ip` None (not given): the answer every address would give, or
    `captured` None when addresses (of either family) differ in it."""
    annotations = client.annotations
    exclude_ports = annotations.get(EXCLUDE_OUTBOUND_PORTS)
    if exclude_ports is not None and str(port) in _ports(exclude_ports):
        return Capture(False, Message("outbound-port-excluded", (("port", port),)))
    exclude_ranges = annotations.get(EXCLUDE_OUTBOUND_RANGES)
    include_ports = annotations.get(INCLUDE_OUTBOUND_PORTS)
    include_ranges = annotations.get(INCLUDE_OUTBOUND_RANGES)
    if exclude_ranges is None and include_ranges is None:
        return _CAPTURED
    port_included = include_ports is not None and str(port) in _ports(include_ports)
    if destination_ip is None:
        return _outbound_unknown(exclude_ranges, include_ranges, port_included)
    if exclude_ranges is not None and _in_ranges(exclude_ranges, destination_ip):
        return Capture(False, Message("outbound-range-excluded", (("address", destination_ip),)))
    if port_included or include_ranges is None or _in_ranges(include_ranges, destination_ip):
        return _CAPTURED
    return Capture(False, Message("outbound-range-not-included", (("address", destination_ip),)))


_ROOTS: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = (
    ipaddress.ip_network("0.0.0.0/0"),
    ipaddress.ip_network("::/0"),
)


def _networks(text: str | None) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """The CIDRs of a range annotation (`*`: both whole address spaces)."""
    nets = []
    for item in (text or "").split(","):
        item = item.strip()
        if item == "*":
            return list(_ROOTS)
        try:
            nets.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            continue
    return nets


def _covered(
    nets: list[ipaddress.IPv4Network | ipaddress.IPv6Network],
    cover: list[ipaddress.IPv4Network | ipaddress.IPv6Network],
) -> bool:
    """Is every address of `nets` inside some CIDR of `cover`?"""
    left = list(nets)
    for c in cover:
        rest: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for n in left:
            if n.version != c.version or not n.overlaps(c):
                rest.append(n)
            elif not n.subnet_of(c):  # type: ignore[arg-type]
                rest.extend(n.address_exclude(c))  # type: ignore[arg-type]
        left = rest
    return not left


def _outbound_unknown(
    exclude_ranges: str | None, include_ranges: str | None, port_included: bool
) -> Capture:
    """Outbound capture to an address the input does not give: the outcomes some address (of
    either family) gets — excluded: not captured; else a listed port or an included address:
    captured; else not."""
    excluded = _networks(exclude_ranges)
    everything = list(_ROOTS)
    included = everything if include_ranges is None or port_included else _networks(include_ranges)
    can_capture = not _covered(included, excluded)
    can_miss = bool(excluded) or not _covered(everything, included)
    if can_capture and can_miss:
        keys = tuple(
            key
            for key, text in (
                (EXCLUDE_OUTBOUND_RANGES, exclude_ranges if excluded else None),
                (INCLUDE_OUTBOUND_RANGES, None if port_included else include_ranges),
            )
            if text is not None
        )
        return Capture(None, Message("outbound-address-unknown", (("annotations", keys),)))
    if can_capture:
        return _CAPTURED
    if excluded and _covered(everything, excluded):
        return Capture(False, Message("outbound-range-excluded", (("address", None),)))
    return Capture(False, Message("outbound-range-not-included", (("address", None),)))


def address_dependent(client: Workload) -> tuple[str, ...]:
    """The range annotations under which, for some port, whether the client's sidecar
    captures a connection depends on the destination address (empty: it never does)."""
    annotations = client.annotations
    exclude = annotations.get(EXCLUDE_OUTBOUND_RANGES)
    include = annotations.get(INCLUDE_OUTBOUND_RANGES)
    if exclude is None and include is None:
        return ()
    # a port neither list names always exists; a listed one only if not excluded as well
    listed = _ports(annotations.get(INCLUDE_OUTBOUND_PORTS) or "")
    listed -= _ports(annotations.get(EXCLUDE_OUTBOUND_PORTS) or "")
    for port_included in (False, True) if listed else (False,):
        seen = _outbound_unknown(exclude, include, port_included)
        if seen.captured is None and seen.why is not None:
            keys = seen.why.param("annotations")
            return tuple(str(k) for k in keys) if isinstance(keys, tuple) else ()
    return ()


def outbound_networks(
    workloads: Iterable[Workload],
) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """The CIDRs of every outbound-capture range annotation: a client's sidecar tells
    destination addresses apart by them, so they split workload classes."""
    nets: dict[ipaddress.IPv4Network | ipaddress.IPv6Network, None] = {}
    texts: dict[str, None] = {}
    for w in workloads:
        for key in (EXCLUDE_OUTBOUND_RANGES, INCLUDE_OUTBOUND_RANGES):
            text = w.annotations.get(key)
            if text:
                texts[text] = None
    # each distinct annotation value once (most pods have none, or share their app's)
    for text in texts:
        for item in text.split(","):
            try:
                nets[ipaddress.ip_network(item.strip(), strict=False)] = None
            except ValueError:
                continue
    return tuple(nets)


def address_networks(model: Model) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """CIDRs beyond L3/L4 policy's that tell workload addresses apart (they split classes):
    AuthorizationPolicy source blocks and the sidecars' outbound-capture ranges."""
    return tuple(
        dict.fromkeys(
            authz_networks(model.mesh.authorization_policies)
            + outbound_networks(model.topology.workloads)
        )
    )


def ztunnel_inbound(server: Workload) -> Capture:
    """Does ztunnel capture plaintext inbound connections to an ambient pod?"""
    if server.annotations.get(BYPASS_INBOUND_CAPTURE) == "true":
        return Capture(False, Message("ztunnel-inbound-bypassed"))
    return _CAPTURED
