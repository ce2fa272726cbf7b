"""`diff(A, B)` lists exactly what `explain` says changed: on random clusters of both layers in
the mesh (sidecar, ambient with a waypoint, mixed) and B one or two object changes away from A
(AuthorizationPolicy, PeerAuthentication, Calico policy, mesh membership, capture
annotations), a connection is listed if and only if explain's verdict differs between A and B
for some request of the request space of both sides' policies, with the kind of change those
verdicts say, and a request-level change lists a witness for every request that moved."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import kubezt
from explainkit import Explainer, considered, universe
from kubezt.analysis.diff import ChangeKind, diff
from kubezt.engine.cells import port_cuts
from kubezt.engine.requests import Some
from meshkit import changed, mesh_models

PROPERTY = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def expected_kind(before: tuple[bool, ...], after: tuple[bool, ...]) -> set[ChangeKind]:
    """The change kinds the verdicts per request call for."""
    if not any(before):
        return {ChangeKind.ALLOWED}
    if not any(after):
        return {ChangeKind.DENIED}
    if all(after):
        return {ChangeKind.WIDENED}
    if all(before):
        return {ChangeKind.NARROWED}
    kinds = set()
    if any(a and not b for b, a in zip(before, after, strict=True)):
        kinds.add(ChangeKind.REQUESTS_ALLOWED)
    if any(b and not a for b, a in zip(before, after, strict=True)):
        kinds.add(ChangeKind.REQUESTS_DENIED)
    return kinds


@pytest.mark.parametrize("mode", ["sidecar", "ambient", "mixed"])
@PROPERTY
@given(data=st.data())
def test_diff_lists_exactly_what_explain_says_changed(mode: str, data: st.DataObject) -> None:
    old = data.draw(mesh_models((mode,)), label="A")
    new = old
    for _ in range(data.draw(st.integers(1, 2), label="changes")):
        new = changed(new, data.draw)
    # both sides over the same port cells, as diff compares them (each side's own cuts
    # may differ: a change can name new ports)
    cuts = port_cuts(old).merged(port_cuts(new))
    a, b = kubezt.evaluate(old, cuts=cuts), kubezt.evaluate(new, cuts=cuts)
    result = diff(a, b)
    listed: dict[tuple[str, str, int, str], list] = {}
    for src, dst, change in result.changes():
        listed.setdefault((src, dst, change.port, change.protocol), []).append(change)
    requests = universe(old, new)
    before, after = Explainer(old), Explainer(new)
    for key in sorted(set(considered(a)) | set(considered(b))):
        was, now = before.vector(key, requests), after.vector(key, requests)
        changes = listed.pop(key, [])
        if was == now:
            assert not changes, f"{key}: diff lists {changes}, explain gives the same verdicts"
            continue
        assert {c.kind for c in changes} == expected_kind(was, now), (key, requests, was, now)
        for c in changes:
            if c.kind not in (ChangeKind.REQUESTS_ALLOWED, ChangeKind.REQUESTS_DENIED):
                continue
            assert isinstance(c.old.requests, Some) and isinstance(c.new.requests, Some)
            space = c.old.requests.space.merged(c.new.requests.space)
            cells = {space.cell(w) for w in c.requests}
            gained = c.kind is ChangeKind.REQUESTS_ALLOWED
            for http, w, n in zip(requests, was, now, strict=True):
                if http is not None and (n and not w if gained else w and not n):
                    assert space.cell(http) in cells, f"{key}: {http} moved, not listed"
    # outside cells (`external:…`): test_outside_matches_explain.py holds them to explain
    listed = {k: v for k, v in listed.items() if not k[0].startswith("external:")}
    listed = {k: v for k, v in listed.items() if not k[1].startswith("external:")}
    assert not listed, f"diff lists connections the matrix never considered: {listed}"
