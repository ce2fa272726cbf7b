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
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum

from kubezt.engine import capture
from kubezt.engine.authz import (
    AuthzRequest,
    Enforcer,
    authorize,
    waypoint_policies,
    workload_policies,
)
from kubezt.engine.explain import (
    Effect,
    Layer,
    LayerVerdict,
    Message,
    Step,
    StepParam,
    Verdict,
)
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
class MeshFacts:
    """A workload's place in the mesh, resolved once from its labels and annotations, its
    namespace's labels and the mesh resources."""

    mode: MeshMode
    role: ProxyRole
    principal: str
    """The SPIFFE identity of its ServiceAccount (without `spiffe://`)."""


def mesh_facts(model: Model, workload: Workload) -> MeshFacts:
    namespace = model.topology.namespace(workload.namespace)
    return MeshFacts(
        mesh_mode(workload, namespace, model.mesh),
        proxy_role(workload, model.mesh),
        principal(model.mesh_config, workload.namespace, workload.service_account),
    )


@dataclass(frozen=True, slots=True)
class End:
    """One end of a connection to explain: a workload, an external address, or the
    destination's own node (`node`, `kubelet-probe`)."""

    kind: EndKind
    workload: Workload | None = None
    ip: str | None = None
    facts: MeshFacts | None = field(default=None, compare=False, repr=False)
    """The workload's mesh facts when the caller resolved them already (else resolved here)."""

    @property
    def label(self) -> str:
        if self.workload is not None:
            return self.workload.id
        if self.kind is EndKind.EXTERNAL:
            return f"external:{self.ip}"
        return self.kind.value


def _facts(model: Model, workload: Workload, end: End) -> MeshFacts:
    return end.facts if end.facts is not None else mesh_facts(model, workload)


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


class Side(IntEnum):
    """Which end of a connection an evaluation of one connection is about: the index of its
    peer in the two-peer class index (`_pair_matcher`)."""

    SOURCE = 0
    DESTINATION = 1

    @property
    def bit(self) -> int:
        return 1 << self

    @property
    def other(self) -> Side:
        return Side.DESTINATION if self is Side.SOURCE else Side.SOURCE

    @property
    def direction(self) -> Direction:
        """The direction of the policy this end enforces on the connection."""
        return Direction.EGRESS if self is Side.SOURCE else Direction.INGRESS


def _pair_matcher(model: Model, src: End, dst: End) -> tuple[Matcher, Peer, Peer]:
    src_peer, dst_peer = _peer(model, src), _peer(model, dst)
    return (
        Matcher(ClassIndex([src_peer, dst_peer], model.topology, model.policies)),
        src_peer,
        dst_peer,
    )


def _decide_side(
    matcher: Matcher, side: Side, key: PortKey, trace: list[Step], http: HttpRequest | None = None
) -> bool:
    """Whether the policy of one end (egress of the source, ingress of the destination) lets
    the connection through, recording every step in `trace`."""
    direction = side.direction
    chain = chains(matcher, direction)[side]
    return bool(decide(matcher, chain, direction, side, key, side.other.bit, trace, http=http))


def explain_l4(
    model: Model, src: End, dst: End, wire_port: int, protocol: Protocol, leg: str = ""
) -> LayerVerdict:
    """The L3/L4 verdict of one wire leg: source egress, then destination ingress; staged
    Calico policies that would change it are listed as information."""
    steps: list[Step] = []
    matcher, src_peer, dst_peer = _pair_matcher(model, src, dst)
    key = PortKey(wire_port, protocol, dst_peer.port_name(wire_port, protocol))
    host_to_local = (
        src.kind in (EndKind.NODE, EndKind.KUBELET_PROBE) and dst_peer.kind is PeerKind.ENDPOINT
    )
    directions = (Direction.EGRESS,) if host_to_local else (Direction.EGRESS, Direction.INGRESS)

    def finish(ok: bool, layer: Layer | None) -> LayerVerdict:
        done = steps + list(
            staged_policy_steps(matcher.ix, Side.SOURCE, Side.DESTINATION, key, directions)
        )
        if leg:
            done = [dataclasses.replace(s, leg=leg) for s in done]
        return LayerVerdict(ok, tuple(done), layer)

    egress = _one_end(matcher, Side.SOURCE, src_peer, src, key)
    steps.extend(egress.steps)
    if not egress.allowed:
        return finish(False, egress.denied_by)
    if host_to_local:
        steps.append(
            Step(
                layer=Layer.DATAPLANE,
                reason="host-to-local-workload",
                effect=Effect.ALLOW,
                direction=Direction.INGRESS,
            )
        )
        return finish(True, None)
    ingress = _one_end(matcher, Side.DESTINATION, dst_peer, dst, key)
    steps.extend(ingress.steps)
    return finish(ingress.allowed, ingress.denied_by)


def _one_end(matcher: Matcher, side: Side, peer: Peer, end: End, key: PortKey) -> LayerVerdict:
    """The policy of one end of a wire leg (egress of the source, ingress of the destination);
    an end outside the pod network has none."""
    if peer.kind is not PeerKind.ENDPOINT:
        direction = side.direction
        step = Step(
            layer=Layer.DATAPLANE,
            reason=f"{side.name.lower()}-not-policed",
            effect=Effect.CONTINUE,
            params=(("end", end.label),),
            direction=direction,
        )
        return LayerVerdict(True, (step,))
    trace: list[Step] = []
    ok = _decide_side(matcher, side, key, trace)
    return LayerVerdict(ok, tuple(trace), None if ok else denying_layer(trace))


@dataclass(frozen=True, slots=True, kw_only=True)
class Leg:
    """One wire leg of a path: the connection L3/L4 policy sees between two ends."""

    source: End
    destination: End
    wire_port: int
    """The destination port on the wire (15008 when the leg is tunnelled over HBONE)."""
    label: str = ""
    """Which leg it is ("HBONE", "client → waypoint", …); empty for the direct connection."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Path:
    """How the request travels: client mode, server mode, TLS, waypoint and wire legs."""

    client: MeshMode
    client_role: ProxyRole
    server: MeshMode
    mtls: bool
    tls: Message
    """Why the client sends mTLS or plaintext (`auto-mtls-sidecars`, …)."""
    not_captured: tuple[Message, ...]
    """The capture annotations that keep a proxy from seeing the connection."""
    tls_layer_fail: bool
    """The client sends Istio mTLS to a server that cannot terminate it."""
    waypoint: Workload | None
    legs: tuple[Leg, ...]
    assumed_capture: bool | None = None
    """Whether the client's sidecar captures the connection depends on a destination address
    the input does not give (`capture.outbound`): the assumption this path makes (True:
    captured), or None when nothing was assumed."""
    unknown_capture: Message | None = None
    """Why capture is unknown (`outbound-address-unknown`), when it is."""


def plan_paths(
    model: Model,
    src: End,
    dst: End,
    port: int,
    protocol: Protocol,
    service: Service | None,
    service_port: int | None,
) -> tuple[Path, ...]:
    """The path of the connection; two (captured, then not) when whether the client's sidecar
    captures it depends on an address the input does not give (a Service without
    `spec.clusterIP`, a pod without `status.podIP`): a connection is allowed when it is along
    either, so that no exposure is hidden."""
    first = plan_path(model, src, dst, port, protocol, service, service_port)
    if first.assumed_capture is None:
        return (first,)
    return (
        first,
        plan_path(model, src, dst, port, protocol, service, service_port, outbound_captured=False),
    )


def plan_path(
    model: Model,
    src: End,
    dst: End,
    port: int,
    protocol: Protocol,
    service: Service | None,
    service_port: int | None,
    *,
    outbound_captured: bool = True,
) -> Path:
    """How the connection travels. `outbound_captured`: what to assume when whether the
    client's sidecar captures it depends on an address the input does not give (see
    `plan_paths`, which asks both)."""
    role = ProxyRole.NONE
    client = MeshMode.NONE
    if protocol is not Protocol.TCP:
        # Sidecars and ztunnel capture TCP only: UDP and SCTP go straight between the pods.
        return Path(
            client=MeshMode.NONE,
            client_role=role,
            server=MeshMode.NONE,
            mtls=False,
            tls=Message("protocol-not-captured", (("protocol", protocol.value),)),
            not_captured=(),
            tls_layer_fail=False,
            waypoint=None,
            legs=(Leg(source=src, destination=dst, wire_port=port),),
        )
    if src.workload is not None:
        src_facts = _facts(model, src.workload, src)
        role, client = src_facts.role, src_facts.mode
    server = MeshMode.NONE
    if dst.workload is not None:
        server = _facts(model, dst.workload, dst).mode
    notes: list[Message] = []
    assumed: bool | None = None
    unknown: Message | None = None
    if server is MeshMode.SIDECAR and dst.workload is not None:
        seen = capture.inbound(dst.workload, port)
        if seen.why is not None:
            server = MeshMode.NONE
            notes.append(seen.why)
    if client is MeshMode.SIDECAR and src.workload is not None:
        # The sidecar's iptables see the address the application connects to: a Service's
        # ClusterIP (unknown when the input does not give it), the pods' own addresses for a
        # headless Service (engine/capture.py).
        wire_ip = dst.ip or (dst.workload.ip if dst.workload is not None else None)
        if service is not None and not service.headless:
            wire_ip = service.cluster_ip
        seen = capture.outbound(src.workload, service_port or port, wire_ip)
        if seen.captured is None and seen.why is not None:
            of = (
                ("service", service.id)
                if service is not None and not service.headless
                else ("pod", dst.workload.id if dst.workload is not None else dst.label)
            )
            assumed = outbound_captured
            unknown = Message(seen.why.code, (*seen.why.params, of))
            if not outbound_captured:
                client = MeshMode.NONE
                notes.append(unknown)
        elif seen.why is not None:
            client = MeshMode.NONE
            notes.append(seen.why)
    mesh_client = client is not MeshMode.NONE or role is not ProxyRole.NONE
    if server is MeshMode.AMBIENT and not mesh_client and dst.workload is not None:
        seen = capture.ztunnel_inbound(dst.workload)
        if seen.why is not None:
            server = MeshMode.NONE
            notes.append(seen.why)
    mtls, why, mismatch = False, Message("client-outside-mesh"), False
    host_source = src.kind in (EndKind.KUBELET_PROBE, EndKind.NODE)
    if src.kind is EndKind.KUBELET_PROBE or (host_source and server is MeshMode.AMBIENT):
        why = Message("host-traffic-exempt", (("address", AMBIENT_PROBE_SOURCE),))
    elif mesh_client and server is MeshMode.AMBIENT:
        mtls, why = True, Message("hbone-to-ambient")
    elif client is MeshMode.AMBIENT and server is MeshMode.SIDECAR:
        mtls, why = True, Message("hbone-ambient-to-sidecar")
    elif client is MeshMode.AMBIENT:
        why = Message("ambient-to-outside-mesh")
    elif mesh_client:
        assert src.workload is not None
        tls, dr = destination_rule_tls(model, src.workload.namespace, service, service_port)
        if tls is not None and dr is not None:
            rule = f"{dr.namespace}/{dr.name}"
            why = Message("destination-rule-tls", (("rule", rule), ("mode", tls.value)))
            mtls = tls is TlsMode.ISTIO_MUTUAL
            mismatch = mtls and server is MeshMode.NONE
        elif not model.mesh_config.enable_auto_mtls:
            why = Message("auto-mtls-off")
        elif server is MeshMode.SIDECAR and dst.workload is not None:
            mode = effective_mtls(dst.workload, port, model).mode
            if mode is MtlsMode.DISABLE:
                why = Message("auto-mtls-server-disabled")
            else:
                mtls, why = True, Message("auto-mtls-sidecars")
        else:
            why = Message("auto-mtls-no-sidecar")
    waypoint: Workload | None = None
    if server is MeshMode.AMBIENT and mesh_client and dst.workload is not None:
        ref = waypoint_for(model, dst.workload, service, role)
        if ref is not None and not (
            src.workload is not None
            and src.workload.labels.get("gateway.networking.k8s.io/gateway-name") == ref.name
        ):
            waypoint = waypoint_workload(model, ref)
    legs: list[Leg]
    hbone = mtls and (server is MeshMode.AMBIENT or client is MeshMode.AMBIENT)
    if waypoint is not None:
        wp_end = End(EndKind.WORKLOAD, workload=waypoint)
        legs = [
            Leg(source=src, destination=wp_end, wire_port=HBONE_PORT, label="client → waypoint"),
            Leg(source=wp_end, destination=dst, wire_port=HBONE_PORT, label="waypoint → server"),
        ]
    elif hbone and not (
        model.mesh_config.ambient_wire_port is AmbientWirePort.CALICO_PRESERVED
        and server is MeshMode.AMBIENT
    ):
        legs = [Leg(source=src, destination=dst, wire_port=HBONE_PORT, label="HBONE")]
    elif host_source and server is MeshMode.AMBIENT:
        # istio-cni SNATs every host-originated TCP connection to an enrolled pod to
        # 169.254.7.127, and that source bypasses ztunnel (cni/pkg/iptables).
        probe = End(src.kind, ip=AMBIENT_PROBE_SOURCE)
        legs = [Leg(source=probe, destination=dst, wire_port=port)]
    else:
        legs = [Leg(source=src, destination=dst, wire_port=port)]
    return Path(
        client=client,
        client_role=role,
        server=server,
        mtls=mtls,
        tls=why,
        not_captured=tuple(notes),
        tls_layer_fail=mismatch,
        waypoint=waypoint,
        legs=tuple(legs),
        assumed_capture=assumed,
        unknown_capture=unknown,
    )


def explain_connection(
    model: Model,
    src: End,
    dst: End,
    port: int,
    protocol: Protocol = Protocol.TCP,
    *,
    service: ServiceAddress | None = None,
    http: HttpRequest | None = None,
    legs_memo: dict[tuple[object, ...], LayerVerdict] | None = None,
) -> Verdict:
    """The verdict of one connection (or one HTTP request on it), with every step that decided
    it. `port` is the destination container port; `service` says the client addressed a
    Service (its port) rather than the pod IP. `legs_memo`, when given, keeps the L3/L4
    verdict of each wire leg across calls on one model (many requests on one connection)."""
    steps: list[Step] = []
    if src.workload is not None and src.workload == dst.workload and is_single_pod(src.workload):
        steps.append(
            Step(
                layer=Layer.DATAPLANE,
                reason="self-traffic",
                effect=Effect.ALLOW,
            )
        )
        return Verdict(True, None, tuple(steps))
    svc = find_service(model, service)
    service_port = service.port if service else None
    paths = plan_paths(model, src, dst, port, protocol, svc, service_port)
    verdicts = [_along(model, src, dst, p, port, protocol, svc, http, legs_memo) for p in paths]
    if len(verdicts) == 1:
        return verdicts[0]
    # capture unknown: allowed when allowed either way; the steps of the way that decides
    captured, missed = verdicts
    shown = captured if captured.allowed or not missed.allowed else missed
    why = paths[0].unknown_capture
    steps.append(
        Step(
            layer=Layer.DATAPLANE,
            reason="capture-unknown",
            effect=Effect.INFO,
            params=(
                ("why", why),
                ("captured", captured.allowed),
                ("not_captured", missed.allowed),
                ("shown", "captured" if shown is captured else "not-captured"),
            ),
        )
    )
    return Verdict(shown.allowed, shown.denied_by, (*steps, *shown.steps))


def _along(
    model: Model,
    src: End,
    dst: End,
    path: Path,
    port: int,
    protocol: Protocol,
    svc: Service | None,
    http: HttpRequest | None,
    legs_memo: dict[tuple[object, ...], LayerVerdict] | None,
) -> Verdict:
    """The verdict of the connection along one path: each wire leg's L3/L4, then the mesh."""
    steps: list[Step] = []
    for leg in path.legs:
        if leg.wire_port != port:
            steps.append(
                Step(
                    layer=Layer.DATAPLANE,
                    reason="hbone-tunnel",
                    effect=Effect.INFO,
                    params=(("leg", leg.label), ("port", leg.wire_port)),
                )
            )
        memo_key = (leg.source, leg.destination, leg.wire_port, protocol, leg.label)
        l4 = legs_memo.get(memo_key) if legs_memo is not None else None
        if l4 is None:
            l4 = explain_l4(model, leg.source, leg.destination, leg.wire_port, protocol, leg.label)
            if legs_memo is not None:
                legs_memo[memo_key] = l4
        steps.extend(l4.steps)
        if not l4.allowed:
            return Verdict(False, l4.denied_by, tuple(steps))
    mesh = mesh_decision(model, src, dst, path, port, protocol, svc, http)
    steps.extend(mesh.steps)
    return Verdict(mesh.allowed, mesh.denied_by, tuple(steps))


def mesh_decision(
    model: Model,
    src: End,
    dst: End,
    path: Path,
    port: int,
    protocol: Protocol,
    svc: Service | None,
    http: HttpRequest | None,
) -> LayerVerdict:
    """Everything after L3/L4: mTLS admission, authorization at the waypoint / ztunnel /
    sidecar, and Calico application layer policy."""
    steps: list[Step] = []
    if (
        src.kind is EndKind.KUBELET_PROBE
        or dst.workload is None
        or (src.kind is EndKind.NODE and path.server is MeshMode.AMBIENT)
    ):
        return LayerVerdict(True, tuple(steps))
    tls = (("tls", path.tls), ("not_captured", path.not_captured))
    if protocol is not Protocol.TCP:
        steps.append(
            Step(layer=Layer.DATAPLANE, reason="not-captured", effect=Effect.INFO, params=tls)
        )
        return LayerVerdict(True, tuple(steps))
    server = dst.workload
    steps.append(Step(layer=Layer.DATAPLANE, reason="client-tls", effect=Effect.INFO, params=tls))
    # mTLS admission
    if path.tls_layer_fail:
        steps.append(
            Step(
                layer=Layer.TLS_MISMATCH,
                reason="mtls-to-plaintext-server",
                effect=Effect.DENY,
            )
        )
        return LayerVerdict(False, tuple(steps), Layer.TLS_MISMATCH)
    if path.server in (MeshMode.SIDECAR, MeshMode.AMBIENT):
        eff = effective_mtls(server, port, model)
        by = eff.decided_by
        scope: tuple[tuple[str, StepParam], ...] = (
            ("mode", eff.mode.value),
            ("scope", eff.scope.value if by else ""),
            ("policy", f"{by.namespace}/{by.name}" if by else ""),
            ("mtls", path.mtls),
        )
        if eff.mode is MtlsMode.STRICT and not path.mtls:
            steps.append(
                Step(
                    layer=Layer.PEER_AUTHENTICATION,
                    reason="strict-rejects-plaintext",
                    effect=Effect.DENY,
                    params=scope,
                    source=by.source if by else None,
                )
            )
            return LayerVerdict(False, tuple(steps), Layer.PEER_AUTHENTICATION)
        if eff.mode is MtlsMode.DISABLE and path.mtls and path.server is MeshMode.SIDECAR:
            steps.append(
                Step(
                    layer=Layer.TLS_MISMATCH,
                    reason="mtls-to-disabled-port",
                    effect=Effect.DENY,
                    params=scope,
                    source=by.source if by else None,
                )
            )
            return LayerVerdict(False, tuple(steps), Layer.TLS_MISMATCH)
        steps.append(
            Step(
                layer=Layer.PEER_AUTHENTICATION,
                reason="mtls-admitted",
                effect=Effect.CONTINUE,
                params=scope,
                source=by.source if by else None,
            )
        )
    # authorization
    config = model.mesh_config
    client_principal: str | None = None
    if path.mtls and src.workload is not None:
        client_principal = _facts(model, src.workload, src).principal
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
                wp.id,
            )
            steps.extend(result.steps)
            if not result.allowed:
                return LayerVerdict(False, tuple(steps), Layer.WAYPOINT)
            ztunnel_principal = principal(config, wp.namespace, wp.service_account)
            ztunnel_ip = wp.ip
            steps.append(
                Step(
                    layer=Layer.ZTUNNEL,
                    reason="waypoint-identity",
                    effect=Effect.INFO,
                    params=(("principal", ztunnel_principal),),
                )
            )
        result = authorize(
            server_policies,
            AuthzRequest(ztunnel_principal, ztunnel_ip, server.ip, port, None),
            Enforcer.ZTUNNEL,
            config,
            server.id,
        )
        steps.extend(result.steps)
        if not result.allowed:
            return LayerVerdict(False, tuple(steps), Layer.ZTUNNEL)
    elif path.server is MeshMode.SIDECAR:
        result = authorize(
            server_policies,
            AuthzRequest(client_principal, client_ip, server.ip, port, request_http),
            Enforcer.SIDECAR,
            config,
            server.id,
        )
        steps.extend(result.steps)
        if not result.allowed:
            return LayerVerdict(False, tuple(steps), Layer.AUTHZ_SIDECAR)
        alp = _calico_alp(model, src, dst, port, protocol, http)
        if alp is not None:
            steps.extend(alp.steps)
            if not alp.allowed:
                return LayerVerdict(False, tuple(steps), Layer.CALICO_ALP)
    return LayerVerdict(True, tuple(steps))


def _calico_alp(
    model: Model, src: End, dst: End, port: int, protocol: Protocol, http: HttpRequest | None
) -> LayerVerdict | None:
    """Calico application layer policy (Dikastes) on a sidecar pod: the destination's ingress
    policy again, now with `http` clauses enforced (semantics.md §2.7)."""
    server = dst.workload
    if server is None or not model.mesh_config.calico_alp:
        return None
    templates = server.annotations.get("inject.istio.io/templates") or ""
    if "dikastes" not in templates:
        return None
    matcher, _, dst_peer = _pair_matcher(model, src, dst)
    key = PortKey(port, protocol, dst_peer.port_name(port, protocol))
    trace: list[Step] = []
    http = http or HttpRequest(method="", path="")
    ok = _decide_side(matcher, Side.DESTINATION, key, trace, http)
    steps = tuple(dataclasses.replace(s, layer=Layer.CALICO_ALP) for s in trace)
    return LayerVerdict(ok, steps, None if ok else Layer.CALICO_ALP)
