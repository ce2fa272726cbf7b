"""The state `kubezt watch` keeps, fed by hand with what informers report (the API server side
is tested in tests/live/test_live_watch.py): noise is dropped, a lost resource makes the
verdicts unknown until it is relisted, and the relist reports what moved meanwhile; several
changes in one batch report their net effect; the author is the newest managedFields entry."""

from __future__ import annotations

import copy
from typing import Any

from kubezt.engine.incremental import rows_of
from kubezt.engine.reach import evaluate
from kubezt.live.read import CORE, Plan
from kubezt.live.watch import Changed, Listed, Lost, Watch, author, essential

RESOURCES = {r.plural: r for r in CORE if r.plural in ("namespaces", "pods", "networkpolicies")}
NS = "shop"


def _watch() -> Watch:
    resources = tuple(RESOURCES.values())
    plan = Plan(tuple((r, "v1") for r in resources), (), mesh_config=False)
    return Watch("test", plan, resources)


def _meta(name: str, manager: str = "deployer", **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": NS,
        "resourceVersion": "1",
        "managedFields": [
            {"manager": manager, "operation": "Apply", "time": "2026-01-01T00:00:00Z"}
        ],
        **extra,
    }


def _pod(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": _meta(name, labels={"app": name}),
        "spec": {"containers": [{"name": "c", "image": "x", "ports": [{"containerPort": 80}]}]},
        "status": {"phase": "Pending"},
    }


def _deny(manager: str = "alice") -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _meta("deny", manager),
        "spec": {"podSelector": {}, "policyTypes": ["Ingress"]},
    }


def _synced() -> Watch:
    w = _watch()
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}
    w.record(Listed(RESOURCES["namespaces"], (namespace,)))
    w.record(Listed(RESOURCES["pods"], (_pod("a"), _pod("b"))))
    assert w.evaluate() is None  # networkpolicies not listed yet: unknown
    w.record(Listed(RESOURCES["networkpolicies"], ()))
    first = w.evaluate()
    assert first is not None and first.moved == ()
    return w


def _moved(step: Any) -> list[tuple[str, str, str, int]]:
    """The moved connections on the declared port (the cells of every other port move with
    it and are checked to have moved the same way)."""
    declared = [m for m in step.moved if m.change.port == 80]
    others = [m for m in step.moved if m.change.port != 80]
    assert {(m.change.kind, m.src, m.dst) for m in others} <= {
        (m.change.kind, m.src, m.dst) for m in declared
    }
    return [(m.change.kind.value, m.src, m.dst, m.change.port) for m in declared]


def test_noise_is_dropped_and_a_pod_address_is_not_noise() -> None:
    w = _synced()
    pod = _pod("a")
    noisy = copy.deepcopy(pod)
    noisy["metadata"]["resourceVersion"] = "7"
    noisy["metadata"]["managedFields"].append(
        {"manager": "kubelet", "operation": "Update", "time": "2026-01-02T00:00:00Z"}
    )
    noisy["status"] = {"phase": "Running", "conditions": [{"type": "Ready"}]}
    assert essential(noisy) == essential(pod)
    assert w.record(Changed(RESOURCES["pods"], "MODIFIED", noisy)) is False
    addressed = copy.deepcopy(noisy)
    addressed["status"]["podIP"] = "10.0.0.7"
    assert w.record(Changed(RESOURCES["pods"], "MODIFIED", addressed)) is True


def test_a_change_is_reported_with_its_cause_and_author() -> None:
    w = _synced()
    assert w.record(Changed(RESOURCES["networkpolicies"], "ADDED", _deny()))
    step = w.evaluate()
    assert step is not None
    assert _moved(step) == [("denied", "shop/a", "shop/b", 80), ("denied", "shop/b", "shop/a", 80)]
    cause = step.moved[0].causes[0]
    assert (cause.ref, cause.operation) == ("NetworkPolicy shop/deny", "created")
    assert cause.author is not None and cause.author.manager == "alice"
    # the count kept from deltas is a full evaluation's (a pod reaching itself is allowed)
    assert w.allowed == sum(1 for _ in rows_of(evaluate(w.model)))


def test_a_lost_resource_is_unknown_until_relisted_and_then_reports_what_moved() -> None:
    w = _synced()
    w.record(Lost(RESOURCES["networkpolicies"], "connection lost"))
    assert not w.known
    # what happened meanwhile is seen only through the relist
    assert w.evaluate() is None
    w.record(Listed(RESOURCES["networkpolicies"], (_deny(),)))
    step = w.evaluate()
    assert step is not None and step.relisted
    assert _moved(step) == [("denied", "shop/a", "shop/b", 80), ("denied", "shop/b", "shop/a", 80)]


def test_a_batch_reports_its_net_effect() -> None:
    w = _synced()
    w.record(Changed(RESOURCES["networkpolicies"], "ADDED", _deny()))
    w.record(Changed(RESOURCES["networkpolicies"], "DELETED", _deny()))
    step = w.evaluate()
    assert step is None or step.moved == ()


def test_pods_added_and_removed_are_reported_with_their_connections() -> None:
    w = _synced()
    w.record(Changed(RESOURCES["pods"], "ADDED", _pod("c")))
    step = w.evaluate()
    assert step is not None
    assert [(p.workload, p.added, p.reaches, p.reached_by) for p in step.presence] == [
        ("shop/c", True, 2, 2)
    ]
    w.record(Changed(RESOURCES["pods"], "DELETED", _pod("c")))
    step = w.evaluate()
    assert step is not None
    assert [(p.workload, p.added, p.reaches, p.reached_by) for p in step.presence] == [
        ("shop/c", False, 2, 2)
    ]


def test_author_is_the_newest_managed_fields_entry() -> None:
    obj = {
        "metadata": {
            "managedFields": [
                {"manager": "old", "operation": "Apply", "time": "2026-01-01T00:00:00Z"},
                {"manager": "new", "operation": "Update", "time": "2026-02-01T00:00:00Z"},
                {"manager": "mid", "operation": "Update", "time": "2026-01-15T00:00:00Z"},
            ]
        }
    }
    found = author(obj)
    assert found is not None and (found.manager, found.operation) == ("new", "Update")
    assert author({"metadata": {}}) is None
