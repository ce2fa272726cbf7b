"""Istio data-plane facts: mesh membership, effective mTLS mode, client-side TLS, waypoints,
identities and protocol selection. Pure functions over the IR; no verdicts.

Sources: semantics.md §3 (PeerAuthentication, auto mTLS, DestinationRule), §5.1 (ambient
enrolment), §5.4 (waypoints), §6 (identities).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from kubezt.engine.memo import by_identity
from kubezt.ir.config import MeshConfig
from kubezt.ir.mesh import (
    DestinationRule,
    MeshPolicies,
    MtlsMode,
    PeerAuthentication,
    TlsMode,
    Waypoint,
)
from kubezt.ir.model import Model
from kubezt.ir.ports import Protocol
from kubezt.ir.requests import ServiceAddress
from kubezt.ir.topology import Labels, MeshMode, Namespace, ProxyRole, Service, Workload

HBONE_PORT = 15008
AMBIENT_PROBE_SOURCE = "169.254.7.127"
AMBIENT_PROBE_NETWORKS = (
    ipaddress.ip_network("169.254.7.127/32"),
    ipaddress.ip_network("fd16:9254:7127:1337:ffff:ffff:ffff:ffff/128"),
)
"""The addresses istio-cni SNATs kubelet probes (every host-originated TCP connection) to
ambient pods from, IPv4 and IPv6."""
WAYPOINT_GATEWAY_LABEL = "gateway.networking.k8s.io/gateway-name"
PROXY_ANNOTATION = "kubezt.io/proxy"


def proxy_role(workload: Workload, mesh: MeshPolicies) -> ProxyRole:
    """Waypoint and standalone-gateway pods: the kubezt annotation, the Gateway-API label, or
    a classic Istio gateway deployment."""
    role = workload.annotations.get(PROXY_ANNOTATION)
    if role == "waypoint":
        return ProxyRole.WAYPOINT
    if role == "gateway":
        return ProxyRole.GATEWAY
    gateway = workload.labels.get(WAYPOINT_GATEWAY_LABEL)
    if gateway is not None:
        if any(w.name == gateway and w.namespace == workload.namespace for w in mesh.waypoints):
            return ProxyRole.WAYPOINT
        return ProxyRole.GATEWAY
    # Classic Istio gateways: injected with the `gateway` template, or the istio=ingressgateway
    # / egressgateway deployments the installer creates.
    templates = (workload.annotations.get("inject.istio.io/templates") or "").split(",")
    if "gateway" in (t.strip() for t in templates) or workload.labels.get("istio") in (
        "ingressgateway",
        "egressgateway",
    ):
        return ProxyRole.GATEWAY
    return ProxyRole.NONE


def mesh_mode(workload: Workload, namespace: Namespace, mesh: MeshPolicies) -> MeshMode:
    """How Istio captures the workload's traffic (semantics.md §5.1): a sidecar wins over
    ambient; pod labels and annotations override namespace labels."""
    if workload.host_network or proxy_role(workload, mesh) is not ProxyRole.NONE:
        return MeshMode.NONE
    if sidecar_injected(workload, namespace):
        return MeshMode.SIDECAR
    ns_labels = namespace.labels
    pod_mode = workload.labels.get("istio.io/dataplane-mode")
    if pod_mode == "ambient":
        return MeshMode.AMBIENT
    if ns_labels.get("istio.io/dataplane-mode") == "ambient" and pod_mode != "none":
        return MeshMode.AMBIENT
    return MeshMode.NONE


INJECTION_IGNORED_NAMESPACES = ("kube-system", "kube-public")


def sidecar_injected(workload: Workload, namespace: Namespace) -> bool:
    """Does the sidecar injector inject this pod? Istio 1.31's injector webhooks
    (istio-discovery mutatingwebhook.yaml, default revision) are called only when one of their
    namespace/object selectors matches — selectors read labels, never annotations:

    * `rev.namespace`: namespace has `istio.io/rev`, no `istio-injection`; pod label
      `sidecar.istio.io/inject` is not "false";
    * `rev.object`: namespace has neither label; pod has `istio.io/rev`, inject label not "false";
    * `namespace`: namespace `istio-injection=enabled`; pod inject label not "false";
    * `object`: namespace has neither label; pod label `sidecar.istio.io/inject=true` and no
      `istio.io/rev`.

    Then the injector itself (inject.go injectRequired) skips hostNetwork pods and kube-system /
    kube-public, and reads the pod's `sidecar.istio.io/inject` label, else its annotation:
    "false" skips, anything else injects (policy `enabled`). Every `istio.io/rev` value is taken
    to name an installed revision."""
    if workload.host_network or workload.namespace in INJECTION_IGNORED_NAMESPACES:
        return False
    ns = namespace.labels
    labels = workload.labels
    inject_label = labels.get("sidecar.istio.io/inject")
    ns_injection = ns.get("istio-injection")
    called = (
        ("istio.io/rev" in ns and ns_injection is None and inject_label != "false")
        or (
            "istio.io/rev" not in ns
            and ns_injection is None
            and "istio.io/rev" in labels
            and inject_label != "false"
        )
        or (ns_injection == "enabled" and inject_label != "false")
        or (
            ns_injection is None
            and "istio.io/rev" not in ns
            and inject_label == "true"
            and "istio.io/rev" not in labels
        )
    )
    if not called:
        return False
    choice = (
        inject_label
        if inject_label is not None
        else workload.annotations.get("sidecar.istio.io/inject")
    )
    return choice != "false"


def principal(config: MeshConfig, namespace: str, service_account: str) -> str:
    """The SPIFFE identity Istio issues, without `spiffe://` (semantics.md §6.1)."""
    return f"{config.trust_domain}/ns/{namespace}/sa/{service_account}"


# --- PeerAuthentication ----------------------------------------------------------------------


class ModeSource(StrEnum):
    DEFAULT = "default"
    MESH = "mesh"
    NAMESPACE = "namespace"
    WORKLOAD = "workload"
    PORT = "port"


@dataclass(frozen=True, slots=True)
class EffectiveMtls:
    mode: MtlsMode
    decided_by: PeerAuthentication | None
    scope: ModeSource


def _oldest(policies: list[PeerAuthentication]) -> PeerAuthentication | None:
    # Among policies of one scope the oldest (creationTimestamp) wins; then by name.
    return min(policies, key=lambda p: (p.created or "~", p.name)) if policies else None


def effective_mtls(workload: Workload, port: int, model: Model) -> EffectiveMtls:
    """The server-side mTLS mode for `port` of `workload` (ComposePeerAuthentication):
    PERMISSIVE, overridden by the mesh, namespace and workload policies unless UNSET, then the
    workload policy's per-port mode (UNSET inherits)."""
    mesh_pa, by_namespace = _peer_index(
        model.mesh.peer_authentications, model.mesh_config.root_namespace
    )
    ns_pa, selecting = by_namespace.get(workload.namespace, (None, ()))
    wl_pa = _oldest([p for p in selecting if _labels_match(p.selector or {}, workload.labels)])
    result = EffectiveMtls(MtlsMode.PERMISSIVE, None, ModeSource.DEFAULT)
    for pa, scope in (
        (mesh_pa, ModeSource.MESH),
        (ns_pa, ModeSource.NAMESPACE),
        (wl_pa, ModeSource.WORKLOAD),
    ):
        if pa is not None and pa.mode is not MtlsMode.UNSET:
            result = EffectiveMtls(pa.mode, pa, scope)
    if wl_pa is not None:
        for p, mode in wl_pa.port_modes:
            if p == port and mode is not MtlsMode.UNSET:
                result = EffectiveMtls(mode, wl_pa, ModeSource.PORT)
    return result


_PeerIndex = tuple[
    PeerAuthentication | None,
    dict[str, tuple[PeerAuthentication | None, tuple[PeerAuthentication, ...]]],
]
_PEER_INDEX: dict[Hashable, tuple[object, _PeerIndex]] = {}
"""Per PeerAuthentication tuple and root namespace: the mesh-wide policy, and per other
namespace its namespace-wide policy and those with a selector (in input order)."""


def _peer_index(pas: tuple[PeerAuthentication, ...], root: str) -> _PeerIndex:
    def build() -> _PeerIndex:
        wide: dict[str, list[PeerAuthentication]] = {}
        selecting: dict[str, list[PeerAuthentication]] = {}
        for p in pas:
            if not p.selector:
                wide.setdefault(p.namespace, []).append(p)
            elif p.namespace != root:
                selecting.setdefault(p.namespace, []).append(p)
        by_namespace = {
            ns: (_oldest(wide.get(ns, [])), tuple(selecting.get(ns, ())))
            for ns in {*wide, *selecting}
            if ns != root
        }
        return (_oldest(wide.get(root, [])), by_namespace)

    return by_identity(_PEER_INDEX, pas, build, root)


def _labels_match(selector: Mapping[str, str], labels: Labels) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


# --- client side -----------------------------------------------------------------------------


def service_host(service: Service) -> str:
    return f"{service.name}.{service.namespace}.svc.cluster.local"


def _host_matches(rule: DestinationRule, host: str) -> bool:
    pattern = rule.host
    if "." not in pattern and pattern != "*":
        pattern = f"{pattern}.{rule.namespace}.svc.cluster.local"
    if pattern.startswith("*"):
        return host.endswith(pattern[1:])
    return host == pattern


def rule_matches_service(rule: DestinationRule, service: Service) -> bool:
    """Whether the DestinationRule's host names the Service (in whichever namespace the rule
    is looked up)."""
    return _host_matches(rule, service_host(service))


def destination_rule_tls(
    model: Model, client_ns: str, service: Service | None, service_port: int | None
) -> tuple[TlsMode | None, DestinationRule | None]:
    """The TLS mode a DestinationRule sets for traffic to `service`, looked up in the client's
    namespace, then the service's, then the root namespace; the most specific host wins."""
    if service is None:
        return None, None
    host = service_host(service)
    for ns in (client_ns, service.namespace, model.mesh_config.root_namespace):
        candidates = [
            dr
            for dr in model.mesh.destination_rules
            if dr.namespace == ns and _host_matches(dr, host)
        ]
        if not candidates:
            continue
        dr = max(candidates, key=lambda r: (not r.host.startswith("*"), len(r.host)))
        for port, mode in dr.port_tls:
            if port == service_port:
                return mode, dr
        return dr.tls_mode, dr
    return None, None


# --- protocol selection ----------------------------------------------------------------------

HTTP_PROTOCOLS = ("http", "http2", "grpc", "grpc-web", "h2c")
TCP_PROTOCOLS = ("tcp", "tls", "https", "mongo", "mysql", "redis", "udp")


def port_protocol(
    services: Sequence[Service], workload: Workload, port: int, protocol: Protocol
) -> str:
    """`http`, `tcp` or `sniff` for the target port, as Istio's protocol selection decides
    from the Service port's appProtocol or name prefix (`<protocol>[-suffix]`)."""
    if protocol is not Protocol.TCP:
        return "tcp"
    for svc in services:
        if not svc.selects(workload):
            continue
        for sp in svc.ports:
            target = sp.target_on(workload)
            if target != port:
                continue
            declared = sp.declared_protocol
            if declared in HTTP_PROTOCOLS:
                return "http"
            if declared in TCP_PROTOCOLS:
                return "tcp"
    return "sniff"


# --- waypoints -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WaypointRef:
    name: str
    namespace: str


def find_service(model: Model, address: ServiceAddress | None) -> Service | None:
    if address is None:
        return None
    for svc in model.topology.services:
        if svc.namespace == address.namespace and svc.name == address.name:
            return svc
    return None


def waypoint_for(
    model: Model, server: Workload, service: Service | None, client_role: ProxyRole
) -> WaypointRef | None:
    """The waypoint a request to `server` goes through (semantics.md §5.4): the Service's
    `istio.io/use-waypoint` (or its namespace's) when the client addressed the Service and the
    waypoint serves services; the pod's (or namespace's) when it addressed the pod IP and the
    waypoint serves workloads. `none` opts out."""
    ns = model.topology.namespace(server.namespace if service is None else service.namespace)
    if service is not None:
        if client_role is ProxyRole.GATEWAY and not (
            service.labels.get("istio.io/ingress-use-waypoint") == "true"
            or ns.labels.get("istio.io/ingress-use-waypoint") == "true"
        ):
            return None
        name = service.labels.get("istio.io/use-waypoint") or ns.labels.get("istio.io/use-waypoint")
        wp_ns = (
            service.labels.get("istio.io/use-waypoint-namespace")
            or ns.labels.get("istio.io/use-waypoint-namespace")
            or service.namespace
        )
        accepted = ("service", "all")
    else:
        name = server.labels.get("istio.io/use-waypoint") or ns.labels.get("istio.io/use-waypoint")
        wp_ns = (
            server.labels.get("istio.io/use-waypoint-namespace")
            or ns.labels.get("istio.io/use-waypoint-namespace")
            or server.namespace
        )
        accepted = ("workload", "all")
    if not name or name == "none":
        return None
    wp = _waypoint_gateways(model.mesh.waypoints).get((name, wp_ns))
    if wp is not None:
        return WaypointRef(wp.name, wp.namespace) if wp.waypoint_for in accepted else None
    # A label naming a waypoint that is not in the input: assume the default (service) kind.
    return WaypointRef(name, wp_ns) if "service" in accepted else None


_WAYPOINT_GATEWAYS: dict[Hashable, tuple[object, dict[tuple[str, str], Waypoint]]] = {}
"""Per waypoint tuple: the first waypoint Gateway of each (name, namespace), so resolving a
waypoint label is a lookup, not a scan."""


def _waypoint_gateways(waypoints: tuple[Waypoint, ...]) -> dict[tuple[str, str], Waypoint]:
    def build() -> dict[tuple[str, str], Waypoint]:
        index: dict[tuple[str, str], Waypoint] = {}
        for wp in waypoints:
            index.setdefault((wp.name, wp.namespace), wp)
        return index

    return by_identity(_WAYPOINT_GATEWAYS, waypoints, build)


_WAYPOINT_PODS: dict[Hashable, tuple[object, dict[tuple[str, str], Workload]]] = {}
"""Per workload tuple: the first pod of each (namespace, gateway name), so finding a
waypoint's pod is a lookup, not a scan of every pod."""


def _waypoint_pods(workloads: tuple[Workload, ...]) -> dict[tuple[str, str], Workload]:
    def build() -> dict[tuple[str, str], Workload]:
        index: dict[tuple[str, str], Workload] = {}
        for w in workloads:
            name = w.labels.get(WAYPOINT_GATEWAY_LABEL)
            if name is not None:
                index.setdefault((w.namespace, name), w)
        return index

    return by_identity(_WAYPOINT_PODS, workloads, build)


def waypoint_workload(model: Model, ref: WaypointRef) -> Workload:
    """The waypoint's pod from the input, or the pod Istio would create for the Gateway."""
    found = _waypoint_pods(model.topology.workloads).get((ref.namespace, ref.name))
    if found is not None:
        return found
    return Workload(
        namespace=ref.namespace,
        name=ref.name,
        kind="Deployment",
        labels=Labels({WAYPOINT_GATEWAY_LABEL: ref.name}),
        service_account=ref.name,
        annotations=Labels({PROXY_ANNOTATION: "waypoint"}),
    )
