"""`kubezt watch`: list and watch a live cluster, and report every change of connectivity as
it happens (and drift from an intent), with Prometheus metrics, Kubernetes Events and
leader election between replicas."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import queue
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer

from kubezt.cli.common import (
    EXIT_FINDING,
    EXIT_OK,
    ContextOpt,
    KubeconfigOpt,
    LoadOptions,
    err,
    guarded,
    out,
    usage_error,
)
from kubezt.ir.intent import Intent

WATCH_SCHEMA = "kubezt.io/watch/v1"
MAX_EVENTS_PER_BATCH = 20
"""Kubernetes Events written for one batch of changes at most (the rest are counted)."""
SERVICE_ACCOUNT_NAMESPACE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"


class WatchOutput(StrEnum):
    TABLE = "table"
    JSON = "json"


class FailOn(StrEnum):
    NONE = "none"
    ALLOWED = "allowed"
    DRIFT = "drift"
    UNKNOWN = "unknown"


Record = dict[str, Any]


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")[:-4] + "Z"


class Runner:
    """The watch loop, independent of the terminal: `run()` returns the exit code; every
    report goes to `emit` as a record (`-o json` prints them as they are)."""

    def __init__(
        self,
        session: Any,
        emit: Callable[[Record], None],
        *,
        intent: Intent | None = None,
        fail_on: FailOn = FailOn.NONE,
        events: bool = False,
        metrics: Any = None,
        elector_factory: Callable[[Callable[[bool], None]], Any] | None = None,
        identity: str = "",
        stop: threading.Event | None = None,
        watch_timeout: int | None = None,
        batch_window: float = 0.05,
    ) -> None:
        self.session = session
        self.emit_record = emit
        self.intent = intent
        self.fail_on = fail_on
        self.events = events
        self.metrics = metrics
        self.identity = identity or f"{socket.gethostname()}-{os.getpid()}"
        self.stop = stop or threading.Event()
        self.watch_timeout = watch_timeout
        self.batch_window = batch_window
        self.queue: queue.Queue[Any] = queue.Queue()
        self.leading = elector_factory is None
        self.elector = elector_factory(self._on_leadership) if elector_factory else None
        self.informers: list[Any] = []
        self.watch: Any = None
        self.drift: dict[bytes, Record] = {}
        self.events_written = 0
        self._unknown_reported = False

    # leadership arrives on the elector's thread; the loop handles it in order
    def _on_leadership(self, leading: bool) -> None:
        self.queue.put(("leader", leading))

    def emit(self, record: Record, *, always: bool = False) -> None:
        if self.leading or always:
            self.emit_record({"time": _now(), **record})

    def run(self) -> int:
        from kubezt.live.read import plan
        from kubezt.live.watch import Watch, start_informers, watched_resources

        what = guarded(lambda: plan(self.session))
        for warning in what.warnings:
            err.print(warning.render(), markup=False)
        resources = tuple(r for r, _ in watched_resources(what))
        self.watch = Watch(self.session.context, what, resources)
        kwargs = {} if self.watch_timeout is None else {"watch_timeout": self.watch_timeout}
        self.informers = start_informers(self.session, what, self.queue, self.stop, **kwargs)
        if self.metrics is not None:
            self.metrics.verdicts_known.set(0)
            self.metrics.leader.set(int(self.leading))
        if self.elector is not None:
            self.elector.start()
        try:
            return self._loop()
        finally:
            self.stop.set()
            for informer in self.informers:
                informer.cut("stopped")
            if self.elector is not None:
                self.elector.stop()
            for informer in self.informers:
                informer.join(5.0)

    def _loop(self) -> int:
        from kubezt.live.watch import Lost

        while not self.stop.is_set():
            try:
                first = self.queue.get(timeout=0.2)
            except queue.Empty:
                continue
            batch = [first]
            deadline = time.monotonic() + self.batch_window
            while True:
                try:
                    batch.append(self.queue.get(timeout=max(0.0, deadline - time.monotonic())))
                except queue.Empty:
                    break
            changed = False
            for item in batch:
                if isinstance(item, tuple):
                    code = self._leadership(item[1])
                    if code is not None:
                        return code
                    continue
                if isinstance(item, Lost):
                    code = self._lost(item)
                    if code is not None:
                        return code
                changed |= self.watch.record(item)
            if changed or (not self.watch.synced and self.watch.known):
                code = self._evaluate()
                if code is not None:
                    return code
        return EXIT_OK

    def _leadership(self, leading: bool) -> int | None:
        self.leading = leading
        if self.metrics is not None:
            self.metrics.leader.set(int(leading))
        self.emit({"type": "leader", "leading": leading, "identity": self.identity}, always=True)
        return None

    def _lost(self, lost: Any) -> int | None:
        if self.metrics is not None:
            self.metrics.verdicts_known.set(0)
        self.emit(
            {
                "type": "unknown",
                "resource": _resource_name(lost.resource),
                "reason": lost.reason,
                "message": "verdicts are unknown until the resource is relisted",
            }
        )
        if self.fail_on is FailOn.UNKNOWN and self.watch.synced:
            return EXIT_FINDING
        return None

    def _evaluate(self) -> int | None:
        from kubezt.errors import InputError
        from kubezt.report.analysis_documents import change_document

        first = not self.watch.synced
        try:
            step = self.watch.evaluate()
        except InputError as exc:
            # an object kubezt cannot read: no verdict until it is fixed (the next change
            # retries), never one that silently leaves it out
            if self.metrics is not None:
                self.metrics.verdicts_known.set(0)
            problems = [d.render() for d in exc.diagnostics if d.severity.value == "error"]
            self.emit(
                {
                    "type": "unknown",
                    "resource": "objects",
                    "reason": "; ".join(problems[:3])
                    + (f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""),
                    "message": "verdicts are unknown until the objects are fixed",
                },
                always=first,
            )
            return EXIT_FINDING if self.fail_on is FailOn.UNKNOWN else None
        if step is None:
            return None
        m = self.metrics
        if m is not None:
            m.verdicts_known.set(1)
            m.reevaluation_seconds.observe(step.seconds)
            m.connections_allowed.set(self.watch.allowed)
        if first:
            model = self.watch.model
            self.emit(
                {
                    "type": "synced",
                    "context": self.session.context,
                    "workloads": len(model.topology.workloads),
                    "connectionsAllowed": self.watch.allowed,
                    "seconds": round(step.seconds, 4),
                },
                always=True,
            )
        elif step.relisted:
            self.emit({"type": "known", "message": "every resource relisted; verdicts current"})
        opened = False
        for moved in step.moved:
            change = moved.change
            opened |= change.kind.opens
            if m is not None:
                m.connection_changes.labels(change.kind.value).inc()
            self.emit(
                {
                    "type": "change",
                    "src": moved.src,
                    "dst": moved.dst,
                    **change_document(change),
                    "causes": [_cause_document(c) for c in moved.causes],
                }
            )
        for presence in _presence(step):
            self.emit(presence)
        drifted = self._drift(step, first) if self.intent is not None else False
        if m is not None and (first or step.deltas):
            self._audit()
        if self.events and self.leading and not first:
            self._record_events(step, drifted)
        if self.fail_on is FailOn.ALLOWED and opened:
            return EXIT_FINDING
        if self.fail_on is FailOn.DRIFT and drifted:
            return EXIT_FINDING
        return None

    def _drift(self, step: Any, first: bool) -> bool:
        """Re-verify the intent; report differences that appeared or went away. Whether any
        appeared."""
        from kubezt.analysis.verify import verify
        from kubezt.cli.verify import difference_document

        if not first and not step.deltas:
            return False
        assert self.intent is not None
        result = verify(self.intent, self.watch.model)
        now = {
            orjson.dumps(doc, option=orjson.OPT_SORT_KEYS): doc
            for doc in (difference_document(d) for d in result.differences)
        }
        appeared = [now[k] for k in now.keys() - self.drift.keys()]
        resolved = [self.drift[k] for k in self.drift.keys() - now.keys()]
        causes = [_cause_document(c) for c in step.causes]
        for doc in sorted(appeared, key=_difference_order):
            self.emit(
                {"type": "drift", "intent": self.intent.name, "difference": doc, "causes": causes}
            )
        for doc in sorted(resolved, key=_difference_order):
            self.emit(
                {
                    "type": "drift-resolved",
                    "intent": self.intent.name,
                    "difference": doc,
                    "causes": causes,
                }
            )
        self.drift = now
        if self.metrics is not None:
            self.metrics.intent_violations.set(len(now))
        self._appeared = appeared
        return bool(appeared)

    def _audit(self) -> None:
        from kubezt.analysis.audit import audit

        report = audit(self.watch.reach.reachability())
        self.metrics.audit(report)

    def _record_events(self, step: Any, drifted: bool) -> None:
        from kubezt.errors import ClusterError
        from kubezt.live.watch import record_event

        notes: list[tuple[Any, str, str]] = []
        if drifted:
            for doc in self._appeared:
                for cause in step.causes:
                    notes.append((cause, "IntentDrift", _drift_text(doc, self.intent)))
        else:
            for moved in step.moved:
                if moved.change.kind.opens:
                    text = (
                        f"kubezt: {moved.src} → {moved.dst} "
                        f"{moved.change.port}/{moved.change.protocol} newly "
                        f"{moved.change.kind.value}"
                    )
                    for cause in moved.causes:
                        notes.append((cause, "ConnectionAllowed", text))
        # one Event per object and reason in a batch: a change that opens many port cells
        # (or drifts on many) names the first and counts the rest
        grouped: dict[tuple[str, str], tuple[Any, list[str]]] = {}
        for cause, reason, text in notes:
            grouped.setdefault((cause.ref, reason), (cause, []))[1].append(text)
        notes = [
            (cause, reason, texts[0] + (f" (and {len(texts) - 1} more)" if len(texts) > 1 else ""))
            for (_, reason), (cause, texts) in grouped.items()
        ]
        for cause, reason, text in notes[:MAX_EVENTS_PER_BATCH]:
            if cause.obj is None:
                continue
            try:
                record_event(self.session, cause.obj, reason, text, self.identity)
                self.events_written += 1
            except ClusterError as exc:
                err.print(f"kubezt: could not record an Event on {cause.ref}: {exc}", markup=False)


def _resource_name(res: Any) -> str:
    return f"{res.plural}.{res.group}" if res.group else res.plural


def _cause_document(cause: Any) -> Record:
    doc: Record = {"object": cause.ref, "operation": cause.operation}
    if cause.author is not None:
        doc["manager"] = cause.author.manager
        doc["managerOperation"] = cause.author.operation
        doc["at"] = cause.author.time
    return doc


def _presence(step: Any) -> list[Record]:
    return [
        {
            "type": "workload-added" if p.added else "workload-removed",
            "workload": p.workload,
            "reaches": p.reaches,
            "reachedBy": p.reached_by,
        }
        for p in step.presence
    ]


def _difference_order(doc: Record) -> tuple[str, str, str, tuple[int, int, str]]:
    """By kind, source, destination, then port: numbers first, then cells named by text
    (`other`, `8000-8080`)."""
    port = doc.get("port", 0)
    number = isinstance(port, int)
    return (
        doc["kind"],
        doc["src"],
        doc["dst"],
        (0 if number else 1, port if number else 0, "" if number else str(port)),
    )


def _drift_text(doc: Record, intent: Intent | None) -> str:
    port = f" {doc['port']}/{doc['protocol']}" if "port" in doc else ""
    name = intent.name if intent is not None else ""
    return f"kubezt: drift from intent {name}: {doc['kind']} {doc['src']} → {doc['dst']}{port}"


# -- printing -------------------------------------------------------------------------------
def table_line(record: Record) -> str:
    """One line per record, as `kubezt watch` prints them."""
    t = record["time"]
    kind = record["type"]
    if kind == "change":
        new = record["new"]["explanation"]
        causes = ", ".join(
            f"{c['object']} ({c['operation']}" + (f" by {c['manager']})" if "manager" in c else ")")
            for c in record["causes"]
        )
        why = "; ".join(
            f"[{s['layer']}] {s.get('reason', '')}"
            + (f": {s['detail']}" if s.get("detail") else "")
            for s in new.get("steps", ())
        )
        verdict = new["verdict"] + (f" by {new['deniedBy']}" if "deniedBy" in new else "")
        return (
            f"{t}  {record['change'].upper():<16} {record['src']} → {record['dst']} "
            f"{record['port']}/{record['protocol']}  by {causes or 'unknown'}  now {verdict}"
            + (f"  {why}" if why else "")
        )
    if kind == "synced":
        return (
            f"{t}  SYNCED           {record['workloads']} workloads, "
            f"{record['connectionsAllowed']} connections allowed on {record['context']} "
            f"({record['seconds']:.3f} s)"
        )
    if kind == "unknown":
        return (
            f"{t}  UNKNOWN          watch of {record['resource']} lost ({record['reason']}): "
            f"{record['message']}"
        )
    if kind == "known":
        return f"{t}  KNOWN            {record['message']}"
    if kind in ("drift", "drift-resolved"):
        d = record["difference"]
        port = f" {d['port']}/{d['protocol']}" if "port" in d else ""
        causes = ", ".join(c["object"] for c in record["causes"])
        label = "DRIFT" if kind == "drift" else "DRIFT RESOLVED"
        return (
            f"{t}  {label:<16} {d['kind']} {d['src']} → {d['dst']}{port} (intent "
            f"{record['intent']})" + (f"  after {causes}" if causes else "")
        )
    if kind in ("workload-added", "workload-removed"):
        return (
            f"{t}  {kind.upper():<16} {record['workload']} (reaches {record['reaches']}, "
            f"reached by {record['reachedBy']})"
        )
    if kind == "leader":
        state = "leading" if record["leading"] else "standing by"
        return f"{t}  LEADER           {record['identity']} {state}"
    return f"{t}  {kind.upper()}"


def printer(output: WatchOutput) -> Callable[[Record], None]:
    def emit(record: Record) -> None:
        if output is WatchOutput.JSON:
            line = orjson.dumps({"schemaVersion": WATCH_SCHEMA, **record}).decode()
        else:
            line = table_line(record)
        try:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()
        except BrokenPipeError:
            raise SystemExit(EXIT_OK) from None

    return emit


def _lease_namespace() -> str:
    with contextlib.suppress(OSError):
        return Path(SERVICE_ACCOUNT_NAMESPACE).read_text().strip()
    return "default"


def watch_command(
    context: ContextOpt = None,
    kubeconfig: KubeconfigOpt = None,
    intent_path: Annotated[
        str | None,
        typer.Option("--intent", metavar="FILE", help="Report drift from this intent."),
    ] = None,
    fail_on: Annotated[
        FailOn,
        typer.Option(
            "--fail-on",
            help="Stop with exit code 1 at the first newly allowed connection (allowed), the "
            "first drift from --intent (drift) or the first lost watch (unknown).",
        ),
    ] = FailOn.NONE,
    output: Annotated[
        WatchOutput,
        typer.Option("-o", "--output", help="table: one line per report; json: JSON lines."),
    ] = WatchOutput.TABLE,
    events: Annotated[
        bool,
        typer.Option(
            "--events",
            help="Record a Kubernetes Event on each object whose change drifted from the intent "
            "(without --intent: opened a connection).",
        ),
    ] = False,
    metrics_addr: Annotated[
        str | None,
        typer.Option(
            "--metrics-addr", metavar="HOST:PORT", help="Serve Prometheus metrics (e.g. :9090)."
        ),
    ] = None,
    leader_elect: Annotated[
        bool,
        typer.Option(
            "--leader-elect",
            help="Only the replica holding the Lease reports and records Events.",
        ),
    ] = False,
    lease_namespace: Annotated[
        str | None,
        typer.Option(
            "--lease-namespace",
            metavar="NAMESPACE",
            help="Namespace of the Lease (default: the pod's own, else default).",
        ),
    ] = None,
    lease_name: Annotated[str, typer.Option("--lease-name", metavar="NAME")] = "kubezt-watch",
    identity: Annotated[
        str | None,
        typer.Option("--identity", metavar="ID", help="This replica's name (default: host-pid)."),
    ] = None,
    timeout: Annotated[
        float | None,
        typer.Option("--timeout", metavar="SECONDS", help="Stop after this long (exit 0)."),
    ] = None,
    print_manifests: Annotated[
        bool,
        typer.Option(
            "--print-manifests",
            help="Print the manifests that run kubezt watch in the cluster, and exit.",
        ),
    ] = False,
    namespace: Annotated[
        str,
        typer.Option(
            "--namespace", "-n", metavar="NAMESPACE", help="Namespace for --print-manifests."
        ),
    ] = "kubezt-system",
    image: Annotated[
        str, typer.Option("--image", metavar="IMAGE", help="Image for --print-manifests.")
    ] = "ghcr.io/kubezt/kubezt:0.1.0",
    policy: Annotated[
        bool,
        typer.Option(
            "--policy",
            help="With --print-manifests, also kubezt's own zero-trust policy set (Calico + "
            "Istio ambient, compiled from its intent).",
        ),
    ] = False,
) -> None:
    """List and watch the cluster; print every connection whose verdict a change moves (newly
    allowed or denied, by which object, and who changed it from managedFields), and with
    --intent every drift from the intent as it happens. After a lost watch the verdicts are
    reported unknown until the resource is relisted.

    kubezt watch --intent intent.yaml --metrics-addr :9090 --events

    kubezt watch --print-manifests | kubectl apply -f -

    Exit codes: 0 stopped (signal or --timeout), 1 a --fail-on condition, 2 input or cluster
    error."""
    from kubezt.cli.cluster import open_session

    if print_manifests:
        from kubezt.live.deploy import watch_manifests

        docs = guarded(lambda: watch_manifests(namespace, image, policy=policy))
        import yaml

        sys.stdout.write(yaml.safe_dump_all(docs, sort_keys=False))
        raise typer.Exit(EXIT_OK)
    intent = None
    if intent_path is not None:
        from kubezt.dialects.intent import load_intent

        intent = guarded(lambda: load_intent(intent_path))
    session = guarded(lambda: open_session(LoadOptions(context=context, kubeconfig=kubeconfig)))
    metrics = None
    if metrics_addr is not None:
        from kubezt.live.metrics import Metrics

        metrics = Metrics()
        try:
            host, port = metrics.serve(metrics_addr)
        except (OSError, ValueError) as exc:
            usage_error(f"--metrics-addr {metrics_addr}: {exc}")
        err.print(f"kubezt: metrics on http://{host}:{port}/metrics", markup=False)
    me = identity or f"{socket.gethostname()}-{os.getpid()}"
    factory = None
    if leader_elect:
        from kubezt.live.watch import LeaseElector

        ns = lease_namespace or _lease_namespace()

        def factory(on_change: Callable[[bool], None]) -> Any:
            return LeaseElector(session, ns, lease_name, me, on_change)

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    if timeout is not None:
        timer = threading.Timer(timeout, stop.set)
        timer.daemon = True
        timer.start()
    runner = Runner(
        session,
        printer(output),
        intent=intent,
        fail_on=fail_on,
        events=events,
        metrics=metrics,
        elector_factory=factory,
        identity=me,
        stop=stop,
    )
    try:
        code = runner.run()
    finally:
        if metrics is not None:
            metrics.close()
    out.file.flush()
    raise typer.Exit(code)
