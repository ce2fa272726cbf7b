"""Calico `projectcalico.org/v3` resources (and the same kinds as `crd.projectcalico.org/v1`,
which is what `kubectl get` returns) → policy IR.

Owns: NetworkPolicy, GlobalNetworkPolicy and their staged forms, StagedKubernetesNetworkPolicy,
Tier, NetworkSet, GlobalNetworkSet, FelixConfiguration (only whether application layer policy
is switched on) and HostEndpoint (reported as not modelled). Rules are lowered by
`kubezt.dialects.calico.rules`. Must not evaluate policy.

Semantics: docs.tigera.io/calico/latest/reference/resources/{networkpolicy,globalnetworkpolicy,
tier,stagednetworkpolicy,networkset} and libcalico-go (`clientv3` type defaulting, validator v3).

Diagnostics: E031 selector syntax, E060 global() misplaced, E061 protocol, E062 ports, E063
action, E064 undeclared tier, E065 nets/ipVersion, E066 icmp, E067 services, E068 http, E069
types, E070 Tier object, E071 doNotTrack/preDNAT/applyOnForward, E072 stagedAction, E073
network set labels; W030 http not enforced by Felix, W031 host-endpoint feature, W032
HostEndpoint, W033 named port without protocol, W034 stagedAction not modelled, W035
node-specific FelixConfiguration; W002 unknown field.
"""

from __future__ import annotations

import dataclasses

from kubezt.dialects import k8s
from kubezt.dialects._labels import is_dns_label, read_labels
from kubezt.dialects._reader import Cursor
from kubezt.dialects.calico.rules import Scope, read_rules, read_selector
from kubezt.dialects.context import ReadContext, Reader
from kubezt.errors import Diagnostic, Severity, did_you_mean
from kubezt.ir.policy import (
    BUILTIN_TIERS,
    K8S_POLICY_ORDER,
    Action,
    Dialect,
    Direction,
    Network,
    NetworkSet,
    Policy,
    Tier,
)
from kubezt.ir.provenance import Source

GROUPS = ("projectcalico.org", "crd.projectcalico.org")
DEFAULT_TIER = "default"
POLICY_FIELDS = (
    "order",
    "tier",
    "selector",
    "types",
    "ingress",
    "egress",
    "serviceAccountSelector",
    "performanceHints",
)
GLOBAL_POLICY_FIELDS = ("namespaceSelector", "doNotTrack", "preDNAT", "applyOnForward")
HOST_ENDPOINT_FLAGS = ("doNotTrack", "preDNAT", "applyOnForward")
STAGED_ACTIONS = ("Set", "Delete")
NAMESPACE_LABEL = "projectcalico.org/namespace"


# --- policies ----------------------------------------------------------------------------------


def read_network_policy(root: Cursor, meta: Cursor, src: Source, rc: ReadContext) -> None:
    _read_policy(root, src, rc, global_policy=False, staged=False)


def read_global_network_policy(root: Cursor, meta: Cursor, src: Source, rc: ReadContext) -> None:
    _read_policy(root, src, rc, global_policy=True, staged=False)


def read_staged_network_policy(root: Cursor, meta: Cursor, src: Source, rc: ReadContext) -> None:
    _read_policy(root, src, rc, global_policy=False, staged=True)


def read_staged_global_network_policy(
    root: Cursor, meta: Cursor, src: Source, rc: ReadContext
) -> None:
    _read_policy(root, src, rc, global_policy=True, staged=True)


def _read_policy(
    root: Cursor, src: Source, rc: ReadContext, *, global_policy: bool, staged: bool
) -> None:
    spec = root["spec"]
    if spec.written and spec.map(what=f"a {src.kind} spec") is None:
        return
    allowed = POLICY_FIELDS + (GLOBAL_POLICY_FIELDS if global_policy else ())
    spec.unknown_fields(allowed + (("stagedAction",) if staged else ()), code="E012")
    tier = spec["tier"].str() or DEFAULT_TIER
    _require_tier(rc, spec, tier)
    if staged:
        action = _staged_action(spec)
        if action is None:
            return
        if action == "Delete":
            _read_staged_delete(spec, src, rc, tier, ("tier", "stagedAction"), Dialect.CALICO)
            return
    order = spec["order"].number(what="a number (lower orders are evaluated first)")
    selector = read_selector(spec["selector"])
    namespace_selector = read_selector(spec["namespaceSelector"]) if global_policy else None
    sa_selector = read_selector(spec["serviceAccountSelector"])
    spec["performanceHints"].str_list(what="a list of performance hints")
    types = _types(spec)
    scope = Scope(src.namespace, global_policy)
    ingress = read_rules(spec, Direction.INGRESS, scope, src)
    egress = read_rules(spec, Direction.EGRESS, scope, src)
    host_only = _host_endpoint_flags(spec, types) if global_policy else False
    if root.ctx.failed or host_only:
        return
    rc.policies.append(
        Policy(
            dialect=Dialect.CALICO,
            kind=src.kind,
            name=src.name,
            namespace=src.namespace,
            tier=tier,
            order=order,
            selector=selector,
            namespace_selector=namespace_selector,
            service_account_selector=sa_selector,
            types=types,
            ingress=ingress,
            egress=egress,
            staged=staged,
            source=src,
        )
    )


def _types(spec: Cursor) -> frozenset[Direction]:
    cur = spec["types"]
    values = cur.str_list(what='a list of policy types ("Ingress", "Egress")') or []
    types: set[Direction] = set()
    for i, value in enumerate(values):
        try:
            types.add(Direction(value))
        except ValueError:
            cur[i].error('"Ingress" or "Egress"', "E069", hint=did_you_mean(value, Direction))
    if types or values:
        return frozenset(types)
    # No types: Calico stores [Ingress] without egress rules (also with no rules at all),
    # [Egress] with only egress rules, both otherwise (libcalico-go defaultPolicyTypesField).
    ingress, egress = spec["ingress"].value, spec["egress"].value
    has_ingress = isinstance(ingress, list) and bool(ingress)
    has_egress = isinstance(egress, list) and bool(egress)
    if not has_egress:
        return frozenset({Direction.INGRESS})
    if not has_ingress:
        return frozenset({Direction.EGRESS})
    return frozenset({Direction.INGRESS, Direction.EGRESS})


def _host_endpoint_flags(spec: Cursor, types: frozenset[Direction]) -> bool:
    """doNotTrack / preDNAT / applyOnForward: validated, warned about; True when the policy
    only ever applies to host endpoints (Felix puts doNotTrack and preDNAT policies in the raw
    and mangle chains of host endpoints, never in a workload's chain)."""
    flags = {name: spec[name].bool() for name in HOST_ENDPOINT_FLAGS}
    if flags["doNotTrack"] and flags["preDNAT"]:
        spec["preDNAT"].problem("doNotTrack and preDNAT cannot both be true", "E071")
    for name in ("doNotTrack", "preDNAT"):
        if flags[name] and not flags["applyOnForward"]:
            spec[name].problem(f"{name} needs applyOnForward: true", "E071")
    if flags["preDNAT"] and Direction.EGRESS in types:
        spec["types"].problem("a preDNAT policy can only have types [Ingress]", "E071")
    written = [name for name, on in flags.items() if on]
    if not written:
        return False
    host_only = flags["doNotTrack"] or flags["preDNAT"]
    spec[written[0]].warn(
        f"{', '.join(written)}: host-endpoint feature not modelled; kubezt evaluates workload "
        "endpoints only"
        + (
            " (Felix applies doNotTrack/preDNAT policies to host endpoints only, so this "
            "policy is left out)"
            if host_only
            else ""
        ),
        "W031",
    )
    return host_only


def _staged_action(spec: Cursor) -> str | None:
    cur = spec["stagedAction"]
    text = cur.str() if cur.present else "Set"
    if text in STAGED_ACTIONS:
        return text
    if text in ("Learn", "Ignore"):
        cur.warn(f"stagedAction {text} is not modelled; the staged policy is ignored", "W034")
        return None
    if text is not None:
        cur.error("Set or Delete", "E072", got=f'"{text}"')
    return None


def _read_staged_delete(
    spec: Cursor,
    src: Source,
    rc: ReadContext,
    tier: str,
    allowed: tuple[str, ...],
    dialect: Dialect,
) -> None:
    """stagedAction Delete previews deleting the enforced twin: every other field stays empty.

    It is lowered as a staged policy with no types and no rules, which no `Set` policy can be
    (Calico infers `[Ingress]` when no type is given); `kubezt.engine.l4.is_staged_delete`.
    """
    if isinstance(spec.value, dict):
        for key in spec.value:
            if key not in allowed and isinstance(key, str):
                spec[key].problem(
                    f"must be empty when stagedAction is Delete (only {', '.join(allowed)} "
                    "may be set)",
                    "E072",
                )
    if spec.ctx.failed:
        return
    rc.policies.append(
        Policy(
            dialect=dialect,
            kind=src.kind,
            name=src.name,
            namespace=src.namespace,
            tier=tier,
            order=K8S_POLICY_ORDER if dialect is Dialect.K8S else None,
            types=frozenset(),
            staged=True,
            source=src,
        )
    )


def read_staged_kubernetes_network_policy(
    root: Cursor, meta: Cursor, src: Source, rc: ReadContext
) -> None:
    """A Kubernetes NetworkPolicy spec plus `stagedAction`, lowered as the K8s reader does."""
    spec = root["spec"]
    if spec.map(required=True, what="a StagedKubernetesNetworkPolicy spec") is None:
        return
    action = _staged_action(spec)
    if action is None:
        return
    if action == "Delete":
        _read_staged_delete(spec, src, rc, DEFAULT_TIER, ("stagedAction",), Dialect.K8S)
        return
    # Read the spec without stagedAction through the Kubernetes reader; paths and locations
    # stay those of the original document.
    data = dict(root.value)
    data["spec"] = {k: v for k, v in spec.value.items() if k != "stagedAction"}
    enforced = ReadContext(rc.sink)
    k8s.read_network_policy(Cursor(root.ctx, data, root.path), root["metadata"], src, enforced)
    for policy in enforced.policies:
        rc.policies.append(dataclasses.replace(policy, kind=src.kind, staged=True))


# --- tiers -------------------------------------------------------------------------------------


def read_tier(root: Cursor, meta: Cursor, src: Source, rc: ReadContext) -> None:
    name = src.name
    if not is_dns_label(name):
        meta["name"].error(
            "a tier name (at most 63 lower-case alphanumerics or '-', no dots)",
            "E070",
            got=f'"{name}"',
        )
    spec = root["spec"]
    if spec.written and spec.map(what="a Tier spec (order, defaultAction)") is None:
        return
    spec.unknown_fields(("order", "defaultAction"), code="E012")
    order = spec["order"].number(what="a number (lower orders are evaluated first)")
    default_action = Action.DENY
    action_cur = spec["defaultAction"]
    if action_cur.present:
        text = action_cur.str()
        if text in (Action.DENY.value, Action.PASS.value):
            default_action = Action(text)
        elif text is not None:
            action_cur.error("Deny or Pass", "E070", got=f'"{text}"')
    builtin = BUILTIN_TIERS.get(name)
    if builtin is not None:
        # Calico's Tier CRD pins the order and default action of its built-in tiers.
        assert builtin.order is not None
        if order is not None and order != builtin.order:
            spec["order"].problem(
                f"the order of tier {name!r} is fixed at {builtin.order:.0f}", "E070"
            )
        if action_cur.present and default_action is not builtin.default_action:
            action_cur.problem(
                f"the default action of tier {name!r} is fixed at {builtin.default_action}",
                "E070",
            )
        order = builtin.order
        default_action = builtin.default_action
    for tier in rc.tiers:
        if tier.name == name:
            where = tier.source.location if tier.source else None
            root.problem(
                f"duplicate Tier {name!r}" + (f"; first defined at {where}" if where else ""),
                "E070",
            )
    if root.ctx.failed:
        return
    rc.tiers.append(Tier(name, order, default_action, source=src))


def _require_tier(rc: ReadContext, spec: Cursor, tier: str) -> None:
    """Calico rejects a policy in a tier that does not exist; `default`, `kube-admin` and
    `kube-baseline` (and up to 3.31 `adminnetworkpolicy`, `baselineadminnetworkpolicy`) are
    built in.
    Tiers may be declared in any file, so the check runs once everything is read."""
    if tier in BUILTIN_TIERS:
        return
    cur = spec["tier"]
    pending = Diagnostic(
        Severity.ERROR,
        "E064",
        f"tier {tier!r} is not declared",
        cur.location,
        cur.ctx.obj,
        cur.dotted,
    )

    def check(done: ReadContext) -> None:
        declared = [t.name for t in done.tiers]
        if tier in declared:
            return
        hint = did_you_mean(tier, declared) or (
            "declare it with a projectcalico.org/v3 Tier object (only the built-in tiers exist "
            "without one)"
        )
        done.sink.add(dataclasses.replace(pending, hint=hint))

    rc.finishers.append(check)


# --- network sets ------------------------------------------------------------------------------


def read_network_set(root: Cursor, meta: Cursor, src: Source, rc: ReadContext) -> None:
    _read_network_set(root, meta, src, rc)


def read_global_network_set(root: Cursor, meta: Cursor, src: Source, rc: ReadContext) -> None:
    _read_network_set(root, meta, src, rc)


def _read_network_set(root: Cursor, meta: Cursor, src: Source, rc: ReadContext) -> None:
    labels = read_labels(meta["labels"])
    if NAMESPACE_LABEL in labels:
        meta["labels"][NAMESPACE_LABEL].problem(
            f"{NAMESPACE_LABEL} is reserved: Calico sets it from the object's namespace", "E073"
        )
    spec = root["spec"]
    if spec.written and spec.map(what=f"a {src.kind} spec (nets)") is None:
        return
    spec.unknown_fields(("nets",), code="E012")
    nets: list[Network] = []
    for item in spec["nets"].list(what="a list of CIDRs") or []:
        net = item.cidr()
        if net is not None:
            nets.append(net)
    if root.ctx.failed:
        return
    rc.network_sets.append(
        NetworkSet(
            name=src.name,
            namespace=src.namespace,
            labels=tuple(sorted(labels.items())),
            nets=tuple(nets),
            source=src,
        )
    )


# --- everything else ---------------------------------------------------------------------------


def read_felix_configuration(root: Cursor, meta: Cursor, src: Source, rc: ReadContext) -> None:
    """Only `spec.policySyncPathPrefix` matters here: when set, Felix serves policy to Dikastes
    and Calico application layer policy enforces `http` rule matches on sidecar pods."""
    prefix = root["spec"]["policySyncPathPrefix"]
    if not prefix.present:
        return
    text = prefix.str()
    if not text:
        return
    rc.mesh_settings["calico_alp"] = True
    if src.name != "default":
        prefix.warn(
            "a node-specific FelixConfiguration enables application layer policy; kubezt "
            "assumes it is enabled on every node",
            "W035",
        )


def read_host_endpoint(root: Cursor, meta: Cursor, src: Source, rc: ReadContext) -> None:
    root.warn(
        "HostEndpoint is not modelled: kubezt evaluates workload endpoints only, so traffic to "
        "or from this host interface is not checked against the GlobalNetworkPolicies that "
        "select it",
        "W032",
    )


_KINDS: dict[str, tuple[Reader, bool]] = {
    "NetworkPolicy": (read_network_policy, True),
    "GlobalNetworkPolicy": (read_global_network_policy, False),
    "StagedNetworkPolicy": (read_staged_network_policy, True),
    "StagedGlobalNetworkPolicy": (read_staged_global_network_policy, False),
    "StagedKubernetesNetworkPolicy": (read_staged_kubernetes_network_policy, True),
    "Tier": (read_tier, False),
    "NetworkSet": (read_network_set, True),
    "GlobalNetworkSet": (read_global_network_set, False),
    "FelixConfiguration": (read_felix_configuration, False),
    "HostEndpoint": (read_host_endpoint, False),
}

READERS: dict[tuple[str, str], tuple[Reader, bool]] = {
    (group, kind): entry for group in GROUPS for kind, entry in _KINDS.items()
}
"""(API group, kind) → (reader, namespaced), merged into `kubezt.dialects.registry.READERS`."""

__all__ = ["READERS"]
