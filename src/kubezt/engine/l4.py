"""L3/L4 decisions: Calico's tiered first-match algorithm, which also decides K8s NetworkPolicy.

Owns: which policies apply to an endpoint in a direction (its *chain*: tiers in order, policies
by order then name), matching a rule side against every peer at once (bitsets from
`ClassIndex`), and `decide()`, the one first-match evaluator every command uses. With a
universe of one peer and a trace list it doubles as the explainer.

Semantics: docs.tigera.io/calico/latest/reference/resources/tier and felix
`rules/endpoints.go`; K8s NetworkPolicies sit in tier `default` at order 1000 (see
`kubezt.dialects.k8s`). A pod selected by no policy in a direction is allowed by its namespace
profile. Unknown facts (a pod IP not given, an ephemeral source port, an ICMP type, the IP
family of pods without addresses) are resolved against the connection: an Allow does not match
on them, a Deny or Pass does, so kubezt never reports an allow that the cluster might refuse.

`staged_policy_steps()` answers the staged-policy question for one connection: what would
change if every staged policy were enforced (docs.tigera.io/calico/latest/network-policy/
staged-network-policies).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import IntEnum

from kubezt.engine.explain import Effect, Layer, StagedChange, Step
from kubezt.engine.index import (
    CALICO_NAME,
    CALICO_NAMESPACE,
    ClassIndex,
    Peer,
    PeerKind,
    bit_indices,
    iter_bits,
)
from kubezt.ir.policy import (
    ANP_TIER,
    KUBE_ADMIN_TIER,
    Action,
    Dialect,
    Direction,
    EntityMatch,
    HttpMatch,
    NamespaceScope,
    Network,
    Policy,
    PolicySet,
    Rule,
    Tier,
    Unresolved,
)
from kubezt.ir.ports import PortKey, PortSet, Protocol
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
        for bit in bit_indices(matcher.selected_by(policy)):
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
        self._nets: dict[tuple[Network, ...], tuple[int, int]] = {}
        self._families: dict[tuple[int, int], tuple[int, int]] = {}
        self._port_conditions: tuple[tuple[PortSet, ...], tuple[tuple[str, str], ...]] | None = None
        self._condition_at: dict[PortSet, int] = {}
        self._service_at: dict[tuple[str, str], int] = {}

    def port_signature(self, port: PortKey) -> tuple[object, ...]:
        """What the rules can see of a destination port: its protocol and, for every port
        condition (`ports`, `notPorts`) and destination Service of any rule, whether the port
        matches it. `decide` gives ports with equal signatures equal verdicts for every peer
        (it reads the port nowhere else)."""
        conditions_, services_ = self._conditions()
        return (
            port.protocol,
            tuple(c.matches(port.port, port.name) for c in conditions_),
            tuple(self._service_port(s, port) for s in services_),
        )

    def _conditions(self) -> tuple[tuple[PortSet, ...], tuple[tuple[str, str], ...]]:
        if self._port_conditions is None:
            conditions: dict[PortSet, None] = {}
            services: dict[tuple[str, str], None] = {}
            for policy in self.ix.policies.policies:
                for rule in (*policy.ingress, *policy.egress):
                    for entity in (rule.source, rule.destination):
                        for ports in (entity.ports, entity.not_ports):
                            if ports is not None:
                                conditions[ports] = None
                        if entity.services is not None:
                            services[entity.services] = None
            self._port_conditions = (tuple(conditions), tuple(services))
        return self._port_conditions

    def chain_port_view(
        self, chain: TierChain, direction: Direction
    ) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """The positions, in `port_signature`'s tuples, of the port conditions and Services
        that the rules of `chain` in `direction` hold: under `chain`, `decide` reads a port
        only through them and its protocol, so ports whose signatures agree on the protocol
        and these positions get equal verdicts under `chain`."""
        conditions_, services_ = self._conditions()
        at, service_at = self._condition_at, self._service_at
        if not at and not service_at:
            at.update((c, i) for i, c in enumerate(conditions_))
            service_at.update((s, i) for i, s in enumerate(services_))
        cond: dict[int, None] = {}
        svc: dict[int, None] = {}
        for policy in chain.policies:
            for rule in policy.rules(direction):
                for entity in (rule.source, rule.destination):
                    for ports in (entity.ports, entity.not_ports):
                        if ports is not None:
                            cond[at[ports]] = None
                    if entity.services is not None:
                        svc[service_at[entity.services]] = None
        return tuple(sorted(cond)), tuple(sorted(svc))

    def add_peers(self, peers: Sequence[Peer]) -> int:
        """Add a class for each of `peers` to the index (incremental updates) and return the
        first one's index; every cached rule side gains the new bits, decided on the new peers
        alone (what a side matches is a property of each peer alone)."""
        more = Matcher(ClassIndex(peers, self.ix.topology, self.ix.policies))
        n = self.ix.add_peers(peers, more.ix)
        for key, (yes, maybe) in self._base.items():
            y, m = more.base(*key)
            self._base[key] = (yes | y << n, maybe | m << n)
        for nets, (inside, unknown) in self._nets.items():
            y, m = more.ix.with_address_in(nets)
            self._nets[nets] = (inside | y << n, unknown | m << n)
        self._families.clear()
        return n

    def twins(self, n: int, among: int) -> int:
        """Classes of `among` that every rule side decided so far matches exactly as class `n`,
        with an address of the same family: as peers, `decide` gives them `n`'s verdicts
        under every chain decided so far (it reads a peer only through those sides)."""
        bit = 1 << n
        cand = among & ~bit
        for yes, maybe in self._base.values():
            cand &= yes if yes & bit else ~yes
            cand &= maybe if maybe & bit else ~maybe
            if not cand:
                return 0
        peers = self.ix.peers
        ip = peers[n].ip
        family = None if ip is None else ip.version
        for c in iter_bits(cand):
            other = peers[c].ip
            if (None if other is None else other.version) != family:
                cand &= ~(1 << c)
        return cand

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
        if (
            destination_side
            and entity.services is not None
            and not self._service_port(entity.services, port)
        ):
            # A destination services match covers the Service's endpoint ports only (felix
            # rule_scanner: ServiceIncludePorts for destination services).
            return 0, 0
        return yes, maybe

    def _service_port(self, service: tuple[str, str], port: PortKey) -> bool:
        namespace, name = service
        for svc in self.ix.topology.services:
            if svc.namespace == namespace and svc.name == name:
                return any(
                    sp.protocol is port.protocol
                    and (sp.target_port == port.port or sp.target_port == port.name != "")
                    for sp in svc.ports
                )
        return False

    def family(self, version: int, own: int) -> tuple[int, int]:
        """Peers whose connection with `own` is of IP version `version`: (yes, maybe).

        A connection has one family: the one of whichever end's address is known. Peers
        without an address, talking to an endpoint without one, may be of either family.
        """
        key = (version, own)
        cached = self._families.get(key)
        if cached is not None:
            return cached
        ix = self.ix
        own_ip = ix.peers[own].ip
        if own_ip is not None:
            cached = (ix.all, ix.all) if own_ip.version == version else (0, 0)
        else:
            yes = unknown = 0
            for i, peer in enumerate(ix.peers):
                if peer.ip is None:
                    unknown |= 1 << i
                elif peer.ip.version == version:
                    yes |= 1 << i
            cached = (yes, yes | unknown)
        self._families[key] = cached
        return cached

    def _address_bits(self, nets: tuple[Network, ...]) -> tuple[int, int]:
        cached = self._nets.get(nets)
        if cached is None:
            cached = self.ix.with_address_in(nets)
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
            if e.services is not None:
                # services stands alone (validateEntityRule): no namespace scoping applies.
                eps = ix.backing_service(*e.services)
            elif e.namespace_scope is NamespaceScope.OWN and policy_ns is not None:
                eps &= ix.in_namespace(policy_ns)
            elif e.namespace_scope is NamespaceScope.SELECTED and e.namespace_selector is not None:
                eps &= ix.in_namespaces_matching(e.namespace_selector)
            elif e.namespace_scope is NamespaceScope.GLOBAL:
                eps = 0
            if e.selector is not None:
                eps &= ix.endpoints_matching(e.selector)
            if e.service_account_names is not None or e.service_account_selector is not None:
                eps &= ix.with_service_accounts(e.service_account_names, e.service_account_selector)
            set_yes, set_maybe = self._network_sets(e, policy_ns, e.selector, positive=True)
            yes &= eps | set_yes
            maybe &= eps | set_maybe
        if e.not_selector is not None:
            negated = ix.endpoints_matching(e.not_selector)
            set_yes, set_maybe = self._network_sets(e, policy_ns, e.not_selector, positive=False)
            yes &= ~(negated | set_maybe)
            maybe &= ~(negated | set_yes)
        if e.unresolved is not None:
            # Addresses the input cannot resolve: never certainly inside, possibly anywhere in
            # scope (node addresses are never pod-network addresses).
            scope = ix.all & ~ix.endpoints if e.unresolved is Unresolved.NODES else ix.all
            if e.nets is None:
                yes, maybe = 0, maybe & scope
            else:
                maybe |= scope
        result = (yes & ix.all, maybe & ix.all)
        self._base[key] = result
        return result

    def _network_sets(
        self, e: EntityMatch, policy_ns: str | None, selector: Selector | None, positive: bool
    ) -> tuple[int, int]:
        """Peers inside a Calico network set that the side's selector matches: (yes, maybe).

        Felix adds the CIDRs of every matching network set to the selector's IP set, so any
        address inside them matches, pods and nodes included; a peer whose address is not
        known may or may not be inside. `positive` applies the side's namespace scope
        (a negated selector is never scoped, A22).
        """
        sets = self.ix.policies.network_sets
        if not sets:
            return 0, 0
        if positive and (
            e.service_account_names is not None
            or e.services is not None
            or e.service_account_selector is not None
        ):
            return 0, 0
        sel: Selector = selector if selector is not None else All()
        nets: list[Network] = []
        for ns in sets:
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
                    ns_labels = ns_obj.labels.merged({CALICO_NAME: ns.namespace})
                    if not e.namespace_selector.matches(ns_labels):
                        continue
            labels = dict(ns.labels)
            if ns.namespace is not None:
                labels[CALICO_NAMESPACE] = ns.namespace
            if sel.matches(labels):
                nets.extend(ns.nets)
        if not nets:
            return 0, 0
        inside, unknown = self._address_bits(tuple(nets))
        return inside, inside | unknown


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


class Certainty(IntEnum):
    NO = 0
    MAYBE = 1
    YES = 2


ICMP_PROTOCOLS = frozenset({Protocol.ICMP, Protocol.ICMPV6})


def protocol_match(rule: Rule, port: PortKey) -> Certainty:
    """Whether the rule's protocol criteria match the connection's protocol.

    An icmp/notICMP clause only ever matches ICMP packets, and a connection does not say which
    ICMP type it carries, so on ICMP it is a MAYBE (a Deny applies, an Allow does not).
    """
    number = port.protocol.number
    if rule.protocol is not None and rule.protocol != number:
        return Certainty.NO
    if rule.not_protocol is not None and rule.not_protocol == number:
        return Certainty.NO
    if rule.icmp:
        return Certainty.MAYBE if port.protocol in ICMP_PROTOCOLS else Certainty.NO
    return Certainty.YES


def policy_label(policy: Policy) -> str:
    """`Kind ns/name`, saying which API a `NetworkPolicy` comes from (both dialects use it)."""
    if policy.kind == "NetworkPolicy":
        api = "Calico" if policy.dialect is Dialect.CALICO else "Kubernetes"
        return f"{api} {policy.ref}"
    return policy.ref


def api_tier(policy: Policy) -> str:
    """`Admin` or `Baseline` for a policy-API policy (its `priority` is its order), else ``
    (its `order` is Calico's)."""
    if policy.dialect is not Dialect.POLICY_API:
        return ""
    return "Admin" if policy.tier in ADMIN_TIERS else "Baseline"


ADMIN_TIERS = frozenset({KUBE_ADMIN_TIER, ANP_TIER})


def tier_layer(policies: tuple[Policy, ...]) -> Layer:
    """`calico` when a Calico policy selected the endpoint in this tier, `cluster-netpol` when
    a policy-API policy did, else `k8s-netpol`."""
    if any(p.dialect is Dialect.CALICO for p in policies):
        return Layer.CALICO
    if any(p.dialect is Dialect.POLICY_API for p in policies):
        return Layer.CLUSTER_NETPOL
    return Layer.K8S_NETPOL


def priority_groups(policies: tuple[Policy, ...]) -> list[tuple[Policy, ...]]:
    """The tier's policies in evaluation order, grouped where the order is undefined: policies
    of equal order of which one is a policy-API policy (the API leaves equal priorities
    unordered; Felix's tie-break by name does not bind an implementation)."""
    groups: list[tuple[Policy, ...]] = []
    run: list[Policy] = []

    def flush() -> None:
        if len(run) > 1 and any(p.dialect is Dialect.POLICY_API for p in run):
            groups.append(tuple(run))
        else:
            groups.extend((p,) for p in run)
        run.clear()

    for policy in policies:
        if run and (policy.order is None or policy.order != run[-1].order):
            flush()
        run.append(policy)
    flush()
    return groups


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
    namespace profile allows. Policies of equal priority whose order is undefined (the policy
    API) give the deny-safe answer (`_unordered_verdicts`).
    """
    if chain.empty:
        if trace is not None:
            trace.append(
                Step(
                    layer=Layer.DATAPLANE,
                    reason="no-policy-selects-endpoint",
                    effect=Effect.ALLOW,
                    direction=direction,
                )
            )
        return universe
    undecided = universe
    allowed = 0
    for tier, policies in chain.tiers:
        layer = tier_layer(policies)
        passed = 0
        if trace is not None:
            trace.append(
                Step(
                    layer=layer,
                    reason="tier-applies",
                    effect=Effect.CONTINUE,
                    params=(("policies", tuple(policy_label(p) for p in policies)),),
                    direction=direction,
                    tier=tier.name,
                )
            )
        for group in priority_groups(policies):
            if not undecided:
                break
            if len(group) == 1:
                a, d, p = _policy_verdicts(
                    matcher, group[0], tier, layer, direction, own, port, undecided, trace, http
                )
            else:
                a, d, p = _unordered_verdicts(
                    matcher, group, tier, layer, direction, own, port, undecided, trace, http
                )
            allowed |= a
            passed |= p
            undecided &= ~(a | d | p)
        if tier.default_action is Action.PASS:
            if trace is not None and undecided:
                trace.append(
                    Step(
                        layer=layer,
                        reason="tier-default-pass",
                        effect=Effect.CONTINUE,
                        direction=direction,
                        tier=tier.name,
                    )
                )
            undecided |= passed
        else:
            if trace is not None and undecided:
                trace.append(
                    Step(
                        layer=layer,
                        reason="end-of-tier-deny",
                        effect=Effect.DENY,
                        direction=direction,
                        tier=tier.name,
                    )
                )
            undecided = passed
        if not undecided:
            break
    if undecided and trace is not None:
        trace.append(
            Step(
                layer=Layer.DATAPLANE,
                reason="profile-allow",
                effect=Effect.ALLOW,
                direction=direction,
            )
        )
    return allowed | undecided


def _policy_verdicts(
    matcher: Matcher,
    policy: Policy,
    tier: Tier,
    layer: Layer,
    direction: Direction,
    own: int,
    port: PortKey,
    undecided: int,
    trace: list[Step] | None,
    http: HttpRequest | None,
) -> tuple[int, int, int]:
    """One policy's first-match verdicts over the peers in `undecided`: the peers it allows,
    denies and passes (Log rules continue)."""
    ingress = direction is Direction.INGRESS
    own_bit = 1 << own
    allowed = denied = passed = 0
    for index, rule in enumerate(policy.rules(direction)):
        if not undecided:
            break
        strict = rule.action is Action.ALLOW
        certainty = protocol_match(rule, port)
        if certainty is Certainty.NO or (strict and certainty is Certainty.MAYBE):
            continue
        # Felix ignores `http` clauses; only application layer policy (called with the
        # request) enforces them.
        if http is not None and rule.http is not None and not http_matches(rule.http, http):
            continue
        own_side = rule.destination if ingress else rule.source
        peer_side = rule.source if ingress else rule.destination
        oy, om = matcher.side(own_side, policy.namespace, ingress, port)
        if not own_bit & (oy if strict else om):
            continue
        py, pm = matcher.side(peer_side, policy.namespace, not ingress, port)
        if rule.ip_version is not None:
            fy, fm = matcher.family(rule.ip_version, own)
            py, pm = py & fy, pm & fm
        matched = (py if strict else pm) & undecided
        if not matched:
            continue
        if trace is not None:
            trace.append(_rule_step(policy, rule, index, tier, layer, direction))
        if rule.action is Action.ALLOW:
            allowed |= matched
            undecided &= ~matched
        elif rule.action is Action.DENY:
            denied |= matched
            undecided &= ~matched
        elif rule.action is Action.PASS:
            passed |= matched
            undecided &= ~matched
    return allowed, denied, passed


def _rule_step(
    policy: Policy, rule: Rule, index: int, tier: Tier, layer: Layer, direction: Direction
) -> Step:
    effect = {Action.ALLOW: Effect.ALLOW, Action.DENY: Effect.DENY}.get(
        rule.action, Effect.CONTINUE
    )
    reason = {Action.PASS: "calico-tier-pass", Action.LOG: "log-rule-matched"}.get(
        rule.action, "rule-matched"
    )
    shown = rule.index if rule.index is not None else index
    action = rule.action.value
    if policy.dialect is Dialect.POLICY_API and rule.action is Action.ALLOW:
        action = "Accept" if policy.kind == "ClusterNetworkPolicy" else "Allow"
    return Step(
        layer=layer,
        reason=reason,
        effect=effect,
        params=(
            ("policy", policy_label(policy)),
            ("api_tier", api_tier(policy)),
            ("order", policy.order),
            ("path", rule.origin.path if rule.origin is not None else ""),
            ("rule_name", rule.name or ""),
            ("rule_action", action),
        ),
        source=rule.origin or policy.source,
        direction=direction,
        tier=tier.name,
        rule_index=shown,
        action=rule.action,
    )


def _unordered_verdicts(
    matcher: Matcher,
    group: tuple[Policy, ...],
    tier: Tier,
    layer: Layer,
    direction: Direction,
    own: int,
    port: PortKey,
    undecided: int,
    trace: list[Step] | None,
    http: HttpRequest | None,
) -> tuple[int, int, int]:
    """Policies of equal priority, in any order: any of them that matches may decide, so the
    deny-safe answer is taken — Deny if one denies, else Pass if one passes, else Allow."""
    results: list[tuple[Policy, int, int, int, list[Step]]] = []
    for policy in group:
        steps: list[Step] | None = [] if trace is not None else None
        a, d, p = _policy_verdicts(
            matcher, policy, tier, layer, direction, own, port, undecided, steps, http
        )
        results.append((policy, a, d, p, steps or []))
    denied = passed = allowed = 0
    for _, a, d, p, _ in results:
        denied |= d
        passed |= p
        allowed |= a
    passed &= ~denied
    allowed &= ~(denied | passed)
    if trace is not None:
        deciding = [r for r in results if r[1] | r[2] | r[3]]
        if len(deciding) > 1:
            trace.append(
                Step(
                    layer=layer,
                    reason="equal-priority-overlap",
                    effect=Effect.CONTINUE,
                    params=(("policies", tuple(policy_label(r[0]) for r in deciding)),),
                    direction=direction,
                    tier=tier.name,
                )
            )
        outcomes = (
            (denied, [(r[2], r[4]) for r in results]),
            (passed, [(r[3], r[4]) for r in results]),
            (allowed, [(r[1], r[4]) for r in results]),
        )
        for bits, candidates in outcomes:
            steps_of = next((steps for got, steps in candidates if got & bits), None)
            if steps_of is not None:
                trace.extend(steps_of)
                break
    return allowed, denied, passed


def denying_layer(trace: list[Step]) -> Layer:
    """The layer of the last deny step in a single-peer trace."""
    for step in reversed(trace):
        if step.effect is Effect.DENY:
            return step.layer
    return Layer.K8S_NETPOL


# --- staged policies ---------------------------------------------------------------------------

STAGED_TWINS: dict[str, tuple[Dialect, str]] = {
    "StagedNetworkPolicy": (Dialect.CALICO, "NetworkPolicy"),
    "StagedGlobalNetworkPolicy": (Dialect.CALICO, "GlobalNetworkPolicy"),
    "StagedKubernetesNetworkPolicy": (Dialect.K8S, "NetworkPolicy"),
}
"""Staged kind → (dialect, kind) of the enforced policy it previews."""


def is_staged_delete(policy: Policy) -> bool:
    """A staged policy with `stagedAction: Delete` (previews deleting its enforced twin).

    The Calico reader lowers it with no types and no rules; a `Set` policy always has a type,
    because Calico infers `[Ingress]` when none is written.
    """
    return policy.staged and not policy.types


def is_staged_twin(staged: Policy, enforced: Policy) -> bool:
    """`enforced` is the policy that `staged` would create, replace or delete: same API, same
    namespace, same name (a `<tier>.` name prefix, required up to Calico 3.31, is ignored)."""
    twin = STAGED_TWINS.get(staged.kind)
    if twin is None or enforced.staged or (enforced.dialect, enforced.kind) != twin:
        return False
    if enforced.namespace != staged.namespace:
        return False
    return _bare_name(staged) == _bare_name(enforced)


def _bare_name(policy: Policy) -> str:
    prefix = f"{policy.tier}."
    return policy.name[len(prefix) :] if policy.name.startswith(prefix) else policy.name


def with_staged_enforced(policies: PolicySet) -> PolicySet:
    """The policy set as it would be if every staged policy were enforced: a `Set` staged
    policy replaces its enforced twin (or is added when there is none), a `Delete` one removes
    its twin. The staged policies keep their kind, so explanations name them."""
    enforced = [p for p in policies.policies if not p.staged]
    for staged in (p for p in policies.policies if p.staged):
        enforced = [p for p in enforced if not is_staged_twin(staged, p)]
        if not is_staged_delete(staged):
            enforced.append(dataclasses.replace(staged, staged=False))
    return dataclasses.replace(policies, policies=tuple(enforced))


def staged_policy_steps(
    index: ClassIndex,
    src: int,
    dst: int,
    port: PortKey,
    directions: Iterable[Direction] = (Direction.EGRESS, Direction.INGRESS),
) -> tuple[Step, ...]:
    """What the staged policies would do to the connection from peer `src` to peer `dst` of
    `index` on `port`, were they enforced. Pure; never changes the verdict.

    For each direction in `directions` whose endpoint (egress: `src`, ingress: `dst`) is a
    pod-network endpoint and whose policy chain the staged policies change, one `Effect.INFO`
    step: reason `staged-policy-would-change` when the verdict of that direction would flip,
    else `staged-policy-no-change`; its tier, rule index, action and source are those of the
    rule (or end-of-tier action) that would decide. Pass only the directions that are policed
    for this connection (e.g. leave out ingress for traffic from the destination's own node).
    No staged policy touching either end gives no steps.
    """
    if not any(p.staged for p in index.policies.policies):
        return ()
    now = Matcher(index)
    then = Matcher(ClassIndex(index.peers, index.topology, with_staged_enforced(index.policies)))
    steps: list[Step] = []
    for direction in directions:
        own, peer = (src, dst) if direction is Direction.EGRESS else (dst, src)
        if index.peers[own].kind is not PeerKind.ENDPOINT:
            continue
        now_chain = chains(now, direction)[own]
        then_chain = chains(then, direction)[own]
        if now_chain == then_chain:
            continue
        now_trace: list[Step] = []
        then_trace: list[Step] = []
        allowed_now = bool(decide(now, now_chain, direction, own, port, 1 << peer, now_trace))
        allowed_then = bool(decide(then, then_chain, direction, own, port, 1 << peer, then_trace))
        deciding = next(s for s in reversed(then_trace) if s.effect in (Effect.ALLOW, Effect.DENY))
        changed = allowed_now != allowed_then
        steps.append(
            Step(
                layer=Layer.CALICO if deciding.layer is Layer.DATAPLANE else deciding.layer,
                reason="staged-policy-would-change" if changed else "staged-policy-no-change",
                effect=Effect.INFO,
                params=(
                    ("changes", _staged_changes(now_chain, then_chain)),
                    ("allowed", allowed_then),
                    ("allowed_today", allowed_now),
                    ("deciding", deciding),
                ),
                source=deciding.source,
                direction=direction,
                tier=deciding.tier,
                rule_index=deciding.rule_index,
                action=deciding.action,
            )
        )
    return tuple(steps)


def _staged_changes(now: TierChain, then: TierChain) -> tuple[StagedChange, ...]:
    """The policies that differ between chains: staged ones added (replacing their enforced
    twin, if any), enforced ones deleted."""
    added = [p for p in then.policies if p not in now.policies]
    removed = [p for p in now.policies if p not in then.policies]
    parts: list[StagedChange] = []
    for staged in added:
        twins = [p for p in removed if is_staged_twin(staged, p)]
        parts.append(StagedChange(policy_label(staged), policy_label(twins[0]) if twins else ""))
    for gone in removed:
        if not any(is_staged_twin(staged, gone) for staged in added):
            parts.append(StagedChange(policy_label(gone), deleted=True))
    return tuple(parts)
