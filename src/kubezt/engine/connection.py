"""One connection (or one HTTP request on it) through every layer, with its explanation.

Order (semantics.md §0, §8): source egress L3/L4 → destination ingress L3/L4 (for each wire
leg: ambient traffic is tunnelled to port 15008, through a waypoint in two legs) → mTLS
admission (PeerAuthentication, client TLS) → authorization (waypoint, then the destination's
ztunnel; or the destination's sidecar) → Calico application layer policy. The first "no"
decides and names its layer.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from dataclasses import dataclass
from enum import StrEnum

from kubezt.engine.authz import (
    AuthzRequest,
    Enforcer,
    authorize,
    waypoint_policies,
    workload_policies,
)
from kubezt.engine.explain import Effect, Layer, Step, Verdict
from kubezt.engine.index import ClassIndex, Peer, PeerKind, external_peer, host_peer, workload_peer
from kubezt.engine.l4 import Matcher, chains, decide, denying_layer, staged_policy_steps
from kubezt.engine.mesh import (
    AMBIENT_PROBE_SOURCE,
    HBONE_PORT,
    destination_rule_tls,
    effective_mtls,
    find_service,
    mesh_mode,
    port_protocol,
    principal,
    proxy_role,
    waypoint_for,
    waypoint_workload,
)
from kubezt.ir.config import AmbientWirePort
from kubezt.ir.mesh import MtlsMode, TlsMode
from kubezt.ir.model import Model
from kubezt.ir.policy import Direction
from kubezt.ir.ports import PortKey, Protocol
from kubezt.ir.requests import HttpRequest, ServiceAddress
from kubezt.ir.topology import MeshMode, ProxyRole, Service, Workload


class EndKind(StrEnum):
    WORKLOAD = "workload"
    EXTERNAL = "external"
    NODE = "node"
    KUBELET_PROBE = "kubelet-probe"


@dataclass(frozen=True, slots=True)
class End:
    """One end of a connection to explain: a workload, an external address, or the
    destination's own node (`node`, `kubelet-probe`)."""

    kind: EndKind
    workload: Workload | None = None
    ip: str | None = None

    @property
    def label(self) -> str:
        if self.workload is not None:
            return self.workload.id
        if self.kind is EndKind.EXTERNAL:
            return f"external:{self.ip}"
        return self.kind.value


def is_single_pod(workload: Workload) -> bool:
    """A Pod, or a controller running at most one replica: traffic to itself is self traffic."""
    return workload.kind == "Pod" or workload.replicas <= 1


def _peer(model: Model, end: End) -> Peer:
    if end.workload is not None:
        return workload_peer(end.workload, model.topology)
    ip = ipaddress.ip_address(end.ip) if end.ip else None
    if end.kind is EndKind.EXTERNAL and ip is not None:
        return external_peer(ip, model.policies)
    return host_peer(ip)


def explain_l4(
    model: Model, src: End, dst: End, wire_port: int, protocol: Protocol, leg: str = ""
) -> tuple[bool, list[Step], Layer | None]:
    """The L3/L4 verdict of one wire leg: source egress, then destination ingress; staged
    Calico policies that would change it are listed as information."""
    steps: list[Step] = []
    src_peer, dst_peer = _peer(model, src), _peer(model, dst)
    matcher = Matcher(ClassIndex([src_peer, dst_peer], model.topology, model.policies))
    key = PortKey(wire_port, protocol, dst_peer.port_name(wire_port, protocol))
    host_to_local = (
        src.kind in (EndKind.NODE, EndKind.KUBELET_PROBE) and dst_peer.kind is PeerKind.ENDPOINT
    )
    directions = (Direction.EGRESS,) if host_to_local else (Direction.EGRESS, Direction.INGRESS)

    def finish(ok: bool, layer: Layer | None) -> tuple[bool, list[Step], Layer | None]:
        done = steps + list(staged_policy_steps(matcher.ix, 0, 1, key, directions))
        if leg:
            done = [dataclasses.replace(s, detail=f"[{leg}] {s.detail}") for s in done]
        return ok, done, layer

    if src_peer.kind is PeerKind.ENDPOINT:
        trace: list[Step] = []
        ok = decide(
            matcher, chains(matcher, Direction.EGRESS)[0], Direction.EGRESS, 0, key, 0b10, trace
        )
        steps.extend(trace)
        if not ok:
            return finish(False, denying_layer(trace))
    else:
        steps.append(
            Step(
                Layer.DATAPLANE,
                "source-not-policed",
                Effect.CONTINUE,
                f"{src.label} is not a pod-network endpoint: no egress policy applies",
                direction=Direction.EGRESS.value,
            )
        )
    if host_to_local:
        steps.append(
            Step(
                Layer.DATAPLANE,
                "host-to-local-workload",
                Effect.ALLOW,
                "traffic from the destination's own node is not policed (Calico "
                "iptables/nftables dataplane)",
                direction=Direction.INGRESS.value,
            )
        )
        return finish(True, None)
    if dst_peer.kind is PeerKind.ENDPOINT:
        trace = []
        ok = decide(
            matcher, chains(matcher, Direction.INGRESS)[1], Direction.INGRESS, 1, key, 0b01, trace
        )
        steps.extend(trace)
        if not ok:
            return finish(False, denying_layer(trace))
    else:
        steps.append(
            Step(
                Layer.DATAPLANE,
                "destination-not-policed",
                Effect.CONTINUE,
                f"{dst.label} is not a pod-network endpoint: no ingress policy applies",
                direction=Direction.INGRESS.value,
            )
        )
    return finish(True, None)


@dataclass(frozen=True, slots=True)
class Path:
    """How the request travels: client mode, server mode, TLS, waypoint and wire legs."""

    client: MeshMode
    client_role: ProxyRole
    server: MeshMode
    mtls: bool
    tls_detail: str
    tls_layer_fail: bool
    """The client sends Istio mTLS to a server that cannot terminate it."""
    waypoint: Workload | None
    legs: tuple[tuple[End, End, int, str], ...]


def plan_path(
    model: Model,
    src: End,
    dst: End,
    port: int,
    protocol: Protocol,
    service: Service | None,
    service_port: int | None,
) -> Path:
    topo = model.topology
    role = ProxyRole.NONE
    client = MeshMode.NONE
    if protocol is not Protocol.TCP:
        # Sidecars and ztunnel capture TCP only: UDP and SCTP go straight between the pods.
        detail = f"{protocol.value} is not captured by sidecars or ztunnel: no mesh on the path"
        return Path(
            MeshMode.NONE, role, MeshMode.NONE, False, detail, False, None, ((src, dst, port, ""),)
        )
    if src.workload is not None:
        role = proxy_role(src.workload, model.mesh)
        client = mesh_mode(src.workload, topo.namespace(src.workload.namespace), model.mesh)
    server = MeshMode.NONE
    if dst.workload is not None:
        server = mesh_mode(dst.workload, topo.namespace(dst.workload.namespace), model.mesh)
    mesh_client = client is not MeshMode.NONE or role is not ProxyRole.NONE
    mtls, detail, mismatch = False, "the client is outside the mesh: plaintext", False
    host_source = src.kind in (EndKind.KUBELET_PROBE, EndKind.NODE)
    if src.kind is EndKind.KUBELET_PROBE or (host_source and server is MeshMode.AMBIENT):
        detail = (
            "traffic from the node (kubelet probes; in ambient mode everything the host "
            "sends, SNATed to 169.254.7.127) is plaintext and exempt from mesh policy"
        )
    elif mesh_client and server is MeshMode.AMBIENT:
        mtls, detail = True, "mesh client to an ambient pod: HBONE (mTLS)"
    elif client is MeshMode.AMBIENT and server is MeshMode.SIDECAR:
        mtls, detail = True, "ambient client to a sidecar pod: HBONE (mTLS)"
    elif client is MeshMode.AMBIENT:
        detail = "ambient client to a pod outside the mesh: plaintext from the client's pod"
    elif mesh_client:
        assert src.workload is not None
        tls, dr = destination_rule_tls(model, src.workload.namespace, service, service_port)
        if tls is TlsMode.ISTIO_MUTUAL:
            mtls, detail = True, f"DestinationRule {dr.namespace}/{dr.name} sets ISTIO_MUTUAL"  # type: ignore[union-attr]
            mismatch = server is MeshMode.NONE
        elif tls is not None:
            detail = (
                f"DestinationRule {dr.namespace}/{dr.name} sets {tls.value}: no Istio "  # type: ignore[union-attr]
                "mTLS"
            )
        elif not model.mesh_config.enable_auto_mtls:
            detail = "auto mTLS is off and no DestinationRule sets TLS: plaintext"
        elif server is MeshMode.SIDECAR and dst.workload is not None:
            mode = effective_mtls(dst.workload, port, model).mode
            if mode is MtlsMode.DISABLE:
                detail = "auto mTLS: the server's mTLS mode is DISABLE, so plaintext"
            else:
                mtls, detail = True, "auto mTLS: sidecar client to a sidecar pod"
        else:
            detail = "auto mTLS: the server has no sidecar, so plaintext"
    waypoint: Workload | None = None
    if server is MeshMode.AMBIENT and mesh_client and dst.workload is not None:
        ref = waypoint_for(model, dst.workload, service, role)
        if ref is not None and not (
            src.workload is not None
            and src.workload.labels.get("gateway.networking.k8s.io/gateway-name") == ref.name
        ):
            waypoint = waypoint_workload(model, ref)
    legs: list[tuple[End, End, int, str]]
    hbone = mtls and (server is MeshMode.AMBIENT or client is MeshMode.AMBIENT)
    if waypoint is not None:
        wp_end = End(EndKind.WORKLOAD, workload=waypoint)
        legs = [
            (src, wp_end, HBONE_PORT, "client → waypoint"),
            (wp_end, dst, HBONE_PORT, "waypoint → server"),
        ]
    elif hbone and not (
        model.mesh_config.ambient_wire_port is AmbientWirePort.CALICO_PRESERVED
        and server is MeshMode.AMBIENT
    ):
        legs = [(src, dst, HBONE_PORT, "HBONE")]
    elif host_source and server is MeshMode.AMBIENT:
        # istio-cni SNATs every host-originated TCP connection to an enrolled pod to
        # 169.254.7.127, and that source bypasses ztunnel (cni/pkg/iptables).
        legs = [(End(src.kind, ip=AMBIENT_PROBE_SOURCE), dst, port, "")]
    else:
        legs = [(src, dst, port, "")]
    return Path(client, role, server, mtls, detail, mismatch, waypoint, tuple(legs))


def explain_connection(
    model: Model,
    src: End,
    dst: End,
    port: int,
    protocol: Protocol = Protocol.TCP,
    *,
    service: ServiceAddress | None = None,
    http: HttpRequest | None = None,
) -> Verdict:
    """The verdict of one connection (or one HTTP request on it), with every step that decided
    it. `port` is the destination container port; `service` says the client addressed a
    Service (its port) rather than the pod IP."""
    steps: list[Step] = []
    if src.workload is not None and src.workload == dst.workload and is_single_pod(src.workload):
        steps.append(
            Step(
                Layer.DATAPLANE,
                "self-traffic",
                Effect.ALLOW,
                "a pod connecting to itself never leaves its network namespace",
            )
        )
        return Verdict(True, None, tuple(steps))
    svc = find_service(model, service)
    path = plan_path(model, src, dst, port, protocol, svc, service.port if service else None)
    for a, b, wire_port, leg in path.legs:
        if wire_port != port:
            steps.append(
                Step(
                    Layer.DATAPLANE,
                    "hbone-tunnel",
                    Effect.INFO,
                    f"{leg}: mesh traffic is tunnelled to port {wire_port} (HBONE); "
                    "L3/L4 policy sees that port, not the application port",
                )
            )
        ok, leg_steps, layer = explain_l4(model, a, b, wire_port, protocol, leg)
        steps.extend(leg_steps)
        if not ok:
            return Verdict(False, layer, tuple(steps))
    ok, mesh_steps, layer = mesh_decision(model, src, dst, path, port, protocol, svc, http)
    steps.extend(mesh_steps)
    return Verdict(ok, layer, tuple(steps))


def mesh_decision(
    model: Model,
    src: End,
    dst: End,
    path: Path,
    port: int,
    protocol: Protocol,
    svc: Service | None,
    http: HttpRequest | None,
) -> tuple[bool, list[Step], Layer | None]:
    """Everything after L3/L4: mTLS admission, authorization at the waypoint / ztunnel /
    sidecar, and Calico application layer policy."""
    steps: list[Step] = []
    if (
        src.kind is EndKind.KUBELET_PROBE
        or dst.workload is None
        or (src.kind is EndKind.NODE and path.server is MeshMode.AMBIENT)
    ):
        return True, steps, None
    if protocol is not Protocol.TCP:
        steps.append(Step(Layer.DATAPLANE, "not-captured", Effect.INFO, path.tls_detail))
        return True, steps, None
    server = dst.workload
    steps.append(Step(Layer.DATAPLANE, "client-tls", Effect.INFO, path.tls_detail))
    # mTLS admission
    if path.tls_layer_fail:
        steps.append(
            Step(
                Layer.TLS_MISMATCH,
                "mtls-to-plaintext-server",
                Effect.DENY,
                "the client sends Istio mTLS but the server has no proxy to terminate it",
            )
        )
        return False, steps, Layer.TLS_MISMATCH
    if path.server in (MeshMode.SIDECAR, MeshMode.AMBIENT):
        eff = effective_mtls(server, port, model)
        by = eff.decided_by
        scope = f"{eff.scope.value} policy {by.namespace}/{by.name}" if by else "Istio default"
        if eff.mode is MtlsMode.STRICT and not path.mtls:
            steps.append(
                Step(
                    Layer.PEER_AUTHENTICATION,
                    "strict-rejects-plaintext",
                    Effect.DENY,
                    f"mTLS mode STRICT ({scope}) rejects the plaintext connection",
                    source=by.source if by else None,
                )
            )
            return False, steps, Layer.PEER_AUTHENTICATION
        if eff.mode is MtlsMode.DISABLE and path.mtls and path.server is MeshMode.SIDECAR:
            steps.append(
                Step(
                    Layer.TLS_MISMATCH,
                    "mtls-to-disabled-port",
                    Effect.DENY,
                    f"the client sends mTLS to a port whose mode is DISABLE ({scope})",
                    source=by.source if by else None,
                )
            )
            return False, steps, Layer.TLS_MISMATCH
        steps.append(
            Step(
                Layer.PEER_AUTHENTICATION,
                "mtls-admitted",
                Effect.CONTINUE,
                f"mTLS mode {eff.mode.value} ({scope}) admits this "
                f"{'mTLS' if path.mtls else 'plaintext'} connection",
                source=by.source if by else None,
            )
        )
    # authorization
    config = model.mesh_config
    client_principal: str | None = None
    if path.mtls and src.workload is not None:
        client_principal = principal(config, src.workload.namespace, src.workload.service_account)
    client_ip = src.workload.ip if src.workload is not None else src.ip
    policies = model.mesh.authorization_policies
    proto = port_protocol(model.topology.services_selecting(server), server, port, protocol)
    request_http = http if http is not None and (proto == "http" or proto == "sniff") else None
    # policies without targetRefs that select the server: its sidecar's or its ztunnel's
    server_policies = workload_policies(
        model.mesh.authorization_in(server.namespace, config.root_namespace), server, config
    )
    if path.server is MeshMode.AMBIENT:
        ztunnel_principal, ztunnel_ip = client_principal, client_ip
        if path.waypoint is not None:
            wp = path.waypoint
            wp_policies = waypoint_policies(
                policies,
                wp.name
                if not wp.labels.get("gateway.networking.k8s.io/gateway-name")
                else wp.labels["gateway.networking.k8s.io/gateway-name"],
                wp.namespace,
                svc.name if svc else None,
                svc.namespace if svc else None,
                config,
            )
            result = authorize(
                wp_policies,
                AuthzRequest(client_principal, client_ip, server.ip, port, request_http),
                Enforcer.WAYPOINT,
                config,
                f"waypoint {wp.id}",
            )
            steps.extend(result.steps)
            if not result.allowed:
                return False, steps, Layer.WAYPOINT
            ztunnel_principal = principal(config, wp.namespace, wp.service_account)
            ztunnel_ip = wp.ip
            steps.append(
                Step(
                    Layer.ZTUNNEL,
                    "waypoint-identity",
                    Effect.INFO,
                    f"the destination ztunnel sees the waypoint's identity "
                    f"{ztunnel_principal}, not the client's",
                )
            )
        result = authorize(
            server_policies,
            AuthzRequest(ztunnel_principal, ztunnel_ip, server.ip, port, None),
            Enforcer.ZTUNNEL,
            config,
            f"the ztunnel of {server.id}",
        )
        steps.extend(result.steps)
        if not result.allowed:
            return False, steps, Layer.ZTUNNEL
    elif path.server is MeshMode.SIDECAR:
        result = authorize(
            server_policies,
            AuthzRequest(client_principal, client_ip, server.ip, port, request_http),
            Enforcer.SIDECAR,
            config,
            f"the sidecar of {server.id}",
        )
        steps.extend(result.steps)
        if not result.allowed:
            return False, steps, Layer.AUTHZ_SIDECAR
        alp = _calico_alp(model, src, dst, port, protocol, http)
        if alp is not None:
            steps.extend(alp[1])
            if not alp[0]:
                return False, steps, Layer.CALICO_ALP
    return True, steps, None


def _calico_alp(
    model: Model, src: End, dst: End, port: int, protocol: Protocol, http: HttpRequest | None
) -> tuple[bool, list[Step]] | None:
    """Calico application layer policy (Dikastes) on a sidecar pod: the destination's ingress
    policy again, now with `http` clauses enforced (semantics.md §2.7)."""
    server = dst.workload
    if server is None or not model.mesh_config.calico_alp:
        return None
    templates = server.annotations.get("inject.istio.io/templates") or ""
    if "dikastes" not in templates:
        return None
    src_peer, dst_peer = _peer(model, src), _peer(model, dst)
    matcher = Matcher(ClassIndex([src_peer, dst_peer], model.topology, model.policies))
    key = PortKey(port, protocol, dst_peer.port_name(port, protocol))
    trace: list[Step] = []
    ok = decide(
        matcher,
        chains(matcher, Direction.INGRESS)[1],
        Direction.INGRESS,
        1,
        key,
        0b01,
        trace,
        http=http or HttpRequest(method="", path=""),
    )
    steps = [
        Step(
            Layer.CALICO_ALP,
            s.reason,
            s.effect,
            s.detail,
            s.source,
            s.direction,
            s.tier,
            s.rule_index,
            s.action,
        )
        for s in trace
    ]
    return bool(ok), steps
