"""Observed flows against a manifest set (`kubezt replay`): what a policy change would break.

Each flow is joined to its workloads (`engine.flowjoin`) and put through the one evaluator
(`engine.connection.explain_connection`, the code behind `explain` and the matrix): the
connection, and for an HTTP flow the request (method, path, host), from the source to the
destination pod, addressed through the Service when the log names one. Verdicts are cached per
distinct connection or request, so millions of lines cost as many evaluations as there are
distinct calls.

* a **break** is a flow the log shows allowed (or does not say) that the manifests deny: it
  would stop working;
* a **disagreement** is a flow the log shows denied that the manifests allow: the model and
  the cluster disagree (different policies applied, or something kubezt does not model).

Results are grouped by caller, callee, port, request and deciding policy.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from kubezt.engine.capture import address_networks
from kubezt.engine.connection import End, EndKind, explain_connection
from kubezt.engine.explain import Effect, LayerVerdict, Verdict
from kubezt.engine.flowjoin import EndClass, FlowJoin, Resolved
from kubezt.engine.index import build_classes
from kubezt.ir.config import MeshConfig
from kubezt.ir.flows import FlowRecord, Observed
from kubezt.ir.model import Model
from kubezt.ir.ports import Protocol
from kubezt.ir.requests import HttpRequest, ServiceAddress
from kubezt.ir.topology import Service, Topology, Workload


class Outcome(StrEnum):
    BREAKS = "breaks"
    DISAGREES = "disagrees"


@dataclass(slots=True)
class ReplayGroup:
    """Flows with one caller, callee, port, request and deciding policy."""

    outcome: Outcome
    src: str
    dst: str
    port: int
    protocol: Protocol
    request: str
    denied_by: str
    policy: str
    count: int = 0
    lines: int = 0
    first: str = ""
    """`file:line` of the first such flow."""
    file: str = ""
    line: int = 0


@dataclass(slots=True)
class ReplayResult:
    flows: int = 0
    evaluated: int = 0
    distinct: int = 0
    allowed: int = 0
    unresolved: int = 0
    skipped: int = 0
    """Flows with an end that is not a connection kubezt evaluates (to the API server, to an
    outside address the log does not give)."""
    groups: list[ReplayGroup] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def breaks(self) -> list[ReplayGroup]:
        return [g for g in self.groups if g.outcome is Outcome.BREAKS]

    @property
    def disagreements(self) -> list[ReplayGroup]:
        return [g for g in self.groups if g.outcome is Outcome.DISAGREES]

    @property
    def ok(self) -> bool:
        return not self.breaks


class Replayer:
    """Replays flows one at a time (streaming); `result` holds the totals and groups."""

    def __init__(self, model: Model, api_server: Sequence[str] = ()) -> None:
        self.model = model
        self.join = FlowJoin(model, api_server)
        self.result = ReplayResult()
        self._verdicts: dict[tuple[object, ...], tuple[Verdict, str]] = {}
        self._legs: dict[tuple[object, ...], LayerVerdict] = {}
        self._groups: dict[tuple[object, ...], ReplayGroup] = {}
        self._unresolved_examples = 0
        # Per-line work memoised on bounded keys (workloads, classes, Services), so that a
        # line costs dictionary look-ups once its calls have been seen.
        self._services: dict[tuple[str, str], Service] = {}
        for svc in model.topology.services:  # the first of a name, as the engine finds it
            self._services.setdefault((svc.namespace, svc.name), svc)
        self._service_memo: dict[tuple[object, ...], ServiceAddress | None] = {}
        self._ends: dict[int, End | None] = {}
        self._src_reps: dict[str, End] = {}
        self._dst_reps: dict[tuple[str, str], End] = {}
        # Workloads no policy can tell apart (the engine's classes) share verdicts: each is
        # evaluated as its class's first member (another member when both ends fall in one
        # class, so that two pods never become one pod talking to itself).
        self._class_of: dict[str, tuple[Workload, ...]] = {}
        workloads = model.topology.workloads
        for c in build_classes(model, address_networks(model)):
            members = tuple(workloads[i] for i in c.members)
            for w in members:
                self._class_of[w.id] = members

    def add_all(self, records: Iterable[FlowRecord]) -> ReplayResult:
        for record in records:
            self.add(record)
        return self.finish()

    def add(self, record: FlowRecord) -> None:
        result = self.result
        result.flows += 1
        src = self.join.resolve(record.src)
        dst = self.join.resolve(record.dst)
        if src.kind is EndClass.UNRESOLVED or dst.kind is EndClass.UNRESOLVED:
            result.unresolved += 1
            if self._unresolved_examples < 5:
                self._unresolved_examples += 1
                why = src.why if src.kind is EndClass.UNRESOLVED else dst.why
                result.notes.append(f"{record.where}: not joined to a workload ({why})")
            return
        src_end, dst_end = self._end(src), self._end(dst)
        if src_end is None or dst_end is None or (dst.workload is None and dst_end.ip is None):
            result.skipped += 1
            return
        src_eval, dst_eval = self._representatives(src_end, dst_end)
        service = self._service(record, dst)
        http = (
            HttpRequest(record.method.upper() or "GET", record.path or "/", record.host)
            if record.is_http
            else None
        )
        key = (src_eval, dst_eval, record.port, record.protocol, service, http)
        cached = self._verdicts.get(key)
        if cached is None:
            verdict = explain_connection(
                self.model,
                src_eval,
                dst_eval,
                record.port,
                record.protocol,
                service=service,
                http=http,
                legs_memo=self._legs,
            )
            cached = self._verdicts[key] = (verdict, _deciding(verdict))
            result.distinct += 1
        result.evaluated += 1
        verdict, policy = cached
        if verdict.allowed:
            result.allowed += 1
        if record.observed is Observed.DENIED and verdict.allowed:
            outcome = Outcome.DISAGREES
        elif record.observed is not Observed.DENIED and not verdict.allowed:
            outcome = Outcome.BREAKS
        else:
            return
        request = f"{http.method} {http.path}" if http else ""
        denied_by = verdict.denied_by.value if verdict.denied_by else ""
        gkey = (
            outcome,
            src_end.label,
            dst_end.label,
            record.port,
            record.protocol,
            request,
            policy,
        )
        group = self._groups.get(gkey)
        if group is None:
            group = self._groups[gkey] = ReplayGroup(
                outcome,
                src_end.label,
                dst_end.label,
                record.port,
                record.protocol,
                request,
                denied_by,
                policy,
                first=record.where,
                file=record.file,
                line=record.line,
            )
        group.count += record.count
        group.lines += 1

    def _end(self, resolved: Resolved) -> End | None:
        key = id(resolved)  # Resolved values live in the join's cache: their ids are stable
        if key not in self._ends:
            self._ends[key] = _end(resolved)
        return self._ends[key]

    def _representatives(self, src: End, dst: End) -> tuple[End, End]:
        if src.workload is not None and src.workload == dst.workload:
            return src, dst  # one workload to itself: its own replica count decides
        src_rep = src
        if src.workload is not None:
            rep = self._src_reps.get(src.workload.id)
            if rep is None:
                src_class = self._class_of.get(src.workload.id)
                rep = dataclasses.replace(src, workload=src_class[0]) if src_class else src
                self._src_reps[src.workload.id] = rep
            src_rep = rep
        dst_class = self._class_of.get(dst.workload.id) if dst.workload else None
        if not dst_class:
            return src_rep, dst
        key = (dst_class[0].id, src_rep.workload.id if src_rep.workload else "")
        dst_rep = self._dst_reps.get(key)
        if dst_rep is None:
            others = [w for w in dst_class if w != src_rep.workload]
            dst_rep = self._dst_reps[key] = dataclasses.replace(dst, workload=others[0])
        return src_rep, dst_rep

    def _service(self, record: FlowRecord, dst: Resolved) -> ServiceAddress | None:
        key = (
            record.service_name,
            record.service_namespace,
            record.service_port,
            "" if record.service_name else record.host,
            record.port,
            record.protocol,
            dst.workload.id if dst.workload is not None else "",
        )
        if key not in self._service_memo:
            self._service_memo[key] = self._find_service(record, dst)
        return self._service_memo[key]

    def _find_service(self, record: FlowRecord, dst: Resolved) -> ServiceAddress | None:
        """The Service the client addressed, when the log names one the manifests have; a log
        without the Service port (Hubble) gets the port that targets the flow's pod port."""
        name, ns, port = record.service_name, record.service_namespace, record.service_port
        if not name and record.host and dst.workload is not None:
            # The HTTP authority (`summary.shop.svc.cluster.local:80`, `summary:80`) names the
            # Service when it selects the destination pod.
            host, _, number = (
                record.host.rpartition(":") if ":" in record.host else (record.host, "", "")
            )
            labels = host.split(".")
            name, ns = labels[0], labels[1] if len(labels) > 1 else ""
            port = int(number) if number.isdigit() else 80
            if len(labels) > 2 and labels[2] != "svc":
                return None
        if not name:
            return None
        ns = ns or (dst.workload.namespace if dst.workload else "")
        svc = self._services.get((ns, name))
        if svc is None or (dst.workload is not None and not svc.selects(dst.workload)):
            return None
        if port:
            return ServiceAddress(ns, name, port)
        for sp in svc.ports:
            if sp.protocol is record.protocol and (
                dst.workload is not None and sp.target_on(dst.workload) == record.port
            ):
                return ServiceAddress(ns, name, sp.port)
        return None

    def finish(self) -> ReplayResult:
        self.result.groups = sorted(
            self._groups.values(),
            key=lambda g: (g.outcome, g.src, g.dst, g.port, g.protocol.value, g.request, g.policy),
        )
        return self.result


def with_workloads(policies: Model, workloads: Model) -> Model:
    """The policies (L3/L4 and mesh) of `policies` applied to the workloads of `workloads`:
    its pods, controllers, Services and ServiceAccounts, with the namespaces of both (labels of
    a namespace `policies` declares — mesh enrolment — laid over the workloads' own). This is
    how a new policy set (`kubezt compile` output) is replayed against the running workloads
    without their current policies."""
    namespaces = dict(workloads.topology.namespaces)
    for name, ns in policies.topology.namespaces.items():
        current = namespaces.get(name)
        if current is None or not current.declared:
            namespaces[name] = ns
        elif ns.declared:
            namespaces[name] = dataclasses.replace(current, labels=current.labels.merged(ns.labels))
    accounts = dict(workloads.topology.service_accounts)
    for key, sa in policies.topology.service_accounts.items():
        if sa.declared or key not in accounts:
            accounts[key] = sa
    topology = Topology(
        namespaces=namespaces,
        service_accounts=accounts,
        workloads=workloads.topology.workloads + policies.topology.workloads,
        services=workloads.topology.services + policies.topology.services,
    )
    mesh_config = (
        workloads.mesh_config if policies.mesh_config == MeshConfig() else policies.mesh_config
    )
    return dataclasses.replace(policies, topology=topology, mesh_config=mesh_config)


def replay(
    model: Model, records: Iterable[FlowRecord], api_server: Sequence[str] = ()
) -> ReplayResult:
    return Replayer(model, api_server).add_all(records)


def _end(resolved: Resolved) -> End | None:
    if resolved.workload is not None:
        return End(EndKind.WORKLOAD, resolved.workload)
    if resolved.kind is EndClass.EXTERNAL:
        return End(EndKind.EXTERNAL, ip=resolved.ip) if resolved.ip else None
    if resolved.kind is EndClass.NODE:
        return End(EndKind.NODE, ip=resolved.ip or None)
    if resolved.kind is EndClass.API_SERVER and resolved.ip:
        return End(EndKind.EXTERNAL, ip=resolved.ip)
    return None


def _deciding(verdict: Verdict) -> str:
    """The policy (or layer fact) that denied, `Kind ns/name` — empty for an allow."""
    if verdict.allowed:
        return ""
    for step in reversed(verdict.steps):
        if step.effect is Effect.DENY:
            if step.source is not None:
                return step.source.ref
            return step.reason
    return verdict.denied_by.value if verdict.denied_by else ""
