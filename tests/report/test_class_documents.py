"""The class-level reach document (`reach --by class`) stands for exactly the per-pair document:
expanded to pairs it equals `reach_document`'s rows, on random Kubernetes + Calico clusters (with
an explicit probe port too) and on random sidecar and ambient meshes with AuthorizationPolicies
(where partial request sets appear)."""

from __future__ import annotations

import sys
from pathlib import Path

from hypothesis import HealthCheck, given, settings

import kubezt
from kubezt.ir.ports import Protocol
from kubezt.report.class_documents import expand_classes, pair_lines, reach_class_document
from kubezt.report.documents import reach_document

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "engine"))

from test_authz_sets import _with_mesh, base_model, mesh_policies
from test_properties import load_model, with_calico

from strategies import MixedCluster, mixed_clusters, probes

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def assert_same(result: kubezt.Reachability) -> None:
    pairs = reach_document(result)["allowed"]
    expanded = expand_classes(reach_class_document(result))
    assert expanded == pairs
    lines = list(pair_lines(result))
    assert lines[1:] == pairs
    # streamed per source workload, still in (src, dst, port, protocol) order, each pair once
    keys = [(r["src"], r["dst"], r["port"], r["protocol"]) for r in pairs]
    assert len(keys) == len(set(keys))
    assert [k[:2] for k in keys] == sorted(k[:2] for k in keys)
    assert lines[0]["workloads"] == result.workload_ids


@SETTINGS
@given(mixed=mixed_clusters(), probe=probes())
def test_class_document_expands_to_the_pairs_on_calico_clusters(
    mixed: MixedCluster, probe: tuple[int, str]
) -> None:
    model = with_calico(load_model(mixed.cluster.objects), mixed)
    assert_same(kubezt.evaluate(model))
    assert_same(kubezt.evaluate(model, probe[0], Protocol(probe[1])))


@SETTINGS
@given(drawn=mesh_policies())
def test_class_document_expands_to_the_pairs_on_meshes(drawn, tmp_path_factory) -> None:
    policies, modes, config = drawn
    for mode in ("sidecar", "ambient"):
        base = base_model(mode, tmp_path_factory.mktemp("mesh"))
        assert_same(kubezt.evaluate(_with_mesh(base, policies, modes, config)))
