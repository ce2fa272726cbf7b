"""The whole analysed input: topology plus every policy layer, as one immutable value."""

from __future__ import annotations

from dataclasses import dataclass, field

from kubezt.ir.config import MeshConfig
from kubezt.ir.mesh import MeshPolicies
from kubezt.ir.policy import PolicySet
from kubezt.ir.topology import Topology


@dataclass(frozen=True, slots=True)
class Model:
    topology: Topology
    policies: PolicySet = field(default_factory=PolicySet)
    mesh_config: MeshConfig = field(default_factory=MeshConfig)
    mesh: MeshPolicies = field(default_factory=MeshPolicies)
