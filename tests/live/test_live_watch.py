"""`kubezt watch` against a real API server: the scripted sequence of tests/cases/watch is made
through the API while watch runs and every record it prints is compared exactly; a cut watch
and an expired one (etcd compacted) lead to "unknown", a relist and the same state a fresh
read gives; drift from an intent appears and resolves; Events are recorded; the metrics
endpoint serves the state; leadership of the Lease moves when the leader stops; the
deployment manifests are accepted by the API server; the command line prints JSON lines."""

from __future__ import annotations

import copy
import json
import queue
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kube_testenv import ROOT, TestCluster

from kubezt.engine.incremental import rows_of
from kubezt.engine.reach import evaluate
from kubezt.live.read import load_cluster
from kubezt.live.session import Session, Target, connect

CASES = ROOT / "tests" / "cases" / "watch"
SEQUENCE = yaml.safe_load((CASES / "sequence.yaml").read_text())
QUIET = 1.5
"""Seconds without a record after which a step is taken to have reported everything."""
WAIT = 30.0
DECLARED_PORT = 80
"""The port the sequence's pods declare: records of the other-port cells are not compared."""


class Watching:
    """A `Runner` in a thread, its records in a queue."""

    def __init__(self, session: Session, **options: Any) -> None:
        from kubezt.cli.watch import Runner

        self.records: queue.Queue[dict[str, Any]] = queue.Queue()
        self.stop = threading.Event()
        self.runner = Runner(session, self.records.put, stop=self.stop, **options)
        self.code: int | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        self.code = self.runner.run()

    def next(self, want: Callable[[dict[str, Any]], bool], timeout: float = WAIT) -> dict[str, Any]:
        """The next record `want` accepts (others are skipped)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("no such record in time")
            record = self.records.get(timeout=left)
            if want(record):
                return record

    def collect(self, want: Callable[[dict[str, Any]], bool], count: int) -> list[dict[str, Any]]:
        """Records `want` accepts until `count` arrived and then none for QUIET seconds."""
        got: list[dict[str, Any]] = []
        deadline = time.monotonic() + WAIT
        quiet_until = time.monotonic() + QUIET
        while time.monotonic() < deadline:
            if len(got) >= count and time.monotonic() >= quiet_until:
                break
            try:
                record = self.records.get(timeout=0.1)
            except queue.Empty:
                continue
            if want(record):
                got.append(record)
                quiet_until = time.monotonic() + QUIET
        return got

    def close(self) -> None:
        self.stop.set()
        self.thread.join(30)
        assert not self.thread.is_alive()


@pytest.fixture
def session(kube_cluster: TestCluster) -> Session:
    return connect(Target(kubeconfig=str(kube_cluster.kubeconfig)))


@pytest.fixture
def watching(session: Session) -> Iterator[Callable[..., Watching]]:
    started: list[Watching] = []

    def start(**options: Any) -> Watching:
        w = Watching(session, **options)
        started.append(w)
        w.next(lambda r: r["type"] == "synced")
        return w

    yield start
    for w in started:
        w.close()


def _in(namespace: str) -> Callable[[dict[str, Any]], bool]:
    def mine(record: dict[str, Any]) -> bool:
        if record.get("type") == "change" and record.get("port") != DECLARED_PORT:
            return False  # the cells of undeclared ports, which move with it
        text = json.dumps({k: v for k, v in record.items() if k != "time"})
        return f'"{namespace}/' in text or f" {namespace}/" in text

    return mine


def _placed(obj: dict[str, Any], namespace: str) -> dict[str, Any]:
    obj = copy.deepcopy(obj)
    obj["metadata"]["namespace"] = namespace
    return obj


def _project(record: dict[str, Any], like: dict[str, Any]) -> dict[str, Any]:
    """The record reduced to the keys the expectation names (recursively for causes)."""
    out: dict[str, Any] = {}
    for key, value in like.items():
        got = record.get(key)
        if key == "causes" and isinstance(got, list):
            out[key] = [{k: c.get(k) for k in value[0]} for c in got] if value else got
        else:
            out[key] = got
    return out


def _expected(items: list[dict[str, Any]], namespace: str) -> list[dict[str, Any]]:
    return json.loads(json.dumps(items).replace("NS/", f"{namespace}/"))


def _do(cluster: TestCluster, step: dict[str, Any], namespace: str) -> None:
    manager = step.get("manager", "kubezt-tests")
    for obj in step.get("apply", ()):
        cluster.apply(_placed(obj, namespace), manager=manager)
    for ref in step.get("delete", ()):
        cluster.delete(
            {"apiVersion": ref["apiVersion"], "kind": ref["kind"],
             "metadata": {"name": ref["name"], "namespace": namespace}}
        )  # fmt: skip
    if "status" in step:
        path = f"/api/v1/namespaces/{namespace}/pods/{step['status']}/status"
        patch = {"status": {"conditions": [{"type": "kubezt.io/Tested", "status": "True"}]}}
        status, body = cluster.request(
            "PATCH", path, patch, content_type="application/merge-patch+json"
        )
        assert status == 200, body


def _steps(w: Watching, cluster: TestCluster, namespace: str, *indices: int) -> None:
    """Make steps of the sequence one after the other, each reported before the next."""
    for i in indices:
        step = SEQUENCE["steps"][i]
        _do(cluster, step, namespace)
        assert len(w.collect(_in(namespace), len(step["expect"]))) == len(step["expect"])


def _fresh_allowed(session: Session) -> int:
    """Connections allowed by a fresh read and full evaluation of the cluster."""
    return sum(1 for _ in rows_of(evaluate(load_cluster(session).model)))


def test_scripted_sequence_reports_exactly_each_delta(
    kube_cluster: TestCluster, kube_namespace: str, session: Session, watching: Any
) -> None:
    w = watching()
    for step in SEQUENCE["steps"]:
        _do(kube_cluster, step, kube_namespace)
        expected = _expected(step["expect"], kube_namespace)
        got = w.collect(_in(kube_namespace), len(expected))
        assert [_project(r, e) for r, e in zip(got, expected, strict=False)] == expected, step[
            "name"
        ]
        assert len(got) == len(expected), (step["name"], got)
    assert w.runner.watch.allowed == _fresh_allowed(session)


def test_change_records_carry_both_explanations(
    kube_cluster: TestCluster, kube_namespace: str, watching: Any
) -> None:
    w = watching()
    _steps(w, kube_cluster, kube_namespace, 0)
    _do(kube_cluster, SEQUENCE["steps"][1], kube_namespace)
    record = w.next(lambda r: r["type"] == "change" and _in(kube_namespace)(r))
    assert record["old"]["explanation"]["verdict"] == "allow"
    new = record["new"]["explanation"]
    assert new["verdict"] == "deny"
    assert new["deniedBy"] == "k8s-netpol"
    assert any(f"{kube_namespace}/deny-ingress" in json.dumps(s) for s in new["steps"])


def _informer(w: Watching, plural: str, group: str) -> Any:
    return next(
        i for i in w.runner.informers if (i.resource.plural, i.resource.group) == (plural, group)
    )


def test_a_cut_watch_reports_unknown_then_relists_to_the_same_state(
    kube_cluster: TestCluster, kube_namespace: str, session: Session, watching: Any
) -> None:
    w = watching()
    _steps(w, kube_cluster, kube_namespace, 0)
    _informer(w, "networkpolicies", "networking.k8s.io").cut()
    unknown = w.next(lambda r: r["type"] == "unknown")
    assert unknown["resource"] == "networkpolicies.networking.k8s.io", unknown
    assert "connection lost" in unknown["reason"]
    w.next(lambda r: r["type"] == "known")
    # a change made right after the relist is reported as usual
    _do(kube_cluster, SEQUENCE["steps"][1], kube_namespace)
    got = w.collect(_in(kube_namespace), 2)
    assert [(r["change"], r["src"], r["dst"]) for r in got] == [
        ("denied", f"{kube_namespace}/a", f"{kube_namespace}/b"),
        ("denied", f"{kube_namespace}/b", f"{kube_namespace}/a"),
    ]
    assert w.runner.watch.allowed == _fresh_allowed(session)


def _patch_crd(cluster: TestCluster, name: str, columns: list[dict[str, str]] | None) -> None:
    """Change a CRD's served spec (its printer columns): the API server replaces the storage
    and watch cache of the resource, as an upgrade of the CRD does."""
    patch = [{"op": "add" if columns else "remove",
              "path": "/spec/versions/0/additionalPrinterColumns",
              **({"value": columns} if columns else {})}]  # fmt: skip
    status, body = cluster.request(
        "PATCH",
        f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}",
        patch,
        content_type="application/json-patch+json",
    )
    assert status == 200, body


def test_an_expired_watch_gets_410_reports_unknown_and_relists(
    kube_cluster: TestCluster, kube_namespace: str, session: Session, watching: Any
) -> None:
    """A CRD's storage replaced ends its watches; the resourceVersion they resume from is older
    than the new watch cache, so the server answers 410 Gone (Expired), or 429 while the new
    cache initializes: either way changes may have been missed."""
    w = watching()
    _steps(w, kube_cluster, kube_namespace, 0)
    informer = _informer(w, "networksets", "projectcalico.org")
    before = informer.rv
    crd = "networksets.projectcalico.org"
    _patch_crd(kube_cluster, crd, [{"name": "Age", "type": "date",
                                    "jsonPath": ".metadata.creationTimestamp"}])  # fmt: skip
    try:
        unknown = w.next(lambda r: r["type"] == "unknown")
        assert unknown["resource"] == "networksets.projectcalico.org", unknown
        # 410 Gone when the new watch cache is up, 429 while it is still initializing
        assert "410" in unknown["reason"] or "429" in unknown["reason"], unknown
        w.next(lambda r: r["type"] == "known")
    finally:
        _patch_crd(kube_cluster, crd, None)
    assert informer.rv != before
    assert w.runner.watch.allowed == _fresh_allowed(session)


INTENT = {
    "apiVersion": "kubezt.io/v1alpha1",
    "kind": "ZeroTrustIntent",
    "metadata": {"name": "pair"},
    "spec": {
        "mesh": {"mode": "sidecar"},
        "namespaces": ["NS"],
        "services": [
            {"name": "a", "namespace": "NS", "serviceAccount": "a"},
            {"name": "b", "namespace": "NS", "serviceAccount": "b",
             "ports": [{"port": 80, "name": "http", "appProtocol": "tcp"}]},
        ],
        "calls": [{"from": {"serviceAccount": "a"}, "to": "NS/b", "ports": [80]}],
        "platform": {"dns": {"enabled": False}},
    },
}  # fmt: skip


def _intent(tmp_path: Path, namespace: str) -> Any:
    from kubezt.dialects.intent import load_intent

    path = tmp_path / "intent.yaml"
    path.write_text(json.dumps(INTENT).replace('"NS', f'"{namespace}'))
    return load_intent(str(path))


def _pods_with_accounts(namespace: str) -> list[dict[str, Any]]:
    pods = []
    for pod in SEQUENCE["pods"]:
        pod = _placed(pod, namespace)
        pod["spec"]["serviceAccountName"] = pod["metadata"]["name"]
        pods.append(pod)
    return pods


def test_intent_drift_appears_and_resolves_with_events_on_the_cause(
    kube_cluster: TestCluster, kube_namespace: str, watching: Any, tmp_path: Path
) -> None:
    for name in ("a", "b"):
        kube_cluster.apply(
            {"apiVersion": "v1", "kind": "ServiceAccount",
             "metadata": {"name": name, "namespace": kube_namespace}}
        )  # fmt: skip
    for pod in _pods_with_accounts(kube_namespace):
        kube_cluster.apply(pod)
    w = watching(intent=_intent(tmp_path, kube_namespace), events=True)
    b_to_a = ("allowed-not-granted", f"{kube_namespace}/b", f"{kube_namespace}/a")

    def drift(kind: str) -> Callable[[dict[str, Any]], bool]:
        def match(r: dict[str, Any]) -> bool:
            d = r.get("difference") or {}
            return r["type"] == kind and (d.get("kind"), d.get("src"), d.get("dst")) == b_to_a

        return match

    w.next(drift("drift"))  # nothing isolates a at first: b may call it
    deny = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "a-isolated", "namespace": kube_namespace},
        "spec": {"podSelector": {"matchLabels": {"app": "a"}}, "policyTypes": ["Ingress"]},
    }
    kube_cluster.apply(deny, manager="erin")
    resolved = w.next(drift("drift-resolved"))
    assert resolved["causes"] == [
        {"object": f"NetworkPolicy {kube_namespace}/a-isolated", "operation": "created",
         "manager": "erin", "managerOperation": "Apply",
         "at": resolved["causes"][0]["at"]}
    ]  # fmt: skip
    # allowing b into a again is a drift, caused by the policy frank changed: an Event on it
    opened = copy.deepcopy(deny)
    opened["spec"]["ingress"] = [{"from": [{"podSelector": {"matchLabels": {"app": "b"}}}]}]
    kube_cluster.apply(opened, manager="frank")
    again = w.next(drift("drift"))
    assert [(c["object"], c["operation"], c["manager"]) for c in again["causes"]] == [
        (f"NetworkPolicy {kube_namespace}/a-isolated", "updated", "frank")
    ]
    events = _wait_for_events(kube_cluster, kube_namespace, "a-isolated")
    assert [(e["reason"], e["involvedObject"]["kind"]) for e in events] == [
        ("IntentDrift", "NetworkPolicy")
    ]
    assert f"allowed-not-granted {kube_namespace}/b → {kube_namespace}/a" in events[0]["message"]


def _wait_for_events(cluster: TestCluster, namespace: str, name: str) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 5
    items: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        status, body = cluster.request("GET", f"/api/v1/namespaces/{namespace}/events")
        assert status == 200
        items = [e for e in body["items"] if e["involvedObject"]["name"] == name]
        if items:
            break
        time.sleep(0.2)
    return items


def test_events_are_recorded_on_the_object_that_opened_a_connection(
    kube_cluster: TestCluster, kube_namespace: str, watching: Any
) -> None:
    w = watching(events=True)
    _steps(w, kube_cluster, kube_namespace, 0, 1, 2)
    events = _wait_for_events(kube_cluster, kube_namespace, "b-from-a")
    assert [(e["reason"], e["type"], e["involvedObject"]["kind"]) for e in events] == [
        ("ConnectionAllowed", "Warning", "NetworkPolicy")
    ]
    assert f"{kube_namespace}/a → {kube_namespace}/b 80/TCP" in events[0]["message"]
    assert events[0]["source"]["component"] == "kubezt"


def _scrape(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        text = r.read().decode()
    values: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    return values


def test_metrics_endpoint_serves_the_state(
    kube_cluster: TestCluster, kube_namespace: str, session: Session, watching: Any
) -> None:
    from kubezt.live.metrics import Metrics

    metrics = Metrics()
    _, port = metrics.serve("127.0.0.1:0")
    try:
        w = watching(metrics=metrics)
        _steps(w, kube_cluster, kube_namespace, 0, 1)
        values = _scrape(port)
        assert values["kubezt_connections_allowed"] == _fresh_allowed(session)
        assert values["kubezt_verdicts_known"] == 1
        assert values["kubezt_leader"] == 1
        assert values['kubezt_connection_changes_total{change="denied"}'] >= 2
        assert values["kubezt_reevaluation_seconds_count"] >= 2
        assert f'kubezt_posture_score{{namespace="{kube_namespace}"}}' in values
        assert 'kubezt_audit_findings{severity="high"}' in values
        _informer(w, "pods", "").cut()
        w.next(lambda r: r["type"] == "unknown")
        # unknown is served until the relist
        w.next(lambda r: r["type"] == "known")
        assert _scrape(port)["kubezt_verdicts_known"] == 1
    finally:
        metrics.close()


def test_leadership_moves_when_the_leader_stops(
    kube_cluster: TestCluster, kube_namespace: str, session: Session
) -> None:
    from kubezt.live.watch import LeaseElector

    changes: list[tuple[str, bool]] = []

    def elector(identity: str, duration: float = 3.0) -> LeaseElector:
        return LeaseElector(
            session, kube_namespace, "kubezt-watch", identity,
            lambda leading: changes.append((identity, leading)),
            duration=duration, renew_deadline=2.0, retry=0.3,
        )  # fmt: skip

    # the first holds the lease for 60 s: only its release lets the second in sooner
    first, second = elector("one", duration=60.0), elector("two")
    first.start()
    _until(lambda: first.leading)
    second.start()
    time.sleep(1.5)
    assert (first.leading, second.leading) == (True, False)
    first.stop(release=True)  # a clean stop gives the lease up
    _until(lambda: second.leading, 5.0)
    assert changes == [("one", True), ("one", False), ("two", True)]
    # a leader that dies without releasing is replaced once the lease expires
    third = elector("three")
    third.start()
    time.sleep(1.0)
    assert not third.leading
    second.stop(release=False)
    _until(lambda: third.leading, 10.0)
    third.stop()
    status, lease = kube_cluster.request(
        "GET", f"/apis/coordination.k8s.io/v1/namespaces/{kube_namespace}/leases/kubezt-watch"
    )
    assert status == 200
    assert lease["spec"]["leaseTransitions"] == 2


def _until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_only_the_leader_reports(
    kube_cluster: TestCluster, kube_namespace: str, session: Session, watching: Any
) -> None:
    from kubezt.live.watch import LeaseElector

    def factory(identity: str) -> Callable[[Callable[[bool], None]], LeaseElector]:
        return lambda on_change: LeaseElector(
            session, kube_namespace, "kubezt-watch", identity, on_change,
            duration=3.0, renew_deadline=2.0, retry=0.3,
        )  # fmt: skip

    leader = watching(elector_factory=factory("leader"), identity="leader")
    _until(lambda: leader.runner.leading)
    follower = watching(elector_factory=factory("follower"), identity="follower")
    _steps(leader, kube_cluster, kube_namespace, 0, 1)
    assert follower.collect(_in(kube_namespace), 0) == []
    leader.close()
    follower.next(lambda r: r["type"] == "leader" and r["leading"], timeout=10)
    _do(kube_cluster, SEQUENCE["steps"][2], kube_namespace)
    got = follower.collect(_in(kube_namespace), 1)
    assert [(r["change"], r["src"]) for r in got] == [("allowed", f"{kube_namespace}/a")]


def test_print_manifests_are_accepted_by_the_api_server(
    kube_cluster: TestCluster, kube_env: dict[str, str]
) -> None:
    namespace = "kubezt-watch-dry-run"
    done = subprocess.run(
        [sys.executable, "-m", "kubezt", "watch", "--print-manifests", "--policy", "-n", namespace],
        capture_output=True, text=True, env=kube_env, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    docs = [d for d in yaml.safe_load_all(done.stdout) if d]
    kinds = [d["kind"] for d in docs]
    for kind in ("Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role",
                 "RoleBinding", "Deployment", "Service", "GlobalNetworkPolicy",
                 "AuthorizationPolicy"):  # fmt: skip
        assert kind in kinds
    kube_cluster.create_namespace(namespace)  # a dry run cannot create what it then fills
    try:
        applied = subprocess.run(
            ["kubectl", "apply", "--dry-run=server", "-f", "-"],
            input=done.stdout, capture_output=True, text=True, env=kube_env, check=False,
        )  # fmt: skip
        assert applied.returncode == 0, applied.stderr
        assert applied.stdout.count("(server dry run)") == len(docs)
    finally:
        kube_cluster.delete_namespace(namespace)


def test_command_prints_json_lines_and_stops_at_timeout(
    kube_cluster: TestCluster, kube_namespace: str, kube_env: dict[str, str]
) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "kubezt", "watch", "-o", "json", "--timeout", "25"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=kube_env,
    )  # fmt: skip
    assert proc.stdout is not None
    first = json.loads(proc.stdout.readline())
    assert (first["schemaVersion"], first["type"]) == ("kubezt.io/watch/v1", "synced")
    _do(kube_cluster, SEQUENCE["steps"][0], kube_namespace)
    lines = [json.loads(proc.stdout.readline()) for _ in range(2)]
    _do(kube_cluster, SEQUENCE["steps"][1], kube_namespace)
    lines += [json.loads(line) for line in proc.stdout]
    assert proc.wait(60) == 0, proc.stderr.read() if proc.stderr else ""
    mine = [r for r in lines if _in(kube_namespace)(r)]
    assert [(r["type"], r.get("change")) for r in mine] == [
        ("workload-added", None),
        ("workload-added", None),
        ("change", "denied"),
        ("change", "denied"),
    ]


def test_fail_on_allowed_exits_1_at_the_first_opening(
    kube_cluster: TestCluster, kube_namespace: str, kube_env: dict[str, str]
) -> None:
    for step in SEQUENCE["steps"][:2]:
        _do(kube_cluster, step, kube_namespace)
    proc = subprocess.Popen(
        [sys.executable, "-m", "kubezt", "watch", "--fail-on", "allowed", "--timeout", "60"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=kube_env,
    )  # fmt: skip
    assert proc.stdout is not None
    assert "SYNCED" in proc.stdout.readline()
    _do(kube_cluster, SEQUENCE["steps"][2], kube_namespace)
    assert proc.wait(60) == 1
    rest = proc.stdout.read()
    assert f"ALLOWED          {kube_namespace}/a → {kube_namespace}/b 80/TCP" in rest
    assert f"by NetworkPolicy {kube_namespace}/b-from-a (created by bob)" in rest


def test_an_object_kubezt_cannot_read_makes_verdicts_unknown_until_fixed(
    kube_cluster: TestCluster, kube_namespace: str, watching: Any
) -> None:
    w = watching()
    _steps(w, kube_cluster, kube_namespace, 0)
    broken = {
        "apiVersion": "projectcalico.org/v3",
        "kind": "NetworkPolicy",
        "metadata": {"name": "broken", "namespace": kube_namespace},
        "spec": {"selector": "app ==", "types": ["Ingress"]},
    }
    kube_cluster.apply(broken)
    unknown = w.next(lambda r: r["type"] == "unknown")
    assert unknown["resource"] == "objects"
    assert f"NetworkPolicy {kube_namespace}/broken" in unknown["reason"], unknown
    assert "error E" in unknown["reason"]
    fixed = copy.deepcopy(broken)
    fixed["spec"]["selector"] = "app == 'b'"
    kube_cluster.apply(fixed)
    got = w.collect(_in(kube_namespace), 1)
    assert [(r["change"], r["src"], r["dst"]) for r in got] == [
        ("denied", f"{kube_namespace}/a", f"{kube_namespace}/b")
    ]


def test_watch_runs_with_exactly_the_printed_roles(
    kube_cluster: TestCluster, kube_namespace: str, watching: Any
) -> None:
    """The ClusterRole and Lease Role of --print-manifests, bound to a user with no other
    rights, are enough to list and watch everything (the mesh ConfigMap by name), hold the
    Lease and record Events."""
    from kubezt.live.deploy import watch_manifests
    from kubezt.live.watch import LeaseElector

    docs = watch_manifests(kube_namespace, "unused")
    roles = [d for d in docs if d["kind"] in ("ClusterRole", "Role")]
    user = [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "restricted"}]
    bindings = []
    for d in docs:
        if d["kind"] in ("ClusterRoleBinding", "RoleBinding"):
            bindings.append({**d, "subjects": user})
    for obj in roles + bindings:
        kube_cluster.apply(obj)
    try:
        restricted = connect(
            Target(kubeconfig=str(kube_cluster.kubeconfig), context="kubezt-restricted")
        )

        def elector(on_change: Callable[[bool], None]) -> LeaseElector:
            return LeaseElector(restricted, kube_namespace, "kubezt-watch", "restricted",
                                on_change, retry=0.3)  # fmt: skip

        w = Watching(restricted, events=True, elector_factory=elector, identity="restricted")
        try:
            w.next(lambda r: r["type"] == "synced")
            _until(lambda: w.runner.leading)
            _steps(w, kube_cluster, kube_namespace, 0, 1, 2)
            events = _wait_for_events(kube_cluster, kube_namespace, "b-from-a")
            assert [e["reason"] for e in events] == ["ConnectionAllowed"]
        finally:
            w.close()
    finally:
        for obj in bindings + roles:
            kube_cluster.delete(obj)
