"""L3/L4 policy IR: tiers, policies and ordered rules with Allow/Deny/Pass/Log actions.

Kubernetes NetworkPolicies lower into this model the way Calico's converter does (tier
`default`, order 1000, one Allow rule per peer and protocol), so one evaluator decides both.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TypeAlias

from kubezt.ir.ports import PortSet
from kubezt.ir.provenance import Source
from kubezt.ir.selectors import Selector

Network: TypeAlias = ipaddress.IPv4Network | ipaddress.IPv6Network


class Direction(StrEnum):
    INGRESS = "Ingress"
    EGRESS = "Egress"


class Action(StrEnum):
    ALLOW = "Allow"
    DENY = "Deny"
    LOG = "Log"
    PASS = "Pass"


class Dialect(StrEnum):
    K8S = "k8s"
    CALICO = "calico"
    POLICY_API = "policy-api"
    """SIG-Network policy API: ClusterNetworkPolicy (v1alpha2), AdminNetworkPolicy and
    BaselineAdminNetworkPolicy (v1alpha1). Equal priorities in a tier have no defined order."""


class Unresolved(StrEnum):
    """Addresses a rule side names that the input cannot resolve to IPs."""

    NODES = "nodes"
    """Nodes whose addresses are not in the input: possibly any non-pod-network address."""
    DOMAINS = "domains"
    """DNS names: possibly any address (a name can resolve to anything)."""


class NamespaceScope(StrEnum):
    """How a rule side's `namespaceSelector` (or its absence) scopes its endpoint selection."""

    ANY = "any"
    """Endpoints of any namespace (GlobalNetworkPolicy without namespaceSelector)."""
    OWN = "own"
    """Endpoints of the policy's own namespace (namespaced policy without namespaceSelector)."""
    SELECTED = "selected"
    """Endpoints of namespaces whose labels match `namespace_selector`."""
    GLOBAL = "global"
    """`global()`: non-namespaced objects only (GlobalNetworkSets, host endpoints)."""


@dataclass(frozen=True, slots=True)
class EntityMatch:
    """One side (source or destination) of a rule; every present criterion must match.

    `None` means the criterion is absent. Endpoint criteria (`selector`, `not_selector`,
    `namespace_selector`, `service_account_*`, `services`) only ever match known endpoints;
    `nets`/`not_nets` match addresses, inside or outside the cluster.
    """

    nets: tuple[Network, ...] | None = None
    not_nets: tuple[Network, ...] | None = None
    selector: Selector | None = None
    not_selector: Selector | None = None
    namespace_scope: NamespaceScope = NamespaceScope.ANY
    namespace_selector: Selector | None = None
    service_account_names: frozenset[str] | None = None
    service_account_selector: Selector | None = None
    services: tuple[str, str] | None = None
    """(namespace, name) of a Kubernetes Service whose endpoints this side matches."""
    ports: PortSet | None = None
    not_ports: PortSet | None = None
    unresolved: Unresolved | None = None
    """Besides `nets` (if any), addresses kubezt cannot resolve: they never certainly match,
    and possibly match the peers `Unresolved` names (an Accept does not match them, a Deny or
    Pass does)."""

    @property
    def selects_endpoints(self) -> bool:
        """True when the side restricts matches to known endpoints (Calico adds the positive
        namespace term whenever any endpoint criterion is present)."""
        return (
            self.selector is not None
            or self.not_selector is not None
            or self.namespace_selector is not None
            or self.namespace_scope is NamespaceScope.GLOBAL
            or self.service_account_names is not None
            or self.service_account_selector is not None
            or self.services is not None
        )

    @property
    def is_empty(self) -> bool:
        return self == EMPTY_ENTITY


EMPTY_ENTITY = EntityMatch()


@dataclass(frozen=True, slots=True)
class HttpMatch:
    """Calico `http` clause: only Application Layer Policy (Dikastes) enforces it."""

    methods: tuple[str, ...] = ()
    exact_paths: tuple[str, ...] = ()
    prefix_paths: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Rule:
    action: Action
    protocol: int | None = None
    """IANA protocol number, None for any protocol."""
    not_protocol: int | None = None
    source: EntityMatch = EMPTY_ENTITY
    destination: EntityMatch = EMPTY_ENTITY
    ip_version: int | None = None
    icmp: bool = False
    """The rule has an icmp/notICMP clause (only ICMP packets can match it)."""
    http: HttpMatch | None = None
    index: int | None = field(default=None, compare=False)
    """The rule's position in its policy as written (K8s rules expand into several IR rules)."""
    origin: Source | None = field(default=None, compare=False)
    """The rule (and for K8s, the peer) this IR rule was lowered from."""
    name: str = field(default="", compare=False)
    """The rule's own name where the API has one (policy API rules)."""


@dataclass(frozen=True, slots=True)
class Tier:
    name: str
    order: float | None
    default_action: Action = Action.DENY
    source: Source | None = field(default=None, compare=False)


DEFAULT_TIER_ORDER = 1_000_000.0
K8S_POLICY_ORDER = 1000.0

# Calico's built-in tiers for the SIG-Network policy API (libcalico-go lib/names and
# api/pkg/apis/projectcalico/v3 tier.go: KubeAdminTierOrder, KubeBaselineTierOrder). From
# Calico 3.29 to 3.31, AdminNetworkPolicy and BaselineAdminNetworkPolicy sat in tiers
# `adminnetworkpolicy` and `baselineadminnetworkpolicy` at the same orders; 3.32 puts
# ClusterNetworkPolicy in `kube-admin` and `kube-baseline`. All default to Pass.
KUBE_ADMIN_TIER = "kube-admin"
KUBE_BASELINE_TIER = "kube-baseline"
ANP_TIER = "adminnetworkpolicy"
BANP_TIER = "baselineadminnetworkpolicy"
ADMIN_TIER_ORDER = 1_000.0
BASELINE_TIER_ORDER = 10_000_000.0
BUILTIN_TIERS: dict[str, Tier] = {
    "default": Tier("default", DEFAULT_TIER_ORDER),
    KUBE_ADMIN_TIER: Tier(KUBE_ADMIN_TIER, ADMIN_TIER_ORDER, Action.PASS),
    KUBE_BASELINE_TIER: Tier(KUBE_BASELINE_TIER, BASELINE_TIER_ORDER, Action.PASS),
    ANP_TIER: Tier(ANP_TIER, ADMIN_TIER_ORDER, Action.PASS),
    BANP_TIER: Tier(BANP_TIER, BASELINE_TIER_ORDER, Action.PASS),
}
"""Tiers that exist in every cluster (Calico creates them; without Calico they stand for the
policy API's Admin → NetworkPolicy → Baseline order)."""


@dataclass(frozen=True, slots=True)
class Policy:
    """A K8s NetworkPolicy or a Calico (Global)NetworkPolicy, in Calico's evaluation model."""

    dialect: Dialect
    kind: str
    name: str
    namespace: str | None
    """None for cluster-scoped (global) policies."""
    tier: str = "default"
    order: float | None = None
    selector: Selector | None = None
    """Endpoint selector over pod labels (None = all endpoints in scope)."""
    namespace_selector: Selector | None = None
    service_account_selector: Selector | None = None
    types: frozenset[Direction] = frozenset({Direction.INGRESS})
    ingress: tuple[Rule, ...] = ()
    egress: tuple[Rule, ...] = ()
    staged: bool = False
    """Staged policies are parsed and explained, never enforced."""
    source: Source | None = field(default=None, compare=False)

    @property
    def ref(self) -> str:
        return (
            f"{self.kind} {self.namespace}/{self.name}"
            if self.namespace
            else (f"{self.kind} {self.name}")
        )

    def rules(self, direction: Direction) -> tuple[Rule, ...]:
        return self.ingress if direction is Direction.INGRESS else self.egress

    @property
    def sort_key(self) -> tuple[float, str]:
        # felix policy_sorter: order ascending, absent order last, ties by name/namespace/kind.
        order = self.order if self.order is not None else float("inf")
        return (order, f"{self.name}/{self.namespace or ''}/{self.kind}")


@dataclass(frozen=True, slots=True)
class NetworkSet:
    """Calico (Global)NetworkSet: labelled CIDRs that rule selectors match like endpoints."""

    name: str
    namespace: str | None
    labels: tuple[tuple[str, str], ...]
    nets: tuple[Network, ...]
    source: Source | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class PolicySet:
    """Every L3/L4 policy, tier and network set of an analysis."""

    policies: tuple[Policy, ...] = ()
    tiers: tuple[Tier, ...] = ()
    network_sets: tuple[NetworkSet, ...] = ()

    def tier(self, name: str) -> Tier:
        for t in self.tiers:
            if t.name == name:
                return t
        builtin = BUILTIN_TIERS.get(name)
        if builtin is not None:
            return builtin
        # A policy naming a tier that is not declared: Calico rejects it; the loader reports it.
        return Tier(name, None)
