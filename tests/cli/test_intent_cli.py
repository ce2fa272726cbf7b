"""`kubezt compile`, `kubezt init` from the command line: outputs, files, exit codes."""

from __future__ import annotations

from pathlib import Path

import yaml
from typer.testing import CliRunner

from intentkit import EXAMPLE, ROOT
from kubezt.cli.main import app
from kubezt.dialects.intent import load_intent
from kubezt.ir.intent import Mode

SHOP = ROOT / "examples" / "shop"


def test_compile_to_stdout_is_one_stream_in_rollout_order() -> None:
    result = CliRunner().invoke(app, ["compile", str(EXAMPLE)])
    assert result.exit_code == 0, result.output
    objects = [o for o in yaml.safe_load_all(result.stdout) if o]
    kinds = [o["kind"] for o in objects]
    assert kinds[0] == "ServiceAccount"
    assert kinds[-1] == "GlobalNetworkPolicy"
    assert objects[-1]["metadata"]["name"] == "default.shop-default-deny"
    assert kinds.index("PeerAuthentication") < kinds.index("AuthorizationPolicy")


def test_compile_directory_replaces_stale_phase_files(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "out"
    ambient = runner.invoke(app, ["compile", str(EXAMPLE), "--mode", "ambient", "-o", str(out)])
    assert ambient.exit_code == 0, ambient.output
    assert (out / "40-waypoints.yaml").is_file()
    (out / "README.md").write_text("mine", "utf-8")
    sidecar = runner.invoke(app, ["compile", str(EXAMPLE), "-o", str(out)])
    assert sidecar.exit_code == 0, sidecar.output
    assert not (out / "40-waypoints.yaml").exists()
    assert (out / "README.md").read_text("utf-8") == "mine"
    assert not list(out.glob(".*.tmp"))


def test_compile_unsupported_exits_2_with_the_reason(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["compile", str(EXAMPLE), "--mode", "ambient", "--spire", "-o", str(tmp_path)]
    )
    assert result.exit_code == 2
    assert "SPIRE" in result.output and "--on-unsupported warn" in result.output


def test_init_scaffolds_services_without_calls(tmp_path: Path) -> None:
    path = tmp_path / "intent.yaml"
    result = CliRunner().invoke(app, ["init", str(SHOP), "--name", "shop", "-o", str(path)])
    assert result.exit_code == 0, result.output
    intent = load_intent(str(path))
    assert intent.name == "shop"
    assert intent.namespaces == ("default", "shop", "storefront")
    assert intent.grants == ()
    names = {str(s.ref): s for s in intent.services}
    assert set(names) == {
        "default/httpbin",
        "default/notsleep",
        "default/sleep",
        "shop/customer",
        "shop/database",
        "shop/summary",
        "storefront/web",
    }
    database = names["shop/database"]
    assert database.service_account == "database"
    assert [(p.port, p.name, p.app_protocol) for p in database.ports] == [(2379, "client", "tcp")]
    assert intent.mode is Mode.AMBIENT  # examples/shop enrols namespace default in ambient
    assert "both sidecars and ambient" in result.output


def test_init_gives_workloads_on_default_their_own_service_account(tmp_path: Path) -> None:
    manifests = tmp_path / "apps.yaml"
    manifests.write_text(
        yaml.safe_dump_all(
            [
                {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "metadata": {"name": "api", "namespace": "apps"},
                    "spec": {
                        "selector": {"matchLabels": {"app": "api"}},
                        "template": {
                            "metadata": {"labels": {"app": "api", "version": "v1"}},
                            "spec": {
                                "containers": [{"name": "c", "ports": [{"containerPort": 80}]}]
                            },
                        },
                    },
                }
            ]
        ),
        "utf-8",
    )
    result = CliRunner().invoke(app, ["init", str(manifests), "--mode", "sidecar"])
    assert result.exit_code == 0, result.output
    assert "runs as the default ServiceAccount" in result.output
    doc = yaml.safe_load(result.stdout)
    assert doc["spec"]["services"] == [
        {"name": "api", "namespace": "apps", "ports": [{"port": 80}]}
    ]
    assert doc["spec"]["mesh"]["mode"] == "sidecar"
