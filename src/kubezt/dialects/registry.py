"""Which reader handles which (API group, kind), and `load()`: paths → Model + diagnostics.

Owns dispatch, object metadata checks (name, namespace, duplicates) and assembling the IR.
Readers for each dialect live in their own modules; this module only routes to them.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import gc
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from kubezt.dialects import k8s, workloads
from kubezt.dialects._labels import is_dns_label
from kubezt.dialects._reader import Cursor, ObjectContext
from kubezt.dialects._yaml import (
    Document,
    duplicate_key_diagnostic,
    expand_paths,
    load_documents,
    parse_file,
    read_text,
    type_name,
)
from kubezt.dialects.context import ReadContext
from kubezt.dialects.context import Reader as ReaderFn
from kubezt.errors import Diagnostic, DiagnosticSink, Location, Severity
from kubezt.ir.config import MeshConfig
from kubezt.ir.mesh import MeshPolicies
from kubezt.ir.model import Model
from kubezt.ir.policy import PolicySet
from kubezt.ir.provenance import Source
from kubezt.ir.topology import Labels, Namespace, Topology, Workload

MESH_CONFIG_FIELDS = frozenset(MeshConfig.__dataclass_fields__)
Reader = ReaderFn


@dataclass(frozen=True, slots=True)
class Kind:
    reader: Reader
    namespaced: bool


# (API group, kind) → reader. The core group is "".
READERS: dict[tuple[str, str], Kind] = {
    ("", "Namespace"): Kind(workloads.read_namespace, False),
    ("", "ServiceAccount"): Kind(workloads.read_service_account, True),
    ("", "Pod"): Kind(workloads.read_pod, True),
    ("", "Service"): Kind(workloads.read_service, True),
    ("", "ReplicationController"): Kind(workloads.read_controller, True),
    ("apps", "Deployment"): Kind(workloads.read_controller, True),
    ("apps", "StatefulSet"): Kind(workloads.read_controller, True),
    ("apps", "DaemonSet"): Kind(workloads.read_controller, True),
    ("apps", "ReplicaSet"): Kind(workloads.read_controller, True),
    ("batch", "Job"): Kind(workloads.read_controller, True),
    ("batch", "CronJob"): Kind(workloads.read_controller, True),
    ("networking.k8s.io", "NetworkPolicy"): Kind(k8s.read_network_policy, True),
}


def _dialect_tables() -> None:
    """Merge each dialect package's table `{(group, kind): (reader, namespaced)}`."""
    from kubezt.dialects import policy_api
    from kubezt.dialects.calico import policy as calico_policy
    from kubezt.dialects.istio import resources as istio_resources

    for table in (calico_policy.READERS, istio_resources.READERS, policy_api.READERS):
        for key, (reader, namespaced) in table.items():
            READERS[key] = Kind(reader, namespaced)


_dialect_tables()

VERSIONS: dict[str, tuple[str, ...]] = {
    "": ("v1",),
    "apps": ("v1",),
    "batch": ("v1",),
    "networking.k8s.io": ("v1",),
    "projectcalico.org": ("v3",),
    "crd.projectcalico.org": ("v1",),
    "security.istio.io": ("v1", "v1beta1"),
    "networking.istio.io": ("v1", "v1beta1", "v1alpha3"),
    "gateway.networking.k8s.io": ("v1", "v1beta1"),
}
"""The versions of each API group kubezt reads (`policy.networking.k8s.io` checks its own:
each kind exists in one version, anything else is an error)."""


@dataclass(frozen=True, slots=True)
class LoadResult:
    """A loaded model and the warnings/notes about it (errors are raised, never returned)."""

    model: Model
    diagnostics: tuple[Diagnostic, ...]
    skipped: tuple[str, ...]
    files: tuple[str, ...]

    @property
    def warnings(self) -> tuple[Diagnostic, ...]:
        return tuple(d for d in self.diagnostics if d.severity is Severity.WARNING)


def load(paths: Sequence[str]) -> LoadResult:
    """Read every manifest under `paths` into one Model.

    Raises `InputError` with every error of every file when any input is invalid.
    """
    sink = DiagnosticSink()
    files = expand_paths(paths, sink)
    return load_parsed((doc for docs in _documents(files, sink) for doc in docs), files, sink)


def parse_paths(paths: Sequence[str], sink: DiagnosticSink) -> tuple[list[Document], list[str]]:
    """The documents of every manifest under `paths` (problems go to `sink`), and the files."""
    files = expand_paths(paths, sink)
    return [doc for docs in _documents(files, sink) for doc in docs], files


def load_parsed(
    docs: Iterable[Document], files: Sequence[str], sink: DiagnosticSink | None = None
) -> LoadResult:
    """`load()` for documents already at hand: objects read from a live cluster (their `file`
    is their origin, `cluster:CONTEXT Kind ns/name`), or files merged with them. `sink` may
    already hold diagnostics about the input (they are reported with the result)."""
    sink = sink if sink is not None else DiagnosticSink()
    rc = ReadContext(sink)
    seen: dict[tuple[str, str, str, str], Location] = {}
    # Reading builds millions of small acyclic objects and keeps every document's node tree
    # for locating fields; the cyclic garbage collector would rescan that growing heap again
    # and again (it doubled load time on large clusters), so it pauses while we read (files
    # are parsed lazily from `docs`, inside the pause), and while the model is assembled from
    # what was read.
    collecting = gc.isenabled()
    gc.disable()
    try:
        for doc in docs:
            _read_document(doc, rc, seen)
        model = assemble(rc)
    finally:
        if collecting:
            gc.enable()
    sink.raise_if_errors()
    diagnostics = tuple(sorted(sink.items, key=Diagnostic.sort_key))
    return LoadResult(model, diagnostics, tuple(rc.skipped), tuple(files))


class CachedReader:
    """`load_parsed()` for documents that change a few at a time (a watched cluster): each
    document is read once, and its result is reused while the same data object comes again
    under the same origin (`Document.file`). The result equals `load_parsed()` of the same
    documents: the model is assembled from the per-document results in document order, and
    the checks that need every document (`ReadContext.finishers`) run on the whole."""

    def __init__(self) -> None:
        self._cache: dict[str, tuple[object, ReadContext]] = {}

    def load(
        self, docs: Iterable[Document], files: Sequence[str], sink: DiagnosticSink | None = None
    ) -> LoadResult:
        sink = sink if sink is not None else DiagnosticSink()
        rc = ReadContext(sink)
        fresh: dict[str, tuple[object, ReadContext]] = {}
        collecting = gc.isenabled()
        gc.disable()
        try:
            for doc in docs:
                hit = self._cache.get(doc.file)
                if hit is None or hit[0] is not doc.data:
                    one = ReadContext(DiagnosticSink())
                    _read_document(doc, one, {})
                    hit = (doc.data, one)
                fresh[doc.file] = hit
                _merge(rc, hit[1])
        finally:
            if collecting:
                gc.enable()
        self._cache = fresh
        model = assemble(rc)
        sink.raise_if_errors()
        diagnostics = tuple(sorted(sink.items, key=Diagnostic.sort_key))
        return LoadResult(model, diagnostics, tuple(rc.skipped), tuple(files))


def _merge(into: ReadContext, one: ReadContext) -> None:
    into.sink.extend(one.sink.items)
    for name in (
        "namespaces", "service_accounts", "workloads", "services", "policies", "tiers",
        "network_sets", "peer_authentications", "authorization_policies", "destination_rules",
        "waypoints", "nodes", "skipped", "finishers",
    ):  # fmt: skip
        getattr(into, name).extend(getattr(one, name))
    into.mesh_settings.update(one.mesh_settings)


PARALLEL_BYTES = 8 << 20
"""Inputs with more YAML than this are parsed by one worker process per core. JSON is not
counted: decoded at about the speed of the format (orjson for `kubectl get -o json` Lists),
sending its documents back from a worker would cost more than decoding them (10,000 pods as
JSON: 2.7 CPU s in workers against 1.2 s in one process)."""


def _documents(files: list[str], sink: DiagnosticSink) -> Iterator[list[Document]]:
    """The documents of each file, in order. Large inputs of several files are parsed in
    parallel: YAML parsing dominates the time on big clusters and is CPU-bound."""
    on_disk = [f for f in files if f != "-"]
    size = 0
    for file in on_disk:
        if file.lower().endswith(".json"):
            continue
        with contextlib.suppress(OSError):
            size += os.path.getsize(file)
    workers = min(os.cpu_count() or 1, 4, len(on_disk))
    if size and size >= PARALLEL_BYTES and workers > 1 and "-" not in files:
        try:
            with concurrent.futures.ProcessPoolExecutor(workers) as pool:
                results = list(pool.map(parse_file, files, chunksize=4))
        except (OSError, concurrent.futures.process.BrokenProcessPool):
            results = None  # no worker processes here: read the files one by one below
        if results is not None:
            for docs, diagnostics in results:
                sink.extend(diagnostics)
                yield docs
            return
    for file in files:
        text = read_text(file, sink)
        if text is None:
            continue
        yield list(load_documents(text, file, sink))


def _read_document(
    doc: Document, rc: ReadContext, seen: dict[tuple[str, str, str, str], Location]
) -> None:
    data = doc.data
    api_version, kind = data.get("apiVersion"), data.get("kind")
    group = ""
    if isinstance(api_version, str) and "/" in api_version:
        group = api_version.rpartition("/")[0]
    entry = READERS.get((group, kind)) if isinstance(kind, str) else None
    ref = _ref_of(data, entry)
    for dup in doc.duplicates:
        rc.sink.add(duplicate_key_diagnostic(dup, doc.file, ref))
    loc = doc.locate(())
    if not isinstance(kind, str) or not kind:
        rc.sink.add(
            Diagnostic(
                Severity.ERROR,
                "E006",
                f"expected a kind, got {type_name(kind)}",
                doc.locate(("kind",)),
                path="kind",
            )
        )
        return
    if not isinstance(api_version, str) or not api_version:
        rc.sink.add(
            Diagnostic(
                Severity.ERROR,
                "E006",
                f"expected an apiVersion such as v1 or apps/v1, got {type_name(api_version)}",
                doc.locate(("apiVersion",)),
                obj=ref,
                path="apiVersion",
            )
        )
        return
    if entry is None:
        rc.skipped.append(f"{loc}: {api_version} {kind} {_name_of(data)}")
        return
    ctx = ObjectContext(doc, ref, rc.sink)
    root = Cursor(ctx, data)
    known = VERSIONS.get(group)
    version = api_version.rpartition("/")[2]
    if known is not None and version not in known:
        root["apiVersion"].warn(
            f"{api_version} is not a version kubezt knows (it reads "
            + " and ".join(f"{group + '/' if group else ''}{v}" for v in known)
            + f"); this {kind} is read as {known[0]} and may be misread: check its fields",
            "W003",
        )
    meta = root["metadata"]
    if not isinstance(data.get("metadata"), dict):
        meta.error("object metadata (a mapping with name)", "E007")
        return
    name_cur = meta["name"]
    if name_cur.present and not isinstance(name_cur.value, str):
        name_cur.error("a name (a string)", "E007")
        return
    generated = not name_cur.present
    name = meta["generateName"].str() if generated else name_cur.value
    if not name:
        name_cur.error("a name", "E007")
        return
    if not generated and kind == "Namespace" and not is_dns_label(name):
        name_cur.error(
            "a namespace name (a DNS label: at most 63 lower-case alphanumerics or '-')", "E007"
        )
        return
    if not generated and kind != "Namespace" and not _is_subdomain(name):
        name_cur.error(
            "an object name (a DNS subdomain: at most 253 lower-case alphanumerics, '-' or '.')",
            "E007",
        )
        return
    namespace: str | None = None
    if entry.namespaced:
        ns_cur = meta["namespace"]
        namespace = ns_cur.value if ns_cur.present and ns_cur.value != "" else "default"
        if not isinstance(namespace, str) or not is_dns_label(namespace):
            ns_cur.error(
                "a namespace name (a DNS label: at most 63 lower-case alphanumerics or '-')",
                "E007",
            )
            return
    ctx.obj = f"{kind} {namespace}/{name}" if namespace else f"{kind} {name}"
    key = (group, kind, namespace or "", name)
    if generated:
        pass  # the API server appends a random suffix: two such objects never collide
    elif key in seen:
        rc.sink.add(
            Diagnostic(
                Severity.ERROR,
                "E008",
                f"expected each object once, got {ctx.obj} again (first at {seen[key]})",
                loc,
                ctx.obj,
                hint="remove one of them, or give them different names",
            )
        )
        return
    else:
        seen[key] = loc
    src = Source(kind, name, namespace, loc)
    entry.reader(root, meta, src, rc)


_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def _is_subdomain(name: str) -> bool:
    return len(name) <= 253 and bool(_SUBDOMAIN.match(name))


def _ref_of(data: dict[str, object], entry: Kind | None) -> str:
    """`Kind ns/name` (or `Kind name`) as far as it can be told from possibly invalid data."""
    kind = data.get("kind")
    if not isinstance(kind, str) or not kind:
        return ""
    meta = data.get("metadata")
    if not isinstance(meta, dict):
        return kind
    name = meta.get("name")
    if not isinstance(name, str) or not name:
        name = meta.get("generateName")
    if not isinstance(name, str) or not name:
        return kind
    namespace = meta.get("namespace")
    if entry is not None and not entry.namespaced:
        namespace = None
    elif entry is not None and namespace is None:
        namespace = "default"
    return f"{kind} {namespace}/{name}" if isinstance(namespace, str) else f"{kind} {name}"


def _name_of(data: dict[str, object]) -> str:
    meta = data.get("metadata")
    if isinstance(meta, dict):
        name = meta.get("name")
        ns = meta.get("namespace")
        if isinstance(name, str):
            return f"{ns}/{name}" if isinstance(ns, str) else name
    return ""


def assemble(rc: ReadContext) -> Model:
    """Build the IR from what the readers collected; referenced namespaces always exist."""
    for finish in rc.finishers:
        finish(rc)
    namespaces = {ns.name: ns for ns in rc.namespaces}
    referenced = {w.namespace for w in rc.workloads} | {sa.namespace for sa in rc.service_accounts}
    referenced |= {s.namespace for s in rc.services}
    referenced |= {p.namespace for p in rc.policies if p.namespace}
    for name in sorted(referenced - namespaces.keys()):
        namespaces[name] = Namespace(
            name, Labels({"kubernetes.io/metadata.name": name}), declared=False
        )
    by_id: dict[str, Workload] = {}
    for w in rc.workloads:
        first = by_id.setdefault(w.id, w)
        if first is not w:
            where = first.source.location if first.source else None
            rc.sink.add(
                Diagnostic(
                    Severity.ERROR,
                    "E009",
                    f"expected a workload id used by one object, got {w.id} again (first: "
                    f"{first.kind} {w.id}" + (f" at {where})" if where else ")"),
                    w.source.location if w.source else None,
                    f"{w.kind} {w.id}",
                    hint="kubezt names workloads namespace/name; give each a distinct name",
                )
            )
    service_accounts = {(sa.namespace, sa.name): sa for sa in rc.service_accounts}
    topology = Topology(
        namespaces=dict(sorted(namespaces.items())),
        service_accounts=service_accounts,
        workloads=tuple(sorted(rc.workloads, key=lambda w: (w.namespace, w.name, w.kind))),
        services=tuple(sorted(rc.services, key=lambda s: (s.namespace, s.name))),
    )
    policies = PolicySet(
        policies=tuple(rc.policies),
        tiers=tuple(sorted(rc.tiers, key=lambda t: t.name)),
        network_sets=tuple(rc.network_sets),
    )
    mesh = MeshPolicies(
        peer_authentications=tuple(rc.peer_authentications),
        authorization_policies=tuple(rc.authorization_policies),
        destination_rules=tuple(rc.destination_rules),
        waypoints=tuple(rc.waypoints),
    )
    settings = {k: v for k, v in rc.mesh_settings.items() if k in MESH_CONFIG_FIELDS}
    mesh_config = MeshConfig(**settings)  # type: ignore[arg-type]
    return Model(topology, policies, mesh_config, mesh)
