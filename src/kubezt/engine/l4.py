"""L3/L4 decisions: Calico's tiered first-match algorithm, which also decides K8s NetworkPolicy.

Owns: which policies apply to an endpoint in a direction (its *chain*: tiers in order, policies
by order then name), matching a rule side against every peer at once (bitsets from
`ClassIndex`), and `decide()`, the one first-match evaluator every command uses. With a
universe of one peer and a trace list it doubles as the explainer.

Semantics: docs.tigera.io/calico/latest/reference/resources/tier and felix
`rules/endpoints.go`; K8s NetworkPolicies sit in tier `default` at order 1000 (see
`kubezt.dialects.k8s`). A pod selected by no policy in a direction is allowed by its namespace
profile. Unknown facts (a pod IP not given, an ephemeral source port) are resolved against the
connection: an Allow does not match on them, a Deny or Pass does, so kubezt never reports an
allow that the cluster might refuse.
"""

from __future__ import annotations

from dataclasses import dataclass

from kubezt.engine.explain import Effect, Layer, Step
from kubezt.engine.index import ClassIndex, PeerKind, iter_bits
from kubezt.ir.policy import (
    Action,
    Dialect,
    Direction,
    EntityMatch,
    HttpMatch,
    NamespaceScope,
    Policy,
    Rule,
    Tier,
)
from kubezt.ir.ports import PortKey
from kubezt.ir.requests import HttpRequest
from kubezt.ir.selectors import All, Selector


@dataclass(frozen=True, slots=True)
class TierChain:
    """The policies that apply to one endpoint in one direction, in evaluation order."""

    tiers: tuple[tuple[Tier, tuple[Policy, ...]], ...]

    @property
    def empty(self) -> bool:
        return not self.tiers

    @property
    def policies(self) -> tuple[Policy, ...]:
        return tuple(p for _, ps in self.tiers for p in ps)


def tier_sort_key(tier: Tier) -> tuple[int, float, str]:
    return (1 if tier.order is None else 0, tier.order or 0.0, tier.name)


def chains(matcher: Matcher, direction: Direction, staged: bool = False) -> list[TierChain]:
    """For every peer of the index, the enforced (or, with `staged`, only the staged) policies
    applying to it in `direction`, in evaluation order. Non-endpoints get an empty chain."""
    ix = matcher.ix
    per_peer: list[list[int]] = [[] for _ in ix.peers]
    policies = ix.policies.policies
    for pi, policy in enumerate(policies):
        if policy.staged is not staged or direction not in policy.types:
            continue
        for bit in iter_bits(matcher.selected_by(policy)):
            per_peer[bit].append(pi)
    cache: dict[tuple[int, ...], TierChain] = {}
    out: list[TierChain] = []
    for selected in per_peer:
        key = tuple(selected)
        chain = cache.get(key)
        if chain is None:
            by_tier: dict[str, list[Policy]] = {}
            for pi in selected:
                by_tier.setdefault(policies[pi].tier, []).append(policies[pi])
            tiers = sorted((ix.policies.tier(name) for name in by_tier), key=tier_sort_key)
            chain = TierChain(
                tuple(
                    (tier, tuple(sorted(by_tier[tier.name], key=lambda p: p.sort_key)))
                    for tier in tiers
                )
            )
            cache[key] = chain
        out.append(chain)
    return out


# --- matching a rule side ----------------------------------------------------------------------


class Matcher:
    """Turns rule sides into (definitely-matching, possibly-matching) peer bitsets, cached."""

    def __init__(self, index: ClassIndex) -> None:
        self.ix = index
        self._base: dict[tuple[EntityMatch, str | None], tuple[int, int]] = {}
        self._nets: dict[object, tuple[int, int]] = {}

    def selected_by(self, policy: Policy) -> int:
        """Endpoint peers that `policy` selects (ignoring its types)."""
        ix = self.ix
        bits = ix.endpoints
        if policy.namespace is not None:
            bits &= ix.in_namespace(policy.namespace)
        if policy.selector is not None:
            bits &= ix.endpoints_matching(policy.selector)
        if policy.namespace_selector is not None:
            bits &= ix.in_namespaces_matching(policy.namespace_selector)
        if policy.service_account_selector is not None:
            bits &= ix.with_service_accounts(None, policy.service_account_selector)
        return bits

    def side(
        self, entity: EntityMatch, policy_ns: str | None, destination_side: bool, port: PortKey
    ) -> tuple[int, int]:
        """Peers this side matches for a connection to `port`: (yes, maybe) with yes ⊆ maybe."""
        yes, maybe = self.base(entity, policy_ns)
        if entity.ports is not None or entity.not_ports is not None:
            if not destination_side:
                # Source ports are ephemeral: never sure a port condition matches.
                return 0, maybe
            if entity.ports is not None and not entity.ports.matches(port.port, port.name):
                return 0, 0
            if entity.not_ports is not None and entity.not_ports.matches(port.port, port.name):
                return 0, 0
        return yes, maybe

    def _address_bits(self, nets: tuple[object, ...]) -> tuple[int, int]:
        cached = self._nets.get(nets)
        if cached is None:
            cached = self.ix.with_address_in(nets)  # type: ignore[arg-type]
            self._nets[nets] = cached
        return cached

    def base(self, e: EntityMatch, policy_ns: str | None) -> tuple[int, int]:
        key = (e, policy_ns)
        cached = self._base.get(key)
        if cached is not None:
            return cached
        ix = self.ix
        yes = maybe = ix.all
        if e.nets is not None:
            inside, unknown = self._address_bits(e.nets)
            yes &= inside
            maybe &= inside | unknown
        if e.not_nets:
            inside, unknown = self._address_bits(e.not_nets)
            yes &= ~(inside | unknown)
            maybe &= ~inside
        positive = (
            e.selector is not None
            or e.namespace_selector is not None
            or e.namespace_scope is NamespaceScope.GLOBAL
            or e.service_account_names is not None
            or e.service_account_selector is not None
            or e.services is not None
            # A namespaced policy adds "in my namespace" whenever notSelector is set (A22).
            or (e.not_selector is not None and e.namespace_scope is NamespaceScope.OWN)
        )
        if positive:
            eps = ix.endpoints
            if e.namespace_scope is NamespaceScope.OWN and policy_ns is not None:
                eps &= ix.in_namespace(policy_ns)
            elif e.namespace_scope is NamespaceScope.SELECTED and e.namespace_selector is not None:
                eps &= ix.in_namespaces_matching(e.namespace_selector)
            elif e.namespace_scope is NamespaceScope.GLOBAL:
                eps = 0
            if e.selector is not None:
                eps &= ix.endpoints_matching(e.selector)
            if e.service_account_names is not None or e.service_account_selector is not None:
                eps &= ix.with_service_accounts(e.service_account_names, e.service_account_selector)
            if e.services is not None:
                eps &= ix.backing_service(*e.services)
            eps |= self._network_sets(e, policy_ns, e.selector, positive=True)
            yes &= eps
            maybe &= eps
        if e.not_selector is not None:
            negated = ix.endpoints_matching(e.not_selector)
            negated |= self._network_sets(e, policy_ns, e.not_selector, positive=False)
            yes &= ~negated
            maybe &= ~negated
        result = (yes & ix.all, maybe & ix.all)
        self._base[key] = result
        return result

    def _network_sets(
        self, e: EntityMatch, policy_ns: str | None, selector: Selector | None, positive: bool
    ) -> int:
        """External peers whose containing Calico network sets the side's selector matches."""
        if not self.ix.externals:
            return 0
        sel: Selector = selector if selector is not None else All()
        if positive and (
            e.service_account_names is not None
            or e.services is not None
            or e.service_account_selector is not None
        ):
            return 0
        bits = 0
        for i, peer in enumerate(self.ix.peers):
            if peer.kind is not PeerKind.EXTERNAL:
                continue
            for ns in peer.network_sets:
                if positive:
                    scope = e.namespace_scope
                    if scope is NamespaceScope.GLOBAL and ns.namespace is not None:
                        continue
                    if scope is NamespaceScope.OWN and ns.namespace != policy_ns:
                        continue
                    if scope is NamespaceScope.SELECTED:
                        if ns.namespace is None or e.namespace_selector is None:
                            continue
                        ns_obj = self.ix.topology.namespace(ns.namespace)
                        if not e.namespace_selector.matches(ns_obj.labels):
                            continue
                if sel.matches(dict(ns.labels)):
                    bits |= 1 << i
                    break
        return bits


def http_matches(match: HttpMatch, request: HttpRequest) -> bool:
    """Dikastes: methods exact (or `*`); paths exact or prefix at a segment boundary (A11)."""
    if match.methods and not any(m in ("*", request.method) for m in match.methods):
        return False
    if not (match.exact_paths or match.prefix_paths):
        return True
    path = request.path.split("?", 1)[0]
    if path in match.exact_paths:
        return True
    for prefix in match.prefix_paths:
        if path == prefix or path.startswith(prefix if prefix.endswith("/") else prefix + "/"):
            return True
    return False


def protocol_matches(rule: Rule, port: PortKey) -> bool:
    number = port.protocol.number
    if rule.protocol is not None and rule.protocol != number:
        return False
    if rule.not_protocol is not None and rule.not_protocol == number:
        return False
    # icmp clauses only match ICMP packets; reachability here is about ported protocols.
    return not rule.icmp


def tier_layer(policies: tuple[Policy, ...]) -> Layer:
    """`calico` when a Calico policy selected the endpoint in this tier, else `k8s-netpol`."""
    return (
        Layer.CALICO if any(p.dialect is Dialect.CALICO for p in policies) else (Layer.K8S_NETPOL)
    )


# --- the evaluator -----------------------------------------------------------------------------


def decide(
    matcher: Matcher,
    chain: TierChain,
    direction: Direction,
    own: int,
    port: PortKey,
    universe: int,
    trace: list[Step] | None = None,
    http: HttpRequest | None = None,
) -> int:
    """Peers in `universe` whose connection with endpoint class `own` on `port` the endpoint's
    policy allows in `direction` (ingress: peers are sources; egress: destinations).

    Tiers in order; within a tier policies by order; the first matching rule decides: Allow and
    Deny are final, Log continues, Pass skips to the next tier; an applicable tier without a
    verdict ends in its default action (Deny unless the tier says Pass); after the last tier the
    namespace profile allows.
    """
    ingress = direction is Direction.INGRESS
    own_bit = 1 << own
    if chain.empty:
        if trace is not None:
            trace.append(
                Step(
                    Layer.DATAPLANE,
                    "no-policy-selects-endpoint",
                    Effect.ALLOW,
                    "no policy selects the endpoint in this direction; the namespace "
                    "profile allows",
                    direction=direction.value,
                )
            )
        return universe
    undecided = universe
    allowed = 0
    for tier, policies in chain.tiers:
        layer = tier_layer(policies)
        passed = 0
        if trace is not None:
            names = ", ".join(p.ref for p in policies)
            trace.append(
                Step(
                    layer,
                    "tier-applies",
                    Effect.CONTINUE,
                    f"tier {tier.name!r}: policies selecting the endpoint: {names}",
                    direction=direction.value,
                    tier=tier.name,
                )
            )
        for policy in policies:
            for index, rule in enumerate(policy.rules(direction)):
                if not undecided:
                    break
                if not protocol_matches(rule, port):
                    continue
                # Felix ignores `http` clauses; only application layer policy (called with the
                # request) enforces them.
                if http is not None and rule.http is not None and not http_matches(rule.http, http):
                    continue
                strict = rule.action is Action.ALLOW
                own_side = rule.destination if ingress else rule.source
                peer_side = rule.source if ingress else rule.destination
                oy, om = matcher.side(own_side, policy.namespace, ingress, port)
                if not own_bit & (oy if strict else om):
                    continue
                py, pm = matcher.side(peer_side, policy.namespace, not ingress, port)
                matched = (py if strict else pm) & undecided
                if not matched:
                    continue
                if trace is not None:
                    effect = {Action.ALLOW: Effect.ALLOW, Action.DENY: Effect.DENY}.get(
                        rule.action, Effect.CONTINUE
                    )
                    reason = {Action.PASS: "calico-tier-pass", Action.LOG: "log-rule-matched"}.get(
                        rule.action, "rule-matched"
                    )
                    shown = rule.index if rule.index is not None else index
                    where = (
                        rule.origin.path
                        if rule.origin is not None and rule.origin.path
                        else (f"{direction.value.lower()} rule {shown}")
                    )
                    trace.append(
                        Step(
                            layer,
                            reason,
                            effect,
                            f"{policy.ref} {where} ({rule.action.value}) matched",
                            source=rule.origin or policy.source,
                            direction=direction.value,
                            tier=tier.name,
                            rule_index=shown,
                            action=rule.action.value,
                        )
                    )
                if rule.action is Action.ALLOW:
                    allowed |= matched
                    undecided &= ~matched
                elif rule.action is Action.DENY:
                    undecided &= ~matched
                elif rule.action is Action.PASS:
                    passed |= matched
                    undecided &= ~matched
        if tier.default_action is Action.PASS:
            undecided |= passed
            if trace is not None and undecided:
                trace.append(
                    Step(
                        layer,
                        "tier-default-pass",
                        Effect.CONTINUE,
                        f"no rule in tier {tier.name!r} decided; its default action is Pass",
                        direction=direction.value,
                        tier=tier.name,
                    )
                )
        else:
            if trace is not None and undecided:
                trace.append(
                    Step(
                        layer,
                        "end-of-tier-deny",
                        Effect.DENY,
                        f"no rule in tier {tier.name!r} allowed it: end-of-tier deny",
                        direction=direction.value,
                        tier=tier.name,
                    )
                )
            undecided = passed
        if not undecided:
            break
    if undecided and trace is not None:
        trace.append(
            Step(
                Layer.DATAPLANE,
                "profile-allow",
                Effect.ALLOW,
                "passed by the last applicable tier; the namespace profile allows",
                direction=direction.value,
            )
        )
    return allowed | undecided


def denying_layer(trace: list[Step]) -> Layer:
    """The layer of the last deny step in a single-peer trace."""
    for step in reversed(trace):
        if step.effect is Effect.DENY:
            return step.layer
    return Layer.K8S_NETPOL
