"""Keep the cluster's objects current with list + watch, and turn each change into the
connections whose verdict it moved.

One `Informer` thread per resource kubezt reads lists the resource (paginated), then watches
it from the list's resourceVersion with bookmarks, following the resourceVersion of every
event and bookmark. A watch the server ends normally (its timeout) resumes from the last
resourceVersion; a `410 Gone` (the resourceVersion was compacted away) or a lost connection is
reported as `Lost` and followed by a relist, after a back-off when the server failed. A
`Watch` consumes what the informers report in batches: it keeps the objects, drops changes
that only touch `managedFields`, `resourceVersion` or `status` (a pod's addresses excepted),
rebuilds the model from the objects with the same readers `--cluster` uses, and feeds the
differing objects to `IncrementalReach`. While any resource is lost, no verdict is reported:
the state is unknown until every lost resource is relisted, and the first batch after that
reports what moved meanwhile.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import queue
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from kubezt.analysis.diff import Change as DiffChange
from kubezt.analysis.diff import explain_connections
from kubezt.dialects.registry import CachedReader, LoadResult
from kubezt.engine.incremental import (
    ConnectionChange,
    Delta,
    IncrementalReach,
    changes_between,
    net_changes,
    objects,
    rows_of,
)
from kubezt.engine.reach import SYNTHETIC_ANNOTATION
from kubezt.errors import ClusterError, DiagnosticSink
from kubezt.ir.model import Model
from kubezt.live.read import (
    ISTIO,
    MESH_CONFIG,
    Plan,
    Resource,
    to_documents,
)
from kubezt.live.session import Session, _loads

WATCH_TIMEOUT = 300
"""Seconds the server keeps one watch open before it ends it (the watch then resumes)."""
BACKOFF_FIRST, BACKOFF_MAX = 0.5, 30.0
MESH_CONFIG_RESOURCE = Resource(ISTIO, "", "configmaps", "ConfigMap", True)


# -- what informers report ----------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Listed:
    """A complete list of one resource (the first, or the relist after a loss)."""

    resource: Resource
    items: tuple[dict[str, Any], ...]


@dataclass(frozen=True, slots=True)
class Changed:
    resource: Resource
    type: str
    """ADDED, MODIFIED or DELETED."""
    obj: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Lost:
    """The watch of one resource ended abnormally: changes may have been missed."""

    resource: Resource
    reason: str


Signal = Listed | Changed | Lost


# -- informers ----------------------------------------------------------------------------------
class _Cut(Exception):
    """The stream was closed from this side on purpose (`Informer.cut`)."""


@dataclass
class Informer:
    """List + watch of one resource; reports to `out` until `stop` is set."""

    session: Session
    resource: Resource
    version: str
    out: queue.Queue[Any]
    stop: threading.Event
    pool: Any
    watch_timeout: int = WATCH_TIMEOUT
    rv: str = ""
    _response: Any = field(default=None, repr=False)
    _cut_reason: str | None = field(default=None, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)

    @property
    def api_version(self) -> str:
        res = self.resource
        return self.version if not res.group else f"{res.group}/{self.version}"

    @property
    def path(self) -> str:
        res = self.resource
        if res is MESH_CONFIG_RESOURCE:
            return f"/api/v1/namespaces/{MESH_CONFIG[0]}/configmaps"
        return f"{res.base(self.version)}/{res.plural}"

    def _query(self) -> dict[str, str]:
        if self.resource is MESH_CONFIG_RESOURCE:  # the one object RBAC grants
            return {"fieldSelector": f"metadata.name={MESH_CONFIG[1]}"}
        return {}

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self.run, name=f"watch-{self.resource.plural}", daemon=True
        )
        self._thread.start()

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def cut(self, reason: str = "connection lost") -> None:
        """Close the current watch stream as a lost connection would (tests use it too)."""
        self._cut_reason = reason
        self._close()

    def end(self) -> None:
        """End the current watch stream as the server does when its timeout passes: the
        watch resumes from the last resourceVersion."""
        self._cut_reason = ""
        self._close()

    def _close(self) -> None:
        response = self._response
        if response is not None:
            with contextlib.suppress(Exception):
                response.shutdown()

    def run(self) -> None:
        backoff = BACKOFF_FIRST
        listed = False
        while not self.stop.is_set():
            try:
                if not listed:
                    self._list()
                    listed = True
                    backoff = BACKOFF_FIRST
                gone = self._watch()
                if gone is not None:
                    self.out.put(Lost(self.resource, gone))
                    listed = False
            except _Cut as exc:
                if self.stop.is_set():
                    return
                self.out.put(Lost(self.resource, str(exc)))
                listed = False
            except Exception as exc:
                if self.stop.is_set():
                    return
                self.out.put(Lost(self.resource, _reason(exc)))
                listed = False
                self.stop.wait(backoff * (0.5 + random.random()))
                backoff = min(BACKOFF_MAX, backoff * 2)

    def _list(self) -> None:
        items: list[dict[str, Any]] = []
        token = ""
        rv = ""
        while True:
            query = {"limit": "500", **self._query()}
            if token:
                query["continue"] = token
            page = self.session.request(
                "GET", self.path, query, verb="list", resource=self.resource.plural
            )
            meta = page.get("metadata") or {}
            rv = rv or str(meta.get("resourceVersion") or "")
            for item in page.get("items") or ():
                items.append(self._typed(item))
            token = meta.get("continue") or ""
            if not token:
                break
        self.rv = rv
        self.out.put(Listed(self.resource, tuple(items)))

    def _typed(self, item: dict[str, Any]) -> dict[str, Any]:
        item["apiVersion"] = self.api_version
        item["kind"] = self.resource.kind
        return item

    def _watch(self) -> str | None:
        """Watch from `self.rv` until the server ends the stream (None) or answers 410 (the
        reason); raises on failures."""
        import urllib3

        query = {
            **self._query(),
            "watch": "1",
            "allowWatchBookmarks": "true",
            "resourceVersion": self.rv,
            "timeoutSeconds": str(self.watch_timeout),
        }
        headers = {"Accept": "application/json"}
        session = self.session
        session.api.update_params_for_auth(headers, [], ["BearerToken"], self.path, "GET", None)
        self._cut_reason = None
        response = self.pool.request(
            "GET",
            f"{session.server}{self.path}?{urlencode(query)}",
            headers=headers,
            preload_content=False,
            timeout=urllib3.Timeout(connect=10.0, read=self.watch_timeout + 30.0),
            retries=False,
        )
        if response.status == 410:
            return "410 Gone: the resourceVersion is too old"
        if response.status != 200:
            data = response.read()
            raise session._error(
                response.status, data, "GET", self.path, "watch", self.resource.plural
            )
        self._response = response
        if self._cut_reason is not None:  # cut while connecting
            self._close()
        try:
            for line in _lines(response):
                event = _loads(line)
                kind, obj = event.get("type"), event.get("object") or {}
                if kind == "ERROR":
                    if obj.get("code") == 410:
                        return f"410 Gone: {obj.get('message', 'expired')}"
                    raise ClusterError(f"watch {self.resource.plural}: {obj.get('message')}")
                rv = str((obj.get("metadata") or {}).get("resourceVersion") or self.rv)
                if kind != "BOOKMARK":
                    self.out.put(Changed(self.resource, str(kind), self._typed(obj)))
                self.rv = rv
        except Exception:
            if self._cut_reason is None:
                raise
        finally:
            self._response = None
            response.release_conn()
        if self._cut_reason:
            raise _Cut(self._cut_reason)
        return None


def _lines(response: Any) -> Iterator[bytes]:
    buffer = b""
    for chunk in response.stream(65536, decode_content=True):
        buffer += chunk
        while True:
            end = buffer.find(b"\n")
            if end < 0:
                break
            line, buffer = buffer[:end], buffer[end + 1 :]
            if line.strip():
                yield line
    if buffer.strip():
        yield buffer


def _reason(exc: Exception) -> str:
    if isinstance(exc, ClusterError):
        return str(exc)
    text = str(getattr(exc, "reason", None) or exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


# -- objects and noise --------------------------------------------------------------------------
ObjKey = tuple[str, str, str]
"""(kind, namespace, name) of a stored object."""

NOISE_METADATA = ("managedFields", "resourceVersion", "generation")


def essential(obj: dict[str, Any]) -> dict[str, Any]:
    """What of an object can change a verdict: everything but `managedFields`,
    `resourceVersion`, `generation` and `status` (of a pod, only its addresses count)."""
    out = {k: v for k, v in obj.items() if k not in ("metadata", "status")}
    meta = obj.get("metadata") or {}
    out["metadata"] = {k: v for k, v in meta.items() if k not in NOISE_METADATA}
    if obj.get("kind") == "Pod":
        status = obj.get("status") or {}
        out["status"] = {"podIP": status.get("podIP"), "podIPs": status.get("podIPs")}
    return out


@dataclass(frozen=True, slots=True)
class Author:
    """Who last wrote an object, from its `managedFields` (the newest entry)."""

    manager: str
    operation: str
    time: str


def author(obj: dict[str, Any]) -> Author | None:
    entries = (obj.get("metadata") or {}).get("managedFields") or ()
    best: dict[str, Any] | None = None
    for entry in entries:
        if best is None or str(entry.get("time") or "") >= str(best.get("time") or ""):
            best = entry
    if best is None:
        return None
    return Author(
        str(best.get("manager") or ""), str(best.get("operation") or ""), str(best.get("time"))
    )


def obj_key(obj: dict[str, Any]) -> ObjKey:
    meta = obj.get("metadata") or {}
    return (str(obj.get("kind")), str(meta.get("namespace") or ""), str(meta.get("name") or ""))


# -- the watch itself ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Cause:
    """An object whose change moved connections, and who made the change."""

    ref: str
    """`Kind ns/name` as stored."""
    operation: str
    """created, updated or deleted."""
    author: Author | None
    obj: dict[str, Any] | None
    """The object as last seen (for Events)."""


@dataclass(frozen=True, slots=True)
class Moved:
    """One connection whose verdict changed, explained as `diff` explains it."""

    src: str
    dst: str
    change: DiffChange
    causes: tuple[Cause, ...]


@dataclass(frozen=True, slots=True)
class Step:
    """What one batch of changes did."""

    moved: tuple[Moved, ...]
    deltas: tuple[Delta, ...]
    causes: tuple[Cause, ...]
    seconds: float
    """From the batch to its deltas: the model rebuilt from the objects and re-evaluated."""
    relisted: bool = False
    """The first batch after a loss: verdicts are known again."""
    presence: tuple[Presence, ...] = ()
    """Workloads added or removed, with the connections they gained or lost."""


@dataclass(frozen=True, slots=True)
class Presence:
    workload: str
    added: bool
    reaches: int
    reached_by: int


class Watch:
    """The objects and their evaluation: `apply(signals)` takes what informers reported and
    returns what moved (None while a resource is lost or not yet listed)."""

    def __init__(self, context: str, what: Plan, resources: tuple[Resource, ...]) -> None:
        self.context = context
        self.plan = what
        self.resources = resources
        self.store: dict[Resource, dict[ObjKey, dict[str, Any]]] = {}
        self.lost: dict[Resource, str] = {}
        self.loaded: LoadResult | None = None
        self.reach: IncrementalReach | None = None
        self.allowed = 0
        self._pending: dict[ObjKey, Cause] = {}
        self._was_unknown = False
        self._reader = CachedReader()

    @property
    def synced(self) -> bool:
        return self.reach is not None

    @property
    def known(self) -> bool:
        return not self.lost and len(self.store) == len(self.resources)

    @property
    def model(self) -> Model:
        assert self.loaded is not None
        return self.loaded.model

    def record(self, signal: Signal) -> bool:
        """Take one report; whether it may change the model."""
        res = signal.resource
        if isinstance(signal, Lost):
            self.lost[res] = signal.reason
            self._was_unknown = True
            return False
        if isinstance(signal, Listed):
            self.lost.pop(res, None)
            old = self.store.get(res, {})
            new = {obj_key(o): o for o in signal.items}
            for key in old.keys() | new.keys():
                before, after = old.get(key), new.get(key)
                if before is None or after is None or essential(before) != essential(after):
                    self._note(key, before, after)
            self.store[res] = new
            return True
        bucket = self.store.setdefault(res, {})
        key = obj_key(signal.obj)
        before = bucket.get(key)
        if signal.type == "DELETED":
            if before is None:
                return False
            del bucket[key]
            self._note(key, before, None)
            return True
        bucket[key] = signal.obj
        if before is not None and essential(before) == essential(signal.obj):
            return False  # managedFields, status or resourceVersion only
        self._note(key, before, signal.obj)
        return True

    def _note(
        self, key: ObjKey, before: dict[str, Any] | None, after: dict[str, Any] | None
    ) -> None:
        kind, ns, name = key
        ref = f"{kind} {ns}/{name}" if ns else f"{kind} {name}"
        operation = "created" if before is None else "deleted" if after is None else "updated"
        previous = self._pending.get(key)
        if previous is not None and previous.operation == "created" and after is not None:
            operation = "created"
        shown = after if after is not None else before
        self._pending[key] = Cause(
            ref, operation, author(after) if after is not None else None, shown
        )

    def _load(self) -> LoadResult:
        items = [o for res in self.resources for o in self.store.get(res, {}).values()]
        sink = DiagnosticSink()
        sink.extend(self.plan.warnings)
        docs = to_documents(self.context, items)
        return self._reader.load(docs, (f"cluster:{self.context}",), sink)

    def evaluate(self, clock: Callable[[], float] = time.perf_counter) -> Step | None:
        """Re-evaluate after `record`s: None while the state is unknown (a resource lost or
        not listed yet); the first call that can evaluates everything (an empty step)."""
        if not self.known:
            return None
        began = clock()
        loaded = self._load()
        if self.reach is None:
            self.loaded = loaded
            self.reach = IncrementalReach(loaded.model)
            self.allowed = sum(1 for _ in rows_of(self.reach.reachability()))
            self._pending.clear()
            self._was_unknown = False
            return Step((), (), (), clock() - began)
        old = self.model
        deltas = [self.reach.apply(c) for c in changes_between(old, loaded.model)]
        self.loaded = loaded
        net = _net(deltas)
        for c in net:
            self.allowed += int(c.allowed) - int(c.was_allowed)
        causes = tuple(self._pending[k] for k in sorted(self._pending))
        by_key = _causes_by_change(deltas, causes, old)
        moved = tuple(
            Moved(src, dst, change, by_key.get((src, dst, change.port, change.protocol), causes))
            for src, dst, change in explain_connections(old, loaded.model, net)
        )
        relisted = self._was_unknown
        self._pending.clear()
        self._was_unknown = False
        presence = _presence(old, loaded.model, net)
        return Step(moved, tuple(deltas), causes, clock() - began, relisted, presence)


def _net(deltas: list[Delta]) -> list[ConnectionChange]:
    """The connection changes of several deltas in a row: the first `was`, the last `is`;
    a connection that came back to where it was is left out."""
    return net_changes(c for delta in deltas for c in delta.connections)


def _presence(old: Model, new: Model, net: list[ConnectionChange]) -> tuple[Presence, ...]:
    def ids(model: Model) -> set[str]:
        return {w.id for w in model.topology.workloads if SYNTHETIC_ANNOTATION not in w.annotations}

    before, after = ids(old), ids(new)
    out: list[Presence] = []
    for name, added in sorted(
        [(w, True) for w in after - before] + [(w, False) for w in before - after]
    ):
        conns = [c for c in net if (c.allowed if added else c.was_allowed)]
        reaches = {c.dst for c in conns if c.src == name and c.dst != name}
        reached_by = {c.src for c in conns if c.dst == name and c.src != name}
        out.append(Presence(name, added, len(reaches), len(reached_by)))
    return tuple(out)


def _causes_by_change(
    deltas: list[Delta], causes: tuple[Cause, ...], old: Model
) -> dict[tuple[str, str, int, str], tuple[Cause, ...]]:
    """For each connection, the stored objects whose change moved it: the object each IR
    change was read from (for a deletion, the object as it was)."""
    by_ref = {c.ref: c for c in causes}
    before = objects(old)
    out: dict[tuple[str, str, int, str], list[Cause]] = {}
    for delta in deltas:
        obj = delta.change.new if delta.change.new is not None else before.get(delta.change.key)
        source = getattr(obj, "source", None)
        cause = by_ref.get(source.ref) if source is not None else None
        if cause is None:
            continue  # read from an object that did not change (left to the batch's causes)
        for c in delta.connections:
            items = out.setdefault(c.key, [])
            if cause not in items:
                items.append(cause)
    return {k: tuple(v) for k, v in out.items()}


def watched_resources(what: Plan) -> tuple[tuple[Resource, str], ...]:
    """Every (resource, version) to list and watch: the plan's, and the mesh ConfigMap."""
    out = list(what.resources)
    if what.mesh_config:
        out.append((MESH_CONFIG_RESOURCE, "v1"))
    return tuple(out)


def start_informers(
    session: Session,
    what: Plan,
    out: queue.Queue[Any],
    stop: threading.Event,
    watch_timeout: int = WATCH_TIMEOUT,
) -> list[Informer]:
    """One running informer per watched resource, sharing the session's connection pool,
    sized for them (each watch holds a connection)."""
    resources = watched_resources(what)
    pool = session.api.rest_client.pool_manager
    pool.connection_pool_kw["maxsize"] = 2 * len(resources) + 4
    pool.clear()  # the pools made so far are too small for a watch and a list per resource
    informers = [
        Informer(session, res, version, out, stop, pool, watch_timeout)
        for res, version in resources
    ]
    for informer in informers:
        informer.start()
    return informers


# -- leader election ----------------------------------------------------------------------------
def _micro_time(at: dt.datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class LeaseElector:
    """Leader election on a `coordination.k8s.io/v1` Lease, as client-go's leaderelection
    does it: the holder renews `renewTime` every `retry` seconds; another candidate takes the
    lease over when it has not seen the record change for `duration` seconds (its own clock,
    so clocks need not agree), or when the holder released it. `on_change(leading)` is called
    from the elector's thread whenever leadership is gained or lost."""

    session: Session
    namespace: str
    name: str
    identity: str
    on_change: Callable[[bool], None]
    duration: float = 15.0
    renew_deadline: float = 10.0
    retry: float = 2.0
    leading: bool = False
    _stop: threading.Event = field(default_factory=threading.Event)
    _seen: tuple[str, float] = ("", 0.0)
    _renewed: float = 0.0
    _thread: threading.Thread | None = None

    @property
    def path(self) -> str:
        return f"/apis/coordination.k8s.io/v1/namespaces/{self.namespace}/leases"

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="lease", daemon=True)
        self._thread.start()

    def stop(self, release: bool = True) -> None:
        """Stop campaigning; the leader gives the lease up (`release`) so that another
        replica takes over at once rather than after `duration`."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.retry + 15.0)
        if release and self.leading:
            with contextlib.suppress(ClusterError):
                self._release()
            self._set(False)

    def _set(self, leading: bool) -> None:
        if leading != self.leading:
            self.leading = leading
            self.on_change(leading)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._set(self.try_acquire())
            except ClusterError:
                if self.leading and time.monotonic() - self._renewed > self.renew_deadline:
                    self._set(False)
            self._stop.wait(self.retry)

    def try_acquire(self) -> bool:
        """One round: whether this candidate holds the lease afterwards."""
        from kubezt.live.session import Conflict, NotFound

        now = dt.datetime.now(dt.UTC)
        try:
            lease = self.session.get(f"{self.path}/{self.name}", resource="leases")
        except NotFound:
            body = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": self.name, "namespace": self.namespace},
                "spec": self._spec(now, now, 0),
            }
            try:
                self.session.request("POST", self.path, body=body, verb="create", resource="leases")
            except Conflict:
                return False
            self._renewed = time.monotonic()
            return True
        spec = lease.get("spec") or {}
        holder = spec.get("holderIdentity") or ""
        record = f"{holder}|{spec.get('renewTime')}"
        if record != self._seen[0]:
            self._seen = (record, time.monotonic())
        transitions = int(spec.get("leaseTransitions") or 0)
        if holder == self.identity:
            acquired = spec.get("acquireTime") or _micro_time(now)
            lease["spec"] = {**spec, "renewTime": _micro_time(now)}
            lease["spec"]["acquireTime"] = acquired
        else:
            duration = float(spec.get("leaseDurationSeconds") or self.duration)
            if holder and time.monotonic() - self._seen[1] < duration:
                return False
            lease["spec"] = self._spec(now, now, transitions + 1)
        try:
            self.session.request(
                "PUT", f"{self.path}/{self.name}", body=lease, verb="update", resource="leases"
            )
        except Conflict:
            return False
        self._renewed = time.monotonic()
        return True

    def _spec(
        self, acquired: dt.datetime, renewed: dt.datetime, transitions: int
    ) -> dict[str, Any]:
        return {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": int(self.duration),
            "acquireTime": _micro_time(acquired),
            "renewTime": _micro_time(renewed),
            "leaseTransitions": transitions,
        }

    def _release(self) -> None:
        lease = self.session.get(f"{self.path}/{self.name}", resource="leases")
        spec = lease.get("spec") or {}
        if spec.get("holderIdentity") != self.identity:
            return
        now = _micro_time(dt.datetime.now(dt.UTC))
        lease["spec"] = {
            **spec,
            "holderIdentity": "",
            "leaseDurationSeconds": 1,
            "renewTime": now,
            "acquireTime": now,
        }
        self.session.request(
            "PUT", f"{self.path}/{self.name}", body=lease, verb="update", resource="leases"
        )


# -- events -------------------------------------------------------------------------------------
def record_event(
    session: Session,
    obj: dict[str, Any],
    reason: str,
    message: str,
    instance: str,
    event_type: str = "Warning",
) -> dict[str, Any]:
    """Create a core/v1 Event about `obj` (in its namespace; `default` for a cluster-scoped
    object), as kubectl describe shows them."""
    meta = obj.get("metadata") or {}
    namespace = meta.get("namespace") or "default"
    now = dt.datetime.now(dt.UTC)
    body = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": f"{meta.get('name', 'object')}.", "namespace": namespace},
        "involvedObject": {
            "apiVersion": obj.get("apiVersion"),
            "kind": obj.get("kind"),
            "name": meta.get("name"),
            "uid": meta.get("uid"),
            **({"namespace": meta["namespace"]} if meta.get("namespace") else {}),
        },
        "reason": reason,
        "message": message[:1024],
        "type": event_type,
        "source": {"component": "kubezt"},
        "reportingComponent": "kubezt.io/watch",
        "reportingInstance": instance[:128],
        "action": "Verify",
        "firstTimestamp": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "lastTimestamp": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "eventTime": _micro_time(now),
        "count": 1,
    }
    result: dict[str, Any] = session.request(
        "POST",
        f"/api/v1/namespaces/{namespace}/events",
        body=body,
        verb="create",
        resource="events",
    )
    return result
