"""Blast radius on hand-checked examples (tests/cases/analysis/blast-radius.yaml): every reached
workload with its hop, the footholds it is reached from and the connections they may open; the
workloads sharing the held workload's identity; whether a hop limit cut the search.

The case file holds `topologies` (manifests by name) and `cases`, each naming a topology, its
`policies` (manifests; nested lists are flattened so YAML anchors can be combined), the
`workload` held, an optional `hops` limit and `expect`. See the file's header for the format.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import kubezt
from casekit import load_objects, read_cases
from kubezt.analysis.blast_radius import Access, BlastRadius, blast_radius, rank
from kubezt.engine.requests import AllRequests
from kubezt.errors import KubeztError

[(_, DOC)] = read_cases("analysis", "blast-radius.yaml")
CASES = [pytest.param(case, id=case["name"]) for case in DOC["cases"]]


def flatten(items: list[Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for item in items:
        out.extend(flatten(item) if isinstance(item, list) else [item])
    return out


def case_reach(case: dict[str, Any], tmp_path: Path) -> kubezt.Reachability:
    objects = [*DOC["topologies"][case["topology"]], *flatten(case["policies"])]
    # the hand-checked table is about declared ports; every port cell and the outside cells are
    # checked by tests/analysis/test_cells_in_analyses.py
    return kubezt.evaluate(load_objects(tmp_path, objects).model, declared_only=True)


def access_text(access: Access) -> str:
    text = f"{access.via} {access.port}/{access.protocol}"
    if isinstance(access.requests, AllRequests):
        return text
    parts = []
    for r in access.requests.summary:
        part = f"{r.method} {r.path}"
        if r.host:
            part += f" host={r.host}"
        part += "".join(f" {k}={v}" for k, v in r.headers)
        parts.append(part)
    return f"{text}: {', '.join(parts)}"


def observed(result: BlastRadius) -> dict[str, Any]:
    return {
        "identity": result.identity,
        "reached": [
            {
                "workload": r.workload,
                "hop": r.hop,
                "via": list(r.via),
                "access": [access_text(a) for a in r.access],
            }
            for r in result.reached
        ],
        "shared_identity": list(result.shared_identity),
        "truncated": result.truncated,
    }


def test_case_file_is_read() -> None:
    assert len(CASES) >= 8


@pytest.mark.parametrize("case", CASES)
def test_blast_radius_case(case: dict[str, Any], tmp_path: Path) -> None:
    reach = case_reach(case, tmp_path)
    result = blast_radius(reach, case["workload"], case.get("hops"))
    expect = case["expect"]
    wanted = {
        "identity": expect["identity"],
        "reached": [
            {k: v for k, v in r.items() if k in ("workload", "hop", "via", "access")}
            for r in expect["reached"]
        ],
        "shared_identity": expect["shared_identity"],
        "truncated": expect["truncated"],
    }
    assert observed(result) == wanted, case.get("why", "")


@pytest.mark.parametrize("case", CASES)
def test_ranking_counts_match_the_blast_radius(case: dict[str, Any], tmp_path: Path) -> None:
    reach = case_reach(case, tmp_path)
    ranks = rank(reach)
    assert [r.workload for r in ranks] == [
        r.workload for r in sorted(ranks, key=lambda r: (-r.reached, -r.direct, r.workload))
    ]
    assert sorted(r.workload for r in ranks) == reach.workload_ids
    for r in ranks:
        full = blast_radius(reach, r.workload)
        assert (r.reached, r.direct, r.shared_identity) == (
            len(full.reached),
            len(full.direct),
            len(full.shared_identity),
        ), r.workload


def test_unknown_workload_is_a_kubezt_error_with_a_hint(tmp_path: Path) -> None:
    reach = case_reach(DOC["cases"][0], tmp_path)
    with pytest.raises(KubeztError, match="did you mean 'app/frontend'"):
        blast_radius(reach, "app/frontent")


def test_zero_hops_reaches_nothing_and_is_truncated(tmp_path: Path) -> None:
    reach = case_reach(DOC["cases"][0], tmp_path)
    result = blast_radius(reach, "app/frontend", 0)
    assert result.reached == ()
    assert result.truncated


def test_ranking_of_three_tier_puts_the_widest_reach_first(tmp_path: Path) -> None:
    reach = case_reach(DOC["cases"][0], tmp_path)
    top = [(r.workload, r.reached, r.direct) for r in rank(reach)]
    # Everything reaches the public frontend and the unprotected monitor, and from the
    # frontend every other workload: each of the six reaches the other five.
    assert {reached for _, reached, _ in top} == {5}
    # Ties on transitive reach break on direct reach: api reaches four workloads directly.
    assert top[0] == ("app/api", 5, 4)
