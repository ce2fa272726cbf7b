"""Observed traffic: one record per flow-log line, whatever tool wrote it.

The readers in `kubezt.dialects.flows` turn Calico (Goldmane/Whisker), Istio/Envoy (sidecar
and waypoint) access-log, ztunnel access-log and Hubble lines into `FlowRecord`s; `learn`
folds them into an intent and `replay` puts each one through the evaluator. Pure, frozen data.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from kubezt.ir.ports import Protocol


class FlowFormat(StrEnum):
    """The flow-log formats kubezt reads (`--format`)."""

    CALICO = "calico"
    """Calico open-source flow logs: Goldmane `Flow` / Whisker `/flows` JSON lines."""
    ENVOY = "envoy"
    """Istio/Envoy access logs: Istio's default text format or its JSON encoding."""
    HUBBLE = "hubble"
    """Cilium Hubble flows: `hubble observe -o jsonpb` (or `-o json`) lines."""
    ZTUNNEL = "ztunnel"
    """Istio ambient ztunnel access logs: its text lines or its JSON lines."""


class Observed(StrEnum):
    """What the data plane did with the flow, as the log says."""

    ALLOWED = "allowed"
    DENIED = "denied"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class FlowEnd:
    """One end of an observed flow, with whatever the log tells about it.

    `name` is a pod name or a generate-name aggregate (Calico's `customer-5d7f8c-*`); `kind`
    is the upstream endpoint type (`wep`, `hep`, `ns`, `net`, `pub`, `pvt`, `world`, …) when
    the log says it; `principal` is an Istio/SPIFFE identity (`cluster.local/ns/x/sa/y`).
    """

    namespace: str = ""
    name: str = ""
    ip: str = ""
    principal: str = ""
    kind: str = ""
    labels: tuple[tuple[str, str], ...] = ()

    @property
    def is_empty(self) -> bool:
        return not (self.namespace or self.name or self.ip or self.principal)


@dataclass(frozen=True, slots=True)
class FlowRecord:
    """One observed connection (or HTTP request), with where it was read."""

    file: str
    line: int
    src: FlowEnd
    dst: FlowEnd
    port: int
    """Destination port as the log records it (the pod's port; Envoy outbound: the upstream's)."""
    protocol: Protocol = Protocol.TCP
    observed: Observed = Observed.UNKNOWN
    time: float | None = None
    """Seconds since the epoch (start of the flow or request), when the log says."""
    end_time: float | None = None
    count: int = 1
    """Connections (or requests) the line stands for (Calico aggregates)."""
    service_namespace: str = ""
    service_name: str = ""
    service_port: int = 0
    method: str = ""
    path: str = ""
    host: str = ""
    reporter: str = ""
    """`src`/`dst` (Calico), `inbound`/`outbound` (Envoy sidecar, ztunnel), `waypoint`,
    `ingress`/`egress` (Hubble)."""
    policies: tuple[str, ...] = ()
    """Policy hits the log names (`tier/kind/namespace/name#rule=action`)."""

    @property
    def is_http(self) -> bool:
        return bool(self.method or self.path)

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"
