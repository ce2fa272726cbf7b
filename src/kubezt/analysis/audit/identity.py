"""Identity, not IP: address-based rules that match pods, identity rules that plaintext
sidesteps, default and shared ServiceAccounts, and names that point at nothing.

Pod addresses are matched against rule CIDRs by the engine's class index (the same CIDR test
L3/L4 evaluation uses); mTLS modes come from `effective_mtls`; whether a plaintext connection is
refused by a DENY policy comes from `kubezt.engine.authz.authorize` with no peer identity
(semantics.md §3.3, §4.6).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator

from kubezt.analysis.audit._facts import (
    Workloads,
    authz_at,
    authz_rule_path,
    enforced_policies,
    identity_fields,
    is_proxy,
    l4_view,
    listing,
    location_of,
    mode_of,
    policy_ref,
    rule_place,
    workload_ref,
)
from kubezt.analysis.audit.finding import Finding, FindingSeverity, Principle, RuleSpec
from kubezt.engine.authz import AuthzRequest, Enforcer, authorize, workload_policies
from kubezt.engine.mesh import WAYPOINT_GATEWAY_LABEL, effective_mtls
from kubezt.engine.reach import Reachability
from kubezt.engine.requests import space_of
from kubezt.errors import Location
from kubezt.ir.mesh import AuthorizationPolicy, AuthzAction, AuthzRule, MtlsMode
from kubezt.ir.model import Model
from kubezt.ir.policy import Action, Direction, EntityMatch, NamespaceScope, Network, Policy
from kubezt.ir.selectors import And, Equals, In, Selector
from kubezt.ir.topology import MeshMode, Workload

KZT301 = RuleSpec(
    id="KZT301",
    name="IpRuleMatchesPods",
    title="IP-based rule matches in-cluster pods",
    severity=FindingSeverity.MEDIUM,
    principle=Principle.IDENTITY_NOT_IP,
    help=(
        "A CIDR (`ipBlock`, Calico `nets`, Istio `ipBlocks`) that contains pod addresses "
        "identifies pods by an address that is reassigned whenever pods restart. Select pods "
        "by labels, namespace or ServiceAccount (or mesh principals) and keep CIDRs for "
        "addresses outside the cluster."
    ),
)
KZT302 = RuleSpec(
    id="KZT302",
    name="IdentityRuleAcceptsPlaintext",
    title="Identity-based authorization on a port that accepts plaintext",
    severity=FindingSeverity.HIGH,
    principle=Principle.IDENTITY_NOT_IP,
    help=(
        "Principals, namespaces and ServiceAccounts in an AuthorizationPolicy come from the "
        "mTLS peer certificate. On a PERMISSIVE port plaintext clients are admitted with no "
        "identity: DENY rules naming identities never match them, and rules without an "
        "identity field let them in. Require STRICT mTLS there, or add a DENY policy with "
        '`notPrincipals: ["*"]`.'
    ),
)
KZT303 = RuleSpec(
    id="KZT303",
    name="DefaultServiceAccount",
    title="Workload runs as the default ServiceAccount",
    severity=FindingSeverity.MEDIUM,
    principle=Principle.IDENTITY_NOT_IP,
    help=(
        "Every pod without `serviceAccountName` runs as `default`, so its mesh identity and "
        "Calico ServiceAccount match are shared with every other such pod of the namespace. "
        "Give each workload its own ServiceAccount."
    ),
)
KZT304 = RuleSpec(
    id="KZT304",
    name="SharedServiceAccount",
    title="ServiceAccount shared by several workloads",
    severity=FindingSeverity.MEDIUM,
    principle=Principle.IDENTITY_NOT_IP,
    help=(
        "Workloads that share a ServiceAccount share one identity: a policy that admits one of "
        "them admits all. Give each workload (each Service's backend) its own ServiceAccount."
    ),
)
KZT305 = RuleSpec(
    id="KZT305",
    name="UnknownReference",
    title="Policy names something that is not in the input",
    severity=FindingSeverity.LOW,
    principle=Principle.IDENTITY_NOT_IP,
    help=(
        "A principal, namespace, ServiceAccount, Service or Gateway named in a policy that no "
        "manifest declares or uses is usually a typo: the allow it meant grants nothing, or "
        "the deny it meant denies nothing. Correct the name, or add the object to the input."
    ),
)

NAME_KEYS = ("kubernetes.io/metadata.name", "projectcalico.org/name")


# --- KZT301 ------------------------------------------------------------------------------------


def _networks(texts: tuple[str, ...] | None) -> tuple[Network, ...]:
    out: list[Network] = []
    for text in texts or ():
        try:
            out.append(ipaddress.ip_network(text, strict=False))
        except ValueError:
            continue
    return tuple(out)


def check_ip_rules_match_pods(model: Model, reach: Reachability) -> list[Finding]:
    """KZT301: CIDRs of L3/L4 rules and AuthorizationPolicies that contain pod addresses."""
    view = l4_view(reach)
    workloads = Workloads(reach)
    pods = view.real & view.endpoints

    cache: dict[tuple[tuple[Network, ...], tuple[Network, ...] | None], list[str]] = {}

    def matched(nets: tuple[Network, ...], not_nets: tuple[Network, ...] | None) -> list[str]:
        key = (nets, not_nets)
        if key not in cache:
            inside, _ = view.index.with_address_in(nets)
            if not_nets:
                excluded, _ = view.index.with_address_in(not_nets)
                inside &= ~excluded
            cache[key] = [f"{w.id} ({w.ip})" for w in workloads.members_of(inside & pods)]
        return cache[key]

    findings: list[Finding] = []
    seen: set[tuple[str, str]] = set()
    for policy in enforced_policies(reach.model):
        if not view.selected(policy) & view.real:
            continue
        for direction in (Direction.INGRESS, Direction.EGRESS):
            for index, rule in enumerate(policy.rules(direction)):
                peer = rule.source if direction is Direction.INGRESS else rule.destination
                if rule.action is Action.LOG or not peer.nets:
                    continue
                hits = matched(peer.nets, peer.not_nets)
                loc, path = rule_place(policy, rule, direction, index)
                if not hits or (policy_ref(policy), path) in seen:
                    continue
                seen.add((policy_ref(policy), path))
                findings.append(
                    KZT301.finding(
                        obj=policy_ref(policy),
                        namespace=policy.namespace,
                        location=loc,
                        path=path,
                        message=(
                            f"{rule.action.value} rule matches pods by address: "
                            f"{', '.join(str(n) for n in peer.nets)} contains {listing(hits)}"
                        ),
                        remediation=(
                            "Select these pods by labels, namespaceSelector or ServiceAccount "
                            "instead of their addresses; keep CIDRs for destinations outside "
                            "the cluster."
                        ),
                    )
                )
    for authz in reach.model.mesh.authorization_policies:
        for authz_rule in authz.rules:
            texts: list[str] = []
            for src in authz_rule.sources or ():
                texts.extend(src.ip_blocks or ())
            for cond in authz_rule.conditions:
                if cond.key == "source.ip":
                    texts.extend(cond.values or ())
            hits = matched(_networks(tuple(texts)), None) if texts else []
            if hits:
                findings.append(
                    KZT301.finding(
                        obj=authz.ref,
                        namespace=authz.namespace,
                        location=location_of(authz.source),
                        path=authz_rule_path(authz_rule.index),
                        message=(
                            f"{authz.action.value} rule matches pods by address: "
                            f"{', '.join(texts)} contains {listing(hits)}"
                        ),
                        remediation=(
                            "Match these clients by `principals`, `namespaces` or "
                            "`serviceAccounts` (mTLS identity) instead of `ipBlocks`."
                        ),
                    )
                )
    return findings


# --- KZT302 ------------------------------------------------------------------------------------


def _rule_ports(rule: AuthzRule) -> set[int] | None:
    """The ports a rule is limited to, None when it covers every port."""
    if rule.operations is None:
        return None
    ports: set[int] = set()
    for op in rule.operations:
        if not op.ports:
            return None
        ports.update(int(p) for p in op.ports if p.isdigit())
    return ports


_ADDRESS_FIELDS = ("ip_blocks", "not_ip_blocks", "remote_ip_blocks", "not_remote_ip_blocks")


def _reads_address(rule: AuthzRule) -> bool:
    return any(
        getattr(src, name) is not None for src in rule.sources or () for name in _ADDRESS_FIELDS
    ) or any(c.key in ("source.ip", "remote.ip") for c in rule.conditions)


def _plaintext_refused(model: Model, w: Workload, port: int, enforcer: Enforcer) -> bool:
    """The workload's policies refuse every connection that carries no identity: a DENY
    policy refuses it, or no ALLOW rule admits it for any request (one witness per cell of
    the policies' request space). Rules that read the client's address may admit plaintext
    from some address: then only the DENY policies are asked."""
    config = model.mesh_config
    policies = [
        p
        for p in workload_policies(
            model.mesh.authorization_in(w.namespace, config.root_namespace), w, config
        )
        if not p.dry_run
    ]
    denies = [p for p in policies if p.action is AuthzAction.DENY]
    if (
        denies
        and not authorize(
            denies, AuthzRequest(None, None, w.ip, port, None), enforcer, config, w.id
        ).allowed
    ):
        return True
    if any(_reads_address(r) for p in policies for r in p.rules):
        return False
    requests = [None, *space_of(policies).witnesses()]
    return not any(
        authorize(policies, AuthzRequest(None, None, w.ip, port, r), enforcer, config, w.id).allowed
        for r in requests
    )


def check_identity_rules_accept_plaintext(model: Model, reach: Reachability) -> list[Finding]:
    """KZT302: identity-based ALLOW/DENY rules enforced on ports whose mTLS mode admits
    plaintext, unless a DENY policy already refuses connections without an identity."""
    model = reach.model
    hits: dict[int, list[str]] = {}
    first_rule: dict[int, AuthzRule] = {}
    fields: dict[int, list[str]] = {}
    for view, policies in authz_at(reach):
        w = view.rep
        mode_here = mode_of(model, w)
        if is_proxy(model, w) or mode_here is MeshMode.NONE:
            continue
        enforcer = Enforcer.ZTUNNEL if mode_here is MeshMode.AMBIENT else Enforcer.SIDECAR
        open_ports: dict[int, MtlsMode | None] = {}
        for port in sorted({cp.port for cp in w.ports}) or [0]:
            effective = effective_mtls(w, port, model).mode
            plaintext = effective is not MtlsMode.STRICT and not _plaintext_refused(
                model, w, port, enforcer
            )
            open_ports[port] = effective if plaintext else None
        if not any(open_ports.values()):
            continue
        for authz in policies:
            if authz.dry_run or authz.action not in (AuthzAction.ALLOW, AuthzAction.DENY):
                continue
            for rule in authz.rules:
                names = identity_fields(rule)
                if not names:
                    continue
                limited = _rule_ports(rule)
                for port, accepted in open_ports.items():
                    if accepted is None or (limited is not None and port not in limited):
                        continue
                    key = id(authz)
                    for member in view.members:
                        where = f"{member.id}:{port}" if port else member.id
                        hits.setdefault(key, []).append(f"{where} ({accepted.value})")
                    first_rule.setdefault(key, rule)
                    fields.setdefault(key, []).extend(names)
    findings: list[Finding] = []
    for authz in model.mesh.authorization_policies:
        key = id(authz)
        if key not in hits:
            continue
        effect = (
            "plaintext clients are admitted there with no identity, and other rules that need "
            "none let them in"
            if authz.action is AuthzAction.ALLOW
            else "a plaintext client carries no identity, so this DENY never matches it"
        )
        findings.append(
            KZT302.finding(
                obj=authz.ref,
                namespace=authz.namespace,
                location=location_of(authz.source),
                path=authz_rule_path(first_rule[key].index),
                message=(
                    f"{authz.action.value} rule on identity ({listing(fields[key])}) for ports "
                    f"that accept plaintext: {listing(sorted(set(hits[key])))}; {effect}"
                ),
                remediation=(
                    "Require STRICT mTLS for these workloads (PeerAuthentication), or add a DENY "
                    'AuthorizationPolicy with `from: [{source: {notPrincipals: ["*"]}}]`.'
                ),
            )
        )
    return findings


# --- KZT303 / KZT304 ---------------------------------------------------------------------------


def _identity_workloads(reach: Reachability) -> list[Workload]:
    model = reach.model
    return [w for w in Workloads(reach).real() if not is_proxy(model, w)]


def _pod_spec_path(w: Workload) -> str:
    if w.kind == "Pod":
        return "spec"
    if w.kind == "CronJob":
        return "spec.jobTemplate.spec.template.spec"
    return "spec.template.spec"


def check_default_service_account(model: Model, reach: Reachability) -> list[Finding]:
    """KZT303: workloads that run as their namespace's `default` ServiceAccount."""
    return [
        KZT303.finding(
            obj=workload_ref(w),
            namespace=w.namespace,
            location=location_of(w.source),
            path=_pod_spec_path(w) + ".serviceAccountName",
            message=(
                f"{w.id} runs as ServiceAccount default: its identity "
                f"({reach.model.mesh_config.trust_domain}/ns/{w.namespace}/sa/default) is "
                "shared with every pod of the namespace that names no ServiceAccount"
            ),
            remediation=(
                f"Create a ServiceAccount for {w.name} and set `serviceAccountName` in its pod "
                "spec (with `automountServiceAccountToken: false` if it does not call the API)."
            ),
        )
        for w in _identity_workloads(reach)
        if w.service_account == "default"
    ]


def check_shared_service_account(model: Model, reach: Reachability) -> list[Finding]:
    """KZT304: ServiceAccounts (other than `default`) that several workloads run as."""
    topology = reach.model.topology
    users: dict[tuple[str, str], list[Workload]] = {}
    for w in _identity_workloads(reach):
        if w.service_account != "default":
            users.setdefault((w.namespace, w.service_account), []).append(w)
    findings: list[Finding] = []
    for (ns, sa), ws in sorted(users.items()):
        if len(ws) < 2:
            continue
        account = topology.service_accounts.get((ns, sa))
        services = sorted({svc.name for w in ws for svc in topology.services_selecting(w)})
        loc = location_of(account.source) if account is not None else None
        findings.append(
            KZT304.finding(
                obj=f"ServiceAccount {ns}/{sa}",
                namespace=ns,
                location=loc or location_of(ws[0].source),
                message=(
                    f"{len(ws)} workloads run as {ns}/{sa} ({listing(w.name for w in ws)})"
                    + (f", behind Services {listing(services)}" if services else "")
                    + ": a policy that admits one of them admits all"
                ),
                remediation="Give each workload its own ServiceAccount (`serviceAccountName`).",
            )
        )
    return findings


# --- KZT305 ------------------------------------------------------------------------------------


class _Known:
    def __init__(self, model: Model) -> None:
        topology = model.topology
        self.namespaces = set(topology.namespaces)
        self.accounts = {(sa.namespace, sa.name) for sa in topology.service_accounts.values()}
        self.accounts |= {(w.namespace, w.service_account) for w in topology.workloads}
        self.accounts |= {(ns, "default") for ns in self.namespaces}
        self.accounts |= {(wp.namespace, wp.name) for wp in model.mesh.waypoints}
        self.services = {(s.namespace, s.name) for s in topology.services}
        self.gateways = {(wp.namespace, wp.name) for wp in model.mesh.waypoints}
        self.gateways |= {
            (w.namespace, w.labels[WAYPOINT_GATEWAY_LABEL])
            for w in topology.workloads
            if WAYPOINT_GATEWAY_LABEL in w.labels
        }
        config = model.mesh_config
        self.trust_domains = {config.trust_domain, *config.trust_domain_aliases, "cluster.local"}

    def account(self, ns: str, sa: str) -> bool:
        return (ns, sa) in self.accounts


PRINCIPAL = re.compile(r"^([^/]+)/ns/([^/]+)/sa/([^/]+)$")


def _principal_problem(pattern: str, known: _Known) -> str | None:
    m = PRINCIPAL.match(pattern)
    if m is None:
        return None
    td, ns, sa = m.groups()
    if td not in known.trust_domains and td != "*":
        return None  # another trust domain (federation): nothing in the input to compare with
    if "*" in ns:
        return None
    if ns not in known.namespaces:
        return f"principal {pattern} (no namespace {ns})"
    if "*" not in sa and not known.account(ns, sa):
        return f"principal {pattern} (no ServiceAccount {ns}/{sa})"
    return None


def _authz_problems(
    authz: AuthorizationPolicy, known: _Known
) -> Iterator[tuple[AuthzRule | None, str]]:
    for ref in authz.target_refs:
        if ref.kind == "Service" and ref.group in ("", "core"):
            if (authz.namespace, ref.name) not in known.services:
                yield None, f"Service {authz.namespace}/{ref.name} (targetRefs)"
        elif ref.kind == "Gateway" and (authz.namespace, ref.name) not in known.gateways:
            yield None, f"Gateway {authz.namespace}/{ref.name} (targetRefs)"
    for rule in authz.rules:
        principals: list[str] = []
        namespaces: list[str] = []
        accounts: list[str] = []
        for src in rule.sources or ():
            principals += [*(src.principals or ()), *(src.not_principals or ())]
            namespaces += [*(src.namespaces or ()), *(src.not_namespaces or ())]
            accounts += [*(src.service_accounts or ()), *(src.not_service_accounts or ())]
        for cond in rule.conditions:
            values = [*(cond.values or ()), *(cond.not_values or ())]
            if cond.key == "source.principal":
                principals += values
            elif cond.key == "source.namespace":
                namespaces += values
            elif cond.key == "source.serviceAccount":
                accounts += values
        for pattern in principals:
            problem = _principal_problem(pattern, known)
            if problem:
                yield rule, problem
        for ns in namespaces:
            if "*" not in ns and ns not in known.namespaces:
                yield rule, f"namespace {ns}"
        for text in accounts:
            ns, _, sa = text.rpartition("/")
            ns = ns or authz.namespace
            if not known.account(ns, sa):
                yield rule, f"ServiceAccount {ns}/{sa}"


def named_namespaces(selector: Selector | None) -> list[str]:
    """Namespace names a selector requires by name (`kubernetes.io/metadata.name == x`,
    `projectcalico.org/name in {…}`), at the top level or in a conjunction."""
    if selector is None:
        return []
    match selector:
        case Equals(key, value) if key in NAME_KEYS:
            return [value]
        case In(key, values) if key in NAME_KEYS:
            return sorted(values)
        case And(operands):
            return [name for op in operands for name in named_namespaces(op)]
    return []


def _side_problems(side: EntityMatch, policy: Policy, known: _Known) -> Iterator[str]:
    for ns in named_namespaces(side.namespace_selector):
        if ns not in known.namespaces:
            yield f"namespace {ns}"
    if side.service_account_names:
        if side.namespace_scope is NamespaceScope.OWN and policy.namespace is not None:
            scope = [policy.namespace]
        elif side.namespace_scope is NamespaceScope.SELECTED and named_namespaces(
            side.namespace_selector
        ):
            scope = named_namespaces(side.namespace_selector)
        else:
            scope = sorted(known.namespaces)
        for name in sorted(side.service_account_names):
            if not any(known.account(ns, name) for ns in scope):
                where = f"{scope[0]}/" if len(scope) == 1 else ""
                yield f"ServiceAccount {where}{name}"
    if side.services is not None and side.services not in known.services:
        yield f"Service {side.services[0]}/{side.services[1]}"


def check_unknown_references(model: Model, reach: Reachability) -> list[Finding]:
    """KZT305: principals, namespaces, ServiceAccounts, Services and Gateways named in policies
    that no manifest of the input declares or uses."""
    model = reach.model
    known = _Known(model)
    findings: list[Finding] = []

    def add(obj: str, ns: str | None, loc: Location | None, path: str, what: str) -> None:
        findings.append(
            KZT305.finding(
                obj=obj,
                namespace=ns,
                location=loc,
                path=path,
                message=f"names {what}, which is not in the input",
                remediation=(
                    "Correct the name (a typo grants or denies nothing), or add the manifest "
                    "that declares it to the audited input."
                ),
            )
        )

    for policy in enforced_policies(model):
        for ns in named_namespaces(policy.namespace_selector):
            if ns not in known.namespaces:
                add(
                    policy_ref(policy),
                    policy.namespace,
                    location_of(policy.source),
                    "spec.namespaceSelector",
                    f"namespace {ns}",
                )
        for direction in (Direction.INGRESS, Direction.EGRESS):
            done: set[tuple[str, str]] = set()
            for index, rule in enumerate(policy.rules(direction)):
                loc, path = rule_place(policy, rule, direction, index)
                for side in (rule.source, rule.destination):
                    for what in _side_problems(side, policy, known):
                        if (path, what) not in done:
                            done.add((path, what))
                            add(policy_ref(policy), policy.namespace, loc, path, what)
    for authz in model.mesh.authorization_policies:
        done_authz: set[tuple[str, str]] = set()
        for authz_rule, what in _authz_problems(authz, known):
            path = authz_rule_path(authz_rule.index) if authz_rule else "spec.targetRefs"
            if (path, what) in done_authz:
                continue
            done_authz.add((path, what))
            add(authz.ref, authz.namespace, location_of(authz.source), path, what)
    return findings
