"""CLI habits: tables that never cut a name in a pipe and summarise at scale, --namespace /
--workload focus, -o wide and --no-headers, a closed pipe keeping the exit code's meaning,
help with readable placeholders, shell completion, the kubectl plugin entry point, and no
progress on a stderr that is not a terminal."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

import kubezt
from kubezt.cli.main import COMMANDS, app
from kubezt.cli.render import MATRIX_LIMIT

ROOT = Path(__file__).resolve().parents[2]
SHOP = str(ROOT / "examples" / "shop")
runner = CliRunner()
LONG = "a-workload-name-long-enough-that-a-table-cut-at-80-columns"


def kubezt_cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kubezt", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        input=stdin,
    )


def deployments(n: int, namespaces: int, prefix: str = "team") -> str:
    docs = []
    for i in range(n):
        ns = f"{prefix}-{i % namespaces}"
        name = f"{LONG}-{i}" if i == 0 else f"app-{i}"
        docs.append(
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": name, "namespace": ns},
                "spec": {
                    "selector": {"matchLabels": {"app": name}},
                    "template": {
                        "metadata": {"labels": {"app": name}},
                        "spec": {"containers": [{"name": "c", "ports": [{"containerPort": 80}]}]},
                    },
                },
            }
        )
    return yaml.safe_dump_all(docs)


def test_a_name_is_never_cut_in_a_pipe(tmp_path: Path) -> None:
    (tmp_path / "in.yaml").write_text(deployments(3, 1, LONG), encoding="utf-8")
    result = kubezt_cli("reach", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert len(f"{LONG}-0/{LONG}-0") > 80
    assert f"{LONG}-0/{LONG}-0" in result.stdout


def test_many_workloads_are_summarised_per_namespace_then_focused(tmp_path: Path) -> None:
    n = MATRIX_LIMIT + 5
    (tmp_path / "in.yaml").write_text(deployments(n, 3), encoding="utf-8")
    result = kubezt_cli("reach", str(tmp_path))
    lines = result.stdout.splitlines()
    assert lines[0].split() == [
        "SOURCE",
        "NAMESPACE",
        "DESTINATION",
        "NAMESPACE",
        "CONNECTIONS",
        "SOME",
        "REQUESTS",
        "PORTS",
    ]
    counts = {(r.split()[0], r.split()[1]): int(r.split()[2]) for r in lines[1:]}
    reach = kubezt.evaluate(kubezt.load([str(tmp_path)]).model)
    expected: dict[tuple[str, str], int] = {}
    for s, d, _, _ in reach.connections():
        key = (s.split("/")[0], d.split("/")[0])
        expected[key] = expected.get(key, 0) + 1
    assert counts == expected
    focus = kubezt_cli("reach", str(tmp_path), "--workload", "team-1/app-1", "--no-headers")
    rows = [line.split() for line in focus.stdout.splitlines()]
    assert rows and all("team-1/app-1" in (r[0], r[1]) for r in rows)
    # a port cell of several ports is shown by its label (`other`: the ports nobody names)
    assert rows == [
        [s, d, f"{reach.port_label(d, p, proto)}/{proto}", "all"]
        for s, d, p, proto in reach.connections()
        if "team-1/app-1" in (s, d)
    ]
    ns = kubezt_cli("reach", str(tmp_path), "-n", "team-2", "-o", "wide")
    assert ns.stdout.splitlines()[0].split() == ["SOURCE", "DESTINATION", "PORT", "REQUESTS"]
    assert all("team-2/" in line for line in ns.stdout.splitlines()[1:])


def test_unknown_focus_workload_is_an_input_error() -> None:
    result = runner.invoke(app, ["reach", SHOP, "--workload", "shop/nope"])
    assert result.exit_code == 2
    assert "no workload" in result.stderr


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["diff", SHOP, SHOP], 0),
        (["explain", "default/notsleep", "default/httpbin", "--port", "8080", SHOP], 1),
        (["explain", "default/sleep", "default/httpbin", "--port", "8080", SHOP], 0),
        (["audit", SHOP, "--fail-on", "low"], 1),
    ],
)
def test_a_closed_pipe_keeps_the_exit_code_and_prints_no_error(args: list[str], code: int) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "kubezt", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # the reader went away before anything was written (`| head -0`)
    stderr = proc.stderr.read()
    assert proc.wait(timeout=120) == code
    assert "Traceback" not in stderr and "Broken pipe" not in stderr


def test_help_shows_placeholders_not_python_types() -> None:
    for name, _ in COMMANDS:
        text = runner.invoke(app, [name, "--help"]).stdout
        for python_type in ("<str>", "<int>", "list[", "INTEGER", "{paths}"):
            assert python_type not in text, (name, python_type)
    explain = runner.invoke(app, ["explain", "--help"]).stdout
    assert "--port PORT" in explain and "--service NAMESPACE/NAME:PORT" in explain
    assert "--workload NAMESPACE/NAME" in runner.invoke(app, ["reach", "--help"]).stdout


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_scripts(shell: str) -> None:
    result = runner.invoke(app, ["completion", shell])
    assert result.exit_code == 0
    assert "_KUBEZT_COMPLETE" in result.stdout


def test_completion_answers_the_shell() -> None:
    env = {"_KUBEZT_COMPLETE": "complete_bash", "COMP_WORDS": "kubezt rea", "COMP_CWORD": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "kubezt"],
        capture_output=True,
        text=True,
        env={**__import__("os").environ, **env},
        check=False,
        timeout=60,
    )
    assert result.stdout.split() == ["reach"]


def test_kubectl_plugin_entry_point() -> None:
    scripts = {e.name: e.value for e in entry_points(group="console_scripts")}
    assert scripts["kubectl-zt"] == scripts["kubezt"] == "kubezt.cli.main:main"


def test_no_progress_when_stderr_is_not_a_terminal(tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    result = kubezt_cli("report", SHOP, "-o", str(out))
    assert result.returncode == 0 and out.exists()
    assert "\r" not in result.stderr and "evaluating" not in result.stderr


def test_explain_echoes_the_request_and_names_what_the_nearest_rule_required() -> None:
    result = runner.invoke(
        app, ["explain", "default/notsleep", "default/httpbin", "--port", "8080", SHOP]
    )
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[0] == (
        "request: default/notsleep → default/httpbin 8080/TCP, as "
        "cluster.local/ns/default/sa/notsleep, to the pod address"
    )
    assert "nearest rule: AuthorizationPolicy default/httpbin spec.rules[0]" in result.stdout
    assert (
        "from.source.principals requires cluster.local/ns/default/sa/sleep; the caller had "
        "cluster.local/ns/default/sa/notsleep"
    ) in result.stdout
    doc = yaml.safe_load(
        runner.invoke(
            app,
            [
                "explain",
                "default/notsleep",
                "default/httpbin",
                "--port",
                "8080",
                SHOP,
                "-o",
                "json",
            ],
        ).stdout
    )
    assert doc["request"]["principal"] == "cluster.local/ns/default/sa/notsleep"
    assert doc["nearestRule"]["mismatches"] == [
        {
            "field": "from.source.principals",
            "required": ["cluster.local/ns/default/sa/sleep"],
            "had": "cluster.local/ns/default/sa/notsleep",
        }
    ]


def test_explain_a_plaintext_denial_says_mtls_was_required() -> None:
    result = runner.invoke(
        app, ["explain", "storefront/web", "shop/customer", "--port", "8080", SHOP]
    )
    assert result.exit_code == 1
    assert "without a mesh identity" in result.stdout.splitlines()[0]
    assert "the server requires mTLS; the caller sent plaintext" in result.stdout


def test_a_warning_both_sides_of_a_diff_share_is_said_once() -> None:
    result = kubezt_cli("diff", SHOP, SHOP)
    assert result.returncode == 0
    assert result.stderr.count("W062") == 1
