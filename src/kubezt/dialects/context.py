"""What readers accumulate while reading every document of one load."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from kubezt.errors import DiagnosticSink
from kubezt.ir.mesh import AuthorizationPolicy, DestinationRule, PeerAuthentication, Waypoint
from kubezt.ir.policy import NetworkSet, Policy, Tier
from kubezt.ir.provenance import Source
from kubezt.ir.topology import Namespace, Node, Service, ServiceAccount, Workload

if TYPE_CHECKING:
    from kubezt.dialects._reader import Cursor


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
    nodes: list[Node] = field(default_factory=list)
    mesh_settings: dict[str, object] = field(default_factory=dict)
    """Settings read from the mesh ConfigMap (MeshConfig field name → value)."""
    skipped: list[str] = field(default_factory=list)
    """`file:line Kind name` of objects whose kind kubezt does not read."""
    finishers: list[Callable[[ReadContext], None]] = field(default_factory=list)
    """Checks that need every document read first (e.g. a Calico policy naming a Tier declared
    in a later file); `assemble()` runs them in order."""


Reader = Callable[["Cursor", "Cursor", Source, ReadContext], None]
"""A dialect reader: (object root, its metadata, the object's Source, the shared context)."""
