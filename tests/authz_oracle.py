"""A slow, literal reference for Istio AuthorizationPolicy decisions at one enforcement point.

Written from shared/design/semantics.md §4.2-§4.8 (Envoy: sidecar and waypoint) and §5.3
(ztunnel), independently of `kubezt.engine.authz` (which it must not import): only the IR data
classes are shared. It works in two steps, the way Istio does:

1. *translate* every policy into what the enforcement point holds — istiod's job: drop dry-run and
   AUDIT policies (and CUSTOM at ztunnel), rewrite principals for trust-domain aliases (Envoy
   only), and remove the attributes the enforcement point cannot see (HTTP-only items on a TCP
   port at Envoy, L7 items at ztunnel) with the per-action rules of §4.8 / §5.3;
2. *evaluate* the translated policies: CUSTOM → DENY → ALLOW (§4.2), every rule an AND of its
   clauses, every clause an OR of its matches, every match an AND of its fields.

A request is what the enforcement point knows: the peer identity (None for plaintext), the
direct peer address, the destination address and port, and — when the port is handled as HTTP —
the request attributes. No JWT is ever present (no RequestAuthentication is modelled).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Literal

from kubezt.ir.config import MeshConfig
from kubezt.ir.mesh import AuthorizationPolicy, AuthzAction, AuthzSource
from kubezt.ir.requests import HttpRequest

Enforcer = Literal["sidecar", "waypoint", "ztunnel"]
ENVOY: tuple[str, ...] = ("sidecar", "waypoint")


@dataclass(frozen=True)
class Request:
    principal: str | None
    """`<td>/ns/<ns>/sa/<sa>` (no spiffe://), None without mTLS."""
    source_ip: str
    destination_ip: str
    port: int
    http: HttpRequest | None = None
    """None: the enforcement point handles the connection as TCP."""


# --- attributes: which ones need HTTP (Envoy on TCP) or L7 (ztunnel) -----------------------------

# §4.8: HTTP-only items for Envoy's TCP authorizer.
ENVOY_HTTP_ONLY_SOURCE = {"requestPrincipals", "notRequestPrincipals"}
ENVOY_HTTP_ONLY_OPERATION = {"hosts", "notHosts", "methods", "notMethods", "paths", "notPaths"}

# §5.3: what ztunnel understands.
ZTUNNEL_SOURCE = {
    "principals",
    "notPrincipals",
    "namespaces",
    "notNamespaces",
    "serviceAccounts",
    "notServiceAccounts",
    "ipBlocks",
    "notIpBlocks",
}
ZTUNNEL_SILENTLY_DROPPED_SOURCE: set[str] = set()
"""None: §5.3 says trustDomains are "silently not converted", but the current upstream
conversion (ambient/authorization.go) reports them as unsupported, like L7 attributes: an
ALLOW rule using them is dropped. Upstream wins."""
ZTUNNEL_OPERATION = {"ports", "notPorts"}
ZTUNNEL_WHEN = {
    "source.ip",
    "source.namespace",
    "source.principal",
    "destination.ip",
    "destination.port",
}

SOURCE_NAMES = {
    "principals": "principals",
    "not_principals": "notPrincipals",
    "request_principals": "requestPrincipals",
    "not_request_principals": "notRequestPrincipals",
    "namespaces": "namespaces",
    "not_namespaces": "notNamespaces",
    "service_accounts": "serviceAccounts",
    "not_service_accounts": "notServiceAccounts",
    "ip_blocks": "ipBlocks",
    "not_ip_blocks": "notIpBlocks",
    "remote_ip_blocks": "remoteIpBlocks",
    "not_remote_ip_blocks": "notRemoteIpBlocks",
    "trust_domains": "trustDomains",
    "not_trust_domains": "notTrustDomains",
}
OPERATION_NAMES = {
    "hosts": "hosts",
    "not_hosts": "notHosts",
    "ports": "ports",
    "not_ports": "notPorts",
    "methods": "methods",
    "not_methods": "notMethods",
    "paths": "paths",
    "not_paths": "notPaths",
}


def envoy_http_only_condition(key: str) -> bool:
    """§4.8: request.headers[*] and request.auth.* need HTTP."""
    return key.startswith("request.headers[") or key.startswith("request.auth.")


# --- the translated form -------------------------------------------------------------------------


@dataclass
class Match:
    """AND of fields; each field is (API name, values) — a `not…` name negates."""

    fields: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)
    kind: str = "source"
    """source | operation | condition (a when: key with values / notValues)."""
    key: str = ""


@dataclass
class Clause:
    """OR of matches. An empty match (emptied by translation) is `any` at Envoy and `never`
    at ztunnel."""

    matches: list[Match]


@dataclass
class Rule:
    clauses: list[Clause]
    """AND of clauses; a rule without clauses (`{}`) matches everything."""


@dataclass
class Translated:
    policy: AuthorizationPolicy
    rules: list[Rule]
    empty_match_is_any: bool


def expand_trust_domains(pattern: str, config: MeshConfig) -> list[str]:
    """§4.7 (istio trustdomain/bundle.go): a `<td>/ns/<ns>/sa/<sa>` principal whose trust domain
    is the trust domain, an alias (also by a `*` pattern of either side) or `cluster.local` is
    rewritten to every one of them; `*` trust domains and other shapes are kept."""
    tds = [config.trust_domain, *config.trust_domain_aliases]
    parts = pattern.split("/")
    if len(parts) != 5 or parts[0] == "*":
        return [pattern]
    td = parts[0]

    def prefix(a: str, p: str) -> bool:
        return p.endswith("*") and a.startswith(p[:-1])

    def suffix(a: str, p: str) -> bool:
        return p.startswith("*") and a.endswith(p[1:])

    known = any(
        td == t or t == "*" or prefix(td, t) or prefix(t, td) or suffix(td, t) or suffix(t, td)
        for t in tds
    )
    if not known and td != "cluster.local":
        return [pattern]
    out: list[str] = []
    for t in tds:
        rewritten = pattern if suffix(t, td) else "/".join([t, *parts[1:]])
        if rewritten not in out:
            out.append(rewritten)
    return out


def translate(
    policy: AuthorizationPolicy, enforcer: Enforcer, http: bool, config: MeshConfig
) -> Translated:
    allow = policy.action is AuthzAction.ALLOW
    ztunnel = enforcer == "ztunnel"
    rules: list[Rule] = []
    for rule in policy.rules:
        unsupported = False
        clauses: list[Clause] = []
        if rule.operations is not None:
            matches = []
            for op in rule.operations:
                m = Match(kind="operation")
                for attr, name in OPERATION_NAMES.items():
                    values = getattr(op, attr)
                    if values is None:
                        continue
                    if ztunnel and name not in ZTUNNEL_OPERATION:
                        unsupported = True
                        continue
                    if not ztunnel and not http and name in ENVOY_HTTP_ONLY_OPERATION:
                        unsupported = True
                        continue
                    m.fields.append((name, tuple(values)))
                matches.append(m)
            clauses.append(Clause(matches))
        if rule.sources is not None:
            matches = []
            for src in rule.sources:
                matches.append(_source_match(src, enforcer, http, config))
                unsupported |= _source_unsupported(src, enforcer, http)
            clauses.append(Clause(matches))
        for cond in rule.conditions:
            m = Match(kind="condition", key=cond.key)
            supported = (
                cond.key in ZTUNNEL_WHEN
                if ztunnel
                else (http or not envoy_http_only_condition(cond.key))
            )
            if not supported:
                unsupported = True
            else:
                values = tuple(cond.values or ())
                not_values = tuple(cond.not_values or ())
                if cond.key == "source.principal" and not ztunnel:
                    values = tuple(v for p in values for v in expand_trust_domains(p, config))
                    not_values = tuple(
                        v for p in not_values for v in expand_trust_domains(p, config)
                    )
                if values:
                    m.fields.append(("values", values))
                if not_values:
                    m.fields.append(("notValues", not_values))
            clauses.append(Clause([m]))
        if allow and unsupported:
            continue  # §4.8 / §5.3: an ALLOW rule with an unsupported item is dropped
        rules.append(Rule(clauses))
    return Translated(policy, rules, empty_match_is_any=not ztunnel)


def _source_unsupported(src: AuthzSource, enforcer: Enforcer, http: bool) -> bool:
    for attr, name in SOURCE_NAMES.items():
        if getattr(src, attr) is None:
            continue
        if enforcer == "ztunnel":
            if name not in ZTUNNEL_SOURCE and name not in ZTUNNEL_SILENTLY_DROPPED_SOURCE:
                return True
        elif not http and name in ENVOY_HTTP_ONLY_SOURCE:
            return True
    return False


def _source_match(src: AuthzSource, enforcer: Enforcer, http: bool, config: MeshConfig) -> Match:
    m = Match(kind="source")
    for attr, name in SOURCE_NAMES.items():
        values = getattr(src, attr)
        if values is None:
            continue
        if enforcer == "ztunnel" and name not in ZTUNNEL_SOURCE:
            continue
        if enforcer != "ztunnel" and not http and name in ENVOY_HTTP_ONLY_SOURCE:
            continue
        if name in ("principals", "notPrincipals") and enforcer != "ztunnel":
            values = tuple(v for p in values for v in expand_trust_domains(p, config))
        m.fields.append((name, tuple(values)))
    return m


# --- matching ------------------------------------------------------------------------------------


def istio_string(pattern: str, value: str | None) -> bool:
    """§4.4: exact, `prefix*`, `*suffix`, `*` = present and non-empty; nothing matches absent."""
    if value is None:
        return False
    if pattern == "*":
        return len(value) > 0
    if pattern.startswith("*"):
        return value.endswith(pattern[1:])
    if pattern.endswith("*"):
        return value.startswith(pattern[:-1])
    return value == pattern


def in_cidr(pattern: str, address: str) -> bool:
    return ipaddress.ip_address(address) in ipaddress.ip_network(pattern, strict=False)


def identity_parts(principal: str | None) -> tuple[str, str, str] | None:
    if principal is None:
        return None
    m = re.fullmatch(r"([^/]+)/ns/([^/]+)/sa/([^/]+)", principal)
    return (m.group(1), m.group(2), m.group(3)) if m else None


def envoy_namespace(pattern: str, principal: str | None) -> bool:
    """A3: Envoy matches the URI SAN with the regex `.*/ns/<pattern, * → .*>/.*`."""
    if principal is None:
        return False
    regex = ".*/ns/" + pattern.replace("*", ".*") + "/.*"
    return re.fullmatch(regex, "spiffe://" + principal) is not None


def normalize(path: str) -> str:
    """§4.5 BASE normalization: query dropped, unreserved %xx decoded once, `\\` → `/`, RFC 3986
    remove_dot_segments."""
    path = path.split("?")[0].split("#")[0]
    unreserved = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")

    def decode(m: re.Match[str]) -> str:
        ch = chr(int(m.group(1), 16))
        return ch if ch in unreserved else m.group(0)

    path = re.sub(r"%([0-9A-Fa-f]{2})", decode, path).replace("\\", "/")
    # RFC 3986 §5.2.4
    inp, out = path, ""
    while inp:
        if inp.startswith("../"):
            inp = inp[3:]
        elif inp.startswith("./"):
            inp = inp[2:]
        elif inp.startswith("/./"):
            inp = "/" + inp[3:]
        elif inp == "/.":
            inp = "/"
        elif inp.startswith("/../"):
            inp = "/" + inp[4:]
            out = out[: out.rfind("/")] if "/" in out else ""
        elif inp == "/..":
            inp = "/"
            out = out[: out.rfind("/")] if "/" in out else ""
        elif inp in (".", ".."):
            inp = ""
        else:
            start = 1 if inp.startswith("/") else 0
            nxt = inp.find("/", start)
            seg = inp if nxt < 0 else inp[:nxt]
            out += seg
            inp = "" if nxt < 0 else inp[nxt:]
    return out or "/"


def path_matches(pattern: str, path: str) -> bool:
    value = normalize(path)
    if "{*}" in pattern or "{**}" in pattern:
        # Envoy's URI-template matcher (uri_template_internal.cc): `{*}` is one or more
        # RFC 3986 pchar characters without `*` (plus `=`), `{**}` zero or more of them or `/`.
        pchar = r"[A-Za-z0-9\-._~%!$&'()+,;:@=]"
        parts = re.split(r"(\{\*\*\}|\{\*\})", pattern)
        regex = "".join(
            pchar + "+" if p == "{*}" else f"(?:{pchar}|/)*" if p == "{**}" else re.escape(p)
            for p in parts
        )
        return re.fullmatch(regex, value) is not None
    return istio_string(pattern, value)


def field_hit(name: str, pattern: str, req: Request, enforcer: Enforcer, policy_ns: str) -> bool:
    """Does one value of one field match (before negation)?"""
    ident = identity_parts(req.principal)
    base = name[3].lower() + name[4:] if name.startswith("not") else name
    http = req.http
    if base == "principals":
        return istio_string(pattern, req.principal)
    if base == "namespaces":
        if enforcer == "ztunnel":
            return istio_string(pattern, ident[1] if ident else None)
        return envoy_namespace(pattern, req.principal)
    if base == "serviceAccounts":
        if ident is None:
            return False
        ns, _, sa = pattern.partition("/")
        if not sa:
            ns, sa = policy_ns, pattern
        return (ident[1], ident[2]) == (ns, sa)
    if base == "trustDomains":
        return istio_string(pattern, ident[0] if ident else None)
    if base == "requestPrincipals":
        return False  # no JWT
    if base in ("ipBlocks", "remoteIpBlocks"):
        return in_cidr(pattern, req.source_ip)
    if base == "ports":
        return pattern == str(req.port)
    if base == "hosts":
        host = http.host if http and http.host else None
        return istio_string(pattern.lower(), host.lower() if host else None)
    if base == "methods":
        return istio_string(pattern, http.method if http else None)
    if base == "paths":
        return http is not None and path_matches(pattern, http.path)
    raise AssertionError(name)


def condition_hit(key: str, pattern: str, req: Request, enforcer: Enforcer) -> bool:
    ident = identity_parts(req.principal)
    if key in ("source.ip", "remote.ip"):
        return in_cidr(pattern, req.source_ip)
    if key == "destination.ip":
        return in_cidr(pattern, req.destination_ip)
    if key == "destination.port":
        return pattern == str(req.port)
    if key == "source.principal":
        return istio_string(pattern, req.principal)
    if key == "source.namespace":
        if enforcer == "ztunnel":
            return istio_string(pattern, ident[1] if ident else None)
        return envoy_namespace(pattern, req.principal)
    if key == "source.serviceAccount":
        return istio_string(pattern, f"{ident[1]}/{ident[2]}" if ident else None)
    if key == "source.trustDomain":
        return istio_string(pattern, ident[0] if ident else None)
    if key.startswith("request.headers[") and key.endswith("]"):
        if req.http is None:
            return False
        name = key[len("request.headers[") : -1].lower()
        values = [v for k, v in req.http.headers if k.lower() == name]
        return istio_string(pattern, ",".join(values) if values else None)
    return False  # request.auth.* (no JWT), connection.sni, experimental.*: absent


def match_hit(m: Match, req: Request, enforcer: Enforcer, policy_ns: str) -> bool:
    for name, values in m.fields:
        if m.kind == "condition":
            hits = [condition_hit(m.key, v, req, enforcer) for v in values]
        else:
            hits = [field_hit(name, v, req, enforcer, policy_ns) for v in values]
        negative = name.startswith("not")
        if negative and any(hits):
            return False
        if not negative and not any(hits):
            return False
    return True


def policy_matches(t: Translated, req: Request, enforcer: Enforcer) -> bool:
    for rule in t.rules:
        ok = True
        for clause in rule.clauses:
            clause_ok = False
            for m in clause.matches:
                if not m.fields:
                    if t.empty_match_is_any:
                        clause_ok = True
                        break
                    continue
                if match_hit(m, req, enforcer, t.policy.namespace):
                    clause_ok = True
                    break
            if not clause_ok:
                ok = False
                break
        if ok:
            return True
    return False


# --- the decision --------------------------------------------------------------------------------


def decide(
    policies: list[AuthorizationPolicy],
    request: Request,
    enforcer: Enforcer,
    config: MeshConfig | None = None,
) -> bool:
    """True when the enforcement point lets the request through (§4.2, §5.3). A matching CUSTOM
    policy is taken to deny (the external authorizer is not modelled)."""
    config = config or MeshConfig()
    http = request.http is not None and enforcer in ENVOY
    enforced = [p for p in policies if not p.dry_run and p.action is not AuthzAction.AUDIT]
    if enforcer == "ztunnel":
        enforced = [p for p in enforced if p.action in (AuthzAction.ALLOW, AuthzAction.DENY)]
    translated = [translate(p, enforcer, http, config) for p in enforced]
    for action in (AuthzAction.CUSTOM, AuthzAction.DENY):
        for t in translated:
            if t.policy.action is action and policy_matches(t, request, enforcer):
                return False
    allows = [t for t in translated if t.policy.action is AuthzAction.ALLOW]
    if not allows:
        return True
    return any(policy_matches(t, request, enforcer) for t in allows)
