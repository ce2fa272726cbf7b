"""Peers, equivalence classes of workloads, and selectors compiled to bitsets over classes.

Owns: what a policy can see of a workload (the `Peer`), grouping workloads that no policy can
tell apart into classes, and evaluating label selectors over all classes at once through an
inverted label index. A set of classes is a Python int used as a bitset (bit i = class i).
Must not decide any verdict.
"""

from __future__ import annotations

import functools
import ipaddress
import socket
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from itertools import compress

from kubezt.ir.model import Model
from kubezt.ir.policy import EntityMatch, Network, NetworkSet, PolicySet
from kubezt.ir.ports import Protocol
from kubezt.ir.selectors import (
    All,
    And,
    Contains,
    EndsWith,
    Equals,
    Global,
    Has,
    In,
    Not,
    NotEquals,
    NotIn,
    Or,
    Selector,
    StartsWith,
)
from kubezt.ir.topology import ContainerPort, Labels, Topology, Workload

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

CALICO_NAMESPACE = "projectcalico.org/namespace"
CALICO_ORCHESTRATOR = "projectcalico.org/orchestrator"
CALICO_SERVICE_ACCOUNT = "projectcalico.org/serviceaccount"
CALICO_NAME = "projectcalico.org/name"
MESH_ANNOTATION_PREFIXES = (
    "sidecar.istio.io/",
    "kubezt.io/",
    "istio.io/",
    "inject.istio.io/",
    "traffic.sidecar.istio.io/",
    "ambient.istio.io/",
    "status.sidecar.istio.io/",
)


class PeerKind(StrEnum):
    ENDPOINT = "endpoint"
    """A pod on the pod network: selectable, and subject to its own policies."""
    HOST = "host"
    """A node or a hostNetwork pod: matched only by address, not policed as a workload."""
    EXTERNAL = "external"
    """An address outside the cluster (possibly inside Calico network sets)."""


@dataclass(frozen=True, slots=True)
class Peer:
    """Everything a policy rule can observe about one end of a connection."""

    kind: PeerKind
    namespace: str | None = None
    labels: Labels = field(default_factory=Labels)
    """Endpoint labels as Calico sees them (pod labels plus projectcalico.org/* labels)."""
    namespace_labels: Labels = field(default_factory=Labels)
    service_account: str | None = None
    service_account_labels: Labels = field(default_factory=Labels)
    ip: IpAddress | None = None
    ports: tuple[ContainerPort, ...] = ()
    network_sets: tuple[NetworkSet, ...] = ()
    """For external addresses: the Calico network sets that contain the address."""
    mesh_annotations: Labels = field(default_factory=Labels)

    def port_name(self, port: int, protocol: Protocol) -> str:
        for cp in self.ports:
            if cp.port == port and cp.protocol is protocol:
                return cp.name
        return ""


@dataclass(frozen=True, slots=True)
class EndpointClass:
    """Workloads that no policy in the input can tell apart; `members` index the topology."""

    index: int
    peer: Peer
    members: tuple[int, ...]


def iter_bits(bits: int) -> Iterator[int]:
    """Indices of the set bits, ascending."""
    while bits:
        low = bits & -bits
        yield low.bit_length() - 1
        bits ^= low


_BITS = bytes.maketrans(b"01", b"\x00\x01")


def bit_indices(bits: int) -> Iterator[int]:
    """`iter_bits` for sets of any density: a set is read from its binary digits in one pass
    (the digits as 0/1 bytes select from a range, in C) unless it has very few bits for its
    length (`iter_bits` copies the whole integer twice per bit)."""
    if bits.bit_count() * 32 < bits.bit_length():
        return iter_bits(bits)
    digits = bin(bits)[:1:-1].encode().translate(_BITS)
    return compress(range(len(digits)), digits)


def bits_of(indices: Iterable[int]) -> int:
    """The bitset of `indices`, built in one pass (OR-ing bits into a growing integer one at
    a time copies it each time: quadratic in the number of classes)."""
    if isinstance(indices, list) and len(indices) < 64:
        bits = 0  # a few bits: OR-ing them costs less than a buffer
        for i in indices:
            bits |= 1 << i
        return bits
    buf = bytearray()
    for i in indices:
        byte = i >> 3
        if byte >= len(buf):
            buf.extend(bytes(byte + 1 - len(buf)))
        buf[byte] |= 1 << (i & 7)
    return int.from_bytes(buf, "little")


def policy_networks(policies: PolicySet) -> tuple[Network, ...]:
    """Every CIDR any rule mentions: the only addresses that can split workloads apart."""
    nets: set[Network] = set()
    for policy in policies.policies:
        for rule in (*policy.ingress, *policy.egress):
            for side in (rule.source, rule.destination):
                nets.update(side.nets or ())
                nets.update(side.not_nets or ())
    return tuple(sorted(nets, key=lambda n: (n.version, int(n.network_address), n.prefixlen)))


def _mesh_annotations(annotations: Labels) -> Labels:
    return Labels({k: v for k, v in annotations.items() if k.startswith(MESH_ANNOTATION_PREFIXES)})


def _ip_signatures(nets: tuple[Network, ...]) -> Callable[[str | None], object]:
    """The address part of `class_key` from a workload's address as written: its family and
    which of `nets` hold it (IPv4 addresses compared as integers against each net's mask)."""
    v4 = [(net.version == 4, int(net.network_address), int(net.netmask)) for net in nets]

    def signature(text: str | None) -> object:
        if not text:
            return None
        try:
            packed = socket.inet_pton(socket.AF_INET, text)
        except OSError:
            ip = ipaddress.ip_address(text)
            return (ip.version, *(ip in net for net in nets))
        value = int.from_bytes(packed, "big")
        return (4, *(is_v4 and value & mask == address for is_v4, address, mask in v4))

    return signature


@functools.lru_cache(maxsize=1 << 14)
def _named(labels: Labels, name: str) -> Labels:
    """A namespace's or service account's labels as Calico sees them (plus its name), made
    once for all the classes of a namespace or account."""
    return labels.merged({CALICO_NAME: name})


def workload_peer(workload: Workload, topology: Topology) -> Peer:
    ns = topology.namespace(workload.namespace)
    sa = topology.service_account(workload.namespace, workload.service_account)
    ip = ipaddress.ip_address(workload.ip) if workload.ip else None
    mesh = _mesh_annotations(workload.annotations)
    if workload.host_network:
        return Peer(
            PeerKind.HOST,
            namespace=workload.namespace,
            labels=workload.labels,
            namespace_labels=ns.labels,
            service_account=workload.service_account,
            ip=ip,
            # Not a Calico workload endpoint (libcalico-go conversion.go
            # IsValidCalicoWorkloadEndpoint), so no named port of a rule resolves to it.
            ports=tuple(
                dict.fromkeys(ContainerPort(cp.port, cp.protocol) for cp in workload.ports)
            ),
            mesh_annotations=mesh,
        )
    labels = workload.labels.merged(
        {
            CALICO_NAMESPACE: workload.namespace,
            CALICO_ORCHESTRATOR: "k8s",
            CALICO_SERVICE_ACCOUNT: workload.service_account,
        }
    )
    return Peer(
        PeerKind.ENDPOINT,
        namespace=workload.namespace,
        labels=labels,
        namespace_labels=_named(ns.labels, ns.name),
        service_account=workload.service_account,
        service_account_labels=_named(sa.labels, sa.name),
        ip=ip,
        ports=workload.ports,
        mesh_annotations=mesh,
    )


def external_peer(ip: IpAddress, policies: PolicySet) -> Peer:
    sets = tuple(ns for ns in policies.network_sets if any(ip in net for net in ns.nets))
    return Peer(PeerKind.EXTERNAL, ip=ip, network_sets=sets)


def host_peer(ip: IpAddress | None) -> Peer:
    return Peer(PeerKind.HOST, ip=ip)


def class_networks(model: Model, extra_networks: tuple[Network, ...] = ()) -> tuple[Network, ...]:
    """The CIDRs that split workloads into classes: every policy CIDR, every Calico network
    set's CIDRs, and `extra_networks`."""
    set_nets = tuple(net for ns in model.policies.network_sets for net in ns.nets)
    return tuple(dict.fromkeys(policy_networks(model.policies) + set_nets + extra_networks))


def class_key(peer: Peer, nets: tuple[Network, ...]) -> tuple[object, ...]:
    """What tells two workloads apart: equal keys, same class (`build_classes`)."""
    # the family too: rules with ipVersion tell IPv4 and IPv6 workloads apart
    ip_signature = None if peer.ip is None else (peer.ip.version, *(peer.ip in net for net in nets))
    return (
        peer.kind,
        peer.namespace,
        peer.labels.key,
        peer.service_account,
        peer.ports,
        peer.mesh_annotations.key,
        ip_signature,
    )


def build_classes(
    model: Model, extra_networks: tuple[Network, ...] = ()
) -> tuple[EndpointClass, ...]:
    """Group workloads by everything policies can observe: namespace, labels, service account,
    ports, host networking, mesh annotations, and which policy CIDRs contain their address
    (`extra_networks`: CIDRs other layers match, e.g. AuthorizationPolicy ipBlocks)."""
    # Calico network sets split workloads too: a pod whose IP is inside a set is matched by
    # selectors that select the set.
    nets = class_networks(model, extra_networks)
    groups: dict[tuple[object, ...], list[int]] = {}
    peers: dict[tuple[object, ...], Peer] = {}
    # Everything but the address depends on what many pods share (labels, namespace, service
    # account, ports, annotations): the key without its address part is made once per such
    # combination, and each pod adds the CIDRs its address is in (`class_key`, the same key).
    shared: dict[tuple[object, ...], tuple[object, ...]] = {}
    mesh_of: dict[Labels, Labels] = {}
    signature = _ip_signatures(nets)
    topology = model.topology
    for i, workload in enumerate(topology.workloads):
        annotations = workload.annotations
        mesh = mesh_of.get(annotations)
        if mesh is None:
            mesh = mesh_of[annotations] = _mesh_annotations(annotations)
        common = (
            workload.host_network,
            workload.namespace,
            workload.labels,
            workload.service_account,
            workload.ports,
            mesh,
        )
        base = shared.get(common)
        peer = None
        if base is None:
            peer = workload_peer(workload, topology)
            base = shared[common] = class_key(peer, ())[:-1]
        key = (*base, signature(workload.ip))
        members = groups.get(key)
        if members is None:
            groups[key] = members = []
            peers[key] = peer if peer is not None else workload_peer(workload, topology)
        members.append(i)
    return tuple(
        EndpointClass(index, peers[key], tuple(members))
        for index, (key, members) in enumerate(groups.items())
    )


def _address(peer: Peer) -> tuple[int, int]:
    """A peer's address as (IP version, integer); (0, 0) when it is not known."""
    return (peer.ip.version, int(peer.ip)) if peer.ip is not None else (0, 0)


class ClassIndex:
    """Classes of one evaluation plus lookup tables that turn selectors into bitsets."""

    def __init__(self, peers: Sequence[Peer], topology: Topology, policies: PolicySet) -> None:
        self.peers = tuple(peers)
        self.topology = topology
        self.policies = policies
        self.all = (1 << len(self.peers)) - 1
        self.endpoints = 0
        self.hosts = 0
        self.externals = 0
        self._by_label: dict[tuple[str, str], int] = defaultdict(int)
        self._by_key: dict[str, int] = defaultdict(int)
        self._values: dict[str, set[str]] = defaultdict(set)
        self._by_namespace: dict[str, int] = defaultdict(int)
        self._by_sa: dict[tuple[str, str], int] = defaultdict(int)
        self._selector_cache: dict[Selector, int] = {}
        self._ns_cache: dict[Selector, int] = {}
        self._sa_cache: dict[tuple[frozenset[str] | None, Selector | None], int] = {}
        self._entity_cache: dict[tuple[EntityMatch, str | None], tuple[int, int]] = {}
        self._net_cache: dict[Network, int] = {}
        self._addresses: list[tuple[int, int]] | None = None
        self._ip_known = 0
        if len(self.peers) < 64:
            self._small_tables()
        else:
            self._tables()
        self._ns_labels: dict[str, Labels] = {}
        self._sa_labels: dict[tuple[str, str], Labels] = {}
        self._sa_by_name: dict[str, list[tuple[str, str]]] | None = None

    def _small_tables(self) -> None:
        """`_tables` for a few peers (an explanation's): bit by bit costs less there."""
        for i, peer in enumerate(self.peers):
            bit = 1 << i
            if peer.kind is PeerKind.ENDPOINT:
                self.endpoints |= bit
                for kv in peer.labels.items():
                    self._by_label[kv] |= bit
                    self._by_key[kv[0]] |= bit
                    self._values[kv[0]].add(kv[1])
                assert peer.namespace is not None and peer.service_account is not None
                self._by_namespace[peer.namespace] |= bit
                self._by_sa[(peer.namespace, peer.service_account)] |= bit
            elif peer.kind is PeerKind.HOST:
                self.hosts |= bit
            else:
                self.externals |= bit
            if peer.ip is not None:
                self._ip_known |= bit

    def _tables(self) -> None:
        """The lookup tables: members gathered as lists and made bitsets once (OR-ing one
        bit at a time into a growing integer is quadratic in the number of classes)."""
        endpoints: list[int] = []
        hosts: list[int] = []
        externals: list[int] = []
        by_label: dict[tuple[str, str], list[int]] = defaultdict(list)
        by_namespace: dict[str, list[int]] = defaultdict(list)
        by_sa: dict[tuple[str, str], list[int]] = defaultdict(list)
        for i, peer in enumerate(self.peers):
            if peer.kind is PeerKind.ENDPOINT:
                endpoints.append(i)
                for kv in peer.labels.items():
                    by_label[kv].append(i)
                assert peer.namespace is not None and peer.service_account is not None
                by_namespace[peer.namespace].append(i)
                by_sa[(peer.namespace, peer.service_account)].append(i)
            elif peer.kind is PeerKind.HOST:
                hosts.append(i)
            else:
                externals.append(i)
        self.endpoints = bits_of(endpoints)
        self.hosts = bits_of(hosts)
        self.externals = bits_of(externals)
        for kv, indices in by_label.items():
            bits = self._by_label[kv] = bits_of(indices)
            self._by_key[kv[0]] |= bits
            self._values[kv[0]].add(kv[1])
        for name, indices in by_namespace.items():
            self._by_namespace[name] = bits_of(indices)
        for account, indices in by_sa.items():
            self._by_sa[account] = bits_of(indices)
        self._ip_known = bits_of(i for i, peer in enumerate(self.peers) if peer.ip is not None)

    def add_peers(self, peers: Sequence[Peer], more: ClassIndex) -> int:
        """Add a class for each of `peers` (incremental updates) and return the first one's
        index; `more` is an index of `peers` alone over the same objects. Every table and
        cached selector result gains the new bits (a selector's match is a property of each
        peer alone)."""
        n = len(self.peers)
        self.peers = (*self.peers, *peers)
        self.all |= more.all << n
        self.endpoints |= more.endpoints << n
        self.hosts |= more.hosts << n
        self.externals |= more.externals << n
        self._ip_known |= more._ip_known << n
        for kv, bits in more._by_label.items():
            self._by_label[kv] |= bits << n
        for k, bits in more._by_key.items():
            self._by_key[k] |= bits << n
        for k, values in more._values.items():
            self._values[k].update(values)
        for name, bits in more._by_namespace.items():
            self._by_namespace[name] |= bits << n
        for sa, bits in more._by_sa.items():
            self._by_sa[sa] |= bits << n
        self._sa_by_name = None
        for sel in self._selector_cache:
            self._selector_cache[sel] |= more.endpoints_matching(sel) << n
        for sel in self._ns_cache:
            self._ns_cache[sel] |= more.in_namespaces_matching(sel) << n
        for names, account_selector in self._sa_cache:
            self._sa_cache[(names, account_selector)] |= (
                more.with_service_accounts(names, account_selector) << n
            )
        # addresses: the new classes' own, and every cached CIDR's classes with the new bits
        if self._addresses is not None:
            self._addresses.extend(map(_address, peers))
        for net in self._net_cache:
            self._net_cache[net] |= more._in_net(net) << n
        return n

    # selectors -------------------------------------------------------------------------------
    def endpoints_matching(self, selector: Selector) -> int:
        """Endpoint classes whose labels match `selector`."""
        cached = self._selector_cache.get(selector)
        if cached is None:
            cached = self._compile(selector) & self.endpoints
            self._selector_cache[selector] = cached
        return cached

    def _compile(self, sel: Selector) -> int:
        match sel:
            case All() | Global():
                return self.endpoints
            case Has(key):
                return self._by_key.get(key, 0)
            case Equals(key, value):
                return self._by_label.get((key, value), 0)
            case NotEquals(key, value):
                return self.endpoints & ~self._by_label.get((key, value), 0)
            case In(key, values):
                return self._union((key, v) for v in values)
            case NotIn(key, values):
                return self.endpoints & ~self._union((key, v) for v in values)
            case Contains(key, value):
                return self._union((key, v) for v in self._values.get(key, ()) if value in v)
            case StartsWith(key, value):
                return self._union(
                    (key, v) for v in self._values.get(key, ()) if v.startswith(value)
                )
            case EndsWith(key, value):
                return self._union((key, v) for v in self._values.get(key, ()) if v.endswith(value))
            case Not(operand):
                return self.endpoints & ~self._compile(operand)
            case And(operands):
                bits = self.endpoints
                for op in operands:
                    bits &= self._compile(op)
                    if not bits:
                        break
                return bits
            case Or(operands):
                bits = 0
                for op in operands:
                    bits |= self._compile(op)
                return bits
        raise AssertionError(f"unknown selector node {sel!r}")

    def _union(self, pairs: Iterable[tuple[str, str]]) -> int:
        bits = 0
        for kv in pairs:
            bits |= self._by_label.get(kv, 0)
        return bits

    def in_namespace(self, namespace: str) -> int:
        return self._by_namespace.get(namespace, 0)

    def by_service_account(self, namespace: str, name: str) -> int:
        """Endpoint classes that run as this service account."""
        return self._by_sa.get((namespace, name), 0)

    def in_namespaces_matching(self, selector: Selector) -> int:
        """Endpoint classes in namespaces whose labels (plus projectcalico.org/name) match."""
        cached = self._ns_cache.get(selector)
        if cached is None:
            cached = 0
            labels_of = self._ns_labels
            for name, bits in self._by_namespace.items():
                labels = labels_of.get(name)
                if labels is None:
                    ns = self.topology.namespace(name)
                    labels = labels_of[name] = ns.labels.merged({CALICO_NAME: name})
                if selector.matches(labels):
                    cached |= bits
            self._ns_cache[selector] = cached
        return cached

    def with_service_accounts(self, names: frozenset[str] | None, selector: Selector | None) -> int:
        """Endpoint classes whose service account is in `names` and whose labels match."""
        key = (names, selector)
        cached = self._sa_cache.get(key)
        if cached is not None:
            return cached
        bits = 0
        if names is None:
            accounts: Iterable[tuple[str, str]] = self._by_sa
        else:
            if self._sa_by_name is None:
                self._sa_by_name = defaultdict(list)
                for account in self._by_sa:
                    self._sa_by_name[account[1]].append(account)
            accounts = [a for name in names for a in self._sa_by_name.get(name, ())]
        for account in accounts:
            if selector is not None:
                labels = self._sa_labels.get(account)
                if labels is None:
                    ns, sa = account
                    labels = self.topology.service_account(ns, sa).labels.merged({CALICO_NAME: sa})
                    self._sa_labels[account] = labels
                if not selector.matches(labels):
                    continue
            bits |= self._by_sa[account]
        self._sa_cache[key] = bits
        return bits

    def backing_service(self, namespace: str, name: str) -> int:
        for svc in self.topology.services:
            if svc.namespace == namespace and svc.name == name:
                if not svc.selector:
                    return 0
                sel = And(tuple(Equals(k, v) for k, v in svc.selector.items()))
                return self.endpoints_matching(sel) & self.in_namespace(namespace)
        return 0

    def with_address_in(self, nets: tuple[Network, ...]) -> tuple[int, int]:
        """(classes whose address is in one of `nets`, classes whose address is unknown)."""
        yes = 0
        for net in nets:
            yes |= self._in_net(net)
        return yes, self.all & ~self._ip_known

    def _in_net(self, net: Network) -> int:
        """Classes whose address is in `net` (addresses and the net compared as integers)."""
        cached = self._net_cache.get(net)
        if cached is None:
            if self._addresses is None:
                self._addresses = list(map(_address, self.peers))
            version, address, mask = net.version, int(net.network_address), int(net.netmask)
            last = len(self._addresses) - 1
            digits = bytearray(b"0" * (last + 2))  # binary digits, most significant first
            for i, (v, value) in enumerate(self._addresses):
                if v == version and value & mask == address:
                    digits[last + 1 - i] = 49  # "1"
            cached = int(digits, 2)
            self._net_cache[net] = cached
        return cached
