"""`kubezt probe compare` on what `kubectl get jobs -o json|yaml` gives: the probe Jobs of a
plan are created on the real API server, their status is written through the `status`
subresource as the Job controller writes it (this test server runs no controller manager),
and the Jobs are read back as kubectl lists them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from kube_testenv import ROOT, TestCluster, resource_path
from typer.testing import CliRunner

from kubezt.cli.main import app

PLAIN = ROOT / "tests" / "cases" / "probe" / "plain"
runner = CliRunner()

# What each source's single probe did on the "cluster": (completedIndexes, failedIndexes,
# failed by the pod failure policy), and what compare must then report.
OUTCOMES = {
    "plain/client": ("0", "", False),  # predicted reached, reached
    "plain/other": ("0", "", False),  # predicted blocked, reached: a disagreement
    "plain/server": ("", "0", True),  # the probe could not run: error
}
DISAGREEMENTS = {
    ("plain/other>plain/server:8080/TCP", "blocked", "reached"),
    ("plain/server>plain/server:8080/TCP", "blocked", "error"),
}


def _finish(cluster: TestCluster, job: dict[str, Any]) -> None:
    """Write the status the Job controller writes when every index has finished."""
    source = job["metadata"]["annotations"]["kubezt.io/probe-source"]
    completed, failed, by_policy = OUTCOMES[source]
    now = "2026-01-01T00:00:00Z"
    status: dict[str, Any] = {
        "startTime": now,
        "succeeded": len(completed.split(",")) if completed else 0,
        "failed": len(failed.split(",")) if failed else 0,
        "completedIndexes": completed,
        "failedIndexes": failed,
    }
    if by_policy:
        name = job["metadata"]["name"]
        message = (
            f"Container probe for pod {job['metadata']['namespace']}/{name}-0-x7k2q failed "
            "with exit code 3 matching FailJob rule at index 1"
        )
        status["conditions"] = [
            {"type": kind, "status": "True", "reason": "PodFailurePolicy", "message": message,
             "lastProbeTime": now, "lastTransitionTime": now}
            for kind in ("FailureTarget", "Failed")
        ]  # fmt: skip
    else:
        status["completionTime"] = now
        status["conditions"] = [
            {"type": kind, "status": "True", "reason": "CompletionsReached",
             "message": "Reached expected number of succeeded pods",
             "lastProbeTime": now, "lastTransitionTime": now}
            for kind in ("SuccessCriteriaMet", "Complete")
        ]  # fmt: skip
    code, body = cluster.request(
        "PATCH",
        resource_path(cluster, job) + "/status",
        {"status": status},
        content_type="application/merge-patch+json",
    )
    assert code == 200, body


def _kubectl_list(cluster: TestCluster) -> dict[str, Any]:
    """`kubectl get jobs -A -l kubezt.io/probe=true -o json`: a v1 List of the Jobs, each
    with its apiVersion and kind."""
    code, body = cluster.request(
        "GET", "/apis/batch/v1/jobs", query="labelSelector=kubezt.io%2Fprobe%3Dtrue"
    )
    assert code == 200, body
    items = [{"apiVersion": "batch/v1", "kind": "Job", **item} for item in body["items"]]
    return {"apiVersion": "v1", "kind": "List", "items": items, "metadata": {"resourceVersion": ""}}


@pytest.fixture
def finished_jobs(kube_cluster: TestCluster, kube_apply: Any, tmp_path: Path) -> Path:
    kube_apply(PLAIN)
    plan = tmp_path / "plan"
    result = runner.invoke(
        app, ["probe", "plan", "--kubeconfig", str(kube_cluster.kubeconfig), "-o", str(plan)]
    )
    assert result.exit_code == 0, result.output
    jobs = [j for j in yaml.safe_load_all((plan / "probes.yaml").read_text()) if j]
    jobs = [j for j in jobs if j["metadata"]["namespace"] == "plain"]
    assert {j["metadata"]["annotations"]["kubezt.io/probe-source"] for j in jobs} == set(OUTCOMES)
    for job in kube_apply(*jobs):
        _finish(kube_cluster, job)
    return plan


@pytest.mark.parametrize("fmt", ["json", "yaml"])
def test_compare_reads_kubectl_get_jobs(
    kube_cluster: TestCluster, finished_jobs: Path, fmt: str
) -> None:
    listed = _kubectl_list(kube_cluster)
    results = finished_jobs / f"jobs.{fmt}"
    results.write_text(json.dumps(listed) if fmt == "json" else yaml.safe_dump(listed))
    compared = runner.invoke(
        app,
        ["probe", "compare", str(results), str(finished_jobs / "prediction.json"), "-o", "json"],
    )
    assert compared.exit_code == 1, compared.output
    doc = json.loads(compared.stdout)
    mine = {
        (d["probe"], d["predicted"], d["observed"])
        for d in doc["disagreements"]
        if d["probe"].startswith("plain/")
    }
    assert mine == DISAGREEMENTS
    assert doc["agreed"] >= 1


def test_compare_on_unfinished_jobs_reports_them_missing(
    kube_cluster: TestCluster, kube_apply: Any, tmp_path: Path
) -> None:
    kube_apply(PLAIN)
    plan = tmp_path / "plan"
    result = runner.invoke(app, ["probe", "plan", str(PLAIN), "-o", str(plan)])
    assert result.exit_code == 0, result.output
    kube_apply(plan / "probes.yaml")
    results = tmp_path / "jobs.json"
    results.write_text(json.dumps(_kubectl_list(kube_cluster)))
    compared = runner.invoke(app, ["probe", "compare", str(results), str(plan), "-o", "json"])
    assert compared.exit_code == 1, compared.output
    observed = {d["observed"] for d in json.loads(compared.stdout)["disagreements"]}
    assert observed == {"missing"}
