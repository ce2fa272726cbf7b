"""Case table (tests/cases/requests/cells.yaml): for each policy set, a concrete request's
verdict is the verdict of the witness of its cell, and the expected verdict."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from kubezt.engine.authz import AuthzRequest, Enforcer, authorize
from kubezt.engine.requests import space_of
from kubezt.ir.config import MeshConfig
from kubezt.ir.mesh import AuthorizationPolicy, AuthzAction, AuthzOperation, AuthzRule
from kubezt.ir.requests import HttpRequest

CASES = yaml.safe_load(
    (Path(__file__).parent.parent / "cases" / "requests" / "cells.yaml").read_text()
)["cases"]


def _policies(case: dict[str, Any]) -> list[AuthorizationPolicy]:
    out = []
    for i, p in enumerate(case["policies"]):
        op = AuthzOperation(**{k: tuple(v) for k, v in p.items() if k != "action"})
        out.append(
            AuthorizationPolicy(
                f"p{i}", "foo", AuthzAction(p["action"]), rules=(AuthzRule(operations=(op,)),)
            )
        )
    return out


def _allowed(policies: list[AuthorizationPolicy], request: HttpRequest) -> bool:
    req = AuthzRequest("cluster.local/ns/foo/sa/a", "10.0.0.1", "10.0.0.2", 8080, request)
    return authorize(policies, req, Enforcer.SIDECAR, MeshConfig(), "test").allowed


@pytest.mark.parametrize("case", CASES, ids=lambda c: c["name"])
def test_every_request_has_a_witness_with_its_verdict(case: dict[str, Any]) -> None:
    policies = _policies(case)
    space = space_of(policies)
    witnesses = {space.cell(w): w for w in space.witnesses()}
    for r in case["requests"]:
        request = HttpRequest(r["method"], r["path"])
        assert _allowed(policies, request) is r["allowed"], (r, case["why"])
        witness = witnesses.get(space.cell(request))
        assert witness is not None, (r, case["why"])
        assert _allowed(policies, witness) is r["allowed"], (r, witness, case["why"])
