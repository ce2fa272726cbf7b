"""`kubezt blast-radius` and `kubezt diff`: exit codes, table/JSON/YAML output and the bundled
example (examples/shop)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from kubezt.cli.main import app
from kubezt.report.analysis_documents import (
    BLAST_RADIUS_SCHEMA,
    DIFF_SCHEMA,
    RANKING_SCHEMA,
)

SHOP = str(Path(__file__).resolve().parents[2] / "examples" / "shop")
runner = CliRunner()

# shop/customer may now also call the database directly (a pull request widening an allow-list).
CUSTOMER_TO_DATABASE = """
---
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: customer-to-database, namespace: shop}
spec:
  order: 50
  selector: app == "customer"
  types: [Egress]
  egress:
  - action: Allow
    protocol: TCP
    destination:
      serviceAccounts: {names: [database]}
      ports: [2379]
---
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: database-from-customer, namespace: shop}
spec:
  order: 50
  selector: app == "database"
  types: [Ingress]
  ingress:
  - action: Allow
    protocol: TCP
    source:
      serviceAccounts: {names: [customer]}
    destination: {ports: [2379]}
"""


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def widened(tmp_path: Path) -> str:
    copy = tmp_path / "pr"
    shutil.copytree(SHOP, copy)
    with (copy / "50-calico.yaml").open("a", encoding="utf-8") as fh:
        fh.write(CUSTOMER_TO_DATABASE)
    return str(copy)


# --- blast-radius -----------------------------------------------------------------------------


def test_customer_reaches_summary_then_the_database_at_hop_two() -> None:
    code, stdout, _ = run("blast-radius", "shop/customer", SHOP, "-o", "json")
    assert code == 0
    doc = json.loads(stdout)
    assert doc["schemaVersion"] == BLAST_RADIUS_SCHEMA
    assert doc["identity"] == "cluster.local/ns/shop/sa/customer"
    hops = {r["workload"]: (r["hop"], r["via"]) for r in doc["reached"]}
    assert hops["shop/summary"] == (1, ["shop/customer"])
    assert hops["shop/database"] == (2, ["shop/summary"])
    database = next(r for r in doc["reached"] if r["workload"] == "shop/database")
    assert database["access"] == [
        {"from": "shop/summary", "port": 2379, "protocol": "TCP", "requests": "all"}
    ]
    assert doc["truncated"] is False
    # istiod and coredns (reached at hop 1) have no egress policy: from them, every outside
    # cell the input's CIDRs cut (0.0.0.0/0 less 10.0.0.0/8 and 169.254.7.127/32, those two,
    # and ::/0) is reached at hop 2
    assert doc["summary"] == {
        "reached": len(doc["reached"]),
        "direct": 3,
        "depth": 2,
        "outside": 4,
    }
    outside = {o["cell"]: (o["hop"], o["via"]) for o in doc["outside"]}
    via = ["istio-system/istiod", "kube-system/coredns"]
    assert outside == {
        "external:0.0.0.0/0": (2, via),
        "external:10.0.0.0/8": (2, via),
        "external:169.254.7.127/32": (2, via),
        "external:::/0": (2, via),
    }


def test_hop_limit_is_reported_as_truncated() -> None:
    code, stdout, _ = run("blast-radius", "shop/customer", SHOP, "--hops", "1", "-o", "yaml")
    assert code == 0
    doc = yaml.safe_load(stdout)
    assert doc["hops"] == 1 and doc["truncated"] is True
    assert "shop/database" not in {r["workload"] for r in doc["reached"]}


def test_blast_radius_table_lists_hops_and_identity() -> None:
    code, stdout, _ = run("blast-radius", "shop/customer", SHOP)
    assert code == 0
    assert "Blast radius of shop/customer" in stdout
    assert "cluster.local/ns/shop/sa/customer" in stdout
    database = next(line for line in stdout.splitlines() if "shop/database" in line)
    assert database.split()[:3] == ["2", "shop/database", "shop/summary"]
    assert "No other workload shares its identity." in stdout


def test_all_ranks_every_workload() -> None:
    code, stdout, _ = run("blast-radius", "--all", SHOP, "-o", "json")
    assert code == 0
    doc = json.loads(stdout)
    assert doc["schemaVersion"] == RANKING_SCHEMA
    rows = doc["workloads"]
    assert [r["rank"] for r in rows] == list(range(1, len(rows) + 1))
    # default/httpbin reaches sleep and notsleep directly: they declare no port and no policy
    # guards them, so every port cell of theirs is open (and istiod and coredns on theirs)
    assert [(r["workload"], r["reached"], r["direct"]) for r in rows[:2]] == [
        ("default/httpbin", 4, 4),
        ("default/sleep", 4, 4),
    ]
    keys = [(-r["reached"], -r["direct"], r["workload"]) for r in rows]
    assert keys == sorted(keys)
    code, table, _ = run("blast-radius", "--all", SHOP)
    assert code == 0 and "shop/customer" in table


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["shop/custmer", SHOP], "did you mean 'shop/customer'"),
        ([SHOP], "expected WORKLOAD then at least one PATH"),
        (["--all", "--hops", "2", SHOP], "--hops applies to one workload"),
        (["shop/customer", "no-such-directory"], "no such file or directory"),
    ],
)
def test_blast_radius_usage_and_input_errors_exit_2(args: list[str], message: str) -> None:
    code, stdout, stderr = run("blast-radius", *args)
    assert code == 2
    assert message in stderr
    assert stdout == ""


def test_blast_radius_help_documents_all() -> None:
    code, stdout, _ = run("blast-radius", "--help")
    assert code == 0
    assert "--all" in stdout and "[WORKLOAD] PATH" in stdout


# --- diff ---------------------------------------------------------------------------------------


def test_diff_of_identical_inputs_is_empty_and_exits_0() -> None:
    code, stdout, _ = run("diff", SHOP, SHOP, "-o", "json")
    assert code == 0
    doc = json.loads(stdout)
    assert doc["schemaVersion"] == DIFF_SCHEMA
    assert doc["pairs"] == [] and doc["addedWorkloads"] == [] and doc["removedWorkloads"] == []


def test_newly_allowed_connection_exits_1_and_names_the_policies(widened: str) -> None:
    code, stdout, _ = run("diff", SHOP, widened, "-o", "json")
    assert code == 1
    doc = json.loads(stdout)
    assert doc["summary"]["newlyAllowed"] == 1 and doc["summary"]["newlyDenied"] == 0
    [pair] = doc["pairs"]
    assert (pair["src"], pair["dst"]) == ("shop/customer", "shop/database")
    [change] = pair["changes"]
    assert (change["port"], change["protocol"], change["change"]) == (2379, "TCP", "allowed")
    assert change["old"]["explanation"]["deniedBy"] == "calico"
    objects = {s.get("object") for s in change["new"]["explanation"]["steps"]}
    assert {
        "NetworkPolicy shop/customer-to-database",
        "NetworkPolicy shop/database-from-customer",
    } <= objects
    locations = [s["location"] for s in change["new"]["explanation"]["steps"] if "location" in s]
    assert locations and all("50-calico.yaml" in loc for loc in locations)


def test_only_newly_denied_exits_0(widened: str) -> None:
    code, stdout, _ = run("diff", widened, SHOP, "-o", "yaml")
    assert code == 0
    doc = yaml.safe_load(stdout)
    assert doc["summary"]["newlyAllowed"] == 0 and doc["summary"]["newlyDenied"] == 1
    assert doc["pairs"][0]["changes"][0]["change"] == "denied"


def test_diff_table_shows_the_change_and_why(widened: str) -> None:
    code, stdout, _ = run("diff", SHOP, widened)
    assert code == 1
    assert "1 newly allowed, 0 newly denied" in stdout
    assert "shop/customer → shop/database 2379/TCP allowed" in stdout
    assert "NetworkPolicy shop/customer-to-database" in stdout


def test_added_workload_is_listed_without_failing(tmp_path: Path) -> None:
    copy = tmp_path / "pr"
    shutil.copytree(SHOP, copy)
    (copy / "60-batch.yaml").write_text(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: batch, namespace: storefront}\n"
        "spec: {containers: [{name: c, image: busybox}]}\n",
        encoding="utf-8",
    )
    code, stdout, _ = run("diff", SHOP, str(copy), "-o", "json")
    assert code == 0
    doc = json.loads(stdout)
    assert [w["workload"] for w in doc["addedWorkloads"]] == ["storefront/batch"]
    assert doc["pairs"] == []


def test_diff_input_error_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: [unclosed\n", encoding="utf-8")
    code, stdout, stderr = run("diff", SHOP, str(bad))
    assert code == 2
    assert "error" in stderr and stdout == ""
    code, _, stderr = run("diff", SHOP)
    assert code == 2


def test_mesh_options_are_accepted() -> None:
    code, stdout, _ = run(
        "blast-radius", "shop/customer", SHOP, "--trust-domain", "example.org", "-o", "json"
    )
    assert code == 0
    assert json.loads(stdout)["identity"] == "example.org/ns/shop/sa/customer"
    code, _, _ = run("diff", SHOP, SHOP, "--root-namespace", "istio-system")
    assert code == 0
