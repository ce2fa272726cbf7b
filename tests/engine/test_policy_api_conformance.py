"""Every probe of the SIG-Network policy API conformance suite (tests/cases/cluster-network-policy,
transcribed from kubernetes-sigs/network-policy-api conformance/tests) and of policy-assistant's
AdminNetworkPolicy/BaselineAdminNetworkPolicy tables (tests/cases/cyclonus/pa-*) matches
kubezt's matrix, and the one-connection explanation agrees with it."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import pytest

import kubezt
from casekit import load_objects, matrix, model_objects, read_cases
from kubezt.ir.ports import Protocol
from kubezt.report.steps import step_text

CNP_CASES = read_cases("cluster-network-policy")
CNP_PROBES = [
    pytest.param(name, i, id=f"{name}-{i}")
    for name, case in CNP_CASES
    for i in range(len(case["probes"]))
]
PA_CASES = read_cases("cyclonus", "pa-*.yaml")
PA_PROBES = [
    pytest.param(name, probe, id=f"{name}-{probe['port']}-{probe['protocol']}")
    for name, case in PA_CASES
    for probe in case["probes"]
]
BY_NAME = dict(CNP_CASES) | dict(PA_CASES)


def test_all_transcribed_files_are_present() -> None:
    assert len(CNP_CASES) == 75
    assert len(CNP_PROBES) == 239
    assert sum(1 for n, _ in PA_CASES if n.startswith(("pa-anp", "pa-banp"))) == 19


def cnp_objects(model: dict[str, Any]) -> list[dict[str, Any]]:
    """Namespaces, Pods (host-network ones on their node) and Nodes of a conformance model."""
    host = set(model.get("hostNetworkPods", []))
    ips = model.get("podIPs", {})
    objects: list[dict[str, Any]] = [
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": ns, "labels": model["namespaceLabels"][ns]},
        }
        for ns in model["namespaces"]
    ]
    for pid in model["pods"]:
        ns, name = pid.split("/")
        on_host = pid in host
        pod: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "namespace": ns, "labels": model["podLabels"][pid]},
            "spec": {
                "hostNetwork": on_host,
                "containers": [
                    {
                        "name": "agnhost",
                        "image": "agnhost",
                        "ports": model[
                            "hostNetworkContainerPorts" if on_host else "containerPorts"
                        ],
                    }
                ],
            },
        }
        if pid in ips:
            pod["status"] = {"podIP": ips[pid]}
        objects.append(pod)
    for node, facts in (model.get("nodes") or {}).items():
        objects.append(
            {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {"name": node, "labels": facts["labels"]},
                "status": {"addresses": [{"type": "InternalIP", "address": facts["internalIP"]}]},
            }
        )
    return objects


@cache
def _loaded(name: str, tmp: Path) -> kubezt.LoadResult:
    case = BY_NAME[name]
    if name.startswith("pa-"):
        objects = model_objects(case["model"]) + case["policies"]
    else:
        objects = cnp_objects(case["model"]) + case["policies"]
    (tmp / name).mkdir(exist_ok=True)
    return load_objects(tmp / name, objects)


@cache
def _matrix(name: str, tmp: Path, port: int, protocol: str) -> dict[str, set[str]]:
    result = kubezt.evaluate(_loaded(name, tmp).model, port, Protocol(protocol))
    return matrix(result)


@pytest.fixture(scope="module")
def tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("policy-api")


@pytest.mark.parametrize(("name", "i"), CNP_PROBES)
def test_cnp_probe_matches_upstream(name: str, i: int, tmp: Path) -> None:
    probe = BY_NAME[name]["probes"][i]
    got = probe["to"] in _matrix(name, tmp, probe["port"], probe["protocol"])[probe["from"]]
    assert got == (probe["expect"] == "allow"), probe


@pytest.mark.parametrize(("name", "i"), CNP_PROBES[::5])
def test_cnp_explanation_agrees_and_names_the_decision(name: str, i: int, tmp: Path) -> None:
    probe = BY_NAME[name]["probes"][i]
    loaded = _loaded(name, tmp)
    topo = loaded.model.topology
    src = kubezt.End(kubezt.EndKind.WORKLOAD, workload=topo.workload(probe["from"]))
    dst = kubezt.End(kubezt.EndKind.WORKLOAD, workload=topo.workload(probe["to"]))
    verdict = kubezt.explain_connection(
        loaded.model, src, dst, probe["port"], Protocol(probe["protocol"])
    )
    assert verdict.allowed == (probe["expect"] == "allow")
    deciding = [s for s in verdict.steps if s.layer is kubezt.Layer.CLUSTER_NETPOL]
    if not verdict.allowed and verdict.denied_by is kubezt.Layer.CLUSTER_NETPOL:
        deny = [s for s in deciding if s.effect == "deny"][-1]
        assert "ClusterNetworkPolicy" in step_text(deny) and "priority" in step_text(deny)
        assert deny.tier in ("kube-admin", "kube-baseline") and deny.rule_index is not None


@pytest.mark.parametrize(("name", "probe"), PA_PROBES)
def test_policy_assistant_probe_matches_upstream(name: str, probe: dict, tmp: Path) -> None:
    got = _matrix(name, tmp, probe["port"], probe["protocol"])
    mismatches = []
    for src, expected in probe["expect"].items():
        want = set(expected) - {src}
        have = got[src] - {src}
        if want != have:
            mismatches.append(f"{src}: expected {sorted(want)}, got {sorted(have)}")
    assert not mismatches, "\n".join(mismatches)
