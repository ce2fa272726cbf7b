"""The per-namespace summary and the focused connection lists equal the brute-force count and
filter of every expanded connection (`Reachability.detailed()`), on random clusters (with
Calico policies and controllers of several replicas) and on the bundled example."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from hypothesis import HealthCheck, given, settings

import kubezt
from analysis.test_diff_properties import load_model, with_calico
from kubezt.analysis.summary import focused, namespace_pairs
from kubezt.engine.requests import Some
from strategies import MixedCluster, mixed_clusters

PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SHOP = str(Path(__file__).resolve().parents[2] / "examples" / "shop")


def check(reach: kubezt.Reachability) -> None:
    rows = list(reach.detailed())
    counts: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    ports: dict[tuple[str, str], set[str]] = defaultdict(set)
    for src, dst, port, protocol, requests in rows:
        key = (src.split("/")[0], dst.split("/")[0])
        counts[key][0] += 1
        counts[key][1] += isinstance(requests, Some)
        # a port cell of several ports is named by its label (`8000-8099`, `other`)
        ports[key].add(f"{reach.port_label(dst, port, protocol)}/{protocol}")
    pairs = namespace_pairs(reach)
    summary = {(p.src, p.dst): ([p.allowed, p.partial], set(p.ports)) for p in pairs}
    assert summary == {k: (v, ports[k]) for k, v in counts.items()}
    for namespace in {w.namespace for w in reach.model.topology.workloads}:
        assert list(focused(reach, namespace=namespace)) == [
            r for r in rows if namespace in (r[0].split("/")[0], r[1].split("/")[0])
        ]
    for workload in reach.workload_ids:
        assert list(focused(reach, workload=workload)) == [
            r for r in rows if workload in (r[0], r[1])
        ]


@PROPERTY
@given(mixed=mixed_clusters())
def test_summary_and_focus_agree_with_every_connection(mixed: MixedCluster) -> None:
    model = with_calico(load_model(mixed.cluster.objects), mixed)
    check(kubezt.evaluate(model))


def test_summary_and_focus_on_the_bundled_example() -> None:
    check(kubezt.evaluate(kubezt.load([SHOP]).model))
