"""Reading a real API server: the same analysis as the same objects in files, Calico's stored
names mapped back, and a clear error (exit 2, no traceback) for an unreachable server, bad
credentials, a forbidden resource and missing CRDs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from kube_testenv import ROOT, TestCluster, free_port, manifests
from typer.testing import CliRunner

from kubezt.cli.main import app
from kubezt.dialects.intent import load_intent
from kubezt.live.read import CALICO_CRD, Plan, documents
from kubezt.live.session import Target, connect

SHOP = ROOT / "examples" / "shop"
runner = CliRunner()


def run(*args: str) -> Any:
    return runner.invoke(app, list(args))


def reach_json(*args: str) -> dict[str, Any]:
    result = run("reach", *args, "-o", "json")
    assert result.exit_code == 0, result.output
    return dict(json.loads(result.stdout))


def test_reach_on_the_cluster_equals_reach_on_the_same_files(
    kube_cluster: TestCluster, kube_apply: Any, server_service: Path
) -> None:
    kube_apply(SHOP)
    on_files = reach_json(str(SHOP), str(server_service))
    on_cluster = reach_json("--kubeconfig", str(kube_cluster.kubeconfig))
    assert on_cluster["allowed"] == on_files["allowed"]
    assert on_cluster["workloads"] == on_files["workloads"]
    assert on_cluster == on_files | {"warnings": on_cluster["warnings"]}


def test_origins_name_the_cluster_context_and_object(
    kube_cluster: TestCluster, kube_apply: Any
) -> None:
    kube_apply(SHOP)
    result = run("audit", "--kubeconfig", str(kube_cluster.kubeconfig), "-o", "json")
    assert result.exit_code in (0, 1), result.output
    on_files = json.loads(run("audit", str(SHOP), "-o", "json").stdout)
    on_cluster = json.loads(result.stdout)
    file_locations = {f["location"].split(":")[0] for f in on_files["findings"] if "location" in f}
    cluster_locations = [f["location"] for f in on_cluster["findings"] if "location" in f]
    assert file_locations and cluster_locations
    assert all(loc.startswith("cluster:kubezt-admin ") for loc in cluster_locations)
    assert "cluster:kubezt-admin Namespace storefront" in cluster_locations


def test_calico_crd_names_are_mapped_back(kube_cluster: TestCluster, kube_namespace: str) -> None:
    """crd.projectcalico.org/v1 stores default-tier policies as `default.NAME` (or with the v3
    name in the projectcalico.org/metadata annotation); the v3 API shows `NAME`."""
    stored = [
        {
            "apiVersion": "crd.projectcalico.org/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "default.allow-web", "namespace": kube_namespace},
            "spec": {"tier": "default", "selector": "app == 'web'", "types": ["Ingress"]},
        },
        {
            "apiVersion": "crd.projectcalico.org/v1",
            "kind": "NetworkPolicy",
            "metadata": {
                "name": "default.annotated",
                "namespace": kube_namespace,
                "annotations": {
                    "projectcalico.org/metadata": json.dumps(
                        {"name": "from-annotation", "labels": {"team": "a"}}
                    )
                },
            },
            "spec": {"selector": "all()", "types": ["Egress"]},
        },
    ]
    for obj in stored:
        kube_cluster.apply(obj)
    session = connect(Target(kubeconfig=str(kube_cluster.kubeconfig)))
    plan = Plan(tuple((r, "v1") for r in CALICO_CRD), (), mesh_config=False)
    names = {
        d.data["metadata"]["name"]: d.file
        for d in documents(session, plan)
        if d.data["metadata"].get("namespace") == kube_namespace
    }
    assert names == {
        "allow-web": f"cluster:kubezt-admin NetworkPolicy {kube_namespace}/default.allow-web",
        "from-annotation": f"cluster:kubezt-admin NetworkPolicy {kube_namespace}/default.annotated",
    }


def test_pagination_reads_every_object(kube_cluster: TestCluster, kube_namespace: str) -> None:
    for i in range(7):
        kube_cluster.apply(
            {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {"name": f"sa-{i}", "namespace": kube_namespace},
            }
        )
    session = connect(Target(kubeconfig=str(kube_cluster.kubeconfig)))
    before = session.request_count
    items = list(session.list(f"/api/v1/namespaces/{kube_namespace}/serviceaccounts", page_size=2))
    assert sorted(i["metadata"]["name"] for i in items) == [f"sa-{i}" for i in range(7)]
    assert session.request_count - before == 4


def test_unreachable_server_is_a_clear_error(kube_cluster: TestCluster, tmp_path: Path) -> None:
    config = yaml.safe_load(kube_cluster.kubeconfig.read_text())
    config["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{free_port()}"
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    result = run("reach", "--kubeconfig", str(path))
    assert result.exit_code == 2
    assert "cannot reach the API server" in result.output
    assert "connection refused" in result.output
    assert "Traceback" not in result.output


def test_bad_credentials_are_a_clear_error(kube_cluster: TestCluster, tmp_path: Path) -> None:
    path = kube_cluster.write_kubeconfig(tmp_path / "kubeconfig", "not-a-valid-token")
    result = run("audit", "--kubeconfig", str(path))
    assert result.exit_code == 2
    assert "401 Unauthorized" in result.output
    assert "Traceback" not in result.output


def test_unknown_context_is_a_clear_error(kube_cluster: TestCluster) -> None:
    result = run("reach", "--kubeconfig", str(kube_cluster.kubeconfig), "--context", "nope")
    assert result.exit_code == 2
    assert "no context 'nope'" in result.output
    assert "kubezt-admin" in result.output


def test_forbidden_resource_fails_closed(kube_cluster: TestCluster) -> None:
    """The restricted user has no grant at all: the first list is refused and named."""
    result = run(
        "reach", "--kubeconfig", str(kube_cluster.kubeconfig), "--context", "kubezt-restricted"
    )
    assert result.exit_code == 2
    assert "forbidden (403) to list namespaces.core" in result.output
    assert "nothing was evaluated" in result.output


def _crds(file: str) -> list[dict[str, Any]]:
    return [
        d
        for d in manifests(ROOT / "tests" / "live" / "crds" / file)
        if d.get("kind") == "CustomResourceDefinition"
    ]


def _remove_crds(cluster: TestCluster, crds: list[dict[str, Any]]) -> None:
    import time

    for crd in crds:
        cluster.delete(crd)
    deadline = time.monotonic() + 60
    while any(cluster.exists(crd) for crd in crds):
        assert time.monotonic() < deadline, "CRDs not deleted"
        time.sleep(0.2)


@pytest.fixture
def without_istio(kube_cluster: TestCluster) -> Any:
    crds = _crds("istio.yaml")
    _remove_crds(kube_cluster, crds)
    try:
        yield
    finally:
        kube_cluster.install_crds([ROOT / "tests" / "live" / "crds" / "istio.yaml"])


def test_absent_product_is_named_and_taken_as_absent(
    kube_cluster: TestCluster, without_istio: None
) -> None:
    result = run("reach", "--kubeconfig", str(kube_cluster.kubeconfig), "-o", "json")
    assert result.exit_code == 0, result.output
    assert "warning W090: Istio CRDs not installed" in result.stderr
    assert "no mesh" in result.stderr


def test_partly_installed_product_is_an_error(kube_cluster: TestCluster) -> None:
    gateways = [
        c
        for c in _crds("gateway-api-standard.yaml")
        if c["metadata"]["name"].startswith("gateways.")
    ]
    _remove_crds(kube_cluster, gateways)
    try:
        result = run("reach", "--kubeconfig", str(kube_cluster.kubeconfig))
        assert result.exit_code == 2
        assert "Gateway API is only partly installed" in result.output
        assert "gateways.gateway.networking.k8s.io (Gateway) is not served" in result.output
    finally:
        kube_cluster.install_crds([ROOT / "tests" / "live" / "crds" / "gateway-api-standard.yaml"])


def test_learn_on_the_cluster_grants_what_learn_on_the_same_files_grants(
    kube_cluster: TestCluster, kube_apply: Any, tmp_path: Path
) -> None:
    kube_apply(SHOP)
    flows = str(ROOT / "examples" / "flows" / "shop.hubble.jsonl")
    grants = []
    for name, source in (
        ("files", ["--manifests", str(SHOP)]),
        ("cluster", ["--kubeconfig", str(kube_cluster.kubeconfig)]),
    ):
        out = tmp_path / f"{name}.yaml"
        result = run("learn", flows, *source, "-o", str(out))
        assert result.exit_code == 0, result.output
        intent = load_intent(str(out))
        grants.append(
            sorted(
                (str(g.caller), str(g.service), tuple(p.port for p in g.ports), str(g.http))
                for g in intent.grants
            )
        )
    assert grants[0], "the example flows must grant something"
    assert grants[1] == grants[0]
