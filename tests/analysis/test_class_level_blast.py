"""`blast-radius WORKLOAD` searches the graph of classes, expanding to workloads only those the
search reaches. The property: on random Kubernetes + Calico clusters and random sidecar and
ambient meshes, for every workload and hop limit, the result equals the breadth-first search of
the per-pair graph (every allowed connection between two workloads)."""

from __future__ import annotations

import sys
from pathlib import Path

from hypothesis import HealthCheck, given, settings

import kubezt
from kubezt.analysis.blast_radius import (
    Access,
    BlastRadius,
    Reached,
    blast_radius,
    connection_graph,
    reported_workloads,
)

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "engine"))

from test_authz_sets import _with_mesh, base_model, mesh_policies
from test_properties import load_model, with_calico

from strategies import MixedCluster, mixed_clusters

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def per_pair(reach: kubezt.Reachability, held: str, hops: int | None) -> BlastRadius:
    """Breadth-first search over every allowed pair (`Reachability.detailed`)."""
    graph = connection_graph(reach)
    reached: list[Reached] = []
    seen = {held}
    frontier = [held]
    hop = 0
    while frontier and (hops is None or hop < hops):
        hop += 1
        access: dict[str, list[Access]] = {}
        for src in frontier:
            for dst, rows in graph.get(src, {}).items():
                if dst not in seen:
                    access.setdefault(dst, []).extend(Access(src, *row) for row in rows)
        for dst in sorted(access):
            entries = tuple(sorted(access[dst], key=lambda a: (a.via, a.port, a.protocol)))
            reached.append(Reached(dst, hop, tuple(sorted({a.via for a in entries})), entries))
        seen.update(access)
        frontier = sorted(access)
    truncated = any(dst not in seen for src in frontier for dst in graph.get(src, {}))
    full = blast_radius(reach, held, hops)
    return BlastRadius(held, full.identity, hops, tuple(reached), full.shared_identity, truncated)


def assert_same(reach: kubezt.Reachability) -> None:
    for held in sorted(reported_workloads(reach)):
        for hops in (None, 0, 1, 2):
            assert blast_radius(reach, held, hops) == per_pair(reach, held, hops), (held, hops)


@SETTINGS
@given(mixed=mixed_clusters())
def test_class_level_blast_radius_equals_the_per_pair_one_on_calico_clusters(
    mixed: MixedCluster,
) -> None:
    assert_same(kubezt.evaluate(with_calico(load_model(mixed.cluster.objects), mixed)))


@SETTINGS
@given(drawn=mesh_policies())
def test_class_level_blast_radius_equals_the_per_pair_one_on_meshes(
    drawn, tmp_path_factory
) -> None:
    policies, modes, config = drawn
    for mode in ("sidecar", "ambient"):
        base = base_model(mode, tmp_path_factory.mktemp("mesh"))
        assert_same(kubezt.evaluate(_with_mesh(base, policies, modes, config)))
