"""Documented Istio/Calico/Kubernetes situations (tests/cases/scenarios, see its README) give the
documented verdict and name the documented denying layer."""

from __future__ import annotations

import dataclasses

import pytest

import kubezt
from casekit import end, http_request, load_objects, read_cases, service_address
from kubezt.ir.config import MeshConfig
from kubezt.ir.ports import Protocol

ASSUMED_NAMESPACES = ("default", "istio-system", "kube-system")
SCENARIOS = read_cases("scenarios")
REQUESTS = [
    pytest.param(scenario, request, id=f"{name}-{i}")
    for name, scenario in SCENARIOS
    for i, request in enumerate(scenario["requests"])
]


def test_every_scenario_file_is_read() -> None:
    assert len(SCENARIOS) == 72
    assert len(REQUESTS) == 210


def scenario_model(scenario: dict, tmp_path) -> kubezt.LoadResult:
    resources = list(scenario["resources"])
    declared = {r["metadata"]["name"] for r in resources if r["kind"] == "Namespace"}
    for ns in ASSUMED_NAMESPACES:
        if ns not in declared:
            resources.append({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    return load_objects(tmp_path, resources)


def mesh_config(scenario: dict) -> MeshConfig:
    mesh = scenario.get("mesh") or {}
    return MeshConfig(
        root_namespace=mesh.get("rootNamespace", "istio-system"),
        trust_domain=mesh.get("trustDomain", "cluster.local"),
        trust_domain_aliases=tuple(mesh.get("trustDomainAliases", ())),
        enable_auto_mtls=mesh.get("enableAutoMtls", True),
        calico_alp=mesh.get("calicoAlpEnabled", False),
    )


@pytest.mark.parametrize(("scenario", "request_"), REQUESTS)
def test_request_gets_documented_verdict(scenario, request_, tmp_path) -> None:
    loaded = scenario_model(scenario, tmp_path)
    model = dataclasses.replace(loaded.model, mesh_config=mesh_config(scenario))
    verdict = kubezt.explain_connection(
        model,
        end(loaded, request_["from"]),
        end(loaded, request_["to"]),
        request_["port"],
        Protocol(request_.get("protocol", "TCP")),
        service=service_address(request_),
        http=http_request(request_),
    )
    why = request_.get("why", "")
    assert verdict.verdict == request_["expect"], f"{why}\nsteps: {verdict.steps}"
    if request_["expect"] == "deny":
        assert verdict.denied_by is not None
        assert verdict.denied_by.value == request_["denied_by"], why


@pytest.mark.parametrize(("scenario", "request_"), REQUESTS)
def test_client_presents_mtls_as_documented(scenario, request_, tmp_path) -> None:
    """kubezt's derivation of client-side TLS (auto mTLS, DestinationRule, HBONE) agrees with
    the scenario's statement of whether the client presents an Istio certificate."""
    from kubezt.engine.connection import plan_path
    from kubezt.engine.mesh import find_service

    loaded = scenario_model(scenario, tmp_path)
    model = dataclasses.replace(loaded.model, mesh_config=mesh_config(scenario))
    service = service_address(request_)
    path = plan_path(
        model,
        end(loaded, request_["from"]),
        end(loaded, request_["to"]),
        request_["port"],
        Protocol(request_.get("protocol", "TCP")),
        find_service(model, service),
        service.port if service else None,
    )
    assert path.mtls is request_["mtls"], request_.get("why", "")
