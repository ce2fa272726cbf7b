"""The in-memory cluster model (apps, namespaces, nodes) and small pure helpers."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from .catalog import Component, Obj, PortSpec


@dataclass
class App:
    name: str
    namespace: str
    domain: str
    tier: str
    component: Component
    replicas: int
    sa: str = "default"
    versions: list[tuple[str, str, int]] = field(default_factory=list)  # (version, hash, count)
    callers: list[tuple[App, PortSpec]] = field(default_factory=list)
    deps: list[tuple[App, PortSpec]] = field(default_factory=list)
    extra_labels: dict[str, str] = field(default_factory=dict)

    @property
    def ports(self) -> tuple[PortSpec, ...]:
        return self.component.ports

    def port(self, name: str) -> PortSpec | None:
        return next((p for p in self.ports if p.name == name), None)

    def primary_port(self) -> PortSpec:
        for name in ("grpc", "http", "https"):
            p = self.port(name)
            if p is not None:
                return p
        return self.ports[0]


@dataclass
class Namespace:
    name: str
    domain: str
    env: str
    labels: dict[str, str]
    budget: int = 0
    apps: list[App] = field(default_factory=list)
    mesh: str | None = None  # None | "sidecar" | "ambient"
    waypoint: bool = False

    def app(self, name: str) -> App | None:
        return next((a for a in self.apps if a.name == name), None)


@dataclass
class Node:
    name: str
    ip: str
    pod_cidr: str
    zone: str
    free: list[int]
    load: int = 0


def valid_label_value(value: str) -> str:
    if len(value) > 63:
        raise ValueError(f"label value too long: {value!r}")
    return value


def sp(name: str, port: int, target: int | str, protocol: str = "TCP") -> Obj:
    """A Service port entry."""
    return {"name": name, "port": port, "protocol": protocol, "targetPort": target}


def fmt_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def largest_remainder(total: int, weights: list[float], minimum: int = 0) -> list[int]:
    """Split `total` into integers proportional to `weights`, each at least `minimum`."""
    n = len(weights)
    if n == 0:
        return []
    base = [minimum] * n
    rest = total - minimum * n
    if rest < 0:
        raise ValueError("total too small for the minimum share")
    s = sum(weights) or 1.0
    raw = [rest * w / s for w in weights]
    floors = [int(r) for r in raw]
    short = rest - sum(floors)
    order = sorted(range(n), key=lambda i: (raw[i] - floors[i], -i), reverse=True)
    for i in order[:short]:
        floors[i] += 1
    return [b + f for b, f in zip(base, floors, strict=True)]
