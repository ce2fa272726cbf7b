"""The mesh part of the all-pairs evaluation: mesh facts resolved once per class of workloads,
source classes grouped by what the mesh can tell apart, and the composition of each pair's
L3/L4 legs with `engine.connection.mesh_decision` (once per source group, destination class,
port and route, and on HTTP ports once per witness request of the destination's request
space).
"""

from __future__ import annotations

from typing import NamedTuple

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
    mesh_decision,
    mesh_facts,
    plan_path,
)
from kubezt.engine.index import EndpointClass, iter_bits
from kubezt.engine.mesh import (
    HBONE_PORT,
    WAYPOINT_GATEWAY_LABEL,
    port_protocol,
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
from kubezt.ir.ports import PortKey, Protocol
from kubezt.ir.topology import MeshMode, ProxyRole, Service, Workload


class GroupKey(NamedTuple):
    """What makes source classes interchangeable for the mesh: the same identity and address
    signature, and the same paths."""

    mode: MeshMode
    role: ProxyRole
    namespace: str
    service_account: str
    host_network: bool
    authz_ips: tuple[bool, ...] | None
    """Which CIDRs of AuthorizationPolicies contain the address (None: no address)."""
    waypoint: str | None
    """The waypoint Gateway the class's pods serve, if they are a waypoint."""
    outbound_capture: tuple[tuple[str, str], ...]
    """The client's outbound-capture annotations (they change the path it takes)."""


class MeshView:
    """Mesh facts per class and the composition of L3/L4 legs with mesh decisions."""

    def __init__(self, model: Model, classes: tuple[EndpointClass, ...]) -> None:
        self.model = model
        self.classes = classes
        topology = model.topology
        self.reps = [topology.workloads[c.members[0]] for c in classes]
        # mesh mode, proxy role and identity: resolved once per class
        facts = [mesh_facts(model, rep) for rep in self.reps]
        self.ends = [
            End(EndKind.WORKLOAD, workload=rep, facts=f)
            for rep, f in zip(self.reps, facts, strict=True)
        ]
        self.modes = [f.mode for f in facts]
        self.roles = [f.role for f in facts]
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
        groups: dict[GroupKey, int] = {}
        self.group_of: list[GroupKey] = []
        for i, rep in enumerate(self.reps):
            peer_ip = classes[i].peer.ip
            ip_signature = None if peer_ip is None else tuple(peer_ip in net for net in authz_nets)
            key = GroupKey(
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
        self.refresh_waypoint_sources(l4)
        allowed: dict[PortKey, dict[int, int]] = {}
        partial: dict[tuple[PortKey, int, int], Some] = {}
        for key, dsts in plan.items():
            per_dst: dict[int, int] = {}
            for d in iter_bits(dsts):
                bits = self.compose_cell(key, d, l4, partial)
                if bits:
                    per_dst[d] = bits
            allowed[key] = per_dst
        return allowed, partial

    def refresh_waypoint_sources(self, l4: dict[PortKey, dict[int, int]]) -> None:
        """Record the classes L3/L4 lets reach a waypoint (on HBONE), before `compose_cell`."""
        self._waypoint_sources = 0
        for w in self.by_name.values():
            wkey = PortKey(
                HBONE_PORT, Protocol.TCP, self.classes[w].peer.port_name(HBONE_PORT, Protocol.TCP)
            )
            self._waypoint_sources |= l4.get(wkey, {}).get(w, 0)

    def compose_cell(
        self,
        key: PortKey,
        d: int,
        l4: dict[PortKey, dict[int, int]],
        partial: dict[tuple[PortKey, int, int], Some],
    ) -> int:
        """The source classes allowed to reach destination class `d` on `key` over any route
        (the union of the requests each route lets through); records in `partial` those for
        which only some requests pass."""
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
            else:
                partial.pop((key, d, s), None)
        return bits

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
        seen: set[GroupKey] = set()
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

    def _path(self, gkey: GroupKey, g: int, d: int, key: PortKey, svc: Service | None) -> Path:
        # The path depends on the client's mode, role and namespace (DestinationRule lookup),
        # not on its service account or address.
        cache_key = (
            gkey.mode,
            gkey.role,
            gkey.namespace,
            gkey.waypoint,
            gkey.outbound_capture,
            d,
            key.port,
            key.protocol,
            svc,
        )
        path = self._paths.get(cache_key)
        if path is None:
            server = self.reps[d]
            path = plan_path(
                self.model,
                self.ends[g],
                self.ends[d],
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
        gkey: GroupKey,
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
        src_end, dst_end = self.ends[g], self.ends[d]
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
