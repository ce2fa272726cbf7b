"""AuthorizationPolicy decided for many sources at once, as bitsets over workload classes.

`engine.authz.authorize` decides one request at one enforcement point. The matrix asks the same
question for every source class against a destination, and most of the answer does not depend
on the source: ports, methods, paths, hosts, headers and destination conditions are the same
for all of them. So each rule is compiled once (per action, enforcement point and L7/TCP
handling) into the items that survive translation (`authz.view`), and only the source items
(principals, namespaces, service accounts, trust domains, IP blocks and the `source.*`
conditions) are evaluated per source — once per distinct identity or address, with the very
same matching functions `authorize` uses, and kept as a bitset of classes. A decision for a
destination's policy set is then a few big-integer operations:

    allowed = (OR of matching ALLOW rules, or everyone without ALLOW policies)
              AND NOT (OR of matching DENY and CUSTOM rules)

which is what `authorize` computes request by request (CUSTOM → DENY → ALLOW; the order of the
first match only matters for the explanation, not for the verdict). Results are cached per
(policy set, enforcement point, mTLS, port, request, destination address when a rule reads it),
so destinations that share their policies share the work; the ports no rule of the policies
names (`authz.ports_named`) count as one port there.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields

from kubezt.engine.authz import (
    AuthzRequest,
    Enforcer,
    RuleView,
    _condition_match,
    _Ctx,
    _field_match,
    namespace_match,
    ports_named,
    principal_match,
    view,
)
from kubezt.ir.config import MeshConfig
from kubezt.ir.mesh import (
    AuthorizationPolicy,
    AuthzAction,
    AuthzCondition,
    AuthzOperation,
    AuthzRule,
    AuthzSource,
)
from kubezt.ir.requests import HttpRequest

PRINCIPAL_FIELDS = frozenset(
    {
        "principals",
        "request_principals",
        "namespaces",
        "service_accounts",
        "trust_domains",
    }
)
ADDRESS_FIELDS = frozenset({"ip_blocks", "remote_ip_blocks"})
PRINCIPAL_CONDITIONS = frozenset(
    {"source.namespace", "source.principal", "source.serviceAccount", "source.trustDomain"}
)
ADDRESS_CONDITIONS = frozenset({"source.ip", "remote.ip"})

REQUEST_BLIND_CONDITIONS = (
    PRINCIPAL_CONDITIONS
    | ADDRESS_CONDITIONS
    | {
        "destination.ip",
        "destination.port",
    }
)
"""Conditions whose value never comes from the HTTP request (`authz._condition_value`)."""
PORT_ITEMS = frozenset({"ports", "not_ports"})

_SOURCE_FIELDS = tuple(f.name for f in fields(AuthzSource))
_OPERATION_FIELDS = tuple(f.name for f in fields(AuthzOperation))

Clause = tuple[tuple[str, tuple[str, ...]], ...]
"""The (field, patterns) items of one `from` source or `to` operation that an enforcement
point keeps; empty when it keeps none."""


@dataclass(frozen=True, slots=True)
class CompiledRule:
    """One rule as one enforcement point sees it, with the reflection done once."""

    rule: AuthzRule
    dropped: bool
    sources: tuple[Clause, ...] | None
    operations: tuple[Clause, ...] | None
    conditions: tuple[tuple[AuthzCondition, bool], ...]
    """(condition, removed by translation)."""
    empty_never_matches: bool
    reads_destination_ip: bool


def _clause(
    obj: AuthzSource | AuthzOperation, names: tuple[str, ...], removed: frozenset[str]
) -> Clause:
    out = []
    for name in names:
        value = getattr(obj, name)
        if value is not None and name not in removed:
            out.append((name, value))
    return tuple(out)


def reads_request(rule: CompiledRule, port: int) -> bool:
    """Can the rule's verdict on `port` depend on the HTTP request (method, path, host,
    headers)? Source items never do (`SourceSpace` decides them without a request); an
    operation whose `ports`/`notPorts` rule out `port` never matches there, whatever it asks
    of the request."""
    for cond, removed in rule.conditions:
        if not removed and cond.key not in REQUEST_BLIND_CONDITIONS:
            return True
    text = str(port)
    for clause in rule.operations or ():
        items = dict(clause)
        ports, not_ports = items.get("ports"), items.get("not_ports")
        if (ports is not None and text not in ports) or (
            not_ports is not None and text in not_ports
        ):
            continue
        if any(name not in PORT_ITEMS for name, _ in clause):
            return True
    return False


def compile_rule(rule: AuthzRule, rule_view: RuleView) -> CompiledRule:
    sources = (
        None
        if rule.sources is None
        else tuple(_clause(s, _SOURCE_FIELDS, rule_view.removed_source) for s in rule.sources)
    )
    operations = (
        None
        if rule.operations is None
        else tuple(
            _clause(o, _OPERATION_FIELDS, rule_view.removed_operation) for o in rule.operations
        )
    )
    conditions = tuple((c, c.key in rule_view.removed_when) for c in rule.conditions)
    return CompiledRule(
        rule,
        rule_view.dropped,
        sources,
        operations,
        conditions,
        rule_view.empty_never_matches,
        any(c.key == "destination.ip" and not removed for c, removed in conditions),
    )


class SourceSpace:
    """The sources of one evaluation as authorization sees them: for each class bit, the
    principal it presents over mTLS and its address. Field matches are computed once per
    distinct principal or address and kept as bitsets."""

    def __init__(
        self,
        principals: Sequence[str | None],
        addresses: Sequence[str | None],
        address_keys: Sequence[object],
        config: MeshConfig,
    ) -> None:
        self.config = config
        self.size = len(principals)
        self.all = (1 << self.size) - 1
        by_principal: dict[str | None, int] = {}
        by_address: dict[object, tuple[str | None, int]] = {}
        for i, (p, ip, akey) in enumerate(zip(principals, addresses, address_keys, strict=True)):
            bit = 1 << i
            by_principal[p] = by_principal.get(p, 0) | bit
            rep, bits = by_address.get(akey, (ip, 0))
            by_address[akey] = (rep, bits | bit)
        self.by_principal = by_principal
        self.addresses = list(by_address.values())
        """(representative address, classes) per distinct address class."""
        self._fields: dict[tuple[object, ...], int] = {}
        self._patterns: dict[tuple[str, Enforcer], int] = {}

    def _scan(self, test: Callable[[str | None, str | None], bool], by: str) -> int:
        bits = 0
        if by == "principal":
            for p, pbits in self.by_principal.items():
                if test(p, None):
                    bits |= pbits
        else:
            for ip, abits in self.addresses:
                if test(None, ip):
                    bits |= abits
        return bits

    def _principal_pattern(self, pattern: str, enforcer: Enforcer) -> int:
        """Classes whose principal matches one `principals` pattern (`authz.principal_match`).
        A pattern without `*` matches itself or its trust-domain rewrites only, so those few
        candidates are looked up instead of scanning every principal."""
        key = (pattern, enforcer)
        cached = self._patterns.get(key)
        if cached is not None:
            return cached
        config = self.config
        if "*" in pattern:
            bits = 0
            for p, pbits in self.by_principal.items():
                if principal_match(pattern, p, enforcer, config):
                    bits |= pbits
        else:
            candidates = {pattern}
            parts = pattern.split("/")
            if len(parts) == 5:
                rest = "/".join(parts[1:])
                for td in (config.trust_domain, *config.trust_domain_aliases):
                    candidates.add(f"{td}/{rest}")
            bits = 0
            for c in candidates:
                found = self.by_principal.get(c, 0)
                if found and principal_match(pattern, c, enforcer, config):
                    bits |= found
        self._patterns[key] = bits
        return bits

    def field(
        self, name: str, patterns: tuple[str, ...], enforcer: Enforcer, policy_ns: str, strict: bool
    ) -> int:
        """Classes for which one source item of a rule holds (`authz._field_match`)."""
        key = (name, patterns, enforcer, policy_ns, strict)
        cached = self._fields.get(key)
        if cached is not None:
            return cached
        base = name.removeprefix("not_")
        if base == "principals":
            hit = 0
            for pattern in patterns:
                hit |= self._principal_pattern(pattern, enforcer)
            bits = self.all & ~hit if name != base else hit
        elif base == "namespaces":
            # `_field_match` on each distinct principal, without building a request for each
            hit = 0
            for p, pbits in self.by_principal.items():
                if any(namespace_match(pattern, p, enforcer) for pattern in patterns):
                    hit |= pbits
            bits = self.all & ~hit if name != base else hit
        else:
            by = "principal" if base in PRINCIPAL_FIELDS else "address"

            def test(p: str | None, ip: str | None) -> bool:
                request = AuthzRequest(p, ip, None, 0, None)
                return _field_match(
                    name, patterns, _Ctx(request, enforcer, self.config, policy_ns, strict)
                )

            bits = self._scan(test, by)
        self._fields[key] = bits
        return bits

    def condition(
        self, cond: AuthzCondition, enforcer: Enforcer, policy_ns: str, strict: bool
    ) -> int:
        """Classes for which a `source.*` condition holds (`authz._condition_match`)."""
        key = ("when", cond, enforcer, policy_ns, strict)
        cached = self._fields.get(key)
        if cached is not None:
            return cached
        by = "principal" if cond.key in PRINCIPAL_CONDITIONS else "address"

        def test(p: str | None, ip: str | None) -> bool:
            request = AuthzRequest(p, ip, None, 0, None)
            return _condition_match(cond, _Ctx(request, enforcer, self.config, policy_ns, strict))

        bits = self._scan(test, by)
        self._fields[key] = bits
        return bits


@dataclass(frozen=True, slots=True)
class Target:
    """What the enforcement point knows of the destination side of a request."""

    destination_ip: str | None
    port: int
    http: HttpRequest | None


class SetAuthorizer:
    """`authorize` for every source class at once. One instance per evaluation; `space` is the
    sources with their mTLS principals, `anonymous` the same sources over plaintext.

    Work is shared at three levels: a policy is compiled once per enforcement point and L7/TCP
    handling, whichever destinations it applies to; a policy's classes for one request (port,
    HTTP request, destination address when a rule reads it) are computed once and shared by
    every destination whose policy set contains it (namespace-wide and root-namespace policies
    apply to many); an operation item (`ports`, `methods`, `paths`, `hosts`) is matched once per
    port and request, whichever rules carry the same patterns."""

    def __init__(self, space: SourceSpace, anonymous: SourceSpace, config: MeshConfig) -> None:
        self.spaces = {True: space, False: anonymous}
        self.config = config
        self._sets: dict[tuple[object, ...], _CompiledSet] = {}
        self._policies: dict[tuple[int, Enforcer, bool], CompiledPolicy] = {}
        self._keep: list[object] = []
        self._sources: dict[tuple[int, bool], int] = {}
        self._decisions: dict[tuple[object, ...], int] = {}
        self._policy_bits: dict[tuple[object, ...], int] = {}
        self._operations: dict[tuple[object, ...], bool] = {}
        self._blind: dict[tuple[int, int | None], bool] = {}

    def request_blind(
        self, policies: Sequence[AuthorizationPolicy], enforcer: Enforcer, port: int
    ) -> bool:
        """Every HTTP request on `port` gets the same answer from these policies at this
        enforcement point (for any one source): no rule that can match there reads it."""
        compiled = self._compiled(policies, enforcer, True)
        key = (id(compiled), port if port in compiled.ports else None)
        blind = self._blind.get(key)
        if blind is None:
            blind = self._blind[key] = not any(
                reads_request(rule, port) for policy in compiled.policies for rule in policy.rules
            )
        return blind

    def _compiled_policy(
        self, policy: AuthorizationPolicy, enforcer: Enforcer, http: bool
    ) -> CompiledPolicy:
        key = (id(policy), enforcer, http)
        compiled = self._policies.get(key)
        if compiled is None:
            rules = tuple(
                c
                for c in (
                    compile_rule(r, view(r, policy.action, enforcer, http)) for r in policy.rules
                )
                if not c.dropped
            )
            compiled = CompiledPolicy(
                policy,
                policy.action is AuthzAction.ALLOW,
                rules,
                any(c.reads_destination_ip for c in rules),
                ports_named([policy]),
            )
            self._policies[key] = compiled
            self._keep.append(policy)  # the id in the key stays valid
        return compiled

    def _compiled(
        self, policies: Sequence[AuthorizationPolicy], enforcer: Enforcer, http: bool
    ) -> _CompiledSet:
        key = (tuple(map(id, policies)), enforcer, http)
        compiled = self._sets.get(key)
        if compiled is None:
            enforced = [p for p in policies if not p.dry_run and p.action is not AuthzAction.AUDIT]
            if enforcer is Enforcer.ZTUNNEL:
                enforced = [p for p in enforced if p.action is not AuthzAction.CUSTOM]
            compiled_policies = tuple(self._compiled_policy(p, enforcer, http) for p in enforced)
            compiled = _CompiledSet(
                compiled_policies,
                any(p.reads_destination_ip for p in compiled_policies),
                any(p.allow for p in compiled_policies),
                frozenset().union(*(p.ports for p in compiled_policies)),
            )
            self._sets[key] = compiled
            self._keep.append(policies)  # the ids in the key stay valid
        return compiled

    def allowed(
        self,
        policies: Sequence[AuthorizationPolicy],
        enforcer: Enforcer,
        mtls: bool,
        target: Target,
    ) -> int:
        """Classes whose request (principal when `mtls`, address) is allowed at this point."""
        return self.allowed_each(
            policies, enforcer, mtls, target.destination_ip, target.port, [target.http]
        )[0]

    def allowed_each(
        self,
        policies: Sequence[AuthorizationPolicy],
        enforcer: Enforcer,
        mtls: bool,
        destination_ip: str | None,
        port: int,
        requests: Sequence[HttpRequest | None],
    ) -> list[int]:
        """For each request (None: the connection handled as TCP), the classes allowed."""
        out: list[int] = []
        space = self.spaces[mtls]
        by_kind: dict[bool, _CompiledSet] = {}
        decisions = self._decisions
        for http in requests:
            is_http = http is not None
            compiled = by_kind.get(is_http)
            if compiled is None:
                compiled = by_kind[is_http] = self._compiled(policies, enforcer, is_http)
            key = (
                id(compiled),
                mtls,
                port if port in compiled.ports else None,
                http,
                destination_ip if compiled.reads_destination_ip else None,
            )
            cached = decisions.get(key)
            if cached is None:
                cached = decisions[key] = self._decide(
                    compiled, space, enforcer, mtls, destination_ip, port, http
                )
            out.append(cached)
        return out

    def _decide(
        self,
        compiled: _CompiledSet,
        space: SourceSpace,
        enforcer: Enforcer,
        mtls: bool,
        destination_ip: str | None,
        port: int,
        http: HttpRequest | None,
    ) -> int:
        """CUSTOM → DENY → ALLOW for every class: the classes some ALLOW rule matches (everyone
        without ALLOW policies) minus those some DENY or CUSTOM rule matches."""
        deny = 0
        allow = 0
        everyone = space.all
        request: AuthzRequest | None = None
        cache = self._policy_bits
        for policy in compiled.policies:
            if not policy.rules:
                continue
            key = (
                id(policy),
                mtls,
                port if port in policy.ports else None,
                http,
                destination_ip if policy.reads_destination_ip else None,
            )
            bits = cache.get(key)
            if bits is None:
                if request is None:
                    request = AuthzRequest(None, None, destination_ip, port, http)
                bits = cache[key] = self._policy_matches(policy, space, enforcer, mtls, request)
            if policy.allow:
                allow |= bits
            else:  # CUSTOM (the external answer is not modelled: a match denies) and DENY
                deny |= bits
        return (allow if compiled.has_allow else everyone) & ~deny & everyone

    def _policy_matches(
        self,
        policy: CompiledPolicy,
        space: SourceSpace,
        enforcer: Enforcer,
        mtls: bool,
        request: AuthzRequest,
    ) -> int:
        """The classes for which some rule of the policy matches the request."""
        ctx = _Ctx(request, enforcer, self.config, policy.policy.namespace, policy.allow)
        everyone = space.all
        bits = 0
        for rule in policy.rules:
            sources = self._source_bits(rule, space, mtls, ctx)
            if sources & ~bits and self._request_matches(rule, ctx):
                bits |= sources
                if bits == everyone:
                    break
        return bits

    def _source_bits(self, rule: CompiledRule, space: SourceSpace, mtls: bool, ctx: _Ctx) -> int:
        """Classes the rule's source items and `source.*` conditions hold for; 0 when a
        condition the enforcement point removed makes the rule never match."""
        key = (id(rule), mtls)
        cached = self._sources.get(key)
        if cached is not None:
            return cached
        self._keep.append(rule)
        bits = space.all
        for cond, removed in rule.conditions:
            if removed:
                if rule.empty_never_matches:
                    bits = 0
                    break
                continue
            if cond.key in PRINCIPAL_CONDITIONS or cond.key in ADDRESS_CONDITIONS:
                bits &= space.condition(cond, ctx.enforcer, ctx.policy_ns, ctx.strict)
        if bits and rule.sources is not None:
            matched = 0
            for clause in rule.sources:
                if not clause:
                    if rule.empty_never_matches:
                        continue
                    matched = space.all
                    break
                clause_bits = space.all
                for name, patterns in clause:
                    clause_bits &= space.field(
                        name, patterns, ctx.enforcer, ctx.policy_ns, ctx.strict
                    )
                    if not clause_bits:
                        break
                matched |= clause_bits
                if matched == space.all:
                    break
            bits &= matched
        self._sources[key] = bits
        return bits

    def _operation_item(self, name: str, patterns: tuple[str, ...], ctx: _Ctx) -> bool:
        """`_field_match` of an operation item: it reads only the port and the HTTP request,
        so the answer is shared by every rule with the same item."""
        key = (name, patterns, ctx.request.port, ctx.request.http)
        hit = self._operations.get(key)
        if hit is None:
            hit = self._operations[key] = _field_match(name, patterns, ctx)
        return hit

    def _request_matches(self, rule: CompiledRule, ctx: _Ctx) -> bool:
        """The rule's operation items and its conditions that do not read the source."""
        if rule.operations is not None:
            hit = False
            for clause in rule.operations:
                if not clause:
                    if rule.empty_never_matches:
                        continue
                    hit = True
                    break
                if all(self._operation_item(name, patterns, ctx) for name, patterns in clause):
                    hit = True
                    break
            if not hit:
                return False
        for cond, removed in rule.conditions:
            if removed or cond.key in PRINCIPAL_CONDITIONS or cond.key in ADDRESS_CONDITIONS:
                continue
            if not _condition_match(cond, ctx):
                return False
        return True


@dataclass(frozen=True, slots=True)
class CompiledPolicy:
    """One enforced policy as one enforcement point sees it (its rules that survive)."""

    policy: AuthorizationPolicy
    allow: bool
    """ALLOW (an unknown attribute never makes its rules match) rather than DENY or CUSTOM."""
    rules: tuple[CompiledRule, ...]
    reads_destination_ip: bool
    ports: frozenset[int]
    """The ports its rules name (`authz.ports_named`): any two others are decided alike, so
    its answers are cached for them once."""


@dataclass(frozen=True, slots=True)
class _CompiledSet:
    policies: tuple[CompiledPolicy, ...]
    reads_destination_ip: bool
    has_allow: bool
    ports: frozenset[int]
    """The ports its policies name."""
