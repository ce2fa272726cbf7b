"""The class-level reach document (`reach --by class`) stands for exactly the per-pair document:
expanded to pairs it equals `reach_document`'s rows, on random Kubernetes + Calico clusters (with
an explicit probe port too) and on random sidecar and ambient meshes with AuthorizationPolicies
(where partial request sets appear)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import jsonschema
from hypothesis import HealthCheck, given, settings

import kubezt
from kubezt.ir.ports import Protocol
from kubezt.report.class_documents import expand_classes, pair_lines, reach_class_document
from kubezt.report.documents import reach_document

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "engine"))

from test_authz_sets import _with_mesh, base_model, mesh_policies
from test_properties import load_model, with_calico

from strategies import MixedCluster, mixed_clusters, probes

SCHEMA = json.loads(
    (Path(__file__).resolve().parents[2] / "docs" / "reach-classes-v2.schema.json").read_text()
)


def assert_well_formed(doc: dict) -> None:
    """The document follows its published schema, and every index points into its table."""
    jsonschema.Draft7Validator(SCHEMA).validate(doc)
    cells, sets = len(doc["portCells"]), len(doc["portSets"])
    assert all(0 <= i < cells for listed in doc["portSets"] for i in listed)
    assert [c["id"] for c in doc["classes"]] == list(range(len(doc["classes"])))
    assert all(c["ports"] < sets for c in doc["classes"])
    for edge in doc["allowed"]:
        assert edge["src"] < len(doc["classes"]) and edge["dst"] < len(doc["classes"])
        assert edge["cell"] < cells
        assert edge["requests"] == "all" or edge["requests"] < len(doc["requestSets"])
    # each cell and each port set listed once
    assert len({json.dumps(c, sort_keys=True) for c in doc["portCells"]}) == cells
    assert len({tuple(listed) for listed in doc["portSets"]}) == sets


SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def assert_same(result: kubezt.Reachability) -> None:
    pairs = reach_document(result)["allowed"]
    doc = reach_class_document(result)
    assert_well_formed(doc)
    expanded = expand_classes(doc)
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
