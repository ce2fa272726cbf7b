"""Analysis settings that come from the mesh configuration or the command line."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import StrEnum


class AmbientWirePort(StrEnum):
    """Which destination port L3/L4 policy sees for ambient mesh traffic without a waypoint."""

    UPSTREAM_15008 = "upstream-15008"
    """Upstream Istio: HBONE to port 15008 of the destination pod."""
    CALICO_PRESERVED = "calico-preserved"
    """Calico 3.32's bundled ztunnel keeps the original destination port."""


@dataclass(frozen=True, slots=True)
class MeshConfig:
    """Istio mesh settings (meshConfig) and data-plane switches kubezt needs to decide."""

    root_namespace: str = "istio-system"
    trust_domain: str = "cluster.local"
    trust_domain_aliases: tuple[str, ...] = ()
    enable_auto_mtls: bool = True
    calico_alp: bool = False
    """Calico application layer policy (Dikastes) runs on sidecar pods."""
    ambient_wire_port: AmbientWirePort = AmbientWirePort.UPSTREAM_15008

    def overridden(
        self,
        *,
        root_namespace: str | None = None,
        trust_domain: str | None = None,
        trust_domain_aliases: tuple[str, ...] = (),
    ) -> MeshConfig:
        """These settings with the given ones in place (each only when given)."""
        return dataclasses.replace(
            self,
            root_namespace=root_namespace or self.root_namespace,
            trust_domain=trust_domain or self.trust_domain,
            trust_domain_aliases=trust_domain_aliases or self.trust_domain_aliases,
        )
