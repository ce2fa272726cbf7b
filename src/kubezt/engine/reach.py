"""Reachability: composes the layers into one verdict per connection, for every pair at once
(`evaluate`) or for one connection with its explanation (`explain_connection`).

A connection is allowed at L3/L4 when the source's egress policy and the destination's ingress
policy both allow it (semantics.md §1.6, §2.5). Traffic a pod sends to itself never leaves its
network namespace, and traffic from the destination's own node (kubelet probes) is not policed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from kubezt.engine.index import (
    ClassIndex,
    EndpointClass,
    build_classes,
    iter_bits,
)
from kubezt.engine.l4 import Matcher, TierChain, chains, decide
from kubezt.ir.model import Model
from kubezt.ir.policy import Direction
from kubezt.ir.ports import PortKey, Protocol
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
