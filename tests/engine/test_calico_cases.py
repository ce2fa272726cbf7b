"""Calico policy behaviour from the Calico documentation (tests/cases/calico/*.yaml), and the
SIG-Network policy API through Calico's tiers (tests/cases/policy-api/*.yaml): each case
gives the verdict of `explain_connection`, the tier / policy / rule / action that decided, the
tiers passed through, and `evaluate()` agrees with the explanation.

Case files: `source` (doc URL), `topology` (manifests shared by the file's cases) and `cases`,
each with `policies` (manifests) and `expect`, a list of
`{from, to, port, protocol (TCP), verdict, denied_by, decided_by: {tier, policy, rule, action},
passed: [tiers], staged: [reasons]}` (all but from/to/port/verdict optional). Ends are
`ns/workload` or `external:<ip>`.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

import pytest

import kubezt
from casekit import load_objects, matrix, read_cases
from kubezt.engine.explain import Effect
from kubezt.engine.index import ClassIndex, external_peer, workload_peer
from kubezt.engine.l4 import staged_policy_steps
from kubezt.ir.ports import PortKey, Protocol
from kubezt.report.steps import step_text

FILES = [(name, doc) for name, doc in read_cases("calico") if name != "selectors"] + [
    (f"policy-api-{name}", doc) for name, doc in read_cases("policy-api")
]
EXPECTATIONS = [
    pytest.param(doc, case, expect, id=f"{name}-{case['name']}-{i}")
    for name, doc in FILES
    for case in doc["cases"]
    for i, expect in enumerate(case["expect"])
]


def test_case_files_are_read() -> None:
    assert len(FILES) >= 9
    assert len(EXPECTATIONS) >= 100


def end(loaded: kubezt.LoadResult, text: str) -> kubezt.End:
    if text.startswith("external:"):
        return kubezt.End(kubezt.EndKind.EXTERNAL, ip=text.removeprefix("external:"))
    workload = loaded.model.topology.workload(text)
    assert workload is not None, f"case names unknown workload {text}"
    return kubezt.End(kubezt.EndKind.WORKLOAD, workload=workload)


@pytest.mark.parametrize(("doc", "case", "expect"), EXPECTATIONS)
def test_calico_case(
    doc: dict[str, Any], case: dict[str, Any], expect: dict, tmp_path: Path
) -> None:
    loaded = load_objects(tmp_path, [*doc["topology"], *case["policies"]])
    model = loaded.model
    protocol = Protocol(expect.get("protocol", "TCP"))
    src, dst = end(loaded, expect["from"]), end(loaded, expect["to"])
    verdict = kubezt.explain_connection(model, src, dst, expect["port"], protocol)
    steps = "\n".join(f"  {s.layer} {s.reason} {step_text(s)}" for s in verdict.steps)
    why = f"{case.get('why', '')}\nsteps:\n{steps}"
    assert verdict.verdict == expect["verdict"], why
    if expect["verdict"] == "deny":
        assert verdict.denied_by is not None and verdict.denied_by.value == expect["denied_by"], why
    decided = expect.get("decided_by")
    if decided is not None:
        final = [s for s in verdict.steps if s.effect in (Effect.ALLOW, Effect.DENY)][-1]
        assert final.tier == decided["tier"], why
        assert final.rule_index == decided.get("rule"), why
        assert (final.action or "") == decided.get("action", ""), why
        if "policy" in decided:
            assert decided["policy"] in step_text(final), why
    if "passed" in expect:
        passed = [
            s.tier for s in verdict.steps if s.reason in ("calico-tier-pass", "tier-default-pass")
        ]
        assert passed == expect["passed"], why
    if src.workload is not None and dst.workload is not None:
        result = kubezt.evaluate(model, expect["port"], protocol)
        reaches = dst.workload.id in matrix(result)[src.workload.id]
        assert reaches is (expect["verdict"] == "allow"), f"evaluate() disagrees\n{why}"
    if "staged" in expect:
        peers = [
            workload_peer(e.workload, model.topology)
            if e.workload is not None
            else external_peer(ipaddress.ip_address(str(e.ip)), model.policies)
            for e in (src, dst)
        ]
        index = ClassIndex(peers, model.topology, model.policies)
        key = PortKey(expect["port"], protocol, peers[1].port_name(expect["port"], protocol))
        reasons = [s.reason for s in staged_policy_steps(index, 0, 1, key)]
        assert reasons == expect["staged"], why
