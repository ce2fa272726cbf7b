"""`learn` internals: path templates bounded by --max-paths (table + property against the
engine's own Istio path matcher), evidence, and what is left out of the intent."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from kubezt.engine.authz import path_match
from kubezt.generate.learn import generalise_paths

CASES: list[dict[str, Any]] = yaml.safe_load(
    (Path(__file__).parent.parent / "cases" / "flows" / "paths.yaml").read_text()
)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c["name"])
def test_generalise_paths(case: dict[str, Any]) -> None:
    assert generalise_paths(case["paths"], case["max"]) == case["expect"]


SEGMENT = st.one_of(
    st.sampled_from(["api", "orders", "items", "v1", "users", "health", ""]),
    st.integers(0, 10**6).map(str),
    st.text("abcdefghij0123456789", min_size=1, max_size=24),
)
PATHS = st.lists(SEGMENT, min_size=1, max_size=5).map(lambda s: "/" + "/".join(s))


@given(paths=st.lists(PATHS, min_size=1, max_size=30), bound=st.integers(1, 6))
def test_generalised_paths_cover_every_observed_path_within_the_bound(
    paths: list[str], bound: int
) -> None:
    patterns = generalise_paths(paths, bound)
    assert 1 <= len(patterns) <= bound
    for path in paths:
        if "//" in path or path.endswith("/.") or "/./" in path:
            continue  # the proxy normalises these before matching
        assert any(path_match(p, path) for p in patterns), (path, patterns)


AMBIENT = Path(__file__).parent.parent / "cases" / "learn-flows"


def test_ambient_call_is_learned_from_the_waypoint_log_not_from_ztunnel_hops() -> None:
    """A call through a waypoint: ztunnel logs client → waypoint (skipped by the reader) and
    waypoint → pod (a waypoint hop, not a call of the waypoint's); the waypoint's log names the
    client and the pod, and that is the call learned, with its method and path template."""
    import kubezt
    from kubezt.dialects.flows import FlowStats, read_flows
    from kubezt.generate.learn import Learner

    model = kubezt.load([str(AMBIENT / "ambient.yaml")]).model
    learner = Learner(model)
    stats = FlowStats()
    learner.add_all(
        read_flows(
            [str(AMBIENT / "ambient.ztunnel.log"), str(AMBIENT / "ambient.waypoint.log")], stats
        )
    )
    assert (stats.records, stats.skipped, stats.bad) == (2, 1, 0)
    result = learner.finish(name="learned")
    assert [
        (str(g.caller), str(g.service), [p.port for p in g.ports]) for g in result.intent.grants
    ] == [("shop/web", "shop/orders", [8080])]
    (grant,) = result.intent.grants
    assert grant.http is not None
    assert (grant.http.methods, grant.http.paths) == (("GET",), ("/orders/{*}",))
    assert result.evidence["platform/waypoint-hops"].count == 1
    assert result.unresolved == 0
