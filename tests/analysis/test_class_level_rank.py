"""`blast-radius --all` ranks on the graph of classes, never expanding to pairs. The property:
on random Kubernetes + Calico clusters and random sidecar and ambient meshes, its counts equal
those of the per-pair graph (every allowed connection between two workloads, closed
transitively)."""

from __future__ import annotations

import sys
from pathlib import Path

from hypothesis import HealthCheck, given, settings

import kubezt
from kubezt.analysis.blast_radius import _closures, connection_graph, rank, reported_workloads

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "engine"))

from test_authz_sets import _with_mesh, base_model, mesh_policies
from test_properties import load_model, with_calico

from strategies import MixedCluster, mixed_clusters

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def per_pair(reach: kubezt.Reachability) -> dict[str, tuple[int, int]]:
    """(transitive, direct) reach of every workload, from the per-pair graph."""
    ids = sorted(reported_workloads(reach))
    graph = connection_graph(reach)
    index = {w: i for i, w in enumerate(ids)}
    successors = [[index[d] for d in graph.get(w, {})] for w in ids]
    closure = _closures(successors)
    return {
        w: ((closure[i] & ~(1 << i)).bit_count(), len(successors[i])) for i, w in enumerate(ids)
    }


def assert_same(reach: kubezt.Reachability) -> None:
    ranks = rank(reach)
    assert sorted(r.workload for r in ranks) == sorted(reported_workloads(reach))
    assert {r.workload: (r.reached, r.direct) for r in ranks} == per_pair(reach)


@SETTINGS
@given(mixed=mixed_clusters())
def test_class_level_ranking_equals_the_per_pair_one_on_calico_clusters(
    mixed: MixedCluster,
) -> None:
    assert_same(kubezt.evaluate(with_calico(load_model(mixed.cluster.objects), mixed)))


@SETTINGS
@given(drawn=mesh_policies())
def test_class_level_ranking_equals_the_per_pair_one_on_meshes(drawn, tmp_path_factory) -> None:
    policies, modes, config = drawn
    for mode in ("sidecar", "ambient"):
        base = base_model(mode, tmp_path_factory.mktemp("mesh"))
        assert_same(kubezt.evaluate(_with_mesh(base, policies, modes, config)))
