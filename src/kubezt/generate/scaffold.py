"""`kubezt init`: existing workloads → a starting intent that declares every service (selector,
ServiceAccount, ports and their protocols) and grants nothing.

Services are named after the Kubernetes Service that selects the workload when there is exactly
one (waypoint policies bind to Services by name), else after the workload. A workload on the
`default` ServiceAccount, or sharing one with another workload, is given its own, and the
returned notes say which pod templates must change. Must not read files.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from kubezt.engine.mesh import HTTP_PROTOCOLS, TCP_PROTOCOLS, mesh_mode, proxy_role
from kubezt.ir.intent import SYSTEM_NAMESPACES, Intent, Mode, Port, Service
from kubezt.ir.model import Model
from kubezt.ir.topology import Labels, MeshMode, ProxyRole, Workload

_NOT_LABEL = re.compile(r"[^a-z0-9-]+")
PREFERRED_KEYS = ("app", "app.kubernetes.io/name", "k8s-app", "name")


def scaffold_intent(
    model: Model,
    *,
    name: str,
    mode: Mode | None = None,
    namespaces: Sequence[str] = (),
) -> tuple[Intent, tuple[str, ...]]:
    """An intent for the workloads of `model` (in `namespaces`, default every application
    namespace), with no calls allowed, and notes on what the user must change."""
    notes: list[str] = []
    topology = model.topology
    root = model.mesh_config.root_namespace
    excluded = set(SYSTEM_NAMESPACES) | {root}
    workloads = [
        w
        for w in topology.workloads
        if not w.host_network and proxy_role(w, model.mesh) is ProxyRole.NONE
    ]
    if namespaces:
        chosen = sorted(set(namespaces))
        for ns in chosen:
            if ns in excluded:
                notes.append(f"namespace {ns} is a system namespace and was left out")
        chosen = [ns for ns in chosen if ns not in excluded]
    else:
        chosen = sorted({w.namespace for w in workloads} - excluded)
    if mode is None:
        modes = {
            mesh_mode(w, topology.namespace(w.namespace), model.mesh)
            for w in workloads
            if w.namespace in chosen
        }
        mode = Mode.AMBIENT if MeshMode.AMBIENT in modes else Mode.SIDECAR
        if {MeshMode.AMBIENT, MeshMode.SIDECAR} <= modes:
            notes.append(
                "the workloads use both sidecars and ambient; the intent says ambient (one "
                "mode for all: change spec.mesh.mode or compile with --mode)"
            )
    services: list[Service] = []
    for ns in chosen:
        services += _services(model, [w for w in workloads if w.namespace == ns], notes)
    intent = Intent(
        name=name,
        mode=mode,
        trust_domain=model.mesh_config.trust_domain,
        root_namespace=root,
        namespaces=tuple(chosen),
        services=tuple(sorted(services, key=lambda s: (s.namespace, s.name))),
    )
    return intent, tuple(notes)


def _label(text: str) -> str:
    return _NOT_LABEL.sub("-", text.lower()).strip("-")[:63].strip("-") or "service"


def _services(model: Model, workloads: list[Workload], notes: list[str]) -> list[Service]:
    out: list[Service] = []
    names: set[str] = set()
    accounts: set[str] = set()
    # Pods listed one by one (`kubectl get pods`) that carry the same labels and ServiceAccount
    # are replicas of one workload: the first stands for them all.
    replicas: set[tuple[object, ...]] = set()
    unique: list[Workload] = []
    for w in sorted(workloads, key=lambda w: w.name):
        if w.kind == "Pod" and w.labels:
            key = (w.labels.key, w.service_account)
            if key in replicas:
                continue
            replicas.add(key)
        unique.append(w)
    workloads = unique
    for w in workloads:
        if not w.labels:
            notes.append(f"{w.id}: no pod labels, so no selector can name it; left out")
            continue
        svcs = model.topology.services_selecting(w)
        name = _label(svcs[0].name if len(svcs) == 1 else w.name)
        base, n = name, 2
        while name in names:
            name, n = f"{base[:60]}-{n}", n + 1
        selector = _selector(w, workloads, svcs[0].selector if len(svcs) == 1 else None)
        if selector is None:
            notes.append(f"{w.id}: its pods carry the same labels as another workload's; left out")
            continue
        account = w.service_account
        if account == "default" or account in accounts:
            why = "the default ServiceAccount" if account == "default" else f"{account!r} (shared)"
            account = name
            while account in accounts:
                account = f"{account[:60]}-x"
            notes.append(
                f"{w.id} runs as {why}: the intent gives it ServiceAccount {account!r}; set "
                "serviceAccountName in its pod template"
            )
        names.add(name)
        accounts.add(account)
        out.append(
            Service(
                namespace=w.namespace,
                name=name,
                selector=Labels(selector),
                service_account=account,
                ports=_ports(model, w),
                entry=f"services/{w.namespace}/{name}",
            )
        )
    return out


def _selector(
    w: Workload, peers: list[Workload], preferred: Mapping[str, str] | None
) -> dict[str, str] | None:
    """The smallest label set among a few candidates that selects `w` and no other workload
    of its namespace."""
    candidates: list[dict[str, str]] = []
    if preferred:
        candidates.append(dict(preferred))
    candidates += [{k: w.labels[k]} for k in PREFERRED_KEYS if k in w.labels]
    candidates.append(dict(w.labels))
    for selector in candidates:
        if not all(w.labels.get(k) == v for k, v in selector.items()):
            continue
        others = [p for p in peers if p is not w]
        if not any(all(p.labels.get(k) == v for k, v in selector.items()) for p in others):
            return selector
    return None


def _ports(model: Model, w: Workload) -> tuple[Port, ...]:
    out: dict[tuple[int, str], Port] = {}
    for cp in w.ports:
        app = ""
        for svc in model.topology.services_selecting(w):
            for sp in svc.ports:
                target = sp.target_on(w)
                if target != cp.port or sp.protocol is not cp.protocol:
                    continue
                declared = sp.declared_protocol
                if declared in HTTP_PROTOCOLS or declared in TCP_PROTOCOLS:
                    app = declared
        key = (cp.port, cp.protocol.value)
        if key not in out:
            out[key] = Port(cp.port, cp.protocol, cp.name, app)
    return tuple(sorted(out.values()))
