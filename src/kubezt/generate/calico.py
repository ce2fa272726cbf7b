"""Calico `projectcalico.org/v3` output: a `platform` tier with the mandatory allowances (DNS,
istiod, ambient kubelet probes, metrics), allow rules by ServiceAccount for every grant on both
ends (caller egress and callee ingress), and the default deny for the namespaces in scope.

Sidecar mode keeps the application port on the wire; ambient tunnels mesh traffic to 15008
(HBONE), through the waypoint where one is in the path, so the rules allow 15008 between the
right identities and Istio authorizes the real port. Plaintext flows (exceptions, metrics,
non-TCP ports) stay on their own ports in both modes. Sources: semantics.md §2.4-§2.5, §5.5,
§7.1-§7.5. Must not decide what is granted (that is the intent) nor evaluate policy.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from kubezt.generate.plan import (
    HBONE_PORT,
    PROBE_SOURCES,
    WAYPOINT,
    WAYPOINT_LABEL,
    Manifest,
    Phase,
    Plan,
    by_protocol,
    cidr_families,
    label_selector,
    namespace_selector,
)
from kubezt.ir.intent import Grant, Identity, Port, Service
from kubezt.ir.ports import Protocol

API = "projectcalico.org/v3"
PLATFORM_TIER = "platform"
PLATFORM_TIER_ORDER = 100
OUTSIDE_DENY_ORDER = 1000
"""Last in the platform tier (`compile --cluster-policy` only)."""
ALLOW_ORDER = 100
DENY_ORDER = 2000
POLICY_SYNC_PREFIX = "/var/run/nodeagent"
"""FelixConfiguration.policySyncPathPrefix: Felix serves policy to Dikastes (§2.7)."""

Rule = dict[str, Any]


class _Rules:
    """An ordered, de-duplicated list of rules with the entries each came from."""

    def __init__(self) -> None:
        self.rules: list[Rule] = []
        self.entries: list[str] = []

    def add(self, rule: Rule, *entries: str) -> None:
        if rule not in self.rules:
            self.rules.append(rule)
        self.entries.extend(entries)


def generate_calico(plan: Plan, unsupported: Callable[[str], None]) -> list[Manifest]:
    """Every Calico object of the plan, each in its rollout phase."""
    out = _platform(plan)
    for service in plan.intent.services:
        policy = _service_policy(plan, service)
        if policy is not None:
            out.append(Manifest(Phase.CALICO_ALLOW, policy))
    for ns in plan.waypoints:
        out.append(Manifest(Phase.CALICO_ALLOW, _waypoint_policy(plan, ns)))
    out.extend(_host_egress(plan, unsupported))
    out.append(Manifest(Phase.DEFAULT_DENY, _default_deny(plan)))
    return out


# --- peers and rules -------------------------------------------------------------------------


def _identity_peer(identity: Identity) -> dict[str, Any]:
    return {
        "serviceAccounts": {"names": [identity.service_account]},
        "namespaceSelector": namespace_selector(identity.namespace),
    }


def _waypoint_peer(namespace: str) -> dict[str, Any]:
    return {
        "selector": label_selector({WAYPOINT_LABEL: WAYPOINT}),
        "namespaceSelector": namespace_selector(namespace),
    }


def _ingress(protocol: Protocol, ports: list[int], source: dict[str, Any]) -> Rule:
    return {
        "action": "Allow",
        "protocol": protocol.value,
        "source": source,
        "destination": {"ports": ports},
    }


def _egress(protocol: Protocol, ports: list[int], destination: dict[str, Any]) -> Rule:
    return {
        "action": "Allow",
        "protocol": protocol.value,
        "destination": {**destination, "ports": ports},
    }


def _wire(plan: Plan, ports: Iterable[Port]) -> list[tuple[Protocol, list[int]]]:
    """The ports a grant shows on the wire between the two pods: the application ports in
    sidecar mode; in ambient mode 15008 for TCP (HBONE) and the own port for the rest (ztunnel
    captures TCP only)."""
    if not plan.ambient:
        return by_protocol((p.port, p.protocol) for p in ports)
    keyed = [
        (HBONE_PORT, Protocol.TCP) if p.protocol is Protocol.TCP else (p.port, p.protocol)
        for p in ports
    ]
    return by_protocol(keyed)


def _direct_ports(plan: Plan, grant: Grant) -> list[Port]:
    """The ports on which the caller's pods talk straight to the callee's pods."""
    if not plan.ambient or plan.direct(grant):
        return list(grant.ports)
    return [p for p in grant.ports if p.protocol is not Protocol.TCP]


def _plain(ports: Iterable[Port]) -> list[tuple[Protocol, list[int]]]:
    return by_protocol((p.port, p.protocol) for p in ports)


# --- the platform tier ------------------------------------------------------------------------


def _platform(plan: Plan) -> list[Manifest]:
    intent = plan.intent
    scope = namespace_selector(*intent.namespaces)
    tier = {
        "apiVersion": API,
        "kind": "Tier",
        "metadata": plan.meta("Tier", PLATFORM_TIER, None, ["platform"]),
        # Pass: what no platform rule allows goes on to the default tier. The policies end
        # without an explicit Pass rule: a Pass skips the rest of the tier, so a trailing Pass
        # in allow-dns would hide allow-istiod from every endpoint both select (§2.5).
        "spec": {"order": PLATFORM_TIER_ORDER, "defaultAction": "Pass"},
    }
    out = [Manifest(Phase.CALICO_PLATFORM, tier)]

    def gnp(name: str, entry: str, order: int, spec: dict[str, Any]) -> None:
        full = f"{PLATFORM_TIER}.{plan.names.label('GlobalNetworkPolicy', '', intent.name, name)}"
        body = {
            "apiVersion": API,
            "kind": "GlobalNetworkPolicy",
            "metadata": plan.meta("GlobalNetworkPolicy", full, None, [entry]),
            "spec": {"tier": PLATFORM_TIER, "order": order, **spec},
        }
        out.append(Manifest(Phase.CALICO_PLATFORM, body))

    dns = intent.platform.dns
    if dns is not None:
        target = {
            "selector": label_selector(dns.selector),
            "namespaceSelector": namespace_selector(dns.namespace),
        }
        gnp(
            "allow-dns",
            "platform/dns",
            10,
            {
                "namespaceSelector": scope,
                "types": ["Egress"],
                "egress": [
                    _egress(Protocol.UDP, [dns.port], target),
                    _egress(Protocol.TCP, [dns.port], target),
                ],
            },
        )
    istiod = intent.platform.istiod
    if not plan.ambient or plan.waypoints:
        spec: dict[str, Any] = {"namespaceSelector": scope}
        if plan.ambient:
            # ztunnel talks to istiod itself; in the namespaces only waypoints do.
            spec["selector"] = f"has({WAYPOINT_LABEL})"
        target = {
            "selector": label_selector(istiod.selector),
            "namespaceSelector": namespace_selector(istiod.namespace),
        }
        spec["types"] = ["Egress"]
        spec["egress"] = [_egress(Protocol.TCP, [istiod.port], target)]
        gnp("allow-istiod", "platform/istiod", 20, spec)
    if plan.ambient:
        # istio-cni SNATs kubelet probes to this address; eBPF dataplanes police it.
        rules: list[Rule] = [
            {"action": "Allow", "protocol": "TCP", "source": {"nets": [net]}}
            for net in PROBE_SOURCES
        ]
        gnp(
            "allow-ambient-probes",
            "mesh",
            30,
            {
                "namespaceSelector": scope,
                "types": ["Ingress"],
                "ingress": rules,
            },
        )
    metrics = intent.platform.metrics
    if metrics is not None and not plan.ambient and metrics.proxy_ports:
        gnp(
            "allow-proxy-metrics",
            "platform/metrics",
            40,
            {
                "namespaceSelector": scope,
                "types": ["Ingress"],
                "ingress": [
                    _ingress(
                        Protocol.TCP, list(metrics.proxy_ports), _identity_peer(metrics.scraper)
                    ),
                ],
            },
        )
    if not plan.ambient:
        felix = {
            "apiVersion": API,
            "kind": "FelixConfiguration",
            "metadata": plan.meta("FelixConfiguration", "default", None, ["mesh"]),
            "spec": {"policySyncPathPrefix": POLICY_SYNC_PREFIX},
        }
        out.append(Manifest(Phase.CALICO_PLATFORM, felix))
    return out


# --- per service ------------------------------------------------------------------------------


def _service_policy(plan: Plan, service: Service) -> dict[str, Any] | None:
    intent = plan.intent
    ingress, egress = _Rules(), _Rules()
    through_waypoint: list[str] = []
    for grant in intent.grants_to(service.ref):
        source = _identity_peer(grant.caller)
        for protocol, ports in _wire(plan, _direct_ports(plan, grant)):
            ingress.add(_ingress(protocol, ports, source), grant.entry)
        if plan.via_waypoint(grant):
            through_waypoint.append(grant.entry)
    if through_waypoint:
        waypoint = _waypoint_peer(service.namespace)
        ingress.add(_ingress(Protocol.TCP, [HBONE_PORT], waypoint), *through_waypoint)
    metrics = intent.platform.metrics
    scraped = [p for p in service.ports if p.metrics]
    if metrics is not None and scraped:
        for protocol, ports in _plain(scraped):
            ingress.add(
                _ingress(protocol, ports, _identity_peer(metrics.scraper)), "platform/metrics"
            )
    for exemption in intent.exceptions:
        if exemption.service != service.ref:
            continue
        for nets in cidr_families(exemption.cidrs):
            for protocol, ports in _plain(exemption.ports):
                ingress.add(_ingress(protocol, ports, {"nets": nets}), exemption.entry)
    identity = service.identity
    for grant in intent.grants_from(identity):
        callee = plan.service(grant.service)
        target = _identity_peer(callee.identity)
        for protocol, ports in _wire(plan, _direct_ports(plan, grant)):
            egress.add(_egress(protocol, ports, target), grant.entry)
        if plan.via_waypoint(grant):
            egress.add(
                _egress(Protocol.TCP, [HBONE_PORT], _waypoint_peer(callee.namespace)), grant.entry
            )
    for entry in intent.egress:
        if entry.caller != identity:
            continue
        for nets in cidr_families(entry.cidrs):
            for protocol, ports in _plain(entry.ports):
                egress.add(_egress(protocol, ports, {"nets": nets}), entry.entry)
    if identity in intent.platform.kube_api_server.callers:
        # The API server is not a pod: match the endpoints of the `kubernetes` Service (§7.2).
        egress.add(
            {
                "action": "Allow",
                "destination": {"services": {"name": "kubernetes", "namespace": "default"}},
            },
            "platform/kubeApiServer",
        )
    if not ingress.rules and not egress.rules:
        return None
    types = [t for t, r in (("Ingress", ingress), ("Egress", egress)) if r.rules]
    spec: dict[str, Any] = {
        "tier": "default",
        "order": ALLOW_ORDER,
        "selector": label_selector(service.selector),
        "types": types,
    }
    if ingress.rules:
        spec["ingress"] = ingress.rules
    if egress.rules:
        spec["egress"] = egress.rules
    name = "default." + plan.names.label("NetworkPolicy", service.namespace, service.name)
    entries = [service.entry, *ingress.entries, *egress.entries]
    return {
        "apiVersion": API,
        "kind": "NetworkPolicy",
        "metadata": plan.meta("NetworkPolicy", name, service.namespace, entries),
        "spec": spec,
    }


def _waypoint_policy(plan: Plan, namespace: str) -> dict[str, Any]:
    """The waypoint's own legs: callers → waypoint and waypoint → services, on 15008."""
    ingress, egress = _Rules(), _Rules()
    for grant in plan.intent.grants:
        if grant.service.namespace != namespace or not plan.via_waypoint(grant):
            continue
        ingress.add(_ingress(Protocol.TCP, [HBONE_PORT], _identity_peer(grant.caller)), grant.entry)
        callee = plan.service(grant.service)
        egress.add(
            _egress(Protocol.TCP, [HBONE_PORT], _identity_peer(callee.identity)), grant.entry
        )
    name = "default." + plan.names.label("NetworkPolicy", namespace, WAYPOINT)
    spec: dict[str, Any] = {
        "tier": "default",
        "order": ALLOW_ORDER,
        "selector": label_selector({WAYPOINT_LABEL: WAYPOINT}),
        "types": ["Ingress", "Egress"],
        "ingress": ingress.rules,
        "egress": egress.rules,
    }
    return {
        "apiVersion": API,
        "kind": "NetworkPolicy",
        "metadata": plan.meta(
            "NetworkPolicy", name, namespace, ["mesh", *ingress.entries, *egress.entries]
        ),
        "spec": spec,
    }


def _host_egress(plan: Plan, unsupported: Callable[[str], None]) -> list[Manifest]:
    """Egress entries that name only DNS hosts: Calico OSS matches addresses, not names, so the
    closest rule allows those ports to every address outside the cluster (a rule matching
    anything but known endpoints); reported through the unsupported channel."""
    out: list[Manifest] = []
    intent = plan.intent
    for entry in intent.egress:
        if entry.cidrs or not entry.hosts:
            continue
        callers = [s for s in intent.services if s.identity == entry.caller]
        unsupported(
            f"{entry.entry}: Calico OSS cannot match DNS names ({', '.join(entry.hosts)}); "
            f"{entry.caller} may connect on {', '.join(str(p) for p in entry.ports)} to every "
            "address outside the cluster (give cidrs to narrow it)"
        )
        for service in callers:
            slug = entry.entry.replace("[", "-").replace("]", "").replace("/", "-")
            name = "default." + plan.names.label(
                "GlobalNetworkPolicy", "", intent.name, slug, service.namespace, service.name
            )
            rules = [
                _egress(protocol, ports, {"notSelector": "all()"})
                for protocol, ports in _plain(entry.ports)
            ]
            body = {
                "apiVersion": API,
                "kind": "GlobalNetworkPolicy",
                "metadata": plan.meta("GlobalNetworkPolicy", name, None, [entry.entry]),
                "spec": {
                    "tier": "default",
                    "order": ALLOW_ORDER,
                    "selector": label_selector(service.selector),
                    "namespaceSelector": namespace_selector(service.namespace),
                    "types": ["Egress"],
                    "egress": rules,
                },
            }
            out.append(Manifest(Phase.CALICO_ALLOW, body))
    return out


def outside_ingress_deny(plan: Plan) -> Manifest:
    """With the default deny as a Baseline ClusterNetworkPolicy, whose ingress peers name only
    pods: the deny of connections into the namespaces in scope from addresses that are not pods
    (outside the cluster, other nodes). A platform-tier policy, so it runs before every
    NetworkPolicy: pods' connections and each exception's CIDRs to its service's ports Pass on
    to the default tier and the Baseline tier; everything else is denied. Kubelet probes from
    the pod's own node are not policed (§1.5); in ambient mode their SNAT address is allowed
    by `allow-ambient-probes`, earlier in the tier."""
    intent = plan.intent
    rules: list[Rule] = [{"action": "Pass", "source": {"namespaceSelector": "all()"}}]
    for exemption in intent.exceptions:
        service = plan.service(exemption.service)
        target = {
            "selector": label_selector(service.selector),
            "namespaceSelector": namespace_selector(service.namespace),
        }
        for nets in cidr_families(exemption.cidrs):
            for protocol, ports in _plain(exemption.ports):
                rules.append(
                    {
                        "action": "Pass",
                        "protocol": protocol.value,
                        "source": {"nets": nets},
                        "destination": {**target, "ports": ports},
                    }
                )
    rules.append({"action": "Deny"})
    label = plan.names.label("GlobalNetworkPolicy", "", intent.name, "deny-outside-ingress")
    name = f"{PLATFORM_TIER}.{label}"
    entries = ["namespaces", *(e.entry for e in intent.exceptions)]
    body = {
        "apiVersion": API,
        "kind": "GlobalNetworkPolicy",
        "metadata": plan.meta("GlobalNetworkPolicy", name, None, entries),
        "spec": {
            "tier": PLATFORM_TIER,
            "order": OUTSIDE_DENY_ORDER,
            "namespaceSelector": namespace_selector(*intent.namespaces),
            "types": ["Ingress"],
            "ingress": rules,
        },
    }
    return Manifest(Phase.DEFAULT_DENY, body)


def _default_deny(plan: Plan) -> dict[str, Any]:
    """Selects every pod of the namespaces in scope and allows nothing: what no allow rule
    above admits ends in the default tier's implicit deny (§2.5). System namespaces are never
    in scope (the intent reader refuses them)."""
    intent = plan.intent
    name = "default." + plan.names.label("GlobalNetworkPolicy", "", intent.name, "default-deny")
    return {
        "apiVersion": API,
        "kind": "GlobalNetworkPolicy",
        "metadata": plan.meta("GlobalNetworkPolicy", name, None, ["namespaces"]),
        "spec": {
            "tier": "default",
            "order": DENY_ORDER,
            "namespaceSelector": namespace_selector(*intent.namespaces),
            "types": ["Ingress", "Egress"],
        },
    }
