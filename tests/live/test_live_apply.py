"""`kubezt apply` against a real API server with the upstream CRDs: the compiled example in
both modes applies with server-side dry run and for real, the result verifies against the
intent on the live cluster, every golden file is accepted, the intent guard refuses a change
that breaks the intent, --prune removes what the set dropped, and a rejection halfway rolls
back what was written. Also `kubezt rbac`: reading works with exactly that ClusterRole."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from kube_testenv import ROOT, TestCluster, manifests
from typer.testing import CliRunner

from intentkit import EXAMPLE, workload_objects
from kubezt.cli.main import app
from kubezt.dialects.intent import load_intent
from kubezt.errors import ClusterError
from kubezt.live.apply import OWNER_LABEL, apply_objects
from kubezt.live.session import Target, connect

GOLDEN = ROOT / "tests" / "golden" / "compile"
runner = CliRunner()


def run(*args: str) -> Any:
    return runner.invoke(app, list(args))


@pytest.fixture
def example_workloads(kube_apply: Any) -> list[dict[str, Any]]:
    """The example intent's namespaces, service accounts and workloads, live."""
    objects = workload_objects(load_intent(str(EXAMPLE)), replicas=2)
    namespaces = sorted({o["metadata"]["namespace"] for o in objects})
    kube_apply(*({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}}
                 for n in namespaces))  # fmt: skip
    return list(kube_apply(*objects))


def _cleanup_policies(cluster: TestCluster, objects: list[dict[str, Any]]) -> None:
    """Undo an apply: delete what it created; on namespaces (which may have existed, like
    `default`), give up the fields kubezt set, such as mesh enrolment labels."""
    for obj in reversed(objects):
        if obj["kind"] == "Namespace":
            name = obj["metadata"]["name"]
            cluster.apply(
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}},
                manager="kubezt",
            )
        else:
            cluster.delete(obj)


@pytest.mark.parametrize("mode", ["sidecar", "ambient"])
def test_compiled_example_applies_dry_run_then_for_real_and_verifies(
    kube_cluster: TestCluster, example_workloads: list[dict[str, Any]], mode: str, tmp_path: Path
) -> None:
    config = str(kube_cluster.kubeconfig)
    out = tmp_path / "out"
    assert run("compile", str(EXAMPLE), "--mode", mode, "-o", str(out)).exit_code == 0
    objects = manifests(out)
    try:
        dry = run("apply", str(EXAMPLE), "--mode", mode, "--kubeconfig", config,
                  "--dry-run", "server", "-o", "json")  # fmt: skip
        assert dry.exit_code == 0, dry.output
        report = json.loads(dry.stdout)
        assert report["dryRun"] is True and report["ok"] is True
        assert len(report["objects"]) == len(objects)
        assert {o["action"] for o in report["objects"]} <= {"created", "configured", "unchanged"}
        assert not any(
            kube_cluster.exists(o)
            for o in objects
            if o["kind"] not in ("Namespace", "ServiceAccount")
        ), "a dry run stored something"

        real = run("apply", str(EXAMPLE), "--mode", mode, "--kubeconfig", config, "-o", "json")
        assert real.exit_code == 0, real.output
        assert json.loads(real.stdout)["ok"] is True
        for obj in objects:
            status, live = kube_cluster.request("GET", _path(kube_cluster, obj))
            assert status == 200, obj
            if obj["kind"] not in ("Namespace", "ServiceAccount"):
                assert live["metadata"]["labels"][OWNER_LABEL] == "kubezt"
            managers = {m["manager"] for m in live["metadata"].get("managedFields", ())}
            assert "kubezt" in managers

        verified = run("verify", str(EXAMPLE), "--mode", mode, "--kubeconfig", config)
        assert verified.exit_code == 0, verified.output

        again = run("apply", str(EXAMPLE), "--mode", mode, "--kubeconfig", config, "-o", "json")
        assert again.exit_code == 0, again.output
        changed = [o for o in json.loads(again.stdout)["objects"] if o["action"] != "unchanged"]
        assert not changed, "applying the same set again changed objects"
    finally:
        _cleanup_policies(kube_cluster, objects)


def _path(cluster: TestCluster, obj: dict[str, Any]) -> str:
    from kube_testenv import resource_path

    return resource_path(cluster, obj)


ISTIOCTL_INPUT = "01-platform-istio.yaml"
"""IstioOperator: istioctl's input; Istio has served no such CRD since 1.24 (see crds/NOTICE.md)."""


@pytest.mark.parametrize(
    "golden",
    sorted(p for p in GOLDEN.glob("*/*/*.yaml") if p.name != ISTIOCTL_INPUT),
    ids=lambda p: f"{p.parent.parent.name}/{p.parent.name}/{p.name}",
)
def test_every_golden_file_is_accepted_by_the_api_server(
    kube_cluster: TestCluster, example_workloads: list[dict[str, Any]], golden: Path
) -> None:
    objects = manifests(golden)
    session = connect(Target(kubeconfig=str(kube_cluster.kubeconfig)))
    try:
        dry = apply_objects(session, objects, dry_run=True)
        assert not dry.failed, [
            o for o in dry.outcomes if o.action not in ("created", "configured")
        ]
        real = apply_objects(session, objects)
        assert not real.failed, [
            o for o in real.outcomes if o.action not in ("created", "configured")
        ]
    finally:
        _cleanup_policies(kube_cluster, objects)


def test_istioctl_input_is_refused_with_a_clear_error(kube_cluster: TestCluster) -> None:
    (golden,) = GOLDEN.glob(f"*/*/{ISTIOCTL_INPUT}")
    session = connect(Target(kubeconfig=str(kube_cluster.kubeconfig)))
    with pytest.raises(ClusterError, match=r"does not serve install\.istio\.io/v1alpha1"):
        apply_objects(session, manifests(golden), dry_run=True)


def test_intent_guard_refuses_a_directory_that_breaks_the_intent(
    kube_cluster: TestCluster, example_workloads: list[dict[str, Any]], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    assert run("compile", str(EXAMPLE), "--mode", "sidecar", "-o", str(out)).exit_code == 0
    (out / "30-calico-allow.yaml").unlink()  # the allowances go: granted connections break
    config = str(kube_cluster.kubeconfig)
    refused = run("apply", str(out), "--intent", str(EXAMPLE), "--kubeconfig", config)
    assert refused.exit_code == 1, refused.output
    assert "refusing to apply: the result would differ from the intent" in refused.output
    objects = manifests(out)
    assert not any(kube_cluster.exists(o) for o in objects if o["kind"] == "NetworkPolicy")
    unguarded = run("apply", str(out), "--kubeconfig", config, "--dry-run", "server")
    assert unguarded.exit_code == 1
    assert "no intent guards a directory" in unguarded.output


def test_rejection_halfway_restores_what_was_written(
    kube_cluster: TestCluster, kube_namespace: str
) -> None:
    existing = {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": "kept", "namespace": kube_namespace, "labels": {"v": "1"}},
    }
    kube_cluster.apply(existing, manager="kubezt")  # as an earlier `kubezt apply` left it
    changed = copy.deepcopy(existing)
    changed["metadata"]["labels"] = {"v": "2"}
    created = {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": "new", "namespace": kube_namespace},
    }
    invalid = {
        "apiVersion": "projectcalico.org/v3",
        "kind": "NetworkPolicy",
        "metadata": {"name": "bad", "namespace": kube_namespace},
        "spec": {"order": "not-a-number"},
    }
    session = connect(Target(kubeconfig=str(kube_cluster.kubeconfig)))
    report = apply_objects(session, [changed, created, invalid, created | {}])
    assert report.failed
    assert [(o.ref, o.action) for o in report.outcomes][:2] == [
        (f"ServiceAccount {kube_namespace}/kept", "configured"),
        (f"ServiceAccount {kube_namespace}/new", "created"),
    ]
    assert report.outcomes[2].action == "rejected"
    assert report.outcomes[3].action == "not-applied"
    assert [(o.ref, o.action) for o in report.restored] == [
        (f"ServiceAccount {kube_namespace}/new", "deleted (was created)"),
        (f"ServiceAccount {kube_namespace}/kept", "restored"),
    ]
    assert not kube_cluster.exists(created)
    _, kept = kube_cluster.request("GET", _path(kube_cluster, existing))
    assert kept["metadata"]["labels"] == {"v": "1"}


def test_conflict_with_another_manager_is_reported_not_forced(
    kube_cluster: TestCluster, kube_namespace: str
) -> None:
    theirs = {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": "shared", "namespace": kube_namespace, "labels": {"team": "a"}},
    }
    kube_cluster.apply(theirs, manager="someone-else")
    ours = copy.deepcopy(theirs)
    ours["metadata"]["labels"] = {"team": "b"}
    session = connect(Target(kubeconfig=str(kube_cluster.kubeconfig)))
    report = apply_objects(session, [ours])
    assert report.failed
    assert report.outcomes[0].action == "conflict"
    assert "someone-else" in report.outcomes[0].message
    _, live = kube_cluster.request("GET", _path(kube_cluster, theirs))
    assert live["metadata"]["labels"] == {"team": "a"}


def test_prune_deletes_owned_policies_the_set_dropped(
    kube_cluster: TestCluster, kube_namespace: str
) -> None:
    def policy(name: str) -> dict[str, Any]:
        return {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": kube_namespace},
            "spec": {"podSelector": {}, "policyTypes": ["Ingress"]},
        }

    foreign = policy("not-ours")
    kube_cluster.apply(foreign)
    session = connect(Target(kubeconfig=str(kube_cluster.kubeconfig)))
    assert not apply_objects(session, [policy("a"), policy("b")]).failed
    dry = apply_objects(session, [policy("a")], prune=True, dry_run=True)
    assert (f"NetworkPolicy {kube_namespace}/b", "deleted") in [
        (o.ref, o.action) for o in dry.outcomes
    ]
    assert kube_cluster.exists(policy("b"))
    report = apply_objects(session, [policy("a")], prune=True)
    assert [(o.ref, o.action) for o in report.outcomes if o.action == "deleted"] == [
        (f"NetworkPolicy {kube_namespace}/b", "deleted")
    ]
    assert kube_cluster.exists(policy("a"))
    assert not kube_cluster.exists(policy("b"))
    assert kube_cluster.exists(foreign), "prune deleted an object kubezt does not own"


def _bind(cluster: TestCluster, role: dict[str, Any]) -> dict[str, Any]:
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": role["metadata"]["name"]},
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": role["metadata"]["name"],
        },
        "subjects": [
            {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "restricted"}
        ],
    }
    cluster.apply(role)
    cluster.apply(binding)
    return binding


def test_reading_works_with_exactly_the_rbac_role_and_fails_clearly_with_less(
    kube_cluster: TestCluster, kube_apply: Any
) -> None:
    kube_apply(ROOT / "examples" / "shop")
    printed = run("rbac")
    assert printed.exit_code == 0
    role = yaml.safe_load(printed.stdout)
    config = str(kube_cluster.kubeconfig)
    admin = run("reach", "--kubeconfig", config, "-o", "json")
    binding = _bind(kube_cluster, role)
    try:
        restricted = run("reach", "--kubeconfig", config, "--context", "kubezt-restricted",
                         "-o", "json")  # fmt: skip
        assert restricted.exit_code == 0, restricted.output
        assert json.loads(restricted.stdout)["allowed"] == json.loads(admin.stdout)["allowed"]

        less = copy.deepcopy(role)
        for rule in less["rules"]:
            if rule["apiGroups"] == ["projectcalico.org"]:
                rule["resources"].remove("globalnetworkpolicies")
        kube_cluster.apply(less)
        denied = run("reach", "--kubeconfig", config, "--context", "kubezt-restricted")
        assert denied.exit_code == 2
        assert "forbidden (403) to list globalnetworkpolicies.projectcalico.org" in denied.output
        assert "Traceback" not in denied.output
    finally:
        kube_cluster.delete(binding)
        kube_cluster.delete(role)


def test_probe_plan_is_accepted_by_the_api_server(
    kube_cluster: TestCluster, kube_apply: Any, tmp_path: Path
) -> None:
    kube_apply(ROOT / "examples" / "shop")
    out = tmp_path / "plan"
    planned = run("probe", "plan", "--kubeconfig", str(kube_cluster.kubeconfig), "-o", str(out))
    assert planned.exit_code == 0, planned.output
    jobs = manifests(out / "probes.yaml")
    assert jobs
    session = connect(Target(kubeconfig=str(kube_cluster.kubeconfig)))
    try:
        assert not apply_objects(session, jobs, dry_run=True).failed
        report = apply_objects(session, jobs)
        assert not report.failed, report.outcomes
        assert {o.action for o in report.outcomes} == {"created"}
    finally:
        for job in jobs:
            kube_cluster.delete(job)
