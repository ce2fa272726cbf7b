"""Hypothesis strategies: small clusters, Kubernetes NetworkPolicy manifests and Calico IR
policies whose labels, ports and names come from tiny alphabets, so that selectors, named ports,
CIDRs and policy orders collide often; AuthorizationPolicies and the requests against them
(the authorization oracle's space, shared by the oracle and the set-authorizer properties).

Topologies and K8s policies are manifest dicts (loaded through the real loader); Calico
policies are IR `Policy` values (added to a loaded model with `dataclasses.replace`).
"""

from __future__ import annotations

import dataclasses
import functools
import ipaddress
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

from authz_oracle import Request
from kubezt.ir.config import MeshConfig
from kubezt.ir.mesh import (
    AuthorizationPolicy,
    AuthzAction,
    AuthzCondition,
    AuthzOperation,
    AuthzRule,
    AuthzSource,
)
from kubezt.ir.policy import (
    Action,
    Dialect,
    Direction,
    EntityMatch,
    NamespaceScope,
    Network,
    NetworkSet,
    Policy,
    Rule,
    Tier,
)
from kubezt.ir.ports import PortRange, PortSet
from kubezt.ir.requests import HttpRequest
from kubezt.ir.selectors import (
    All,
    And,
    Contains,
    EndsWith,
    Equals,
    Global,
    Has,
    In,
    Not,
    NotEquals,
    NotIn,
    Or,
    Selector,
    StartsWith,
)

NAMESPACES = ("ns-a", "ns-b", "ns-c")
SERVICE_ACCOUNTS = ("default", "sa1", "sa2")
POD_LABELS = {"app": ("a", "b", "ab"), "tier": ("x", "y")}
NAMESPACE_LABELS = {"team": ("a", "b"), "env": ("x", "y")}
SERVICE_ACCOUNT_LABELS = {"role": ("a", "b")}
# Container ports: (number, protocol); names come from PORT_NAMES, so "http" may be 80 on one
# pod and 81 on another.
CONTAINER_PORTS = ((80, "TCP"), (81, "TCP"), (53, "UDP"), (53, "TCP"), (443, "TCP"), (80, "SCTP"))
PORT_NAMES = ("http", "dns", "https")
POLICY_PORT_NAMES = (*PORT_NAMES, "metrics")  # "metrics" is never declared
PORT_NUMBERS = (53, 80, 81, 443)
PROBES = tuple((p, proto) for p in (53, 80, 81, 443, 8080) for proto in ("TCP", "UDP", "SCTP"))
POD_IPS = {
    4: ("10.0.0.5", "10.0.0.10", "10.0.0.20", "10.0.0.130", "10.0.0.200", "192.168.1.7"),
    6: ("fd00::5", "fd00::10", "fd00::130", "2001:db8::7", "2001:db8::8", "fd00::200"),
}
"""Pod addresses of an IPv4 and of an IPv6 cluster (a cluster's pods share one family)."""
CIDRS = (
    "10.0.0.0/24",
    "10.0.0.0/25",
    "10.0.0.128/25",
    "10.0.0.0/28",
    "10.0.0.8/29",
    "10.0.0.128/26",
    "0.0.0.0/0",
    "192.168.0.0/16",
    "fd00::/64",
    "fd00::/120",
    "::/0",
)
SERVICE_NAMES = ("svc-a", "svc-b")

Manifest = dict[str, Any]


@dataclass(frozen=True)
class Cluster:
    """Manifests of namespaces, service accounts, workloads and K8s NetworkPolicies."""

    namespaces: tuple[str, ...]
    topology: list[Manifest]
    policies: list[Manifest] = field(default_factory=list)

    @property
    def objects(self) -> list[Manifest]:
        return [*self.topology, *self.policies]


# --- building blocks (built once: hypothesis validates every new strategy object) ---------------


@functools.cache
def pick(values: tuple[Hashable, ...]) -> st.SearchStrategy[Any]:
    return st.sampled_from(values)


@functools.cache
def maybe(strategy: st.SearchStrategy[Any], chance: int = 3) -> st.SearchStrategy[Any]:
    """None most of the time: one draw in `chance` takes the value."""
    return weighted((strategy, 1), (st.none(), chance - 1))


def weighted(*choices: tuple[st.SearchStrategy[Any], int]) -> st.SearchStrategy[Any]:
    """One of the strategies, with the given weights.

    `st.one_of` flattens nested `one_of`s and picks a branch uniformly among all their
    branches, so `one_of(none(), selectors)` would almost never draw None.
    """
    return st.sampled_from([s for s, weight in choices for _ in range(weight)]).flatmap(_itself)


def _itself(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return strategy


def _alphabet_key(alphabet: dict[str, tuple[str, ...]]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    return tuple(sorted(alphabet.items()))


def label_maps(alphabet: dict[str, tuple[str, ...]]) -> st.SearchStrategy[dict[str, str]]:
    """Label dicts with any subset of the alphabet's keys."""
    return _label_maps(_alphabet_key(alphabet))


@functools.cache
def _label_maps(alphabet: tuple[tuple[str, tuple[str, ...]], ...]) -> st.SearchStrategy[Any]:
    return st.fixed_dictionaries({}, optional={k: pick(v) for k, v in alphabet})


def label_selectors(alphabet: dict[str, tuple[str, ...]]) -> st.SearchStrategy[Manifest]:
    """`metav1.LabelSelector` dicts (possibly `{}`) with matchLabels and/or expressions."""
    return _label_selectors(_alphabet_key(alphabet))


@functools.cache
def _label_selectors(alphabet: tuple[tuple[str, tuple[str, ...]], ...]) -> st.SearchStrategy[Any]:
    def requirement(key: str, values: tuple[str, ...]) -> st.SearchStrategy[Manifest]:
        listed = st.lists(pick(values), min_size=1, max_size=len(values), unique=True)
        return st.one_of(
            st.fixed_dictionaries(
                {"key": st.just(key), "operator": pick(("In", "NotIn")), "values": listed}
            ),
            st.fixed_dictionaries(
                {"key": st.just(key), "operator": pick(("Exists", "DoesNotExist"))}
            ),
        )

    requirements = st.one_of(*[requirement(k, v) for k, v in alphabet])
    return st.fixed_dictionaries(
        {},
        optional={
            "matchLabels": _label_maps(alphabet),
            "matchExpressions": st.lists(requirements, min_size=1, max_size=2),
        },
    )


NAMESPACE_SELECTOR_LABELS = {
    **NAMESPACE_LABELS,
    "kubernetes.io/metadata.name": NAMESPACES,
}
POD_SELECTORS = label_selectors(POD_LABELS)
NAMESPACE_SELECTORS = label_selectors(NAMESPACE_SELECTOR_LABELS)


# --- topology -----------------------------------------------------------------------------------

_PORT_LISTS = st.lists(
    st.tuples(pick(CONTAINER_PORTS), pick(("", *PORT_NAMES)), st.booleans()), max_size=3
)


def _container_ports(drawn: list[tuple[tuple[int, str], str, bool]]) -> list[Manifest]:
    seen: set[tuple[int, str]] = set()
    names: set[str] = set()
    ports: list[Manifest] = []
    for (number, protocol), name, spell_protocol in drawn:
        if (number, protocol) in seen:
            continue
        seen.add((number, protocol))
        port: Manifest = {"containerPort": number}
        if protocol != "TCP" or spell_protocol:
            port["protocol"] = protocol
        if name and name not in names:
            names.add(name)
            port["name"] = name
        ports.append(port)
    return ports


_WORKLOADS = st.fixed_dictionaries(
    {
        "namespace": st.integers(0, 2),
        "labels": label_maps(POD_LABELS),
        "ports": _PORT_LISTS.map(_container_ports),
        "account": pick((None, *SERVICE_ACCOUNTS)),
        "pod": st.booleans(),
        "ip": st.integers(0, 3),
        "replicas": pick((1, 2)),
    }
)
_NAMESPACE_PARTS = st.tuples(
    label_maps(NAMESPACE_LABELS),
    st.lists(pick(("sa1", "sa2")), max_size=2, unique=True),
    label_maps(SERVICE_ACCOUNT_LABELS),
    label_maps(SERVICE_ACCOUNT_LABELS),
)


def _workload_manifest(
    name: str, namespace: str, drawn: dict[str, Any], ip: str | None, host_network: bool
) -> Manifest:
    spec: Manifest = {"containers": [{"name": "c", "image": "app", "ports": drawn["ports"]}]}
    if drawn["account"] is not None:
        spec["serviceAccountName"] = drawn["account"]
    if host_network:
        spec["hostNetwork"] = True
    labels = drawn["labels"]
    if drawn["pod"] or host_network:
        obj: Manifest = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace, "labels": labels},
            "spec": spec,
        }
        if ip is not None:
            obj["status"] = {"podIP": ip}
        return obj
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "replicas": drawn["replicas"],
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": spec},
        },
    }


def _service_ports(drawn: list[tuple[Any, str | None]]) -> list[Manifest]:
    ports: list[Manifest] = []
    for i, (target, protocol) in enumerate(drawn):
        port: Manifest = {"name": f"p{i}", "port": 8000 + i, "targetPort": target}
        if protocol is not None:
            port["protocol"] = protocol
        ports.append(port)
    return ports


_SERVICES = st.lists(
    st.tuples(
        label_maps(POD_LABELS).filter(bool),
        st.lists(
            st.tuples(pick((80, 53, 443, "http", "dns", "https")), pick((None, "TCP", "UDP"))),
            min_size=1,
            max_size=2,
        ).map(_service_ports),
    ),
    min_size=1,
    max_size=len(SERVICE_NAMES),
)
"""Services of one namespace, named from SERVICE_NAMES in order (so rules naming them hit)."""


_POD_ADDRESSES = weighted((st.permutations(POD_IPS[4]), 3), (st.permutations(POD_IPS[6]), 1))


@st.composite
def _topologies(draw: st.DrawFn) -> Cluster:
    namespaces = tuple(
        sorted(draw(st.lists(pick(NAMESPACES), min_size=2, max_size=3, unique=True)))
    )
    objects: list[Manifest] = []
    for ns in namespaces:
        ns_labels, accounts, *account_labels = draw(_NAMESPACE_PARTS)
        objects.append(
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": ns_labels}}
        )
        for account, labels in zip(accounts, account_labels, strict=False):
            objects.append(
                {
                    "apiVersion": "v1",
                    "kind": "ServiceAccount",
                    "metadata": {"name": account, "namespace": ns, "labels": labels},
                }
            )
    ips = list(draw(_POD_ADDRESSES))
    count = draw(st.integers(2, 6))
    host_index = draw(st.integers(0, 2 * count))  # usually no hostNetwork workload
    for i in range(count):
        drawn = draw(_WORKLOADS)
        ip = ips.pop() if drawn["ip"] > 0 else None
        namespace = namespaces[drawn["namespace"] % len(namespaces)]
        objects.append(_workload_manifest(f"w{i}", namespace, drawn, ip, i == host_index))
    for namespace in namespaces:
        for name, (selector, ports) in zip(SERVICE_NAMES, draw(_SERVICES), strict=False):
            objects.append(
                {
                    "apiVersion": "v1",
                    "kind": "Service",
                    "metadata": {"name": name, "namespace": namespace},
                    "spec": {"selector": selector, "ports": ports},
                }
            )
    return Cluster(namespaces, objects)


TOPOLOGIES = _topologies()


def topologies() -> st.SearchStrategy[Cluster]:
    """2–3 labelled namespaces, some labelled ServiceAccounts, 2–6 workloads (Pods with or
    without status.podIP, Deployments of 1–2 replicas, at most one hostNetwork pod) and one or
    two Services per namespace (numeric or named target ports)."""
    return TOPOLOGIES


# --- Kubernetes NetworkPolicy manifests -----------------------------------------------------------


def _strictly_inside(inner: Network, outer: Network) -> bool:
    return inner.version == outer.version and inner != outer and inner.subnet_of(outer)  # type: ignore[arg-type]


def _ip_block(cidr: str) -> st.SearchStrategy[Manifest]:
    outer = ipaddress.ip_network(cidr)
    inside = tuple(c for c in CIDRS if _strictly_inside(ipaddress.ip_network(c), outer))
    if not inside:
        return st.just({"cidr": cidr})
    return st.fixed_dictionaries(
        {"cidr": st.just(cidr)},
        optional={"except": st.lists(pick(inside), min_size=1, max_size=2, unique=True)},
    )


IP_BLOCKS = st.one_of(*[_ip_block(c) for c in CIDRS])
K8S_PEERS = st.one_of(
    st.fixed_dictionaries({"podSelector": POD_SELECTORS}),
    st.fixed_dictionaries({"namespaceSelector": NAMESPACE_SELECTORS}),
    st.fixed_dictionaries({"namespaceSelector": NAMESPACE_SELECTORS, "podSelector": POD_SELECTORS}),
    st.fixed_dictionaries({"ipBlock": IP_BLOCKS}),
)
"""Every peer shape: podSelector, namespaceSelector, both in one peer, ipBlock."""

_PROTOCOL_FIELD = {"protocol": pick(("TCP", "UDP", "SCTP"))}
K8S_PORTS = st.one_of(
    st.fixed_dictionaries({}, optional=_PROTOCOL_FIELD),
    st.fixed_dictionaries({"port": pick(PORT_NUMBERS)}, optional=_PROTOCOL_FIELD),
    st.fixed_dictionaries({"port": pick(POLICY_PORT_NAMES)}, optional=_PROTOCOL_FIELD),
    st.fixed_dictionaries({"port": pick(POLICY_PORT_NAMES)}),
    st.tuples(pick(PORT_NUMBERS), pick((0, 1, 400))).flatmap(
        lambda t: st.fixed_dictionaries(
            {"port": st.just(t[0]), "endPort": st.just(t[0] + t[1])}, optional=_PROTOCOL_FIELD
        )
    ),
)
"""A ports entry: any port of a protocol, a number, a range (endPort) or a named port."""


def _absent_empty_or(items: st.SearchStrategy[Manifest]) -> st.SearchStrategy[Any]:
    """None (field absent), [] (present but empty) or, most often, a short list."""
    listed = st.lists(items, min_size=1, max_size=3)
    return weighted((st.none(), 1), (st.just([]), 1), (listed, 2))


_PEER_LISTS = _absent_empty_or(K8S_PEERS)
_PORT_ENTRY_LISTS = _absent_empty_or(K8S_PORTS)


def _rule(peers_field: str) -> st.SearchStrategy[Manifest]:
    def build(parts: tuple[Any, Any]) -> Manifest:
        rule: Manifest = {}
        if parts[0] is not None:
            rule[peers_field] = parts[0]
        if parts[1] is not None:
            rule["ports"] = parts[1]
        return rule

    return st.tuples(_PEER_LISTS, _PORT_ENTRY_LISTS).map(build)


K8S_RULES = {"from": _rule("from"), "to": _rule("to")}


def k8s_rules(peers_field: str) -> st.SearchStrategy[Manifest]:
    """An ingress (`peers_field="from"`) or egress (`"to"`) rule; peers and ports each absent,
    empty or listed."""
    return K8S_RULES[peers_field]


POLICY_TYPES = (None, ("Ingress",), ("Egress",), ("Ingress", "Egress"), ("Egress", "Ingress"))
_K8S_POLICY_PARTS = st.tuples(
    POD_SELECTORS,
    pick(POLICY_TYPES),
    _absent_empty_or(K8S_RULES["from"]),
    _absent_empty_or(K8S_RULES["to"]),
    st.integers(0, 2),
)


def _k8s_policy(name: str, namespaces: tuple[str, ...], parts: tuple[Any, ...]) -> Manifest:
    selector, types, ingress, egress, ns_index = parts
    spec: Manifest = {"podSelector": selector}
    if types is not None:
        spec["policyTypes"] = list(types)
    if ingress is not None:
        spec["ingress"] = ingress
    if egress is not None:
        spec["egress"] = egress
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": namespaces[ns_index % len(namespaces)]},
        "spec": spec,
    }


@functools.cache
def k8s_clusters(min_policies: int = 0, max_policies: int = 3) -> st.SearchStrategy[Cluster]:
    """A topology plus K8s NetworkPolicies (every policyTypes / rules / peers / ports shape)."""

    @st.composite
    def build(draw: st.DrawFn) -> Cluster:
        cluster = draw(TOPOLOGIES)
        parts = draw(st.lists(_K8S_POLICY_PARTS, min_size=min_policies, max_size=max_policies))
        policies = [_k8s_policy(f"p{i}", cluster.namespaces, p) for i, p in enumerate(parts)]
        return Cluster(cluster.namespaces, cluster.topology, policies)

    return build()


# --- Calico selectors and IR policies -----------------------------------------------------------

ENDPOINT_SELECTOR_LABELS = {
    **POD_LABELS,
    "projectcalico.org/namespace": NAMESPACES,
    "projectcalico.org/serviceaccount": SERVICE_ACCOUNTS,
    "projectcalico.org/orchestrator": ("k8s", "openstack"),
}
CALICO_NAMESPACE_LABELS = {**NAMESPACE_SELECTOR_LABELS, "projectcalico.org/name": NAMESPACES}
CALICO_SERVICE_ACCOUNT_LABELS = {
    **SERVICE_ACCOUNT_LABELS,
    "projectcalico.org/name": SERVICE_ACCOUNTS,
}


def _substrings(values: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(
        sorted({v[i:j] for v in values for i in range(len(v)) for j in range(i, len(v) + 1)})
    )


def calico_selectors(alphabet: dict[str, tuple[str, ...]]) -> st.SearchStrategy[Selector]:
    """Selector ASTs over `alphabet`: every operator, negation, conjunction and disjunction."""
    return _calico_selectors(_alphabet_key(alphabet))


@functools.cache
def _calico_selectors(
    alphabet: tuple[tuple[str, tuple[str, ...]], ...],
) -> st.SearchStrategy[Selector]:
    def terms(key: str, values: tuple[str, ...]) -> st.SearchStrategy[Selector]:
        k = st.just(key)
        value = pick(values)
        part = pick(_substrings(values))
        value_sets = st.frozensets(value, min_size=1, max_size=len(values))
        return st.one_of(
            st.builds(Has, k),
            st.builds(Equals, k, value),
            st.builds(NotEquals, k, value),
            st.builds(In, k, value_sets),
            st.builds(NotIn, k, value_sets),
            st.builds(Contains, k, part),
            st.builds(StartsWith, k, part),
            st.builds(EndsWith, k, part),
        )

    leaves: st.SearchStrategy[Selector] = weighted(
        (st.just(All()), 1), (st.one_of(*[terms(k, v) for k, v in alphabet]), 7)
    )
    # Two levels by hand: st.recursive is an order of magnitude slower to draw from.
    operands = st.lists(leaves, min_size=2, max_size=3).map(tuple)
    return weighted(
        (leaves, 4),
        (st.builds(Not, leaves), 1),
        (st.builds(And, operands), 1),
        (st.builds(Or, operands), 1),
        (st.builds(Not, st.builds(Or, operands)), 1),
    )


ENDPOINT_SELECTORS = calico_selectors(ENDPOINT_SELECTOR_LABELS)
NAMESPACE_EXPRESSIONS = calico_selectors(CALICO_NAMESPACE_LABELS)
SERVICE_ACCOUNT_EXPRESSIONS = calico_selectors(CALICO_SERVICE_ACCOUNT_LABELS)

PORT_SETS = st.builds(
    PortSet.of,
    st.lists(
        st.tuples(pick(PORT_NUMBERS), pick((0, 1, 400))).map(
            lambda t: PortRange(t[0], t[0] + t[1])
        ),
        max_size=2,
    ),
    st.frozensets(pick(POLICY_PORT_NAMES), max_size=2),
).filter(lambda ps: not ps.is_empty)
NETWORKS = st.lists(pick(CIDRS), min_size=1, max_size=2, unique=True).map(
    lambda cidrs: tuple(ipaddress.ip_network(c) for c in cidrs)
)
SERVICE_ACCOUNT_NAMES = st.frozensets(pick(SERVICE_ACCOUNTS), min_size=1)


_SCOPES = st.one_of(
    st.tuples(st.just(NamespaceScope.SELECTED), NAMESPACE_EXPRESSIONS),
    st.just((NamespaceScope.GLOBAL, Global())),
)
_SIDE_FEATURES: dict[str, st.SearchStrategy[Any]] = {
    "nets": NETWORKS,
    "not_nets": NETWORKS,
    "selector": ENDPOINT_SELECTORS,
    "not_selector": ENDPOINT_SELECTORS,
    "namespace": _SCOPES,
    "service_account_names": SERVICE_ACCOUNT_NAMES,
    "service_account_selector": SERVICE_ACCOUNT_EXPRESSIONS,
    "ports": PORT_SETS,
    "not_ports": PORT_SETS,
    "services": pick(tuple((ns, name) for ns in NAMESPACES for name in SERVICE_NAMES)),
}


@functools.cache
def entity_matches(namespaced: bool) -> st.SearchStrategy[EntityMatch]:
    """A rule side with no, one or two criteria (more would rarely all match); namespace
    scopes are those the Calico reader produces for the policy's kind."""
    own = NamespaceScope.OWN if namespaced else NamespaceScope.ANY

    def build(fields: dict[str, Any]) -> EntityMatch:
        scope, ns_selector = fields.pop("namespace", (own, None))
        return EntityMatch(namespace_scope=scope, namespace_selector=ns_selector, **fields)

    names = sorted(_SIDE_FEATURES)
    combos = [(n,) for n in names] + [(a, b) for i, a in enumerate(names) for b in names[i + 1 :]]
    sides = [
        st.fixed_dictionaries({n: _SIDE_FEATURES[n] for n in combo}).map(build) for combo in combos
    ]
    single = weighted(*[(side, 1) for side in sides[: len(names)]])
    pair = weighted(*[(side, 1) for side in sides[len(names) :]])
    return weighted((st.just(EntityMatch(namespace_scope=own)), 2), (single, 2), (pair, 1))


PROTOCOL_NUMBERS = (6, 6, 17, 132, 1)


@functools.cache
def calico_rules(namespaced: bool, ip_version: bool = True) -> st.SearchStrategy[Rule]:
    """Rules with every action, protocol / notProtocol, ICMP clauses and random sides."""

    def build(parts: tuple[Any, ...]) -> Rule:
        action, protocol, not_protocol, source, destination, version, icmp = parts
        return Rule(
            action=action,
            protocol=protocol,
            not_protocol=not_protocol,
            source=source,
            destination=destination,
            ip_version=version if ip_version else None,
            icmp=protocol == 1 and icmp,
        )

    return st.tuples(
        pick(tuple(Action)),
        maybe(pick(PROTOCOL_NUMBERS), 3),
        maybe(pick(PROTOCOL_NUMBERS), 6),
        entity_matches(namespaced),
        entity_matches(namespaced),
        maybe(pick((4, 6)), 6),
        st.booleans(),
    ).map(build)


TIER_NAMES = ("t1", "t2", "t3")
TIERS = st.lists(
    st.tuples(
        pick(TIER_NAMES),
        pick((None, 100.0, 100.0, 500.0, 2_000_000.0)),
        pick((Action.DENY, Action.PASS)),
    ),
    max_size=3,
    unique_by=lambda t: t[0],
).map(lambda drawn: tuple(Tier(*t) for t in sorted(drawn, key=lambda t: t[0])))
"""Declared tiers with orders (incl. none and ties) and default actions Deny or Pass; a policy
may also name an undeclared tier (order none, default Deny)."""


@functools.cache
def _calico_policy_parts(namespaced: bool, ip_version: bool) -> st.SearchStrategy[Any]:
    rules = st.lists(calico_rules(namespaced, ip_version), max_size=3).map(tuple)
    return st.tuples(
        st.integers(0, 2),
        pick(("default", "default", *TIER_NAMES)),
        pick((None, 1.0, 500.0, 1000.0, 1000.0, 1500.0)),
        maybe(ENDPOINT_SELECTORS, 2),
        st.none() if namespaced else maybe(NAMESPACE_EXPRESSIONS),
        maybe(SERVICE_ACCOUNT_EXPRESSIONS, 6),
        st.sets(pick((Direction.INGRESS, Direction.EGRESS)), min_size=1).map(frozenset),
        rules,
        rules,
        pick((False,) * 9 + (True,)),
    )


@functools.cache
def calico_policies(
    namespaces: tuple[str, ...], ip_version: bool = True
) -> st.SearchStrategy[Policy]:
    """Calico NetworkPolicies (in one of `namespaces`) and GlobalNetworkPolicies, named ""
    (the caller names them uniquely); staged one time in ten."""

    def build(namespaced: bool) -> Any:
        def policy(parts: tuple[Any, ...]) -> Policy:
            ns_index, tier, order, selector, ns_selector, sa_selector, types, ingress, egress = (
                parts[:9]
            )
            return Policy(
                dialect=Dialect.CALICO,
                kind="NetworkPolicy" if namespaced else "GlobalNetworkPolicy",
                name="",
                namespace=namespaces[ns_index % len(namespaces)] if namespaced else None,
                tier=tier,
                order=order,
                selector=selector,
                namespace_selector=ns_selector,
                service_account_selector=sa_selector,
                types=types,
                ingress=ingress,
                egress=egress,
                staged=parts[9],
            )

        return _calico_policy_parts(namespaced, ip_version).map(policy)

    return st.one_of(build(True), build(False))


@dataclass(frozen=True)
class MixedCluster:
    """K8s manifests plus Calico IR policies, tiers and network sets to add to the loaded
    model."""

    cluster: Cluster
    policies: tuple[Policy, ...]
    tiers: tuple[Tier, ...]
    network_sets: tuple[NetworkSet, ...] = ()


_NETWORK_SETS = st.lists(st.tuples(st.integers(0, 3), label_maps(POD_LABELS), NETWORKS), max_size=2)
"""Calico (Global)NetworkSets: labelled like pods, so rule selectors pick them up too."""


@functools.cache
def mixed_clusters(ip_version: bool = True) -> st.SearchStrategy[MixedCluster]:
    """A K8s cluster (0–2 K8s policies) plus 1–4 Calico policies, some declared tiers and up to
    two network sets."""

    @st.composite
    def build(draw: st.DrawFn) -> MixedCluster:
        cluster = draw(k8s_clusters(0, 2))
        drawn = draw(
            st.lists(calico_policies(cluster.namespaces, ip_version), min_size=1, max_size=4)
        )
        policies = tuple(dataclasses.replace(p, name=f"c{i}") for i, p in enumerate(drawn))
        sets = tuple(
            NetworkSet(
                f"set{i}",
                None if ns_index > 2 else cluster.namespaces[ns_index % len(cluster.namespaces)],
                tuple(sorted(labels.items())),
                nets,
            )
            for i, (ns_index, labels, nets) in enumerate(draw(_NETWORK_SETS))
        )
        return MixedCluster(cluster, policies, draw(TIERS), sets)

    return build()


PROBE_STRATEGY = pick(PROBES)


def probes() -> st.SearchStrategy[tuple[int, str]]:
    """An explicit destination port and protocol to evaluate."""
    return PROBE_STRATEGY


# --- AuthorizationPolicies and requests (the authorization oracle's space) ----------------------

MIGRATING = MeshConfig(trust_domain="new-td", trust_domain_aliases=("old-td",))

CONFIGS = st.sampled_from(
    [
        MeshConfig(),
        MIGRATING,
        MIGRATING,
        MeshConfig(trust_domain="new-td"),
        MeshConfig(trust_domain="corp"),
    ]
)
MESH_NAMESPACES = ("foo", "bar", "team-a")
ACCOUNTS = ("a", "b", "web")
# Envoy compiles namespace patterns to `.*/ns/<p>/.*` over the whole SAN, so a '*' pattern
# ending in "a" also matches the "/sa/" segment (see the examples at the end of this module).
NAMESPACE_PATTERNS = ("foo", "bar", "fo*", "*oo", "*", "team-*", "*-a", "te*-a", "f*o", "b*r")
WHEN_NAMESPACE_PATTERNS = ("foo", "bar", "fo*", "*oo", "*", "team-*", "*-a")
PATH_PATTERNS = ("/", "/a", "/a*", "*b", "*", "/a/{*}", "/a/{**}", "/{*}/b")
PATHS = ("/", "/a", "/ab", "/a/b", "/a/b/c", "/b", "/a/./b", "/x/../a", "/a?q=1", "/%61/b", "/c/b")
HOST_PATTERNS = ("a.com", "A.COM", "*.com", "a.*", "*")
HOSTS = ("", "a.com", "A.com", "b.org", "a.com:80")
METHOD_PATTERNS = ("GET", "POST", "G*", "*T", "*")
METHODS = ("GET", "POST", "DELETE", "get")
IP_PATTERNS = ("10.0.0.0/8", "10.1.0.0/16", "10.0.0.1", "192.168.0.0/16", "10.9.0.1/32")
SOURCE_IPS = ("10.0.0.1", "10.1.2.3", "192.168.1.5", "172.16.0.9")
PORT_PATTERNS = ("80", "8080", "9090")
PORTS = (80, 8080, 9090, 15000)
HEADER_PATTERNS = ("abc", "ab*", "*yz", "*")
HEADERS = (("x-token", "abc"), ("X-Token", "xyz"), ("x-env", "prod"))
TRUST_DOMAIN_PATTERNS = ("cluster.local", "new-td", "old-td", "*-td", "*")


Hint = tuple[str, str, tuple[str, ...]] | None
"""(namespace, service account) of one of the requests and the other trust domains the mesh
calls its own: patterns often name them, so that identity rules (and trust-domain rewriting)
decide often enough to matter."""

TRUST_DOMAINS = ("cluster.local", "new-td", "old-td", "other", "corp")


@st.composite
def principal_patterns(draw: st.DrawFn, hint: Hint = None) -> str:
    td = draw(st.sampled_from(TRUST_DOMAINS if hint is None else hint[2] + TRUST_DOMAINS))
    if hint is not None and draw(st.booleans()):
        ns, sa = hint[0], hint[1]
    else:
        ns = draw(st.sampled_from(MESH_NAMESPACES))
        sa = draw(st.sampled_from(ACCOUNTS))
    with_trust_domain = (
        f"{td}/ns/{ns}/sa/{sa}",
        f"{td}/ns/{ns}/sa/*",
        f"{td}/ns/{ns}/sa/{sa[0]}*",
    )
    others = (
        "*",
        f"*/ns/{ns}/sa/{sa}",
        f"*/sa/{sa}",
        f"*{sa}",
        f"*-td/ns/{ns}/sa/{sa}",
        f"other/ns/{ns}/*",
        "cluster.local/*",
    )
    # trust-domain handling is where Envoy and ztunnel differ: draw those half of the time
    return draw(st.sampled_from(with_trust_domain) | st.sampled_from(others))


def pattern_list(strategy: st.SearchStrategy[str]) -> st.SearchStrategy[tuple[str, ...]]:
    return st.lists(strategy, min_size=1, max_size=2, unique=True).map(tuple)


def service_accounts() -> st.SearchStrategy[str]:
    return st.sampled_from(
        tuple(f"{ns}/{sa}" for ns in MESH_NAMESPACES for sa in ACCOUNTS) + ACCOUNTS
    )


SOURCE_FIELDS = {
    "principals": pattern_list(principal_patterns()),  # sources() draws hinted ones
    "not_principals": pattern_list(principal_patterns()),
    "request_principals": pattern_list(st.sampled_from(("iss/sub", "*"))),
    "not_request_principals": pattern_list(st.sampled_from(("iss/sub", "*"))),
    "namespaces": pattern_list(st.sampled_from(NAMESPACE_PATTERNS)),
    "not_namespaces": pattern_list(st.sampled_from(NAMESPACE_PATTERNS)),
    "service_accounts": pattern_list(service_accounts()),
    "not_service_accounts": pattern_list(service_accounts()),
    "ip_blocks": pattern_list(st.sampled_from(IP_PATTERNS)),
    "not_ip_blocks": pattern_list(st.sampled_from(IP_PATTERNS)),
    "remote_ip_blocks": pattern_list(st.sampled_from(IP_PATTERNS)),
    "not_remote_ip_blocks": pattern_list(st.sampled_from(IP_PATTERNS)),
    "trust_domains": pattern_list(st.sampled_from(TRUST_DOMAIN_PATTERNS)),
    "not_trust_domains": pattern_list(st.sampled_from(TRUST_DOMAIN_PATTERNS)),
}
OPERATION_FIELDS = {
    "hosts": pattern_list(st.sampled_from(HOST_PATTERNS)),
    "not_hosts": pattern_list(st.sampled_from(HOST_PATTERNS)),
    "ports": pattern_list(st.sampled_from(PORT_PATTERNS)),
    "not_ports": pattern_list(st.sampled_from(PORT_PATTERNS)),
    "methods": pattern_list(st.sampled_from(METHOD_PATTERNS)),
    "not_methods": pattern_list(st.sampled_from(METHOD_PATTERNS)),
    "paths": pattern_list(st.sampled_from(PATH_PATTERNS)),
    "not_paths": pattern_list(st.sampled_from(PATH_PATTERNS)),
}
WHEN = {
    "source.ip": st.sampled_from(IP_PATTERNS),
    "remote.ip": st.sampled_from(IP_PATTERNS),
    "destination.ip": st.sampled_from(("10.9.0.1", "10.0.0.0/8", "10.8.0.0/16")),
    "destination.port": st.sampled_from(PORT_PATTERNS),
    "source.namespace": st.sampled_from(WHEN_NAMESPACE_PATTERNS),
    "source.principal": principal_patterns(),  # hinted in conditions()
    "source.serviceAccount": st.sampled_from(("foo/a", "bar/web", "team-a/b")),
    "source.trustDomain": st.sampled_from(("cluster.local", "new-td")),
    "request.headers[x-token]": st.sampled_from(HEADER_PATTERNS),
    "request.headers[x-env]": st.sampled_from(HEADER_PATTERNS),
    "request.auth.claims[groups]": st.sampled_from(("admin", "*")),
    "request.auth.principal": st.sampled_from(("iss/sub", "*")),
    "connection.sni": st.sampled_from(("a.com", "*")),
}


# identity fields are drawn more often: they are where the enforcement points differ most
SOURCE_CHOICES = [
    *sorted(SOURCE_FIELDS),
    "principals",
    "not_principals",
    "namespaces",
    "not_namespaces",
    "service_accounts",
]


def field_strategy(name: str, hint: Hint) -> st.SearchStrategy[tuple[str, ...]]:
    if name in ("principals", "not_principals"):
        return pattern_list(principal_patterns(hint))
    return SOURCE_FIELDS[name]


@st.composite
def sources(draw: st.DrawFn, hint: Hint) -> AuthzSource:
    names = draw(st.sets(st.sampled_from(SOURCE_CHOICES), min_size=1, max_size=2))
    if "service_accounts" in names:  # §4.9: not together with principals / namespaces
        names -= {"principals", "namespaces"}
    return AuthzSource(**{n: draw(field_strategy(n, hint)) for n in sorted(names)})


@st.composite
def operations(draw: st.DrawFn) -> AuthzOperation:
    names = draw(st.sets(st.sampled_from(sorted(OPERATION_FIELDS)), min_size=1, max_size=2))
    return AuthzOperation(**{n: draw(OPERATION_FIELDS[n]) for n in sorted(names)})


@st.composite
def conditions(draw: st.DrawFn, hint: Hint) -> AuthzCondition:
    key = draw(st.sampled_from(sorted(WHEN)))
    values_of = (
        pattern_list(principal_patterns(hint))
        if key == "source.principal"
        else pattern_list(WHEN[key])
    )
    values = draw(st.none() | values_of)
    not_values = draw(values_of if values is None else st.none() | values_of)
    return AuthzCondition(key, values, not_values)


@st.composite
def rules(draw: st.DrawFn, index: int, hint: Hint) -> AuthzRule:
    srcs = draw(st.none() | st.lists(sources(hint), min_size=1, max_size=2).map(tuple))
    ops = draw(st.none() | st.lists(operations(), min_size=1, max_size=2).map(tuple))
    count = draw(st.sampled_from((0, 0, 1, 1, 2)))
    conds = tuple(draw(conditions(hint)) for _ in range(count))
    return AuthzRule(srcs, ops, conds, index)


@st.composite
def policies(draw: st.DrawFn, index: int, hint: Hint) -> AuthorizationPolicy:
    action = draw(st.sampled_from(("ALLOW", "ALLOW", "ALLOW", "DENY", "DENY", "AUDIT", "CUSTOM")))
    low = 1 if action in ("DENY", "CUSTOM") else 0
    count = draw(st.integers(low, 3))
    return AuthorizationPolicy(
        name=f"p{index}",
        namespace=draw(st.sampled_from(("foo", "bar"))),
        action=AuthzAction(action),
        rules=tuple(draw(rules(i, hint)) for i in range(count)),
        provider="ext" if action == "CUSTOM" else "",
        dry_run=draw(st.integers(0, 5)) == 0,
    )


@st.composite
def policy_sets(draw: st.DrawFn, hint: Hint) -> list[AuthorizationPolicy]:
    n = draw(st.integers(1, 4))
    return [draw(policies(i, hint)) for i in range(n)]


@st.composite
def requests_for(draw: st.DrawFn, config: MeshConfig) -> Request:
    peer_tds = (config.trust_domain, *config.trust_domain_aliases)
    principal = None
    if draw(st.integers(0, 3)):  # a quarter of the requests are plaintext
        td = draw(st.sampled_from(peer_tds))
        principal = (
            f"{td}/ns/{draw(st.sampled_from(MESH_NAMESPACES))}/sa/{draw(st.sampled_from(ACCOUNTS))}"
        )
    http = draw(
        st.none()
        | st.builds(
            HttpRequest,
            st.sampled_from(METHODS),
            st.sampled_from(PATHS),
            st.sampled_from(HOSTS),
            st.lists(st.sampled_from(HEADERS), max_size=2, unique=True).map(tuple),
        )
    )
    return Request(
        principal,
        draw(st.sampled_from(SOURCE_IPS)),
        draw(st.sampled_from(("10.9.0.1", "10.2.0.1"))),
        draw(st.sampled_from(PORTS)),
        http,
    )


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[list[AuthorizationPolicy], list[Request], MeshConfig]:
    """A policy set with several requests against it (cheap, and more decisions per example)."""
    config = draw(CONFIGS)
    reqs = draw(st.lists(requests_for(config), min_size=1, max_size=8))
    identities = [r.principal.split("/") for r in reqs if r.principal]
    hint = None
    if identities:
        td, _, ns, _, sa = identities[0]
        local = (config.trust_domain, *config.trust_domain_aliases, "cluster.local")
        hint = (ns, sa, tuple(t for t in local if t != td))
    return draw(policy_sets(hint)), reqs, config
