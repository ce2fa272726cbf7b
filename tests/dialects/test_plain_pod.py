"""Pods written the way well-formed Pods are are read without cursors (`workloads._plain_pod`).
The property: on random Pods, valid or not in any of the fields the reader looks at, the result
(workloads and every diagnostic) is the one the cursor readers give."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kubezt.dialects import workloads
from kubezt.dialects._yaml import Document
from kubezt.dialects.registry import load_parsed
from kubezt.errors import InputError
from kubezt.ir.provenance import Source

odd: st.SearchStrategy[Any] = st.one_of(
    st.none(), st.booleans(), st.integers(-2, 70000), st.floats(0, 2), st.just([])
)
label_text = st.sampled_from(
    ["app", "web", "a/b", "x.io/tier", "v1", "app", "web", "tier", "-bad", "", "a" * 64]
)
ips = st.sampled_from(
    ["10.0.0.1", "10.0.0.2", "192.168.1.255", "10.0.0.1", "10.9.8.7", "010.0.0.1", "256.1.1.1"]
).flatmap(lambda ip: st.sampled_from([ip] * 9 + ["fd00::1", "", "x"]))


def maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly well-formed, sometimes (1 in 12) a value of another type."""
    return st.integers(0, 11).flatmap(lambda i: odd if i == 0 else strategy)


@st.composite
def ports(draw: st.DrawFn) -> Any:
    port: dict[Any, Any] = {"containerPort": draw(maybe(st.sampled_from([80, 8080, 9090, 80, 0])))}
    if draw(st.booleans()):
        port["protocol"] = draw(maybe(st.sampled_from(["TCP", "UDP", "SCTP", "tcp", ""])))
    if draw(st.booleans()):
        names = ["http", "metrics", "grpc", "http", "metrics", "Bad_Name", ""]
        port["name"] = draw(maybe(st.sampled_from(names)))
    if draw(st.integers(0, 30)) == 0:
        port[1] = "x"
    return port


@st.composite
def pods(draw: st.DrawFn) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "p", "namespace": "ns"}
    if draw(st.booleans()):
        meta["labels"] = draw(maybe(st.dictionaries(label_text, maybe(label_text), max_size=3)))
    if draw(st.booleans()):
        meta["annotations"] = draw(maybe(st.dictionaries(label_text, maybe(label_text))))
    containers = [
        {"name": "c", "ports": draw(maybe(st.lists(maybe(ports()), max_size=3)))}
        if draw(st.booleans())
        else draw(maybe(st.fixed_dictionaries({"name": st.just("c")})))
        for _ in range(draw(st.integers(0, 2)))
    ]
    spec: dict[str, Any] = {"containers": draw(maybe(st.just(containers)))}
    for key, strategy in (
        ("initContainers", st.just(containers[:1])),
        ("serviceAccountName", st.sampled_from(["api", ""])),
        ("serviceAccount", st.sampled_from(["legacy", ""])),
        ("hostNetwork", st.booleans()),
    ):
        if draw(st.booleans()):
            spec[key] = draw(maybe(strategy))
    pod: dict[str, Any] = {"apiVersion": "v1", "kind": "Pod", "metadata": meta}
    if draw(st.integers(0, 10)):
        pod["spec"] = draw(maybe(st.just(spec)))
    if draw(st.booleans()):
        status: dict[str, Any] = {}
        if draw(st.booleans()):
            status["podIP"] = draw(maybe(ips))
        if draw(st.booleans()):
            status["podIPs"] = draw(maybe(st.lists(maybe(st.fixed_dictionaries({"ip": ips})))))
        pod["status"] = draw(maybe(st.just(status)))
    return pod


def read(pod: dict[str, Any]) -> tuple[object, ...]:
    doc = Document(pod, "pods.yaml", 1, None)
    try:
        result = load_parsed([doc], ["pods.yaml"])
    except InputError as exc:
        return ("error", tuple(str(d) for d in exc.diagnostics))
    workload = result.model.topology.workloads
    return (workload, tuple(str(d) for d in result.diagnostics))


@settings(max_examples=300, deadline=None)
@given(pod=pods())
def test_plain_pods_read_as_the_cursor_readers_read_them(pod: dict[str, Any]) -> None:
    fast = read(pod)
    with pytest.MonkeyPatch.context() as m:
        m.setattr(workloads, "_plain_pod", lambda data, src: None)
        slow = read(pod)
    assert fast == slow


def test_the_plain_path_reads_a_well_formed_pod() -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": "ns", "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "c", "ports": [{"containerPort": 80, "name": "http"}]}]},
        "status": {"podIP": "10.0.0.1", "podIPs": [{"ip": "10.0.0.1"}]},
    }
    workload = workloads._plain_pod(pod, Source("Pod", "p", "ns"))
    assert workload is not None
    assert dict(workload.labels) == {"app": "web"}
    assert (workload.ips, [p.name for p in workload.ports]) == (("10.0.0.1",), ["http"])
