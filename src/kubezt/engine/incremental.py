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
* anything else (a namespace's or service account's labels, a Service, a DestinationRule, a
  waypoint, a tier, a network set, a pod that forms a new class, a policy naming a CIDR no
  class boundary had): the class structure itself moves, so the state is rebuilt.

Whatever the path, the state after any sequence of changes equals a full evaluation of the
final objects (the property tests prove it); a rebuild only costs time. Pure: no I/O.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

from kubezt.engine.authz import authz_networks
from kubezt.engine.cells import PortCuts, port_cuts
from kubezt.engine.connection import is_single_pod
from kubezt.engine.index import (
    ClassIndex,
    EndpointClass,
    build_classes,
    class_key,
    class_networks,
    iter_bits,
    policy_networks,
    workload_peer,
)
from kubezt.engine.l4 import Matcher, TierChain, chains, decide, tier_sort_key
from kubezt.engine.mesh import HBONE_PORT, WAYPOINT_GATEWAY_LABEL, proxy_role
from kubezt.engine.meshview import MeshView
from kubezt.engine.reach import (
    SYNTHETIC_ANNOTATION,
    Reachability,
    l4_both,
    l4_sides,
    port_keys,
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
from kubezt.ir.ports import PortKey, Protocol
from kubezt.ir.topology import (
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


def apply_change(model: Model, change: Change) -> Model:
    """The model with the change made (objects keep their order; a new one goes last)."""
    kind = change.key[0]

    def edit(items: Iterable[Obj]) -> tuple[Obj, ...]:
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
        t = Topology(
            t.namespaces, t.service_accounts, _typed(edit(t.workloads), Workload), t.services
        )
    elif kind == "Namespace":
        namespaces = {n.name: n for n in _typed(edit(t.namespaces.values()), Namespace)}
        t = Topology(namespaces, t.service_accounts, t.workloads, t.services)
    elif kind == "ServiceAccount":
        accounts = {
            (a.namespace, a.name): a
            for a in _typed(edit(t.service_accounts.values()), ServiceAccount)
        }
        t = Topology(t.namespaces, accounts, t.workloads, t.services)
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
    out: list[T] = []
    for obj in items:
        assert isinstance(obj, cls)
        out.append(obj)
    return tuple(out)


def _mesh(mesh: MeshPolicies, **fields: object) -> MeshPolicies:
    return dataclasses.replace(mesh, **fields)  # type: ignore[arg-type]


class Path(StrEnum):
    """How the state absorbed a change (reported for benchmarks and `watch`)."""

    L4 = "l4"
    MESH = "mesh"
    MEMBERSHIP = "membership"
    REBUILD = "rebuild"
    NONE = "none"


@dataclass(frozen=True, slots=True)
class ConnectionChange:
    """One connection whose verdict moved: what it was and what it is (`allowed` False: the
    connection is denied; else `requests`: `ALL`, or `Some` with the ones that pass)."""

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
        return (self.src, self.dst, self.port, self.protocol)


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


class IncrementalReach:
    """The reachability of a model, kept current as objects change (`apply`)."""

    _input: Model
    _objects: dict[ObjectKey, Obj]

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
            dict(self._partial),
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
        new_model = apply_change(self._input, change)
        kind = change.key[0]
        connections: list[ConnectionChange] | None = None
        path = Path.REBUILD
        if self._cuts is not None and self._cuts != self._cuts_of(new_model):
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
        connections.sort(key=lambda c: c.key)
        return Delta(change, path, tuple(connections))

    # building --------------------------------------------------------------------------------
    def _cuts_of(self, model: Model) -> PortCuts | None:
        if self._port is not None:
            return None
        return self._fixed_cuts if self._fixed_cuts is not None else port_cuts(model)

    def _build(self, model: Model) -> None:
        self._input = model
        self._cuts = self._cuts_of(model)
        self._objects = objects(model)
        work = with_waypoint_pods(model)
        self._work = work
        self._extra_nets = authz_networks(model.mesh.authorization_policies)
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
        if self._mesh is not None:
            for c in classes:
                key = self._hbone_key(c.index)
                self._l4_plan[key] = self._l4_plan.get(key, 0) | 1 << c.index
        self._chains = {
            Direction.INGRESS: chains(self._matcher, Direction.INGRESS),
            Direction.EGRESS: chains(self._matcher, Direction.EGRESS),
        }
        self._selected: dict[Policy, int] = {
            p: self._matcher.selected_by(p) for p in work.policies.policies
        }
        self._ingress_ok, self._egress_ok = l4_sides(self._matcher, self._index, self._l4_plan)
        self._l4 = l4_both(self._ingress_ok, self._egress_ok, self._l4_plan)
        self._allowed: dict[PortKey, dict[int, int]] = {}
        self._partial: dict[tuple[PortKey, int, int], Some] = {}
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

    def _ingress(self, key: PortKey, d: int) -> int:
        chain = self._chains[Direction.INGRESS][d]
        if chain.empty:
            return self._index.all
        return decide(self._matcher, chain, Direction.INGRESS, d, key, self._index.all)

    def _egress_from(self, s: int, dsts_scope: int) -> list[tuple[PortKey, int]]:
        """Refresh the egress verdicts of source class `s` towards every destination; return
        the (port, destination) cells whose bit for `s` moved."""
        chain = self._chains[Direction.EGRESS][s]
        bit = 1 << s
        moved: list[tuple[PortKey, int]] = []
        for key, dsts in self._l4_plan.items():
            targets = dsts & dsts_scope
            if not targets:
                continue
            reachable = (
                targets
                if chain.empty
                else decide(self._matcher, chain, Direction.EGRESS, s, key, targets)
            )
            row = self._egress_ok[key]
            for d in iter_bits(targets):
                had = row.get(d, 0)
                now = had | bit if reachable >> d & 1 else had & ~bit
                if now != had:
                    row[d] = now
                    moved.append((key, d))
        return moved

    # rows ------------------------------------------------------------------------------------
    def _synthetic(self, wi: int) -> bool:
        return SYNTHETIC_ANNOTATION in self._workloads[wi].annotations

    def _all_rows(self) -> Rows:
        return {(s, d, p, proto): r for s, d, p, proto, r in self.reachability().detailed()}

    def _cell_rows(self, key: PortKey, d: int, sources: int) -> Rows:
        """Workload rows of one class cell for the given source classes."""
        rows: Rows = {}
        allowed = self._allowed.get(key, {}).get(d, 0) & sources & self._reported
        dst_members = [wj for wj in self._classes[d].members if not self._synthetic(wj)]
        for s in iter_bits(allowed):
            requests = self._partial.get((key, d, s), ALL)
            for wi in self._classes[s].members:
                src = self._workloads[wi]
                for wj in dst_members:
                    if wi == wj and is_single_pod(src):
                        continue
                    rows[(src.id, self._workloads[wj].id, key.port, key.protocol.value)] = requests
        return rows

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
            self._selected.pop(before, None)
        for direction, bits in affected.items():
            if bits:
                self._rechain(direction, bits)
        moved: set[tuple[PortKey, int]] = set()
        for key, dsts in self._l4_plan.items():
            for d in iter_bits(dsts & affected[Direction.INGRESS]):
                self._ingress_ok[key][d] = self._ingress(key, d)
                moved.add((key, d))
        for s in iter_bits(affected[Direction.EGRESS]):
            moved.update(self._egress_from(s, self._index.all))
        return self._recompose_l4(moved)

    def _selected_by(self, policy: Policy) -> int:
        bits = self._selected.get(policy)
        if bits is None:
            bits = self._matcher.selected_by(policy)
            self._selected[policy] = bits
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
            ident = tuple(id(p) for p in selected)
            chain = cache.get(ident)
            if chain is None:
                by_tier: dict[str, list[Policy]] = {}
                for p in selected:
                    by_tier.setdefault(p.tier, []).append(p)
                tiers = sorted((policies.tier(name) for name in by_tier), key=tier_sort_key)
                chain = TierChain(
                    tuple(
                        (tier, tuple(sorted(by_tier[tier.name], key=lambda p: p.sort_key)))
                        for tier in tiers
                    )
                )
                cache[ident] = chain
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
        old_partial = {
            s: self._partial.pop((key, d, s))
            for s in iter_bits(old_bits)
            if (key, d, s) in self._partial
        }
        old_rows = self._cell_rows_from(key, d, old_bits, old_partial)
        if self._mesh is None:
            bits = self._l4[key].get(d, 0)
        else:
            bits = self._mesh.compose_cell(key, d, self._l4, self._partial)
        per_dst = self._allowed.setdefault(key, {})
        if bits:
            per_dst[d] = bits
        else:
            per_dst.pop(d, None)
        new_rows = self._cell_rows(key, d, self._index.all)
        return _compare(old_rows, new_rows)

    def _cell_rows_from(self, key: PortKey, d: int, bits: int, partial: dict[int, Some]) -> Rows:
        rows: Rows = {}
        dst_members = [wj for wj in self._classes[d].members if not self._synthetic(wj)]
        for s in iter_bits(bits & self._reported):
            requests = partial.get(s, ALL)
            for wi in self._classes[s].members:
                src = self._workloads[wi]
                for wj in dst_members:
                    if wi == wj and is_single_pod(src):
                        continue
                    rows[(src.id, self._workloads[wj].id, key.port, key.protocol.value)] = requests
        return rows

    # mesh policies ---------------------------------------------------------------------------
    def _mesh_policy(
        self, before: Obj | None, after: Obj | None, model: Model
    ) -> list[ConnectionChange] | None:
        if self._mesh is None:
            return None
        if authz_networks(model.mesh.authorization_policies) != self._extra_nets:
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
                members &= self._classes_matching_labels(selector)
            affected |= members
        if affected & self._waypoint_bits():
            affected |= self._waypoint_users()
        self._work = dataclasses.replace(self._work, mesh=model.mesh)
        mesh = self._mesh
        mesh.model = self._work
        mesh._decisions = {k: v for k, v in mesh._decisions.items() if not affected >> k[1] & 1}  # type: ignore[operator]
        mesh._paths.clear()
        out: list[ConnectionChange] = []
        for key, bits in self._plan.items():
            for d in iter_bits(bits & affected):
                out.extend(self._recompute_cell(key, d))
        return out

    def _hosts_in(self, namespace: str) -> int:
        bits = 0
        for c in self._classes:
            if c.peer.namespace == namespace and not self._index.endpoints >> c.index & 1:
                bits |= 1 << c.index
        return bits

    def _classes_matching_labels(self, selector: object) -> int:
        bits = 0
        for c in self._classes:
            if not c.members:
                continue
            rep = self._workloads[c.members[0]]
            if selector.matches(rep.labels):  # type: ignore[attr-defined]
                bits |= 1 << c.index
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
            if target is None or not self._classes[target].members:
                return None  # a class of its own: the class structure moves
            known = self._index.peers[target]
            if (known.namespace_labels, known.service_account_labels) != (
                peer.namespace_labels,
                peer.service_account_labels,
            ):
                return None  # the namespace or service account changed under it
        old_rows: Rows = {}
        if before is not None:
            wi = self._position[before.id]
            old_rows = self._workload_rows(wi)
            self._remove(wi)
        new_rows: Rows = {}
        if after is not None:
            assert target is not None
            wi = len(self._workloads)
            self._workloads.append(after)
            self._member_class.append(target)
            self._position[after.id] = wi
            c = self._classes[target]
            self._classes[target] = EndpointClass(c.index, c.peer, (*c.members, wi))
            new_rows = self._workload_rows(wi)
        topology = Topology(
            model.topology.namespaces,
            model.topology.service_accounts,
            tuple(self._workloads),
            model.topology.services,
        )
        self._work = dataclasses.replace(self._work, topology=topology)
        if self._mesh is not None:
            self._mesh.model = self._work
        return _compare(old_rows, new_rows)

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
