"""The SIG-Network policy API → policy IR: ClusterNetworkPolicy (`policy.networking.k8s.io/
v1alpha2`), AdminNetworkPolicy and BaselineAdminNetworkPolicy (`v1alpha1`), and Nodes.

API types: kubernetes-sigs/network-policy-api `apis/v1alpha2/clusternetworkpolicy_types.go` and
`apis/v1alpha1/{admin,baseline_admin}networkpolicy_types.go`. Each policy lowers into a tier of
Calico's model, as Calico's converter does (libcalico-go `conversion/clusternetworkpolicy.go`):
the Admin tier is `kube-admin` (order 1000), the Baseline tier `kube-baseline` (order
10,000,000), both ending in Pass, so the plain API order Admin → NetworkPolicy → Baseline →
allow falls out of the tier order; `priority` is the policy's order in its tier. v1alpha1
policies sit in Calico 3.29–3.31's `adminnetworkpolicy` / `baselineadminnetworkpolicy` tiers.

A rule whose peers or protocols use a field kubezt does not know fails closed as the API says
(an Accept matches nothing; a Deny or Pass denies everything), with a warning. Peers that need
facts the manifests may not hold (`nodes` without Node objects, `domainNames`) never certainly
match, so an Accept never widens a verdict through them.

Codes: E080 spec, E081 subject, E082 rule, E083 peer, E084 protocol/port, E085 BANP name;
W080 fail-closed rule, W081 domain names, W082 unresolved nodes, W083 Antrea policy.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass

from kubezt.dialects._labels import is_port_name, read_label_selector, read_labels
from kubezt.dialects._reader import Cursor
from kubezt.dialects.context import ReadContext
from kubezt.errors import Diagnostic, Location, Severity
from kubezt.ir.policy import (
    ANP_TIER,
    BANP_TIER,
    KUBE_ADMIN_TIER,
    KUBE_BASELINE_TIER,
    Action,
    Dialect,
    Direction,
    EntityMatch,
    NamespaceScope,
    Network,
    Policy,
    Rule,
    Unresolved,
)
from kubezt.ir.ports import PortRange, PortSet, Protocol
from kubezt.ir.provenance import Source
from kubezt.ir.selectors import All, And, Equals, Has, In, NotEquals, Selector, conjunction
from kubezt.ir.topology import Labels, Node

GROUP = "policy.networking.k8s.io"
ORCHESTRATOR = Equals("projectcalico.org/orchestrator", "k8s")
"""Pods only (Calico adds it to every pod-peer selector so network sets never match)."""
NS_NAME = "kubernetes.io/metadata.name"
NOTHING: Selector = In(NS_NAME, frozenset())

_PROTOCOLS = {"tcp": Protocol.TCP, "udp": Protocol.UDP, "sctp": Protocol.SCTP}
_V1ALPHA1_PROTOCOLS = {"TCP": Protocol.TCP, "UDP": Protocol.UDP, "SCTP": Protocol.SCTP}

# A peer resolved once every document is read (namespace labels, nodes).
Deferred = Callable[[ReadContext, str | None], EntityMatch]


@dataclass(frozen=True, slots=True)
class _Peer:
    entity: EntityMatch | None = None
    deferred: Deferred | None = None
    relative: bool = False
    """Depends on the subject's namespace (v1alpha1 sameLabels/notSameLabels)."""
    path: str = ""


@dataclass(frozen=True, slots=True)
class _Rule:
    action: Action
    index: int
    name: str
    path: str
    peers: tuple[_Peer, ...]
    ports: tuple[tuple[int | None, PortSet | None], ...]
    fail_closed: bool
    location: Location


@dataclass(frozen=True, slots=True)
class _Spec:
    kind: str
    tier: str
    order: float | None
    selector: Selector | None
    namespace_selector: Selector
    ingress: tuple[_Rule, ...]
    egress: tuple[_Rule, ...]


# --- readers ------------------------------------------------------------------------------------


def read_cluster_network_policy(root: Cursor, meta: Cursor, src: Source, rc: ReadContext) -> None:
    if not _version(root, "v1alpha2"):
        return
    spec = root["spec"]
    if spec.map(required=True, what="a ClusterNetworkPolicy spec") is None:
        return
    spec.unknown_fields(("tier", "priority", "subject", "ingress", "egress"), code="E012")
    tier_text = spec["tier"].str(required=True)
    tier = {"Admin": KUBE_ADMIN_TIER, "Baseline": KUBE_BASELINE_TIER}.get(tier_text or "")
    if tier_text is not None and tier is None:
        spec["tier"].error('"Admin" or "Baseline"', "E080")
    priority = spec["priority"].int(required=True, lo=0, hi=1000, what="a priority 0-1000")
    actions = {"Accept": Action.ALLOW, "Deny": Action.DENY, "Pass": Action.PASS}
    _finish(root, spec, src, rc, tier, priority, actions, v1alpha2=True)


def read_admin_network_policy(root: Cursor, meta: Cursor, src: Source, rc: ReadContext) -> None:
    if not _version(root, "v1alpha1"):
        return
    spec = root["spec"]
    if spec.map(required=True, what="an AdminNetworkPolicy spec") is None:
        return
    spec.unknown_fields(("priority", "subject", "ingress", "egress"), code="E012")
    priority = spec["priority"].int(required=True, lo=0, hi=1000, what="a priority 0-1000")
    actions = {"Allow": Action.ALLOW, "Deny": Action.DENY, "Pass": Action.PASS}
    _finish(root, spec, src, rc, ANP_TIER, priority, actions, v1alpha2=False)


def read_baseline_admin_network_policy(
    root: Cursor, meta: Cursor, src: Source, rc: ReadContext
) -> None:
    if not _version(root, "v1alpha1"):
        return
    if src.name != "default":
        meta["name"].error(
            '"default" (the API admits one BaselineAdminNetworkPolicy, named default)',
            "E085",
            got=f'"{src.name}"',
        )
        return
    spec = root["spec"]
    if spec.map(required=True, what="a BaselineAdminNetworkPolicy spec") is None:
        return
    spec.unknown_fields(("subject", "ingress", "egress"), code="E012")
    actions = {"Allow": Action.ALLOW, "Deny": Action.DENY}
    _finish(root, spec, src, rc, BANP_TIER, None, actions, v1alpha2=False)


def read_node(root: Cursor, meta: Cursor, src: Source, rc: ReadContext) -> None:
    labels = read_labels(meta["labels"])
    ips: list[str] = []
    for address in root["status"]["addresses"].list() or []:
        kind = address["type"].str()
        text = address["address"].str()
        if kind in ("InternalIP", "ExternalIP") and text is not None:
            try:
                ipaddress.ip_address(text)
            except ValueError:
                address["address"].error("an IP address", "E014")
                continue
            ips.append(text)
    rc.nodes.append(Node(src.name, Labels(labels), tuple(dict.fromkeys(ips)), src))


def read_antrea_cluster_network_policy(
    root: Cursor, meta: Cursor, src: Source, rc: ReadContext
) -> None:
    root.warn(
        "Antrea's own ClusterNetworkPolicy (crd.antrea.io) is not modelled: its rules are "
        "ignored, so verdicts for the pods it selects may be wrong either way",
        "W083",
        hint="the SIG-Network ClusterNetworkPolicy is policy.networking.k8s.io/v1alpha2",
    )


READERS: dict[tuple[str, str], tuple[Callable[..., None], bool]] = {
    (GROUP, "ClusterNetworkPolicy"): (read_cluster_network_policy, False),
    (GROUP, "AdminNetworkPolicy"): (read_admin_network_policy, False),
    (GROUP, "BaselineAdminNetworkPolicy"): (read_baseline_admin_network_policy, False),
    ("crd.antrea.io", "ClusterNetworkPolicy"): (read_antrea_cluster_network_policy, False),
    ("", "Node"): (read_node, False),
}


def _unknown(cur: Cursor, allowed: tuple[str, ...]) -> bool:
    """Fields of `cur` outside `allowed`, each warned about as making its rule fail closed."""
    value = cur.value
    if not isinstance(value, dict):
        return False
    found = False
    for key in value:
        if key not in allowed:
            found = True
            cur[key].warn(
                f"field {key!r} is unknown to kubezt (a newer API version?); the rule fails closed",
                "W080",
            )
    return found


def _version(root: Cursor, version: str) -> bool:
    api_version = root["apiVersion"].value
    if api_version == f"{GROUP}/{version}":
        return True
    root["apiVersion"].error(f"{GROUP}/{version}", "E080", got=f'"{api_version}"')
    return False


# --- spec -----------------------------------------------------------------------------------


def _finish(
    root: Cursor,
    spec: Cursor,
    src: Source,
    rc: ReadContext,
    tier: str | None,
    priority: int | None,
    actions: dict[str, Action],
    v1alpha2: bool,
) -> None:
    subject = _subject(spec["subject"])
    ingress = _rules(spec, Direction.INGRESS, actions, v1alpha2)
    egress = _rules(spec, Direction.EGRESS, actions, v1alpha2)
    if root.ctx.failed or subject is None or ingress is None or egress is None or tier is None:
        return
    if src.kind != "BaselineAdminNetworkPolicy" and priority is None:
        return
    selector, ns_selector = subject
    parsed = _Spec(
        src.kind,
        tier,
        None if priority is None else float(priority),
        selector,
        ns_selector,
        ingress,
        egress,
    )
    rc.finishers.append(lambda done: _lower(parsed, src, done))


def _subject(cur: Cursor) -> tuple[Selector | None, Selector] | None:
    fields = cur.map(required=True, what="a subject (namespaces or pods)")
    if fields is None:
        return None
    if cur.unknown_fields(("namespaces", "pods"), code="E012"):
        return None
    if len(fields) != 1:
        cur.error("exactly one of namespaces or pods", "E081", got=f"{len(fields)} fields")
        return None
    if "namespaces" in fields:
        ns = read_label_selector(fields["namespaces"])
        return None if ns is None else (None, ns)
    pods = fields["pods"]
    if pods.map(required=True, what="pods (namespaceSelector and podSelector)") is None:
        return None
    if pods.unknown_fields(("namespaceSelector", "podSelector"), code="E012"):
        return None
    ns_sel = (
        read_label_selector(pods["namespaceSelector"])
        if pods["namespaceSelector"].present
        else All()
    )
    pod_cur = pods["podSelector"]
    if not pod_cur.present:
        pod_cur.error("a label selector ({} selects every pod)", "E081")
        return None
    pod_sel = read_label_selector(pod_cur)
    if ns_sel is None or pod_sel is None:
        return None
    return pod_sel, ns_sel


# --- rules ----------------------------------------------------------------------------------


def _rules(
    spec: Cursor, direction: Direction, actions: dict[str, Action], v1alpha2: bool
) -> tuple[_Rule, ...] | None:
    field = "ingress" if direction is Direction.INGRESS else "egress"
    items = spec[field].list(what=f"a list of {field} rules")
    if items is None:
        return None if spec[field].present else ()
    peers_field = "from" if direction is Direction.INGRESS else "to"
    ports_field = "protocols" if v1alpha2 else "ports"
    out: list[_Rule] = []
    ok = True
    for index, cur in enumerate(items):
        if cur.map(what=f"an {field} rule (name, action, {peers_field}, {ports_field})") is None:
            ok = False
            continue
        unknown = _unknown(cur, ("name", "action", peers_field, ports_field))
        name = cur["name"].str() or ""
        action_text = cur["action"].str(required=True)
        action = actions.get(action_text or "")
        if action_text is not None and action is None:
            cur["action"].error(" or ".join(f'"{a}"' for a in actions), "E082")
        peers = _peers(cur[peers_field], direction, v1alpha2)
        ports = _protocols(cur[ports_field]) if v1alpha2 else _v1alpha1_ports(cur[ports_field])
        if action is None or peers is None or ports is None:
            ok = False
            continue
        fail_closed = unknown or any(p is _UNKNOWN for p in peers) or ports is _UNKNOWN_PORTS
        if not fail_closed:
            ok = _check_egress_named_ports(cur, peers, ports) and ok
        if peers and not fail_closed:
            for peer in peers:
                if peer.entity is not None and peer.entity.unresolved is Unresolved.DOMAINS:
                    if action is not Action.ALLOW:
                        # The API admits domainNames only in Accept rules.
                        fail_closed = True
                    else:
                        cur[peers_field].warn(
                            "domainNames are resolved by DNS at run time: kubezt cannot prove "
                            "which addresses they admit, so this Accept matches nothing here",
                            "W081",
                        )
        if fail_closed:
            effect = "matches nothing" if action is Action.ALLOW else "denies all traffic"
            cur.warn(
                f"the rule uses fields kubezt (or this API version) does not know; as the API "
                f"requires, it fails closed: this {action_text} rule {effect}",
                "W080",
            )
        out.append(
            _Rule(
                action,
                index,
                name,
                cur.dotted,
                tuple(p for p in peers if p is not _UNKNOWN),
                tuple(ports) if ports is not _UNKNOWN_PORTS else (),
                fail_closed,
                cur.location,
            )
        )
    return tuple(out) if ok else None


_UNKNOWN = _Peer()
_UNKNOWN_PORTS: list[tuple[int | None, PortSet | None]] = []


def _check_egress_named_ports(
    cur: Cursor, peers: list[_Peer], ports: list[tuple[int | None, PortSet | None]]
) -> bool:
    named = any(p is not None and p.names for _, p in ports)
    addresses = any(
        peer.deferred is not None
        or (peer.entity is not None and (peer.entity.nets or peer.entity.unresolved))
        for peer in peers
        if not peer.relative
    )
    if named and addresses:
        cur.error(
            "no named port in a rule with networks, nodes or domainNames peers",
            "E084",
            got="destinationNamedPort with an address peer",
        )
        return False
    return True


def _peers(cur: Cursor, direction: Direction, v1alpha2: bool) -> list[_Peer] | None:
    items = cur.list(required=True, what="a non-empty list of peers")
    if items is None:
        return None
    if not items:
        cur.error("a non-empty list of peers", "E083", got="an empty list")
        return None
    allowed: tuple[str, ...] = ("namespaces", "pods")
    if direction is Direction.EGRESS:
        allowed += ("networks", "nodes", "domainNames")
    out: list[_Peer] = []
    ok = True
    for item in items:
        fields = item.map(what=f"a peer ({', '.join(allowed)})")
        if fields is None:
            ok = False
            continue
        known = [k for k in fields if k in allowed]
        if len(fields) != len(known) or not known:
            # An unknown peer type: a newer API than kubezt knows (fail closed).
            _unknown(item, allowed)
            out.append(_UNKNOWN)
            continue
        if len(known) > 1:
            item.error(f"exactly one of {', '.join(allowed)}", "E083", got=", ".join(known))
            ok = False
            continue
        peer = _peer(item, known[0], v1alpha2)
        if peer is None:
            ok = False
            continue
        out.append(peer)
    return out if ok else None


def _peer(item: Cursor, kind: str, v1alpha2: bool) -> _Peer | None:
    cur = item[kind]
    path = item.dotted
    if kind == "namespaces":
        if not v1alpha2 and _is_old_namespaces(cur):
            return _old_namespaces(cur, All(), path)
        ns = read_label_selector(cur)
        return None if ns is None else _Peer(_pods(ORCHESTRATOR, ns), path=path)
    if kind == "pods":
        if cur.map(required=True, what="pods (namespaceSelector and podSelector)") is None:
            return None
        if not v1alpha2 and cur["namespaces"].present:
            if cur.unknown_fields(("namespaces", "podSelector"), code="E012"):
                return None
            pod_sel = read_label_selector(cur["podSelector"])
            if pod_sel is None:
                return None
            return _old_namespaces(cur["namespaces"], pod_sel, path)
        if cur.unknown_fields(("namespaceSelector", "podSelector"), code="E012"):
            return None
        ns_sel = (
            read_label_selector(cur["namespaceSelector"])
            if cur["namespaceSelector"].present
            else All()
        )
        pod_sel = read_label_selector(cur["podSelector"]) if cur["podSelector"].present else All()
        if ns_sel is None or pod_sel is None:
            return None
        return _Peer(_pods(conjunction(ORCHESTRATOR, pod_sel), ns_sel), path=path)
    if kind == "networks":
        items = cur.list(required=True, what="a list of CIDRs")
        if not items:
            if items is not None:
                cur.error("a non-empty list of CIDRs", "E083", got="an empty list")
            return None
        nets: list[Network] = []
        for net_cur in items:
            net = net_cur.cidr()
            if net is None:
                return None
            nets.append(net)
        return _Peer(EntityMatch(nets=tuple(dict.fromkeys(nets))), path=path)
    if kind == "nodes":
        selector = read_label_selector(cur)
        if selector is None:
            return None
        where = cur

        def resolve(rc: ReadContext, subject_ns: str | None) -> EntityMatch:
            return _nodes(rc, selector, where)

        return _Peer(deferred=resolve, path=path)
    # domainNames
    names = cur.str_list(what="a list of domain names")
    if not names:
        if names is not None:
            cur.error("a non-empty list of domain names", "E083", got="an empty list")
        return None
    return _Peer(EntityMatch(unresolved=Unresolved.DOMAINS), path=path)


def _pods(selector: Selector, namespace_selector: Selector) -> EntityMatch:
    return EntityMatch(
        selector=selector,
        namespace_scope=NamespaceScope.SELECTED,
        namespace_selector=namespace_selector,
    )


def _nodes(rc: ReadContext, selector: Selector, cur: Cursor) -> EntityMatch:
    """The IPs of the nodes `selector` matches; nodes without known addresses (or no Node
    objects at all) make the peer unresolved."""
    matching = [n for n in rc.nodes if selector.matches(n.labels)]
    nets = tuple(ipaddress.ip_network(ip) for n in matching for ip in n.ips)
    unknown = not rc.nodes or any(not n.ips for n in matching)
    if unknown:
        rc.sink.add(
            Diagnostic(
                Severity.WARNING,
                "W082",
                "the input has no Node objects with addresses for this nodes peer: it never "
                "matches for an Accept, and possibly matches any node for a Deny or Pass",
                cur.location,
                cur.ctx.obj,
                cur.dotted,
                hint="add the cluster's Nodes (kubectl get nodes -o yaml) to the input",
            )
        )
    return EntityMatch(nets=nets or None, unresolved=Unresolved.NODES if unknown else None)


# --- v1alpha1 peers as policy-assistant vendored them (namespaces.sameLabels) ----------------


def _is_old_namespaces(cur: Cursor) -> bool:
    value = cur.value
    return isinstance(value, dict) and any(
        k in value for k in ("namespaceSelector", "sameLabels", "notSameLabels")
    )


def _old_namespaces(cur: Cursor, pod_selector: Selector, path: str) -> _Peer | None:
    """`namespaces: {namespaceSelector | sameLabels | notSameLabels}` (v1alpha1 up to v0.1.3):
    sameLabels/notSameLabels compare each namespace with the subject's own namespace."""
    fields = cur.map(what="namespaces (namespaceSelector, sameLabels or notSameLabels)")
    if fields is None:
        return None
    if cur.unknown_fields(("namespaceSelector", "sameLabels", "notSameLabels"), code="E012"):
        return None
    if len(fields) != 1:
        cur.error(
            "exactly one of namespaceSelector, sameLabels, notSameLabels",
            "E083",
            got=", ".join(fields),
        )
        return None
    selector = conjunction(ORCHESTRATOR, pod_selector)
    if "namespaceSelector" in fields:
        ns = read_label_selector(fields["namespaceSelector"])
        return None if ns is None else _Peer(_pods(selector, ns), path=path)
    same = "sameLabels" in fields
    keys = fields["sameLabels" if same else "notSameLabels"].str_list()
    if keys is None:
        return None

    def resolve(rc: ReadContext, subject_ns: str | None) -> EntityMatch:
        labels = _namespace_labels(rc).get(subject_ns or "", {})
        terms: list[Selector] = []
        for key in keys:
            if same:
                # the subject's namespace must carry the label too, with the same value
                terms.append(Equals(key, labels[key]) if key in labels else NOTHING)
            else:
                terms.append(Has(key))
                if key in labels:
                    terms.append(NotEquals(key, labels[key]))
        return _pods(selector, conjunction(*terms) if terms else All())

    return _Peer(deferred=resolve, relative=True, path=path)


def _namespace_labels(rc: ReadContext) -> dict[str, dict[str, str]]:
    out = {ns.name: dict(ns.labels) for ns in rc.namespaces}
    for name in {w.namespace for w in rc.workloads} - out.keys():
        out[name] = {NS_NAME: name}
    return out


# --- protocols and ports --------------------------------------------------------------------


def _protocols(cur: Cursor) -> list[tuple[int | None, PortSet | None]] | None:
    """v1alpha2 `protocols` grouped by protocol: [(protocol number or None, ports or None)]."""
    items = cur.list(what="a list of protocols")
    if items is None:
        return None if cur.present else [(None, None)]
    if not items:
        cur.error("a non-empty list of protocols", "E084", got="an empty list")
        return None
    ranges: dict[Protocol, list[PortRange]] = {}
    names: set[str] = set()
    for item in items:
        fields = item.map(what="a protocol (tcp, udp, sctp or destinationNamedPort)")
        if fields is None:
            return None
        known = [k for k in fields if k in (*_PROTOCOLS, "destinationNamedPort")]
        if len(known) != len(fields) or not known:
            _unknown(item, (*_PROTOCOLS, "destinationNamedPort"))
            return _UNKNOWN_PORTS
        if len(known) > 1:
            item.error(
                "exactly one of tcp, udp, sctp, destinationNamedPort", "E084", got=", ".join(known)
            )
            return None
        key = known[0]
        if key == "destinationNamedPort":
            name = fields[key].str(required=True)
            if name is None or not is_port_name(name):
                fields[key].error("a port name (IANA_SVC_NAME)", "E084")
                return None
            names.add(name)
            continue
        proto = _PROTOCOLS[key]
        body = fields[key]
        if body.map(required=True, what=f"{key} (destinationPort)") is None:
            return None
        if _unknown(body, ("destinationPort",)):
            return _UNKNOWN_PORTS
        port_cur = body["destinationPort"]
        if not port_cur.present:
            body.error("destinationPort", "E084", got="an empty mapping")
            return None
        port = _port(port_cur)
        if port is _UNKNOWN_RANGE:
            return _UNKNOWN_PORTS
        if port is None:
            return None
        ranges.setdefault(proto, []).append(port)
    out: list[tuple[int | None, PortSet | None]] = [
        (proto.number, PortSet.of(rs)) for proto, rs in ranges.items()
    ]
    if names:
        out.append((None, PortSet.of([], frozenset(names))))
    return out


_UNKNOWN_RANGE = PortRange(0, 0)


def _port(cur: Cursor) -> PortRange | None:
    fields = cur.map(what="a port (number or range)")
    if fields is None:
        return None
    if _unknown(cur, ("number", "range")) or not fields:
        return _UNKNOWN_RANGE
    if len(fields) != 1:
        cur.error("exactly one of number, range", "E084", got="both")
        return None
    if "number" in fields:
        number = fields["number"].int(required=True, lo=1, hi=65535, what="a port 1-65535")
        return None if number is None else PortRange(number, number)
    rng = fields["range"]
    if rng.map(required=True, what="a range (start, end)") is None:
        return None
    if rng.unknown_fields(("start", "end"), code="E012"):
        return None
    start = rng["start"].int(required=True, lo=1, hi=65535, what="a port 1-65535")
    end = rng["end"].int(required=True, lo=1, hi=65535, what="a port 1-65535")
    if start is None or end is None:
        return None
    if start >= end:
        rng["end"].error(f"an end greater than start {start}", "E084", got=str(end))
        return None
    return PortRange(start, end)


def _v1alpha1_ports(cur: Cursor) -> list[tuple[int | None, PortSet | None]] | None:
    """v1alpha1 `ports`: portNumber {protocol, port}, namedPort, portRange {protocol, start,
    end}; a missing protocol is TCP."""
    items = cur.list(what="a list of ports")
    if items is None:
        return None if cur.present else [(None, None)]
    ranges: dict[Protocol, list[PortRange]] = {}
    names: set[str] = set()
    allowed = ("portNumber", "namedPort", "portRange")
    for item in items:
        fields = item.map(what="a port (portNumber, namedPort or portRange)")
        if fields is None:
            return None
        known = [k for k in fields if k in allowed]
        if len(known) != len(fields) or not known:
            _unknown(item, allowed)
            return _UNKNOWN_PORTS
        if len(known) > 1:
            item.error(
                "exactly one of portNumber, namedPort, portRange", "E084", got=", ".join(known)
            )
            return None
        key = known[0]
        body = fields[key]
        if key == "namedPort":
            name = body.str(required=True)
            if name is None or not is_port_name(name):
                body.error("a port name (IANA_SVC_NAME)", "E084")
                return None
            names.add(name)
            continue
        if body.map(required=True, what=key) is None:
            return None
        field_names = ("protocol", "port") if key == "portNumber" else ("protocol", "start", "end")
        if body.unknown_fields(field_names, code="E012"):
            return None
        proto_text = body["protocol"].str() or "TCP"
        proto = _V1ALPHA1_PROTOCOLS.get(proto_text)
        if proto is None:
            body["protocol"].error("one of TCP, UDP, SCTP", "E084")
            return None
        if key == "portNumber":
            number = body["port"].int(required=True, lo=1, hi=65535, what="a port 1-65535")
            if number is None:
                return None
            ranges.setdefault(proto, []).append(PortRange(number, number))
        else:
            start = body["start"].int(required=True, lo=1, hi=65535, what="a port 1-65535")
            end = body["end"].int(required=True, lo=1, hi=65535, what="a port 1-65535")
            if start is None or end is None:
                return None
            if start >= end:
                body["end"].error(f"an end greater than start {start}", "E084", got=str(end))
                return None
            ranges.setdefault(proto, []).append(PortRange(start, end))
    out: list[tuple[int | None, PortSet | None]] = [
        (proto.number, PortSet.of(rs)) for proto, rs in ranges.items()
    ]
    if names:
        out.append((None, PortSet.of([], frozenset(names))))
    return out


# --- lowering -------------------------------------------------------------------------------


def _lower(spec: _Spec, src: Source, rc: ReadContext) -> None:
    """Append the policy, or one copy per subject namespace when a peer depends on it."""
    relative = any(p.relative for r in (*spec.ingress, *spec.egress) for p in r.peers)
    if not relative:
        rc.policies.append(_policy(spec, src, rc, None, spec.namespace_selector))
        return
    for name, labels in sorted(_namespace_labels(rc).items()):
        if spec.namespace_selector.matches(labels):
            only = And((spec.namespace_selector, Equals(NS_NAME, name)))
            rc.policies.append(_policy(spec, src, rc, name, only))


def _policy(
    spec: _Spec, src: Source, rc: ReadContext, subject_ns: str | None, ns_selector: Selector
) -> Policy:
    ingress = _lower_rules(spec.ingress, Direction.INGRESS, src, rc, subject_ns)
    egress = _lower_rules(spec.egress, Direction.EGRESS, src, rc, subject_ns)
    types = frozenset(
        d for d, rules in ((Direction.INGRESS, ingress), (Direction.EGRESS, egress)) if rules
    )
    return Policy(
        dialect=Dialect.POLICY_API,
        kind=spec.kind,
        name=src.name,
        namespace=None,
        tier=spec.tier,
        order=spec.order,
        selector=conjunction(ORCHESTRATOR, spec.selector) if spec.selector else ORCHESTRATOR,
        namespace_selector=ns_selector,
        types=types,
        ingress=ingress,
        egress=egress,
        source=src,
    )


def _lower_rules(
    rules: tuple[_Rule, ...],
    direction: Direction,
    src: Source,
    rc: ReadContext,
    subject_ns: str | None,
) -> tuple[Rule, ...]:
    out: list[Rule] = []
    for rule in rules:
        origin = src.at(rule.path, rule.location)
        if rule.fail_closed:
            if rule.action is not Action.ALLOW:
                out.append(Rule(Action.DENY, index=rule.index, origin=origin, name=rule.name))
            continue
        for peer in rule.peers:
            entity = peer.entity
            if peer.deferred is not None:
                entity = peer.deferred(rc, subject_ns)
            assert entity is not None
            peer_origin = src.at(peer.path, rule.location)
            for protocol, ports in rule.ports:
                if direction is Direction.INGRESS:
                    lowered = Rule(
                        rule.action,
                        protocol=protocol,
                        source=entity,
                        destination=EntityMatch(ports=ports),
                        index=rule.index,
                        origin=peer_origin,
                        name=rule.name,
                    )
                else:
                    lowered = Rule(
                        rule.action,
                        protocol=protocol,
                        destination=_with_ports(entity, ports),
                        index=rule.index,
                        origin=peer_origin,
                        name=rule.name,
                    )
                out.append(lowered)
    return tuple(out)


def _with_ports(entity: EntityMatch, ports: PortSet | None) -> EntityMatch:
    return EntityMatch(
        nets=entity.nets,
        selector=entity.selector,
        namespace_scope=entity.namespace_scope,
        namespace_selector=entity.namespace_selector,
        ports=ports,
        unresolved=entity.unresolved,
    )
