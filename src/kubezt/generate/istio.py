"""Istio output: mesh-wide STRICT mTLS, per-namespace allow-nothing, ALLOW policies by
principal for every grant, per-workload PERMISSIVE ports for the plaintext exceptions, and in
ambient mode the waypoints, ztunnel (L4, by selector) and waypoint (L7, by targetRefs) policies.

Sources: semantics.md §3.2 (PeerAuthentication scopes), §4.1-§4.3 (which policy applies where),
§5.3-§5.4 (ztunnel sees only L4 attributes and, behind a waypoint, the waypoint's identity),
§7.4-§7.5 (templates). Never emits L7 fields in a policy ztunnel enforces (an ALLOW rule with
them would be dropped: fail closed).
"""

from __future__ import annotations

from typing import Any

from kubezt.generate.plan import (
    REASON_ANNOTATION,
    WAYPOINT,
    Manifest,
    Phase,
    Plan,
)
from kubezt.ir.intent import Grant, Port, Service
from kubezt.ir.ports import Protocol

SECURITY_API = "security.istio.io/v1"
NETWORKING_API = "networking.istio.io/v1"
GATEWAY_API = "gateway.networking.k8s.io/v1"

Rule = dict[str, Any]


def generate_istio(plan: Plan) -> list[Manifest]:
    out: list[Manifest] = []
    for ns in plan.waypoints:
        out.append(Manifest(Phase.WAYPOINTS, _waypoint(plan, ns)))
    out.extend(_service_entries(plan))
    out.extend(_peer_authentications(plan))
    for service in plan.intent.services:
        out.extend(_service_policies(plan, service))
    for ns in plan.intent.namespaces:
        out.append(Manifest(Phase.AUTHORIZATION_DEFAULT_DENY, _allow_nothing(plan, ns)))
    for ns in plan.waypoints:
        out.append(Manifest(Phase.AUTHORIZATION_DEFAULT_DENY, _waypoint_allow_nothing(plan, ns)))
    return out


def _tcp(ports: tuple[Port, ...] | list[Port]) -> list[str]:
    """Istio authorization ports: numeric strings, TCP only (the mesh carries no UDP/SCTP)."""
    return [str(p.port) for p in sorted(ports) if p.protocol is Protocol.TCP]


def _grant_rule(plan: Plan, grant: Grant, http: bool) -> Rule | None:
    ports = _tcp(grant.ports)
    if not ports:
        return None
    operation: dict[str, Any] = {"ports": ports}
    if http and grant.http is not None:
        if grant.http.methods:
            operation["methods"] = list(grant.http.methods)
        if grant.http.paths:
            operation["paths"] = list(grant.http.paths)
        if grant.http.hosts:
            operation["hosts"] = list(grant.http.hosts)
    return {
        "from": [{"source": {"principals": [plan.intent.principal(grant.caller)]}}],
        "to": [{"operation": operation}],
    }


def _plaintext_rules(plan: Plan, service: Service) -> tuple[list[Rule], list[str]]:
    """Rules admitting the plaintext exceptions (by address) and Prometheus scrapes (any
    connection without identity; Calico limits who can send them)."""
    rules: list[Rule] = []
    entries: list[str] = []
    for exemption in plan.intent.exceptions:
        ports = _tcp(exemption.ports)
        if exemption.service != service.ref or not ports:
            continue
        rules.append(
            {
                "from": [{"source": {"ipBlocks": list(exemption.cidrs)}}],
                "to": [{"operation": {"ports": ports}}],
            }
        )
        entries.append(exemption.entry)
    scraped = _tcp([p for p in service.ports if p.metrics])
    if plan.intent.platform.metrics is not None and scraped:
        rules.append(
            {
                "from": [{"source": {"notPrincipals": ["*"]}}],
                "to": [{"operation": {"ports": scraped}}],
            }
        )
        entries.append("platform/metrics")
    return rules, entries


def _policy(
    plan: Plan,
    name: str,
    namespace: str,
    entries: list[str],
    spec: dict[str, Any],
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    return {
        "apiVersion": SECURITY_API,
        "kind": "AuthorizationPolicy",
        "metadata": plan.meta(
            "AuthorizationPolicy", name, namespace, entries, annotations=annotations
        ),
        "spec": spec,
    }


def _service_policies(plan: Plan, service: Service) -> list[Manifest]:
    """Sidecar: one ALLOW policy by selector with every grant (L7 included). Ambient: an L4
    policy by selector for the destination ztunnel (direct grants by caller principal, the
    waypoint's principal for what travels through it), and an L7 policy bound to the Service
    for the waypoint."""
    intent = plan.intent
    grants = intent.grants_to(service.ref)
    selector = {"matchLabels": dict(sorted(service.selector.items()))}
    plain, plain_entries = _plaintext_rules(plan, service)
    out: list[Manifest] = []
    if not plan.ambient:
        rules = [r for g in grants if (r := _grant_rule(plan, g, http=True)) is not None]
        rules += plain
        if rules:
            name = plan.names.label("AuthorizationPolicy", service.namespace, service.name)
            entries = [service.entry, *(g.entry for g in grants), *plain_entries]
            spec = {"selector": selector, "action": "ALLOW", "rules": rules}
            out.append(
                Manifest(
                    Phase.AUTHORIZATION_ALLOW,
                    _policy(plan, name, service.namespace, entries, spec),
                )
            )
        return out
    l4: list[Rule] = []
    l4_entries = [service.entry]
    for grant in grants:
        if plan.direct(grant) and (rule := _grant_rule(plan, grant, http=False)) is not None:
            l4.append(rule)
            l4_entries.append(grant.entry)
    via = [g for g in grants if plan.via_waypoint(g)]
    waypoint_ports = sorted({p for g in via for p in g.ports})
    if via and _tcp(waypoint_ports):
        waypoint = plan.waypoint_identity(service.namespace)
        l4.append(
            {
                "from": [{"source": {"principals": [intent.principal(waypoint)]}}],
                "to": [{"operation": {"ports": _tcp(waypoint_ports)}}],
            }
        )
        l4_entries.extend(g.entry for g in via)
    l4 += plain
    l4_entries += plain_entries
    if l4:
        name = plan.names.label("AuthorizationPolicy", service.namespace, service.name)
        spec = {"selector": selector, "action": "ALLOW", "rules": l4}
        out.append(
            Manifest(
                Phase.AUTHORIZATION_ALLOW,
                _policy(plan, name, service.namespace, l4_entries, spec),
            )
        )
    l7 = [r for g in via if (r := _grant_rule(plan, g, http=True)) is not None]
    if l7:
        name = plan.names.label("AuthorizationPolicy", service.namespace, service.name, WAYPOINT)
        spec = {
            "targetRefs": [{"kind": "Service", "group": "", "name": service.name}],
            "action": "ALLOW",
            "rules": l7,
        }
        entries = [service.entry, *(g.entry for g in via)]
        out.append(
            Manifest(
                Phase.AUTHORIZATION_ALLOW, _policy(plan, name, service.namespace, entries, spec)
            )
        )
    return out


def _allow_nothing(plan: Plan, namespace: str) -> dict[str, Any]:
    """`spec: {}`: an ALLOW policy without rules, so every workload of the namespace denies what
    no other ALLOW policy admits (at sidecars, and at ztunnel in ambient mode)."""
    name = plan.names.label("AuthorizationPolicy", namespace, "allow-nothing")
    return _policy(plan, name, namespace, ["namespaces"], {})


def _waypoint_allow_nothing(plan: Plan, namespace: str) -> dict[str, Any]:
    """The same at the waypoint: policies without targetRefs never apply there (A14)."""
    name = plan.names.label("AuthorizationPolicy", namespace, WAYPOINT, "allow-nothing")
    spec = {
        "targetRefs": [{"kind": "Gateway", "group": "gateway.networking.k8s.io", "name": WAYPOINT}]
    }
    return _policy(plan, name, namespace, ["mesh"], spec)


def _waypoint(plan: Plan, namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": GATEWAY_API,
        "kind": "Gateway",
        "metadata": plan.meta(
            "Gateway",
            WAYPOINT,
            namespace,
            ["mesh"],
            labels={"istio.io/waypoint-for": "service"},
        ),
        "spec": {
            "gatewayClassName": "istio-waypoint",
            "listeners": [{"name": "mesh", "port": 15008, "protocol": "HBONE"}],
        },
    }


def _peer_authentications(plan: Plan) -> list[Manifest]:
    """Mesh-wide STRICT in the root namespace; PERMISSIVE only on the container ports that
    receive plaintext (exceptions, Prometheus), for that workload only (a selector policy:
    portLevelMtls is only valid with one)."""
    intent = plan.intent
    out: list[Manifest] = []
    for service in intent.services:
        ports: set[int] = set()
        entries: list[str] = []
        reasons: list[str] = []
        for exemption in intent.exceptions:
            if exemption.service == service.ref:
                ports.update(p.port for p in exemption.ports if p.protocol is Protocol.TCP)
                entries.append(exemption.entry)
                reasons.append(f"{exemption.name}: {exemption.reason}")
        if intent.platform.metrics is not None:
            scraped = {p.port for p in service.ports if p.metrics and p.protocol is Protocol.TCP}
            if scraped:
                ports |= scraped
                entries.append("platform/metrics")
        if not ports:
            continue
        name = plan.names.label("PeerAuthentication", service.namespace, service.name)
        annotations = {REASON_ANNOTATION: "; ".join(reasons)} if reasons else None
        body = {
            "apiVersion": SECURITY_API,
            "kind": "PeerAuthentication",
            "metadata": plan.meta(
                "PeerAuthentication",
                name,
                service.namespace,
                [service.entry, *entries],
                annotations=annotations,
            ),
            "spec": {
                "selector": {"matchLabels": dict(sorted(service.selector.items()))},
                "portLevelMtls": {port: {"mode": "PERMISSIVE"} for port in sorted(ports)},
            },
        }
        out.append(Manifest(Phase.PEER_AUTHENTICATION, body))
    mesh = {
        "apiVersion": SECURITY_API,
        "kind": "PeerAuthentication",
        "metadata": plan.meta("PeerAuthentication", "default", intent.root_namespace, ["mesh"]),
        "spec": {"mtls": {"mode": "STRICT"}},
    }
    out.append(Manifest(Phase.PEER_AUTHENTICATION, mesh))
    return out


def _service_entries(plan: Plan) -> list[Manifest]:
    """Egress hosts in the mesh registry (needed with outboundTrafficPolicy REGISTRY_ONLY)."""
    out: list[Manifest] = []
    for entry in plan.intent.egress:
        if not entry.hosts:
            continue
        ns = entry.caller.namespace
        slug = entry.entry.replace("[", "-").replace("]", "").replace("/", "-")
        name = plan.names.label("ServiceEntry", ns, slug)
        numbers = sorted({p.port for p in entry.ports if p.protocol is Protocol.TCP})
        ports = [{"number": n, "name": f"tcp-{n}", "protocol": "TCP"} for n in numbers]
        if not ports:
            continue
        body = {
            "apiVersion": NETWORKING_API,
            "kind": "ServiceEntry",
            "metadata": plan.meta("ServiceEntry", name, ns, [entry.entry]),
            "spec": {
                "hosts": list(entry.hosts),
                "location": "MESH_EXTERNAL",
                "ports": ports,
                "resolution": "DNS",
                "exportTo": ["."],
            },
        }
        out.append(Manifest(Phase.MESH_ENROLMENT, body))
    return out
