"""The zero-trust intent as kubezt's generators and `verify` see it: which services exist, who
runs as which ServiceAccount, and which connections (and HTTP requests) are granted.

Pure, frozen data; `kubezt.dialects.intent` reads the YAML format into it (docs/intent.md) and
has already resolved defaults and references, so every `ServiceRef` here names a declared
service and every port is one the service declares. Nothing here renders manifests.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum

from kubezt.errors import Location
from kubezt.ir.ports import Protocol
from kubezt.ir.topology import Labels

HTTP_APP_PROTOCOLS = ("http", "http2", "grpc", "grpc-web", "h2c")
"""appProtocol values (or Service port name prefixes) Istio handles as HTTP."""

SYSTEM_NAMESPACES = (
    "calico-apiserver",
    "calico-system",
    "kube-node-lease",
    "kube-public",
    "kube-system",
    "tigera-operator",
)
"""Namespaces a zero-trust intent may not take into scope (besides Istio's root namespace):
the default deny would cut the cluster's own control plane off."""


class Mode(StrEnum):
    """The Istio data-plane mode the intent is compiled for."""

    SIDECAR = "sidecar"
    AMBIENT = "ambient"


@dataclass(frozen=True, slots=True, order=True)
class Port:
    """A container (target) port of a service: what L3/L4 policy and Istio authorization see."""

    port: int
    protocol: Protocol = Protocol.TCP
    name: str = field(default="", compare=False)
    app_protocol: str = field(default="", compare=False)
    """Istio protocol selection (`http`, `grpc`, `tcp`, …); "" when undeclared."""
    metrics: bool = field(default=False, compare=False)
    """Prometheus scrapes this port (plaintext, from `platform.metrics`)."""

    @property
    def is_http(self) -> bool:
        """Istio handles the port as HTTP, so HTTP attributes can be authorized on it."""
        if self.protocol is not Protocol.TCP:
            return False
        declared = (self.app_protocol or self.name.split("-", 1)[0]).lower()
        return declared in HTTP_APP_PROTOCOLS

    def __str__(self) -> str:
        return f"{self.port}/{self.protocol.value}"


@dataclass(frozen=True, slots=True, order=True)
class Identity:
    """A workload identity: the ServiceAccount a caller runs as, in its namespace."""

    namespace: str
    service_account: str

    def principal(self, trust_domain: str) -> str:
        """The Istio principal (SPIFFE ID without `spiffe://`)."""
        return f"{trust_domain}/ns/{self.namespace}/sa/{self.service_account}"

    def __str__(self) -> str:
        return f"{self.namespace}/{self.service_account}"


@dataclass(frozen=True, slots=True, order=True)
class ServiceRef:
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True, slots=True)
class Service:
    """A workload (or set of pods) the intent governs: selector, identity and ports."""

    namespace: str
    name: str
    selector: Labels
    """`matchLabels` of the service's pods (and of its Kubernetes Service)."""
    service_account: str
    ports: tuple[Port, ...] = ()
    entry: str = ""
    """The intent entry it came from (`services/<ns>/<name>`)."""
    location: Location | None = field(default=None, compare=False)

    @property
    def ref(self) -> ServiceRef:
        return ServiceRef(self.namespace, self.name)

    @property
    def identity(self) -> Identity:
        return Identity(self.namespace, self.service_account)

    def port(self, number: int, protocol: Protocol) -> Port | None:
        for p in self.ports:
            if p.port == number and p.protocol is protocol:
                return p
        return None


@dataclass(frozen=True, slots=True)
class HttpMatch:
    """HTTP requests a grant is limited to; an empty attribute means any value. Values use
    Istio's matching (`exact`, `prefix*`, `*suffix`, `*` for presence)."""

    methods: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()
    hosts: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Grant:
    """One allowed flow to a service: from a workload identity (an entry of `calls`) or from
    the ingress gateway (an entry of `ingress`), on some of the service's ports."""

    entry: str
    caller: Identity
    service: ServiceRef
    ports: tuple[Port, ...]
    http: HttpMatch | None = None
    """None: every request (and any TCP payload) on those ports."""
    from_gateway: bool = False
    location: Location | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class Egress:
    """Connections from a workload identity to destinations outside the cluster."""

    entry: str
    caller: Identity
    ports: tuple[Port, ...]
    cidrs: tuple[str, ...] = ()
    hosts: tuple[str, ...] = ()
    """DNS names: the mesh can name them (ServiceEntry), Calico OSS cannot match them."""
    location: Location | None = field(default=None, compare=False)

    @property
    def networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        return tuple(ipaddress.ip_network(c, strict=False) for c in self.cidrs)


@dataclass(frozen=True, slots=True)
class Exemption:
    """A named, reasoned exception to the zero-trust defaults: plaintext connections from
    addresses outside the mesh (the API server calling a webhook, a legacy client) to some
    ports of a service. The ports become PERMISSIVE for this workload only."""

    entry: str
    name: str
    reason: str
    service: ServiceRef
    ports: tuple[Port, ...]
    cidrs: tuple[str, ...]
    location: Location | None = field(default=None, compare=False)

    @property
    def networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        return tuple(ipaddress.ip_network(c, strict=False) for c in self.cidrs)


@dataclass(frozen=True, slots=True)
class Dns:
    namespace: str = "kube-system"
    selector: Labels = field(default_factory=lambda: Labels({"k8s-app": "kube-dns"}))
    port: int = 53


@dataclass(frozen=True, slots=True)
class Istiod:
    namespace: str = "istio-system"
    selector: Labels = field(default_factory=lambda: Labels({"app": "istiod"}))
    port: int = 15012


@dataclass(frozen=True, slots=True)
class KubeApiServer:
    """Identities that call the Kubernetes API (through the `kubernetes` Service)."""

    callers: tuple[Identity, ...] = ()


@dataclass(frozen=True, slots=True)
class Metrics:
    """The Prometheus that scrapes the mesh: plaintext, from outside the mesh."""

    scraper: Identity
    proxy_ports: tuple[int, ...] = (15020, 15090)
    """Istio's own metrics ports on sidecar pods (outside inbound capture)."""


@dataclass(frozen=True, slots=True)
class Platform:
    dns: Dns | None = field(default_factory=Dns)
    istiod: Istiod = field(default_factory=Istiod)
    kube_api_server: KubeApiServer = field(default_factory=KubeApiServer)
    metrics: Metrics | None = None


DEFAULT_GATEWAY = Identity("istio-system", "istio-ingressgateway-service-account")
"""The classic Istio ingress gateway's identity."""


@dataclass(frozen=True, slots=True)
class Intent:
    """A resolved zero-trust intent. Collections are sorted so equal intents compare equal."""

    name: str
    mode: Mode
    trust_domain: str = "cluster.local"
    root_namespace: str = "istio-system"
    namespaces: tuple[str, ...] = ()
    services: tuple[Service, ...] = ()
    grants: tuple[Grant, ...] = ()
    """Entries of `calls` and `ingress`, in that order."""
    gateway: Identity = DEFAULT_GATEWAY
    egress: tuple[Egress, ...] = ()
    exceptions: tuple[Exemption, ...] = ()
    platform: Platform = field(default_factory=Platform)
    file: str = field(default="", compare=False)

    def service(self, ref: ServiceRef) -> Service:
        for svc in self.services:
            if svc.ref == ref:
                return svc
        raise KeyError(str(ref))

    def services_in(self, namespace: str) -> tuple[Service, ...]:
        return tuple(s for s in self.services if s.namespace == namespace)

    def grants_to(self, ref: ServiceRef) -> tuple[Grant, ...]:
        return tuple(g for g in self.grants if g.service == ref)

    def grants_from(self, identity: Identity) -> tuple[Grant, ...]:
        return tuple(g for g in self.grants if not g.from_gateway and g.caller == identity)

    def identities(self) -> Iterator[Identity]:
        """Every service identity, once, sorted."""
        yield from sorted({s.identity for s in self.services})

    def principal(self, identity: Identity) -> str:
        return identity.principal(self.trust_domain)
