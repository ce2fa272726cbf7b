"""What readers accumulate while reading every document of one load."""

from __future__ import annotations

from dataclasses import dataclass, field

from kubezt.errors import DiagnosticSink
from kubezt.ir.mesh import AuthorizationPolicy, DestinationRule, PeerAuthentication, Waypoint
from kubezt.ir.policy import NetworkSet, Policy, Tier
from kubezt.ir.topology import Namespace, Service, ServiceAccount, Workload


@dataclass(slots=True)
class ReadContext:
    sink: DiagnosticSink
    namespaces: list[Namespace] = field(default_factory=list)
    service_accounts: list[ServiceAccount] = field(default_factory=list)
    workloads: list[Workload] = field(default_factory=list)
    services: list[Service] = field(default_factory=list)
    policies: list[Policy] = field(default_factory=list)
    tiers: list[Tier] = field(default_factory=list)
    network_sets: list[NetworkSet] = field(default_factory=list)
    peer_authentications: list[PeerAuthentication] = field(default_factory=list)
    authorization_policies: list[AuthorizationPolicy] = field(default_factory=list)
    destination_rules: list[DestinationRule] = field(default_factory=list)
    waypoints: list[Waypoint] = field(default_factory=list)
    mesh_settings: dict[str, object] = field(default_factory=dict)
    """Settings read from the mesh ConfigMap (MeshConfig field name → value)."""
    skipped: list[str] = field(default_factory=list)
    """`file:line Kind name` of objects whose kind kubezt does not read."""
