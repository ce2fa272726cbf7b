"""`verify`: does a cluster (manifests plus workloads) allow exactly what a zero-trust intent
grants? Every connection the engine finds allowed that the intent does not grant, and every
granted one it finds blocked, at L3/L4 and per HTTP request, is a `Difference`.

The universe compared is every ordered pair of workloads with at least one end in the intent's
namespaces, on every port cell of the destination (`engine.cells`: its declared ports, every
port the policies or the intent name, and the ports nobody names), as `engine.reach.evaluate`
computes it; per-request differences are settled with `engine.connection.explain_connection`
on concrete requests derived from both the intent and the engine's representative requests.
Connections between the in-scope workloads and every outside address cell (cut by the CIDRs of
the policies and of the intent's egress entries and exceptions), both ways and on every port
cell, are compared with what the egress entries and exceptions grant. Platform flows the intent
grants implicitly (DNS; istiod for sidecars; the ingress gateway and Prometheus where declared)
count as granted. Must not print or render.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from dataclasses import dataclass, field
from enum import StrEnum

from kubezt.engine.authz import path_match, string_match
from kubezt.engine.cells import CELL_PROTOCOLS, PortCell, PortCuts, port_cells, port_cuts
from kubezt.engine.connection import End, EndKind, explain_connection, is_single_pod
from kubezt.engine.index import iter_bits
from kubezt.engine.mesh import AMBIENT_PROBE_NETWORKS
from kubezt.engine.outside import OutsideDirection, evaluate_outside, outside_cells
from kubezt.engine.reach import SYNTHETIC_ANNOTATION, Reachability, evaluate
from kubezt.engine.requests import (
    NONE,
    AllRequests,
    NoRequests,
    RequestSet,
    RequestSpace,
    Some,
    intent_space,
)
from kubezt.ir.intent import Grant, HttpMatch, Identity, Intent, Mode, Service
from kubezt.ir.model import Model
from kubezt.ir.ports import Protocol
from kubezt.ir.requests import HttpRequest, ServiceAddress
from kubezt.ir.topology import Labels, Workload


class DifferenceKind(StrEnum):
    NOT_GRANTED = "allowed-not-granted"
    """The cluster allows it; the intent does not grant it (over-permissive)."""
    BLOCKED = "granted-blocked"
    """The intent grants it; the cluster blocks it."""
    IDENTITY = "identity-mismatch"
    """A workload of a service runs under another ServiceAccount than the intent says."""


@dataclass(frozen=True, slots=True)
class Difference:
    kind: DifferenceKind
    src: str
    """A workload id, or `external:<ip>`."""
    dst: str
    port: int = 0
    protocol: str = "TCP"
    requests: tuple[HttpRequest, ...] | None = None
    """None: the whole connection; otherwise the concrete requests that differ."""
    entry: str = ""
    """For a blocked flow: the intent entry that grants it."""
    denied_by: str = ""
    """For a blocked flow: the layer that denied it (from the explanation)."""
    detail: str = ""
    cell: PortCell | None = None
    """The destination ports the difference holds for (`port` is its lowest); None: `port`."""

    @property
    def port_label(self) -> str:
        """`80`, `8000-8080`, or `other` (the ports no input names)."""
        return self.cell.label if self.cell is not None else str(self.port)

    @property
    def sort_key(self) -> tuple[str, str, str, int, str]:
        return (self.kind.value, self.src, self.dst, self.port, self.protocol)


@dataclass(frozen=True, slots=True)
class VerifyResult:
    intent: Intent
    differences: tuple[Difference, ...]
    checked: int
    """Connections (and probes) compared."""
    notes: tuple[str, ...] = ()
    """What could not be checked, and why."""

    @property
    def ok(self) -> bool:
        return not self.differences


@dataclass(frozen=True, slots=True)
class Expectation:
    """What the intent grants on one connection: the entries, and the HTTP requests (None:
    every request)."""

    entries: tuple[str, ...]
    http: tuple[HttpMatch, ...] | None = None


def verify(intent: Intent, model: Model, mode: Mode | None = None) -> VerifyResult:
    """Compare the cluster `model` with `intent` (compiled for `mode`, default the intent's).

    The intent's trust domain and root namespace are the mesh's: they replace the model's.
    """
    if mode is not None:
        intent = dataclasses.replace(intent, mode=mode)
    config = dataclasses.replace(
        model.mesh_config,
        root_namespace=intent.root_namespace,
        trust_domain=intent.trust_domain,
    )
    return _Verifier(intent, dataclasses.replace(model, mesh_config=config)).run()


@dataclass
class _Verifier:
    intent: Intent
    model: Model
    differences: list[Difference] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    checked: int = 0
    by_id: dict[str, Workload] = field(default_factory=dict)
    """Every real workload (not the synthetic waypoint pods) by id."""
    in_scope: set[str] = field(default_factory=set)
    """Ids of the workloads in the intent's namespaces."""
    _service_cache: dict[str, list[Service]] = field(default_factory=dict)

    def run(self) -> VerifyResult:
        workloads = [
            w for w in self.model.topology.workloads if SYNTHETIC_ANNOTATION not in w.annotations
        ]
        self.by_id = {w.id: w for w in workloads}
        scope = set(self.intent.namespaces)
        self.in_scope = {w.id for w in workloads if w.namespace in scope}
        self._identities(workloads)
        self._matrix()
        self._external()
        if self.intent.platform.kube_api_server.callers:
            self.notes.append(
                "platform.kubeApiServer: not checked (the API server is not a workload in the "
                "input)"
            )
        unmatched = sorted(
            w.id for w in workloads if w.id in self.in_scope and not self._services_of(w)
        )
        if unmatched:
            self.notes.append(
                "workloads in scope that no service of the intent selects (granted nothing): "
                + ", ".join(unmatched)
            )
        diffs = sorted(self.differences, key=lambda d: d.sort_key)
        return VerifyResult(self.intent, tuple(diffs), self.checked, tuple(self.notes))

    # --- who is who ---------------------------------------------------------------------------

    def _services_of(self, w: Workload) -> list[Service]:
        found = self._service_cache.get(w.id)
        if found is None:
            found = [
                s
                for s in self.intent.services
                if s.namespace == w.namespace and s.selector.matches(w.labels)
            ]
            self._service_cache[w.id] = found
        return found

    def _identities(self, workloads: list[Workload]) -> None:
        for w in workloads:
            for s in self._services_of(w):
                if w.service_account != s.service_account:
                    self.differences.append(
                        Difference(
                            DifferenceKind.IDENTITY,
                            w.id,
                            str(s.ref),
                            entry=s.entry,
                            detail=f"runs as ServiceAccount {w.service_account!r}, the intent "
                            f"says {s.service_account!r}",
                        )
                    )

    # --- what the intent grants ------------------------------------------------------------

    def expect(
        self, src: Workload, dst: Workload, port: int, protocol: Protocol
    ) -> Expectation | None:
        intent = self.intent
        src_id = Identity(src.namespace, src.service_account)
        entries: list[str] = []
        http: list[HttpMatch] = []
        everything = False
        if dst.id in self.in_scope:
            for service in self._services_of(dst):
                declared = service.port(port, protocol)
                if declared is None:
                    continue
                for grant in intent.grants_to(service.ref):
                    if not self._caller_matches(grant, src_id) or declared not in grant.ports:
                        continue
                    entries.append(grant.entry)
                    if grant.http is None:
                        everything = True
                    else:
                        http.append(grant.http)
                metrics = intent.platform.metrics
                if metrics is not None and declared.metrics and metrics.scraper == src_id:
                    entries.append("platform/metrics")
                    everything = True
            metrics = intent.platform.metrics
            if (
                metrics is not None
                and metrics.scraper == src_id
                and intent.mode is Mode.SIDECAR
                and protocol is Protocol.TCP
                and port in metrics.proxy_ports
            ):
                entries.append("platform/metrics")
                everything = True
        elif src.id in self.in_scope:
            dns = intent.platform.dns
            if (
                dns is not None
                and dst.namespace == dns.namespace
                and dns.selector.matches(dst.labels)
                and port == dns.port
                and protocol in (Protocol.UDP, Protocol.TCP)
            ):
                entries.append("platform/dns")
                everything = True
            istiod = intent.platform.istiod
            if (
                intent.mode is Mode.SIDECAR
                and dst.namespace == istiod.namespace
                and istiod.selector.matches(dst.labels)
                and port == istiod.port
                and protocol is Protocol.TCP
            ):
                entries.append("platform/istiod")
                everything = True
        if not entries:
            return None
        return Expectation(tuple(dict.fromkeys(entries)), None if everything else tuple(http))

    def _caller_matches(self, grant: Grant, identity: Identity) -> bool:
        if grant.from_gateway:
            return identity == self.intent.gateway
        return grant.caller == identity

    # --- workload pairs ----------------------------------------------------------------------

    def _cuts(self) -> PortCuts:
        """The model's port cuts plus every port the intent names."""
        return port_cuts(self.model).with_ports(intent_ports(self.intent))

    def _matrix(self) -> None:
        """Every planned (destination, port) against every source that may be checked there,
        compared per pair of classes: the intent's expectation depends on a source only
        through its namespace and service account and on a destination through its namespace
        and labels, and the cluster's answer on their classes, all of which a class fixes.
        Pairs are expanded only where the two differ (what is reported); the others are
        counted."""
        # the intent's ports are cuts of the port space: every destination is evaluated on them
        result = evaluate(self.model, cuts=self._cuts())
        results = [result]
        planned: set[tuple[str, int, str]] = set()
        self._collect(result, planned)
        # a workload's group: its class in every result
        class_of: list[dict[str, int]] = []
        for r in results:
            ids = {}
            for c in r.classes:
                for wi in c.members:
                    ids[r.model.topology.workloads[wi].id] = c.index
            class_of.append(ids)
        # (its class in every result, and what the intent looks at: namespace, account, labels)
        Group = tuple[tuple[int, ...], str, str, Labels]
        group: dict[str, Group] = {
            w.id: (tuple(ids[w.id] for ids in class_of), w.namespace, w.service_account, w.labels)
            for w in self.by_id.values()
        }
        members: dict[Group, list[Workload]] = {}
        scoped_members: dict[Group, list[Workload]] = {}
        for w in self.by_id.values():
            members.setdefault(group[w.id], []).append(w)
            if w.id in self.in_scope:
                scoped_members.setdefault(group[w.id], []).append(w)
        targets: dict[tuple[Group, int, str], list[Workload]] = {}
        for dst_id, port, proto in sorted(planned):
            dst = self.by_id.get(dst_id)
            if dst is not None:
                targets.setdefault((group[dst_id], port, proto), []).append(dst)
        answers: dict[tuple[tuple[int, ...], tuple[int, ...], int, str], RequestSet] = {}
        for (dst_group, port, proto), dsts in targets.items():
            protocol = Protocol(proto)
            cell = result.port_cell(dsts[0].id, port, proto)
            sources = members if dsts[0].id in self.in_scope else scoped_members
            for src_group, srcs in sources.items():
                expected = self.expect(srcs[0], dsts[0], port, protocol)
                key = (src_group[0], dst_group[0], port, proto)
                got = answers.get(key)
                if got is None:
                    got = answers[key] = _answer(results, *key)
                pairs = len(srcs) * len(dsts)
                if src_group == dst_group:  # a single pod and itself are not checked
                    pairs -= sum(1 for d in dsts if is_single_pod(d))
                self.checked += pairs
                if isinstance(got, NoRequests) and expected is None:
                    continue
                if expected is not None and expected.http is None and isinstance(got, AllRequests):
                    continue
                for dst in dsts:
                    for src in srcs:
                        if src.id == dst.id and is_single_pod(src):
                            continue
                        self._compare(src, dst, port, protocol, expected, got, cell)

    def _collect(self, result: Reachability, planned: set[tuple[str, int, str]]) -> None:
        workloads = result.model.topology.workloads
        for key, bits in result.plan.items():
            for ci in iter_bits(bits):
                for wi in result.classes[ci].members:
                    planned.add((workloads[wi].id, key.port, key.protocol.value))

    def _compare(
        self,
        src: Workload,
        dst: Workload,
        port: int,
        protocol: Protocol,
        expected: Expectation | None,
        got: RequestSet,
        cell: PortCell | None = None,
    ) -> None:
        """Record how the cluster's answer for one connection differs from the intent's."""
        if isinstance(got, NoRequests):
            if expected is not None:
                self._blocked(src, dst, port, protocol, expected)
            return
        if expected is None:
            self.differences.append(
                Difference(
                    DifferenceKind.NOT_GRANTED,
                    src.id,
                    dst.id,
                    port,
                    protocol.value,
                    got.summary if isinstance(got, Some) else None,
                    detail="no entry of the intent grants this connection",
                    cell=None if cell is None or cell.is_single else cell,
                )
            )
            return
        if expected.http is None and isinstance(got, AllRequests):
            return
        self._requests(src, dst, port, protocol, expected, got if isinstance(got, Some) else None)

    def _blocked(
        self, src: Workload, dst: Workload, port: int, protocol: Protocol, expected: Expectation
    ) -> None:
        verdict = explain_connection(
            self.model, _end(src), _end(dst), port, protocol, service=self._address(dst, port)
        )
        self.differences.append(
            Difference(
                DifferenceKind.BLOCKED,
                src.id,
                dst.id,
                port,
                protocol.value,
                entry=", ".join(expected.entries),
                denied_by=verdict.denied_by.value if verdict.denied_by else "",
                detail="granted by the intent, denied by the cluster",
            )
        )

    def _address(self, dst: Workload, port: int) -> ServiceAddress | None:
        """A Service the destination is reached through on `port` (else its pod address)."""
        for svc in self.model.topology.services_selecting(dst):
            for sp in svc.ports:
                target = sp.target_on(dst)
                if target == port:
                    return ServiceAddress(svc.namespace, svc.name, sp.port)
        return None

    def _routes(self, dst: Workload, port: int, protocol: Protocol) -> list[ServiceAddress | None]:
        out: list[ServiceAddress | None] = [None]
        for svc in self.model.topology.services_selecting(dst):
            for sp in svc.ports:
                target = sp.target_on(dst)
                if target == port and sp.protocol is protocol:
                    out.append(ServiceAddress(svc.namespace, svc.name, sp.port))
                    break
        return out

    def _requests(
        self,
        src: Workload,
        dst: Workload,
        port: int,
        protocol: Protocol,
        expected: Expectation,
        engine: Some | None,
    ) -> None:
        """Settle an HTTP-level comparison on one witness request per cell of the patterns of
        both the intent's grants and the cluster's policies."""
        grants = expected.http or ()
        space: RequestSpace = intent_space(
            (m for g in grants for m in g.methods),
            (p for g in grants for p in g.paths),
            (h for g in grants for h in g.hosts),
        )
        if engine is not None:
            space = space.merged(engine.space)
        probes = space.witnesses()
        routes = self._routes(dst, port, protocol)
        too_many: list[HttpRequest] = []
        blocked: list[HttpRequest] = []
        for request in probes:
            self.checked += 1
            granted = expected.http is None or any(_grants(m, request) for m in expected.http)
            allowed = any(
                explain_connection(
                    self.model, _end(src), _end(dst), port, protocol, service=route, http=request
                ).allowed
                for route in routes
            )
            if allowed and not granted:
                too_many.append(request)
            elif granted and not allowed:
                blocked.append(request)
        if too_many:
            self.differences.append(
                Difference(
                    DifferenceKind.NOT_GRANTED,
                    src.id,
                    dst.id,
                    port,
                    protocol.value,
                    tuple(too_many),
                    detail="requests the intent does not grant are allowed",
                )
            )
        if blocked:
            self.differences.append(
                Difference(
                    DifferenceKind.BLOCKED,
                    src.id,
                    dst.id,
                    port,
                    protocol.value,
                    tuple(blocked),
                    entry=", ".join(expected.entries),
                    detail="requests the intent grants are denied",
                )
            )

    # --- outside the cluster ---------------------------------------------------------------

    def _external(self) -> None:
        intent = self.intent
        nets = tuple(n for e in intent.egress for n in e.networks)
        nets += tuple(n for x in intent.exceptions for n in x.networks)
        cells = outside_cells(self.model, nets)
        cuts = self._cuts()
        outside = evaluate_outside(self.model, cells, cuts, frozenset(self.in_scope))
        allowed: dict[tuple[str, str, str, PortCell], RequestSet] = {
            (row.direction.value, row.workload, row.cell.label, row.port): row.requests
            for row in outside.connections()
        }
        for w in sorted(self.by_id.values(), key=lambda w: w.id):
            if w.id not in self.in_scope:
                continue
            identity = Identity(w.namespace, w.service_account)
            services = self._services_of(w)
            inner = _end(w)
            for cell in cells:
                ip = str(cell.representative)
                outer = End(
                    EndKind.EXTERNAL,
                    ip=ip,
                )
                probes = intent.mode is Mode.AMBIENT and cell.network in AMBIENT_PROBE_NETWORKS
                for protocol in CELL_PROTOCOLS:
                    for port in port_cells(cuts, protocol):
                        entries = self._egress_grants(identity, ip, port.representative, protocol)
                        key = (OutsideDirection.EGRESS.value, w.id, cell.label, port)
                        self._outside(inner, outer, cell.label, port, key in allowed, entries)
                    if probes:
                        continue  # host traffic (kubelet probes), not from outside: see below
                    declared = [cp.port for cp in w.ports if cp.protocol is protocol]
                    for port in port_cells(cuts, protocol, declared):
                        entries = self._exception_grants(
                            services, ip, port.representative, protocol
                        )
                        key = (OutsideDirection.INGRESS.value, w.id, cell.label, port)
                        self._outside(outer, inner, cell.label, port, key in allowed, entries)
        if intent.mode is Mode.AMBIENT and any(c.network in AMBIENT_PROBE_NETWORKS for c in cells):
            self.notes.append(
                "ingress from "
                + " and ".join(str(n) for n in AMBIENT_PROBE_NETWORKS)
                + " is not checked: istio-cni sends the node's kubelet probes to ambient pods "
                "from these addresses, which the platform allows"
            )
        hosts = [e for e in intent.egress if e.hosts and not e.cidrs]
        if hosts:
            self.notes.append(
                "egress to DNS names ("
                + ", ".join(sorted({h for e in hosts for h in e.hosts}))
                + ") is checked as egress to any address outside the cluster"
            )

    def _exception_grants(
        self, services: list[Service], ip: str, port: int, protocol: Protocol
    ) -> list[str]:
        address = ipaddress.ip_address(ip)
        return [
            x.entry
            for x in self.intent.exceptions
            if any(s.ref == x.service for s in services)
            and any(p.port == port and p.protocol is protocol for p in x.ports)
            and any(address in n for n in x.networks)
        ]

    def _egress_grants(
        self, identity: Identity, ip: str, port: int, protocol: Protocol
    ) -> list[str]:
        address = ipaddress.ip_address(ip)
        out = []
        for e in self.intent.egress:
            if e.caller != identity or not any(
                p.port == port and p.protocol is protocol for p in e.ports
            ):
                continue
            # Names only: Calico cannot tell one outside address from another (docs/intent.md).
            if not e.cidrs or any(address in n for n in e.networks):
                out.append(e.entry)
        return out

    def _outside(
        self, src: End, dst: End, label: str, port: PortCell, allowed: bool, entries: list[str]
    ) -> None:
        """Compare one connection between a workload and an outside cell, on a port cell."""
        self.checked += 1
        src_label = label if src.kind is EndKind.EXTERNAL else src.label
        dst_label = label if dst.kind is EndKind.EXTERNAL else dst.label
        cell = None if port.is_single else port
        if allowed and not entries:
            self.differences.append(
                Difference(
                    DifferenceKind.NOT_GRANTED,
                    src_label,
                    dst_label,
                    port.representative,
                    port.protocol.value,
                    detail="no entry of the intent grants this connection",
                    cell=cell,
                )
            )
        elif entries and not allowed:
            verdict = explain_connection(self.model, src, dst, port.representative, port.protocol)
            self.differences.append(
                Difference(
                    DifferenceKind.BLOCKED,
                    src_label,
                    dst_label,
                    port.representative,
                    port.protocol.value,
                    entry=", ".join(entries),
                    denied_by=verdict.denied_by.value if verdict.denied_by else "",
                    detail="granted by the intent, denied by the cluster",
                    cell=cell,
                )
            )


def _answer(
    results: list[Reachability],
    src_group: tuple[int, ...],
    dst_group: tuple[int, ...],
    port: int,
    proto: str,
) -> RequestSet:
    """The requests the cluster lets a workload of one group send to a workload of another
    on `port` (two different workloads): what the first of `results` that lists the
    connection says, through the first port key in its order (as `Reachability.detailed`
    lists them)."""
    for r, s, d in zip(results, src_group, dst_group, strict=True):
        if not r.reported >> s & 1:
            continue
        for key, per_dst in r.allowed.items():
            if key.port == port and key.protocol.value == proto and per_dst.get(d, 0) >> s & 1:
                return r.admission(key, d, s)
    return NONE


def intent_ports(intent: Intent) -> list[tuple[int, Protocol]]:
    """Every port the intent names: service, grant, egress and exception ports, and the
    platform's DNS, istiod and proxy metrics ports."""
    out = [(p.port, p.protocol) for s in intent.services for p in s.ports]
    out += [(p.port, p.protocol) for g in intent.grants for p in g.ports]
    out += [(p.port, p.protocol) for e in intent.egress for p in e.ports]
    out += [(p.port, p.protocol) for x in intent.exceptions for p in x.ports]
    platform = intent.platform
    if platform.dns is not None:
        out += [(platform.dns.port, Protocol.UDP), (platform.dns.port, Protocol.TCP)]
    out.append((platform.istiod.port, Protocol.TCP))
    if platform.metrics is not None:
        out += [(p, Protocol.TCP) for p in platform.metrics.proxy_ports]
    return out


def _end(w: Workload) -> End:
    return End(EndKind.WORKLOAD, workload=w)


# --- HTTP requests ----------------------------------------------------------------------------


def _grants(match: HttpMatch, request: HttpRequest) -> bool:
    """Does a grant's HTTP match admit `request` (Istio value matching)?"""
    if match.methods and not any(string_match(m, request.method) for m in match.methods):
        return False
    if match.paths and not any(path_match(p, request.path) for p in match.paths):
        return False
    host = request.host.lower() if request.host else None
    return not (match.hosts and not any(string_match(h, host) for h in match.hosts))


__all__ = [
    "Difference",
    "DifferenceKind",
    "Expectation",
    "VerifyResult",
    "verify",
]
