"""Reachability: composes the layers into one verdict per connection, for every pair at once
(`evaluate`) or for one connection with its explanation (`explain_connection`).

A connection is allowed at L3/L4 when the source's egress policy and the destination's ingress
policy both allow it (semantics.md §1.6, §2.5). Traffic a pod sends to itself never leaves its
network namespace, and traffic from the destination's own node (kubelet probes) is not policed.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum

from kubezt.engine.explain import Effect, Layer, Step, Verdict
from kubezt.engine.index import (
    ClassIndex,
    EndpointClass,
    Peer,
    PeerKind,
    build_classes,
    external_peer,
    host_peer,
    iter_bits,
    workload_peer,
)
from kubezt.engine.l4 import Matcher, TierChain, chains, decide, denying_layer
from kubezt.ir.model import Model
from kubezt.ir.policy import Direction
from kubezt.ir.ports import PortKey, Protocol
from kubezt.ir.requests import HttpRequest, ServiceAddress
from kubezt.ir.topology import Workload


@dataclass(frozen=True, slots=True)
class Reachability:
    """The class-level L3/L4 matrix: for each destination port and destination class, the
    source classes allowed to connect. Expand to workloads with `connections()`."""

    model: Model
    classes: tuple[EndpointClass, ...]
    plan: dict[PortKey, int]
    """Destination classes evaluated at each port."""
    allowed: dict[PortKey, dict[int, int]] = field(repr=False)
    """port → destination class → bitset of allowed source classes."""

    @property
    def workload_ids(self) -> list[str]:
        return sorted(w.id for w in self.model.topology.workloads)

    def connections(self) -> Iterator[tuple[str, str, int, str]]:
        """Allowed (src id, dst id, port, protocol), sorted, at workload level."""
        workloads = self.model.topology.workloads
        rows: list[tuple[str, str, int, str]] = []
        for port, per_dst in self.allowed.items():
            for d, srcs in per_dst.items():
                dst_members = self.classes[d].members
                for s in iter_bits(srcs):
                    for wi in self.classes[s].members:
                        src_id = workloads[wi].id
                        for wj in dst_members:
                            rows.append((src_id, workloads[wj].id, port.port, port.protocol.value))
            # self traffic is always allowed: add single-pod workloads the policy would deny
            for d in iter_bits(self.plan.get(port, 0)):
                srcs = per_dst.get(d, 0)
                if srcs >> d & 1:
                    continue
                for wi in self.classes[d].members:
                    if is_single_pod(workloads[wi]):
                        rows.append(
                            (workloads[wi].id, workloads[wi].id, port.port, port.protocol.value)
                        )
        rows.sort()
        return iter(rows)


def is_single_pod(workload: Workload) -> bool:
    """A Pod, or a controller running at most one replica: traffic to itself is self traffic."""
    return workload.kind == "Pod" or workload.replicas <= 1


def evaluate(
    model: Model, port: int | None = None, protocol: Protocol = Protocol.TCP
) -> Reachability:
    """The L3/L4 verdict of every ordered pair of workloads, on every port the destination
    declares (or on `port`/`protocol` only), computed once per class of workloads."""
    classes = build_classes(model)
    index = ClassIndex([c.peer for c in classes], model.topology, model.policies)
    matcher = Matcher(index)
    plan: dict[PortKey, int] = {}
    for c in classes:
        keys = (
            [PortKey(port, protocol, c.peer.port_name(port, protocol))]
            if port is not None
            else [cp.key for cp in c.peer.ports]
        )
        for key in keys:
            plan[key] = plan.get(key, 0) | 1 << c.index
    plan = dict(sorted(plan.items()))
    ingress = _grouped(matcher, Direction.INGRESS)
    egress = _grouped(matcher, Direction.EGRESS)
    allowed: dict[PortKey, dict[int, int]] = {}
    for key, dsts in plan.items():
        # egress side: which sources may send to each destination on this port
        egress_ok: dict[int, int] = {}
        open_sources = 0
        for chain, rep, members in egress:
            if chain.empty:
                open_sources |= members
                continue
            reachable = decide(matcher, chain, Direction.EGRESS, rep, key, dsts)
            for d in iter_bits(reachable):
                egress_ok[d] = egress_ok.get(d, 0) | members
        per_dst: dict[int, int] = {}
        for chain, rep, members in ingress:
            targets = members & dsts
            if not targets:
                continue
            sources = (
                index.all
                if chain.empty
                else decide(matcher, chain, Direction.INGRESS, rep, key, index.all)
            )
            for d in iter_bits(targets):
                both = sources & (egress_ok.get(d, 0) | open_sources)
                if both:
                    per_dst[d] = both
        allowed[key] = per_dst
    return Reachability(model, classes, plan, allowed)


def _grouped(matcher: Matcher, direction: Direction) -> list[tuple[TierChain, int, int]]:
    """Classes that share a chain and see every rule's own side alike: (chain, representative,
    member bitset)."""
    per_class = chains(matcher, direction)
    groups: dict[tuple[object, ...], list[int]] = {}
    reps: dict[tuple[object, ...], TierChain] = {}
    ingress = direction is Direction.INGRESS
    for ci, chain in enumerate(per_class):
        signature: list[object] = [id(chain)]
        bit = 1 << ci
        for policy in chain.policies:
            for rule in policy.rules(direction):
                own_side = rule.destination if ingress else rule.source
                if own_side.is_empty:
                    continue
                yes, maybe = matcher.base(own_side, policy.namespace)
                signature.append((bool(yes & bit), bool(maybe & bit)))
        key = tuple(signature)
        groups.setdefault(key, []).append(ci)
        reps[key] = chain
    out: list[tuple[TierChain, int, int]] = []
    for key, members in groups.items():
        bits = 0
        for ci in members:
            bits |= 1 << ci
        out.append((reps[key], members[0], bits))
    return out


# --- one connection, explained -------------------------------------------------------------------


class EndKind(StrEnum):
    WORKLOAD = "workload"
    EXTERNAL = "external"
    NODE = "node"
    KUBELET_PROBE = "kubelet-probe"


@dataclass(frozen=True, slots=True)
class End:
    """One end of a connection to explain: a workload, an external address, or the
    destination's own node (`node`, `kubelet-probe`)."""

    kind: EndKind
    workload: Workload | None = None
    ip: str | None = None

    @property
    def label(self) -> str:
        if self.workload is not None:
            return self.workload.id
        if self.kind is EndKind.EXTERNAL:
            return f"external:{self.ip}"
        return self.kind.value


def explain_connection(
    model: Model,
    src: End,
    dst: End,
    port: int,
    protocol: Protocol = Protocol.TCP,
    *,
    service: ServiceAddress | None = None,
    http: HttpRequest | None = None,
) -> Verdict:
    """The verdict of one connection (or one HTTP request on it), with every step that decided
    it. `port` is the destination container port; `service` says the client addressed a
    Service rather than the pod IP."""
    steps: list[Step] = []
    if src.workload is not None and src.workload == dst.workload and is_single_pod(src.workload):
        steps.append(
            Step(
                Layer.DATAPLANE,
                "self-traffic",
                Effect.ALLOW,
                "a pod connecting to itself never leaves its network namespace",
            )
        )
        return Verdict(True, None, tuple(steps))
    src_peer = _peer(model, src)
    dst_peer = _peer(model, dst)
    index = ClassIndex([src_peer, dst_peer], model.topology, model.policies)
    matcher = Matcher(index)
    key = PortKey(port, protocol, dst_peer.port_name(port, protocol))
    # egress of the source endpoint
    if src_peer.kind is PeerKind.ENDPOINT:
        chain = chains(matcher, Direction.EGRESS)[0]
        trace: list[Step] = []
        ok = decide(matcher, chain, Direction.EGRESS, 0, key, 0b10, trace)
        steps.extend(trace)
        if not ok:
            return Verdict(False, denying_layer(trace), tuple(steps))
    else:
        steps.append(
            Step(
                Layer.DATAPLANE,
                "source-not-policed",
                Effect.CONTINUE,
                f"{src.label} is not a pod-network endpoint: no egress policy applies",
                direction=Direction.EGRESS.value,
            )
        )
    # ingress of the destination endpoint
    if src.kind in (EndKind.NODE, EndKind.KUBELET_PROBE) and dst_peer.kind is PeerKind.ENDPOINT:
        steps.append(
            Step(
                Layer.DATAPLANE,
                "host-to-local-workload",
                Effect.ALLOW,
                "traffic from the destination's own node is not policed (Calico "
                "iptables/nftables dataplane)",
                direction=Direction.INGRESS.value,
            )
        )
        return Verdict(True, None, tuple(steps))
    if dst_peer.kind is PeerKind.ENDPOINT:
        chain = chains(matcher, Direction.INGRESS)[1]
        trace = []
        ok = decide(matcher, chain, Direction.INGRESS, 1, key, 0b01, trace)
        steps.extend(trace)
        if not ok:
            return Verdict(False, denying_layer(trace), tuple(steps))
    else:
        steps.append(
            Step(
                Layer.DATAPLANE,
                "destination-not-policed",
                Effect.CONTINUE,
                f"{dst.label} is not a pod-network endpoint: no ingress policy applies",
                direction=Direction.INGRESS.value,
            )
        )
    return Verdict(True, None, tuple(steps))


def _peer(model: Model, end: End) -> Peer:
    if end.workload is not None:
        return workload_peer(end.workload, model.topology)
    ip = ipaddress.ip_address(end.ip) if end.ip else None
    if end.kind is EndKind.EXTERNAL and ip is not None:
        return external_peer(ip, model.policies)
    return host_peer(ip)
