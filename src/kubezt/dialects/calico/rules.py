"""Calico rules (`spec.ingress[]`, `spec.egress[]`) and their entity rules → IR `Rule`s.

Owns the checks the Calico API server applies to one rule (libcalico-go validator
`validateRule`, `validateEntityRule`, `validate(Global)NetworkPolicySpec`) and the lowering of
every rule field. Must not decide which endpoints a policy selects (`policy.py`) and must not
evaluate anything (the engine does).

Problems are reported through the cursor; a reader drops the whole object when any error was
reported for it, so helpers here return a best-effort value after reporting.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from kubezt.dialects._labels import is_port_name
from kubezt.dialects._reader import Cursor
from kubezt.dialects.calico.selector_parser import parse_selector
from kubezt.errors import SelectorSyntaxError
from kubezt.ir.policy import (
    EMPTY_ENTITY,
    Action,
    Direction,
    EntityMatch,
    HttpMatch,
    NamespaceScope,
    Network,
    Rule,
)
from kubezt.ir.ports import PROTOCOL_NUMBERS, PortRange, PortSet, Protocol
from kubezt.ir.provenance import Source
from kubezt.ir.selectors import And, Global, Not, Or, Selector

RULE_FIELDS = (
    "action",
    "protocol",
    "notProtocol",
    "icmp",
    "notICMP",
    "ipVersion",
    "source",
    "destination",
    "http",
    "metadata",
)
ENTITY_FIELDS = (
    "nets",
    "notNets",
    "selector",
    "notSelector",
    "namespaceSelector",
    "ports",
    "notPorts",
    "serviceAccounts",
    "services",
)
ACTIONS = {a.value: a for a in Action}
# Protocol names are matched case-insensitively (numorstring.ProtocolFromString).
PROTOCOL_BY_NAME = {p.value.lower(): p.number for p in Protocol}
PORTED_NUMBERS = frozenset(PROTOCOL_NUMBERS[p] for p in (Protocol.TCP, Protocol.UDP, Protocol.SCTP))
ICMP_NUMBERS = {PROTOCOL_NUMBERS[Protocol.ICMP]: 4, PROTOCOL_NUMBERS[Protocol.ICMPV6]: 6}
"""ICMP protocol number → the IP version it belongs to."""
TCP = PROTOCOL_NUMBERS[Protocol.TCP]
EVERY_ADDRESS = (ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0"))


@dataclass(frozen=True, slots=True)
class Scope:
    """What the policy a rule belongs to means for its selectors."""

    namespace: str | None
    """The policy's namespace; None for a GlobalNetworkPolicy."""
    global_policy: bool


@dataclass(slots=True)
class _Ports:
    """One ports/notPorts list as read: the set plus where numbers and names were written."""

    ports: PortSet | None = None
    numeric: list[Cursor] = field(default_factory=list)
    named: list[Cursor] = field(default_factory=list)


@dataclass(slots=True)
class _Entity:
    entity: EntityMatch
    ports: _Ports
    not_ports: _Ports
    nets: list[tuple[Cursor, Network]]
    services: Cursor | None


# --- selectors ---------------------------------------------------------------------------------


def read_selector(cur: Cursor, what: str = "a Calico selector expression") -> Selector | None:
    """A selector expression field; None when absent or invalid (the error is reported).

    `global()` is only meaningful as a whole rule `namespaceSelector` (read by the caller), so
    it is rejected everywhere this function is used.
    """
    if not cur.present:
        return None
    text = cur.value
    if not isinstance(text, str):
        cur.error(what)
        return None
    if text == "":
        return None  # Calico treats an empty selector field as absent
    try:
        selector = parse_selector(text)
    except SelectorSyntaxError as exc:
        cur.problem(
            f"{exc.reason} at column {exc.column} in {text!r}",
            "E031",
            hint="see the selector grammar at docs.tigera.io/calico/latest/reference/resources/"
            "networkpolicy#selectors",
        )
        return None
    if _mentions_global(selector):
        cur.problem(
            "global() can only be used as the whole namespaceSelector of a rule's source or "
            "destination",
            "E060",
        )
        return None
    return selector


def _mentions_global(selector: Selector) -> bool:
    match selector:
        case Global():
            return True
        case Not(operand):
            return _mentions_global(operand)
        case And(operands) | Or(operands):
            return any(_mentions_global(op) for op in operands)
    return False


def _namespace_selector(cur: Cursor) -> Selector | None:
    """A rule side's namespaceSelector: `global()` alone is allowed here, nowhere else."""
    if not cur.present:
        return None
    text = cur.str()
    if text is None:
        return None
    try:
        selector = parse_selector(text)
    except SelectorSyntaxError:
        return read_selector(cur)  # reports the located syntax error
    if isinstance(selector, Global):
        return selector
    return read_selector(cur)


# --- scalar fields -----------------------------------------------------------------------------


def read_protocol(cur: Cursor) -> int | None:
    """`protocol`/`notProtocol`: a name (any case) or a number 1-255 → IANA number."""
    if not cur.present:
        return None
    value = cur.value
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, int) and not isinstance(value, bool):
        if 1 <= value <= 255:
            return value
        cur.error("a protocol number 1-255", "E061", got=f"the number {value}")
        return None
    if isinstance(value, str) and value.lower() in PROTOCOL_BY_NAME:
        return PROTOCOL_BY_NAME[value.lower()]
    cur.error("one of TCP, UDP, ICMP, ICMPv6, SCTP, UDPLite or a protocol number 1-255", "E061")
    return None


def _action(cur: Cursor) -> Action | None:
    if not cur.present:
        cur.error("an action (Allow, Deny, Log or Pass)", "E063")
        return None
    text = cur.str()
    if text is None:
        return None
    action = ACTIONS.get(text)
    if action is None:
        hint = ""
        for name in ACTIONS:
            if name.lower() == text.lower():
                hint = f"did you mean {name!r}? (actions are case-sensitive)"
        cur.error("one of Allow, Deny, Log, Pass", "E063", got=f'"{text}"', hint=hint)
    return action


def _icmp(cur: Cursor) -> bool:
    """Validate an icmp/notICMP block; True when it is present."""
    if not cur.present:
        return False
    if cur.map(what="an ICMP match (type and optional code)") is None:
        return True
    cur.unknown_fields(("type", "code"), code="E012")
    cur["type"].int(lo=0, hi=254, what="an ICMP type 0-254")
    cur["code"].int(lo=0, hi=255, what="an ICMP code 0-255")
    if cur["code"].present and not cur["type"].present:
        cur["code"].problem("an ICMP code needs an ICMP type", "E066")
    return True


# --- ports -------------------------------------------------------------------------------------


def _ports(cur: Cursor) -> _Ports:
    """Calico ports: numbers, "first:last" ranges and named ports (numorstring.Port)."""
    out = _Ports()
    items = cur.list(what='a list of ports (numbers, "first:last" ranges or port names)')
    if items is None:
        return out
    ranges: list[PortRange] = []
    names: set[str] = set()
    for item in items:
        value = item.value
        if isinstance(value, bool) or not isinstance(value, int | str):
            item.error('a port number, a "first:last" range or a port name', "E062")
            continue
        if isinstance(value, int) or value.strip().isdigit():
            number = int(value)
            if not 0 <= number <= 65535:
                item.error("a port number 0-65535", "E062", got=f"the number {number}")
                continue
            ranges.append(PortRange(number, number))
            out.numeric.append(item)
            continue
        first, sep, last = value.partition(":")
        if sep:
            if not (first.strip().isdigit() and last.strip().isdigit()):
                item.error('a port range "first:last" of numbers', "E062")
                continue
            lo, hi = int(first), int(last)
            if not (0 <= lo <= hi <= 65535):
                item.error('a port range "first:last" with 0 ≤ first ≤ last ≤ 65535', "E062")
                continue
            ranges.append(PortRange(lo, hi))
            out.numeric.append(item)
            continue
        if not is_port_name(value):
            item.error(
                'a port number, a "first:last" range or a port name (at most 15 lower-case '
                "letters, digits and dashes)",
                "E062",
            )
            continue
        names.add(value)
        out.named.append(item)
    out.ports = PortSet.of(ranges, names)
    return out


# --- entity rules ------------------------------------------------------------------------------


def _nets(cur: Cursor, negated: bool) -> list[tuple[Cursor, Network]]:
    items = cur.list(what="a list of CIDRs")
    out: list[tuple[Cursor, Network]] = []
    for item in items or []:
        net = item.cidr()
        if net is None:
            continue
        if negated and net in EVERY_ADDRESS:
            item.error(
                f"a CIDR narrower than {net}",
                "E065",
                got=f'"{item.value}"',
                hint="a notNets entry covering every address can never match a packet; drop "
                "the rule or use a Deny rule instead",
            )
            continue
        out.append((item, net))
    return out


def _entity(cur: Cursor, scope: Scope) -> _Entity:
    if not cur.present:
        return _Entity(EMPTY_ENTITY, _Ports(), _Ports(), [], None)
    cur.map(what="an entity rule (nets, selector, namespaceSelector, ports, ...)")
    cur.unknown_fields(ENTITY_FIELDS, code="E012")
    nets = _nets(cur["nets"], negated=False)
    not_nets = _nets(cur["notNets"], negated=True)
    selector = read_selector(cur["selector"])
    not_selector = read_selector(cur["notSelector"])
    ns_selector = _namespace_selector(cur["namespaceSelector"])
    if isinstance(ns_selector, Global):
        ns_scope, ns_selector = NamespaceScope.GLOBAL, None
    elif ns_selector is not None:
        ns_scope = NamespaceScope.SELECTED
    elif scope.namespace is not None:
        ns_scope = NamespaceScope.OWN
    else:
        ns_scope = NamespaceScope.ANY
    sa_names: frozenset[str] | None = None
    sa_selector: Selector | None = None
    sa = cur["serviceAccounts"]
    if sa.present and sa.map(what="a service account match (names and/or selector)") is not None:
        sa.unknown_fields(("names", "selector"), code="E012")
        names = sa["names"].str_list(what="a list of service account names")
        if names:
            sa_names = frozenset(names)
        sa_selector = read_selector(sa["selector"])
    services = _services(cur["services"], scope)
    ports = _ports(cur["ports"])
    not_ports = _ports(cur["notPorts"])
    entity = EntityMatch(
        nets=tuple(n for _, n in nets) if nets else None,
        not_nets=tuple(n for _, n in not_nets) if not_nets else None,
        selector=selector,
        not_selector=not_selector,
        namespace_scope=ns_scope,
        namespace_selector=ns_selector,
        service_account_names=sa_names,
        service_account_selector=sa_selector,
        services=services,
        ports=_non_empty(ports.ports),
        not_ports=_non_empty(not_ports.ports),
    )
    svc_cur = cur["services"] if cur["services"].present else None
    if svc_cur is not None:
        _check_services_alone(cur, svc_cur)
    return _Entity(entity, ports, not_ports, nets + not_nets, svc_cur)


def _non_empty(ports: PortSet | None) -> PortSet | None:
    # An empty list is no constraint at all (Calico tests len(ports) > 0).
    return ports if ports is not None and not ports.is_empty else None


def _services(cur: Cursor, scope: Scope) -> tuple[str, str] | None:
    if not cur.present or cur.map(what="a service match (name, namespace)") is None:
        return None
    cur.unknown_fields(("name", "namespace"), code="E012")
    name = cur["name"].str()
    if not name:
        cur["name"].error("the name of a Kubernetes Service", "E067")
        return None
    namespace = cur["namespace"].str()
    if not namespace:
        if scope.namespace is None:
            cur.problem(
                "a GlobalNetworkPolicy must give services.namespace (service names are only "
                "unique within a namespace)",
                "E067",
            )
            return None
        namespace = scope.namespace
    return (namespace, name)


def _check_services_alone(cur: Cursor, svc: Cursor) -> None:
    """validateEntityRule: a services match may only be combined with ports."""
    for other in ("namespaceSelector", "selector", "notSelector", "serviceAccounts", "nets"):
        if cur[other].present:
            svc.problem(f"services cannot be combined with {other} in one entity rule", "E067")
    if cur["notNets"].present:
        svc.problem("services cannot be combined with notNets in one entity rule", "E067")


# --- http --------------------------------------------------------------------------------------


def _http(cur: Cursor) -> HttpMatch | None:
    if not cur.present or cur.map(what="an HTTP match (methods, paths)") is None:
        return None
    cur.unknown_fields(("methods", "paths"), code="E012")
    methods = cur["methods"].str_list(what="a list of HTTP methods") or []
    exact: list[str] = []
    prefix: list[str] = []
    for item in cur["paths"].list(what="a list of paths ({exact: ...} or {prefix: ...})") or []:
        fields = item.map(what="a path match with exactly one of exact or prefix")
        if fields is None:
            continue
        item.unknown_fields(("exact", "prefix"), code="E012")
        has_exact, has_prefix = item["exact"].present, item["prefix"].present
        if has_exact == has_prefix:
            item.problem("a path match needs exactly one of exact or prefix", "E068")
            continue
        value = item["exact" if has_exact else "prefix"].str()
        if value is not None:
            (exact if has_exact else prefix).append(value)
    return HttpMatch(tuple(methods), tuple(exact), tuple(prefix))


# --- rules -------------------------------------------------------------------------------------


def read_rules(spec: Cursor, direction: Direction, scope: Scope, src: Source) -> tuple[Rule, ...]:
    """`spec.ingress` or `spec.egress` as IR rules, in the order written."""
    field_name = "ingress" if direction is Direction.INGRESS else "egress"
    items = spec[field_name].list(what=f"a list of {field_name} rules")
    rules: list[Rule] = []
    for index, cur in enumerate(items or []):
        rule = _rule(cur, index, direction, scope, src)
        if rule is not None:
            rules.append(rule)
    return tuple(rules)


def _rule(cur: Cursor, index: int, direction: Direction, scope: Scope, src: Source) -> Rule | None:
    if cur.map(what="a rule (action, protocol, source, destination, ...)") is None:
        return None
    cur.unknown_fields(RULE_FIELDS, code="E012")
    action = _action(cur["action"])
    protocol = read_protocol(cur["protocol"])
    not_protocol = read_protocol(cur["notProtocol"])
    ip_version = cur["ipVersion"].int(what="an IP version, 4 or 6")
    if ip_version not in (None, 4, 6):
        cur["ipVersion"].error("an IP version, 4 or 6", "E065", got=f"the number {ip_version}")
        ip_version = None
    icmp = _icmp(cur["icmp"])
    not_icmp = _icmp(cur["notICMP"])
    source = _entity(cur["source"], scope)
    destination = _entity(cur["destination"], scope)
    http = _http(cur["http"])
    _check_protocol(cur, protocol, not_protocol, ip_version, icmp)
    _check_ports(protocol, source, destination, cur)
    _check_families(cur, ip_version, source.nets + destination.nets)
    _check_service_placement(direction, source, destination, scope)
    if http is not None:
        _check_http(cur, action, direction, protocol)
    if action is None:
        return None
    return Rule(
        action,
        protocol=protocol,
        not_protocol=not_protocol,
        source=source.entity,
        destination=destination.entity,
        ip_version=ip_version,
        icmp=icmp or not_icmp,
        http=http,
        index=index,
        origin=src.at(cur.dotted, cur.location),
    )


def _check_protocol(
    cur: Cursor, protocol: int | None, not_protocol: int | None, ip_version: int | None, icmp: bool
) -> None:
    if icmp and protocol not in ICMP_NUMBERS:
        cur["icmp"].problem("an icmp match needs protocol ICMP or ICMPv6", "E066")
    for name, number in (("protocol", protocol), ("notProtocol", not_protocol)):
        family = ICMP_NUMBERS.get(number) if number is not None else None
        if family is not None and ip_version is not None and ip_version != family:
            cur["ipVersion"].problem(
                f"{name} {'ICMP' if family == 4 else 'ICMPv6'} needs ipVersion {family}", "E066"
            )


def _check_ports(protocol: int | None, source: _Entity, destination: _Entity, cur: Cursor) -> None:
    """validateRule: ports need a protocol that has ports (TCP, UDP, SCTP)."""
    ported = protocol in PORTED_NUMBERS
    for side in (source, destination):
        for ports in (side.ports, side.not_ports):
            for item in ports.numeric:
                if not ported:
                    item.problem(
                        "numeric ports need protocol TCP, UDP or SCTP on the rule",
                        "E062",
                        hint="add protocol: TCP (or UDP/SCTP) to the rule",
                    )
            for item in ports.named:
                if protocol is not None and not ported:
                    item.problem("named ports need protocol TCP, UDP or SCTP on the rule", "E062")
                elif protocol is None:
                    item.warn(
                        "named port without a protocol: Calico's API validation asks for "
                        "protocol TCP, UDP or SCTP whenever ports are given; kubezt matches the "
                        "name on whichever protocol the destination declares it for",
                        "W033",
                        hint="add protocol: TCP (or UDP/SCTP) to the rule",
                    )
    if destination.services is not None:
        for name in ("ports", "notPorts"):
            if cur["destination"][name].present:
                cur["destination"][name].problem(
                    "a destination services match takes its ports from the Service; "
                    f"{name} cannot be added",
                    "E067",
                )


def _check_families(
    cur: Cursor, ip_version: int | None, nets: list[tuple[Cursor, Network]]
) -> None:
    versions = {net.version for _, net in nets}
    if len(versions) > 1:
        cur.problem("a rule cannot mix IPv4 and IPv6 CIDRs", "E065")
    if ip_version is not None:
        for item, net in nets:
            if net.version != ip_version:
                item.problem(
                    f"an IPv{net.version} CIDR in a rule with ipVersion {ip_version}", "E065"
                )


def _check_service_placement(
    direction: Direction, source: _Entity, destination: _Entity, scope: Scope
) -> None:
    # validate(Global)NetworkPolicySpec: services only as egress destination or ingress source.
    if direction is Direction.EGRESS and source.services is not None:
        source.services.problem("services are not allowed in an egress rule's source", "E067")
    if direction is Direction.INGRESS and destination.services is not None:
        destination.services.problem(
            "services are not allowed in an ingress rule's destination", "E067"
        )


def _check_http(
    cur: Cursor, action: Action | None, direction: Direction, protocol: int | None
) -> None:
    http = cur["http"]
    if action is not None and action is not Action.ALLOW:
        http.problem("http matches are only valid on Allow rules", "E068")
    elif direction is Direction.EGRESS:
        http.problem("http matches are only valid on ingress rules", "E068")
    elif protocol is not None and protocol != TCP:
        http.problem("http matches need protocol TCP (or no protocol)", "E068")
    else:
        http.warn(
            "Felix ignores http matches: only Calico application layer policy (Dikastes, "
            "enabled by FelixConfiguration policySyncPathPrefix) enforces them, so at L3/L4 "
            "this Allow admits more than written",
            "W030",
        )
