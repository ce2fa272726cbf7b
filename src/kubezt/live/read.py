"""Read the objects kubezt analyses from a live cluster into the same IR files give.

Every kind a dialect reads is listed cluster-wide with pagination and its raw JSON handed to
the same readers files go through; each object's origin is `cluster:CONTEXT Kind ns/name`
wherever a file would give `file:line`.

Products are found through discovery:
* Kubernetes kinds are always required;
* Calico: `projectcalico.org/v3` when served (the Calico API server, or Calico's v3 CRDs),
  else `crd.projectcalico.org/v1` with Calico's stored-name conventions undone (the
  `projectcalico.org/metadata` annotation, the `default.` prefix of default-tier policies);
  `knp.default.*` / `kanp.*` / `kbanp.*` views of Kubernetes policies are skipped (they are read
  as themselves);
* Istio: `security.istio.io` and `networking.istio.io`, plus the mesh ConfigMap `istio` in
  `istio-system`;
* Gateway API: `gateway.networking.k8s.io` Gateways (waypoints);
* each kind of the Kubernetes policy API (`policy.networking.k8s.io` ClusterNetworkPolicy,
  AdminNetworkPolicy, BaselineAdminNetworkPolicy) and Antrea's ClusterNetworkPolicy, when
  served (W090 names each that is not).

A product none of whose API groups is served is taken to be absent, with a warning saying so
(W090); a product that is only partly installed, a 401 or a 403 is an error: kubezt never
evaluates with a policy kind silently missing.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from kubezt.dialects._yaml import Document
from kubezt.dialects.registry import READERS, LoadResult, load_parsed
from kubezt.errors import ClusterError, Diagnostic, DiagnosticSink, Location, Severity
from kubezt.live.session import NotFound, Session

CALICO_METADATA = "projectcalico.org/metadata"
CALICO_POLICY_KINDS = frozenset(
    {"NetworkPolicy", "GlobalNetworkPolicy", "StagedNetworkPolicy", "StagedGlobalNetworkPolicy"}
)
CALICO_VIEW_PREFIXES = ("knp.default.", "staged:knp.default.", "kanp.", "kbanp.")
MESH_CONFIG = ("istio-system", "istio")


@dataclass(frozen=True, slots=True)
class Resource:
    """One kind kubezt reads: where it is served and which product it belongs to."""

    product: str
    group: str
    plural: str
    kind: str
    namespaced: bool

    def base(self, version: str) -> str:
        return "/api/v1" if not self.group else f"/apis/{self.group}/{version}"

    @property
    def rbac_resource(self) -> str:
        return self.plural


KUBERNETES = "Kubernetes"
CALICO = "Calico"
ISTIO = "Istio"
GATEWAY_API = "Gateway API"

CORE: tuple[Resource, ...] = (
    Resource(KUBERNETES, "", "namespaces", "Namespace", False),
    Resource(KUBERNETES, "", "nodes", "Node", False),
    Resource(KUBERNETES, "", "serviceaccounts", "ServiceAccount", True),
    Resource(KUBERNETES, "", "pods", "Pod", True),
    Resource(KUBERNETES, "", "services", "Service", True),
    Resource(KUBERNETES, "", "replicationcontrollers", "ReplicationController", True),
    Resource(KUBERNETES, "apps", "deployments", "Deployment", True),
    Resource(KUBERNETES, "apps", "statefulsets", "StatefulSet", True),
    Resource(KUBERNETES, "apps", "daemonsets", "DaemonSet", True),
    Resource(KUBERNETES, "apps", "replicasets", "ReplicaSet", True),
    Resource(KUBERNETES, "batch", "jobs", "Job", True),
    Resource(KUBERNETES, "batch", "cronjobs", "CronJob", True),
    Resource(KUBERNETES, "networking.k8s.io", "networkpolicies", "NetworkPolicy", True),
)
_CALICO_KINDS = (
    ("networkpolicies", "NetworkPolicy", True),
    ("globalnetworkpolicies", "GlobalNetworkPolicy", False),
    ("stagednetworkpolicies", "StagedNetworkPolicy", True),
    ("stagedglobalnetworkpolicies", "StagedGlobalNetworkPolicy", False),
    ("stagedkubernetesnetworkpolicies", "StagedKubernetesNetworkPolicy", True),
    ("tiers", "Tier", False),
    ("networksets", "NetworkSet", True),
    ("globalnetworksets", "GlobalNetworkSet", False),
    ("felixconfigurations", "FelixConfiguration", False),
    ("hostendpoints", "HostEndpoint", False),
)
CALICO_V3 = tuple(Resource(CALICO, "projectcalico.org", p, k, n) for p, k, n in _CALICO_KINDS)
CALICO_CRD = tuple(Resource(CALICO, "crd.projectcalico.org", p, k, n) for p, k, n in _CALICO_KINDS)
MESH: tuple[Resource, ...] = (
    Resource(ISTIO, "security.istio.io", "peerauthentications", "PeerAuthentication", True),
    Resource(ISTIO, "security.istio.io", "authorizationpolicies", "AuthorizationPolicy", True),
    Resource(ISTIO, "networking.istio.io", "destinationrules", "DestinationRule", True),
    Resource(GATEWAY_API, "gateway.networking.k8s.io", "gateways", "Gateway", True),
)
OPTIONAL: tuple[Resource, ...] = (
    Resource("Policy API", "policy.networking.k8s.io", "clusternetworkpolicies",
             "ClusterNetworkPolicy", False),
    Resource("Policy API", "policy.networking.k8s.io", "adminnetworkpolicies",
             "AdminNetworkPolicy", False),
    Resource("Policy API", "policy.networking.k8s.io", "baselineadminnetworkpolicies",
             "BaselineAdminNetworkPolicy", False),
    Resource("Antrea", "crd.antrea.io", "clusternetworkpolicies", "ClusterNetworkPolicy", False),
)  # fmt: skip
"""Kinds read when served, each on its own (a cluster has one generation of the policy API)."""
ABSENT_MEANS = {
    CALICO: "no Calico policy (only Kubernetes NetworkPolicy is enforced)",
    ISTIO: "no mesh",
    GATEWAY_API: "no waypoints",
}


@dataclass(frozen=True, slots=True)
class Plan:
    """What to read: each resource with the version it is served at."""

    resources: tuple[tuple[Resource, str], ...]
    warnings: tuple[Diagnostic, ...]
    mesh_config: bool


def every_resource() -> tuple[Resource, ...]:
    """Everything kubezt may read, for `kubezt rbac`."""
    return CORE + CALICO_V3 + CALICO_CRD + MESH + OPTIONAL


def plan(session: Session) -> Plan:
    """Discover which products the cluster serves, at which versions."""
    groups: dict[str, list[str]] = {"": ["v1"]}
    for group in session.get("/apis", resource="API groups")["groups"]:
        preferred = group["preferredVersion"]["version"]
        others = [v["version"] for v in group.get("versions", ()) if v["version"] != preferred]
        groups[group["name"]] = [preferred, *others]
    served_at: dict[tuple[str, str], str] = {}

    def version_of(res: Resource) -> str | None:
        for version in groups.get(res.group, ()):
            key = (res.group, version)
            if key not in served_at:
                listing = session.get(
                    res.base(version), resource=f"API group {res.group or 'core'}/{version}"
                )
                served_at[key] = " ".join(r["name"] for r in listing.get("resources", ()))
            if res.plural in served_at[key].split():
                return version
        return None

    origin = Location(f"cluster:{session.context}")
    warnings: list[Diagnostic] = []
    chosen: list[tuple[Resource, str]] = []
    calico = CALICO_V3 if "projectcalico.org" in groups else CALICO_CRD
    by_product: dict[str, list[Resource]] = {}
    for res in CORE + calico + MESH:
        by_product.setdefault(res.product, []).append(res)
    for product, resources in by_product.items():
        product_groups = {r.group for r in resources}
        if product != KUBERNETES and not product_groups & groups.keys():
            warnings.append(
                Diagnostic(
                    Severity.WARNING,
                    "W090",
                    f"{product} CRDs not installed ({', '.join(sorted(product_groups))} not "
                    f"served): {ABSENT_MEANS[product]}",
                    origin,
                )
            )
            continue
        for res in resources:
            version = version_of(res)
            if version is None:
                raise ClusterError(
                    f"{product} is only partly installed on cluster {session.context}: "
                    f"{res.plural}.{res.group or 'core'} ({res.kind}) is not served; "
                    "install its CRDs completely"
                )
            chosen.append((res, version))
    for res in OPTIONAL:
        version = version_of(res)
        if version is None:
            warnings.append(
                Diagnostic(
                    Severity.WARNING,
                    "W090",
                    f"{res.kind} ({res.plural}.{res.group}) not served: none read",
                    origin,
                )
            )
        else:
            chosen.append((res, version))
    return Plan(
        tuple(chosen),
        tuple(warnings),
        mesh_config=any(r.product == ISTIO for r, _ in chosen),
    )


ReadProgress = Callable[[str, int, int, int], None]
"""Told, as a read goes: the kind being read (its plural), how many kinds were read before it,
how many kinds there are to read, and how many objects were read so far."""


def read_objects(
    session: Session, what: Plan, progress: ReadProgress | None = None
) -> Iterator[dict[str, Any]]:
    """Every object of the plan, as the JSON the server returned (with apiVersion and kind);
    `progress` is told of each kind as it starts and of each object read."""
    count = 0
    kinds = len(what.resources)
    for done, (res, version) in enumerate(what.resources):
        api_version = version if not res.group else f"{res.group}/{version}"
        path = f"{res.base(version)}/{res.plural}"
        if progress is not None:
            progress(res.plural, done, kinds, count)
        for item in session.list(path, resource=f"{res.plural}.{res.group or 'core'}"):
            item["apiVersion"] = api_version
            item["kind"] = res.kind
            meta = item.get("metadata")
            if isinstance(meta, dict):
                meta.pop("managedFields", None)
            count += 1
            if progress is not None:
                progress(res.plural, done, kinds, count)
            yield item
    if what.mesh_config:
        namespace, name = MESH_CONFIG
        try:
            config = session.get(
                f"/api/v1/namespaces/{namespace}/configmaps/{name}",
                resource=f"configmaps {namespace}/{name}",
            )
        except NotFound:
            return
        config["apiVersion"], config["kind"] = "v1", "ConfigMap"
        yield config


def calico_crd_to_v3(obj: dict[str, Any]) -> dict[str, Any] | None:
    """Undo Calico's storage conventions on a `crd.projectcalico.org/v1` object (None: a view of
    another object, to skip)."""
    meta = obj.get("metadata") or {}
    annotations = dict(meta.get("annotations") or {})
    stored = annotations.pop(CALICO_METADATA, None)
    name = meta.get("name", "")
    if stored:
        try:
            v3 = json.loads(stored)
        except ValueError:
            v3 = {}
        if isinstance(v3, dict):
            name = v3.get("name") or name
            meta["labels"] = {**(meta.get("labels") or {}), **(v3.get("labels") or {})}
            annotations.update(v3.get("annotations") or {})
    elif obj.get("kind") in CALICO_POLICY_KINDS:
        tier = (obj.get("spec") or {}).get("tier") or "default"
        if tier == "default":
            name = name.removeprefix("default.")
    meta["name"] = name
    meta["annotations"] = annotations
    if not annotations:
        meta.pop("annotations")
    obj["metadata"] = meta
    return obj


def owned_views(objects: list[dict[str, Any]]) -> set[int]:
    """Indexes of objects that a controller in the list stands for.

    A Pod run by a controller kubezt reads is the workload (it has the real labels and
    address), so that controller (and its own owners) are left out; a controller with no pods
    (scaled to zero, or never run) stands for its workload through its pod template, and
    controllers it owns (a Deployment's ReplicaSets, a CronJob's Jobs) are left out.
    """
    controllers = {
        (o.get("metadata") or {}).get("uid"): i
        for i, o in enumerate(objects)
        if o.get("kind") not in ("Pod", "Namespace", "ServiceAccount", "Service", "Node")
        and o.get("apiVersion") in ("v1", "apps/v1", "batch/v1")
    }
    controllers.pop(None, None)

    def owner(obj: dict[str, Any]) -> str | None:
        for ref in (obj.get("metadata") or {}).get("ownerReferences") or ():
            if ref.get("controller") and ref.get("uid") in controllers:
                return str(ref["uid"])
        return None

    skip: set[int] = set()
    for obj in objects:
        if obj.get("kind") == "Pod":
            uid = owner(obj)
            while uid is not None:  # a pod covers its owner chain
                index = controllers[uid]
                if index in skip:
                    break
                skip.add(index)
                uid = owner(objects[index])
    for index in controllers.values():
        if owner(objects[index]) is not None:
            skip.add(index)  # its owner stands for it (or is itself covered by pods)
    return skip


def origin(context: str, obj: dict[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace")
    ref = f"{ns}/{meta.get('name', '')}" if ns else str(meta.get("name", ""))
    return f"cluster:{context} {obj.get('kind')} {ref}"


def documents(session: Session, what: Plan, progress: ReadProgress | None = None) -> list[Document]:
    """The cluster's objects as documents for the dialect readers; each origin names the
    object as stored (what `kubectl get` shows)."""
    objects: list[dict[str, Any]] = []
    origins: list[str] = []
    for obj in read_objects(session, what, progress):
        where = origin(session.context, obj)
        if obj["apiVersion"].startswith(("crd.projectcalico.org/", "projectcalico.org/")):
            if str((obj.get("metadata") or {}).get("name", "")).startswith(CALICO_VIEW_PREFIXES):
                continue
            if obj["apiVersion"].startswith("crd."):
                obj = calico_crd_to_v3(obj) or obj
        objects.append(obj)
        origins.append(where)
    skip = owned_views(objects)
    return [
        Document(obj, where, 0, None)
        for i, (obj, where) in enumerate(zip(objects, origins, strict=True))
        if i not in skip
    ]


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The cluster's objects as read once, and the warnings about absent products."""

    context: str
    documents: tuple[Document, ...]
    warnings: tuple[Diagnostic, ...]

    def load(self, extra: Iterable[Document] = (), files: tuple[str, ...] = ()) -> LoadResult:
        """The model; `extra` documents replace the cluster's objects of the same kind,
        namespace and name (the state after applying them)."""
        docs = list(self.documents)
        extra = list(extra)
        if extra:
            replaced = {_key(d.data) for d in extra}
            docs = [d for d in docs if _key(d.data) not in replaced] + extra
        sink = DiagnosticSink()
        sink.extend(self.warnings)
        return load_parsed(docs, (f"cluster:{self.context}", *files), sink)


def snapshot(session: Session, progress: ReadProgress | None = None) -> Snapshot:
    what = plan(session)
    return Snapshot(session.context, tuple(documents(session, what, progress)), what.warnings)


def load_cluster(
    session: Session,
    extra: Iterable[Document] = (),
    files: tuple[str, ...] = (),
    progress: ReadProgress | None = None,
) -> LoadResult:
    """The cluster's model (warnings about absent products included), with `extra` documents
    applied over it; `progress` is told how the read goes."""
    return snapshot(session, progress).load(extra, files)


def _key(obj: Any) -> tuple[str, str, str, str]:
    if not isinstance(obj, dict):
        return ("", "", "", "")
    meta = obj.get("metadata") or {}
    group = str(obj.get("apiVersion", "")).rpartition("/")[0]
    group = "projectcalico.org" if group == "crd.projectcalico.org" else group
    kind = str(obj.get("kind", ""))
    entry = READERS.get((str(obj.get("apiVersion", "")).rpartition("/")[0], kind))
    ns = meta.get("namespace") or ("default" if entry is None or entry.namespaced else "")
    return (group, str(obj.get("kind", "")), str(ns), str(meta.get("name", "")))
