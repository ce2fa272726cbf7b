"""Reachability of every pair at once: the same layers as `engine.connection`, evaluated once per
class of workloads.

L3/L4 runs as bitsets (`engine.l4.decide` over all peers at once) for every destination port
and, when any workload is in the mesh, for the HBONE port 15008. Each pair then takes the path
the mesh gives it (direct, HBONE, or two legs through a waypoint), and mesh pairs go through
`engine.connection.mesh_decision` — once per source identity, destination class, port and route,
and for HTTP ports once per representative request, so a connection is allowed for all
requests, for some (listed), or for none.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass, field

from kubezt.engine.authz import (
    authz_networks,
    mentions_http,
    waypoint_policies,
    workload_policies,
)
from kubezt.engine.connection import (
    End,
    EndKind,
    Leg,
    Path,
    is_single_pod,
    mesh_decision,
    plan_path,
)
from kubezt.engine.index import ClassIndex, EndpointClass, build_classes, iter_bits
from kubezt.engine.l4 import Matcher, TierChain, chains, decide
from kubezt.engine.mesh import (
    HBONE_PORT,
    WAYPOINT_GATEWAY_LABEL,
    WaypointRef,
    mesh_mode,
    port_protocol,
    proxy_role,
    waypoint_workload,
)
from kubezt.engine.requests import (
    ALL,
    NONE,
    NoRequests,
    RequestSet,
    RequestSpace,
    Some,
    requests_passing,
    space_of,
    union,
)
from kubezt.ir.mesh import TlsMode
from kubezt.ir.model import Model
from kubezt.ir.policy import Direction
from kubezt.ir.ports import PortKey, Protocol
from kubezt.ir.topology import MeshMode, ProxyRole, Service, Topology, Workload

SYNTHETIC_ANNOTATION = "kubezt.io/synthetic"


@dataclass(frozen=True, slots=True)
class Reachability:
    """The class-level matrix: for each destination port and destination class, the source
    classes allowed to connect (for at least one request). Expand with `connections()`."""

    model: Model
    classes: tuple[EndpointClass, ...]
    plan: dict[PortKey, int]
    """Destination classes evaluated at each port."""
    allowed: dict[PortKey, dict[int, int]] = field(repr=False)
    """port → destination class → bitset of allowed source classes."""
    partial: dict[tuple[PortKey, int, int], Some] = field(default_factory=dict, repr=False)
    """(port, destination class, source class) → the witness requests that pass, when not all
    of them do."""
    reported: int = -1
    """Bitset of classes of real workloads (synthetic waypoint pods are not reported)."""
    input_model: Model = field(kw_only=True, repr=False)
    """The model as given to `evaluate` (`model` adds the synthetic waypoint pods)."""

    @property
    def workload_ids(self) -> list[str]:
        return sorted(w.id for w in self.model.topology.workloads)

    def _synthetic(self, wi: int) -> bool:
        return SYNTHETIC_ANNOTATION in self.model.topology.workloads[wi].annotations

    def connections(self) -> Iterator[tuple[str, str, int, str]]:
        """Allowed (src id, dst id, port, protocol), sorted, at workload level."""
        for src, dst, port, protocol, _ in self.detailed():
            yield src, dst, port, protocol

    def detailed(self) -> Iterator[tuple[str, str, int, str, RequestSet]]:
        """Like `connections()`, with the requests that pass (`ALL` or `Some`)."""
        workloads = self.model.topology.workloads
        rows: list[tuple[str, str, int, str, RequestSet]] = []
        for port, per_dst in self.allowed.items():
            for d, srcs in per_dst.items():
                dst_ids = [
                    workloads[wj].id for wj in self.classes[d].members if not self._synthetic(wj)
                ]
                for s in iter_bits(srcs & self.reported):
                    requests: RequestSet = self.partial.get((port, d, s), ALL)
                    for wi in self.classes[s].members:
                        src_id = workloads[wi].id
                        for dst_id in dst_ids:
                            if src_id == dst_id and is_single_pod(workloads[wi]):
                                continue
                            rows.append((src_id, dst_id, port.port, port.protocol.value, requests))
            # a single pod reaching itself never leaves its network namespace
            for d in iter_bits(self.plan.get(port, 0) & self.reported):
                for wi in self.classes[d].members:
                    if is_single_pod(workloads[wi]) and not self._synthetic(wi):
                        rows.append(
                            (
                                workloads[wi].id,
                                workloads[wi].id,
                                port.port,
                                port.protocol.value,
                                ALL,
                            )
                        )
        rows.sort(key=lambda r: r[:4])
        return iter(rows)


def with_waypoint_pods(model: Model) -> Model:
    """The model plus a pod for every waypoint Gateway whose pod is not in the input (the pod
    Istio would create), so waypoint legs can be evaluated."""
    extra: list[Workload] = []
    for wp in model.mesh.waypoints:
        present = any(
            w.namespace == wp.namespace and w.labels.get(WAYPOINT_GATEWAY_LABEL) == wp.name
            for w in model.topology.workloads
        )
        if not present:
            pod = waypoint_workload(model, WaypointRef(wp.name, wp.namespace))
            extra.append(
                dataclasses.replace(
                    pod, annotations=pod.annotations.merged({SYNTHETIC_ANNOTATION: "waypoint"})
                )
            )
    if not extra:
        return model
    topology = Topology(
        model.topology.namespaces,
        model.topology.service_accounts,
        model.topology.workloads + tuple(extra),
        model.topology.services,
    )
    return dataclasses.replace(model, topology=topology)


def evaluate(
    model: Model, port: int | None = None, protocol: Protocol = Protocol.TCP
) -> Reachability:
    """The verdict of every ordered pair of workloads, on every port the destination declares
    (or on `port`/`protocol` only), through every layer, computed once per class."""
    work = with_waypoint_pods(model)
    classes = build_classes(work, authz_networks(model.mesh.authorization_policies))
    index = ClassIndex([c.peer for c in classes], work.topology, work.policies)
    matcher = Matcher(index)
    reported = 0
    plan: dict[PortKey, int] = {}
    for c in classes:
        rep = work.topology.workloads[c.members[0]]
        if SYNTHETIC_ANNOTATION not in rep.annotations:
            reported |= 1 << c.index
        keys = (
            [PortKey(port, protocol, c.peer.port_name(port, protocol))]
            if port is not None
            else [cp.key for cp in c.peer.ports]
        )
        for key in keys:
            plan[key] = plan.get(key, 0) | 1 << c.index
    plan = dict(sorted(plan.items()))
    mesh = _MeshView(work, classes)
    l4_plan = dict(plan)
    if mesh.active:
        for c in classes:
            key = PortKey(HBONE_PORT, Protocol.TCP, c.peer.port_name(HBONE_PORT, Protocol.TCP))
            l4_plan[key] = l4_plan.get(key, 0) | 1 << c.index
    l4 = l4_matrix(matcher, index, l4_plan)
    if not mesh.active:
        allowed = {
            key: {d: l4[key][d] for d in iter_bits(dsts) if l4[key].get(d)}
            for key, dsts in plan.items()
        }
        return Reachability(model, classes, plan, allowed, {}, reported, input_model=model)
    allowed, partial = mesh.compose(plan, l4, reported)
    return Reachability(work, classes, plan, allowed, partial, reported, input_model=model)


def l4_matrix(
    matcher: Matcher, index: ClassIndex, plan: dict[PortKey, int]
) -> dict[PortKey, dict[int, int]]:
    """For each port and destination class in `plan`, the source classes whose egress policy
    and the destination's ingress policy both allow the connection."""
    ingress = _grouped(matcher, Direction.INGRESS)
    egress = _grouped(matcher, Direction.EGRESS)
    allowed: dict[PortKey, dict[int, int]] = {}
    for key, dsts in plan.items():
        egress_ok: dict[int, int] = {}
        open_sources = 0
        for chain, rep, members in egress:
            if chain.empty:
                open_sources |= members
                continue
            reachable = decide(matcher, chain, Direction.EGRESS, rep, key, dsts)
            for d in iter_bits(reachable):
                egress_ok[d] = egress_ok.get(d, 0) | members
        per_dst: dict[int, int] = {}
        for chain, rep, members in ingress:
            targets = members & dsts
            if not targets:
                continue
            sources = (
                index.all
                if chain.empty
                else decide(matcher, chain, Direction.INGRESS, rep, key, index.all)
            )
            for d in iter_bits(targets):
                both = sources & (egress_ok.get(d, 0) | open_sources)
                if both:
                    per_dst[d] = both
        allowed[key] = per_dst
    return allowed


def _grouped(matcher: Matcher, direction: Direction) -> list[tuple[TierChain, int, int]]:
    """Classes that share a chain and see every rule's own side alike: (chain, representative,
    member bitset)."""
    per_class = chains(matcher, direction)
    groups: dict[tuple[object, ...], list[int]] = {}
    reps: dict[tuple[object, ...], TierChain] = {}
    ingress = direction is Direction.INGRESS
    for ci, chain in enumerate(per_class):
        signature: list[object] = [id(chain)]
        bit = 1 << ci
        for policy in chain.policies:
            for rule in policy.rules(direction):
                if rule.ip_version is not None:
                    # the connection's family follows the endpoint's own address (l4.family)
                    ip = matcher.ix.peers[ci].ip
                    signature.append(ip.version if ip is not None else None)
                own_side = rule.destination if ingress else rule.source
                if own_side.is_empty:
                    continue
                yes, maybe = matcher.base(own_side, policy.namespace)
                signature.append((bool(yes & bit), bool(maybe & bit)))
        key = tuple(signature)
        groups.setdefault(key, []).append(ci)
        reps[key] = chain
    out: list[tuple[TierChain, int, int]] = []
    for key, members in groups.items():
        bits = 0
        for ci in members:
            bits |= 1 << ci
        out.append((reps[key], members[0], bits))
    return out


class _MeshView:
    """Mesh facts per class and the composition of L3/L4 legs with mesh decisions."""

    def __init__(self, model: Model, classes: tuple[EndpointClass, ...]) -> None:
        self.model = model
        self.classes = classes
        topology = model.topology
        self.reps = [topology.workloads[c.members[0]] for c in classes]
        self.modes: list[MeshMode] = []
        self.roles: list[ProxyRole] = []
        for rep in self.reps:
            ns = topology.namespace(rep.namespace)
            self.modes.append(mesh_mode(rep, ns, model.mesh))
            self.roles.append(proxy_role(rep, model.mesh))
        istio_mutual = any(
            dr.tls_mode is TlsMode.ISTIO_MUTUAL
            or any(m is TlsMode.ISTIO_MUTUAL for _, m in dr.port_tls)
            for dr in model.mesh.destination_rules
        )
        self.active = (
            istio_mutual
            or any(m is not MeshMode.NONE for m in self.modes)
            or any(r is not ProxyRole.NONE for r in self.roles)
        )
        self.istio_mutual = istio_mutual
        authz_nets = authz_networks(model.mesh.authorization_policies)
        # sources that present the same identity and address and take the same paths
        groups: dict[tuple[object, ...], int] = {}
        self.group_of: list[tuple[object, ...]] = []
        for i, rep in enumerate(self.reps):
            peer_ip = classes[i].peer.ip
            ip_signature = None if peer_ip is None else tuple(peer_ip in net for net in authz_nets)
            key = (
                self.modes[i],
                self.roles[i],
                rep.namespace,
                rep.service_account,
                rep.host_network,
                ip_signature,
                rep.labels.get(WAYPOINT_GATEWAY_LABEL),
                _outbound_capture(rep),
            )
            groups[key] = groups.get(key, 0) | 1 << i
            self.group_of.append(key)
        self.group_bits = groups
        self.group_rep = {key: next(iter_bits(bits)) for key, bits in groups.items()}
        self.by_name = {
            (w.namespace, w.labels.get(WAYPOINT_GATEWAY_LABEL)): i
            for i, w in enumerate(self.reps)
            if self.roles[i] is ProxyRole.WAYPOINT
        }
        self.services = [topology.services_selecting(rep) for rep in self.reps]
        self.alp_matches = tuple(
            r.http
            for p in model.policies.policies
            for r in p.ingress
            if r.http is not None and model.mesh_config.calico_alp
        )
        self.alp = bool(self.alp_matches)
        self._decisions: dict[tuple[object, ...], RequestSet] = {}
        self._paths: dict[tuple[object, ...], Path] = {}
        self._waypoint_sources = 0

    def routes(self, d: int, key: PortKey) -> list[Service | None]:
        """How a client may address the destination: its pod IP, or a Service selecting it
        with a port that targets this port."""
        server = self.reps[d]
        out: list[Service | None] = [None]
        for svc in self.services[d]:
            for sp in svc.ports:
                target = sp.target_on(server)
                if target == key.port and sp.protocol is key.protocol:
                    out.append(svc)
                    break
        return out

    def compose(
        self, plan: dict[PortKey, int], l4: dict[PortKey, dict[int, int]], reported: int
    ) -> tuple[dict[PortKey, dict[int, int]], dict[tuple[PortKey, int, int], Some]]:
        self._waypoint_sources = 0
        for w in self.by_name.values():
            wkey = PortKey(
                HBONE_PORT, Protocol.TCP, self.classes[w].peer.port_name(HBONE_PORT, Protocol.TCP)
            )
            self._waypoint_sources |= l4.get(wkey, {}).get(w, 0)
        allowed: dict[PortKey, dict[int, int]] = {}
        partial: dict[tuple[PortKey, int, int], Some] = {}
        for key, dsts in plan.items():
            per_dst: dict[int, int] = {}
            for d in iter_bits(dsts):
                answers: dict[int, RequestSet] = {}
                for svc in self.routes(d, key):
                    for s, answer in self._route(d, key, svc, l4).items():
                        answers[s] = union(answers.get(s, NONE), answer)
                bits = 0
                for s, answer in answers.items():
                    if isinstance(answer, NoRequests):
                        continue
                    bits |= 1 << s
                    if isinstance(answer, Some):
                        partial[(key, d, s)] = answer
                if bits:
                    per_dst[d] = bits
            allowed[key] = per_dst
        return allowed, partial

    def _route(
        self, d: int, key: PortKey, svc: Service | None, l4: dict[PortKey, dict[int, int]]
    ) -> dict[int, RequestSet]:
        """Source class → the requests that pass on this route (classes absent: none)."""
        direct = l4.get(key, {}).get(d, 0)
        hbone_key = PortKey(
            HBONE_PORT, Protocol.TCP, self.classes[d].peer.port_name(HBONE_PORT, Protocol.TCP)
        )
        hbone = l4.get(hbone_key, {}).get(d, 0)
        if key.protocol is not Protocol.TCP or (
            self.modes[d] is MeshMode.NONE and not self.istio_mutual
        ):
            return dict.fromkeys(iter_bits(direct), ALL)  # UDP/SCTP are never captured
        candidates = direct | hbone | self._waypoint_sources
        seen: set[tuple[object, ...]] = set()
        out: dict[int, RequestSet] = {}
        for c in iter_bits(candidates):
            gkey = self.group_of[c]
            if gkey in seen:
                continue
            seen.add(gkey)
            gbits = self.group_bits[gkey] & candidates
            g = self.group_rep[gkey]
            path = self._path(gkey, g, d, key, svc)
            ok_bits = gbits
            for leg in path.legs:
                ok_bits &= self._leg_bits(leg, key, d, path, gbits, l4)
                if not ok_bits:
                    break
            if not ok_bits:
                continue
            decision = self._mesh(gkey, g, d, key, svc, path)
            if isinstance(decision, NoRequests):
                continue
            for s in iter_bits(ok_bits):
                out[s] = decision
        return out

    def _path(
        self, gkey: tuple[object, ...], g: int, d: int, key: PortKey, svc: Service | None
    ) -> Path:
        # The path depends on the client's mode, role and namespace (DestinationRule lookup),
        # not on its service account or address.
        cache_key = (gkey[0], gkey[1], gkey[2], gkey[6], gkey[7], d, key.port, key.protocol, svc)
        path = self._paths.get(cache_key)
        if path is None:
            server = self.reps[d]
            path = plan_path(
                self.model,
                End(EndKind.WORKLOAD, workload=self.reps[g]),
                End(EndKind.WORKLOAD, workload=server),
                key.port,
                key.protocol,
                svc,
                _service_port(svc, server, key),
            )
            self._paths[cache_key] = path
        return path

    def _leg_bits(
        self,
        leg: Leg,
        key: PortKey,
        d: int,
        path: Path,
        gbits: int,
        l4: dict[PortKey, dict[int, int]],
    ) -> int:
        """Sources of the group for which this wire leg is allowed at L3/L4."""
        waypoint = path.waypoint
        wire = leg.wire_port
        target = d
        if waypoint is not None and leg.destination.workload is waypoint:
            target = self._waypoint_class(waypoint)
            if target < 0:
                return 0
        wire_key = (
            key
            if wire == key.port
            else PortKey(
                wire, Protocol.TCP, self.classes[target].peer.port_name(wire, Protocol.TCP)
            )
        )
        allowed = l4.get(wire_key, {}).get(target, 0)
        if waypoint is not None and leg.source.workload is waypoint:
            source = self._waypoint_class(waypoint)
            return gbits if source >= 0 and allowed >> source & 1 else 0
        return allowed & gbits

    def _waypoint_class(self, workload: Workload) -> int:
        return self.by_name.get(
            (workload.namespace, workload.labels.get(WAYPOINT_GATEWAY_LABEL)), -1
        )

    def _mesh(
        self,
        gkey: tuple[object, ...],
        g: int,
        d: int,
        key: PortKey,
        svc: Service | None,
        path: Path,
    ) -> RequestSet:
        """Mesh decision for a source group: on every witness request of the destination's
        request space when the verdict can depend on the request."""
        cache_key = (gkey, d, key, svc.namespace if svc else None, svc.name if svc else None)
        cached = self._decisions.get(cache_key)
        if cached is not None:
            return cached
        server = self.reps[d]
        src_end = End(EndKind.WORKLOAD, workload=self.reps[g])
        dst_end = End(EndKind.WORKLOAD, workload=server)
        space = self._space(d, key, svc, path)
        result: RequestSet
        if space is None:
            verdict = mesh_decision(
                self.model, src_end, dst_end, path, key.port, key.protocol, svc, None
            )
            result = ALL if verdict.allowed else NONE
        else:
            result = requests_passing(
                space,
                lambda r: (
                    mesh_decision(
                        self.model, src_end, dst_end, path, key.port, key.protocol, svc, r
                    ).allowed
                ),
            )
        self._decisions[cache_key] = result
        return result

    def _space(self, d: int, key: PortKey, svc: Service | None, path: Path) -> RequestSpace | None:
        """The request space of the policies that apply at the destination (sidecar, waypoint,
        Calico application layer) when the port carries HTTP; None when the verdict cannot
        depend on the request."""
        if key.protocol is not Protocol.TCP:
            return None
        server = self.reps[d]
        proto = port_protocol(self.services[d], server, key.port, key.protocol)
        if proto == "tcp":
            return None
        config = self.model.mesh_config
        candidates = self.model.mesh.authorization_in(server.namespace, config.root_namespace)
        policies = workload_policies(candidates, server, config)
        if path.waypoint is not None:
            wp = path.waypoint
            policies = policies + waypoint_policies(
                self.model.mesh.authorization_policies,
                wp.labels.get(WAYPOINT_GATEWAY_LABEL) or wp.name,
                wp.namespace,
                svc.name if svc else None,
                svc.namespace if svc else None,
                config,
            )
        if not mentions_http(policies) and not self.alp:
            return None
        return space_of(policies, self.alp_matches)


def _outbound_capture(workload: Workload) -> tuple[tuple[str, str], ...]:
    """The client's outbound-capture annotations (they change the path it takes)."""
    return tuple(
        sorted(
            (k, v)
            for k, v in workload.annotations.items()
            if k.startswith("traffic.sidecar.istio.io/") and "Outbound" in k
        )
    )


def _service_port(svc: Service | None, server: Workload, key: PortKey) -> int | None:
    if svc is None:
        return None
    for sp in svc.ports:
        target = sp.target_on(server)
        if target == key.port:
            return sp.port
    return None
