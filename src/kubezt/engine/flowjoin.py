"""Joining observed flows to the model: which workload (or outside address, or node) each end
of a flow log line is.

An end is resolved, in order, by pod or workload name in its namespace (a pod name or a Calico
generate-name aggregate such as `customer-5d7f8c-*` belongs to the workload whose name plus `-`
is its longest prefix: Deployment → ReplicaSet → Pod names are built that way), by IP (the
addresses the manifests give pods), by Istio principal (`<td>/ns/<ns>/sa/<sa>`, when exactly one
workload runs as that ServiceAccount), and by labels (the one workload of the namespace whose
pod labels the end carries). An end outside the cluster (Calico `pub`/`pvt`/`net`, Hubble
`reserved:world`, an address no pod has) is external; a host endpoint or the node is a node;
Hubble's `reserved:kube-apiserver`, or an address given as the API server's, is the API server.
Pure: no I/O.
"""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from kubezt.ir.flows import FlowEnd
from kubezt.ir.model import Model
from kubezt.ir.topology import Workload

EXTERNAL_KINDS = frozenset({"pub", "pvt", "net", "world", "world-ipv4", "world-ipv6"})
NODE_KINDS = frozenset({"hep", "host", "remote-node", "kube-apiserver", "health", "ingress"})
SYSTEM_SERVICE_KINDS = frozenset({"kube-apiserver"})


class EndClass(StrEnum):
    WORKLOAD = "workload"
    EXTERNAL = "external"
    NODE = "node"
    API_SERVER = "kube-apiserver"
    UNRESOLVED = "unresolved"


@dataclass(frozen=True, slots=True)
class Resolved:
    kind: EndClass
    workload: Workload | None = None
    ip: str = ""
    why: str = ""
    """For an unresolved end: what was tried."""

    @property
    def label(self) -> str:
        if self.workload is not None:
            return self.workload.id
        if self.kind is EndClass.EXTERNAL:
            return f"external:{self.ip}" if self.ip else "external"
        return self.kind.value


class FlowJoin:
    """Resolves flow ends against one model; results are cached per distinct end."""

    def __init__(self, model: Model, api_server: Sequence[str] = ()) -> None:
        self.model = model
        self.api_server = tuple(ipaddress.ip_network(c, strict=False) for c in api_server)
        """Addresses of the API server (`--api-server`): flow logs that name only addresses
        (Envoy, ztunnel) show its calls into admission webhooks from these."""
        self._by_ns: dict[str, list[Workload]] = defaultdict(list)
        self._by_ip: dict[str, Workload] = {}
        self._by_sa: dict[tuple[str, str], list[Workload]] = defaultdict(list)
        self._named: dict[tuple[str, str], Workload] = {}
        for w in model.topology.workloads:
            self._by_ns[w.namespace].append(w)
            self._named.setdefault((w.namespace, w.name), w)
            self._by_sa[(w.namespace, w.service_account)].append(w)
            for ip in w.ips:
                self._by_ip[ip] = w
        self._cache: dict[FlowEnd, Resolved] = {}

    def resolve(self, end: FlowEnd) -> Resolved:
        hit = self._cache.get(end)
        if hit is None:
            hit = self._cache[end] = self._resolve(end)
        return hit

    def _resolve(self, end: FlowEnd) -> Resolved:
        if end.kind in SYSTEM_SERVICE_KINDS:
            return Resolved(EndClass.API_SERVER, ip=end.ip)
        if end.kind in NODE_KINDS:
            return Resolved(EndClass.NODE, ip=end.ip)
        if end.namespace and end.name:
            w = self._by_name(end.namespace, end.name)
            if w is not None:
                return Resolved(EndClass.WORKLOAD, w, end.ip)
        if end.ip and end.ip in self._by_ip:
            return Resolved(EndClass.WORKLOAD, self._by_ip[end.ip], end.ip)
        if end.ip and self.api_server and not end.name and _within(end.ip, self.api_server):
            return Resolved(EndClass.API_SERVER, ip=end.ip)
        if end.principal:
            parts = end.principal.split("/")
            if len(parts) == 5 and parts[1] == "ns" and parts[3] == "sa":
                owners = self._by_sa.get((parts[2], parts[4]), [])
                if len(owners) == 1:
                    return Resolved(EndClass.WORKLOAD, owners[0], end.ip)
        if end.namespace and end.labels:
            labels = dict(end.labels)
            owners = [
                w
                for w in self._by_ns.get(end.namespace, [])
                if w.labels and all(labels.get(k) == v for k, v in w.labels.items())
            ]
            if len(owners) == 1:
                return Resolved(EndClass.WORKLOAD, owners[0], end.ip)
        if end.kind in EXTERNAL_KINDS or (end.ip and not end.namespace and _public(end.ip)):
            return Resolved(EndClass.EXTERNAL, ip=end.ip)
        tried = ", ".join(
            f"{k} {v}"
            for k, v in (
                ("pod", f"{end.namespace}/{end.name}" if end.name else ""),
                ("ip", end.ip),
                ("principal", end.principal),
            )
            if v
        )
        return Resolved(EndClass.UNRESOLVED, ip=end.ip, why=tried or "nothing to join on")

    def _by_name(self, namespace: str, name: str) -> Workload | None:
        """The workload a pod name (or a `prefix-*` aggregate of pod names) belongs to: the
        workload of that name, else the controller whose name plus `-` is the longest prefix,
        else (for an aggregate) the first Pod whose name the aggregate's prefix begins."""
        aggregate = name.endswith("*")
        stem = name.removesuffix("*")
        # The workload named `stem`, else the longest `-`-separated prefix of it that names one
        # (the first workload of that name, in manifest order).
        prefix = stem
        while prefix:
            w = self._named.get((namespace, prefix))
            if w is not None and (prefix == stem or stem.startswith(prefix + "-")):
                return w
            prefix = prefix.rpartition("-")[0]
        if not aggregate:
            return None
        pods = [
            w for w in self._by_ns.get(namespace, ()) if w.kind == "Pod" and w.name.startswith(stem)
        ]
        return min(pods, key=lambda w: w.name) if pods else None


INTERNAL_RANGES = tuple(
    ipaddress.ip_network(n)
    for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7")
)
"""RFC 1918, CGNAT and ULA ranges: where cluster pod and service addresses live."""


def _within(
    address: str, networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in networks if net.version == ip.version)


def _public(address: str) -> bool:
    """An address outside the ranges clusters use (used only when the log names no namespace):
    a private address no pod of the model has stays unresolved rather than external."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if ip.is_loopback or ip.is_link_local:
        return False
    return not any(ip in net for net in INTERNAL_RANGES if net.version == ip.version)
