"""Every probe of the Kubernetes NetworkPolicy e2e truth tables (tests/cases/k8s-netpol-e2e,
transcribed from kubernetes/kubernetes test/e2e/network/netpol) matches kubezt's matrix.

Self pairs are ignored as upstream does (ignoreLoopback): kubezt always allows a pod to reach
itself, because that traffic never leaves the pod's network namespace.
"""

from __future__ import annotations

import pytest

import kubezt
from casekit import load_objects, matrix, model_objects, read_cases
from kubezt.ir.ports import Protocol

CASES = read_cases("k8s-netpol-e2e")
PROBES = [
    pytest.param(case, probe, id=f"{name}-{probe['port']}-{probe['protocol']}")
    for name, case in CASES
    for probe in case["probes"]
]


def test_all_transcribed_files_are_present() -> None:
    assert len(CASES) == 58
    assert len(PROBES) == 65


@pytest.mark.parametrize(("case", "probe"), PROBES)
def test_probe_matches_upstream_truth_table(case, probe, tmp_path) -> None:
    objects = model_objects(case["model"], case.get("setup")) + case["policies"]
    loaded = load_objects(tmp_path, objects)
    result = kubezt.evaluate(loaded.model, probe["port"], Protocol(probe["protocol"]))
    got = matrix(result)
    mismatches = []
    for src, expected in probe["expect"].items():
        want = set(expected) - {src}
        have = got[src] - {src}
        if want != have:
            mismatches.append(f"{src}: expected {sorted(want)}, got {sorted(have)}")
    assert not mismatches, "\n".join(mismatches)


@pytest.mark.parametrize(("case", "probe"), PROBES[:65:7])
def test_self_pairs_are_always_allowed(case, probe, tmp_path) -> None:
    objects = model_objects(case["model"], case.get("setup")) + case["policies"]
    result = kubezt.evaluate(
        load_objects(tmp_path, objects).model, probe["port"], Protocol(probe["protocol"])
    )
    got = matrix(result)
    assert all(src in dsts for src, dsts in got.items())
