"""The incremental engine: after any sequence of object changes, its state equals a full
evaluation of the final objects, and each change's delta is exactly the connections whose
verdict moved between the full evaluations before and after it. Both layers (Kubernetes and
Calico policies; PeerAuthentication and AuthorizationPolicy) and both mesh modes (sidecar and
ambient namespaces, with the mesh absent too)."""

from __future__ import annotations

import dataclasses
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from test_properties import load_model, with_calico

from kubezt import evaluate
from kubezt.analysis.diff import diff, diff_models
from kubezt.engine.incremental import (
    Change,
    ConnectionChange,
    IncrementalReach,
    Path,
    apply_change,
    changes_between,
    rows_of,
)
from kubezt.engine.requests import NONE
from kubezt.ir.mesh import (
    AuthorizationPolicy,
    AuthzAction,
    AuthzOperation,
    AuthzRule,
    AuthzSource,
    DestinationRule,
    MtlsMode,
    PeerAuthentication,
    TlsMode,
    Waypoint,
)
from kubezt.ir.model import Model
from kubezt.ir.topology import Labels, Namespace, Service, ServicePort, Topology
from strategies import (
    NAMESPACES,
    POD_LABELS,
    SERVICE_ACCOUNTS,
    MixedCluster,
    calico_policies,
    label_maps,
    mixed_clusters,
    pick,
)

PROPERTY = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MESH_LABELS = (
    {},
    {"istio-injection": "enabled"},
    {"istio.io/dataplane-mode": "ambient"},
)
MESH_MODES = ("none", "sidecar", "ambient", "mixed")


def with_mesh(model: Model, mode: str, draw: Any) -> Model:
    """Label the namespaces for the mesh mode (mixed: each namespace drawn) and add a
    mesh-wide PeerAuthentication when the mesh is on."""
    if mode == "none":
        return model
    namespaces = {}
    for name, ns in model.topology.namespaces.items():
        if mode == "sidecar":
            extra = MESH_LABELS[1]
        elif mode == "ambient":
            extra = MESH_LABELS[2]
        else:
            extra = draw(pick(tuple(range(3))).map(lambda i: MESH_LABELS[i]))
        namespaces[name] = dataclasses.replace(ns, labels=ns.labels.merged(extra))
    waypoints: tuple[Waypoint, ...] = ()
    if mode in ("ambient", "mixed") and draw(st.booleans()):
        # a waypoint in the first namespace, which sends its traffic through it
        first = min(namespaces)
        waypoints = (Waypoint("waypoint", first, draw(pick(("service", "workload", "all")))),)
        ns = namespaces[first]
        labels = ns.labels.merged(
            {"istio.io/dataplane-mode": "ambient", "istio.io/use-waypoint": "waypoint"}
        )
        namespaces[first] = dataclasses.replace(ns, labels=labels)
    t = model.topology
    topology = Topology(namespaces, t.service_accounts, t.workloads, t.services)
    mesh = dataclasses.replace(
        model.mesh,
        peer_authentications=(
            PeerAuthentication("default", "istio-system", None, MtlsMode.STRICT),
        ),
        waypoints=waypoints,
    )
    return Model(topology, model.policies, model.mesh_config, mesh)


def peer_authentications(namespaces: tuple[str, ...]) -> st.SearchStrategy[PeerAuthentication]:
    return st.builds(
        PeerAuthentication,
        name=pick(("pa0", "pa1", "default")),
        namespace=pick((*namespaces, "istio-system")),
        selector=st.one_of(st.none(), label_maps(POD_LABELS).map(Labels)),
        mode=pick(tuple(MtlsMode)),
        port_modes=st.lists(st.tuples(pick((80, 81, 443)), pick(tuple(MtlsMode))), max_size=1).map(
            tuple
        ),
    )


def authorization_policies(
    namespaces: tuple[str, ...],
) -> st.SearchStrategy[AuthorizationPolicy]:
    principals = tuple(
        f"cluster.local/ns/{ns}/sa/{sa}" for ns in NAMESPACES for sa in SERVICE_ACCOUNTS
    )
    source = st.builds(
        AuthzSource,
        principals=st.one_of(
            st.none(), st.lists(pick(principals), min_size=1, max_size=2).map(tuple)
        ),
        namespaces=st.one_of(
            st.none(), st.lists(pick(NAMESPACES), min_size=1, max_size=1).map(tuple)
        ),
    )
    operation = st.builds(
        AuthzOperation,
        ports=st.one_of(
            st.none(), st.lists(pick(("80", "81", "443")), min_size=1, max_size=2).map(tuple)
        ),
        methods=st.one_of(st.none(), st.just(("GET",))),
        paths=st.one_of(st.none(), st.just(("/admin*",))),
    )
    rule = st.builds(
        AuthzRule,
        sources=st.one_of(st.none(), st.lists(source, min_size=1, max_size=2).map(tuple)),
        operations=st.one_of(st.none(), st.lists(operation, min_size=1, max_size=1).map(tuple)),
    )
    return st.builds(
        AuthorizationPolicy,
        name=pick(("az0", "az1", "az2")),
        namespace=pick((*namespaces, "istio-system")),
        action=pick((AuthzAction.ALLOW, AuthzAction.ALLOW, AuthzAction.DENY)),
        selector=st.one_of(st.none(), label_maps(POD_LABELS).map(Labels)),
        rules=st.lists(rule, max_size=2).map(tuple),
    )


def services(namespaces: tuple[str, ...]) -> st.SearchStrategy[Service]:
    """A Service (new, or replacing one of the same name): a selector over pod labels, ports
    by number or name, sometimes an `istio.io/use-waypoint` label."""
    port = st.builds(
        ServicePort,
        port=pick((80, 8080)),
        target_port=pick((80, 81, 443, "http", "https")),
        name=pick(("http", "grpc", "tcp-x", "")),
    )
    return st.builds(
        Service,
        namespace=pick(namespaces),
        name=pick(("s0", "s1")),
        selector=st.one_of(st.none(), label_maps(POD_LABELS).map(Labels)),
        ports=st.lists(port, min_size=1, max_size=2).map(tuple),
        labels=st.sampled_from(((), (("istio.io/use-waypoint", "waypoint"),))).map(
            lambda kv: Labels(dict(kv))
        ),
    )


def destination_rules(namespaces: tuple[str, ...]) -> st.SearchStrategy[DestinationRule]:
    return st.builds(
        DestinationRule,
        name=pick(("dr0", "dr1")),
        namespace=pick((*namespaces, "istio-system")),
        host=pick(("*", "s0", "s1.ns-a.svc.cluster.local")),
        tls_mode=pick((None, *TlsMode)),
    )


CHANGE_KINDS = (
    "policy",
    "policy",
    "delete-policy",
    "relabel",
    "relabel",
    "delete-workload",
    "add-workload",
    "namespace",
    "service-account",
    "delete-service",
    "service",
    "destination-rule",
    "waypoint",
    "peer-authentication",
    "authorization",
    "authorization",
    "delete-mesh",
)
ROUTING_KINDS = (
    "relabel",
    "destination-rule",
    "destination-rule",
    "waypoint",
    "waypoint",
    "namespace",
    "service",
    "authorization",
)
"""The changes that move the mesh's routes: DestinationRules, waypoints and the
`istio.io/use-waypoint` labels of pods, namespaces and Services."""
USE_WAYPOINT = ({}, {"istio.io/use-waypoint": "waypoint"}, {"istio.io/use-waypoint": "none"})


def draw_change(
    draw: Any, model: Model, namespaces: tuple[str, ...], kinds: tuple[str, ...] = CHANGE_KINDS
) -> Change:
    """One change of one object: a policy of either dialect, a workload, a namespace, a
    ServiceAccount, a Service, a DestinationRule, a waypoint, a PeerAuthentication or an
    AuthorizationPolicy (of `kinds`, drawn alike)."""
    t = model.topology
    kind = draw(pick(kinds))
    policies = model.policies.policies
    if kind == "policy" or (kind == "delete-policy" and not policies):
        policy = draw(calico_policies(namespaces))
        return Change.upsert(dataclasses.replace(policy, name=draw(pick(("c0", "c1", "x0", "x1")))))
    if kind == "delete-policy":
        return Change.delete(draw(pick(policies)))
    if kind in ("relabel", "delete-workload", "add-workload") and t.workloads:
        workload = draw(pick(t.workloads))
        if kind == "delete-workload":
            return Change.delete(workload)
        labels = Labels(draw(label_maps(POD_LABELS)))
        if kind == "relabel":
            if draw(st.booleans()):
                labels = draw(pick(t.workloads)).labels  # into a class that exists
            return Change.upsert(dataclasses.replace(workload, labels=labels))
        name = draw(pick(("n0", "n1", "n2")))
        return Change.upsert(dataclasses.replace(workload, name=name))
    if kind == "namespace":
        ns = draw(pick(tuple(t.namespaces.values())))
        labels = {
            k: v
            for k, v in ns.labels.items()
            if k
            not in ("istio-injection", "istio.io/dataplane-mode", "team", "istio.io/use-waypoint")
        }
        labels.update(draw(pick(tuple(range(3))).map(lambda i: MESH_LABELS[i])))
        labels.update(draw(pick(tuple(range(3))).map(lambda i: USE_WAYPOINT[i])))
        labels.update(draw(label_maps({"team": ("a", "b")})))
        return Change.upsert(Namespace(ns.name, Labels(labels), ns.declared))
    if kind == "service-account" and t.service_accounts:
        sa = draw(pick(tuple(t.service_accounts.values())))
        return Change.upsert(
            dataclasses.replace(sa, labels=Labels(draw(label_maps({"role": ("a", "b")}))))
        )
    if kind == "delete-service" and t.services:
        return Change.delete(draw(pick(t.services)))
    if kind == "service":
        return Change.upsert(draw(services(namespaces)))
    if kind == "destination-rule":
        if model.mesh.destination_rules and draw(st.booleans()):
            return Change.delete(draw(pick(model.mesh.destination_rules)))
        return Change.upsert(draw(destination_rules(namespaces)))
    if kind == "waypoint":
        if model.mesh.waypoints and draw(st.booleans()):
            return Change.delete(draw(pick(model.mesh.waypoints)))
        return Change.upsert(
            Waypoint("waypoint", draw(pick(namespaces)), draw(pick(("service", "workload", "all"))))
        )
    if kind == "peer-authentication":
        return Change.upsert(draw(peer_authentications(namespaces)))
    if kind == "delete-mesh":
        existing = (*model.mesh.peer_authentications, *model.mesh.authorization_policies)
        if existing:
            return Change.delete(draw(pick(existing)))
    return Change.upsert(draw(authorization_policies(namespaces)))


def full_rows(model: Model) -> dict[tuple[str, str, int, str], Any]:
    return dict(rows_of(evaluate(model)))


def expected_delta(before: dict[Any, Any], after: dict[Any, Any]) -> set[ConnectionChange]:
    out = set()
    for key in before.keys() | after.keys():
        if key in before and key in after and before[key] == after[key]:
            continue
        out.add(
            ConnectionChange(
                *key, key in before, before.get(key, NONE), key in after, after.get(key, NONE)
            )
        )
    return out


@PROPERTY
@given(mixed=mixed_clusters(), mode=pick(MESH_MODES), data=st.data())
def test_incremental_state_equals_full_evaluation(
    mixed: MixedCluster, mode: str, data: st.DataObject
) -> None:
    model = with_mesh(with_calico(load_model(mixed.cluster.objects), mixed), mode, data.draw)
    state = IncrementalReach(model)
    rows = full_rows(model)
    assert dict(rows_of(state.reachability())) == rows
    for _ in range(data.draw(st.integers(1, 6))):
        change = draw_change(data.draw, state.model, mixed.cluster.namespaces)
        delta = state.apply(change)
        event(f"path {delta.path.value}")
        event(f"{change.key[0]} by {delta.path.value}")
        after = full_rows(state.model)
        assert dict(rows_of(state.reachability())) == after, (change, delta.path)
        assert set(delta.connections) == expected_delta(rows, after), (change, delta.path)
        rows = after


@PROPERTY
@given(mixed=mixed_clusters(), mode=pick(("ambient", "mixed", "sidecar")), data=st.data())
def test_routing_changes_stay_exact(mixed: MixedCluster, mode: str, data: st.DataObject) -> None:
    """DestinationRules and waypoints added, edited and deleted, and `istio.io/use-waypoint`
    labels moving on namespaces and Services, re-decide only the mesh cells they can reach,
    yet the state and each delta equal full evaluations."""
    model = with_mesh(with_calico(load_model(mixed.cluster.objects), mixed), mode, data.draw)
    state = IncrementalReach(model)
    rows = full_rows(model)
    for _ in range(data.draw(st.integers(1, 6))):
        change = draw_change(data.draw, state.model, mixed.cluster.namespaces, ROUTING_KINDS)
        delta = state.apply(change)
        event(f"{change.key[0]} by {delta.path.value}")
        after = full_rows(state.model)
        assert dict(rows_of(state.reachability())) == after, (change, delta.path)
        assert set(delta.connections) == expected_delta(rows, after), (change, delta.path)
        rows = after


@settings(PROPERTY, max_examples=60)
@given(mixed=mixed_clusters(), other=mixed_clusters(), mode=pick(MESH_MODES), data=st.data())
def test_changes_between_two_models_reproduce_the_second(
    mixed: MixedCluster, other: MixedCluster, mode: str, data: st.DataObject
) -> None:
    old = with_mesh(with_calico(load_model(mixed.cluster.objects), mixed), mode, data.draw)
    new = with_calico(load_model(mixed.cluster.objects), other)
    state = IncrementalReach(old)
    for change in changes_between(old, new):
        state.apply(change)
    assert dict(rows_of(state.reachability())) == full_rows(new)


def test_a_change_to_nothing_is_no_change() -> None:
    model = load_model(
        [
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a"}},
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "p", "namespace": "a", "labels": {"app": "p"}},
                "spec": {"containers": [{"name": "c", "ports": [{"containerPort": 80}]}]},
            },
        ]
    )
    state = IncrementalReach(model)
    pod = model.topology.workloads[0]
    delta = state.apply(Change.upsert(pod))
    assert delta.path is Path.NONE
    assert delta.connections == ()


@settings(PROPERTY, max_examples=40)
@given(mixed=mixed_clusters(), mode=pick(MESH_MODES), data=st.data())
def test_diff_of_models_equals_diff_of_full_evaluations(
    mixed: MixedCluster, mode: str, data: st.DataObject
) -> None:
    old = with_mesh(with_calico(load_model(mixed.cluster.objects), mixed), mode, data.draw)
    new = old
    for _ in range(data.draw(st.integers(1, 3))):
        new = apply_change(new, draw_change(data.draw, new, mixed.cluster.namespaces))
    assert diff_models(old, new) == diff(evaluate(old), evaluate(new))


def test_a_policy_edit_keeps_its_place_among_policies_of_the_same_sort_key() -> None:
    """A Kubernetes and a Calico NetworkPolicy of the same name, namespace and order tie on
    Calico's sort key, so their input order decides which matches first: editing the first
    (it keeps its place in the input) must not move it behind the second."""
    server = {"app": "server"}
    k8s = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "x", "namespace": "a"},
        "spec": {
            "podSelector": {"matchLabels": server},
            "ingress": [{"ports": [{"port": 80}]}],
        },
    }
    calico = {
        "apiVersion": "projectcalico.org/v3",
        "kind": "NetworkPolicy",
        "metadata": {"name": "x", "namespace": "a"},
        "spec": {
            "order": 1000,
            "selector": "app == 'server'",
            "types": ["Ingress"],
            "ingress": [{"action": "Deny", "protocol": "TCP"}],
        },
    }
    pods = [
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "namespace": "a", "labels": {"app": name}},
            "spec": {"containers": [{"name": "c", "ports": [{"containerPort": 80}]}]},
        }
        for name in ("client", "server")
    ]
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a"}}
    model = load_model([namespace, *pods, k8s, calico])
    first = model.policies.policies[0]
    assert (first.kind, first.name) == ("NetworkPolicy", "x")
    state = IncrementalReach(model)
    assert dict(rows_of(state.reachability())) == full_rows(model)
    edited = dataclasses.replace(first, ingress=(*first.ingress, *first.ingress))
    state.apply(Change.upsert(edited))
    assert dict(rows_of(state.reachability())) == full_rows(state.model)
    assert ("a/client", "a/server", 80, "TCP") in full_rows(state.model)
