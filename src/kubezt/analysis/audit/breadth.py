"""Least privilege: Allow rules whose peer is anyone — any source, any namespace, every pod of
a namespace, or any mesh principal.

Only rules that can take effect are inspected: L3/L4 rules of enforced policies that select at
least one workload (the engine's selector bitsets), and AuthorizationPolicies that apply to a
workload or are bound to a waypoint. Rules that only open the HBONE port 15008 are exempt from
the namespace and pod checks: ambient traffic reaches every pod on that port and ztunnel
authorizes it on the real port (semantics.md §5.5).
"""

from __future__ import annotations

from collections.abc import Callable

from kubezt.analysis.audit._facts import (
    any_address,
    applied_authz,
    enforced_policies,
    hbone_only,
    l4_view,
    listing,
    location_of,
    policy_ref,
    rule_place,
    traffic,
)
from kubezt.analysis.audit.finding import Finding, FindingSeverity, Principle, RuleSpec
from kubezt.engine.reach import Reachability
from kubezt.ir.mesh import AuthorizationPolicy, AuthzAction, AuthzRule, AuthzSource
from kubezt.ir.model import Model
from kubezt.ir.policy import Action, Direction, EntityMatch, NamespaceScope, Policy, Rule
from kubezt.ir.selectors import All

KZT401 = RuleSpec(
    id="KZT401",
    name="AllowAnySource",
    title="Allow rule open to any source",
    severity=FindingSeverity.HIGH,
    principle=Principle.LEAST_PRIVILEGE,
    help=(
        "An ingress Allow rule without a peer (`from` absent or empty, no Calico source "
        "criteria, `0.0.0.0/0` without exception) or an Istio ALLOW rule without `from` admits "
        "every pod and every external address. Name the clients: pods by selector or "
        "ServiceAccount, mesh principals, or the external CIDRs that need access."
    ),
)
KZT402 = RuleSpec(
    id="KZT402",
    name="AllowAnyNamespace",
    title="Allow rule open to any namespace",
    severity=FindingSeverity.MEDIUM,
    principle=Principle.LEAST_PRIVILEGE,
    help=(
        "A peer with `namespaceSelector: {}` (Calico `all()`, or a GlobalNetworkPolicy rule "
        "without namespaceSelector) matches pods of every namespace, including namespaces "
        "created later by anyone who may create pods. Name the namespaces "
        "(`kubernetes.io/metadata.name`) and the pods or ServiceAccounts."
    ),
)
KZT403 = RuleSpec(
    id="KZT403",
    name="AllowAnyPod",
    title="Allow rule open to every pod of a namespace",
    severity=FindingSeverity.LOW,
    principle=Principle.LEAST_PRIVILEGE,
    help=(
        "A peer that selects every pod of a namespace (`podSelector: {}`, or a namespace "
        "selector alone), or an Istio ALLOW source that names only `namespaces`, admits "
        "workloads that do not need the connection. Select the client pods by label or "
        "ServiceAccount, or name the principals."
    ),
)
KZT404 = RuleSpec(
    id="KZT404",
    name="AllowAnyPrincipal",
    title="ALLOW rule for any mesh principal",
    severity=FindingSeverity.MEDIUM,
    principle=Principle.LEAST_PRIVILEGE,
    help=(
        '`principals: ["*"]` or `namespaces: ["*"]` matches every authenticated workload of '
        "the mesh: it requires mTLS but does not restrict who calls. List the client "
        "principals or ServiceAccounts."
    ),
)


# --- L3/L4 rules --------------------------------------------------------------------------------


def _effective_rules(reach: Reachability) -> list[tuple[Policy, Direction, int, Rule, EntityMatch]]:
    """Allow rules of enforced policies that select a workload, with their peer side."""
    view = l4_view(reach)
    out: list[tuple[Policy, Direction, int, Rule, EntityMatch]] = []
    for policy in enforced_policies(reach.model):
        if not view.selected(policy) & view.real:
            continue
        for direction in (Direction.INGRESS, Direction.EGRESS):
            if direction not in policy.types:
                continue
            for index, rule in enumerate(policy.rules(direction)):
                if rule.action is not Action.ALLOW:
                    continue
                peer = rule.source if direction is Direction.INGRESS else rule.destination
                out.append((policy, direction, index, rule, peer))
    return out


def _any_namespace(peer: EntityMatch) -> bool:
    if not peer.selects_endpoints or peer.services is not None:
        return False
    if peer.namespace_scope is NamespaceScope.SELECTED:
        return isinstance(peer.namespace_selector, All)
    return peer.namespace_scope is NamespaceScope.ANY


def _every_pod(peer: EntityMatch) -> bool:
    return (
        peer.selects_endpoints
        and peer.namespace_scope in (NamespaceScope.OWN, NamespaceScope.SELECTED)
        and not _any_namespace(peer)
        and (peer.selector is None or isinstance(peer.selector, All))
        and peer.not_selector is None
        and peer.service_account_names is None
        and peer.service_account_selector is None
        and peer.services is None
    )


def _pods(peer: EntityMatch) -> str:
    """The pods a peer names, with every endpoint criterion it has (label selectors and
    ServiceAccounts): "every pod" only when it has none."""
    parts: list[str] = []
    if peer.selector is not None and not isinstance(peer.selector, All):
        parts.append(f"matching {peer.selector}")
    if peer.not_selector is not None:
        parts.append(f"not matching {peer.not_selector}")
    if peer.service_account_names is not None:
        names = ", ".join(sorted(peer.service_account_names))
        plural = "s" if len(peer.service_account_names) != 1 else ""
        parts.append(f"running as ServiceAccount{plural} {names}")
    if peer.service_account_selector is not None:
        parts.append(f"whose ServiceAccount matches {peer.service_account_selector}")
    return "pods " + " and ".join(parts) if parts else "every pod"


def _from_or_to(direction: Direction) -> str:
    return "from" if direction is Direction.INGRESS else "to"


def _any_source_text(policy: Policy, direction: Direction, rule: Rule, peer: EntityMatch) -> str:
    if direction is not Direction.INGRESS or not any_address(peer):
        return ""
    return f"allows {traffic(rule)} from any pod and any address"


def _any_namespace_text(policy: Policy, direction: Direction, rule: Rule, peer: EntityMatch) -> str:
    if not _any_namespace(peer) or hbone_only(rule.destination):
        return ""
    return f"allows {traffic(rule)} {_from_or_to(direction)} {_pods(peer)} in any namespace"


def _every_pod_text(policy: Policy, direction: Direction, rule: Rule, peer: EntityMatch) -> str:
    if not _every_pod(peer) or hbone_only(rule.destination):
        return ""
    scope = (
        f"namespace {policy.namespace}"
        if peer.namespace_scope is NamespaceScope.OWN
        else f"namespaces matching {peer.namespace_selector}"
    )
    return f"allows {traffic(rule)} {_from_or_to(direction)} every pod of {scope}"


def _l4_findings(
    reach: Reachability,
    spec: RuleSpec,
    text_of: Callable[[Policy, Direction, Rule, EntityMatch], str],
) -> list[Finding]:
    """A finding for each effective Allow rule `text_of` says what it allows too broadly (an
    empty text: the rule is fine)."""
    findings: list[Finding] = []
    seen: set[tuple[str, str]] = set()
    for policy, direction, index, rule, peer in _effective_rules(reach):
        text = text_of(policy, direction, rule, peer)
        if not text:
            continue
        loc, path = rule_place(policy, rule, direction, index)
        if (policy_ref(policy), path) in seen:
            continue
        seen.add((policy_ref(policy), path))
        findings.append(
            spec.finding(
                obj=policy_ref(policy),
                namespace=policy.namespace,
                location=loc,
                path=path,
                message=f"{direction.value.lower()} rule {text}",
                remediation=(
                    "Name the peers this rule is for: pods by label and namespace by name "
                    "(`kubernetes.io/metadata.name`), ServiceAccounts, or specific CIDRs."
                ),
            )
        )
    return findings


# --- AuthorizationPolicy rules ----------------------------------------------------------------


def _applied_allows(reach: Reachability) -> list[AuthorizationPolicy]:
    """Enforced ALLOW policies that apply to a workload or are bound to a waypoint/Service."""
    applied = {id(p) for p in applied_authz(reach)}
    return [
        p
        for p in reach.model.mesh.authorization_policies
        if p.action is AuthzAction.ALLOW and not p.dry_run and (p.target_refs or id(p) in applied)
    ]


def _authz_finding(
    spec: RuleSpec, authz: AuthorizationPolicy, path: str, message: str, remediation: str
) -> Finding:
    return spec.finding(
        obj=authz.ref,
        namespace=authz.namespace,
        location=location_of(authz.source),
        path=path,
        message=message,
        remediation=remediation,
    )


def _named(src: AuthzSource) -> set[str]:
    """The fields a source sets."""
    return {name for name in AuthzSource.__dataclass_fields__ if getattr(src, name) is not None}


def _anyone(rule: AuthzRule) -> bool:
    """No `from` and no condition on the source: every client, with or without identity."""
    return rule.sources is None and not any(
        cond.key.startswith(("source.", "remote.")) for cond in rule.conditions
    )


def _any_principal(src: AuthzSource) -> bool:
    present = _named(src)
    if not present or not present <= {"principals", "namespaces"}:
        return False
    return all("*" in (getattr(src, name) or ()) for name in present)


def check_allow_any_source(model: Model, reach: Reachability) -> list[Finding]:
    """KZT401: ingress Allow rules without a peer, and Istio ALLOW rules without `from`."""
    findings = _l4_findings(reach, KZT401, _any_source_text)
    for authz in _applied_allows(reach):
        for rule in authz.rules:
            if _anyone(rule):
                scope = "any request" if rule.operations is None else "the listed operations"
                findings.append(
                    _authz_finding(
                        KZT401,
                        authz,
                        f"spec.rules[{rule.index}]",
                        f"ALLOW rule has no `from`: it admits {scope} from any client, "
                        "with or without a mesh identity",
                        "Add `from: [{source: {principals: [...]}}]` naming the clients "
                        "(or `serviceAccounts`).",
                    )
                )
    return findings


def check_allow_any_namespace(model: Model, reach: Reachability) -> list[Finding]:
    """KZT402: Allow rules whose peer is pods of every namespace."""
    return _l4_findings(reach, KZT402, _any_namespace_text)


def check_allow_any_pod(model: Model, reach: Reachability) -> list[Finding]:
    """KZT403: Allow rules whose peer is every pod of one or more named namespaces, written as
    an L3/L4 peer or as an Istio ALLOW source that names only `namespaces` (every workload of
    those namespaces, whatever its ServiceAccount)."""
    findings = _l4_findings(reach, KZT403, _every_pod_text)
    for authz in _applied_allows(reach):
        for rule in authz.rules:
            if any(c.key.startswith(("source.", "remote.")) for c in rule.conditions):
                continue  # a condition narrows the source further
            for j, src in enumerate(rule.sources or ()):
                namespaces = _namespaces_only(src)
                if not namespaces:
                    continue
                findings.append(
                    _authz_finding(
                        KZT403,
                        authz,
                        f"spec.rules[{rule.index}].from[{j}]",
                        "ALLOW rule admits every workload of namespace"
                        f"{'s' if len(namespaces) > 1 else ''} {listing(namespaces)}, "
                        "whatever its ServiceAccount (the source names only `namespaces`)",
                        "Name the client principals (`cluster.local/ns/<ns>/sa/<sa>`) or "
                        "`serviceAccounts` that need access.",
                    )
                )
    return findings


def _namespaces_only(src: AuthzSource) -> tuple[str, ...]:
    """The namespaces of a source that names nothing else (and no `*`, which is KZT404)."""
    if _named(src) != {"namespaces"} or not src.namespaces or "*" in src.namespaces:
        return ()
    return tuple(src.namespaces)


def check_allow_any_principal(model: Model, reach: Reachability) -> list[Finding]:
    """KZT404: Istio ALLOW rules whose source is any authenticated principal (`*`)."""
    findings: list[Finding] = []
    for authz in _applied_allows(reach):
        for rule in authz.rules:
            wild = [src for src in rule.sources or () if _any_principal(src)]
            if not wild:
                continue
            fields = listing(
                f'{name}: ["*"]'
                for src in wild
                for name in ("principals", "namespaces")
                if getattr(src, name)
            )
            findings.append(
                _authz_finding(
                    KZT404,
                    authz,
                    f"spec.rules[{rule.index}]",
                    f"ALLOW rule matches any authenticated workload of the mesh ({fields})",
                    "List the client principals (`cluster.local/ns/<ns>/sa/<sa>`) or "
                    "`serviceAccounts` that need access.",
                )
            )
    return findings
