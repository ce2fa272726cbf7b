"""The cluster as policies see it: namespaces, service accounts, workloads, services, mesh.

A `Workload` is a Pod, or the pod template of a controller (Deployment, StatefulSet, …); its id is
`namespace/name` of that object. Everything is frozen and hashable.
"""

from __future__ import annotations

import dataclasses
from collections.abc import ItemsView, Iterator, KeysView, Mapping, Sequence, ValuesView
from dataclasses import dataclass, field
from enum import StrEnum

from kubezt.ir.ports import PortKey, Protocol
from kubezt.ir.provenance import Source


class Labels(Mapping[str, str]):
    """An immutable, hashable label set (interning keeps equal sets cheap to compare)."""

    __slots__ = ("_data", "_hash", "_key")

    def __init__(self, data: Mapping[str, str] | None = None) -> None:
        self._data: dict[str, str] = dict(data or {})
        self._key: tuple[tuple[str, str], ...] = tuple(sorted(self._data.items()))
        self._hash = hash(self._key)

    def __getitem__(self, key: str) -> str:
        return self._data[key]

    def get(self, key: str, default: str | None = None) -> str | None:  # type: ignore[override]
        return self._data.get(key, default)

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def items(self) -> ItemsView[str, str]:
        return self._data.items()

    def keys(self) -> KeysView[str]:
        return self._data.keys()

    def values(self) -> ValuesView[str]:
        return self._data.values()

    def matches(self, labels: Mapping[str, str]) -> bool:
        """True when every label of this set is in `labels` with the same value
        (a `matchLabels` selector)."""
        get = labels.get
        return all(get(k) == v for k, v in self._data.items())

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Labels):
            return self._key == other._key
        if isinstance(other, Mapping):
            return self._data == dict(other)
        return NotImplemented

    def __repr__(self) -> str:
        return f"Labels({self._data!r})"

    @property
    def key(self) -> tuple[tuple[str, str], ...]:
        return self._key

    def merged(self, extra: Mapping[str, str]) -> Labels:
        data = dict(self._data)
        data.update(extra)
        return Labels(data)


EMPTY_LABELS = Labels()


class MeshMode(StrEnum):
    NONE = "none"
    SIDECAR = "sidecar"
    AMBIENT = "ambient"


class ProxyRole(StrEnum):
    """What an Istio-managed pod is, beyond an application workload."""

    NONE = "none"
    WAYPOINT = "waypoint"
    GATEWAY = "gateway"


@dataclass(frozen=True, slots=True)
class Namespace:
    name: str
    labels: Labels
    declared: bool = True
    """False for a namespace that objects reference but no manifest declares."""
    source: Source | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class ServiceAccount:
    namespace: str
    name: str
    labels: Labels = EMPTY_LABELS
    declared: bool = True
    source: Source | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True, order=True)
class ContainerPort:
    port: int
    protocol: Protocol
    name: str = ""

    @property
    def key(self) -> PortKey:
        return PortKey(self.port, self.protocol, self.name)


@dataclass(frozen=True, slots=True)
class Workload:
    """A Pod or a controller's pod template: what policies select and what connects."""

    namespace: str
    name: str
    kind: str
    labels: Labels
    service_account: str = "default"
    ports: tuple[ContainerPort, ...] = ()
    ips: tuple[str, ...] = ()
    host_network: bool = False
    annotations: Labels = EMPTY_LABELS
    replicas: int = 1
    """Pods this workload stands for (1 for a Pod)."""
    source: Source | None = field(default=None, compare=False)

    @property
    def id(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def ip(self) -> str | None:
        return self.ips[0] if self.ips else None

    def named_port(self, name: str) -> ContainerPort | None:
        for cp in self.ports:
            if cp.name == name:
                return cp
        return None

    def port_key(self, port: int, protocol: Protocol) -> PortKey:
        """The key of `port/protocol` on this workload, with its declared name if any."""
        for cp in self.ports:
            if cp.port == port and cp.protocol is protocol:
                return cp.key
        return PortKey(port, protocol)


@dataclass(frozen=True, slots=True)
class ServicePort:
    port: int
    target_port: int | str
    protocol: Protocol = Protocol.TCP
    name: str = ""
    app_protocol: str = ""

    def target_on(self, workload: Workload) -> int | None:
        """The container port this Service port sends to on `workload` (a named targetPort is
        resolved against the workload's ports; None when it declares no such name)."""
        if isinstance(self.target_port, int):
            return self.target_port
        named = workload.named_port(self.target_port)
        return named.port if named else None

    @property
    def declared_protocol(self) -> str:
        """The protocol the port declares to Istio: appProtocol, else the name's prefix
        (`<protocol>[-suffix]`), lower case."""
        return (self.app_protocol or self.name.split("-", 1)[0]).lower()


@dataclass(frozen=True, slots=True)
class Service:
    namespace: str
    name: str
    selector: Labels | None
    """None: a Service without selector (endpoints managed elsewhere) selects no workload."""
    ports: tuple[ServicePort, ...] = ()
    labels: Labels = EMPTY_LABELS
    source: Source | None = field(default=None, compare=False)
    cluster_ip: str | None = None
    """`spec.clusterIP`: the virtual IP clients connect to; "None" for a headless Service
    (clients connect to the pod addresses); None when the input does not say."""

    @property
    def id(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def headless(self) -> bool:
        return self.cluster_ip == "None"

    def selects(self, workload: Workload) -> bool:
        if self.selector is None or not self.selector or workload.namespace != self.namespace:
            return False
        return self.selector.matches(workload.labels)


@dataclass(frozen=True, slots=True)
class Node:
    """A cluster node: what the policy API's `nodes` peer matches (its labels and the IPs of
    `status.addresses`)."""

    name: str
    labels: Labels
    ips: tuple[str, ...] = ()
    source: Source | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class Topology:
    """Every namespace, service account, workload and service known to an analysis."""

    namespaces: Mapping[str, Namespace]
    service_accounts: Mapping[tuple[str, str], ServiceAccount]
    workloads: tuple[Workload, ...]
    services: tuple[Service, ...] = ()
    _by_id: dict[str, Workload] | None = field(init=False, repr=False, compare=False)
    _services_by_ns: dict[str, tuple[Service, ...]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Lookup tables derived from the fields (the value stays immutable); workloads by id on
        # first use (incremental updates make many topologies and look up few of them).
        object.__setattr__(self, "_by_id", None)
        by_ns: dict[str, list[Service]] = {}
        for svc in self.services:
            by_ns.setdefault(svc.namespace, []).append(svc)
        object.__setattr__(self, "_services_by_ns", {k: tuple(v) for k, v in by_ns.items()})

    def replaced(self, **fields: object) -> Topology:
        """A copy with `fields` replaced; the index of Services is shared when they stay
        (incremental updates make a topology per change)."""
        if "services" in fields:
            return dataclasses.replace(self, **fields)  # type: ignore[arg-type]
        assert set(fields) <= {"namespaces", "service_accounts", "workloads"}
        out = object.__new__(Topology)
        for name in ("namespaces", "service_accounts", "workloads", "services"):
            object.__setattr__(out, name, fields.get(name, getattr(self, name)))
        object.__setattr__(out, "_services_by_ns", self._services_by_ns)
        object.__setattr__(out, "_by_id", None)
        return out

    def services_in(self, namespace: str) -> tuple[Service, ...]:
        return self._services_by_ns.get(namespace, ())

    def services_selecting(self, workload: Workload) -> tuple[Service, ...]:
        return tuple(s for s in self.services_in(workload.namespace) if s.selects(workload))

    def services_selecting_each(self, workloads: Sequence[Workload]) -> list[tuple[Service, ...]]:
        """`services_selecting` of each workload, found per namespace through an index of the
        workloads' labels (a selector's pairs intersect the sets of workloads that carry them)
        rather than by matching every selector against every workload."""
        out: list[tuple[Service, ...]] = [()] * len(workloads)
        by_ns: dict[str, list[int]] = {}
        for i, w in enumerate(workloads):
            by_ns.setdefault(w.namespace, []).append(i)
        for namespace, members in by_ns.items():
            services = self.services_in(namespace)
            if not services:
                continue
            carrying: dict[tuple[str, str], int] = {}
            for j, i in enumerate(members):
                for pair in workloads[i].labels.items():
                    carrying[pair] = carrying.get(pair, 0) | 1 << j
            found: list[list[Service]] = [[] for _ in members]
            everyone = (1 << len(members)) - 1
            for svc in services:
                if not svc.selector:
                    continue
                bits = everyone
                for pair in svc.selector.items():
                    bits &= carrying.get(pair, 0)
                    if not bits:
                        break
                while bits:
                    low = bits & -bits
                    found[low.bit_length() - 1].append(svc)
                    bits ^= low
            for j, i in enumerate(members):
                out[i] = tuple(found[j])
        return out

    def namespace(self, name: str) -> Namespace:
        ns = self.namespaces.get(name)
        if ns is None:
            return Namespace(name, Labels({"kubernetes.io/metadata.name": name}), declared=False)
        return ns

    def service_account(self, namespace: str, name: str) -> ServiceAccount:
        sa = self.service_accounts.get((namespace, name))
        return sa if sa is not None else ServiceAccount(namespace, name, declared=False)

    def workload(self, workload_id: str) -> Workload | None:
        by_id = self._by_id
        if by_id is None:
            by_id = {w.id: w for w in self.workloads}
            object.__setattr__(self, "_by_id", by_id)
        return by_id.get(workload_id)
