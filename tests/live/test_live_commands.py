"""Every command that reads manifests gives, on the live cluster, what it gives on the same
objects as files: explain, blast-radius, init, audit (SARIF), verify and diff with the cluster on
either side. Only where an object came from differs (`file:line` against
`cluster:CONTEXT Kind ns/name`)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from kube_testenv import ROOT, TestCluster
from typer.testing import CliRunner

from kubezt.cli.main import app

SHOP = ROOT / "examples" / "shop"
INTENT = ROOT / "examples" / "intent.yaml"
runner = CliRunner()
ORIGIN_KEYS = {
    "location",
    "locations",
    "file",
    "warnings",
    "artifacts",
    "relatedLocations",
    "originalUriBaseIds",
    "partialFingerprints",  # SARIF: a hash of the finding and its file
}

# (arguments before the manifests, arguments after them); init writes YAML, the rest JSON
COMMANDS = {
    "explain": (["explain", "storefront/web", "shop/customer"], ["--port", "8080", "-o", "json"]),
    "explain-http": (
        ["explain", "storefront/web", "shop/summary"],
        ["--port", "8080", "--method", "GET", "--path", "/summary", "-o", "json"],
    ),
    "blast-radius": (["blast-radius", "storefront/web"], ["-o", "json"]),
    "init": (["init"], []),
    "audit": (["audit"], ["-o", "sarif"]),
    "verify": (["verify", str(INTENT)], ["-o", "json"]),
}


def _without_origins(doc: Any) -> Any:
    if isinstance(doc, dict):
        return {k: _without_origins(v) for k, v in doc.items() if k not in ORIGIN_KEYS}
    if isinstance(doc, list):
        return [_without_origins(v) for v in doc]
    return doc


def _run(args: list[str], fmt: str) -> tuple[int, Any]:
    result = runner.invoke(app, args)
    assert result.exit_code in (0, 1), result.output
    if fmt == "yaml":
        return result.exit_code, yaml.safe_load(result.stdout)
    return result.exit_code, _without_origins(json.loads(result.stdout))


@pytest.mark.parametrize("name", list(COMMANDS))
def test_command_on_the_cluster_equals_the_command_on_the_same_files(
    kube_cluster: TestCluster, kube_apply: Any, server_service: Path, name: str
) -> None:
    before, after = COMMANDS[name]
    fmt = "yaml" if name == "init" else "json"
    kube_apply(SHOP)
    on_files = _run([*before, str(SHOP), str(server_service), *after], fmt)
    on_cluster = _run([*before, "--kubeconfig", str(kube_cluster.kubeconfig), *after], fmt)
    assert on_cluster == on_files


def test_diff_with_the_cluster_on_either_side(
    kube_cluster: TestCluster, kube_apply: Any, tmp_path: Path
) -> None:
    kube_apply(SHOP)
    config = str(kube_cluster.kubeconfig)
    same = runner.invoke(app, ["diff", str(SHOP), "cluster", "--kubeconfig", config, "-o", "json"])
    assert same.exit_code == 0, same.output
    assert not json.loads(same.stdout)["pairs"]
    # a change: the Calico default deny no longer covers namespace `default` (which loses its
    # DNS allowance); what applying it to the cluster would change is what it changes against
    # the same objects as files
    changed = tmp_path / "changed"
    shutil.copytree(SHOP, changed)
    calico = changed / "50-calico.yaml"
    text = calico.read_text()
    scope = 'namespaceSelector: kubernetes.io/metadata.name in {"shop", "default"}'
    assert scope in text
    calico.write_text(text.replace(scope, scope.replace(', "default"', ""), 1))
    on_files = runner.invoke(app, ["diff", str(SHOP), str(changed), "-o", "json"])
    on_cluster = runner.invoke(
        app, ["diff", "--kubeconfig", config, "cluster", str(changed), "-o", "json"]
    )
    assert on_files.exit_code == on_cluster.exit_code, on_cluster.output
    assert json.loads(on_files.stdout)["summary"]["newlyDenied"] > 0
    assert _without_origins(json.loads(on_cluster.stdout)) == _without_origins(
        json.loads(on_files.stdout)
    )
