"""Istio AuthorizationPolicy: which policies apply at an enforcement point, how each rule matches
a request, and the CUSTOM → DENY → ALLOW decision (semantics.md §4, §5.3, Appendix A1-A6).

Three enforcement points differ: a sidecar and a waypoint are Envoy (full L7; on a TCP port an
ALLOW rule with an HTTP-only item is dropped and a DENY rule loses the item, an emptied part
then matching anything); ztunnel only understands L4 attributes (an ALLOW rule with an L7 item
is dropped; a DENY rule loses the item and an emptied match never matches).
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, fields
from enum import StrEnum
from urllib.parse import unquote

from kubezt.engine.explain import Effect, Layer, Step, StepParam
from kubezt.engine.memo import by_identity
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
from kubezt.ir.topology import Workload


class Enforcer(StrEnum):
    SIDECAR = "sidecar"
    WAYPOINT = "waypoint"
    ZTUNNEL = "ztunnel"

    @property
    def layer(self) -> Layer:
        return {
            Enforcer.SIDECAR: Layer.AUTHZ_SIDECAR,
            Enforcer.WAYPOINT: Layer.WAYPOINT,
            Enforcer.ZTUNNEL: Layer.ZTUNNEL,
        }[self]


@dataclass(frozen=True, slots=True)
class AuthzRequest:
    """What an enforcement point knows about one request or connection."""

    principal: str | None
    """Peer identity without `spiffe://`; None for plaintext (no identity)."""
    source_ip: str | None
    destination_ip: str | None
    port: int
    http: HttpRequest | None
    """None when the enforcement point handles the port as TCP."""


HTTP_ONLY_SOURCE = frozenset({"request_principals", "not_request_principals"})
HTTP_ONLY_OPERATION = frozenset(
    {"hosts", "not_hosts", "methods", "not_methods", "paths", "not_paths"}
)
# ztunnel cannot enforce these: istiod treats them as unsupported (an ALLOW rule using one is
# dropped, a DENY rule loses it) — including trustDomains (ambient/authorization.go).
ZTUNNEL_L7_SOURCE = HTTP_ONLY_SOURCE | {
    "remote_ip_blocks",
    "not_remote_ip_blocks",
    "trust_domains",
    "not_trust_domains",
}
ZTUNNEL_DROPPED_SOURCE: frozenset[str] = frozenset()
ZTUNNEL_WHEN_KEYS = frozenset(
    {"source.ip", "source.namespace", "source.principal", "destination.ip", "destination.port"}
)


def is_http_only_key(key: str) -> bool:
    return key.startswith(("request.headers[", "request.auth."))


# --- which policies apply ----------------------------------------------------------------------


def workload_policies(
    policies: tuple[AuthorizationPolicy, ...], workload: Workload, config: MeshConfig
) -> list[AuthorizationPolicy]:
    """Policies a sidecar or ztunnel enforces for `workload`: no targetRefs, in the root
    namespace or the workload's, with no selector or a selector matching the pod's labels.
    In the input's order; a tuple of policies is indexed by namespace once."""
    root = config.root_namespace
    if isinstance(policies, tuple):
        index = by_identity(_NAMESPACE_INDEX, policies, lambda: _by_namespace(policies))
        candidates = index.get(workload.namespace, ())
        if root != workload.namespace:
            also = index.get(root, ())
            if also:
                candidates = tuple(sorted((*candidates, *also), key=lambda item: item[0]))
        ordered: Iterable[AuthorizationPolicy] = (p for _, p in candidates)
    else:
        ordered = (
            p for p in policies if not p.target_refs and p.namespace in (root, workload.namespace)
        )
    out = []
    for p in ordered:
        if p.selector and not all(workload.labels.get(k) == v for k, v in p.selector.items()):
            continue
        out.append(p)
    return out


_NAMESPACE_INDEX: dict[
    Hashable, tuple[object, dict[str, tuple[tuple[int, AuthorizationPolicy], ...]]]
] = {}
"""Per policy tuple: the policies without targetRefs of each namespace, with their positions."""


def _by_namespace(
    policies: tuple[AuthorizationPolicy, ...],
) -> dict[str, tuple[tuple[int, AuthorizationPolicy], ...]]:
    index: dict[str, list[tuple[int, AuthorizationPolicy]]] = {}
    for i, p in enumerate(policies):
        if not p.target_refs:
            index.setdefault(p.namespace, []).append((i, p))
    return {ns: tuple(items) for ns, items in index.items()}


def waypoint_policies(
    policies: tuple[AuthorizationPolicy, ...],
    waypoint_name: str,
    waypoint_ns: str,
    service_name: str | None,
    service_ns: str | None,
    config: MeshConfig,
) -> list[AuthorizationPolicy]:
    """Policies a waypoint enforces: only those bound by targetRefs to the waypoint Gateway,
    to the addressed Service, or to GatewayClass istio-waypoint from the root namespace (A14).
    In the input's order; found through an index of the policies' targetRefs."""
    index = _target_index(policies, config.root_namespace)
    found = {
        *index.get(("Gateway", waypoint_name, waypoint_ns), ()),
        *index.get(("GatewayClass",), ()),
    }
    if service_name is not None:
        found.update(index.get(("Service", service_name, service_ns), ()))
    return [policies[i] for i in sorted(found)]


_TARGET_INDEX: dict[Hashable, tuple[object, dict[tuple[str | None, ...], list[int]]]] = {}
"""Per policy tuple and root namespace: the positions of the policies each waypoint binding
selects (`waypoint_policies`)."""


def _target_index(
    policies: tuple[AuthorizationPolicy, ...], root: str
) -> dict[tuple[str | None, ...], list[int]]:
    def build() -> dict[tuple[str | None, ...], list[int]]:
        index: dict[tuple[str | None, ...], list[int]] = {}
        for i, p in enumerate(policies):
            for ref in p.target_refs:
                kind, group = ref.kind, ref.group
                if kind == "Gateway" and group in ("gateway.networking.k8s.io", ""):
                    key: tuple[str | None, ...] = ("Gateway", ref.name, p.namespace)
                elif kind == "Service" and group in ("", "core"):
                    key = ("Service", ref.name, p.namespace)
                elif (
                    kind == "GatewayClass" and ref.name == "istio-waypoint" and p.namespace == root
                ):
                    key = ("GatewayClass",)
                else:
                    continue
                positions = index.setdefault(key, [])
                if not positions or positions[-1] != i:
                    positions.append(i)
        return index

    return by_identity(_TARGET_INDEX, policies, build, root)


# --- matching ----------------------------------------------------------------------------------


def string_match(pattern: str, value: str | None) -> bool:
    """Istio value matching: exact, `prefix*`, `*suffix`, and `*` for presence (non-empty)."""
    if value is None:
        return False
    if pattern == "*":
        return value != ""
    if pattern.startswith("*"):
        return value.endswith(pattern[1:])
    if pattern.endswith("*"):
        return value.startswith(pattern[:-1])
    return value == pattern


def _split_principal(principal: str) -> tuple[str, str] | None:
    """(trust domain, "/ns/<ns>/sa/<sa>") of an Istio principal."""
    td, sep, rest = principal.partition("/ns/")
    return (td, "/ns/" + rest) if sep else None


def principal_match(
    pattern: str, value: str | None, enforcer: Enforcer, config: MeshConfig
) -> bool:
    if value is None:
        return False
    if enforcer is not Enforcer.ZTUNNEL:
        # Envoy: a principal `<td>/ns/<ns>/sa/<sa>` (exactly five segments) whose trust domain
        # is this mesh's, an alias, or cluster.local — a trust domain `x*` matching one of them
        # counts too — means this mesh's identity under every one of them (istio
        # trustdomain/bundle.go); ztunnel compares literally (A4).
        parts = pattern.split("/")
        val = _split_principal(value)
        if len(parts) == 5 and parts[1] == "ns" and parts[3] == "sa" and val is not None:
            local = (config.trust_domain, *config.trust_domain_aliases)
            td = parts[0]
            ours = td in (*local, "cluster.local") or (
                td.endswith("*")
                and not td.startswith("*")
                and any(t.startswith(td[:-1]) for t in local)
            )
            if ours and val[0] in local:
                return string_match(val[0] + "/" + "/".join(parts[1:]), value)
    return string_match(pattern, value)


def principal_namespace(principal: str | None) -> str | None:
    if principal is None:
        return None
    m = re.search(r"/ns/([^/]+)/sa/([^/]+)$", principal)
    return m.group(1) if m else None


def principal_service_account(principal: str | None) -> str | None:
    if principal is None:
        return None
    m = re.search(r"/ns/([^/]+)/sa/([^/]+)$", principal)
    return f"{m.group(1)}/{m.group(2)}" if m else None


def namespace_match(pattern: str, principal: str | None, enforcer: Enforcer) -> bool:
    """Does the peer's namespace match? Envoy compiles every pattern into the regex
    `.*/ns/<pattern, * → .*>/.*` over the whole peer identity (istio authz generator,
    srcNamespaceGenerator), so a `*` may even span segments; ztunnel matches the namespace
    exactly, by prefix, suffix or presence (A3)."""
    if principal is None:
        return False
    if enforcer is not Enforcer.ZTUNNEL:
        return _namespace_regex(pattern).fullmatch("spiffe://" + principal) is not None
    return string_match(pattern, principal_namespace(principal))


@functools.lru_cache(maxsize=1 << 12)
def _namespace_regex(pattern: str) -> re.Pattern[str]:
    return re.compile(".*/ns/" + ".*".join(re.escape(part) for part in pattern.split("*")) + "/.*")


def ip_match(pattern: str, value: str | None) -> bool | None:
    """None when the address is unknown."""
    if value is None:
        return None
    try:
        return ipaddress.ip_address(value) in ipaddress.ip_network(pattern, strict=False)
    except ValueError:
        return False


@functools.lru_cache(maxsize=1 << 16)
def normalize_path(path: str) -> str:
    """Istio's BASE normalization: query stripped, selected %xx decoded once, `\\` → `/`,
    dot segments resolved (semantics.md §4.5)."""
    path = path.split("?", 1)[0].split("#", 1)[0]

    def decode(m: re.Match[str]) -> str:
        char = unquote(m.group(0))
        return char if re.fullmatch(r"[-.0-9A-Za-z_~]", char) else m.group(0)

    path = re.sub(r"%[0-9A-Fa-f]{2}", decode, path).replace("\\", "/")
    out: list[str] = []
    for segment in path.split("/"):
        if segment == ".":
            continue
        if segment == "..":
            if len(out) > 1:
                out.pop()
            continue
        out.append(segment)
    result = "/".join(out)
    if path.endswith(("/.", "/..")):
        result += "/"
    return result if result.startswith("/") else "/" + result


TEMPLATE_LITERAL = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~%!$&'()+,;:@="
)
"""Envoy's URI-template literal characters (uri_template_internal.cc `kLiteral`: RFC 3986 pchar
without `*`, plus `=`): `{*}` is one or more of them, `{**}` zero or more of them or `/`."""
_TEMPLATE_CLASS = "".join(re.escape(c) for c in sorted(TEMPLATE_LITERAL))


def path_match(pattern: str, path: str | None) -> bool:
    """Istio `paths`: a path template (`{*}`, `{**}`, translated to Envoy's URI-template
    matcher) or an exact / prefix / suffix / presence value, on the normalized path."""
    if path is None:
        return False
    value = normalize_path(path)
    if "{*}" in pattern or "{**}" in pattern:
        regex = ""
        for part in re.split(r"(\{\*\*\}|\{\*\})", pattern):
            if part == "{**}":
                regex += f"[{_TEMPLATE_CLASS}/]*"
            elif part == "{*}":
                regex += f"[{_TEMPLATE_CLASS}]+"
            else:
                regex += re.escape(part)
        return re.fullmatch(regex, value) is not None
    return string_match(pattern, value)


def _tri_any(results: list[bool | None], strict: bool) -> bool:
    """OR over matches where None (unknown) counts as a match only when not `strict`."""
    return any(r if r is not None else not strict for r in results)


class _Ctx:
    __slots__ = ("config", "enforcer", "policy_ns", "request", "strict")

    def __init__(
        self,
        request: AuthzRequest,
        enforcer: Enforcer,
        config: MeshConfig,
        policy_ns: str,
        strict: bool,
    ) -> None:
        self.request = request
        self.enforcer = enforcer
        self.config = config
        self.policy_ns = policy_ns
        self.strict = strict
        """True for ALLOW: an unknown attribute never makes the rule match."""


def _field_match(name: str, patterns: tuple[str, ...], ctx: _Ctx) -> bool:
    req = ctx.request
    negative = name.startswith("not_")
    base = name.removeprefix("not_")
    principal = req.principal
    match base:
        case "principals":
            hit = any(principal_match(p, principal, ctx.enforcer, ctx.config) for p in patterns)
        case "request_principals":
            hit = False  # no JWT is modelled: request.auth.principal is absent
        case "namespaces":
            hit = any(namespace_match(p, principal, ctx.enforcer) for p in patterns)
        case "service_accounts":
            sa = principal_service_account(principal)
            hit = sa is not None and any(
                sa == (p if "/" in p else f"{ctx.policy_ns}/{p}") for p in patterns
            )
        case "trust_domains":
            split = _split_principal(principal) if principal else None
            hit = split is not None and any(string_match(p, split[0]) for p in patterns)
        case "ip_blocks" | "remote_ip_blocks":
            # Negative forms resolve an unknown address the other way round.
            hit = _tri_any([ip_match(p, req.source_ip) for p in patterns], ctx.strict != negative)
        case "hosts":
            host = req.http.host.lower() if req.http and req.http.host else None
            hit = any(string_match(p.lower(), host) for p in patterns)
        case "ports":
            hit = str(req.port) in patterns
        case "methods":
            hit = any(string_match(p, req.http.method if req.http else None) for p in patterns)
        case "paths":
            hit = any(path_match(p, req.http.path if req.http else None) for p in patterns)
        case _:
            raise AssertionError(f"unknown authorization field {name}")
    return not hit if negative else hit


def _condition_value(key: str, req: AuthzRequest) -> str | None:
    match key:
        case "source.ip" | "remote.ip":
            return req.source_ip
        case "source.namespace":
            return principal_namespace(req.principal)
        case "source.principal":
            return req.principal
        case "source.serviceAccount":
            return principal_service_account(req.principal)
        case "source.trustDomain":
            split = _split_principal(req.principal) if req.principal else None
            return split[0] if split else None
        case "destination.ip":
            return req.destination_ip
        case "destination.port":
            return str(req.port)
    if key.startswith("request.headers[") and key.endswith("]") and req.http is not None:
        return req.http.header(key[len("request.headers[") : -1])
    return None  # JWT claims, SNI, Envoy filter metadata: absent


def _condition_match(cond: AuthzCondition, ctx: _Ctx) -> bool:
    value = _condition_value(cond.key, ctx.request)

    def one(pattern: str) -> bool:
        if cond.key in ("source.ip", "remote.ip", "destination.ip"):
            result = ip_match(pattern, value)
            return result if result is not None else not ctx.strict
        if cond.key == "source.principal":
            return principal_match(pattern, value, ctx.enforcer, ctx.config)
        if cond.key == "source.namespace":
            # the same generator as `namespaces`
            return namespace_match(pattern, ctx.request.principal, ctx.enforcer)
        if cond.key == "destination.port":
            return value == pattern
        return string_match(pattern, value)

    if cond.values and not any(one(p) for p in cond.values):
        return False
    return not (cond.not_values and any(one(p) for p in cond.not_values))


def _present(obj: AuthzSource | AuthzOperation, removed: frozenset[str]) -> list[str]:
    return [
        f.name for f in fields(obj) if getattr(obj, f.name) is not None and f.name not in removed
    ]


@dataclass(frozen=True, slots=True)
class RuleView:
    """A rule as one enforcement point sees it: dropped entirely, or with items removed."""

    dropped: bool
    removed_source: frozenset[str]
    removed_operation: frozenset[str]
    removed_when: frozenset[str]
    empty_never_matches: bool
    """ztunnel skips emptied matches; Envoy turns them into match-anything."""


def view(rule: AuthzRule, action: AuthzAction, enforcer: Enforcer, http: bool) -> RuleView:
    """How `rule` survives translation for this enforcement point (A1, A2)."""
    if enforcer is Enforcer.ZTUNNEL:
        src_l7, op_l7 = ZTUNNEL_L7_SOURCE, HTTP_ONLY_OPERATION
        when_l7 = frozenset(c.key for c in rule.conditions if c.key not in ZTUNNEL_WHEN_KEYS)
        empty_never = True
        dropped_src = ZTUNNEL_DROPPED_SOURCE
    elif not http:
        src_l7, op_l7 = HTTP_ONLY_SOURCE, HTTP_ONLY_OPERATION
        when_l7 = frozenset(c.key for c in rule.conditions if is_http_only_key(c.key))
        empty_never = False
        dropped_src = frozenset()
    else:
        return RuleView(False, frozenset(), frozenset(), frozenset(), False)
    uses_l7 = (
        bool(when_l7)
        or any(
            _present(s, frozenset()) and set(_present(s, frozenset())) & src_l7
            for s in rule.sources or ()
        )
        or any(set(_present(o, frozenset())) & op_l7 for o in rule.operations or ())
    )
    if action is AuthzAction.ALLOW and uses_l7:
        return RuleView(True, src_l7, op_l7, when_l7, empty_never)
    return RuleView(False, src_l7 | dropped_src, op_l7, when_l7, empty_never)


def rule_matches(rule: AuthzRule, rule_view: RuleView, ctx: _Ctx) -> bool:
    if rule_view.dropped:
        return False
    if rule.sources is not None:
        hits = []
        for src in rule.sources:
            present = _present(src, rule_view.removed_source)
            if not present:
                if rule_view.empty_never_matches:
                    continue
                hits.append(True)
                break
            if all(_field_match(f, getattr(src, f), ctx) for f in present):
                hits.append(True)
                break
        if not hits:
            return False
    if rule.operations is not None:
        hit = False
        for op in rule.operations:
            present = _present(op, rule_view.removed_operation)
            if not present:
                if rule_view.empty_never_matches:
                    continue
                hit = True
                break
            if all(_field_match(f, getattr(op, f), ctx) for f in present):
                hit = True
                break
        if not hit:
            return False
    for cond in rule.conditions:
        if cond.key in rule_view.removed_when:
            if rule_view.empty_never_matches:
                return False
            continue
        if not _condition_match(cond, ctx):
            return False
    return True


def rewritten(policy: AuthorizationPolicy, enforcer: Enforcer, http: bool) -> bool:
    """Does this enforcement point change the policy's meaning (a rule dropped or narrowed)?"""
    for rule in policy.rules:
        v = view(rule, policy.action, enforcer, http)
        if v.dropped or v.removed_when:
            return True
        for src in rule.sources or ():
            if set(_present(src, frozenset())) & v.removed_source:
                return True
        for op in rule.operations or ():
            if set(_present(op, frozenset())) & v.removed_operation:
                return True
    return False


# --- the decision ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AuthzResult:
    allowed: bool
    steps: tuple[Step, ...]


def authorize(
    policies: list[AuthorizationPolicy],
    request: AuthzRequest,
    enforcer: Enforcer,
    config: MeshConfig,
    at: str,
) -> AuthzResult:
    """CUSTOM → DENY → ALLOW at one enforcement point (semantics.md §4.2, ztunnel §5.3): the
    `enforcer` of the workload `at` (its id)."""
    layer = enforcer.layer
    where: tuple[tuple[str, StepParam], ...] = (("enforcer", enforcer.value), ("at", at))
    steps: list[Step] = []
    http = request.http is not None
    enforced = [p for p in policies if not p.dry_run and p.action is not AuthzAction.AUDIT]
    if enforcer is Enforcer.ZTUNNEL:
        enforced = [p for p in enforced if p.action is not AuthzAction.CUSTOM]

    def first_match(policy: AuthorizationPolicy) -> AuthzRule | None:
        strict = policy.action is AuthzAction.ALLOW
        ctx = _Ctx(request, enforcer, config, policy.namespace, strict)
        for rule in policy.rules:
            if rule_matches(rule, view(rule, policy.action, enforcer, http), ctx):
                return rule
        return None

    for p in policies:
        if p in enforced and rewritten(p, enforcer, http):
            steps.append(
                Step(
                    layer=layer,
                    reason="l7-rules-rewritten",
                    effect=Effect.INFO,
                    params=(("policy", p.ref), ("policy_action", p.action.value), *where),
                    source=p.source,
                )
            )
    for action, reason in (
        (AuthzAction.CUSTOM, "custom-policy-matched"),
        (AuthzAction.DENY, "deny-policy-matched"),
    ):
        for p in enforced:
            if p.action is not action:
                continue
            rule = first_match(p)
            if rule is not None:
                steps.append(
                    Step(
                        layer=layer,
                        reason=reason,
                        effect=Effect.DENY,
                        params=(("policy", p.ref), *where),
                        source=p.source,
                        rule_index=rule.index,
                        action=action,
                    )
                )
                return AuthzResult(False, tuple(steps))
    allow = [p for p in enforced if p.action is AuthzAction.ALLOW]
    if not allow:
        steps.append(
            Step(
                layer=layer,
                reason="no-allow-policy",
                effect=Effect.ALLOW,
                params=where,
            )
        )
        return AuthzResult(True, tuple(steps))
    for p in allow:
        rule = first_match(p)
        if rule is not None:
            steps.append(
                Step(
                    layer=layer,
                    reason="allow-policy-matched",
                    effect=Effect.ALLOW,
                    params=(("policy", p.ref), *where),
                    source=p.source,
                    rule_index=rule.index,
                    action=AuthzAction.ALLOW,
                )
            )
            return AuthzResult(True, tuple(steps))
    steps.append(
        Step(
            layer=layer,
            reason="no-allow-rule-matched",
            effect=Effect.DENY,
            params=(("policies", tuple(p.ref for p in allow)), *where),
        )
    )
    return AuthzResult(False, tuple(steps))


def ports_named(policies: Iterable[AuthorizationPolicy]) -> frozenset[int]:
    """Every destination port the policies' `ports`, `notPorts` and `destination.port`
    conditions name: matching (`_field_match`, `_condition_match`) compares the port's decimal
    text for equality, so any two ports outside this set are decided alike."""
    out: set[int] = set()
    for policy in policies:
        for rule in policy.rules:
            for op in rule.operations or ():
                for text in (*(op.ports or ()), *(op.not_ports or ())):
                    if text.isascii() and text.isdigit():
                        out.add(int(text))
            for cond in rule.conditions:
                if cond.key == "destination.port":
                    for text in (*(cond.values or ()), *(cond.not_values or ())):
                        if text.isascii() and text.isdigit():
                            out.add(int(text))
    return frozenset(out)


def mentions_http(policies: list[AuthorizationPolicy]) -> bool:
    for policy in policies:
        for rule in policy.rules:
            if rule.conditions and any(is_http_only_key(c.key) for c in rule.conditions):
                return True
            for op in rule.operations or ():
                if set(_present(op, frozenset())) & HTTP_ONLY_OPERATION:
                    return True
            for src in rule.sources or ():
                if set(_present(src, frozenset())) & HTTP_ONLY_SOURCE:
                    return True
    return False


def authz_networks(
    policies: tuple[AuthorizationPolicy, ...],
) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """CIDRs AuthorizationPolicies match source addresses against (to split workload classes)."""
    nets: dict[ipaddress.IPv4Network | ipaddress.IPv6Network, None] = {}
    for policy in policies:
        for rule in policy.rules:
            texts: list[str] = []
            for src in rule.sources or ():
                for attr in (
                    "ip_blocks",
                    "not_ip_blocks",
                    "remote_ip_blocks",
                    "not_remote_ip_blocks",
                ):
                    texts.extend(getattr(src, attr) or ())
            for cond in rule.conditions:
                if cond.key in ("source.ip", "remote.ip"):
                    texts.extend((cond.values or ()) + (cond.not_values or ()))
            for text in texts:
                try:
                    nets[ipaddress.ip_network(text, strict=False)] = None
                except ValueError:
                    continue
    return tuple(nets)
