"""Facts every finding family needs, read from the one reachability result and the IR: the
real workloads (not the waypoint pods the engine adds), the engine's class index and matcher
over the same classes, mesh membership, and how objects are named and located.

Must not decide a verdict of its own: every L3/L4 question goes to `kubezt.engine.l4`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from kubezt.engine.authz import workload_policies
from kubezt.engine.index import ClassIndex, PeerKind, iter_bits
from kubezt.engine.l4 import Matcher, TierChain, chains, policy_label
from kubezt.engine.mesh import HBONE_PORT, mesh_mode, proxy_role
from kubezt.engine.reach import SYNTHETIC_ANNOTATION, Reachability
from kubezt.errors import Location
from kubezt.ir.mesh import AuthorizationPolicy, AuthzRule
from kubezt.ir.model import Model
from kubezt.ir.policy import Direction, EntityMatch, Policy, Rule
from kubezt.ir.ports import Protocol
from kubezt.ir.provenance import Source
from kubezt.ir.topology import MeshMode, ProxyRole, Workload

SYSTEM_NAMESPACES = frozenset(
    {
        "kube-system",
        "kube-public",
        "kube-node-lease",
        "calico-system",
        "calico-apiserver",
        "tigera-operator",
    }
)
"""Namespaces of the cluster's own components, which a mesh never captures."""


def is_synthetic(workload: Workload) -> bool:
    """A waypoint pod the engine added because the input has only its Gateway."""
    return SYNTHETIC_ANNOTATION in workload.annotations


def workload_ref(workload: Workload) -> str:
    return f"{workload.kind} {workload.id}"


def namespace_ref(name: str) -> str:
    return f"Namespace {name}"


def policy_ref(policy: Policy) -> str:
    """`Kubernetes NetworkPolicy ns/name`, `Calico NetworkPolicy ns/name`, `Kind name`."""
    return policy_label(policy)


def location_of(source: Source | None) -> Location | None:
    return source.location if source is not None else None


def rule_place(
    policy: Policy, rule: Rule, direction: Direction, index: int
) -> tuple[Location | None, str]:
    """Where a rule is written (its own line when the reader kept it) and its field path."""
    if rule.origin is not None:
        return rule.origin.location or location_of(policy.source), rule.origin.path
    shown = rule.index if rule.index is not None else index
    return location_of(policy.source), f"spec.{direction.value.lower()}[{shown}]"


def authz_rule_path(index: int) -> str:
    return f"spec.rules[{index}]"


def listing(items: Iterable[str], limit: int = 5) -> str:
    """`a, b and c`, or `a, b, c, d, e and 3 more`."""
    seq = list(dict.fromkeys(items))
    if len(seq) <= 1:
        return "".join(seq)
    if len(seq) <= limit:
        return ", ".join(seq[:-1]) + f" and {seq[-1]}"
    return ", ".join(seq[:limit]) + f" and {len(seq) - limit} more"


def anchor(model: Model) -> Location | None:
    """A location for findings about the input as a whole: the first object kubezt read."""
    candidates: list[Location] = []
    for group in (
        model.mesh.peer_authentications,
        model.topology.namespaces.values(),
        model.topology.workloads,
        model.policies.policies,
    ):
        for obj in group:
            loc = location_of(getattr(obj, "source", None))
            if loc is not None:
                candidates.append(loc)
        if candidates:
            return min(candidates)
    return None


@dataclass(frozen=True, slots=True)
class Workloads:
    """The input's workloads as the reachability result holds them."""

    reach: Reachability

    @property
    def model(self) -> Model:
        return self.reach.model

    def real(self) -> list[Workload]:
        return [w for w in self.reach.model.topology.workloads if not is_synthetic(w)]

    def in_namespace(self, namespace: str) -> list[Workload]:
        return [w for w in self.real() if w.namespace == namespace]

    def namespace_location(self, namespace: str) -> Location | None:
        ns = self.model.topology.namespaces.get(namespace)
        loc = location_of(ns.source) if ns is not None else None
        if loc is not None:
            return loc
        for w in self.in_namespace(namespace):
            loc = location_of(w.source)
            if loc is not None:
                return loc
        return None

    def members(self, class_index: int) -> list[Workload]:
        workloads = self.model.topology.workloads
        return [
            workloads[i]
            for i in self.reach.classes[class_index].members
            if not is_synthetic(workloads[i])
        ]

    def members_of(self, bits: int) -> list[Workload]:
        out: list[Workload] = []
        for ci in iter_bits(bits):
            out.extend(self.members(ci))
        return sorted(out, key=lambda w: w.id)


def mode_of(model: Model, workload: Workload) -> MeshMode:
    return mesh_mode(workload, model.topology.namespace(workload.namespace), model.mesh)


def is_proxy(model: Model, workload: Workload) -> bool:
    return proxy_role(workload, model.mesh) is not ProxyRole.NONE


@dataclass(frozen=True)
class L4View:
    """The engine's class index and matcher over the reachability result's own classes."""

    index: ClassIndex
    matcher: Matcher
    real: int
    """Classes with at least one workload of the input."""
    endpoints: int
    """Classes on the pod network (selectable, policed)."""

    def chains(self, direction: Direction) -> list[TierChain]:
        return chains(self.matcher, direction)

    def selected(self, policy: Policy) -> int:
        return self.matcher.selected_by(policy)


def l4_view(reach: Reachability) -> L4View:
    model = reach.model
    index = ClassIndex([c.peer for c in reach.classes], model.topology, model.policies)
    workloads = Workloads(reach)
    real = 0
    for c in reach.classes:
        if workloads.members(c.index):
            real |= 1 << c.index
    endpoints = 0
    for c in reach.classes:
        if c.peer.kind is PeerKind.ENDPOINT:
            endpoints |= 1 << c.index
    return L4View(index, Matcher(index), real, endpoints)


def enforced_policies(model: Model) -> list[Policy]:
    return [p for p in model.policies.policies if not p.staged]


_PROTOCOL_NAMES = {p.number: p.value for p in Protocol}


def traffic(rule: Rule) -> str:
    """`TCP 8080`, `UDP 53`, `TCP, any port`, `any protocol and port` for a rule's match."""
    proto = _PROTOCOL_NAMES.get(rule.protocol, str(rule.protocol)) if rule.protocol else ""
    ports = rule.destination.ports
    if ports is not None and not ports.is_empty:
        return f"{proto or 'any protocol'} {ports}".strip()
    return f"{proto}, any port" if proto else "any protocol and port"


def any_address(entity: EntityMatch) -> bool:
    """The side matches every address: no endpoint criteria and no CIDR (or a /0 CIDR), and
    nothing carved out."""
    if entity.selects_endpoints or entity.not_nets or entity.not_selector is not None:
        return False
    if entity.nets is None:
        return True
    return any(net.prefixlen == 0 for net in entity.nets)


def hbone_only(entity: EntityMatch) -> bool:
    """The side's ports are exactly the HBONE port: an ambient tunnel rule, whose peers are
    authorized by ztunnel on the real port (semantics.md §5.5)."""
    ports = entity.ports
    return (
        ports is not None
        and not ports.names
        and all(r.first == r.last == HBONE_PORT for r in ports.ranges)
        and bool(ports.ranges)
    )


IDENTITY_FIELDS = {
    "principals": "principals",
    "namespaces": "namespaces",
    "service_accounts": "serviceAccounts",
}
IDENTITY_KEYS = ("source.principal", "source.namespace", "source.serviceAccount")


def identity_fields(rule: AuthzRule) -> list[str]:
    """The identity attributes (positive, from the peer certificate) an Istio rule matches on."""
    names: list[str] = []
    for src in rule.sources or ():
        for attr, name in IDENTITY_FIELDS.items():
            if getattr(src, attr):
                names.append(name)
    for cond in rule.conditions:
        if cond.key in IDENTITY_KEYS and cond.values:
            names.append(cond.key)
    return list(dict.fromkeys(names))


@dataclass(frozen=True, slots=True)
class ClassView:
    """The workloads of one engine class that are in the input: everything a policy can see of
    them is the same, so facts about the representative hold for every member."""

    index: int
    rep: Workload
    members: tuple[Workload, ...]


def class_views(reach: Reachability) -> list[ClassView]:
    workloads = Workloads(reach)
    out: list[ClassView] = []
    for c in reach.classes:
        members = workloads.members(c.index)
        if members:
            out.append(ClassView(c.index, members[0], tuple(members)))
    return out


def authz_at(reach: Reachability) -> list[tuple[ClassView, list[AuthorizationPolicy]]]:
    """For each class of input workloads, the AuthorizationPolicies a sidecar or ztunnel would
    enforce for it (`kubezt.engine.authz.workload_policies`)."""
    model = reach.model
    config = model.mesh_config
    out: list[tuple[ClassView, list[AuthorizationPolicy]]] = []
    for view in class_views(reach):
        candidates = model.mesh.authorization_in(view.rep.namespace, config.root_namespace)
        out.append((view, workload_policies(candidates, view.rep, config)))
    return out


def applied_authz(reach: Reachability) -> list[AuthorizationPolicy]:
    """AuthorizationPolicies that apply to at least one workload of the input, in input order
    (policies bound with targetRefs are not included)."""
    applied: set[int] = set()
    for _, policies in authz_at(reach):
        applied.update(id(p) for p in policies)
    return [p for p in reach.model.mesh.authorization_policies if id(p) in applied]
