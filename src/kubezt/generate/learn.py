"""Observed traffic → the least-privilege intent that admits it (`kubezt learn`).

Flows are folded as they stream in (memory grows with the distinct calls, not the lines):
each allowed flow is joined to its workloads (`engine.flowjoin`), and calls are kept per
caller workload, callee workload, port and protocol, with HTTP methods and paths when the log
has them. `Learner.finish()` scaffolds the services from the manifests (`kubezt init`) and
grants each caller identity exactly the ports, methods and path templates it was seen using;
traffic to addresses outside the cluster becomes egress to those addresses (/32, /128) and the
DNS names the proxy saw; API-server callers become `platform.kubeApiServer`; calls the API
server makes into a workload (admission webhooks) become exceptions from its address.

What a working cluster needs and flows miss is granted by the compiler anyway and named in the
result's `platform` notes: DNS, istiod, kubelet probes, HBONE (ambient), metrics scrapes
declared in the intent. Every entry carries its evidence: first and last seen, count, and the
file and line of its first observation.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from kubezt.engine.flowjoin import EndClass, FlowJoin, Resolved
from kubezt.engine.mesh import proxy_role
from kubezt.generate.scaffold import scaffold_intent
from kubezt.ir.flows import FlowRecord, Observed
from kubezt.ir.intent import (
    Egress,
    Exemption,
    Grant,
    HttpMatch,
    Identity,
    Intent,
    KubeApiServer,
    Mode,
    Port,
    Service,
)
from kubezt.ir.model import Model
from kubezt.ir.ports import Protocol
from kubezt.ir.topology import ProxyRole, Workload

DEFAULT_MAX_PATHS = 8
MAX_DISTINCT_PATHS = 4096
"""Distinct paths kept per call while streaming; beyond it the call's paths are generalised."""
WILDCARD = "{*}"
_ID_SEGMENT = re.compile(
    r"^(?:\d+|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    r"|(?=[^/]*\d)[0-9a-fA-F]{12,}|(?=[^/]*\d)(?=[^/]*[A-Za-z])[A-Za-z0-9_-]{20,})$"
)
"""A path segment that is an id: a number, a UUID, a long hex string or a long token."""
DNS_PORTS = frozenset({53})
ISTIOD_PORTS = frozenset({15010, 15012, 15014, 15017})
API_SERVER_SERVICE = ("default", "kubernetes")


@dataclass(slots=True)
class Evidence:
    """How often and when an entry of the learned intent was observed."""

    count: int = 0
    first: float | None = None
    last: float | None = None
    where: str = ""
    """`file:line` of the first observation."""

    def add(self, record: FlowRecord) -> None:
        self.count += record.count
        if not self.where:
            self.where = record.where
        for t in (record.time, record.end_time):
            if t is None:
                continue
            self.first = t if self.first is None else min(self.first, t)
            self.last = t if self.last is None else max(self.last, t)

    def merge(self, other: Evidence) -> None:
        self.count += other.count
        self.where = self.where or other.where
        for t in (other.first, other.last):
            if t is not None:
                self.first = t if self.first is None else min(self.first, t)
                self.last = t if self.last is None else max(self.last, t)

    def comment(self) -> str:
        def when(t: float | None) -> str:
            if t is None:
                return "?"
            return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

        seen = f"seen {self.count} time{'s' if self.count != 1 else ''}"
        if self.first is not None:
            seen += f", {when(self.first)} .. {when(self.last)}"
        return f"{seen}, first at {self.where}"


@dataclass(slots=True)
class _Call:
    evidence: Evidence = field(default_factory=Evidence)
    methods: set[str] = field(default_factory=set)
    paths: set[str] = field(default_factory=set)
    l4_only: bool = False
    overflow: bool = False


@dataclass(slots=True)
class _Outside:
    ports: set[int] = field(default_factory=set)
    evidence: Evidence = field(default_factory=Evidence)


@dataclass(frozen=True, slots=True)
class LearnResult:
    intent: Intent
    evidence: Mapping[str, Evidence]
    """Entry (`calls/<name>`, `ingress.allow/<name>`, `egress/<name>`, `exceptions/<name>`,
    `platform/<what>`) → evidence."""
    notes: tuple[str, ...]
    platform: tuple[str, ...]
    """What the compiled policies grant although (or whether or not) flows show it."""
    flows: int
    learned: int
    denied: int
    unresolved: int


class Learner:
    """Accumulates flows; `finish()` returns the intent."""

    def __init__(self, model: Model, api_server: Sequence[str] = ()) -> None:
        self.model = model
        self.join = FlowJoin(model, api_server)
        self.calls: dict[tuple[str, str, int, Protocol], _Call] = {}
        self.egress: dict[tuple[str, Protocol], dict[tuple[str, str], _Outside]] = {}
        """(caller, protocol) → destination (`cidr`/`host`, address or name) → its ports."""
        self.api_callers: dict[str, Evidence] = defaultdict(Evidence)
        self.webhooks: dict[tuple[str, int, str], Evidence] = defaultdict(Evidence)
        self.platform: dict[str, Evidence] = defaultdict(Evidence)
        self.workloads: dict[str, Workload] = {}
        self.unresolved_examples: list[str] = []
        self.outside: dict[str, Evidence] = defaultdict(Evidence)
        self.flows = self.learned = self.denied = self.unresolved = 0

    def add_all(self, records: Iterable[FlowRecord]) -> None:
        for record in records:
            self.add(record)

    def add(self, record: FlowRecord) -> None:
        self.flows += 1
        if record.observed is not Observed.ALLOWED:
            self.denied += 1
            return
        if record.port in DNS_PORTS and record.protocol in (Protocol.UDP, Protocol.TCP):
            self.platform["dns"].add(record)
            self.learned += 1
            return
        src = self.join.resolve(record.src)
        if (record.service_namespace, record.service_name) == API_SERVER_SERVICE:
            dst = Resolved(EndClass.API_SERVER)
        else:
            dst = self.join.resolve(record.dst)
        if src.kind is EndClass.UNRESOLVED or dst.kind is EndClass.UNRESOLVED:
            self.unresolved += 1
            if len(self.unresolved_examples) < 10:
                end = record.src if src.kind is EndClass.UNRESOLVED else record.dst
                why = src.why if src.kind is EndClass.UNRESOLVED else dst.why
                del end
                self.unresolved_examples.append(
                    f"{record.where}: no workload of the manifests matches ({why})"
                )
            return
        self.learned += 1
        if dst.workload is not None and record.port in ISTIOD_PORTS and _is_istiod(dst.workload):
            self.platform["istiod"].add(record)
            return
        if src.kind is EndClass.NODE or src.kind is EndClass.API_SERVER:
            if dst.workload is None:
                return
            if src.kind is EndClass.API_SERVER and src.ip:
                self.workloads[dst.workload.id] = dst.workload
                self.webhooks[(dst.workload.id, record.port, src.ip)].add(record)
            else:
                self.platform["kubelet-probes"].add(record)
            return
        if src.workload is not None and (
            proxy_role(src.workload, self.model.mesh) is ProxyRole.WAYPOINT
        ):
            # ztunnel's log of a waypoint's hop to the pod: the waypoint's own access log names
            # the client; HBONE from the waypoint is granted with each call through it.
            self.platform["waypoint-hops"].add(record)
            return
        if src.workload is None:  # from outside the cluster straight to a pod
            self.outside[f"{src.label} → {dst.label}:{record.port}"].add(record)
            return
        self.workloads[src.workload.id] = src.workload
        if dst.kind is EndClass.API_SERVER:
            self.api_callers[src.workload.id].add(record)
            return
        if dst.kind is EndClass.EXTERNAL:
            dests = self.egress.setdefault((src.workload.id, record.protocol), {})
            host = record.host.rsplit(":", 1)[0] if record.host else ""
            targets = [("cidr", dst.ip)] if dst.ip else []
            if host and not _is_ip(host):
                targets.append(("host", host))
            for dest in targets or [("", "")]:  # ("", ""): the log names no outside address
                slot = dests.get(dest)
                if slot is None:
                    slot = dests[dest] = _Outside()
                slot.ports.add(record.port)
                slot.evidence.add(record)
            return
        if dst.kind is not EndClass.WORKLOAD or dst.workload is None:
            return
        self.workloads[dst.workload.id] = dst.workload
        key = (src.workload.id, dst.workload.id, record.port, record.protocol)
        call = self.calls.get(key)
        if call is None:
            call = self.calls[key] = _Call()
        call.evidence.add(record)
        if record.is_http:
            if record.method:
                call.methods.add(record.method.upper())
            if record.path and not call.overflow:
                call.paths.add(_template_ids(record.path))
                if len(call.paths) > MAX_DISTINCT_PATHS:
                    call.overflow = True
                    call.paths = set(generalise_paths(call.paths, DEFAULT_MAX_PATHS))
        else:
            call.l4_only = True

    def finish(
        self,
        *,
        name: str,
        mode: Mode | None = None,
        namespaces: Sequence[str] = (),
        max_paths: int = DEFAULT_MAX_PATHS,
    ) -> LearnResult:
        notes: list[str] = []
        if not namespaces:
            namespaces = sorted(
                {
                    w.namespace
                    for w in self.workloads.values()
                    if proxy_role(w, self.model.mesh) is ProxyRole.NONE
                }
            )
        scaffold, scaffold_notes = scaffold_intent(
            self.model, name=name, mode=mode, namespaces=namespaces
        )
        notes += scaffold_notes
        services = {s.ref: s for s in scaffold.services}
        added_ports: dict[tuple[str, str], set[Port]] = defaultdict(set)
        evidence: dict[str, Evidence] = {}
        names: set[str] = set()

        by_namespace: dict[str, list[Service]] = defaultdict(list)
        for s in scaffold.services:
            by_namespace[s.namespace].append(s)
        service_cache: dict[str, Service | None] = {}

        def service_of(w: Workload) -> Service | None:
            if w.id not in service_cache:
                service_cache[w.id] = next(
                    (s for s in by_namespace[w.namespace] if s.selector.matches(w.labels)), None
                )
            return service_cache[w.id]

        def port_of(s: Service, number: int, protocol: Protocol) -> Port:
            found = s.port(number, protocol)
            if found is not None:
                return found
            p = Port(number, protocol)
            added_ports[(s.namespace, s.name)].add(p)
            return p

        def unique(base: str) -> str:
            base = re.sub(r"[^a-z0-9-]+", "-", base.lower()).strip("-")[:55].strip("-") or "x"
            candidate, n = base, 2
            while candidate in names:
                candidate, n = f"{base}-{n}", n + 1
            names.add(candidate)
            return candidate

        gateway: Identity | None = None
        grouped: dict[tuple[Identity, bool, str, str, HttpMatch | None], list[Port]] = {}
        grouped_evidence: dict[tuple[Identity, bool, str, str, HttpMatch | None], Evidence] = {}
        for (src_id, dst_id, number, protocol), call in sorted(self.calls.items()):
            src_w, dst_w = self.workloads[src_id], self.workloads[dst_id]
            callee = service_of(dst_w)
            if callee is None:
                notes.append(
                    f"{src_id} → {dst_id}:{number}/{protocol}: {dst_id} is not a service of the "
                    f"intent (out of scope, or no selector tells it apart); not granted "
                    f"({call.evidence.where})"
                )
                continue
            from_gateway = proxy_role(src_w, self.model.mesh) is ProxyRole.GATEWAY
            if from_gateway:
                identity = Identity(src_w.namespace, src_w.service_account)
                if gateway is not None and gateway != identity:
                    notes.append(
                        f"{src_id}: a second ingress gateway identity ({identity}); the intent "
                        f"has one gateway ({gateway}), calls from this one are not granted"
                    )
                    continue
                gateway = identity
            else:
                caller = service_of(src_w)
                if caller is None:
                    notes.append(
                        f"{src_id} → {dst_id}:{number}/{protocol}: the caller {src_id} is not a "
                        f"service of the intent (out of scope); not granted "
                        f"({call.evidence.where})"
                    )
                    continue
                identity = caller.identity
            port = port_of(callee, number, protocol)
            http: HttpMatch | None = None
            if (port.is_http or (not port.name and not port.app_protocol and call.methods)) and (
                call.methods or call.paths
            ):
                if not port.is_http:
                    port = replace(port, app_protocol="http")
                    added_ports[(callee.namespace, callee.name)].add(port)
                http = HttpMatch(
                    methods=tuple(sorted(call.methods)),
                    paths=tuple(generalise_paths(call.paths, max_paths)),
                )
            key = (identity, from_gateway, callee.namespace, callee.name, http)
            grouped.setdefault(key, []).append(port)
            grouped_evidence.setdefault(key, Evidence()).merge(call.evidence)
        grants: list[Grant] = []
        for key, ports in grouped.items():
            identity, from_gateway, ns, svc_name, http = key
            callee = services[_ref(scaffold, ns, svc_name)]
            if from_gateway:
                entry = "ingress.allow/" + unique(f"ingress-{svc_name}")
            else:
                caller_name = identity.service_account
                entry = "calls/" + unique(f"{caller_name}-to-{svc_name}")
            grants.append(
                Grant(
                    entry=entry,
                    caller=identity,
                    service=callee.ref,
                    ports=tuple(sorted(set(ports))),
                    http=http,
                    from_gateway=from_gateway,
                )
            )
            evidence[entry] = grouped_evidence[key]
        egress: list[Egress] = []
        for (src_id, protocol), dests in sorted(self.egress.items(), key=lambda kv: str(kv[0])):
            caller = service_of(self.workloads[src_id])
            if caller is None:
                notes.append(f"{src_id}: egress outside the cluster from a workload out of scope")
                continue
            unnamed = dests.get(("", ""))
            if unnamed is not None:
                notes.append(
                    f"{src_id}: connections to addresses outside the cluster on ports "
                    f"{sorted(unnamed.ports)} ({unnamed.evidence.where}), but the log names no "
                    "address; add spec.egress by hand"
                )
            # Destinations seen on the same ports share an entry: every (destination, port) an
            # entry grants was seen.
            by_ports: dict[frozenset[int], list[tuple[str, str]]] = defaultdict(list)
            for dest, slot in dests.items():
                if dest != ("", ""):
                    by_ports[frozenset(slot.ports)].append(dest)
            for numbers, same in sorted(by_ports.items(), key=lambda kv: sorted(kv[0])):
                ev = Evidence()
                for dest in same:
                    ev.merge(dests[dest].evidence)
                entry = "egress/" + unique(f"{caller.name}-egress")
                egress.append(
                    Egress(
                        entry=entry,
                        caller=caller.identity,
                        ports=tuple(Port(n, protocol) for n in sorted(numbers)),
                        cidrs=tuple(sorted(_host_cidr(v) for k, v in same if k == "cidr")),
                        hosts=tuple(sorted(v for k, v in same if k == "host")),
                    )
                )
                evidence[entry] = ev
        exceptions: list[Exemption] = []
        by_target: dict[tuple[str, int], list[str]] = defaultdict(list)
        for dst_id, number, ip in sorted(self.webhooks):
            by_target[(dst_id, number)].append(ip)
        for (dst_id, number), ips in sorted(by_target.items()):
            callee = service_of(self.workloads[dst_id])
            if callee is None:
                continue
            port = port_of(callee, number, Protocol.TCP)
            entry_name = unique(f"api-server-to-{callee.name}")
            entry = "exceptions/" + entry_name
            ev = Evidence()
            for ip in ips:
                ev.merge(self.webhooks[(dst_id, number, ip)])
            exceptions.append(
                Exemption(
                    entry=entry,
                    name=entry_name,
                    reason="the API server calls this webhook (it has no mesh identity); "
                    "learned from flow logs",
                    service=callee.ref,
                    ports=(port,),
                    cidrs=tuple(sorted(_host_cidr(ip) for ip in ips)),
                )
            )
            evidence[entry] = ev
        api_callers: list[Identity] = []
        for src_id, ev in sorted(self.api_callers.items()):
            caller = service_of(self.workloads[src_id])
            if caller is None:
                continue
            api_callers.append(caller.identity)
            evidence[f"platform/kubeApiServer/{caller.identity}"] = ev
        for what, ev in sorted(self.outside.items()):
            notes.append(
                f"{what}: from outside the cluster straight to a pod ({ev.where}, seen "
                f"{ev.count}); not granted: route it through the ingress gateway or add an "
                "exception"
            )
        if self.unresolved:
            notes.append(
                f"{self.unresolved} allowed flow(s) could not be joined to workloads of the "
                "manifests and were left out; e.g. " + "; ".join(self.unresolved_examples[:3])
            )
        final_services = tuple(
            replace(s, ports=tuple(sorted(set(s.ports) | added_ports[(s.namespace, s.name)])))
            if added_ports.get((s.namespace, s.name))
            else s
            for s in scaffold.services
        )
        platform_notes = self._platform_notes(scaffold.mode)
        for what, ev in self.platform.items():
            evidence[f"platform/{what}"] = ev
        intent = replace(
            scaffold,
            services=final_services,
            grants=tuple(sorted(grants, key=lambda g: (g.from_gateway, g.entry))),
            egress=tuple(egress),
            exceptions=tuple(exceptions),
            gateway=gateway or scaffold.gateway,
            platform=replace(
                scaffold.platform,
                kube_api_server=KubeApiServer(tuple(sorted(set(api_callers)))),
            ),
        )
        return LearnResult(
            intent=intent,
            evidence=evidence,
            notes=tuple(notes),
            platform=platform_notes,
            flows=self.flows,
            learned=self.learned,
            denied=self.denied,
            unresolved=self.unresolved,
        )

    def _platform_notes(self, mode: Mode) -> tuple[str, ...]:
        def seen(what: str) -> str:
            ev = self.platform.get(what)
            return f"seen {ev.count} time(s)" if ev else "not in the flows"

        notes = [
            f"DNS to kube-dns on port 53 from every pod in scope ({seen('dns')})",
            f"istiod on 15012 for {'sidecars' if mode is Mode.SIDECAR else 'waypoints'} "
            f"({seen('istiod')})",
            f"kubelet probes from each pod's node ({seen('kubelet-probes')}; never policed on "
            "the node itself"
            + (
                ", and allowed from 169.254.7.127 in ambient mode)" if mode is Mode.AMBIENT else ")"
            ),
        ]
        if mode is Mode.AMBIENT:
            notes.append(
                "HBONE (TCP 15008) between exactly the identities of each learned call, and "
                "through the waypoint where a call is limited to HTTP requests"
            )
        if self.webhooks:
            notes.append("admission webhooks called by the API server (spec.exceptions)")
        notes.append(
            "metrics scrapes: declare spec.platform.metrics (and metrics: true on the scraped "
            "ports) when Prometheus runs outside the namespaces in scope"
        )
        return tuple(notes)


def _ref(intent: Intent, namespace: str, name: str):  # type: ignore[no-untyped-def]
    for s in intent.services:
        if s.namespace == namespace and s.name == name:
            return s.ref
    raise KeyError(f"{namespace}/{name}")


def _is_istiod(w: Workload) -> bool:
    return w.labels.get("app") == "istiod" or w.labels.get("istio") == "pilot"


def _is_ip(text: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return False
    return True


def _host_cidr(ip: str) -> str:
    return f"{ip}/128" if ":" in ip else f"{ip}/32"


def _template_ids(path: str) -> str:
    """`/orders/12345/items` → `/orders/{*}/items`: segments that are ids become `{*}`."""
    segments = path.split("/")
    return "/".join(WILDCARD if seg and _ID_SEGMENT.match(seg) else seg for seg in segments)


def generalise_paths(paths: Iterable[str], max_paths: int) -> list[str]:
    """At most `max_paths` Istio path patterns that together match every path of `paths`.

    Id segments are already `{*}`. While there are too many, the segment position with the
    most distinct values among paths that agree everywhere else becomes `{*}`; a list that
    still does not fit (paths of too many lengths) ends as the prefix `/*`. Every pattern
    matches at least the paths it came from, so nothing observed is ever left out."""
    current = sorted({_template_ids(p) for p in paths})
    max_paths = max(max_paths, 1)
    while len(current) > max_paths:
        best: tuple[int, int, int] | None = None  # (distinct values, length, position)
        for length in sorted({len(p.split("/")) for p in current}):
            rows = [p.split("/") for p in current if len(p.split("/")) == length]
            for position in range(1, length):
                groups: dict[tuple[str, ...], set[str]] = defaultdict(set)
                for row in rows:
                    if row[position] and row[position] != WILDCARD:
                        groups[tuple(row[:position] + row[position + 1 :])].add(row[position])
                widest = max((len(v) for v in groups.values()), default=0)
                if widest > 1 and (best is None or widest > best[0]):
                    best = (widest, length, position)
        if best is None:
            return ["/*"]
        _, length, position = best
        merged = set()
        for p in current:
            row = p.split("/")
            if len(row) == length and row[position]:
                row[position] = WILDCARD
            merged.add("/".join(row))
        current = sorted(merged)
    return current
