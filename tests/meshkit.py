"""Random clusters with both layers and a mesh, for the consistency properties: the random
Kubernetes + Calico clusters of `strategies.py`, their namespaces put in the mesh (sidecar,
ambient with a waypoint, or each namespace drawn), sidecar capture annotations on some
workloads, PeerAuthentications and AuthorizationPolicies with identities, namespaces, address
blocks, ports and L7 attributes (method, path, host, a header)."""

from __future__ import annotations

import dataclasses
import json
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

import kubezt
from kubezt.ir.mesh import (
    AuthorizationPolicy,
    AuthzAction,
    AuthzCondition,
    AuthzOperation,
    AuthzRule,
    AuthzSource,
    MtlsMode,
    PeerAuthentication,
    TargetRef,
    Waypoint,
)
from kubezt.ir.model import Model
from kubezt.ir.policy import PolicySet
from kubezt.ir.topology import Labels, Topology
from strategies import (
    NAMESPACES,
    POD_LABELS,
    SERVICE_ACCOUNTS,
    SERVICE_NAMES,
    MixedCluster,
    calico_policies,
    k8s_clusters,
    label_maps,
    mixed_clusters,
    pick,
    weighted,
)

MESH_MODES = ("sidecar", "ambient", "mixed")
ROOT = "istio-system"
_NAMESPACE_MESH = (
    {},
    {"istio-injection": "enabled"},
    {"istio.io/dataplane-mode": "ambient"},
)
CAPTURE = "traffic.sidecar.istio.io/"
_CAPTURE_PORTS = ("80", "81", "443", "53", "80,443", "*", "")
_CAPTURE_RANGES = ("10.0.0.0/25", "10.0.0.128/25", "10.0.0.0/28", "192.168.0.0/16", "fd00::/64")
_CAPTURE_ANNOTATIONS = st.fixed_dictionaries(
    {},
    optional={
        CAPTURE + "includeInboundPorts": pick(_CAPTURE_PORTS),
        CAPTURE + "excludeInboundPorts": pick(_CAPTURE_PORTS[:5]),
        CAPTURE + "includeOutboundPorts": pick(_CAPTURE_PORTS[:5]),
        CAPTURE + "excludeOutboundPorts": pick(_CAPTURE_PORTS[:5]),
        CAPTURE + "excludeOutboundIPRanges": pick(_CAPTURE_RANGES),
        CAPTURE + "includeOutboundIPRanges": pick((*_CAPTURE_RANGES, "*", "")),
        "ambient.istio.io/bypass-inbound-capture": pick(("true",)),
    },
)


def load_model(objects: list[dict[str, Any]]) -> Model:
    """Load manifests through the real loader."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "objects.yaml"
        path.write_text("\n---\n".join(json.dumps(o) for o in objects), encoding="utf-8")
        return kubezt.load([str(path)]).model


def _with_calico(model: Model, mixed: MixedCluster) -> Model:
    policies = PolicySet(
        policies=(*model.policies.policies, *mixed.policies),
        tiers=(*model.policies.tiers, *mixed.tiers),
        network_sets=(*model.policies.network_sets, *mixed.network_sets),
    )
    return dataclasses.replace(model, policies=policies)


_PRINCIPALS = (
    *(f"cluster.local/ns/{ns}/sa/{sa}" for ns in NAMESPACES for sa in SERVICE_ACCOUNTS),
    "cluster.local/ns/ns-a/*",
    "*",
)


def _some(values: tuple[str, ...], most: int = 2) -> st.SearchStrategy[tuple[str, ...]]:
    return st.lists(pick(values), min_size=1, max_size=most, unique=True).map(tuple)


def _maybe(values: tuple[str, ...], most: int = 1) -> st.SearchStrategy[Any]:
    return weighted((st.none(), 2), (_some(values, most), 1))


_METHODS = ("GET", "POST", "P*")
_PATHS = ("/api/*", "/admin*", "*.json", "/api/{*}", "/")
_NOT_PATHS = ("*.json", "/api/private")
_HOSTS = ("svc-a*", "*.local")
_RULE_PORTS = ("80", "81", "443")
_BLOCKS = ("10.0.0.0/25", "192.168.0.0/16")
_SOURCES = st.one_of(
    st.builds(AuthzSource, principals=_some(_PRINCIPALS), ip_blocks=_maybe(_BLOCKS)),
    st.builds(
        AuthzSource, namespaces=_some((*NAMESPACES, "ns-*"), 1), not_principals=_maybe(_PRINCIPALS)
    ),
    st.builds(AuthzSource, ip_blocks=_some(_BLOCKS, 1)),
)
"""A rule's source: principals (exact, prefix, `*`), namespaces, or address blocks."""
_OPERATIONS = st.one_of(
    st.builds(
        AuthzOperation,
        methods=_some(_METHODS),
        paths=_maybe(_PATHS),
        not_paths=_maybe(_NOT_PATHS),
        ports=_maybe(_RULE_PORTS),
    ),
    st.builds(
        AuthzOperation,
        paths=_some(_PATHS),
        not_methods=_maybe(("GET", "DELETE")),
        hosts=_maybe(_HOSTS),
        ports=_maybe(_RULE_PORTS),
    ),
    st.builds(AuthzOperation, ports=_some(_RULE_PORTS), not_paths=_maybe(_NOT_PATHS)),
    st.builds(AuthzOperation, hosts=_some(_HOSTS), methods=_maybe(_METHODS)),
)
"""A rule's operation: at least one of methods, paths, ports or hosts, with other fields
(`not*` forms too) now and then."""
_CONDITIONS = st.lists(
    st.builds(
        AuthzCondition, key=st.just("request.headers[x-k]"), values=_some(("a", "a*", "*"), 1)
    ),
    max_size=1,
).map(tuple)
_RULES = st.builds(
    AuthzRule,
    sources=weighted((st.none(), 1), (st.lists(_SOURCES, min_size=1, max_size=2).map(tuple), 2)),
    operations=weighted(
        (st.none(), 1), (st.lists(_OPERATIONS, min_size=1, max_size=2).map(tuple), 2)
    ),
    conditions=weighted((st.just(()), 3), (_CONDITIONS, 1)),
)


def authorization_policies(namespaces: tuple[str, ...]) -> st.SearchStrategy[AuthorizationPolicy]:
    """ALLOW and DENY policies (an ALLOW-nothing now and then: no rules), bound to a namespace
    or the root namespace, to pods by labels, or to a Service by targetRefs."""
    return st.builds(
        AuthorizationPolicy,
        name=pick(("az0", "az1", "az2", "az3")),
        namespace=pick((*namespaces, ROOT)),
        action=pick((AuthzAction.ALLOW, AuthzAction.ALLOW, AuthzAction.DENY)),
        selector=weighted((st.none(), 2), (label_maps(POD_LABELS).map(_non_empty).map(Labels), 1)),
        target_refs=st.one_of(
            st.just(()), st.just(()), pick(SERVICE_NAMES).map(lambda n: (TargetRef("Service", n),))
        ),
        rules=weighted((st.just(()), 1), (st.lists(_RULES, min_size=1, max_size=2).map(tuple), 5)),
    ).map(_one_binding)


def _non_empty(labels: dict[str, str]) -> dict[str, str]:
    return labels or {"app": "a"}


def _one_binding(policy: AuthorizationPolicy) -> AuthorizationPolicy:
    # Istio rejects a policy with both a selector and targetRefs
    if policy.target_refs and policy.selector is not None:
        return dataclasses.replace(policy, selector=None)
    return policy


def peer_authentications(namespaces: tuple[str, ...]) -> st.SearchStrategy[PeerAuthentication]:
    return st.builds(
        PeerAuthentication,
        name=pick(("pa0", "pa1")),
        namespace=pick((*namespaces, ROOT)),
        selector=st.one_of(st.none(), label_maps(POD_LABELS).map(_non_empty).map(Labels)),
        mode=pick(tuple(MtlsMode)),
        port_modes=st.lists(st.tuples(pick((80, 81, 443)), pick(tuple(MtlsMode))), max_size=1).map(
            tuple
        ),
    )


def _unique(items: list[Any]) -> tuple[Any, ...]:
    seen: dict[tuple[str, str], Any] = {}
    for item in items:
        seen[(item.namespace, item.name)] = item
    return tuple(seen.values())


def with_mesh(model: Model, mode: str, draw: st.DrawFn) -> Model:
    """`model` in the mesh: namespaces labelled for `mode` (mixed: each drawn, some outside),
    a waypoint in the first namespace in ambient and mixed mode (sometimes), capture
    annotations on some workloads, PeerAuthentications and AuthorizationPolicies."""
    t = model.topology
    names = tuple(sorted(t.namespaces))
    namespaces = {}
    for name, ns in t.namespaces.items():
        if mode == "sidecar":
            extra = _NAMESPACE_MESH[1]
        elif mode == "ambient":
            extra = _NAMESPACE_MESH[2]
        else:
            extra = _NAMESPACE_MESH[draw(st.integers(0, 2))]
        namespaces[name] = dataclasses.replace(ns, labels=ns.labels.merged(extra))
    waypoints: tuple[Waypoint, ...] = ()
    if mode != "sidecar" and draw(st.booleans()):
        first = names[0]
        waypoints = (Waypoint("waypoint", first, draw(pick(("service", "workload", "all")))),)
        labels = namespaces[first].labels.merged(
            {"istio.io/dataplane-mode": "ambient", "istio.io/use-waypoint": "waypoint"}
        )
        if "istio-injection" in labels:
            labels = Labels({k: v for k, v in labels.items() if k != "istio-injection"})
        namespaces[first] = dataclasses.replace(namespaces[first], labels=labels)
    workloads = tuple(
        dataclasses.replace(w, annotations=w.annotations.merged(draw(_CAPTURE_ANNOTATIONS)))
        if draw(st.integers(0, 2)) == 0
        else w
        for w in t.workloads
    )
    topology = Topology(namespaces, t.service_accounts, workloads, t.services)
    mesh = dataclasses.replace(
        model.mesh,
        peer_authentications=_unique(draw(st.lists(peer_authentications(names), max_size=2))),
        authorization_policies=_unique(
            draw(st.lists(authorization_policies(names), min_size=1, max_size=4))
        ),
        waypoints=waypoints,
    )
    return dataclasses.replace(model, topology=topology, mesh=mesh)


@st.composite
def mesh_models(draw: st.DrawFn, modes: tuple[str, ...] = MESH_MODES) -> Model:
    """A random cluster in the mesh (`modes`: which mesh modes to draw from): Kubernetes
    NetworkPolicies only (at most two, so the mesh decides most connections), or Kubernetes
    and Calico policies."""
    if draw(st.booleans()):
        cluster = draw(k8s_clusters(0, 2))
        model = load_model(cluster.objects)
    else:
        mixed = draw(mixed_clusters())
        model = _with_calico(load_model(mixed.cluster.objects), mixed)
    return with_mesh(model, draw(pick(modes)), draw)


def changed(model: Model, draw: st.DrawFn) -> Model:
    """`model` after one change of one object, on either layer: an AuthorizationPolicy or a
    PeerAuthentication added, replaced or removed, a Calico policy added or removed, a
    namespace moved in or out of the mesh, or a workload's capture annotations replaced."""
    names = tuple(sorted(model.topology.namespaces))
    mesh = model.mesh
    kind = draw(pick(("authz", "authz", "delete-authz", "peer", "calico", "namespace", "capture")))
    if kind == "delete-authz" and mesh.authorization_policies:
        kept = list(mesh.authorization_policies)
        del kept[draw(st.integers(0, len(kept) - 1))]
        return dataclasses.replace(
            model, mesh=dataclasses.replace(mesh, authorization_policies=tuple(kept))
        )
    if kind == "peer":
        added = draw(peer_authentications(names))
        peers = _unique([*mesh.peer_authentications, added])
        return dataclasses.replace(
            model, mesh=dataclasses.replace(mesh, peer_authentications=peers)
        )
    if kind == "calico":
        policies = model.policies.policies
        if policies and draw(st.booleans()):
            kept = list(policies)
            del kept[draw(st.integers(0, len(kept) - 1))]
        else:
            added = dataclasses.replace(draw(calico_policies(names)), name="changed")
            kept = [p for p in policies if p.name != "changed"] + [added]
        return dataclasses.replace(
            model, policies=dataclasses.replace(model.policies, policies=tuple(kept))
        )
    t = model.topology
    if kind == "namespace":
        ns = t.namespaces[draw(pick(names))]
        labels = {
            k: v
            for k, v in ns.labels.items()
            if k not in ("istio-injection", "istio.io/dataplane-mode")
        }
        labels.update(_NAMESPACE_MESH[draw(st.integers(0, 2))])
        namespaces = {**t.namespaces, ns.name: dataclasses.replace(ns, labels=Labels(labels))}
        topology = Topology(namespaces, t.service_accounts, t.workloads, t.services)
        return dataclasses.replace(model, topology=topology)
    if kind == "capture" and t.workloads:
        i = draw(st.integers(0, len(t.workloads) - 1))
        w = t.workloads[i]
        annotations = Labels(
            {k: v for k, v in w.annotations.items() if not k.startswith(CAPTURE)}
            | draw(_CAPTURE_ANNOTATIONS)
        )
        workloads = (
            *t.workloads[:i],
            dataclasses.replace(w, annotations=annotations),
            *t.workloads[i + 1 :],
        )
        topology = Topology(t.namespaces, t.service_accounts, workloads, t.services)
        return dataclasses.replace(model, topology=topology)
    added = draw(authorization_policies(names))
    policies = _unique([*mesh.authorization_policies, added])
    return dataclasses.replace(
        model, mesh=dataclasses.replace(mesh, authorization_policies=policies)
    )
