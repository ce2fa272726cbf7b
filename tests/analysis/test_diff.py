"""Diff on hand-checked examples (tests/cases/analysis/diff.yaml): every connection newly allowed
or denied (or whose allowed requests changed), the workloads added or removed, and the layer and
policy that decided each side; each case also holds the other way round.

The case file holds `topologies` and `cases`; each case names a topology and gives `old` and
`new` (`policies`, optional `extra` and `replace` topology objects) and `expect`. See the file's
header for the format.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import kubezt
from casekit import load_objects, read_cases
from kubezt.analysis.diff import Allowance, Change, Decision, Diff, deciding_steps, diff
from kubezt.engine.explain import Effect, Layer, Step, Verdict
from kubezt.engine.requests import AllRequests
from kubezt.ir.policy import Direction
from kubezt.ir.requests import HttpRequest
from kubezt.report.steps import step_text

[(_, DOC)] = read_cases("analysis", "diff.yaml")
CASES = [pytest.param(case, id=case["name"]) for case in DOC["cases"]]


def flatten(items: list[Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for item in items:
        out.extend(flatten(item) if isinstance(item, list) else [item])
    return out


def identity(obj: dict[str, Any]) -> tuple[str, str, str]:
    meta = obj["metadata"]
    return (obj["kind"], meta.get("namespace", ""), meta["name"])


def side_reach(case: dict[str, Any], side: str, tmp_path: Path) -> kubezt.Reachability:
    spec = case[side]
    replaced = {identity(o): o for o in spec.get("replace", [])}
    topology = [replaced.get(identity(o), o) for o in DOC["topologies"][case["topology"]]]
    objects = [*topology, *spec.get("extra", []), *flatten(spec["policies"])]
    # the hand-checked table is about declared ports; every port cell and the outside cells are
    # checked by tests/analysis/test_cells_in_analyses.py
    return kubezt.evaluate(
        load_objects(tmp_path, objects, f"{side}.yaml").model, declared_only=True
    )


def request_text(request: HttpRequest) -> str:
    text = f"{request.method} {request.path}"
    if request.host:
        text += f" host={request.host}"
    return text + "".join(f" {k}={v}" for k, v in request.headers)


def allowance_value(allowance: Allowance) -> str | list[str]:
    if not allowance.allowed:
        return "denied"
    if isinstance(allowance.requests, AllRequests):
        return "all"
    return [request_text(r) for r in allowance.requests.summary]


def decision_text(decision: Decision) -> str:
    parts = []
    for step in decision.steps:
        parts += [step.layer.value, step.reason, step_text(step)]
        if step.source is not None:
            parts.append(step.source.ref)
    return "\n".join(parts)


def observed_change(src: str, dst: str, change: Change, expect: dict[str, Any]) -> dict[str, Any]:
    """The change in the case file's terms, keeping only the keys the expectation uses for the
    decisions (`*_by` are checked as substrings separately)."""
    out: dict[str, Any] = {
        "from": src,
        "to": dst,
        "port": f"{change.port}/{change.protocol}",
        "change": change.kind.value,
        "old": allowance_value(change.old),
        "new": allowance_value(change.new),
    }
    if change.requests:
        out["requests"] = [request_text(r) for r in change.requests]
    if not change.old.declared:
        out["old_declared"] = False
    if not change.new.declared:
        out["new_declared"] = False
    for side, decision in (("old", change.old_decision), ("new", change.new_decision)):
        if f"{side}_request" in expect:
            out[f"{side}_request"] = (
                request_text(decision.request) if decision.request is not None else None
            )
    return out


def test_case_file_is_read() -> None:
    assert len(CASES) >= 7


@pytest.mark.parametrize("case", CASES)
def test_diff_case(case: dict[str, Any], tmp_path: Path) -> None:
    old, new = side_reach(case, "old", tmp_path), side_reach(case, "new", tmp_path)
    result = diff(old, new)
    expect = case["expect"]
    changes = list(result.changes())
    assert len(changes) == len(expect["changes"]), [
        (s, d, c.port, c.kind.value) for s, d, c in changes
    ]
    for (src, dst, change), wanted in zip(changes, expect["changes"], strict=True):
        fields = {k: v for k, v in wanted.items() if k not in ("why", "old_by", "new_by")}
        assert observed_change(src, dst, change, wanted) == fields, wanted.get("why")
        for side, decision in (("old", change.old_decision), ("new", change.new_decision)):
            text = decision_text(decision)
            for needle in wanted.get(f"{side}_by", []):
                assert needle in text, f"{side}: {needle!r} not in\n{text}\n{wanted.get('why')}"
        # the explainer agrees with the matrix: the side that allows more allows the explained
        # connection or request, the other denies it (unless its port was not declared there)
        opens = change.kind.opens
        if change.old.declared:
            assert change.old_decision.allowed is not opens, wanted.get("why")
        if change.new.declared:
            assert change.new_decision.allowed is opens, wanted.get("why")
    presence = [
        [{"workload": p.workload, "reaches": p.reaches, "reached_by": p.reached_by} for p in ps]
        for ps in (result.added, result.removed)
    ]
    strip = [
        [{k: v for k, v in p.items() if k != "why"} for p in expect[key]]
        for key in ("added", "removed")
    ]
    assert presence == strip
    assert result.opens is expect["opens"]
    assert diff(new, old) == result.mirrored()


@pytest.mark.parametrize("case", CASES)
def test_diff_with_itself_is_empty(case: dict[str, Any], tmp_path: Path) -> None:
    new = side_reach(case, "new", tmp_path)
    assert diff(new, new) == Diff(())
    assert diff(new, new).is_empty


def test_deciding_steps_of_a_deny_keep_the_steps_that_led_to_it() -> None:
    steps = (
        Step(
            layer=Layer.CALICO,
            reason="rule-matched",
            effect=Effect.ALLOW,
            direction=Direction.EGRESS,
        ),
        Step(
            layer=Layer.CALICO,
            reason="tier-applies",
            effect=Effect.CONTINUE,
            direction=Direction.INGRESS,
        ),
        Step(
            layer=Layer.CALICO,
            reason="calico-tier-pass",
            effect=Effect.CONTINUE,
            direction=Direction.INGRESS,
        ),
        Step(
            layer=Layer.CALICO,
            reason="end-of-tier-deny",
            effect=Effect.DENY,
            direction=Direction.INGRESS,
        ),
    )
    assert deciding_steps(Verdict(False, Layer.CALICO, steps)) == steps[1:]
    assert deciding_steps(Verdict(True, None, steps[:1])) == steps[:1]
