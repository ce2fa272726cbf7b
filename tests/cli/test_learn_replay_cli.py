"""`kubezt learn` and `kubezt replay` on the bundled example's flows (examples/flows): the
learned intent, its evidence comments, the round trip through `compile`, exit codes, bad
lines reported with their line numbers, gzip input, JSON and SARIF outputs."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import yaml
from typer.testing import CliRunner

from kubezt.cli.main import app
from kubezt.dialects.intent import load_intent

ROOT = Path(__file__).resolve().parents[2]
SHOP = str(ROOT / "examples" / "shop")
FLOWS = ROOT / "examples" / "flows" / "shop.hubble.jsonl"
runner = CliRunner()


def learn(tmp_path: Path, *flows: str) -> Path:
    out = tmp_path / "intent.yaml"
    result = runner.invoke(app, ["learn", *flows, "--manifests", SHOP, "-o", str(out)])
    assert result.exit_code == 0, result.output
    return out


def test_learn_writes_the_least_privilege_intent_with_evidence(tmp_path: Path) -> None:
    out = learn(tmp_path, str(FLOWS))
    intent = load_intent(str(out))
    granted = {
        (str(g.caller), str(g.service), tuple(p.port for p in g.ports), g.http)
        for g in intent.grants
    }
    calls = {(c, s, ports) for c, s, ports, _ in granted}
    assert calls == {
        ("shop/customer", "shop/summary", (8080,)),
        ("default/sleep", "default/httpbin", (8080,)),
        ("shop/summary", "shop/database", (2379,)),
        ("storefront/web", "shop/customer", (8080,)),
    }  # notsleep → httpbin was dropped in the flows: not granted
    http = {s: h for _, s, _, h in granted if h is not None}
    assert http["shop/summary"].methods == ("GET",)
    assert http["shop/summary"].paths == ("/api/health", "/api/orders/{*}")
    assert http["default/httpbin"].methods == ("GET", "POST")
    text = out.read_text()
    assert "# seen 9 times, 2026-01-01T00:03:42Z .. 2026-01-01T00:19:44Z, first at" in text
    assert "#   - DNS to kube-dns on port 53" in text


def test_learn_compile_replay_round_trip(tmp_path: Path) -> None:
    out = learn(tmp_path, str(FLOWS))
    compiled = tmp_path / "out"
    result = runner.invoke(app, ["compile", str(out), "--mode", "sidecar", "-o", str(compiled)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["replay", str(FLOWS), str(compiled), "--workloads", SHOP])
    assert result.exit_code == 0, result.output
    assert "nothing would break" in result.output


def test_replay_reports_what_breaks_grouped_with_the_deciding_policy() -> None:
    result = runner.invoke(app, ["replay", str(FLOWS), SHOP, "-o", "json"])
    assert result.exit_code == 1, result.output
    doc = json.loads(result.stdout)
    assert doc["schemaVersion"] == "kubezt.io/replay/v1"
    assert doc["ok"] is False
    assert [(b["src"], b["dst"], b["port"], b["policy"], b["flows"]) for b in doc["breaks"]] == [
        ("storefront/web", "shop/customer", 8080, "PeerAuthentication istio-system/default", 3)
    ]
    assert doc["breaks"][0]["first"].endswith("shop.hubble.jsonl:5")


def test_replay_sarif_points_at_the_flow_log_line() -> None:
    result = runner.invoke(app, ["replay", str(FLOWS), SHOP, "-o", "sarif"])
    assert result.exit_code == 1
    sarif = json.loads(result.stdout)
    assert sarif["version"] == "2.1.0"
    (hit,) = sarif["runs"][0]["results"]
    assert hit["ruleId"] == "KZT901"
    location = hit["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"].endswith("examples/flows/shop.hubble.jsonl")
    assert location["region"]["startLine"] == 5


def test_bad_lines_are_reported_with_line_numbers_and_left_out(tmp_path: Path) -> None:
    lines = FLOWS.read_text().splitlines()
    flows = tmp_path / "flows.jsonl"
    flows.write_text(
        "\n".join([lines[0], "{oops", *lines[1:], '{"flow": {"verdict": "MAYBE"}}']) + "\n"
    )
    out = tmp_path / "intent.yaml"
    result = runner.invoke(app, ["learn", str(flows), "-m", SHOP, "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert f"{flows}:2: error E140: not JSON" in result.stderr
    assert f"{flows}:{len(lines) + 2}: error E140: verdict: expected one of" in result.stderr
    assert "2 of 38 flow-log line(s) could not be read" in result.stderr
    assert "Traceback" not in result.output


def test_no_flow_records_is_an_input_error(tmp_path: Path) -> None:
    flows = tmp_path / "flows.log"
    flows.write_text("hello\nworld\n")
    result = runner.invoke(app, ["learn", str(flows), "-m", SHOP])
    assert result.exit_code == 2
    assert f"{flows}:1: error E140" in result.stderr
    result = runner.invoke(app, ["replay", str(tmp_path / "missing.jsonl"), SHOP])
    assert result.exit_code == 2
    assert "E141" in result.stderr


def test_gzip_flow_logs_learn_the_same_intent(tmp_path: Path) -> None:
    packed = tmp_path / "flows.jsonl.gz"
    packed.write_bytes(gzip.compress(FLOWS.read_bytes()))
    plain = yaml.safe_load(learn(tmp_path, str(FLOWS)).read_text())
    (tmp_path / "intent.yaml").unlink()
    zipped = yaml.safe_load(learn(tmp_path, str(packed)).read_text())
    assert plain == zipped


def test_max_paths_bounds_the_learned_patterns(tmp_path: Path) -> None:
    out = tmp_path / "intent.yaml"
    result = runner.invoke(
        app, ["learn", str(FLOWS), "-m", SHOP, "--max-paths", "1", "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    intent = load_intent(str(out))
    for g in intent.grants:
        if g.http is not None:
            assert len(g.http.paths) == 1


def test_learn_without_manifests_or_a_cluster_is_a_usage_error() -> None:
    result = runner.invoke(app, ["learn", str(FLOWS)])
    assert result.exit_code == 2
    assert "--cluster" in result.output


AMBIENT = ROOT / "tests" / "cases" / "learn-flows"


def test_api_server_address_makes_its_calls_webhook_exceptions(tmp_path: Path) -> None:
    """ztunnel names only the API server's address: with --api-server its plaintext call into
    orders:8080 becomes an exception from that address; without it, the flow is not joined."""
    flows = str(AMBIENT / "webhook.ztunnel.log")
    manifests = str(AMBIENT / "ambient.yaml")
    out = tmp_path / "intent.yaml"
    result = runner.invoke(
        app,
        ["learn", flows, "-m", manifests, "--api-server", "172.18.0.0/24", "-o", str(out)],
    )
    assert result.exit_code == 0, result.output
    (exception,) = load_intent(str(out)).exceptions
    assert (str(exception.service), [p.port for p in exception.ports], exception.cidrs) == (
        "shop/orders",
        [8080],
        ("172.18.0.2/32",),
    )
    result = runner.invoke(app, ["learn", flows, "-m", manifests, "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "1 not joined to workloads" in result.output
    assert load_intent(str(out)).exceptions == ()


def test_bad_api_server_address_is_an_input_error() -> None:
    flows = str(AMBIENT / "webhook.ztunnel.log")
    result = runner.invoke(
        app, ["learn", flows, "-m", str(AMBIENT / "ambient.yaml"), "--api-server", "nope"]
    )
    assert result.exit_code == 2
    assert "--api-server: expected an address or CIDR, got 'nope'" in result.output
