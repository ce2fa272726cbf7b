"""Properties of diff and blast radius on small random clusters: a model's diff with itself is
empty; diff(b, a) mirrors diff(a, b); adding a NetworkPolicy that selects pods some policy
already isolates in the same directions never denies a connection; a blast radius holds the
direct reach, equals the transitive closure of the matrix and grows with the hop limit."""

from __future__ import annotations

import dataclasses
import json
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import kubezt
from kubezt.analysis.blast_radius import blast_radius, rank
from kubezt.analysis.diff import diff
from kubezt.ir.model import Model
from kubezt.ir.policy import PolicySet
from strategies import Cluster, MixedCluster, k8s_clusters, k8s_rules, mixed_clusters

PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
WORKLOAD_KINDS = ("Pod", "Deployment")


def load_model(objects: list[dict[str, Any]]) -> Model:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "objects.yaml"
        path.write_text("\n---\n".join(json.dumps(o) for o in objects), encoding="utf-8")
        return kubezt.load([str(path)]).model


def reach_of(objects: list[dict[str, Any]]) -> kubezt.Reachability:
    return kubezt.evaluate(load_model(objects))


def with_calico(model: Model, mixed: MixedCluster) -> Model:
    policies = PolicySet(
        policies=(*model.policies.policies, *mixed.policies),
        tiers=(*model.policies.tiers, *mixed.tiers),
        network_sets=model.policies.network_sets,
    )
    return dataclasses.replace(model, policies=policies)


def with_policies_of(mixed: MixedCluster, other: MixedCluster) -> MixedCluster:
    """`mixed` with the Calico policies and tiers of `other`, its namespaced policies moved into
    `mixed`'s namespaces."""
    namespaces = mixed.cluster.namespaces
    moved = tuple(
        p
        if p.namespace is None
        else dataclasses.replace(
            p, namespace=namespaces[other.cluster.namespaces.index(p.namespace) % len(namespaces)]
        )
        for p in other.policies
    )
    return dataclasses.replace(mixed, policies=moved, tiers=other.tiers)


@st.composite
def cluster_pairs(draw: st.DrawFn) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Two versions of one cluster: other NetworkPolicies and, sometimes, one workload fewer."""
    a = draw(k8s_clusters(0, 3))
    other = draw(k8s_clusters(0, 3))
    policies = []
    for policy in other.policies:
        moved = json.loads(json.dumps(policy))
        index = other.namespaces.index(policy["metadata"]["namespace"])
        moved["metadata"]["namespace"] = a.namespaces[index % len(a.namespaces)]
        policies.append(moved)
    topology = list(a.topology)
    workloads = [i for i, o in enumerate(topology) if o["kind"] in WORKLOAD_KINDS]
    if draw(st.booleans()):
        del topology[draw(st.sampled_from(workloads))]
    return a.objects, [*topology, *policies]


@PROPERTY
@given(cluster=k8s_clusters(0, 4))
def test_diff_with_itself_is_empty(cluster: Cluster) -> None:
    model = load_model(cluster.objects)
    once = kubezt.evaluate(model)
    assert diff(once, once).is_empty
    assert diff(once, kubezt.evaluate(model)).is_empty


@PROPERTY
@given(pair=cluster_pairs())
def test_diff_mirrors_when_old_and_new_are_exchanged(
    pair: tuple[list[dict[str, Any]], list[dict[str, Any]]],
) -> None:
    a, b = reach_of(pair[0]), reach_of(pair[1])
    forward, backward = diff(a, b), diff(b, a)
    assert backward == forward.mirrored()
    assert forward.mirrored().mirrored() == forward
    assert {p.workload for p in forward.added} == set(b.workload_ids) - set(a.workload_ids)
    assert {p.workload for p in forward.removed} == set(a.workload_ids) - set(b.workload_ids)


@PROPERTY
@given(mixed=mixed_clusters(), other=mixed_clusters())
def test_diff_mirrors_on_calico_policies(mixed: MixedCluster, other: MixedCluster) -> None:
    base = load_model(mixed.cluster.objects)
    changed = with_policies_of(mixed, other)
    a = kubezt.evaluate(with_calico(base, mixed))
    b = kubezt.evaluate(with_calico(base, changed))
    assert diff(b, a) == diff(a, b).mirrored()


@st.composite
def allow_additions(draw: st.DrawFn) -> tuple[Cluster, dict[str, Any]]:
    """A cluster and a new NetworkPolicy selecting exactly the pods one of its policies selects,
    for the same policy types, with random rules: it can only add allowed connections."""
    cluster = draw(k8s_clusters(1, 3))
    base = draw(st.sampled_from(cluster.policies))
    spec = base["spec"]
    added: dict[str, Any] = {"podSelector": spec["podSelector"]}
    ingress = draw(st.lists(k8s_rules("from"), max_size=2))
    if "policyTypes" in spec:
        added["policyTypes"] = spec["policyTypes"]
        added["ingress"] = ingress
        added["egress"] = draw(st.lists(k8s_rules("to"), max_size=2))
    else:
        # the same implied types: Ingress, and Egress when the policy has egress rules
        added["ingress"] = ingress
        if spec.get("egress"):
            added["egress"] = draw(st.lists(k8s_rules("to"), min_size=1, max_size=2))
    policy = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "added-allow", "namespace": base["metadata"]["namespace"]},
        "spec": added,
    }
    return cluster, policy


@PROPERTY
@given(addition=allow_additions())
def test_adding_an_allow_policy_never_denies_a_connection(
    addition: tuple[Cluster, dict[str, Any]],
) -> None:
    cluster, policy = addition
    before = reach_of(cluster.objects)
    after = reach_of([*cluster.objects, policy])
    result = diff(before, after)
    assert not result.closed, [(s, d, c.port, c.kind.value) for s, d, c in result.closed]
    assert not result.added and not result.removed
    assert all(c.kind.value == "allowed" for _, _, c in result.changes())


def closure(start: str, edges: set[tuple[str, str]]) -> set[str]:
    seen, todo = {start}, [start]
    while todo:
        node = todo.pop()
        for src, dst in edges:
            if src == node and dst not in seen:
                seen.add(dst)
                todo.append(dst)
    return seen - {start}


@PROPERTY
@given(cluster=k8s_clusters(0, 4))
def test_blast_radius_holds_direct_reach_and_grows_with_hops(cluster: Cluster) -> None:
    reach = reach_of(cluster.objects)
    edges = {(s, d) for s, d, _, _ in reach.connections() if s != d}
    ranks = {r.workload: r for r in rank(reach)}
    for workload in reach.workload_ids:
        direct = {d for s, d in edges if s == workload}
        full = blast_radius(reach, workload)
        assert set(full.direct) == direct
        assert set(full.workloads) >= direct
        assert set(full.workloads) == closure(workload, edges)
        assert (ranks[workload].reached, ranks[workload].direct) == (len(full.reached), len(direct))
        previous: set[str] = set()
        for hops in range(4):
            limited = blast_radius(reach, workload, hops)
            assert previous <= set(limited.workloads) <= set(full.workloads)
            assert limited.reached == tuple(r for r in full.reached if r.hop <= hops)
            assert limited.truncated is (full.depth > hops)
            previous = set(limited.workloads)
