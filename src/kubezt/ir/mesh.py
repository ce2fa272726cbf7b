"""Istio mesh IR: PeerAuthentication, AuthorizationPolicy, DestinationRule and waypoints.

Values keep the fields as written (string patterns, ports as strings); matching them against a
request is the engine's job (`kubezt.engine.authz`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from enum import StrEnum

from kubezt.ir.provenance import Source
from kubezt.ir.topology import Labels


class MtlsMode(StrEnum):
    UNSET = "UNSET"
    DISABLE = "DISABLE"
    PERMISSIVE = "PERMISSIVE"
    STRICT = "STRICT"


@dataclass(frozen=True, slots=True)
class PeerAuthentication:
    name: str
    namespace: str
    selector: Labels | None
    """`selector.matchLabels`; None (or empty) = namespace-wide / mesh-wide."""
    mode: MtlsMode = MtlsMode.UNSET
    port_modes: tuple[tuple[int, MtlsMode], ...] = ()
    created: str = ""
    """creationTimestamp as written; among policies of one scope the oldest wins."""
    source: Source | None = field(default=None, compare=False)


class AuthzAction(StrEnum):
    ALLOW = "ALLOW"
    DENY = "DENY"
    AUDIT = "AUDIT"
    CUSTOM = "CUSTOM"


Patterns = tuple[str, ...] | None
"""A list field of a source/operation: None when absent (no condition)."""


@dataclass(frozen=True, slots=True)
class AuthzSource:
    principals: Patterns = None
    not_principals: Patterns = None
    request_principals: Patterns = None
    not_request_principals: Patterns = None
    namespaces: Patterns = None
    not_namespaces: Patterns = None
    service_accounts: Patterns = None
    not_service_accounts: Patterns = None
    ip_blocks: Patterns = None
    not_ip_blocks: Patterns = None
    remote_ip_blocks: Patterns = None
    not_remote_ip_blocks: Patterns = None
    trust_domains: Patterns = None
    not_trust_domains: Patterns = None


@dataclass(frozen=True, slots=True)
class AuthzOperation:
    hosts: Patterns = None
    not_hosts: Patterns = None
    ports: Patterns = None
    not_ports: Patterns = None
    methods: Patterns = None
    not_methods: Patterns = None
    paths: Patterns = None
    not_paths: Patterns = None


@dataclass(frozen=True, slots=True)
class AuthzCondition:
    key: str
    values: Patterns = None
    not_values: Patterns = None


@dataclass(frozen=True, slots=True)
class AuthzRule:
    sources: tuple[AuthzSource, ...] | None = None
    """`from[].source`; None when `from` is absent (any source)."""
    operations: tuple[AuthzOperation, ...] | None = None
    """`to[].operation`; None when `to` is absent (any operation)."""
    conditions: tuple[AuthzCondition, ...] = ()
    index: int = 0


@dataclass(frozen=True, slots=True)
class TargetRef:
    kind: str
    name: str
    group: str = ""
    namespace: str = ""


@dataclass(frozen=True, slots=True)
class AuthorizationPolicy:
    name: str
    namespace: str
    action: AuthzAction = AuthzAction.ALLOW
    selector: Labels | None = None
    target_refs: tuple[TargetRef, ...] = ()
    rules: tuple[AuthzRule, ...] = ()
    """An empty tuple never matches (`spec: {}` is allow-nothing)."""
    provider: str = ""
    dry_run: bool = False
    source: Source | None = field(default=None, compare=False)

    @property
    def ref(self) -> str:
        return f"AuthorizationPolicy {self.namespace}/{self.name}"


class TlsMode(StrEnum):
    DISABLE = "DISABLE"
    SIMPLE = "SIMPLE"
    MUTUAL = "MUTUAL"
    ISTIO_MUTUAL = "ISTIO_MUTUAL"


@dataclass(frozen=True, slots=True)
class DestinationRule:
    name: str
    namespace: str
    host: str
    tls_mode: TlsMode | None = None
    port_tls: tuple[tuple[int, TlsMode], ...] = ()
    """`trafficPolicy.portLevelSettings[].tls.mode` by Service port number."""
    source: Source | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class Waypoint:
    """A Gateway of class `istio-waypoint`; Istio runs it under the SA named after it."""

    name: str
    namespace: str
    waypoint_for: str = "service"
    """service (default) | workload | all | none (label istio.io/waypoint-for)."""
    source: Source | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class MeshPolicies:
    peer_authentications: tuple[PeerAuthentication, ...] = ()
    authorization_policies: tuple[AuthorizationPolicy, ...] = ()
    destination_rules: tuple[DestinationRule, ...] = ()
    waypoints: tuple[Waypoint, ...] = ()
    _authz_by_ns: dict[str, tuple[AuthorizationPolicy, ...]] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        by_ns: dict[str, list[AuthorizationPolicy]] = {}
        for policy in self.authorization_policies:
            by_ns.setdefault(policy.namespace, []).append(policy)
        object.__setattr__(self, "_authz_by_ns", {k: tuple(v) for k, v in by_ns.items()})

    def replaced(self, **fields: object) -> MeshPolicies:
        """A copy with `fields` replaced; the index of AuthorizationPolicies is shared when they
        stay (incremental updates make one per change)."""
        if "authorization_policies" in fields:
            return dataclasses.replace(self, **fields)  # type: ignore[arg-type]
        out = object.__new__(MeshPolicies)
        assert set(fields) <= {f.name for f in dataclasses.fields(self) if f.init}
        for f in dataclasses.fields(self):
            object.__setattr__(out, f.name, fields.get(f.name, getattr(self, f.name)))
        object.__setattr__(out, "_authz_by_ns", self._authz_by_ns)
        return out

    def authorization_in(self, *namespaces: str) -> tuple[AuthorizationPolicy, ...]:
        """AuthorizationPolicies of these namespaces (each namespace once), in input order."""
        out: tuple[AuthorizationPolicy, ...] = ()
        for ns in dict.fromkeys(namespaces):
            out += self._authz_by_ns.get(ns, ())
        return out
