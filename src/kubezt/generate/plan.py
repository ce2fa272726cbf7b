"""What every target-dialect generator shares: the rollout phases (file names), the decisions
that depend on the data-plane mode (where waypoints go, which grants travel through them), object
naming and the provenance annotations.

Owns no dialect: `calico`, `istio`, `k8s`, `spire` and `platform` turn a `Plan` into plain
dicts. Sources: semantics.md §5.4 (waypoints, what the destination ztunnel sees), §7.3 (rollout
order).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from kubezt.ir.intent import Grant, Identity, Intent, Mode, Service, ServiceRef
from kubezt.ir.ports import Protocol
from kubezt.ir.selectors import Equals, In, Selector, conjunction

ENTRY_ANNOTATION = "kubezt.io/intent-entry"
"""Which entries of the intent an object was generated from (comma-separated)."""
REASON_ANNOTATION = "kubezt.io/exception-reason"
INTENT_LABEL = "kubezt.io/intent"
"""On every generated object the intent owns alone, so `kubectl delete -l kubezt.io/intent=<name>`
removes them; never on shared objects (`SHARED_KINDS`, the mesh-wide PeerAuthentication)."""
SHARED_KINDS = frozenset(
    {"Namespace", "Tier", "FelixConfiguration", "Installation", "APIServer", "IstioOperator"}
)
"""Objects that exist without the intent or are shared with other intents: deleting them by
label would delete a namespace, a Calico tier, Felix's configuration or the installation."""

WAYPOINT = "waypoint"
"""The waypoint Gateway of a namespace; Istio runs it as the ServiceAccount of that name."""
WAYPOINT_LABEL = "gateway.networking.k8s.io/gateway-name"
HBONE_PORT = 15008
PROBE_SOURCES = ("169.254.7.127/32", "fd16:9254:7127:1337:ffff:ffff:ffff:ffff/128")
"""Where istio-cni SNATs kubelet probes to ambient pods from (semantics.md §3.5)."""
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"


class Phase(Enum):
    """Rollout phases in apply order (semantics.md §7.3); the value is the file name."""

    PLATFORM_CALICO = "00-platform-calico.yaml"
    PLATFORM_ISTIO = "01-platform-istio.yaml"
    SPIRE = "05-spire.yaml"
    SERVICE_ACCOUNTS = "10-serviceaccounts.yaml"
    CALICO_PLATFORM = "20-calico-platform.yaml"
    CALICO_ALLOW = "30-calico-allow.yaml"
    WAYPOINTS = "40-waypoints.yaml"
    MESH_ENROLMENT = "50-mesh-enrolment.yaml"
    PEER_AUTHENTICATION = "60-peer-authentication.yaml"
    AUTHORIZATION_ALLOW = "70-authorization-allow.yaml"
    AUTHORIZATION_DEFAULT_DENY = "80-authorization-default-deny.yaml"
    DEFAULT_DENY = "90-default-deny.yaml"

    @property
    def file(self) -> str:
        return str(self.value)


KIND_ORDER = (
    "Installation",
    "APIServer",
    "IstioOperator",
    "ClusterSPIFFEID",
    "Namespace",
    "ServiceAccount",
    "Tier",
    "FelixConfiguration",
    "GlobalNetworkPolicy",
    "NetworkPolicy",
    "Gateway",
    "ServiceEntry",
    "PeerAuthentication",
    "AuthorizationPolicy",
)
"""Within one file: objects others depend on (a Tier before its policies) first."""


@dataclass(frozen=True, slots=True)
class Manifest:
    """One generated object and the phase it belongs to."""

    phase: Phase
    body: Mapping[str, Any]

    @property
    def sort_key(self) -> tuple[int, int, str, str]:
        meta = self.body["metadata"]
        kind = self.body["kind"]
        rank = KIND_ORDER.index(kind) if kind in KIND_ORDER else len(KIND_ORDER)
        return (rank, 0, meta.get("namespace", ""), meta["name"])


_LABEL_CHARS = re.compile(r"[^a-z0-9-]+")


@dataclass
class Names:
    """DNS-label object names: readable, unique per (kind, namespace), deterministic.

    A name longer than 63 characters, or one that two different part tuples would share,
    gets a short hash of its parts."""

    taken: dict[tuple[str, str, str], tuple[str, ...]] = field(default_factory=dict)

    def label(self, kind: str, namespace: str, *parts: str) -> str:
        base = _LABEL_CHARS.sub("-", "-".join(p.lower() for p in parts if p)).strip("-") or "x"
        owner = self.taken.get((kind, namespace, base))
        if len(base) <= 63 and (owner is None or owner == parts):
            self.taken[(kind, namespace, base)] = parts
            return base
        digest = hashlib.sha256("\0".join(parts).encode()).hexdigest()[:8]
        name = f"{base[:54].rstrip('-')}-{digest}"
        self.taken[(kind, namespace, name)] = parts
        return name


@dataclass
class Plan:
    """An intent, the mode it is compiled for, and the decisions derived from them."""

    intent: Intent
    mode: Mode
    names: Names = field(default_factory=Names)

    @property
    def ambient(self) -> bool:
        return self.mode is Mode.AMBIENT

    @property
    def waypoints(self) -> tuple[str, ...]:
        """Namespaces that get a waypoint: ambient, and some grant there limits HTTP requests
        (L7 rules need a waypoint; ztunnel enforces L4 only)."""
        if not self.ambient:
            return ()
        return tuple(
            sorted({g.service.namespace for g in self.intent.grants if g.http is not None})
        )

    @property
    def ingress_waypoints(self) -> tuple[str, ...]:
        """Namespaces where the ingress gateway must route through the waypoint (an ingress
        grant limits HTTP requests): labelled `istio.io/ingress-use-waypoint`."""
        if not self.ambient:
            return ()
        return tuple(
            sorted(
                {
                    g.service.namespace
                    for g in self.intent.grants
                    if g.from_gateway and g.http is not None
                }
            )
        )

    def via_waypoint(self, grant: Grant) -> bool:
        """Requests of this grant addressed to the Service travel through the waypoint."""
        ns = grant.service.namespace
        if ns not in self.waypoints:
            return False
        return not grant.from_gateway or ns in self.ingress_waypoints

    def direct(self, grant: Grant) -> bool:
        """The caller may reach the pods without a waypoint (pod address, or no waypoint):
        every grant that does not limit HTTP requests."""
        return grant.http is None

    def waypoint_identity(self, namespace: str) -> Identity:
        return Identity(namespace, WAYPOINT)

    def service(self, ref: ServiceRef) -> Service:
        return self.intent.service(ref)

    def meta(
        self,
        kind: str,
        name: str,
        namespace: str | None,
        entries: Iterable[str],
        *,
        labels: Mapping[str, str] | None = None,
        annotations: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """`metadata` with the provenance annotation (and the intent label)."""
        meta: dict[str, Any] = {"name": name}
        if namespace is not None:
            meta["namespace"] = namespace
        all_labels = dict(labels or {})
        mesh_wide = kind == "PeerAuthentication" and namespace == self.intent.root_namespace
        if kind not in SHARED_KINDS and not mesh_wide:
            all_labels[INTENT_LABEL] = self.intent.name
        if all_labels:
            meta["labels"] = dict(sorted(all_labels.items()))
        notes = {ENTRY_ANNOTATION: ", ".join(dict.fromkeys(entries)), **(annotations or {})}
        meta["annotations"] = dict(sorted(notes.items()))
        return meta


def by_protocol(ports: Iterable[tuple[int, Protocol]]) -> list[tuple[Protocol, list[int]]]:
    """Port numbers grouped by protocol, both sorted (Calico rules carry one protocol)."""
    grouped: dict[Protocol, set[int]] = {}
    for number, protocol in ports:
        grouped.setdefault(protocol, set()).add(number)
    order = [Protocol.TCP, Protocol.UDP, Protocol.SCTP]
    return [(p, sorted(grouped[p])) for p in order if p in grouped]


def label_selector(labels: Mapping[str, str]) -> str:
    """A Calico selector expression for `matchLabels`."""
    return str(conjunction(*(Equals(k, v) for k, v in sorted(labels.items()))))


def namespace_selector(*namespaces: str) -> str:
    """A Calico namespaceSelector for these namespaces (by their name label)."""
    names = sorted(set(namespaces))
    selector: Selector = (
        Equals(NAMESPACE_NAME_LABEL, names[0])
        if len(names) == 1
        else In(NAMESPACE_NAME_LABEL, frozenset(names))
    )
    return str(selector)


def cidr_families(cidrs: Iterable[str]) -> list[list[str]]:
    """CIDRs split by address family (a Calico rule holds one family), IPv4 first."""
    v4 = [c for c in cidrs if ":" not in c]
    v6 = [c for c in cidrs if ":" in c]
    return [group for group in (v4, v6) if group]
