"""Server-side apply of a manifest set, in the given (rollout) order, safely.

* field manager `kubezt`; a conflict with another manager is reported, never forced;
* what kubezt creates, and every policy object it writes, carries the label
  `app.kubernetes.io/managed-by: kubezt` (what `prune` looks for);
* every object is read before the first write; when the server rejects one halfway, the
  objects written so far are put back as they were (created ones deleted) and the report says
  exactly what was applied and restored;
* `dry_run` sends every object with `dryRun=All`: the server's verdict on each, nothing stored;
* `prune` deletes kubezt-owned policy objects that the set no longer contains.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from kubezt.errors import ClusterError
from kubezt.live.session import Conflict, NotFound, Session

FIELD_MANAGER = "kubezt"
OWNER_LABEL = "app.kubernetes.io/managed-by"
OWNER_VALUE = "kubezt"
PRUNABLE: tuple[tuple[str, str], ...] = (
    ("networking.k8s.io", "NetworkPolicy"),
    ("projectcalico.org", "NetworkPolicy"),
    ("projectcalico.org", "GlobalNetworkPolicy"),
    ("projectcalico.org", "NetworkSet"),
    ("projectcalico.org", "GlobalNetworkSet"),
    ("projectcalico.org", "Tier"),
    ("security.istio.io", "PeerAuthentication"),
    ("security.istio.io", "AuthorizationPolicy"),
    ("networking.istio.io", "ServiceEntry"),
    ("gateway.networking.k8s.io", "Gateway"),
)
"""Kinds `prune` may delete: policy objects only, never namespaces or service accounts."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one object: created, configured, unchanged, deleted (prune), rejected,
    conflict, restored or not-applied (after a failure)."""

    ref: str
    action: str
    message: str = ""


@dataclass
class ApplyReport:
    dry_run: bool
    outcomes: list[Outcome] = field(default_factory=list)
    failed: bool = False
    restored: list[Outcome] = field(default_factory=list)

    def document(self) -> dict[str, Any]:
        return {
            "schemaVersion": "kubezt.io/apply/v1",
            "dryRun": self.dry_run,
            "ok": not self.failed,
            "objects": [
                {
                    "object": o.ref,
                    "action": o.action,
                    **({"message": o.message} if o.message else {}),
                }
                for o in self.outcomes
            ],
            "restored": [{"object": o.ref, "action": o.action} for o in self.restored],
        }


class Resolver:
    """Kind → REST path, from the server's discovery (cached per group version)."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._cache: dict[str, dict[str, tuple[str, bool]]] = {}

    def resource(self, api_version: str, kind: str) -> tuple[str, bool]:
        if api_version not in self._cache:
            base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
            try:
                listing = self.session.get(base, resource=f"API {api_version}")
            except NotFound:
                raise ClusterError(
                    f"the cluster does not serve {api_version} (is the product installed?)"
                ) from None
            self._cache[api_version] = {
                r["kind"]: (r["name"], r["namespaced"])
                for r in listing.get("resources", ())
                if "/" not in r["name"]
            }
        found = self._cache[api_version].get(kind)
        if found is None:
            raise ClusterError(f"the cluster serves no {kind} in {api_version}")
        return found

    def path(self, obj: dict[str, Any], *, collection: bool = False) -> str:
        api_version, kind = obj["apiVersion"], obj["kind"]
        plural, namespaced = self.resource(api_version, kind)
        base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
        meta = obj.get("metadata") or {}
        ns = f"/namespaces/{meta.get('namespace') or 'default'}" if namespaced else ""
        return f"{base}{ns}/{plural}" + ("" if collection else f"/{meta['name']}")


def ref(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    name = meta.get("name", "")
    ns = meta.get("namespace")
    return f"{obj.get('kind')} {ns}/{name}" if ns else f"{obj.get('kind')} {name}"


def group_of(obj: dict[str, Any]) -> str:
    return str(obj.get("apiVersion", "")).rpartition("/")[0]


def _labelled(obj: dict[str, Any], owned: bool) -> dict[str, Any]:
    obj = copy.deepcopy(obj)
    if owned:
        meta = obj.setdefault("metadata", {})
        meta.setdefault("labels", {})[OWNER_LABEL] = OWNER_VALUE
    return obj


def apply_objects(
    session: Session,
    objects: Sequence[dict[str, Any]],
    *,
    dry_run: bool = False,
    prune: bool = False,
) -> ApplyReport:
    """Apply `objects` in order (see the module docstring)."""
    resolver = Resolver(session)
    report = ApplyReport(dry_run)
    query = {"fieldManager": FIELD_MANAGER, "force": "false"}
    if dry_run:
        query["dryRun"] = "All"
    paths = [resolver.path(obj) for obj in objects]
    saved: list[dict[str, Any] | None] = []
    for obj, path in zip(objects, paths, strict=True):
        try:
            saved.append(session.get(path, resource=ref(obj)))
        except NotFound:
            saved.append(None)
    written: list[int] = []
    for i, (obj, path) in enumerate(zip(objects, paths, strict=True)):
        before = saved[i]
        labels = ((before or {}).get("metadata") or {}).get("labels") or {}
        owned = (
            before is None
            or labels.get(OWNER_LABEL) == OWNER_VALUE  # created by an earlier apply: stays so
            or (group_of(obj), obj.get("kind")) in PRUNABLE
        )
        body = _labelled(obj, owned)
        try:
            after = session.request(
                "PATCH",
                path,
                query,
                body,
                "application/apply-patch+yaml",
                verb="patch",
                resource=ref(obj),
            )
        except ClusterError as exc:  # rejected, conflicting, or the server failed: roll back
            action = "conflict" if isinstance(exc, Conflict) else "rejected"
            report.outcomes.append(Outcome(ref(obj), action, str(exc)))
            report.failed = True
            if dry_run:
                continue
            for rest in objects[i + 1 :]:
                report.outcomes.append(Outcome(ref(rest), "not-applied"))
            _restore(session, objects, paths, saved, written, report)
            return report
        written.append(i)
        if before is None:
            action = "created"
        elif _content(after) == _content(before):
            action = "unchanged"
        else:
            action = "configured"
        report.outcomes.append(Outcome(ref(obj), action))
    if prune and not report.failed:
        _prune(session, resolver, objects, report, dry_run)
    return report


VOLATILE = ("resourceVersion", "managedFields", "generation")
BACKGROUND = {"propagationPolicy": "Background"}
"""Delete dependents in the background, as kubectl does (the API's default for some kinds,
orphan, leaves a finalizer for the garbage collector)."""


def _content(obj: Any) -> Any:
    """An object without what changes on every write (versions, field-manager timestamps)."""
    if not isinstance(obj, dict):
        return obj
    meta = {k: v for k, v in (obj.get("metadata") or {}).items() if k not in VOLATILE}
    return {**obj, "metadata": meta}


def _restore(
    session: Session,
    objects: Sequence[dict[str, Any]],
    paths: Sequence[str],
    saved: Sequence[dict[str, Any] | None],
    written: Iterable[int],
    report: ApplyReport,
) -> None:
    """Put back, newest first, what was written before the failure."""
    for i in reversed(list(written)):
        obj, path, before = objects[i], paths[i], saved[i]
        try:
            if before is None:
                session.request("DELETE", path, BACKGROUND, verb="delete", resource=ref(obj))
                report.restored.append(Outcome(ref(obj), "deleted (was created)"))
            else:
                body = copy.deepcopy(before)
                body["metadata"].pop("resourceVersion", None)
                session.request("PUT", path, None, body, verb="update", resource=ref(obj))
                report.restored.append(Outcome(ref(obj), "restored"))
        except ClusterError as exc:
            report.restored.append(Outcome(ref(obj), f"NOT restored: {exc}"))


def _prune(
    session: Session,
    resolver: Resolver,
    objects: Sequence[dict[str, Any]],
    report: ApplyReport,
    dry_run: bool,
) -> None:
    """Delete kubezt-owned policy objects of the kinds in the set that it no longer has."""
    keep = {(group_of(o), o["kind"], (o.get("metadata") or {}).get("namespace") or "",
             o["metadata"]["name"]) for o in objects}  # fmt: skip
    versions: dict[tuple[str, str], str] = {}
    for obj in objects:
        key = (group_of(obj), str(obj["kind"]))
        if key in PRUNABLE:
            versions.setdefault(key, str(obj["apiVersion"]))
    query = {"labelSelector": f"{OWNER_LABEL}={OWNER_VALUE}"}
    for (group, kind), api_version in sorted(versions.items()):
        plural, _ = resolver.resource(api_version, kind)
        base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
        listing = session.request(
            "GET", f"{base}/{plural}", query, verb="list", resource=f"{plural}.{group}"
        )
        for item in listing.get("items") or ():
            meta = item.get("metadata") or {}
            if (group, kind, meta.get("namespace") or "", meta.get("name", "")) in keep:
                continue
            obj = {"apiVersion": api_version, "kind": kind, "metadata": meta}
            delete_query = BACKGROUND | ({"dryRun": "All"} if dry_run else {})
            session.request(
                "DELETE", resolver.path(obj), delete_query, verb="delete", resource=ref(obj)
            )
            report.outcomes.append(Outcome(ref(obj), "deleted"))
