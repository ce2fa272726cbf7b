"""Reading probe outcomes from the probe Jobs' status (`kubectl get jobs -o json`), table-driven
from tests/cases/probe/job-status.yaml."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from kubezt.generate.probe import (
    EXPECTED,
    JobStatusError,
    jobs_in,
    observed_from_jobs,
    parse_indexes,
)

CASES = yaml.safe_load(
    (Path(__file__).resolve().parents[1] / "cases" / "probe" / "job-status.yaml").read_text()
)


def _job(probes: int, status: dict[str, Any] | None) -> dict[str, Any]:
    entries = [{"index": i, "id": f"p{i}", "expected": "reached"} for i in range(probes)]
    job: dict[str, Any] = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": "j",
            "namespace": "ns",
            "annotations": {EXPECTED: json.dumps(entries)},
        },
    }
    if status is not None:
        job["status"] = status
    return job


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_job_status_gives_each_probe_its_outcome(case: dict[str, Any]) -> None:
    observed = observed_from_jobs([_job(case["probes"], case["status"])])
    want = {f"p{i}": o for i, o in enumerate(case["observed"]) if o is not None}
    assert observed == want


@given(st.sets(st.integers(0, 60)))
def test_parse_indexes_reads_the_controllers_interval_list(indexes: set[int]) -> None:
    """The controller writes sorted runs `a-b` (or `a` alone), comma-separated."""
    runs: list[str] = []
    ordered = sorted(indexes)
    start = 0
    while start < len(ordered):
        end = start
        while end + 1 < len(ordered) and ordered[end + 1] == ordered[end] + 1:
            end += 1
        first, last = ordered[start], ordered[end]
        runs.append(str(first) if first == last else f"{first}-{last}")
        start = end + 1
    assert parse_indexes(",".join(runs)) == indexes


@pytest.mark.parametrize("text", ["1,", "a", "1-", "-1", "1 ,2"])
def test_a_malformed_index_list_is_an_error(text: str) -> None:
    with pytest.raises(JobStatusError):
        parse_indexes(text)


def test_lists_and_single_jobs_are_recognised() -> None:
    job = _job(1, None)
    assert jobs_in({"apiVersion": "v1", "kind": "List", "items": [job]}) == [job]
    assert jobs_in({"apiVersion": "batch/v1", "kind": "JobList", "items": [job]}) == [job]
    assert jobs_in(job) == [job]
    assert jobs_in({"kind": "Pod"}) is None
    with pytest.raises(JobStatusError):
        observed_from_jobs([{"kind": "Pod"}])
