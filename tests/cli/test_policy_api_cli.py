"""The policy API as a user meets it on the command line (examples/cluster-policy): explain names
the tier, policy, priority and rule that decided; reach, audit and compile --cluster-policy."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from test_explain_and_reach_cli import kubezt

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "cluster-policy"
INTENT = Path(__file__).resolve().parents[2] / "examples" / "intent.yaml"


def test_explain_names_tier_policy_priority_and_rule() -> None:
    done = kubezt("explain", "sandbox/scratch", "shop/db", "--port", "5432", "-o", "json", EXAMPLE)
    assert done.returncode == 1, done.stderr
    doc = json.loads(done.stdout)
    assert doc["verdict"] == "deny" and doc["denied_by"] == "cluster-netpol"
    deny = [s for s in doc["steps"] if s["effect"] == "deny"][-1]
    assert deny["tier"] == "kube-admin"
    assert deny["rule"] == 0 and deny["object"] == "ClusterNetworkPolicy sandbox-isolation"
    assert "ClusterNetworkPolicy sandbox-isolation (tier Admin, priority 10)" in deny["detail"]
    assert "'no-sandbox'" in deny["detail"]


def test_explain_follows_a_pass_to_the_namespace_policy() -> None:
    done = kubezt("explain", "web/frontend", "shop/db", "--port", "5432", "-o", "json", EXAMPLE)
    assert done.returncode == 0, done.stderr
    steps = json.loads(done.stdout)["steps"]
    reasons = [(s["tier"], s["reason"]) for s in steps if s.get("tier")]
    assert ("kube-admin", "calico-tier-pass") in reasons
    assert reasons[-1] == ("default", "rule-matched")


def test_baseline_decides_where_no_netpol_does() -> None:
    done = kubezt("explain", "web/frontend", "sandbox/scratch", "--port", "8000", EXAMPLE)
    assert done.returncode == 1
    assert "tier Baseline, priority 1000" in done.stdout and "'deny-all'" in done.stdout


def test_reach_json_lists_what_the_tiers_allow() -> None:
    done = kubezt("reach", EXAMPLE, "-o", "json")
    assert done.returncode == 0, done.stderr
    allowed = {
        (c["src"], c["dst"], c["port"])
        for c in json.loads(done.stdout)["allowed"]
        if c["src"] != c["dst"]
    }
    assert allowed == {("web/frontend", "shop/db", 5432)}


def test_compile_cluster_policy_writes_a_baseline_cluster_network_policy() -> None:
    done = kubezt("compile", INTENT, "--cluster-policy")
    assert done.returncode == 0, done.stderr
    objects = [o for o in yaml.safe_load_all(done.stdout) if o]
    kinds = [o["kind"] for o in objects]
    assert "ClusterNetworkPolicy" in kinds
    assert not any(
        o["kind"] == "GlobalNetworkPolicy" and o["spec"].get("tier") == "default" for o in objects
    )
    (cnp,) = [o for o in objects if o["kind"] == "ClusterNetworkPolicy"]
    assert cnp["apiVersion"] == "policy.networking.k8s.io/v1alpha2"
    assert cnp["spec"]["tier"] == "Baseline"
    names = [r["name"] for r in cnp["spec"]["egress"]]
    assert names[0] == "allow-dns" and names[-1] == "default-deny"
    assert "--cluster-policy" in kubezt("compile", "--help").stdout
