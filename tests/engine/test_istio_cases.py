"""Istio cases (tests/cases/istio/*.yaml), each evaluated under both data planes.

A case file is one situation: Kubernetes / Calico / Istio objects plus requests with the verdict
semantics.md (§3 PeerAuthentication, §4 AuthorizationPolicy, §5 ambient) gives them. The
namespaces listed in `meshNamespaces` carry no mesh label in the file: the `mode` fixture labels
them `istio-injection: enabled` (sidecar) or `istio.io/dataplane-mode: ambient` (ambient), so
the same objects are checked under both data planes.

```yaml
name: <kebab-case id, unique>
source: <doc URL or upstream file the expectations come from>
meshNamespaces: [foo, bar]          # labelled by the fixture; any other namespace is outside
meshConfig: {rootNamespace: ..., trustDomain: ..., trustDomainAliases: [...]}   # optional
resources: [ full objects ]
requests:
  - from: "<ns>/<pod>" | "external:<ip>" | "kubelet-probe" | "node"
    to: "<ns>/<pod>"
    port: 8080                       # destination container (target) port
    service: "<ns>/<svc>:<port>"     # optional: the client addressed the Service
    protocol: TCP                    # optional
    http: {method: GET, path: /, host: ..., headers: {name: value}}   # optional
    expect: allow | deny | {sidecar: allow, ambient: deny}
    denied_by: <layer> | {ambient: ztunnel}   # exactly for the modes that deny; `authz`
                                     # means the mode's authorizer: authz-sidecar | ztunnel
    mtls: true | {sidecar: false, ambient: true}   # optional: client presents an Istio cert
    reach: all | some | none | {...}  # optional: what `evaluate` reports for the pair/port
    xfail: "<reason>" | {ambient: "<reason>"}     # a known kubezt bug (strict)
    why: "the rule that decides"
```
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import pytest

import kubezt
from casekit import end, http_request, load_objects, read_cases, service_address
from kubezt.engine.connection import plan_path
from kubezt.engine.mesh import find_service
from kubezt.engine.requests import AllRequests, Some
from kubezt.ir.config import MeshConfig
from kubezt.ir.ports import Protocol
from kubezt.report.steps import step_text, tls_text

MODES = ("sidecar", "ambient")
MESH_LABELS = {
    "sidecar": {"istio-injection": "enabled"},
    "ambient": {"istio.io/dataplane-mode": "ambient"},
}
AUTHZ_LAYER = {"sidecar": "authz-sidecar", "ambient": "ztunnel"}
LAYERS = {
    "k8s-netpol",
    "calico",
    "peer-authentication",
    "tls-mismatch",
    "authz-sidecar",
    "ztunnel",
    "waypoint",
    "calico-alp",
    "authz",
}
ASSUMED_NAMESPACES = ("default", "istio-system", "kube-system")
CASE_KEYS = {"name", "source", "notes", "meshNamespaces", "meshConfig", "resources", "requests"}
REQUEST_KEYS = {
    "from",
    "to",
    "port",
    "service",
    "protocol",
    "http",
    "expect",
    "denied_by",
    "mtls",
    "reach",
    "xfail",
    "why",
}

CASES = read_cases("istio")
REQUESTS = [
    pytest.param(case, request, id=f"{name}-{i}")
    for name, case in CASES
    for i, request in enumerate(case["requests"])
]


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def per_mode(value: Any, mode: str) -> Any:
    """A request field that is either the same for both modes or a {mode: value} mapping."""
    if isinstance(value, dict) and set(value) <= set(MODES):
        return value.get(mode)
    return value


# --- building the model of a case under one mode ---------------------------------------------


def case_objects(case: dict[str, Any], mode: str) -> list[dict[str, Any]]:
    mesh_ns = set(case["meshNamespaces"])
    resources = copy.deepcopy(case["resources"])
    declared: set[str] = set()
    for obj in resources:
        if obj["kind"] == "Namespace":
            name = obj["metadata"]["name"]
            declared.add(name)
            if name in mesh_ns:
                obj["metadata"].setdefault("labels", {}).update(MESH_LABELS[mode])
    for name in sorted(mesh_ns - declared):
        resources.append(
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {"name": name, "labels": dict(MESH_LABELS[mode])},
            }
        )
        declared.add(name)
    for name in ASSUMED_NAMESPACES:
        if name not in declared:
            resources.append({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    return resources


_MODELS: dict[tuple[str, str], kubezt.LoadResult] = {}
_REACH: dict[tuple[str, str, int], dict[tuple[str, str], Any]] = {}


@pytest.fixture(scope="session")
def case_dir(tmp_path_factory: pytest.TempPathFactory):
    return tmp_path_factory.mktemp("istio-cases")


def loaded(case: dict[str, Any], mode: str, case_dir) -> kubezt.LoadResult:
    key = (case["name"], mode)
    if key not in _MODELS:
        result = load_objects(case_dir, case_objects(case, mode), f"{case['name']}-{mode}.yaml")
        cfg = case.get("meshConfig")
        if cfg is not None:
            base = result.model.mesh_config
            config = MeshConfig(
                root_namespace=cfg.get("rootNamespace", base.root_namespace),
                trust_domain=cfg.get("trustDomain", base.trust_domain),
                trust_domain_aliases=tuple(
                    cfg.get("trustDomainAliases", base.trust_domain_aliases)
                ),
                enable_auto_mtls=cfg.get("enableAutoMtls", base.enable_auto_mtls),
            )
            result = dataclasses.replace(
                result, model=dataclasses.replace(result.model, mesh_config=config)
            )
        _MODELS[key] = result
    return _MODELS[key]


def mark_xfail(request: dict[str, Any], mode: str, node: pytest.FixtureRequest) -> None:
    reason = per_mode(request.get("xfail"), mode)
    if reason:
        node.node.add_marker(pytest.mark.xfail(reason=reason, strict=True))


# --- the checks --------------------------------------------------------------------------------


def test_case_files_are_well_formed() -> None:
    assert len(CASES) >= 25
    names = [case["name"] for _, case in CASES]
    assert len(names) == len(set(names))
    for file, case in CASES:
        assert set(case) <= CASE_KEYS, (file, set(case) - CASE_KEYS)
        assert case["source"] and case["requests"], file
        for obj in case["resources"]:
            if obj["kind"] == "Namespace":
                labels = obj["metadata"].get("labels") or {}
                assert not {"istio-injection", "istio.io/dataplane-mode"} & set(labels), (
                    f"{file}: the fixture sets mesh labels"
                )
        for i, req in enumerate(case["requests"]):
            where = f"{file} request {i}"
            assert set(req) <= REQUEST_KEYS, (where, set(req) - REQUEST_KEYS)
            assert req.get("why"), where
            for mode in MODES:
                expect = per_mode(req["expect"], mode)
                assert expect in ("allow", "deny"), where
                layer = per_mode(req.get("denied_by"), mode)
                if expect == "deny":
                    assert layer in LAYERS, (where, mode, layer)
                else:
                    assert layer is None, (where, mode, "denied_by on an allowed request")


def test_every_mode_differs_somewhere() -> None:
    """The two data planes really are exercised differently (not just relabelled)."""
    differing = [
        req
        for _, case in CASES
        for req in case["requests"]
        if per_mode(req["expect"], "sidecar") != per_mode(req["expect"], "ambient")
    ]
    assert len(differing) >= 20


@pytest.mark.parametrize(("case", "request_"), REQUESTS)
def test_request_verdict(case, request_, mode, case_dir, request) -> None:
    mark_xfail(request_, mode, request)
    result = loaded(case, mode, case_dir)
    verdict = kubezt.explain_connection(
        result.model,
        end(result, request_["from"]),
        end(result, request_["to"]),
        request_["port"],
        Protocol(request_.get("protocol", "TCP")),
        service=service_address(request_),
        http=http_request(request_),
    )
    expect = per_mode(request_["expect"], mode)
    steps = "\n".join(f"  {s.layer.value} {s.reason}: {step_text(s)}" for s in verdict.steps)
    why = f"{request_['why']}\nsteps:\n{steps}"
    assert all(step_text(s) for s in verdict.steps), f"a step without a sentence:\n{steps}"
    assert verdict.verdict == expect, why
    if expect == "deny":
        layer = per_mode(request_["denied_by"], mode)
        layer = AUTHZ_LAYER[mode] if layer == "authz" else layer
        assert verdict.denied_by is not None and verdict.denied_by.value == layer, why
    mtls = per_mode(request_.get("mtls"), mode)
    if mtls is not None:
        service = service_address(request_)
        model = result.model
        path = plan_path(
            model,
            end(result, request_["from"]),
            end(result, request_["to"]),
            request_["port"],
            Protocol(request_.get("protocol", "TCP")),
            find_service(model, service),
            service.port if service else None,
        )
        tls = tls_text(path.tls, path.not_captured)
        assert path.mtls is mtls, f"client TLS: {tls}\n{request_['why']}"


def reach_rows(case, mode, port: int, case_dir) -> dict[tuple[str, str], Any]:
    key = (case["name"], mode, port)
    if key not in _REACH:
        result = kubezt.evaluate(loaded(case, mode, case_dir).model, port=port)
        _REACH[key] = {
            (src, dst): requests
            for src, dst, p, proto, requests in result.detailed()
            if p == port and proto == "TCP"
        }
    return _REACH[key]


def reach_expectation(request: dict[str, Any], mode: str) -> str | None:
    """What the matrix must show for the request's pair and port: the case's `reach`, or — for
    an allowed request — at least an entry."""
    stated = per_mode(request.get("reach"), mode)
    if stated is not None:
        return str(stated)
    if per_mode(request["expect"], mode) == "allow" and not per_mode(request.get("xfail"), mode):
        return "present"
    return None


REACH_REQUESTS = [
    pytest.param(case, request, mode, id=f"{mode}-{name}-{i}")
    for name, case in CASES
    for i, request in enumerate(case["requests"])
    for mode in MODES
    if "/" in request["from"]
    and not request["from"].startswith("external:")
    and request.get("protocol", "TCP") == "TCP"
    and reach_expectation(request, mode) is not None
]


@pytest.mark.parametrize(("case", "request_", "mode_"), REACH_REQUESTS)
def test_reach_agrees(case, request_, mode_, case_dir, request) -> None:
    """`evaluate` (the matrix) lists the pair when the case allows the request, and reports
    all / some / none of the HTTP requests as the case states."""
    expected = reach_expectation(request_, mode_)
    if "reach" in request_:
        mark_xfail(request_, mode_, request)
    rows = reach_rows(case, mode_, request_["port"], case_dir)
    pair = (request_["from"], request_["to"])
    if expected == "none":
        assert pair not in rows, request_["why"]
        return
    assert pair in rows, request_["why"]
    if expected == "all":
        assert isinstance(rows[pair], AllRequests), (rows[pair], request_["why"])
    elif expected == "some":
        assert isinstance(rows[pair], Some), request_["why"]
