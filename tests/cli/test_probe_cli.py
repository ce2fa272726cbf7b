"""`kubezt probe plan` writes one agnhost Job per source with the prediction of each probe;
`kubezt probe compare` lists every probe where the logs and the prediction disagree."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from kubezt.cli.main import app

ROOT = Path(__file__).resolve().parents[2]
SHOP = ROOT / "examples" / "shop"
CASES = ROOT / "tests" / "cases" / "probe"
runner = CliRunner()


@pytest.fixture(scope="module")
def plan(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("plan")
    result = runner.invoke(app, ["probe", "plan", str(SHOP), "-o", str(out)])
    assert result.exit_code == 0, result.output
    return out


def test_plan_predicts_the_reach_matrix(plan: Path) -> None:
    reach = json.loads(runner.invoke(app, ["reach", str(SHOP), "-o", "json"]).stdout)
    allowed = {(c["src"], c["dst"], c["port"], c["protocol"]) for c in reach["allowed"]}
    prediction = json.loads((plan / "prediction.json").read_text())
    assert prediction["probes"], "nothing to probe"
    for probe in prediction["probes"]:
        src, rest = probe["id"].split(">")
        dst, port_proto = rest.rsplit(":", 1)
        port, proto = port_proto.split("/")
        expected = "reached" if (src, dst, int(port), proto) in allowed else "blocked"
        assert probe["expected"] == expected, probe
    assert {p["expected"] for p in prediction["probes"]} == {"reached", "blocked"}


def test_plan_has_one_job_per_source_impersonating_it(plan: Path) -> None:
    jobs = [d for d in yaml.safe_load_all((plan / "probes.yaml").read_text()) if d]
    sources = [j["metadata"]["annotations"]["kubezt.io/probe-source"] for j in jobs]
    assert len(sources) == len(set(sources))
    customer = next(j for j in jobs if j["metadata"]["annotations"]["kubezt.io/probe-source"]
                    == "shop/customer")  # fmt: skip
    pod = customer["spec"]["template"]
    assert customer["metadata"]["namespace"] == "shop"
    assert pod["metadata"]["labels"]["app"] == "customer"
    assert pod["spec"]["serviceAccountName"] == "customer"
    expected = json.loads(customer["metadata"]["annotations"]["kubezt.io/expected"])
    assert [e["index"] for e in expected] == list(range(len(expected)))
    spec = customer["spec"]
    assert spec["completionMode"] == "Indexed"
    assert spec["completions"] == len(expected)
    assert spec["backoffLimitPerIndex"] == 0
    script = pod["spec"]["containers"][0]["command"][-1]
    # the customer has a sidecar: HTTP through it, the Job ends with the probe
    assert script.count("curl -sS -o /tmp/body") == len(expected)
    assert pod["metadata"]["annotations"]["sidecar.istio.io/nativeSidecar"] == "true"
    assert "15021/healthz/ready" in script and "15020/quitquitquit" in script


def test_mesh_tcp_ports_and_per_request_pairs_are_not_probed(plan: Path) -> None:
    prediction = json.loads((plan / "prediction.json").read_text())
    reasons = {u["id"]: u["reason"] for u in prediction["unprobed"]}
    assert reasons["shop/summary>shop/database:2379/TCP"].startswith("Istio treats the port as TCP")
    probed = {p["id"] for p in prediction["probes"]}
    assert not probed & set(reasons)
    assert {p["method"] for p in prediction["probes"]} == {"http"}


def test_plan_outside_the_mesh_uses_agnhost_connect(tmp_path: Path) -> None:
    result = runner.invoke(app, ["probe", "plan", str(CASES / "plain"), "-o", str(tmp_path)])
    assert result.exit_code == 0, result.output
    prediction = json.loads((tmp_path / "prediction.json").read_text())
    assert {(p["id"], p["method"], p["expected"]) for p in prediction["probes"]} == {
        ("plain/client>plain/server:8080/TCP", "connect", "reached"),
        ("plain/other>plain/server:8080/TCP", "connect", "blocked"),
        ("plain/server>plain/server:8080/TCP", "connect", "blocked"),
    }
    assert not prediction["unprobed"]
    jobs = [d for d in yaml.safe_load_all((tmp_path / "probes.yaml").read_text()) if d]
    for job in jobs:
        pod = job["spec"]["template"]
        assert "sidecar.istio.io/nativeSidecar" not in pod["metadata"]["annotations"]
        script = pod["spec"]["containers"][0]["command"][-1]
        assert "/agnhost connect server.plain.svc.cluster.local:80 " in script
        assert "quitquitquit" not in script
        # never an endpoint of the Services that select the source
        assert pod["spec"]["readinessGates"] == [{"conditionType": "kubezt.io/probe-never-ready"}]


def test_a_pair_where_only_some_requests_pass_is_not_probed(tmp_path: Path) -> None:
    result = runner.invoke(app, ["probe", "plan", str(CASES / "partial"), "-o", str(tmp_path)])
    assert result.exit_code == 0, result.output
    prediction = json.loads((tmp_path / "prediction.json").read_text())
    assert {(p["id"], p["method"], p["expected"]) for p in prediction["probes"]} == {
        ("part/other>part/server:8080/TCP", "http", "blocked"),
    }
    reasons = {u["id"]: u["reason"] for u in prediction["unprobed"]}
    assert reasons["part/client>part/server:8080/TCP"].startswith("only some HTTP requests pass")
    assert reasons["part/server>part/server:8080/TCP"].startswith("a single pod reaching itself")


def _compare(plan: Path, log: str, *extra: str) -> Any:
    return runner.invoke(app, ["probe", "compare", str(CASES / log), str(plan), *extra])


def test_compare_agreeing_results_exits_0(plan: Path) -> None:
    result = _compare(plan, "agree.log")
    assert result.exit_code == 0, result.output
    assert "0 disagree" in result.stdout


def test_compare_lists_every_disagreement_and_exits_1(plan: Path) -> None:
    result = _compare(plan, "disagree.log", "-o", "json")
    assert result.exit_code == 1, result.output
    doc = json.loads(result.stdout)
    got = {(d["probe"], d["predicted"], d["observed"]) for d in doc["disagreements"]}
    assert got == {
        ("shop/customer>shop/summary:8080/TCP", "reached", "blocked"),
        ("default/httpbin>shop/customer:8080/TCP", "blocked", "reached"),
        ("storefront/web>shop/customer:8080/TCP", "blocked", "error"),
        ("default/sleep>default/httpbin:8080/TCP", "reached", "missing"),
    }


def test_compare_reads_the_prediction_from_the_jobs_too(plan: Path) -> None:
    via_jobs = runner.invoke(
        app,
        ["probe", "compare", str(CASES / "disagree.log"), str(plan / "probes.yaml"), "-o", "json"],
    )
    via_json = _compare(plan, "disagree.log", "-o", "json")
    assert via_jobs.exit_code == 1
    assert json.loads(via_jobs.stdout) == json.loads(via_json.stdout)


def test_compare_bad_prediction_is_an_input_error(tmp_path: Path) -> None:
    bad = tmp_path / "prediction.json"
    bad.write_text("{}")
    result = runner.invoke(app, ["probe", "compare", str(CASES / "agree.log"), str(bad)])
    assert result.exit_code == 2
    assert "expected a kubezt.io/probe-prediction/v1 document" in result.output


def test_compare_on_a_malformed_job_list_is_an_input_error(plan: Path, tmp_path: Path) -> None:
    jobs = [d for d in yaml.safe_load_all((plan / "probes.yaml").read_text()) if d]
    jobs[0]["status"] = {"completedIndexes": "0-"}
    results = tmp_path / "jobs.yaml"
    results.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": jobs}))
    result = runner.invoke(app, ["probe", "compare", str(results), str(plan)])
    assert result.exit_code == 2
    assert "expected an index list like 1,3-5, got '0-'" in result.output
    assert "Traceback" not in result.output
