"""Progress while reading a real API server: the reader tells its callback of every kind and
every object it reads, and a command reading the cluster shows it on a stderr that is a
terminal (a pseudo-terminal here), never on stdout, and not with --quiet. The report of a
cluster shows what the report of the same objects in files shows."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from kube_testenv import ROOT, TestCluster
from typer.testing import CliRunner

from kubezt.cli.main import app
from kubezt.live.read import plan, read_objects
from kubezt.live.session import Target, connect
from ttykit import run_on_a_terminal

SHOP = ROOT / "examples" / "shop"
runner = CliRunner()


def test_the_reader_reports_every_kind_and_every_object(
    kube_cluster: TestCluster, kube_apply: Any
) -> None:
    kube_apply(SHOP)
    session = connect(Target(kubeconfig=str(kube_cluster.kubeconfig)))
    what = plan(session)
    calls: list[tuple[str, int, int, int]] = []
    objects = list(read_objects(session, what, lambda *call: calls.append(call)))
    kinds = len(what.resources)
    assert all(total == kinds for _, _, total, _ in calls)
    # each kind is announced before its objects, in the plan's order
    announced = [c for i, c in enumerate(calls) if i == 0 or c[1] != calls[i - 1][1]]
    assert [(kind, done) for kind, done, _, _ in announced] == [
        (res.plural, n) for n, (res, _) in enumerate(what.resources)
    ]
    counts = [count for _, _, _, count in calls]
    assert counts == sorted(counts)
    # one call per object read (the mesh ConfigMap, read after the kinds, is not counted)
    listed = [
        o for o in objects if (o["kind"], o["metadata"].get("name")) != ("ConfigMap", "istio")
    ]
    assert counts[-1] == len(listed) == len(calls) - kinds
    pods = [c for c in calls if c[0] == "pods"]
    assert pods[-1][3] - pods[0][3] == sum(1 for o in objects if o["kind"] == "Pod")


def test_reading_a_cluster_shows_progress_on_a_terminal_and_not_on_stdout(
    kube_cluster: TestCluster, kube_apply: Any, kube_env: dict[str, str]
) -> None:
    kube_apply(SHOP)
    code, stdout, terminal = run_on_a_terminal("reach", "--cluster", "-o", "json", env=kube_env)
    assert code == 0, terminal
    assert "kubezt: reading the cluster: " in terminal
    assert "kinds), " in terminal and " objects" in terminal
    assert terminal.rstrip().endswith("\x1b[2K")  # the line is cleared at the end
    on_files = subprocess.run(
        [sys.executable, "-m", "kubezt", "reach", str(SHOP), "-o", "json"],
        capture_output=True,
        text=True,
        check=True,
    )
    # stdout holds the document only: the same workloads as the same objects in files
    assert json.loads(stdout)["workloads"] == json.loads(on_files.stdout)["workloads"]
    assert "\r" not in stdout and "reading the cluster" not in stdout


def test_quiet_silences_the_progress_of_reading_a_cluster(
    kube_cluster: TestCluster, kube_apply: Any, kube_env: dict[str, str]
) -> None:
    kube_apply(SHOP)
    code, stdout, terminal = run_on_a_terminal(
        "audit", "--cluster", "--quiet", "-o", "json", env=kube_env
    )
    assert code in (0, 1), terminal
    assert "reading the cluster" not in terminal and "\x1b[2K" not in terminal
    assert json.loads(stdout)["findings"]


def page_data(path: Path) -> dict[str, Any]:
    text = path.read_text(encoding="utf-8")
    start = text.index('<script type="application/json" id="data">') + len(
        '<script type="application/json" id="data">'
    )
    return dict(json.loads(text[start : text.index("</script>", start)].replace("<\\/", "</")))


def test_report_of_the_cluster_shows_what_the_report_of_the_same_files_shows(
    kube_cluster: TestCluster, kube_apply: Any, server_service: Path, tmp_path: Path
) -> None:
    kube_apply(SHOP)
    on_cluster, on_files = tmp_path / "cluster.html", tmp_path / "files.html"
    for args, page in (
        (["--kubeconfig", str(kube_cluster.kubeconfig)], on_cluster),
        ([str(SHOP), str(server_service)], on_files),
    ):
        result = runner.invoke(app, ["report", *args, "-o", str(page), "--quiet"])
        assert result.exit_code == 0, result.output
    cluster, files = page_data(on_cluster), page_data(on_files)
    for key in ("namespaces", "workloads", "ports", "edges", "outsideEdges", "counts", "ranking"):
        assert cluster[key] == files[key], key
    assert cluster["audit"]["score"] == files["audit"]["score"]
