"""Kubernetes `networking.k8s.io/v1` NetworkPolicy → policy IR, exactly as Calico converts it.

Calico's converter (libcalico-go `conversion.go`, `K8sNetworkPolicyToCalico`) puts every K8s
NetworkPolicy in tier `default` at order 1000 and turns each rule into one Allow rule per
(peer, protocol); isolation then comes from the tier's end-of-tier deny.
"""

from __future__ import annotations

from kubezt.dialects._labels import is_port_name, read_label_selector
from kubezt.dialects._reader import Cursor
from kubezt.dialects.context import ReadContext
from kubezt.dialects.workloads import PORT_PROTOCOLS, protocol_hint
from kubezt.ir.policy import (
    K8S_POLICY_ORDER,
    Action,
    Dialect,
    Direction,
    EntityMatch,
    NamespaceScope,
    Network,
    Policy,
    Rule,
)
from kubezt.ir.ports import PortRange, PortSet, Protocol
from kubezt.ir.provenance import Source
from kubezt.ir.selectors import All

_SPEC_FIELDS = ("podSelector", "policyTypes", "ingress", "egress")


def read_network_policy(root: Cursor, meta: Cursor, src: Source, rc: ReadContext) -> None:
    assert src.namespace is not None
    spec = root["spec"]
    if spec.map(required=True, what="a NetworkPolicy spec") is None:
        return
    spec.unknown_fields(_SPEC_FIELDS, code="E012")
    pod_selector_cur = spec["podSelector"]
    if not pod_selector_cur.present:
        pod_selector_cur.error("a label selector ({} selects every pod in the namespace)", "E018")
        return
    pod_selector = read_label_selector(pod_selector_cur)
    types = _policy_types(spec)
    ingress = _rules(spec, "ingress", "from", src)
    egress = _rules(spec, "egress", "to", src)
    if pod_selector is None or types is None or ingress is None or egress is None:
        return
    rc.policies.append(
        Policy(
            dialect=Dialect.K8S,
            kind="NetworkPolicy",
            name=src.name,
            namespace=src.namespace,
            tier="default",
            order=K8S_POLICY_ORDER,
            selector=pod_selector,
            types=types,
            ingress=ingress,
            egress=egress,
            source=src,
        )
    )


def _policy_types(spec: Cursor) -> frozenset[Direction] | None:
    cur = spec["policyTypes"]
    if cur.present:
        values = cur.str_list()
        if values is None:
            return None
        types: set[Direction] = set()
        for i, value in enumerate(values):
            if value == "Ingress":
                types.add(Direction.INGRESS)
            elif value == "Egress":
                types.add(Direction.EGRESS)
            else:
                cur[i].error('"Ingress" or "Egress"', "E019")
                return None
        if types:
            return frozenset(types)
    # Absent (or empty: the API server's SetDefaults_NetworkPolicy treats both alike)
    # policyTypes: Ingress always; Egress only when egress rules are present
    # (https://kubernetes.io/docs/concepts/services-networking/network-policies/).
    egress = spec["egress"].value
    if isinstance(egress, list) and egress:
        return frozenset({Direction.INGRESS, Direction.EGRESS})
    return frozenset({Direction.INGRESS})


def _rules(spec: Cursor, field: str, peers_field: str, src: Source) -> tuple[Rule, ...] | None:
    items = spec[field].list(what=f"a list of {field} rules")
    if items is None:
        return () if not spec[field].written or spec[field].value is None else None
    out: list[Rule] = []
    ok = True
    for rule_index, rule_cur in enumerate(items):
        if rule_cur.map(what=f"an {field} rule (from/to and ports)") is None:
            ok = False
            continue
        rule_cur.unknown_fields((peers_field, "ports"), code="E012")
        peers = _peers(rule_cur[peers_field], src)
        ports = _ports(rule_cur["ports"])
        if peers is None or ports is None:
            ok = False
            continue
        origin_path = rule_cur.dotted
        for peer, peer_path in peers:
            for protocol, port_set in ports:
                origin = src.at(peer_path or origin_path, rule_cur.location)
                if field == "ingress":
                    rule = Rule(
                        Action.ALLOW,
                        protocol=protocol,
                        source=peer,
                        destination=EntityMatch(ports=port_set),
                        index=rule_index,
                        origin=origin,
                    )
                else:
                    rule = Rule(
                        Action.ALLOW,
                        protocol=protocol,
                        destination=_with_ports(peer, port_set),
                        index=rule_index,
                        origin=origin,
                    )
                out.append(rule)
    return tuple(out) if ok else None


def _with_ports(peer: EntityMatch, ports: PortSet | None) -> EntityMatch:
    return EntityMatch(
        nets=peer.nets,
        not_nets=peer.not_nets,
        selector=peer.selector,
        namespace_scope=peer.namespace_scope,
        namespace_selector=peer.namespace_selector,
        ports=ports,
    )


def _peers(cur: Cursor, src: Source) -> list[tuple[EntityMatch, str]] | None:
    """Each peer as one entity; an absent or empty list means every peer."""
    items = cur.list(what="a list of peers")
    if not items:
        return None if cur.present and items is None else [(EntityMatch(), "")]
    out: list[tuple[EntityMatch, str]] = []
    ok = True
    for peer in items:
        fields = peer.map(what="a peer (podSelector, namespaceSelector or ipBlock)")
        if fields is None:
            ok = False
            continue
        if peer.unknown_fields(("podSelector", "namespaceSelector", "ipBlock"), code="E012"):
            ok = False
            continue
        has_pod = peer["podSelector"].present
        has_ns = peer["namespaceSelector"].present
        has_ip = peer["ipBlock"].present
        if has_ip and (has_pod or has_ns):
            others = " and ".join(
                f for f, has in (("podSelector", has_pod), ("namespaceSelector", has_ns)) if has
            )
            peer.error(
                "ipBlock alone in a peer",
                "E020",
                got=f"ipBlock together with {others}",
                hint="write them as separate peers (separate list items)",
            )
            ok = False
            continue
        if not (has_ip or has_pod or has_ns):
            peer.error(
                "one of podSelector, namespaceSelector or ipBlock", "E020", got="an empty peer"
            )
            ok = False
            continue
        if has_ip:
            entity = _ip_block(peer["ipBlock"])
            if entity is None:
                ok = False
                continue
            out.append((entity, peer.dotted))
            continue
        pod_sel = read_label_selector(peer["podSelector"]) if has_pod else None
        ns_sel = read_label_selector(peer["namespaceSelector"]) if has_ns else None
        if (has_pod and pod_sel is None) or (has_ns and ns_sel is None):
            ok = False
            continue
        if has_ns:
            # namespaceSelector (alone or with podSelector in the same peer): pods matching the
            # pod selector (or all pods) in namespaces matching the namespace selector.
            entity = EntityMatch(
                selector=pod_sel if pod_sel is not None else All(),
                namespace_scope=NamespaceScope.SELECTED,
                namespace_selector=ns_sel,
            )
        else:
            entity = EntityMatch(selector=pod_sel, namespace_scope=NamespaceScope.OWN)
        out.append((entity, peer.dotted))
    return out if ok else None


def _ip_block(cur: Cursor) -> EntityMatch | None:
    if cur.map(what="an ipBlock (cidr and optional except)") is None:
        return None
    if cur.unknown_fields(("cidr", "except"), code="E012"):
        return None
    cidr = cur["cidr"].cidr()
    if cidr is None:
        return None
    excepts: list[Network] = []
    for item in cur["except"].list(what="a list of CIDRs") or []:
        net = item.cidr()
        if net is None:
            return None
        if net.version != cidr.version or not net.subnet_of(cidr) or net == cidr:  # type: ignore[arg-type]
            item.error(f"a CIDR strictly inside the ipBlock cidr {cidr}", "E021")
            return None
        excepts.append(net)
    return EntityMatch(nets=(cidr,), not_nets=tuple(excepts) if excepts else None)


def _ports(cur: Cursor) -> list[tuple[int | None, PortSet | None]] | None:
    """Ports grouped by protocol as Calico does: [(protocol number, ports or None = all)].

    An absent or empty list means every port of every protocol: [(None, None)].
    """
    items = cur.list(what="a list of ports")
    if not items:
        return None if cur.present and items is None else [(None, None)]
    by_proto: dict[Protocol, tuple[list[PortRange], set[str], bool]] = {}
    ok = True
    for item in items:
        if item.map(what="a port entry (protocol, port, endPort)") is None:
            ok = False
            continue
        if item.unknown_fields(("protocol", "port", "endPort"), code="E012"):
            ok = False
            continue
        proto_text = item["protocol"].str() or "TCP"
        protocol = PORT_PROTOCOLS.get(proto_text)
        if protocol is None:
            item["protocol"].error("one of TCP, UDP, SCTP", "E016", hint=protocol_hint(proto_text))
            ok = False
            continue
        ranges, names, any_port = by_proto.setdefault(protocol, ([], set(), False))
        port_cur, end_cur = item["port"], item["endPort"]
        port_value = port_cur.value if port_cur.present else None
        end = end_cur.int(lo=1, hi=65535, what="a port number 1-65535") if end_cur.present else None
        if end_cur.present and end is None:
            ok = False
            continue
        if port_value is None:
            if end is not None:
                end_cur.error("endPort only together with port", "E022", got="no port")
                ok = False
                continue
            by_proto[protocol] = (ranges, names, True)
            continue
        if isinstance(port_value, int) and not isinstance(port_value, bool):
            number = port_cur.int(lo=1, hi=65535, what="a port number 1-65535 or a port name")
            if number is None:
                ok = False
                continue
            if end is not None and end < number:
                end_cur.error(f"an endPort ≥ port {number}", "E022", got=f"the number {end}")
                ok = False
                continue
            ranges.append(PortRange(number, end if end is not None else number))
        elif isinstance(port_value, str):
            if port_value.isdigit():
                port_cur.error("a port number (unquoted) or a port name", "E012")
                ok = False
                continue
            if not is_port_name(port_value):
                port_cur.error("a port number 1-65535 or a port name (IANA_SVC_NAME)", "E012")
                ok = False
                continue
            if end is not None:
                end_cur.error(
                    "endPort only with a numeric port",
                    "E022",
                    got=f'the named port "{port_value}"',
                )
                ok = False
                continue
            names.add(port_value)
        else:
            port_cur.error("a port number 1-65535 or a port name", "E012")
            ok = False
    if not ok:
        return None
    out: list[tuple[int | None, PortSet | None]] = []
    for protocol, (ranges, names, any_port) in by_proto.items():
        out.append((protocol.number, None if any_port else PortSet.of(ranges, names)))
    return out
