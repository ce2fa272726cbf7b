"""The mesh part of the all-pairs evaluation: mesh facts resolved once per class of workloads,
source classes grouped by what the mesh can tell apart, and the composition of each pair's
L3/L4 legs with `engine.connection.mesh_decision` (once per source group, destination class,
port and route, and on HTTP ports once per representative request).
"""

from __future__ import annotations

from typing import NamedTuple, assert_never

from kubezt.engine.admission import ALL, NONE, Admission, AllRequests, NoRequest, SomeRequests
from kubezt.engine.authz import (
    authz_networks,
    candidate_requests,
    mentions_http,
    summarize,
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
from kubezt.engine.mesh_sets import MeshSets
from kubezt.ir.mesh import TlsMode
from kubezt.ir.model import Model
from kubezt.ir.ports import PortKey, Protocol
from kubezt.ir.requests import HttpRequest
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


class MeshView:
    """Mesh facts per class and the composition of L3/L4 legs with mesh decisions."""

    batched = True
    """False: every source group through `mesh_decision` one by one, as `explain` decides
    (the tests compare both)."""

    def __init__(self, model: Model, classes: tuple[EndpointClass, ...]) -> None:
        self._model = model
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
        self.alp = model.mesh_config.calico_alp and any(
            any(r.http is not None for r in p.ingress) for p in model.policies.policies
        )
        self._decisions: dict[tuple[object, ...], Admission] = {}
        self._paths: dict[tuple[object, ...], Path] = {}
        self._waypoint_sources = 0
        # Sources that take the same path to any destination: the path depends on the client's
        # mode, role, gateway name and, only through a DestinationRule there, its namespace.
        dr_namespaces = {dr.namespace for dr in model.mesh.destination_rules}
        self._dr_namespaces = dr_namespaces
        buckets: dict[tuple[object, ...], int] = {}
        for i, gkey in enumerate(self.group_of):
            namespace = gkey.namespace if gkey.namespace in dr_namespaces else ""
            pkey = (gkey.mode, gkey.role, namespace, gkey.waypoint)
            buckets[pkey] = buckets.get(pkey, 0) | 1 << i
        self.path_buckets = list(buckets.items())
        self._authz_nets = authz_nets
        self.sets = MeshSets(model, classes, self.reps, self.services, authz_nets)
        self._request_cache: dict[tuple[object, ...], list[HttpRequest]] = {}
        self._summaries: dict[tuple[object, ...], tuple[HttpRequest, ...]] = {}
        self._merged: dict[tuple[int, int], tuple[HttpRequest, ...]] = {}
        self._keep: list[object] = []

    @property
    def model(self) -> Model:
        return self._model

    @model.setter
    def model(self, model: Model) -> None:
        """A new model over the same classes (incremental updates); the batched decisions'
        caches of mesh policies start over when the mesh resources or settings changed."""
        old = self._model
        self._model = model
        if model.mesh is not old.mesh or model.mesh_config != old.mesh_config:
            self.sets = MeshSets(model, self.classes, self.reps, self.services, self._authz_nets)
            self._request_cache.clear()

    def _merge(
        self, a: tuple[HttpRequest, ...], b: tuple[HttpRequest, ...]
    ) -> tuple[HttpRequest, ...]:
        """The requests passing on either route (the tuples are kept by the caches, so their
        ids stay valid)."""
        key = (id(a), id(b))
        merged = self._merged.get(key)
        if merged is None:
            merged = tuple(dict.fromkeys(a + b))
            self._merged[key] = merged
            self._keep.append((a, b))
        return merged

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
    ) -> tuple[
        dict[PortKey, dict[int, int]], dict[tuple[PortKey, int, int], tuple[HttpRequest, ...]]
    ]:
        self.refresh_waypoint_sources(l4)
        allowed: dict[PortKey, dict[int, int]] = {}
        partial: dict[tuple[PortKey, int, int], tuple[HttpRequest, ...]] = {}
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
        partial: dict[tuple[PortKey, int, int], tuple[HttpRequest, ...]],
    ) -> int:
        """The source classes allowed to reach destination class `d` on `key` over any route;
        records in `partial` those for which only some requests pass."""
        bits = 0
        some: dict[int, tuple[HttpRequest, ...]] = {}
        for svc in self.routes(d, key):
            route_bits, route_partial = self._route(d, key, svc, l4)
            partial_bits = 0
            for s, requests in route_partial.items():
                partial_bits |= 1 << s
                if bits >> s & 1 and s not in some:
                    continue  # another route already lets every request through
                prev = some.get(s)
                some[s] = requests if prev is None else self._merge(prev, requests)
            full = route_bits & ~partial_bits
            if some and full:
                for s in [s for s in some if full >> s & 1]:
                    del some[s]
            bits |= route_bits
        for s, requests in some.items():
            partial[(key, d, s)] = requests
        return bits

    def _route(
        self, d: int, key: PortKey, svc: Service | None, l4: dict[PortKey, dict[int, int]]
    ) -> tuple[int, dict[int, tuple[HttpRequest, ...]]]:
        direct = l4.get(key, {}).get(d, 0)
        hbone_key = PortKey(
            HBONE_PORT, Protocol.TCP, self.classes[d].peer.port_name(HBONE_PORT, Protocol.TCP)
        )
        hbone = l4.get(hbone_key, {}).get(d, 0)
        if key.protocol is not Protocol.TCP or (
            self.modes[d] is MeshMode.NONE and not self.istio_mutual
        ):
            return direct, {}  # UDP/SCTP are never captured by the mesh
        candidates = direct | hbone | self._waypoint_sources
        if not self.batched:
            return self._route_by_group(d, key, svc, l4, candidates)
        bits = 0
        partial: dict[int, tuple[HttpRequest, ...]] = {}
        for _bucket, pbits in self.path_buckets:
            sources = pbits & candidates
            if not sources:
                continue
            g = (sources & -sources).bit_length() - 1
            path = self._path(self.group_of[g], g, d, key, svc)
            ok_bits = sources
            for leg in path.legs:
                ok_bits &= self._leg_bits(leg, key, d, path, sources, l4)
                if not ok_bits:
                    break
            if not ok_bits:
                continue
            if self._alp_applies(d, path):
                # Calico application layer policy reads the source's L3/L4 identity: per group
                for gkey, gbits in self._groups_in(ok_bits):
                    match self._mesh(gkey, self.group_rep[gkey], d, key, svc, path):
                        case NoRequest():
                            continue
                        case AllRequests():
                            bits |= gbits
                        case SomeRequests(requests):
                            bits |= gbits
                            for s in iter_bits(gbits):
                                partial[s] = requests
                        case decision:
                            assert_never(decision)
                continue
            allowed, some = self._mesh_set(ok_bits, d, key, svc, path)
            bits |= allowed
            partial.update(some)
        return bits, partial

    def _groups_in(self, sources: int) -> list[tuple[GroupKey, int]]:
        out: dict[GroupKey, int] = {}
        for s in iter_bits(sources):
            gkey = self.group_of[s]
            out[gkey] = out.get(gkey, 0) | 1 << s
        return list(out.items())

    def _alp_applies(self, d: int, path: Path) -> bool:
        if not self.alp or path.server is not MeshMode.SIDECAR:
            return False
        return "dikastes" in (self.reps[d].annotations.get("inject.istio.io/templates") or "")

    def _mesh_set(
        self, sources: int, d: int, key: PortKey, svc: Service | None, path: Path
    ) -> tuple[int, dict[int, tuple[HttpRequest, ...]]]:
        """The mesh decision for a set of sources that share `path`: the sources allowed for at
        least one request, and for those allowed only some, the requests that pass."""
        requests = self._cached_requests(d, key, svc, path)
        if not requests:
            return self.sets.allowed(sources, d, key, svc, path, [None])[0], {}
        per_request = self.sets.allowed(sources, d, key, svc, path, requests)
        every = sources
        some = 0
        for bits in per_request:
            every &= bits
            some |= bits
        partial: dict[int, tuple[HttpRequest, ...]] = {}
        if some == every:
            return some, partial
        # sources with the same passing requests, split request by request
        groups: dict[tuple[int, ...], int] = {(): some & ~every}
        for i, bits in enumerate(per_request):
            split: dict[tuple[int, ...], int] = {}
            for passing, members in groups.items():
                if members & bits:
                    split[(*passing, i)] = members & bits
                if members & ~bits:
                    split[passing] = members & ~bits
            groups = split
        universe = tuple(requests)
        for passing, members in groups.items():
            skey = (universe, passing)
            summary = self._summaries.get(skey)
            if summary is None:
                summary = summarize(requests, tuple(requests[i] for i in passing))
                self._summaries[skey] = summary
            for s in iter_bits(members):
                partial[s] = summary
        return some, partial

    def _cached_requests(
        self, d: int, key: PortKey, svc: Service | None, path: Path
    ) -> list[HttpRequest]:
        wp = path.waypoint
        ckey = (
            d,
            key,
            svc.namespace if svc else None,
            svc.name if svc else None,
            None if wp is None else (wp.namespace, wp.name),
        )
        cached = self._request_cache.get(ckey)
        if cached is None:
            cached = self._requests(d, key, svc, path)
            self._request_cache[ckey] = cached
        return cached

    def _route_by_group(
        self,
        d: int,
        key: PortKey,
        svc: Service | None,
        l4: dict[PortKey, dict[int, int]],
        candidates: int,
    ) -> tuple[int, dict[int, tuple[HttpRequest, ...]]]:
        """`_route` with every source group through `mesh_decision` (what `explain` runs)."""
        seen: set[GroupKey] = set()
        bits = 0
        partial: dict[int, tuple[HttpRequest, ...]] = {}
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
            match self._mesh(gkey, g, d, key, svc, path):
                case NoRequest():
                    continue
                case AllRequests():
                    bits |= ok_bits
                case SomeRequests(requests):
                    bits |= ok_bits
                    for s in iter_bits(ok_bits):
                        partial[s] = requests
                case decision:
                    assert_never(decision)
        return bits, partial

    def _path(self, gkey: GroupKey, g: int, d: int, key: PortKey, svc: Service | None) -> Path:
        # The path depends on the client's mode, role, gateway name and, only through a
        # DestinationRule there, its namespace; not on its service account or address.
        cache_key = (
            gkey.mode,
            gkey.role,
            gkey.namespace if gkey.namespace in self._dr_namespaces else "",
            gkey.waypoint,
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
    ) -> Admission:
        """Mesh decision for a source group: which requests pass."""
        cache_key = (gkey, d, key, svc.namespace if svc else None, svc.name if svc else None)
        cached = self._decisions.get(cache_key)
        if cached is not None:
            return cached
        src_end, dst_end = self.ends[g], self.ends[d]
        requests = self._requests(d, key, svc, path)
        if not requests:
            verdict = mesh_decision(
                self.model, src_end, dst_end, path, key.port, key.protocol, svc, None
            )
            result: Admission = ALL if verdict.allowed else NONE
        else:
            passing = tuple(
                r
                for r in requests
                if mesh_decision(
                    self.model, src_end, dst_end, path, key.port, key.protocol, svc, r
                ).allowed
            )
            if len(passing) == len(requests):
                result = ALL
            elif passing:
                result = SomeRequests(summarize(requests, passing))
            else:
                result = NONE
        self._decisions[cache_key] = result
        return result

    def _requests(self, d: int, key: PortKey, svc: Service | None, path: Path) -> list[HttpRequest]:
        """Representative requests when the destination's policies look at HTTP attributes
        and the port carries HTTP; empty when the verdict cannot depend on the request."""
        if key.protocol is not Protocol.TCP:
            return []
        server = self.reps[d]
        proto = port_protocol(self.services[d], server, key.port, key.protocol)
        if proto == "tcp":
            return []
        policies = self.sets.server_policies(d)
        if path.waypoint is not None:
            policies = policies + self.sets.waypoint_policies(path.waypoint, svc)
        if not mentions_http(policies) and not self.alp:
            return []
        return candidate_requests(policies)


def _service_port(svc: Service | None, server: Workload, key: PortKey) -> int | None:
    if svc is None:
        return None
    for sp in svc.ports:
        target = sp.target_on(server)
        if target == key.port:
            return sp.port
    return None
