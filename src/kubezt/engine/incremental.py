"""Incremental re-evaluation: after one full evaluation, apply the change of one object and
re-evaluate only what it can affect, yielding the connections whose verdict changed.

The state keeps every intermediate of `engine.reach.evaluate` at class level — the classes,
the selector index and its caches, each class's policy chain in each direction, what each
class's ingress and egress policy allow per port, the mesh decisions — and a change refreshes
the part it reaches:

* an L3/L4 policy (any dialect): the chains of the classes it selects (before or after the
  change), their ingress (as destinations) or egress (as sources) decisions, and the mesh
  composition of the cells whose L3/L4 verdict moved;
* a PeerAuthentication or AuthorizationPolicy: the mesh decisions of the destination classes
  it applies to (every class when it sits in the root namespace, binds by `targetRefs` or
  reaches a waypoint);
* a Pod (or controller) added, deleted or relabelled into an existing class: nothing is
  evaluated; its rows are those of its class;
* a Pod whose labels (or namespace, service account, ports) no class has: a new class, with
  its policies, its row and column of the L3/L4 matrix (copied from a class no rule side
  tells apart from it when there is one, else decided for it alone) and its final cells;
* a namespace's or service account's labels: the classes of its workloads get new peers, so
  new classes take their members; the old classes stay behind empty ("ghosts", never
  reported; the state is rebuilt once they outnumber the live classes);
* a Service: the mesh cells of the destinations it selects before or after (nothing at L3/L4,
  unless a Calico rule names the Service);
* a DestinationRule: the mesh cells of the destinations selected by the Services its host
  names, before or after (every destination when whether any rule asks for Istio mTLS flips);
* a waypoint Gateway: its pod's class joins (or is left behind empty), and the mesh cells of
  the destinations whose traffic may pass a waypoint are recomposed; `istio.io/use-waypoint`
  labels move with the pod, namespace or Service that carries them (above);
* anything else is global, and the state is rebuilt: a tier, a network set, a policy naming
  a CIDR no class boundary had, AuthorizationPolicy ipBlocks that split classes, a port range
  no object named before (or the last object naming one gone), the mesh view turning on or
  off (the first workload in the mesh, the first rule asking for Istio mTLS, a mesh policy
  while no workload is in the mesh), a namespace or service account created or deleted, the
  labels of a namespace with Calico network sets or of the waypoint's namespace, a waypoint
  or gateway pod of the input, a Gateway whose pod is in the input, a Service a Calico rule
  names, a policy with Calico application-layer rules, ghost classes outnumbering live ones.

Whatever the path, the state after any sequence of changes equals a full evaluation of the
final objects (the property tests prove it); a rebuild only costs time. Pure: no I/O.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from operator import itemgetter
from typing import NamedTuple, TypeVar

from kubezt.engine.authz import authz_networks
from kubezt.engine.capture import address_networks, outbound_networks
from kubezt.engine.cells import (
    MESH_PROTOCOLS,
    PortContribution,
    PortCuts,
    object_port_ranges,
    port_cuts,
    workload_port_ranges,
)
from kubezt.engine.connection import is_single_pod, mesh_facts
from kubezt.engine.index import (
    ClassIndex,
    EndpointClass,
    Peer,
    build_classes,
    class_key,
    class_networks,
    iter_bits,
    policy_networks,
    workload_peer,
)
from kubezt.engine.l4 import Matcher, TierChain, chains, decide, tier_sort_key
from kubezt.engine.mesh import (
    HBONE_PORT,
    WAYPOINT_GATEWAY_LABEL,
    proxy_role,
    rule_matches_service,
)
from kubezt.engine.meshview import MeshView, any_istio_mutual
from kubezt.engine.partial import PartialCells
from kubezt.engine.reach import (
    SYNTHETIC_ANNOTATION,
    Reachability,
    chain_signature,
    l4_both,
    l4_sides,
    port_keys,
    synthetic_waypoint_pod,
    with_waypoint_pods,
)
from kubezt.engine.requests import ALL, NONE, RequestSet, Some
from kubezt.ir.mesh import (
    AuthorizationPolicy,
    DestinationRule,
    MeshPolicies,
    PeerAuthentication,
    Waypoint,
)
from kubezt.ir.model import Model
from kubezt.ir.policy import Direction, NetworkSet, Policy, PolicySet, Tier
from kubezt.ir.ports import PortKey, PortRange, Protocol
from kubezt.ir.topology import (
    Labels,
    MeshMode,
    Namespace,
    ProxyRole,
    Service,
    ServiceAccount,
    Topology,
    Workload,
)

Obj = (
    Workload
    | Namespace
    | ServiceAccount
    | Service
    | Policy
    | Tier
    | NetworkSet
    | PeerAuthentication
    | AuthorizationPolicy
    | DestinationRule
    | Waypoint
)
"""An object a change adds, replaces or deletes."""

ObjectKey = tuple[str, ...]
Key = tuple[str, str, int, str]
T = TypeVar("T")
_WAYPOINT_LABEL = re.compile(r"istio\.io/(ingress-)?use-waypoint")
"""A connection: (source id, destination id, port, protocol)."""


def object_key(obj: Obj) -> ObjectKey:
    """The identity of an object: two versions of one object share it."""
    match obj:
        case Workload():
            return ("Workload", obj.namespace, obj.name)
        case Namespace():
            return ("Namespace", obj.name)
        case ServiceAccount():
            return ("ServiceAccount", obj.namespace, obj.name)
        case Service():
            return ("Service", obj.namespace, obj.name)
        case Policy():
            return ("Policy", obj.dialect.value, obj.kind, obj.namespace or "", obj.name)
        case Tier():
            return ("Tier", obj.name)
        case NetworkSet():
            return ("NetworkSet", obj.namespace or "", obj.name)
        case PeerAuthentication():
            return ("PeerAuthentication", obj.namespace, obj.name)
        case AuthorizationPolicy():
            return ("AuthorizationPolicy", obj.namespace, obj.name)
        case DestinationRule():
            return ("DestinationRule", obj.namespace, obj.name)
        case Waypoint():
            return ("Waypoint", obj.namespace, obj.name)
    raise AssertionError(f"not an object kubezt tracks: {obj!r}")


@dataclass(frozen=True, slots=True)
class Change:
    """One object added or replaced (`new` set) or deleted (`new` None, `key` names it)."""

    key: ObjectKey
    new: Obj | None = None

    @classmethod
    def upsert(cls, obj: Obj) -> Change:
        return cls(object_key(obj), obj)

    @classmethod
    def delete(cls, obj: Obj) -> Change:
        return cls(object_key(obj), None)


def objects(model: Model) -> dict[ObjectKey, Obj]:
    """Every tracked object of a model by its key."""
    out: dict[ObjectKey, Obj] = {}
    items: list[Obj] = [
        *model.topology.namespaces.values(),
        *model.topology.service_accounts.values(),
        *model.topology.workloads,
        *model.topology.services,
        *model.policies.policies,
        *model.policies.tiers,
        *model.policies.network_sets,
        *model.mesh.peer_authentications,
        *model.mesh.authorization_policies,
        *model.mesh.destination_rules,
        *model.mesh.waypoints,
    ]
    for obj in items:
        out[object_key(obj)] = obj
    return out


def changes_between(old: Model, new: Model) -> list[Change]:
    """The changes that turn `old`'s objects into `new`'s (deletions first, then by key)."""
    a, b = objects(old), objects(new)
    out = [Change(k) for k in sorted(a.keys() - b.keys())]
    out += [Change(k, b[k]) for k in sorted(b.keys()) if k not in a or a[k] != b[k]]
    return out


def apply_change(
    model: Model, change: Change, old: Obj | None = None, *, absent: bool = False
) -> Model:
    """The model with the change made (objects keep their order; a new one goes last). `old`,
    when given, is the model's current object of that key (found by identity: faster);
    `absent`: the model has no object of that key (a new one is appended without a search)."""
    kind = change.key[0]
    if change.new is not None and object_key(change.new) != change.key:
        raise AssertionError(f"{change.key} names another object than {change.new!r}")

    def edit(items: Iterable[Obj]) -> tuple[Obj, ...]:
        if absent:
            return (*items, change.new) if change.new is not None else tuple(items)
        if old is not None:
            seq = tuple(items)
            try:
                at: int | None = list(map(id, seq)).index(id(old))
            except ValueError:
                at = None
            if at is not None:
                new = () if change.new is None else (change.new,)
                return seq[:at] + new + seq[at + 1 :]
        out: list[Obj] = []
        found = False
        for obj in items:
            if object_key(obj) == change.key:
                found = True
                if change.new is not None:
                    out.append(change.new)
            else:
                out.append(obj)
        if not found and change.new is not None:
            out.append(change.new)
        return tuple(out)

    t, p, m = model.topology, model.policies, model.mesh
    if kind == "Workload":
        t = t.replaced(workloads=_typed(edit(t.workloads), Workload))
    elif kind == "Namespace":
        namespaces = {n.name: n for n in _typed(edit(t.namespaces.values()), Namespace)}
        t = t.replaced(namespaces=namespaces)
    elif kind == "ServiceAccount":
        accounts = {
            (a.namespace, a.name): a
            for a in _typed(edit(t.service_accounts.values()), ServiceAccount)
        }
        t = t.replaced(service_accounts=accounts)
    elif kind == "Service":
        t = Topology(
            t.namespaces, t.service_accounts, t.workloads, _typed(edit(t.services), Service)
        )
    elif kind == "Policy":
        p = dataclasses.replace(p, policies=_typed(edit(p.policies), Policy))
    elif kind == "Tier":
        p = dataclasses.replace(p, tiers=_typed(edit(p.tiers), Tier))
    elif kind == "NetworkSet":
        p = dataclasses.replace(p, network_sets=_typed(edit(p.network_sets), NetworkSet))
    elif kind == "PeerAuthentication":
        m = _mesh(m, peer_authentications=_typed(edit(m.peer_authentications), PeerAuthentication))
    elif kind == "AuthorizationPolicy":
        m = _mesh(
            m, authorization_policies=_typed(edit(m.authorization_policies), AuthorizationPolicy)
        )
    elif kind == "DestinationRule":
        m = _mesh(m, destination_rules=_typed(edit(m.destination_rules), DestinationRule))
    elif kind == "Waypoint":
        m = _mesh(m, waypoints=_typed(edit(m.waypoints), Waypoint))
    else:
        raise AssertionError(f"unknown object kind {kind}")
    return Model(t, p, model.mesh_config, m)


def _typed(items: tuple[Obj, ...], cls: type[T]) -> tuple[T, ...]:
    # every item came from a field of type `cls`, or is the change's object, whose key (checked
    # above) names that kind
    return items  # type: ignore[return-value]


def _mesh(mesh: MeshPolicies, **fields: object) -> MeshPolicies:
    return mesh.replaced(**fields)


class Path(StrEnum):
    """How the state absorbed a change (reported for benchmarks and `watch`)."""

    L4 = "l4"
    MESH = "mesh"
    MEMBERSHIP = "membership"
    CLASSES = "classes"
    """New classes: a workload with labels no class had, or the classes of a namespace or
    service account whose labels moved."""
    REBUILD = "rebuild"
    NONE = "none"


class ConnectionChange(NamedTuple):
    """One connection whose verdict moved: what it was and what it is (`allowed` False: the
    connection is denied; else `requests`: `ALL`, or `Some` with the ones that pass). A
    tuple: a change that opens a namespace to every pod yields hundreds of thousands."""

    src: str
    dst: str
    port: int
    protocol: str
    was_allowed: bool
    was_requests: RequestSet
    allowed: bool
    requests: RequestSet

    @property
    def key(self) -> Key:
        return (self[0], self[1], self[2], self[3])


@dataclass(frozen=True, slots=True)
class Delta:
    """What one change did: the connections whose verdict moved, sorted."""

    change: Change
    path: Path
    connections: tuple[ConnectionChange, ...]

    @property
    def opened(self) -> tuple[ConnectionChange, ...]:
        return tuple(c for c in self.connections if c.allowed and not c.was_allowed)

    @property
    def closed(self) -> tuple[ConnectionChange, ...]:
        return tuple(c for c in self.connections if c.was_allowed and not c.allowed)


Rows = dict[Key, RequestSet]
ClassCells = dict[tuple[PortKey, int], tuple[int, tuple[tuple[int, Some], ...]]]
_BY_KEY = itemgetter(0, 1, 2, 3)


class IncrementalReach:
    """The reachability of a model, kept current as objects change (`apply`)."""

    _input: Model
    _objects: dict[ObjectKey, Obj]
    _grew: bool
    """Set by a change that added classes (reported as `Path.CLASSES`)."""

    def __init__(self, model: Model, port: int | None = None, cuts: PortCuts | None = None) -> None:
        self._port = port
        self._fixed_cuts = cuts
        """Port cuts given by the caller (kept across changes); else the model's own."""
        self._build(model)

    # public ----------------------------------------------------------------------------------
    @property
    def model(self) -> Model:
        return self._input

    def reachability(self) -> Reachability:
        """The current result, in the shape `engine.reach.evaluate` returns."""
        return Reachability(
            self._work,
            tuple(self._classes),
            dict(self._plan),
            {k: dict(v) for k, v in self._allowed.items()},
            self._partial.copy(),
            self._reported,
            input_model=self._input,
            cuts=self._cuts,
        )

    def apply(self, change: Change) -> Delta:
        """Make the change and return the connections whose verdict moved."""
        old_objects = self._objects
        before = old_objects.get(change.key)
        if before == change.new:
            return Delta(change, Path.NONE, ())
        new_model = apply_change(self._input, change, before, absent=before is None)
        kind = change.key[0]
        connections: list[ConnectionChange] | None = None
        path = Path.REBUILD
        if self._cuts is not None and self._cuts != self._next_cuts(change, before, new_model):
            pass  # the port cells change: rebuild
        elif kind == "Policy":
            connections = self._policy(before, change.new, new_model)
            path = Path.L4
        elif kind in ("PeerAuthentication", "AuthorizationPolicy"):
            connections = self._mesh_policy(before, change.new, new_model)
            path = Path.MESH
        elif kind == "Workload":
            connections = self._workload(before, change.new, new_model)
            path = Path.MEMBERSHIP
        elif kind in ("Namespace", "ServiceAccount"):
            connections = self._owner(before, change.new, new_model)
        elif kind == "Service":
            connections = self._service(before, change.new, new_model)
            path = Path.MESH
        elif kind == "DestinationRule":
            connections = self._destination_rule(before, change.new, new_model)
            path = Path.MESH
        elif kind == "Waypoint":
            connections = self._waypoint(before, change.new, new_model)
            path = Path.MESH
        if self._grew:
            path = Path.CLASSES
            self._grew = False
        if connections is None:
            path = Path.REBUILD
            old_rows = self._all_rows()
            self._build(new_model)
            connections = _compare(old_rows, self._all_rows())
        else:
            self._input = new_model
            if change.new is None:
                self._objects.pop(change.key, None)
            else:
                self._objects[change.key] = change.new
        connections.sort(key=_BY_KEY)
        return Delta(change, path, tuple(connections))

    # building --------------------------------------------------------------------------------
    def _cuts_of(self, model: Model) -> PortCuts | None:
        if self._port is not None:
            return None
        return self._fixed_cuts if self._fixed_cuts is not None else port_cuts(model)

    def _count_cuts(self, model: Model) -> None:
        """How many objects name each (protocol, port range) of the model's own port cuts
        (kept current by `_next_cuts`, so a change need not read every object again)."""
        self._cut_counts: dict[tuple[Protocol, PortRange], int] = {}
        if self._port is not None or self._fixed_cuts is not None:
            return
        t = model.topology
        for obj in (
            *model.policies.policies,
            *t.services,
            *model.mesh.authorization_policies,
            *model.mesh.peer_authentications,
            *model.mesh.destination_rules,
        ):
            self._tally(object_port_ranges(obj), 1)
        for w in t.workloads:
            self._tally(workload_port_ranges(w, t.namespace(w.namespace)), 1)
        self._tally([(MESH_PROTOCOLS, (PortRange(HBONE_PORT, HBONE_PORT),))], 1)
        assert self._cuts == self._counted_cuts()

    def _tally(self, contribution: PortContribution, step: int) -> bool:
        """Count an object's port ranges in (`step` 1) or out (-1); True when a range
        appeared or disappeared."""
        counts = self._cut_counts
        moved = False
        for protocols, ranges in contribution:
            for protocol in protocols:
                for r in ranges:
                    key = (protocol, r)
                    n = counts.get(key, 0) + step
                    if n:
                        counts[key] = n
                    else:
                        del counts[key]
                    moved |= n == 0 or n == step
        return moved

    def _counted_cuts(self) -> PortCuts:
        found: dict[Protocol, list[PortRange]] = {}
        for protocol, r in self._cut_counts:
            found.setdefault(protocol, []).append(r)
        return PortCuts.of(found)

    def _next_cuts(self, change: Change, before: Obj | None, model: Model) -> PortCuts | None:
        """The port cuts after the change (`model`: the objects after it): the counts of the
        changed object's ranges (or, for a namespace, its workloads') move, and the cuts are
        read again only when a range appeared or disappeared."""
        if self._port is not None or self._fixed_cuts is not None:
            return self._cuts_of(model)
        moved = False
        after = change.new
        if change.key[0] == "Namespace":
            name = change.key[1]
            old_ns = self._input.topology.namespace(name)
            new_ns = model.topology.namespace(name)
            for w in model.topology.workloads:
                if w.namespace == name:
                    moved |= self._tally(workload_port_ranges(w, old_ns), -1)
                    moved |= self._tally(workload_port_ranges(w, new_ns), 1)
        elif change.key[0] == "Workload":
            ns = model.topology.namespace(change.key[1])
            for obj, step in ((before, -1), (after, 1)):
                if isinstance(obj, Workload):
                    moved |= self._tally(workload_port_ranges(obj, ns), step)
        else:
            for obj, step in ((before, -1), (after, 1)):
                if obj is not None:
                    moved |= self._tally(object_port_ranges(obj), step)
        return self._counted_cuts() if moved else self._cuts

    def _build(self, model: Model) -> None:
        self._input = model
        self._cuts = self._cuts_of(model)
        self._count_cuts(model)
        self._objects = objects(model)
        work = with_waypoint_pods(model)
        self._work = work
        self._extra_nets = address_networks(model)
        self._nets = class_networks(work, self._extra_nets)
        self._net_set = set(self._nets)
        classes = build_classes(work, self._extra_nets)
        self._classes: list[EndpointClass] = list(classes)
        self._workloads: list[Workload] = list(work.topology.workloads)
        self._position = {w.id: i for i, w in enumerate(self._workloads)}
        self._class_of: dict[tuple[object, ...], int] = {}
        self._member_class: list[int] = [0] * len(self._workloads)
        for c in classes:
            self._class_of[class_key(c.peer, self._nets)] = c.index
            for wi in c.members:
                self._member_class[wi] = c.index
        self._index = ClassIndex([c.peer for c in classes], work.topology, work.policies)
        self._matcher = Matcher(self._index)
        self._reported = 0
        plan: dict[PortKey, int] = {}
        for c in classes:
            rep = self._workloads[c.members[0]]
            if SYNTHETIC_ANNOTATION not in rep.annotations:
                self._reported |= 1 << c.index
            for key in self._keys(c):
                plan[key] = plan.get(key, 0) | 1 << c.index
        self._plan = dict(sorted(plan.items()))
        mesh = MeshView(work, classes)
        self._mesh: MeshView | None = mesh if mesh.active else None
        self._l4_plan = dict(self._plan)
        self._users: int | None = None
        self._ghosts = 0
        self._grew = False
        """Classes left without members for good when their namespace's or service account's
        labels moved (a new class took their members); their cells are not kept current."""
        if self._mesh is not None:
            for c in classes:
                key = self._hbone_key(c.index)
                self._l4_plan[key] = self._l4_plan.get(key, 0) | 1 << c.index
        self._chains = {
            Direction.INGRESS: chains(self._matcher, Direction.INGRESS),
            Direction.EGRESS: chains(self._matcher, Direction.EGRESS),
        }
        # by the policy's id (hashing a policy is slow); the policy is kept, so the id stays
        self._selected: dict[int, tuple[Policy, int]] = {
            id(p): (p, self._matcher.selected_by(p)) for p in work.policies.policies
        }
        # the egress side by source too: key -> source class -> destinations its egress allows
        self._egress_rows: dict[PortKey, dict[int, int]] = {k: {} for k in self._l4_plan}
        self._ingress_ok, self._egress_ok = l4_sides(
            self._matcher, self._index, self._l4_plan, self._egress_rows
        )
        self._l4 = l4_both(self._ingress_ok, self._egress_ok, self._l4_plan)
        self._allowed: dict[PortKey, dict[int, int]] = {}
        self._partial = PartialCells()
        if self._mesh is None:
            for key, dsts in self._plan.items():
                self._allowed[key] = {
                    d: self._l4[key][d] for d in iter_bits(dsts) if self._l4[key].get(d)
                }
        else:
            self._allowed, self._partial = self._mesh.compose(self._plan, self._l4, self._reported)

    def _keys(self, c: EndpointClass) -> list[PortKey]:
        if self._port is not None:
            return [PortKey(self._port, Protocol.TCP, c.peer.port_name(self._port, Protocol.TCP))]
        assert self._cuts is not None
        return port_keys(c.peer, self._cuts)

    def _hbone_key(self, c: int) -> PortKey:
        return PortKey(
            HBONE_PORT, Protocol.TCP, self._classes[c].peer.port_name(HBONE_PORT, Protocol.TCP)
        )

    def _groups(self, direction: Direction, classes: int) -> list[tuple[int, int]]:
        """`classes` grouped by what `decide` reads of them: (representative, members)."""
        table = self._chains[direction]
        groups: dict[tuple[object, ...], tuple[int, int]] = {}
        for c in iter_bits(classes):
            sig = chain_signature(self._matcher, direction, c, table[c])
            rep, bits = groups.get(sig, (c, 0))
            groups[sig] = (rep, bits | 1 << c)
        return list(groups.values())

    def _refresh_ingress(self, classes: int) -> set[tuple[PortKey, int]]:
        """Recompute the ingress verdicts of destination classes `classes`; return the cells."""
        moved: set[tuple[PortKey, int]] = set()
        table = self._chains[Direction.INGRESS]
        everyone = self._index.all
        for rep, members in self._groups(Direction.INGRESS, classes):
            chain = table[rep]
            for key, dsts in self._l4_plan.items():
                targets = dsts & members
                if not targets:
                    continue
                sources = (
                    everyone
                    if chain.empty
                    else decide(self._matcher, chain, Direction.INGRESS, rep, key, everyone)
                )
                row = self._ingress_ok[key]
                for d in iter_bits(targets):
                    row[d] = sources
                    moved.add((key, d))
        return moved

    def _refresh_egress(self, classes: int) -> list[tuple[PortKey, int]]:
        """Recompute the egress verdicts of source classes `classes` towards every destination;
        return the (port, destination) cells whose source bits moved."""
        table = self._chains[Direction.EGRESS]
        moved: list[tuple[PortKey, int]] = []
        for rep, members in self._groups(Direction.EGRESS, classes):
            chain = table[rep]
            for key, dsts in self._l4_plan.items():
                reachable = (
                    dsts
                    if chain.empty
                    else decide(self._matcher, chain, Direction.EGRESS, rep, key, dsts)
                )
                rows = self._egress_rows[key]
                col = self._egress_ok[key]
                for s in iter_bits(members):
                    was = rows.get(s, 0)
                    if was == reachable:
                        continue
                    if reachable:
                        rows[s] = reachable
                    else:
                        rows.pop(s, None)
                    bit = 1 << s
                    for d in iter_bits(was & ~reachable):
                        col[d] &= ~bit
                        moved.append((key, d))
                    for d in iter_bits(reachable & ~was):
                        col[d] = col.get(d, 0) | bit
                        moved.append((key, d))
        return moved

    # rows ------------------------------------------------------------------------------------
    def _synthetic(self, wi: int) -> bool:
        return SYNTHETIC_ANNOTATION in self._workloads[wi].annotations

    def _all_rows(self) -> Rows:
        return {(s, d, p, proto): r for s, d, p, proto, r in self.reachability().detailed()}

    def _workload_rows(self, wi: int) -> Rows:
        """Every row from or to one workload."""
        rows: Rows = {}
        w = self._workloads[wi]
        if self._synthetic(wi):
            return rows
        c = self._member_class[wi]
        bit = 1 << c
        for key, per_dst in self._allowed.items():
            for d, srcs in per_dst.items():
                if d == c:
                    for s in iter_bits(srcs & self._reported):
                        requests = self._partial.get((key, d, s), ALL)
                        for wk in self._classes[s].members:
                            if wk == wi and is_single_pod(w):
                                continue
                            rows[(self._workloads[wk].id, w.id, key.port, key.protocol.value)] = (
                                requests
                            )
                if srcs & bit and self._reported & bit:
                    requests = self._partial.get((key, d, c), ALL)
                    for wj in self._classes[d].members:
                        if self._synthetic(wj) or (wj == wi and is_single_pod(w)):
                            continue
                        rows[(w.id, self._workloads[wj].id, key.port, key.protocol.value)] = (
                            requests
                        )
        if is_single_pod(w):
            for key, bits in self._plan.items():
                if bits & bit:
                    rows[(w.id, w.id, key.port, key.protocol.value)] = ALL
        return rows

    # L3/L4 policies --------------------------------------------------------------------------
    def _policy(
        self, before: Obj | None, after: Obj | None, model: Model
    ) -> list[ConnectionChange] | None:
        assert before is None or isinstance(before, Policy)
        assert after is None or isinstance(after, Policy)
        if (
            after is not None
            and not set(policy_networks(PolicySet(policies=(after,)))) <= self._net_set
        ):
            return None  # a CIDR no class boundary had: classes split
        if model.mesh_config.calico_alp and any(
            p is not None and any(r.http is not None for r in p.ingress) for p in (before, after)
        ):
            return None  # application layer policy: mesh decisions read it
        self._work = dataclasses.replace(self._work, policies=model.policies)
        self._index.policies = model.policies
        affected: dict[Direction, int] = {Direction.INGRESS: 0, Direction.EGRESS: 0}
        for policy in (before, after):
            if policy is None:
                continue
            bits = self._selected_by(policy)
            for direction in policy.types:
                affected[direction] |= bits
        if before is not None:
            self._selected.pop(id(before), None)
        for direction, bits in affected.items():
            if bits:
                self._rechain_one(direction, bits, before, after)
        moved = self._refresh_ingress(affected[Direction.INGRESS])
        moved.update(self._refresh_egress(affected[Direction.EGRESS]))
        return self._recompose_l4(moved)

    def _selected_by(self, policy: Policy) -> int:
        known = self._selected.get(id(policy))
        if known is not None and known[0] is policy:
            return known[1]
        bits = self._matcher.selected_by(policy)
        self._selected[id(policy)] = (policy, bits)
        return bits

    def _rechain(self, direction: Direction, classes: int) -> None:
        """Recompute the chains of `classes` in `direction` from the current policies."""
        policies = self._index.policies
        per_class: dict[int, list[Policy]] = {c: [] for c in iter_bits(classes)}
        for policy in policies.policies:
            if policy.staged or direction not in policy.types:
                continue
            hit = self._selected_by(policy) & classes
            for c in iter_bits(hit):
                per_class[c].append(policy)
        table = self._chains[direction]
        cache: dict[tuple[int, ...], TierChain] = {}
        for c, selected in per_class.items():
            table[c] = self._chain_of(selected, cache)

    def _chain_of(
        self, selected: list[Policy], cache: dict[tuple[int, ...], TierChain]
    ) -> TierChain:
        """The chain of the enforced policies `selected` (in input order), shared through
        `cache` by the classes with the same policies."""
        ident = tuple(id(p) for p in selected)
        chain = cache.get(ident)
        if chain is None:
            by_tier: dict[str, list[Policy]] = {}
            for p in selected:
                by_tier.setdefault(p.tier, []).append(p)
            policies = self._index.policies
            tiers = sorted((policies.tier(name) for name in by_tier), key=tier_sort_key)
            chain = TierChain(
                tuple(
                    (tier, tuple(sorted(by_tier[tier.name], key=lambda p: p.sort_key)))
                    for tier in tiers
                )
            )
            cache[ident] = chain
        return chain

    def _rechain_one(
        self, direction: Direction, classes: int, before: Policy | None, after: Policy | None
    ) -> None:
        """The chains of `classes` in `direction` after one policy changed from `before` to
        `after` (either None): each class's chain without `before`, with `after` when it
        selects the class. A chain is ordered by sort key, which tells policies apart unless
        two share their order, name, namespace and kind (then their input order decides, and
        every policy is read again: `_rechain`)."""
        joins = after is not None and not after.staged and direction in after.types
        joining = self._selected_by(after) if after is not None and joins else 0
        table = self._chains[direction]
        cache: dict[tuple[int, ...], TierChain] = {}
        chains: dict[int, TierChain] = {}
        for c in iter_bits(classes):
            selected = [p for p in table[c].policies if p is not before]
            if after is not None and joining >> c & 1:
                key = after.sort_key
                if any(p.sort_key == key for p in selected):
                    self._rechain(direction, classes)
                    return
                selected.append(after)
            chains[c] = self._chain_of(selected, cache)
        for c, chain in chains.items():
            table[c] = chain

    def _recompose_l4(self, moved: set[tuple[PortKey, int]]) -> list[ConnectionChange]:
        """Recompute the L3/L4 cells in `moved`, then the final cells that read them."""
        waypoints = self._waypoint_bits()
        changed_cells: set[tuple[PortKey, int]] = set()
        everything = False
        for key, d in moved:
            now = self._ingress_ok[key].get(d, 0) & self._egress_ok[key].get(d, 0)
            row = self._l4[key]
            was = row.get(d, 0)
            if was == now:
                continue
            if now:
                row[d] = now
            else:
                row.pop(d, None)
            changed_cells.add((key, d))
            if waypoints and (waypoints >> d & 1 or (was ^ now) & waypoints):
                everything = True  # a waypoint's legs feed every path through it
        if not changed_cells:
            return []
        cells: set[tuple[PortKey, int]] = set()
        if everything:
            users = self._waypoint_users()
            cells = {(k, d) for k, bits in self._plan.items() for d in iter_bits(bits & users)}
        for key, d in changed_cells:
            if self._mesh is not None and key == self._hbone_key(d):
                for pkey, bits in self._plan.items():
                    if bits >> d & 1:
                        cells.add((pkey, d))
            elif self._plan.get(key, 0) >> d & 1:
                cells.add((key, d))
        if self._mesh is not None:
            self._mesh.refresh_waypoint_sources(self._l4)
        out: list[ConnectionChange] = []
        for key, d in sorted(cells):
            out.extend(self._recompute_cell(key, d))
        return out

    def _recompute_cell(self, key: PortKey, d: int) -> list[ConnectionChange]:
        """Recompose one final cell and return the connections it changed."""
        old_bits = self._allowed.get(key, {}).get(d, 0)
        old_partial = self._partial.pop_cell(key, d)
        if self._mesh is None:
            bits = self._l4[key].get(d, 0)
        else:
            bits = self._mesh.compose_cell(key, d, self._l4, self._partial)
        per_dst = self._allowed.setdefault(key, {})
        if bits:
            per_dst[d] = bits
        else:
            per_dst.pop(d, None)
        # only the sources whose verdict moved have rows that moved
        moved = old_bits ^ bits
        kept = old_bits & bits
        for s in old_partial:
            if kept >> s & 1 and self._partial.get((key, d, s)) != old_partial[s]:
                moved |= 1 << s
        if kept and self._partial.cell(key, d):
            for s in iter_bits(kept):
                if s not in old_partial and (key, d, s) in self._partial:
                    moved |= 1 << s
        moved &= self._reported
        if not moved:
            return []
        verdicts: list[tuple[int, bool, RequestSet, bool, RequestSet]] = []
        for s in iter_bits(moved):
            was = bool(old_bits >> s & 1)
            now = bool(bits >> s & 1)
            was_requests = old_partial.get(s, ALL) if was else NONE
            requests = self._partial.get((key, d, s), ALL) if now else NONE
            verdicts.append((s, was, was_requests, now, requests))
        return self._cell_changes(key, d, verdicts)

    def _cell_changes(
        self,
        key: PortKey,
        d: int,
        verdicts: Iterable[tuple[int, bool, RequestSet, bool, RequestSet]],
    ) -> list[ConnectionChange]:
        """The connections of class cell (`key`, `d`) whose verdict moved: `verdicts` gives,
        per source class, whether it was allowed and with which requests, and now; each moved
        source class's workloads move alike towards the destination's."""
        out: list[ConnectionChange] = []
        workloads = self._workloads
        dst_members = [
            (wj, workloads[wj].id) for wj in self._classes[d].members if not self._synthetic(wj)
        ]
        port, protocol = key.port, key.protocol.value
        for s, was, was_requests, now, requests in verdicts:
            if was == now and was_requests == requests:
                continue
            for wi in self._classes[s].members:
                src = workloads[wi]
                single = is_single_pod(src)
                sid = src.id
                out.extend(
                    ConnectionChange(sid, did, port, protocol, was, was_requests, now, requests)
                    for wj, did in dst_members
                    if wi != wj or not single
                )
        return out

    def _class_cells(self, classes: int) -> ClassCells:
        """The final cells from or to `classes`, at class level: (port, destination) -> (the
        allowed sources among `classes`, or all of them when the destination is one of
        `classes`; the cell's partial groups)."""
        out: ClassCells = {}
        partial = self._partial
        for key, per_dst in self._allowed.items():
            for d, srcs in per_dst.items():
                sources = srcs if classes >> d & 1 else srcs & classes
                if sources:
                    out[(key, d)] = (sources, partial.cell(key, d))
        return out

    def _moved_changes(
        self, old: ClassCells, old_live: int, new: ClassCells, new_live: int, moves: dict[int, int]
    ) -> list[ConnectionChange]:
        """The connections whose verdict moved when the workloads of each class `c` of `moves`
        moved to class `moves[c]`: `old` (over the classes left, whose sources `old_live`
        could have rows) and `new` (over the classes taken, `new_live`) compared class cell by
        class cell, the old one read under the new classes' indexes."""
        left = 0
        for c in moves:
            left |= 1 << c

        def under_new(bits: int) -> int:
            out = bits & ~left
            for c in iter_bits(bits & left):
                n = moves.get(c)
                if n is not None:
                    out |= 1 << n
            return out

        before: dict[tuple[PortKey, int], tuple[int, dict[int, RequestSet]]] = {}
        for (key, d), (sources, groups) in old.items():
            if left >> d & 1:
                if d not in moves:
                    continue
                d = moves[d]
            requests: dict[int, RequestSet] = {}
            for members, some in groups:
                for s in iter_bits(members & sources & old_live):
                    requests[under_new(1 << s).bit_length() - 1] = some
            before[(key, d)] = (under_new(sources & old_live), requests)
        out: list[ConnectionChange] = []
        none: dict[int, RequestSet] = {}
        for cell in before.keys() | new.keys():
            key, d = cell
            was_bits, was_partial = before.get(cell, (0, none))
            now_bits, groups = new.get(cell, (0, ()))
            now_bits &= new_live
            now_partial: dict[int, RequestSet] = {}
            for members, some in groups:
                for s in iter_bits(members & now_bits):
                    now_partial[s] = some
            if was_bits == now_bits and was_partial == now_partial:
                continue
            verdicts = [
                (
                    s,
                    bool(was_bits >> s & 1),
                    was_partial.get(s, ALL) if was_bits >> s & 1 else NONE,
                    bool(now_bits >> s & 1),
                    now_partial.get(s, ALL) if now_bits >> s & 1 else NONE,
                )
                for s in iter_bits(was_bits | now_bits)
            ]
            out.extend(self._cell_changes(key, d, verdicts))
        return out

    # mesh policies ---------------------------------------------------------------------------
    def _mesh_policy(
        self, before: Obj | None, after: Obj | None, model: Model
    ) -> list[ConnectionChange] | None:
        if self._mesh is None:
            return None
        named = tuple(p for p in (before, after) if isinstance(p, AuthorizationPolicy))
        if authz_networks(named) and address_networks(model) != self._extra_nets:
            return None  # ipBlocks split classes
        root = model.mesh_config.root_namespace
        affected = 0
        for policy in (before, after):
            if policy is None:
                continue
            assert isinstance(policy, PeerAuthentication | AuthorizationPolicy)
            if policy.namespace == root or (
                isinstance(policy, AuthorizationPolicy) and policy.target_refs
            ):
                affected = self._index.all
                break
            members = self._index.in_namespace(policy.namespace) | self._hosts_in(policy.namespace)
            selector = policy.selector
            if selector:
                members = self._classes_matching_labels(selector, members)
            affected |= members
        if affected & self._waypoint_bits():
            affected |= self._waypoint_users()
        self._work = dataclasses.replace(self._work, mesh=model.mesh)
        self._mesh.model = self._work
        return self._refresh_mesh(affected)

    def _refresh_mesh(self, affected: int) -> list[ConnectionChange]:
        """Forget the mesh decisions and paths towards `affected` destination classes and
        recompose their cells."""
        assert self._mesh is not None
        affected &= ~self._ghosts
        mesh = self._mesh
        mesh._decisions = {k: v for k, v in mesh._decisions.items() if not affected >> k[1] & 1}  # type: ignore[operator]
        mesh._paths.clear()
        out: list[ConnectionChange] = []
        for key, bits in self._plan.items():
            for d in iter_bits(bits & affected):
                out.extend(self._recompute_cell(key, d))
        return out

    # destination rules -----------------------------------------------------------------------
    def _destination_rule(
        self, before: Obj | None, after: Obj | None, model: Model
    ) -> list[ConnectionChange] | None:
        """A DestinationRule added, edited or deleted: a client reads a rule only when it
        addresses a Service the rule's host names (`destination_rule_tls`), so the mesh cells
        of the destinations those Services select, before or after, are recomposed. When
        whether any rule asks for Istio mTLS flips, clients outside the mesh may originate it
        towards any destination: every destination is recomposed (the state is rebuilt when
        the mesh view turns on or off with it)."""
        rules = [r for r in (before, after) if isinstance(r, DestinationRule)]
        mutual = any_istio_mutual(model.mesh.destination_rules)
        work = dataclasses.replace(self._work, mesh=model.mesh)
        if self._mesh is None:
            if mutual:
                return None  # the mesh view turns on
            self._work = work  # no workload in the mesh: no client reads a rule
            return []
        mesh = self._mesh
        live = self._index.all & ~self._ghosts
        if mutual != mesh.istio_mutual:
            if not mutual and all(
                mesh.modes[c] is MeshMode.NONE and mesh.roles[c] is ProxyRole.NONE
                for c in iter_bits(live)
            ):
                return None  # the mesh view turns off
            affected = live
        else:
            affected = 0
            for c in iter_bits(live):
                if any(rule_matches_service(r, svc) for svc in mesh.services[c] for r in rules):
                    affected |= 1 << c
        if affected & self._waypoint_bits():
            affected |= self._waypoint_users()
        self._work = work
        mesh.model = work
        mesh.refresh_destination_rules()
        return self._refresh_mesh(affected)

    # waypoints -------------------------------------------------------------------------------
    def _waypoint(
        self, before: Obj | None, after: Obj | None, model: Model
    ) -> list[ConnectionChange] | None:
        """A waypoint Gateway added, edited or deleted: its pod (the one Istio would create)
        joins as a class of its own, or leaves (its class stays behind empty, a ghost), and
        the mesh cells of the destinations whose traffic may pass a waypoint (`_waypoint_users`,
        before and after) are recomposed. The state is rebuilt when the mesh is off, or when
        the input has the Gateway's pod (its proxy role moves with the Gateway)."""
        if self._mesh is None:
            return None
        gateway = after if after is not None else before
        assert isinstance(gateway, Waypoint)
        name, namespace = gateway.name, gateway.namespace
        pods = [
            wi
            for wi, w in enumerate(self._workloads)
            if w.namespace == namespace and w.labels.get(WAYPOINT_GATEWAY_LABEL) == name
        ]
        if any(not self._synthetic(wi) for wi in pods):
            return None
        mesh = self._mesh
        affected = self._waypoint_users()
        self._work = dataclasses.replace(self._work, mesh=model.mesh)
        mesh.model = self._work
        moved: list[ConnectionChange] = []
        if before is None and after is not None and not pods:
            pod = synthetic_waypoint_pod(model, gateway)
            peer = workload_peer(pod, model.topology)
            if class_key(peer, self._nets) in self._class_of:
                return None  # a class of the same peer: not one of the pod's own
            target, moved = self._add_classes([(peer, pod)])
            self._join(pod, target)
        elif after is None and pods:
            (wi,) = pods
            c = self._member_class[wi]
            self._remove(wi)
            if self._classes[c].members:
                return None
            key = class_key(self._classes[c].peer, self._nets)
            if self._class_of.get(key) == c:
                del self._class_of[key]
            self._ghosts |= 1 << c
            mesh.by_name = {k: v for k, v in mesh.by_name.items() if v != c}
        topology = model.topology.replaced(workloads=tuple(self._workloads))
        self._work = dataclasses.replace(self._work, topology=topology)
        self._index.topology = topology
        mesh.model = self._work
        mesh.refresh_waypoint_sources(self._l4)
        self._users = None
        affected |= self._waypoint_users()
        return net_changes(moved + self._refresh_mesh(affected))

    # services --------------------------------------------------------------------------------
    def _service(
        self, before: Obj | None, after: Obj | None, model: Model
    ) -> list[ConnectionChange] | None:
        """A Service added, edited or deleted: L3/L4 reads Services only through Calico rules
        that name one (then the state is rebuilt); the mesh reads the Services that select a
        destination (its routes, its ports' protocols, the waypoint it names), so the
        destinations it selects before or after are recomposed."""
        services = [svc for svc in (before, after) if isinstance(svc, Service)]
        assert len(services) == (before is not None) + (after is not None)
        names = {(svc.namespace, svc.name) for svc in services}
        for policy in model.policies.policies:
            for rule in (*policy.ingress, *policy.egress):
                if rule.source.services in names or rule.destination.services in names:
                    return None
        t = model.topology
        topology = t.replaced(workloads=tuple(self._workloads))
        self._work = dataclasses.replace(self._work, topology=topology)
        self._index.topology = topology
        if self._mesh is None:
            return []
        mesh = self._mesh
        namespace = services[0].namespace
        among = (self._index.in_namespace(namespace) | self._hosts_in(namespace)) & ~self._ghosts
        affected = 0
        for c in iter_bits(among):
            if any(svc.selects(mesh.reps[c]) for svc in services):
                affected |= 1 << c
        waypoint_label = any(_WAYPOINT_LABEL.match(k) for svc in services for k in svc.labels)
        if waypoint_label or affected & self._waypoint_users():
            affected |= self._waypoint_users()
            self._users = None
            affected |= self._waypoint_users()
        for c in iter_bits(affected):
            mesh.services[c] = topology.services_selecting(mesh.reps[c])
        mesh.model = self._work
        mesh.refresh_services()
        return self._refresh_mesh(affected)

    def _hosts_in(self, namespace: str) -> int:
        bits = 0
        for c in iter_bits(self._index.all & ~self._index.endpoints):
            if self._classes[c].peer.namespace == namespace:
                bits |= 1 << c
        return bits

    def _classes_matching_labels(self, selector: Labels, among: int) -> int:
        """The classes of `among` whose workloads' labels `selector` matches (read from the
        representative the mesh view keeps, so a class whose pods are gone stays current)."""
        assert self._mesh is not None
        bits = 0
        for c in iter_bits(among):
            if selector.matches(self._mesh.reps[c].labels):
                bits |= 1 << c
        return bits

    def _waypoint_users(self) -> int:
        """Classes whose traffic may pass a waypoint (the waypoints, and every class that it,
        its namespace or a Service selecting it labels with `istio.io/use-waypoint*` or
        `istio.io/ingress-use-waypoint`): the destinations a waypoint's verdicts reach."""
        if self._users is None:
            assert self._mesh is not None
            bits = self._waypoint_bits()
            topology = self._work.topology
            for c in self._classes:
                rep = self._mesh.reps[c.index]
                label_sets = [
                    rep.labels,
                    topology.namespace(rep.namespace).labels,
                    *(svc.labels for svc in self._mesh.services[c.index]),
                ]
                if any(_WAYPOINT_LABEL.match(k) for labels in label_sets for k in labels):
                    bits |= 1 << c.index
            self._users = bits
        return self._users

    def _waypoint_bits(self) -> int:
        bits = 0
        if self._mesh is not None:
            for w in self._mesh.by_name.values():
                bits |= 1 << w
        return bits

    # workloads -------------------------------------------------------------------------------
    def _workload(
        self, before: Obj | None, after: Obj | None, model: Model
    ) -> list[ConnectionChange] | None:
        assert before is None or isinstance(before, Workload)
        assert after is None or isinstance(after, Workload)
        for w in (before, after):
            if w is not None and (
                proxy_role(w, model.mesh) is not ProxyRole.NONE
                or WAYPOINT_GATEWAY_LABEL in w.labels
            ):
                return None
        target: int | None = None
        if after is not None:
            peer = workload_peer(after, model.topology)
            target = self._class_of.get(class_key(peer, self._nets))
            if not set(outbound_networks((after,))) <= self._net_set:
                return None  # a capture range no class boundary had: classes split
            if target is None:
                if self._mesh is None:
                    facts = mesh_facts(self._work, after)
                    if facts.mode is not MeshMode.NONE or facts.role is not ProxyRole.NONE:
                        return None  # the first workload in the mesh: every path moves
            else:
                known = self._index.peers[target]
                if (known.namespace_labels, known.service_account_labels) != (
                    peer.namespace_labels,
                    peer.service_account_labels,
                ):
                    return None  # the namespace or service account changed under it
        old_rows: Rows = {}
        moved: list[ConnectionChange] = []
        if before is not None:
            wi = self._position[before.id]
            old_rows = self._workload_rows(wi)
            self._remove(wi)
        new_rows: Rows = {}
        if after is not None:
            if target is None:
                target, moved = self._add_classes([(peer, after)])
            new_rows = self._workload_rows(self._join(after, target))
        topology = model.topology.replaced(workloads=tuple(self._workloads))
        self._work = dataclasses.replace(self._work, topology=topology)
        if self._mesh is not None:
            self._mesh.model = self._work
        return moved + _compare(old_rows, new_rows)

    # namespaces and service accounts ---------------------------------------------------------
    def _owner(
        self, before: Obj | None, after: Obj | None, model: Model
    ) -> list[ConnectionChange] | None:
        """New labels on a namespace or service account: the classes of its workloads get new
        peers, so new classes take their members (the old ones stay behind, empty, as
        ghosts). Every verdict between two other classes stays: a selector's match is a
        property of each peer alone, and a peer sees its own namespace's and service
        account's labels only."""
        if before is None or after is None:
            return None
        t = model.topology
        if isinstance(after, Namespace):
            if any(ns.namespace == after.name for ns in model.policies.network_sets):
                return None  # its network sets: addresses of any class match through its labels
            hit = self._index.in_namespace(after.name) | self._hosts_in(after.name)
        else:
            assert isinstance(after, ServiceAccount)
            hit = self._index.by_service_account(after.namespace, after.name)
        hit &= ~self._ghosts
        ghosts = (self._ghosts | hit).bit_count()
        if ghosts > 64 and ghosts > len(self._classes) - ghosts:
            return None  # mostly ghosts: start over
        topology = t.replaced(workloads=tuple(self._workloads))
        work = dataclasses.replace(self._work, topology=topology)
        specs: list[tuple[Peer, Workload]] = []
        moving: list[int] = []
        waypoints = self._waypoint_bits()
        for c in iter_bits(hit):
            members = self._classes[c].members
            if waypoints >> c & 1 or any(self._synthetic(wi) for wi in members):
                return None
            if members:
                rep = self._workloads[members[0]]
                specs.append((workload_peer(rep, topology), rep))
                moving.append(c)
        if not self._mesh_stays([rep for _, rep in specs], work):
            return None
        old_cells = self._class_cells(hit)
        old_live = self._reported & ~self._ghosts
        for c in iter_bits(hit):
            key = class_key(self._classes[c].peer, self._nets)
            if self._class_of.get(key) == c:
                del self._class_of[key]
        self._ghosts |= hit
        self._work = work
        self._index.topology = topology
        if self._mesh is not None:
            self._mesh.model = work
        moved: list[ConnectionChange] = []
        self._grew = True
        if not specs:
            return moved
        first, moved = self._add_classes(specs, hit)
        new_bits = 0
        moves: dict[int, int] = {}
        for i, c in enumerate(moving):
            n = moves[c] = first + i
            new_bits |= 1 << n
            old = self._classes[c]
            self._classes[n] = EndpointClass(n, self._classes[n].peer, old.members)
            self._classes[c] = EndpointClass(c, old.peer, ())
            for wi in old.members:
                self._member_class[wi] = n
        new_cells = self._class_cells(new_bits)
        new_live = self._reported & ~self._ghosts
        return moved + self._moved_changes(old_cells, old_live, new_cells, new_live, moves)

    def _mesh_stays(self, joining: list[Workload], work: Model) -> bool:
        """False when the mesh is off and one of `joining` (under `work`) would turn it on:
        the state has no mesh view to extend."""
        if self._mesh is not None:
            return True
        facts = [mesh_facts(work, w) for w in joining]
        return all(f.mode is MeshMode.NONE and f.role is ProxyRole.NONE for f in facts)

    def _add_classes(
        self, specs: list[tuple[Peer, Workload]], replacing: int = 0
    ) -> tuple[int, list[ConnectionChange]]:
        """New classes, one per (peer, workload to represent it), without members yet: their
        policies, their rows and columns of the L3/L4 matrix and their final cells. Returns the
        first new index. Classes without members change no other class's verdicts, so the
        connections returned are none unless the state was wrong. `replacing`: classes this
        change just left behind (their verdicts are still current, so a new class may copy
        them)."""
        self._grew = True
        first = self._matcher.add_peers([peer for peer, _ in specs])
        new_bits = 0
        keys_of: dict[int, list[PortKey]] = {}
        for i, (peer, rep) in enumerate(specs):
            n = first + i
            bit = 1 << n
            new_bits |= bit
            cls = EndpointClass(n, peer, ())
            self._classes.append(cls)
            self._class_of[class_key(peer, self._nets)] = n
            if SYNTHETIC_ANNOTATION not in rep.annotations:
                self._reported |= bit
            keys = self._keys(cls)
            for key in keys:
                if key not in self._plan:
                    self._allowed[key] = {}
                self._plan[key] = self._plan.get(key, 0) | bit
            if self._mesh is not None:
                self._mesh.add_class(cls, rep)
                keys.append(self._hbone_key(n))
            for key in keys:
                self._l4_plan[key] = self._l4_plan.get(key, 0) | bit
                for table in (self._ingress_ok, self._egress_ok, self._egress_rows, self._l4):
                    table.setdefault(key, {})
            keys_of[n] = keys
        self._plan = dict(sorted(self._plan.items()))
        if self._mesh is not None:
            self._mesh.rebuild_sets()
        self._users = None
        # the policies that may select them: namespaced ones of their namespaces, cluster-wide
        namespaces = {peer.namespace for peer, _ in specs}
        for pid, (policy, _) in list(self._selected.items()):
            if policy.namespace is None or policy.namespace in namespaces:
                self._selected[pid] = (policy, self._matcher.selected_by(policy))
        for direction in (Direction.INGRESS, Direction.EGRESS):
            self._chains[direction].extend(TierChain(()) for _ in specs)
            self._rechain(direction, new_bits)
        moved = self._refresh_ingress(new_bits)
        moved.update(self._refresh_egress(new_bits))
        self._as_peers(new_bits, keys_of, replacing)
        for key, rows in self._egress_rows.items():
            for n in keys_of:
                for d in iter_bits(rows.get(n, 0)):
                    moved.add((key, d))
        return first, self._recompose_l4(moved)

    def _as_peers(self, new_bits: int, keys_of: dict[int, list[PortKey]], replacing: int) -> None:
        """The verdicts of the other classes' policies on the new classes `new_bits` (`keys_of`:
        their ports): copied from a class no rule side tells apart from one when there is
        one (a live class, or one of `replacing`, whose verdicts are still current: when a
        namespace's labels move and no selector reads the labels that moved, the class its
        workloads leave), else decided for the new classes together, once per group of
        classes that share a chain."""
        old = self._index.all & ~new_bits & ~self._ghosts
        candidates = old | replacing
        copy_in: list[tuple[int, int]] = []  # (new class, its twin)
        copy_out: list[tuple[int, int]] = []
        decide_in = decide_out = 0
        for n in keys_of:
            twins = self._matcher.twins(n, candidates)
            if twins:
                copy_in.append((n, (twins & -twins).bit_length() - 1))
            else:
                decide_in |= 1 << n
            ports = self._classes[n].peer.ports
            twin = next((c for c in iter_bits(twins) if self._classes[c].peer.ports == ports), None)
            if twin is None:
                decide_out |= 1 << n
            else:
                copy_out.append((n, twin))
        if copy_in:
            # rows share their source sets (a chain's verdict, or everyone): each distinct one
            # is extended once
            extended: dict[int, int] = {}
            for row in self._ingress_ok.values():
                for d, srcs in row.items():
                    if new_bits >> d & 1:
                        continue
                    wider = extended.get(srcs)
                    if wider is None:
                        wider = srcs
                        for n, e in copy_in:
                            if srcs >> e & 1:
                                wider |= 1 << n
                        extended[srcs] = wider
                    row[d] = wider
        if decide_in:
            table = self._chains[Direction.INGRESS]
            for rep, members in self._groups(Direction.INGRESS, old):
                chain = table[rep]
                for key, dsts in self._l4_plan.items():
                    targets = dsts & members
                    if not targets:
                        continue
                    ok = (
                        decide_in
                        if chain.empty
                        else decide(self._matcher, chain, Direction.INGRESS, rep, key, decide_in)
                    )
                    if ok:
                        row = self._ingress_ok[key]
                        for d in iter_bits(targets):
                            row[d] |= ok
        for n, twin in copy_out:
            for key in keys_of[n]:
                self._grant_egress(key, n, self._egress_ok[key].get(twin, 0) & old)
        if decide_out:
            table = self._chains[Direction.EGRESS]
            wanted: dict[PortKey, int] = {}
            for n in iter_bits(decide_out):
                for key in keys_of[n]:
                    wanted[key] = wanted.get(key, 0) | 1 << n
            for rep, members in self._groups(Direction.EGRESS, old):
                chain = table[rep]
                for key, dsts in wanted.items():
                    ok = (
                        dsts
                        if chain.empty
                        else decide(self._matcher, chain, Direction.EGRESS, rep, key, dsts)
                    )
                    for d in iter_bits(ok):
                        self._grant_egress(key, d, members)

    def _grant_egress(self, key: PortKey, d: int, sources: int) -> None:
        if not sources:
            return
        col = self._egress_ok[key]
        col[d] = col.get(d, 0) | sources
        rows = self._egress_rows[key]
        bit = 1 << d
        for s in iter_bits(sources):
            rows[s] = rows.get(s, 0) | bit

    def _join(self, workload: Workload, target: int) -> int:
        """Add `workload` as the last workload, a member of class `target`; its index."""
        wi = len(self._workloads)
        self._workloads.append(workload)
        self._member_class.append(target)
        self._position[workload.id] = wi
        c = self._classes[target]
        self._classes[target] = EndpointClass(c.index, c.peer, (*c.members, wi))
        return wi

    def _remove(self, wi: int) -> None:
        """Take workload `wi` out (the last workload moves into its slot)."""
        last = len(self._workloads) - 1
        c = self._member_class[wi]
        cls = self._classes[c]
        self._classes[c] = EndpointClass(
            cls.index, cls.peer, tuple(m for m in cls.members if m != wi)
        )
        gone = self._workloads[wi]
        del self._position[gone.id]
        if wi != last:
            moved = self._workloads[last]
            mc = self._member_class[last]
            mcls = self._classes[mc]
            self._classes[mc] = EndpointClass(
                mcls.index, mcls.peer, tuple(wi if m == last else m for m in mcls.members)
            )
            self._workloads[wi] = moved
            self._member_class[wi] = mc
            self._position[moved.id] = wi
        self._workloads.pop()
        self._member_class.pop()


def net_changes(changes: Iterable[ConnectionChange]) -> list[ConnectionChange]:
    """Connection changes made in a row as one, sorted: per connection, what it was first and
    what it is last; one that came back to where it was is left out."""
    first: dict[Key, ConnectionChange] = {}
    last: dict[Key, ConnectionChange] = {}
    for c in changes:
        key = c.key
        first.setdefault(key, c)
        last[key] = c
    out: list[ConnectionChange] = []
    for key, a in first.items():
        b = last[key]
        if (a.was_allowed, a.was_requests) != (b.allowed, b.requests):
            out.append(b._replace(was_allowed=a.was_allowed, was_requests=a.was_requests))
    out.sort(key=_BY_KEY)
    return out


def _compare(old: Rows, new: Rows) -> list[ConnectionChange]:
    out: list[ConnectionChange] = []
    for key in old.keys() | new.keys():
        was = key in old
        now = key in new
        if was and now and old[key] == new[key]:
            continue
        out.append(
            ConnectionChange(
                key[0],
                key[1],
                key[2],
                key[3],
                was,
                old.get(key, NONE),
                now,
                new.get(key, NONE),
            )
        )
    return out


def rows_of(reach: Reachability) -> Iterator[tuple[Key, RequestSet]]:
    """Every allowed connection of a result with its requests (for comparisons)."""
    for s, d, p, proto, r in reach.detailed():
        yield (s, d, p, proto), r
