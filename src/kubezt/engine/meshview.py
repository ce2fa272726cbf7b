"""The mesh part of the all-pairs evaluation: mesh facts resolved once per class of workloads,
source classes grouped by what the mesh can tell apart, and the composition of each pair's
L3/L4 legs with `engine.connection.mesh_decision` (once per source group, destination class,
port and route, and on HTTP ports once per witness request of the destination's request
space).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from kubezt.engine.authz import authz_networks, mentions_http, ports_named
from kubezt.engine.capture import inbound_ports_named, outbound_ports_named, proxy_ports
from kubezt.engine.connection import (
    End,
    EndKind,
    Leg,
    Path,
    mesh_decision,
    mesh_facts,
    plan_paths,
)
from kubezt.engine.index import EndpointClass, bit_indices, bits_of, iter_bits
from kubezt.engine.mesh import (
    HBONE_PORT,
    HTTP_PROTOCOLS,
    TCP_PROTOCOLS,
    WAYPOINT_GATEWAY_LABEL,
    waypoint_for,
    waypoint_workload,
)
from kubezt.engine.mesh_sets import MeshSets, Situation
from kubezt.engine.partial import PartialCells
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
from kubezt.ir.mesh import DestinationRule, TlsMode
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
        istio_mutual = any_istio_mutual(model.mesh.destination_rules)
        self.active = (
            istio_mutual
            or any(m is not MeshMode.NONE for m in self.modes)
            or any(r is not ProxyRole.NONE for r in self.roles)
        )
        self.istio_mutual = istio_mutual
        authz_nets = authz_networks(model.mesh.authorization_policies)
        # sources that present the same identity and address and take the same paths
        self._authz_nets = authz_nets
        members: dict[GroupKey, list[int]] = {}
        self.group_of: list[GroupKey] = []
        for i in range(len(self.reps)):
            key = self._group_key(i)
            members.setdefault(key, []).append(i)
            self.group_of.append(key)
        self.group_bits = {key: bits_of(indices) for key, indices in members.items()}
        self.group_rep = {key: indices[0] for key, indices in members.items()}
        self.by_name = {
            (w.namespace, w.labels.get(WAYPOINT_GATEWAY_LABEL)): i
            for i, w in enumerate(self.reps)
            if self.roles[i] is ProxyRole.WAYPOINT
        }
        self.services = topology.services_selecting_each(self.reps)
        self.alp_matches = tuple(
            r.http
            for p in model.policies.policies
            for r in p.ingress
            if r.http is not None and model.mesh_config.calico_alp
        )
        self.alp = bool(self.alp_matches)
        self._decisions: dict[tuple[object, ...], RequestSet] = {}
        self._paths: dict[tuple[object, ...], tuple[Path, ...]] = {}
        self._waypoint_sources = 0
        # Sources that take the same path to any destination: the path depends on the client's
        # mode, role, gateway name, outbound-capture annotations and, only through a
        # DestinationRule there, its namespace.
        self._dr_namespaces: set[str] = set()
        self.path_buckets: list[tuple[tuple[object, ...], int]] = []
        self.refresh_destination_rules()
        self.sets = MeshSets(model, classes, self.reps, self.services, authz_nets)
        self._spaces: dict[tuple[object, ...], RequestSpace | None] = {}
        self._spaces_by_policies: dict[tuple[int, ...], RequestSpace | None] = {}
        """Destinations with the same policies share their space, or its absence when no policy
        looks at requests (keyed by the policies' ids: the model holds them)."""
        self._common: dict[frozenset[RequestSpace], RequestSpace] = {}
        self._somes: dict[tuple[object, ...], Some] = {}
        self._unions: dict[tuple[int, int], RequestSet] = {}
        self._keep: list[object] = []
        self._cell_memo: dict[tuple[object, ...], tuple[int, list[tuple[int, Some]]]] | None = None
        """During `compose`: the cells decided so far, by destination and port signature."""
        self._named: dict[int, frozenset[int]] = {}
        self._named_everywhere: frozenset[int] = frozenset()
        self._exact: dict[int, tuple[frozenset[int], frozenset[int]]] = {}
        self._service_ports_exact: frozenset[int] = frozenset()

    def _group_key(self, i: int) -> GroupKey:
        rep = self.reps[i]
        peer_ip = self.classes[i].peer.ip
        ip_signature = (
            None if peer_ip is None else tuple(peer_ip in net for net in self._authz_nets)
        )
        return GroupKey(
            self.modes[i],
            self.roles[i],
            rep.namespace,
            rep.service_account,
            rep.host_network,
            ip_signature,
            rep.labels.get(WAYPOINT_GATEWAY_LABEL),
            _outbound_capture(rep),
        )

    def _bucket_key(self, gkey: GroupKey) -> tuple[object, ...]:
        namespace = gkey.namespace if gkey.namespace in self._dr_namespaces else ""
        return (gkey.mode, gkey.role, namespace, gkey.waypoint, gkey.outbound_capture)

    def add_class(self, cls: EndpointClass, rep: Workload) -> None:
        """One more class, `rep` one of its workloads (incremental updates): its mesh facts,
        source group and path bucket. Call `rebuild_sets` after the last one. Decisions cached
        for other classes stay valid, unless the class is a waypoint: then the caller forgets
        those of the destinations whose traffic may pass it."""
        i = cls.index
        assert i == len(self.reps)
        self.classes = (*self.classes, cls)
        self.reps.append(rep)
        facts = mesh_facts(self._model, rep)
        self.ends.append(End(EndKind.WORKLOAD, workload=rep, facts=facts))
        self.modes.append(facts.mode)
        self.roles.append(facts.role)
        if facts.role is ProxyRole.WAYPOINT:
            self.by_name[(rep.namespace, rep.labels.get(WAYPOINT_GATEWAY_LABEL))] = i
        gkey = self._group_key(i)
        self.group_of.append(gkey)
        self.group_bits[gkey] = self.group_bits.get(gkey, 0) | 1 << i
        self.group_rep.setdefault(gkey, i)
        self.services.append(self._model.topology.services_selecting(rep))
        buckets = dict(self.path_buckets)
        pkey = self._bucket_key(gkey)
        buckets[pkey] = buckets.get(pkey, 0) | 1 << i
        self.path_buckets = list(buckets.items())

    def refresh_destination_rules(self) -> None:
        """After the model's DestinationRules changed (incremental updates): whether one asks
        for Istio mTLS, and the clients' path buckets (a rule's namespace sets its clients
        apart). Paths and decisions cached for the destinations the rules name are the
        caller's to forget."""
        rules = self._model.mesh.destination_rules
        self.istio_mutual = any_istio_mutual(rules)
        self._dr_namespaces = {dr.namespace for dr in rules}
        buckets: dict[tuple[object, ...], int] = {}
        for i, gkey in enumerate(self.group_of):
            pkey = self._bucket_key(gkey)
            buckets[pkey] = buckets.get(pkey, 0) | 1 << i
        self.path_buckets = list(buckets.items())

    def refresh_services(self) -> None:
        """After `services` changed (incremental updates): what was derived from them."""
        self.sets = MeshSets(
            self._model, self.classes, self.reps, self.services, self._authz_nets, self.sets.spaces
        )
        self._spaces.clear()

    def rebuild_sets(self) -> None:
        """The batched decisions over the classes as they are now (after `add_class`)."""
        self.sets = MeshSets(self._model, self.classes, self.reps, self.services, self._authz_nets)

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
            # the sources' principals and addresses depend on the config only
            spaces = self.sets.spaces if model.mesh_config == old.mesh_config else None
            self.sets = MeshSets(
                model, self.classes, self.reps, self.services, self._authz_nets, spaces
            )
            self._spaces.clear()
            self._spaces_by_policies.clear()

    def _union(self, a: Some, b: Some) -> RequestSet:
        """The requests passing on either route (both decided over one space; the sets are
        kept by the caches, so their ids stay valid)."""
        key = (id(a), id(b))
        merged = self._unions.get(key)
        if merged is None:
            merged = union(a, b)
            self._unions[key] = merged
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
    ) -> tuple[dict[PortKey, dict[int, int]], PartialCells]:
        self.refresh_waypoint_sources(l4)
        allowed: dict[PortKey, dict[int, int]] = {}
        partial = PartialCells()
        # Ports no configuration of a destination names are decided alike (`_port_signature`):
        # one such cell per destination and L3/L4 verdict is decided, the others take its
        # answer. Not for Calico application layer policy (decided group by group), nor when
        # every group is decided by `mesh_decision` (the tests compare that with this).
        if self.batched and not self.alp:
            self._cell_memo = {}
            self._named = {}
            self._exact = {}
            self._named_everywhere = self._ports_named_everywhere()
            self._service_ports_exact = self._named_everywhere | {
                port for dr in self._model.mesh.destination_rules for port, _ in dr.port_tls
            }
        try:
            return self._compose(plan, l4, allowed, partial)
        finally:
            self._cell_memo = None
            self._named = {}
            self._exact = {}

    def _compose(
        self,
        plan: dict[PortKey, int],
        l4: dict[PortKey, dict[int, int]],
        allowed: dict[PortKey, dict[int, int]],
        partial: PartialCells,
    ) -> tuple[dict[PortKey, dict[int, int]], PartialCells]:
        # classes some source reaches over HBONE, and those a waypoint may lead to: without
        # them (and without a direct connection) no route reaches a destination
        tunnelled = 0
        for key, per_dst in l4.items():
            if key.port == HBONE_PORT and key.protocol is Protocol.TCP:
                tunnelled |= sum(1 << d for d, bits in per_dst.items() if bits)
        if self._waypoint_sources:
            for d, mode in enumerate(self.modes):
                if mode is MeshMode.AMBIENT:
                    tunnelled |= 1 << d
        for key, dsts in plan.items():
            per_dst = {}
            direct = l4.get(key, {})
            for d in bit_indices(dsts):
                if not direct.get(d) and not tunnelled >> d & 1:
                    continue
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
        partial: PartialCells,
    ) -> int:
        """The source classes allowed to reach destination class `d` on `key` over any route
        (the union of the requests each route lets through, every route decided over one
        request space); records in `partial` those for which only some requests pass (the cell's
        entry is replaced)."""
        memo = self._cell_memo
        if memo is not None and key.protocol is Protocol.TCP:
            # the port's name matters only through the L3/L4 verdicts of `key`, in the key
            port = self._port_class(d, key.port) if key.port in self._ports_named(d) else None
            mkey = (d, port, l4.get(key, {}).get(d, 0))
            done = memo.get(mkey)
            if done is None:
                done = memo[mkey] = self._compose_cell(key, d, l4)
            bits, groups = done
        else:
            bits, groups = self._compose_cell(key, d, l4)
        partial.set_cell(key, d, groups)
        return bits

    def _ports_named_everywhere(self) -> frozenset[int]:
        """Ports whose verdict may differ from other ports' at any destination: the HBONE
        port, PeerAuthentication port-level modes and the clients' outbound port capture."""
        out = {HBONE_PORT}
        for pa in self._model.mesh.peer_authentications:
            out.update(port for port, _ in pa.port_modes)
        for rep in self.reps:
            out |= outbound_ports_named(rep)
        return frozenset(out)

    def _port_class(self, d: int, port: int) -> tuple[object, ...]:
        """What the composition reads of a port `_ports_named` names at destination class `d`,
        L3/L4 aside: the port itself when the policies that may apply there (the sidecar's or
        ztunnel's, the waypoints' of the pod address and of each Service), the clients'
        outbound capture, a PeerAuthentication or DestinationRule port-level setting or the
        sidecar's inbound-capture annotations name it; whether it is one of the sidecar's own
        ports (never captured inbound); and the Service ports that target it (Service,
        protocol, the protocol selection of its declared protocol (`mesh.port_protocol`), and
        the port number when it is named so). Two ports of
        one class meet the same routes, paths, protocol, mTLS mode and policy answers."""
        exact, proxy = self._ports_exact(d)
        if port in exact:
            return (port,)
        rep = self.reps[d]
        targets = []
        for svc in self.services[d]:
            for sp in svc.ports:
                if sp.target_on(rep) == port:
                    number = sp.port if sp.port in self._service_ports_exact else None
                    declared = sp.declared_protocol
                    selection = (
                        "http"
                        if declared in HTTP_PROTOCOLS
                        else "tcp"
                        if declared in TCP_PROTOCOLS
                        else None
                    )
                    targets.append((id(svc), number, sp.protocol, selection))
        return (None, port in proxy, tuple(targets))

    def _ports_exact(self, d: int) -> tuple[frozenset[int], frozenset[int]]:
        """`_port_class`'s ports that stay themselves at destination class `d`, and its
        sidecar's own ports (none without a sidecar)."""
        found = self._exact.get(d)
        if found is None:
            rep = self.reps[d]
            ports = set(self._named_everywhere)
            proxy: frozenset[int] = frozenset()
            if self.modes[d] is MeshMode.SIDECAR:
                proxy = frozenset(proxy_ports(rep))
                ports |= inbound_ports_named(rep) - proxy
            policies = list(self.sets.server_policies(d))
            for svc in (None, *self.services[d]):
                ref = waypoint_for(self._model, rep, svc, ProxyRole.NONE)
                wp = waypoint_workload(self._model, ref) if ref is not None else None
                if wp is not None:
                    policies += self.sets.waypoint_policies(wp, svc)
            ports |= ports_named(policies)
            found = self._exact[d] = (frozenset(ports), proxy)
        return found

    def _ports_named(self, d: int) -> frozenset[int]:
        """The ports whose verdict at destination class `d` may differ from that of any other
        port, L3/L4 aside: the ports it declares, those its Services target, its sidecar's
        inbound capture's (none without a sidecar), those its sidecar's or ztunnel's
        AuthorizationPolicies or the waypoint of its pod address name, and
        `_ports_named_everywhere`. Two other ports meet the same
        capture, mTLS mode, protocol (sniffed), routes (the pod address only) and policies
        with the same answers (`authz.ports_named`)."""
        named = self._named.get(d)
        if named is None:
            rep = self.reps[d]
            ports = set(self._named_everywhere)
            ports.update(cp.port for cp in self.classes[d].peer.ports)
            ports.update(cp.port for cp in rep.ports)
            if self.modes[d] is MeshMode.SIDECAR:
                # only a sidecar's inbound capture reads the port (`connection.plan_path`)
                ports |= inbound_ports_named(rep)
            for svc in self.services[d]:
                for sp in svc.ports:
                    target = sp.target_on(rep)
                    if target is not None:
                        ports.add(target)
            policies = list(self.sets.server_policies(d))
            ref = waypoint_for(self._model, rep, None, ProxyRole.NONE)
            wp = waypoint_workload(self._model, ref) if ref is not None else None
            if wp is not None:
                policies += self.sets.waypoint_policies(wp, None)
            ports |= ports_named(policies)
            named = self._named[d] = frozenset(ports)
        return named

    def _compose_cell(
        self, key: PortKey, d: int, l4: dict[PortKey, dict[int, int]]
    ) -> tuple[int, list[tuple[int, Some]]]:
        """`compose_cell`'s answer: the sources allowed, and the partial ones' groups."""
        bits = 0
        full = 0  # sources every request of which passes (on one route, or on the routes together)
        groups: list[tuple[int, Some]] = []
        for route_bits, route_groups in self._decided_routes(d, key, l4):
            if not route_bits:
                continue
            route_partial = 0
            for members, _ in route_groups:
                route_partial |= members
            full |= route_bits & ~route_partial
            bits |= route_bits
            if route_groups:
                if groups:
                    groups, together = self._merge_groups(groups, route_groups)
                    full |= together
                else:
                    groups = route_groups
        return bits, [(members & ~full, requests) for members, requests in groups]

    def _merge_groups(
        self, a: list[tuple[int, Some]], b: list[tuple[int, Some]]
    ) -> tuple[list[tuple[int, Some]], int]:
        """Two routes' partial answers (each disjoint sets of sources with the requests that
        pass) as one: a source in both gets the union of its requests. Also returns the
        sources for which that union is every request."""
        out: list[tuple[int, Some]] = []
        together = 0
        in_a = 0
        for m, first in a:
            in_a |= m
            rest = m
            for n, second in b:
                both = m & n
                if both:
                    rest &= ~n
                    merged = self._union(first, second)
                    if isinstance(merged, Some):
                        out.append((both, merged))
                    else:
                        together |= both
            if rest:
                out.append((rest, first))
        for n, second in b:
            rest = n & ~in_a
            if rest:
                out.append((rest, second))
        return out, together

    def _decided_routes(
        self, d: int, key: PortKey, l4: dict[PortKey, dict[int, int]]
    ) -> list[tuple[int, list[tuple[int, Some]]]]:
        """For each route and path to destination class `d` on `key`: the sources allowed for
        at least one request, and among them disjoint sets of those allowed only some, with the
        requests that pass.

        The routes of one destination may meet different policies (a waypoint on the Service
        route, none on the pod-IP route), so every route that looks at requests is decided
        over the union of their request spaces: a cell of that space is inside one cell of
        each route's own space, so its witness gets each route's verdict for the whole cell,
        and the routes' answers combine witness by witness."""
        direct = l4.get(key, {}).get(d, 0)
        if key.protocol is not Protocol.TCP or (
            self.modes[d] is MeshMode.NONE and not self.istio_mutual
        ):
            return [(direct, [])]  # UDP/SCTP are never captured by the mesh
        hbone_key = PortKey(
            HBONE_PORT, Protocol.TCP, self.classes[d].peer.port_name(HBONE_PORT, Protocol.TCP)
        )
        hbone = l4.get(hbone_key, {}).get(d, 0)
        candidates = direct | hbone | self._waypoint_sources
        # (route, path, sources taking it, their group when decided one group at a time)
        entries: list[tuple[Service | None, Path, int, GroupKey | None]] = []
        for svc in self.routes(d, key):
            if self.batched:
                for _bucket, pbits in self.path_buckets:
                    sources = pbits & candidates
                    if sources:
                        g = (sources & -sources).bit_length() - 1
                        for path in self._path(self.group_of[g], g, d, key, svc):
                            entries.append((svc, path, sources, None))
            else:
                seen: set[GroupKey] = set()
                for c in iter_bits(candidates):
                    group = self.group_of[c]
                    if group in seen:
                        continue
                    seen.add(group)
                    g = self.group_rep[group]
                    for path in self._path(group, g, d, key, svc):
                        entries.append((svc, path, self.group_bits[group] & candidates, group))
        own = [self._space(d, key, svc, path) for svc, path, _, _ in entries]
        common = self._common_space(own)
        out: list[tuple[int, list[tuple[int, Some]]]] = []
        for (svc, path, sources, gkey), space in zip(entries, own, strict=True):
            ok_bits = sources
            for leg in path.legs:
                ok_bits &= self._leg_bits(leg, key, d, path, sources, l4)
                if not ok_bits:
                    break
            if not ok_bits:
                continue
            use = None if space is None else common
            if gkey is None and not self._alp_applies(d, path):
                out.append(self._mesh_set(ok_bits, d, key, svc, path, use))
                continue
            # one group at a time (`mesh_decision`, what `explain` runs); Calico application
            # layer policy reads the source's L3/L4 identity, so it is decided per group too
            groups = [(gkey, ok_bits)] if gkey is not None else self._groups_in(ok_bits)
            bits = 0
            partial: list[tuple[int, Some]] = []
            for gk, gbits in groups:
                decision = self._mesh(gk, self.group_rep[gk], d, key, svc, path, use)
                if isinstance(decision, NoRequests):
                    continue
                bits |= gbits
                if isinstance(decision, Some):
                    partial.append((gbits, decision))
            out.append((bits, partial))
        return out

    def _common_space(self, spaces: list[RequestSpace | None]) -> RequestSpace | None:
        """The union of the request spaces of a destination's routes (None: none looks at
        requests)."""
        distinct = frozenset(s for s in spaces if s is not None)
        if not distinct:
            return None
        if len(distinct) == 1:
            return next(iter(distinct))
        common = self._common.get(distinct)
        if common is None:
            common = RequestSpace()
            for space in sorted(distinct, key=repr):
                common = common.merged(space)
            self._common[distinct] = common
        return common

    def _groups_in(self, sources: int) -> list[tuple[GroupKey, int]]:
        out: dict[GroupKey, int] = {}
        for s in iter_bits(sources):
            gkey = self.group_of[s]
            out[gkey] = out.get(gkey, 0) | 1 << s
        return list(out.items())

    def alp_applies(self, d: int, path: Path) -> bool:
        """Calico application layer policy decides again at destination class `d`."""
        return self._alp_applies(d, path)

    def request_space(self, d: int, key: PortKey, path: Path) -> RequestSpace | None:
        """The request space a connection to class `d` on `key` by pod IP along `path` is
        decided over; None when the verdict cannot depend on the request."""
        return self._space(d, key, None, path)

    def _alp_applies(self, d: int, path: Path) -> bool:
        if not self.alp or path.server is not MeshMode.SIDECAR:
            return False
        return "dikastes" in (self.reps[d].annotations.get("inject.istio.io/templates") or "")

    def _mesh_set(
        self,
        sources: int,
        d: int,
        key: PortKey,
        svc: Service | None,
        path: Path,
        space: RequestSpace | None,
    ) -> tuple[int, list[tuple[int, Some]]]:
        """The mesh decision for a set of sources that share `path`, on every witness of
        `space` (None: the verdict does not depend on the request): the sources allowed for
        at least one request, and for those allowed only some, the witnesses that pass.
        Decided once per (sources, `MeshSets.situation`, space): other ports, routes and
        destinations of the same situation take the answer."""
        situation = self.sets.situation(d, key, svc, path)
        memo_key = (sources, situation, space)
        memo = self.sets.decided
        done = memo.get(memo_key)
        if done is None:
            done = memo[memo_key] = self._mesh_set_of(sources, situation, space)
        return done

    def _mesh_set_of(
        self, sources: int, situation: Situation, space: RequestSpace | None
    ) -> tuple[int, list[tuple[int, Some]]]:
        if space is None:
            return self.sets.allowed_in(situation, sources, [None])[0], []
        witnesses = space.witnesses()
        per_request = self.sets.allowed_in(situation, sources, witnesses)
        every = sources
        some = 0
        for bits in per_request:
            every &= bits
            some |= bits
        partial: list[tuple[int, Some]] = []
        if some == every:
            return some, partial
        # sources with the same passing witnesses, split witness by witness
        groups: dict[tuple[int, ...], int] = {(): some & ~every}
        for i, bits in enumerate(per_request):
            split: dict[tuple[int, ...], int] = {}
            for passing, members in groups.items():
                if members & bits:
                    split[(*passing, i)] = members & bits
                if members & ~bits:
                    split[passing] = members & ~bits
            groups = split
        for passing, members in groups.items():
            skey = (space, passing)
            requests = self._somes.get(skey)
            if requests is None:
                requests = Some(tuple(witnesses[i] for i in passing), space)
                self._somes[skey] = requests
            partial.append((members, requests))
        return some, partial

    def _path(
        self, gkey: GroupKey, g: int, d: int, key: PortKey, svc: Service | None
    ) -> tuple[Path, ...]:
        # The path depends on the client's mode, role, gateway name, outbound-capture
        # annotations and, only through a DestinationRule there, its namespace; not on its
        # service account or address. Two paths when capture depends on an address the input
        # does not give (`plan_paths`): a connection is allowed along either.
        cache_key = (
            gkey.mode,
            gkey.role,
            gkey.namespace if gkey.namespace in self._dr_namespaces else "",
            gkey.waypoint,
            gkey.outbound_capture,
            d,
            key.port,
            key.protocol,
            None if svc is None else id(svc),  # the model holds its Services
        )
        paths = self._paths.get(cache_key)
        if paths is None:
            server = self.reps[d]
            paths = plan_paths(
                self.model,
                self.ends[g],
                self.ends[d],
                key.port,
                key.protocol,
                svc,
                _service_port(svc, server, key),
            )
            self._paths[cache_key] = paths
        return paths

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
        space: RequestSpace | None,
    ) -> RequestSet:
        """Mesh decision for a source group (`mesh_decision`): on every witness of `space`,
        or once when the verdict does not depend on the request (None)."""
        cache_key = (
            gkey,
            d,
            key,
            svc.namespace if svc else None,
            svc.name if svc else None,
            space,
            path.assumed_capture,
        )
        cached = self._decisions.get(cache_key)
        if cached is not None:
            return cached
        src_end, dst_end = self.ends[g], self.ends[d]
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
        wp = path.waypoint
        ckey = (
            d,
            key,
            svc.namespace if svc else None,
            svc.name if svc else None,
            None if wp is None else (wp.namespace, wp.name),
        )
        if ckey in self._spaces:
            return self._spaces[ckey]
        space = self._space_of(d, key, svc, path)
        self._spaces[ckey] = space
        return space

    def _space_of(
        self, d: int, key: PortKey, svc: Service | None, path: Path
    ) -> RequestSpace | None:
        if key.protocol is not Protocol.TCP:
            return None
        if self.sets.protocol(d, key) == "tcp":
            return None
        policies = self.sets.server_policies(d)
        if path.waypoint is not None:
            policies = policies + self.sets.waypoint_policies(path.waypoint, svc)
        pkey = tuple(map(id, policies))
        if pkey in self._spaces_by_policies:
            return self._spaces_by_policies[pkey]
        space = (
            space_of(policies, self.alp_matches) if self.alp or mentions_http(policies) else None
        )
        self._spaces_by_policies[pkey] = space
        return space


def any_istio_mutual(rules: Iterable[DestinationRule]) -> bool:
    """Whether a DestinationRule asks for Istio mTLS (on any port): then clients outside the
    mesh's capture may still originate it, and the mesh view is active."""
    return any(
        dr.tls_mode is TlsMode.ISTIO_MUTUAL
        or any(m is TlsMode.ISTIO_MUTUAL for _, m in dr.port_tls)
        for dr in rules
    )


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
