"""Sidecar injection and traffic capture, from the case tables in tests/cases/mesh (each names
the upstream source it was derived from)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from kubezt.engine import capture
from kubezt.engine.mesh import sidecar_injected
from kubezt.ir.topology import Labels, Namespace, Workload
from kubezt.report.steps import message_text

CASES = Path(__file__).parent.parent / "cases" / "mesh"


def _cases(name: str) -> list[dict[str, Any]]:
    return yaml.safe_load((CASES / name).read_text())["cases"]


def _workload(case: dict[str, Any]) -> Workload:
    return Workload(
        namespace=case.get("namespace_name", "app"),
        name="w",
        kind="Pod",
        labels=Labels(case.get("labels", {})),
        annotations=Labels(case.get("annotations", {})),
        host_network=case.get("host_network", False),
    )


@pytest.mark.parametrize("case", _cases("injection.yaml"), ids=lambda c: c["name"])
def test_injection_follows_the_webhooks(case: dict[str, Any]) -> None:
    w = _workload(case)
    ns = Namespace(w.namespace, Labels(case["namespace"]))
    assert sidecar_injected(w, ns) is case["injected"], case["why"]


@pytest.mark.parametrize("case", _cases("capture.yaml"), ids=lambda c: c["name"])
def test_capture_annotations(case: dict[str, Any]) -> None:
    w = _workload(case)
    if case["direction"] == "inbound":
        result = capture.inbound(w, case["port"])
    elif case["direction"] == "outbound":
        result = capture.outbound(w, case["port"], case["ip"])
    else:
        result = capture.ztunnel_inbound(w)
    assert result.captured is case["captured"]
    assert result.captured or (result.why is not None and message_text(result.why))


# --- capture to an address the input does not give (capture-unknown-address.yaml) -----------

_UNKNOWN = yaml.safe_load((CASES / "capture-unknown-address.yaml").read_text())["cases"]
_POLICIES = {
    "deny-sleep": ("DENY", "cluster.local/ns/foo/sa/sleep"),
    "allow-other": ("ALLOW", "cluster.local/ns/foo/sa/other"),
}


def _unknown_address_objects(case: dict[str, Any]) -> list[dict[str, Any]]:
    """The case's cluster: client `sleep` (in foo, or in the ambient namespace bar), server
    `httpbin` (a Pod with an address, or a Deployment without) behind Service foo/httpbin."""
    client_ns = "bar" if case.get("client_ambient") else "foo"
    objects: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "Namespace",
         "metadata": {"name": "foo", "labels": {"istio-injection": "enabled"}}},
        {"apiVersion": "v1", "kind": "Namespace",
         "metadata": {"name": "bar", "labels": {"istio.io/dataplane-mode": "ambient"}}},
        {"apiVersion": "v1", "kind": "Pod",
         "metadata": {"name": "sleep", "namespace": client_ns, "labels": {"app": "sleep"},
                      "annotations": case["annotations"]},
         "spec": {"serviceAccountName": "sleep", "containers": [{"name": "c", "image": "curl"}]},
         "status": {"podIP": "10.244.0.7"}},
        {"apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication",
         "metadata": {"name": "default", "namespace": "foo"},
         "spec": {"mtls": {"mode": case["mtls"]}}},
    ]  # fmt: skip
    pod_spec = {
        "serviceAccountName": "httpbin",
        "containers": [{"name": "c", "image": "httpbin", "ports": [{"containerPort": 8080}]}],
    }
    if case.get("deployment"):
        objects.append(
            {"apiVersion": "apps/v1", "kind": "Deployment",
             "metadata": {"name": "httpbin", "namespace": "foo"},
             "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "httpbin"}},
                      "template": {"metadata": {"labels": {"app": "httpbin"}}, "spec": pod_spec}}}
        )  # fmt: skip
    else:
        objects.append(
            {"apiVersion": "v1", "kind": "Pod",
             "metadata": {"name": "httpbin", "namespace": "foo", "labels": {"app": "httpbin"}},
             "spec": pod_spec, "status": {"podIP": "10.244.1.5"}}
        )  # fmt: skip
    service: dict[str, Any] = {
        "selector": {"app": "httpbin"},
        "ports": [{"name": "http", "port": 8000, "targetPort": 8080}],
    }
    if "cluster_ip" in case:
        service["clusterIP"] = case["cluster_ip"]
    objects.append(
        {"apiVersion": "v1", "kind": "Service",
         "metadata": {"name": "httpbin", "namespace": "foo"}, "spec": service}
    )  # fmt: skip
    if case.get("policy"):
        action, who = _POLICIES[case["policy"]]
        objects.append(
            {"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
             "metadata": {"name": case["policy"], "namespace": "foo"},
             "spec": {"selector": {"matchLabels": {"app": "httpbin"}}, "action": action,
                      "rules": [{"from": [{"source": {"principals": [who]}}]}]}}
        )  # fmt: skip
    return objects


@pytest.mark.parametrize("case", _UNKNOWN, ids=lambda c: c["name"])
def test_capture_to_an_unknown_address_is_decided_both_ways(
    case: dict[str, Any], tmp_path: Path
) -> None:
    import kubezt
    from casekit import load_objects
    from kubezt.engine.diagnose import model_warnings
    from kubezt.ir.ports import Protocol
    from kubezt.ir.requests import ServiceAddress
    from kubezt.report.steps import step_text
    from kubezt.report.warnings import model_diagnostics

    loaded = load_objects(tmp_path, _unknown_address_objects(case))
    model = loaded.model
    client_id = ("bar" if case.get("client_ambient") else "foo") + "/sleep"
    client = model.topology.workload(client_id)
    server = model.topology.workload("foo/httpbin")
    assert client is not None and server is not None
    src = kubezt.End(kubezt.EndKind.WORKLOAD, workload=client)
    dst = kubezt.End(kubezt.EndKind.WORKLOAD, workload=server)
    for request in case["requests"]:
        service = ServiceAddress("foo", "httpbin", 8000) if request["via"] == "service" else None
        verdict = kubezt.explain_connection(model, src, dst, 8080, service=service)
        about = f"{case['name']} via {request['via']}: {case['why']}\n{verdict.steps}"
        assert verdict.verdict == request["expect"], about
        denied_by = verdict.denied_by.value if verdict.denied_by else None
        assert denied_by == request.get("denied_by"), about
        unknown = [s for s in verdict.steps if s.reason == "capture-unknown"]
        if "ways" in request:
            [step] = unknown
            ways = ["allow" if step.param(k) else "deny" for k in ("captured", "not_captured")]
            assert ways == request["ways"], about
            text = step_text(step)
            given = (
                "the spec.clusterIP of Service foo/httpbin"
                if request["via"] == "service"
                else "the status.podIP of foo/httpbin"
            )
            assert given in text and "allowed when either is" in text, text
        else:
            assert not unknown, about
    reach = kubezt.evaluate(model, 8080, Protocol.TCP)
    listed = any(c.src == client_id and c.dst == "foo/httpbin" for c in reach.connections())
    assert listed is (case["reach"] == "allow"), case["why"]
    warnings = model_diagnostics(model_warnings(model))
    found = [w for w in warnings if w.code in ("W063", "W064")]
    assert [w.code for w in found] == case["warnings"]
    for w in found:
        assert client_id in w.message, w.message
        if w.code == "W063":
            assert w.obj == "Service foo/httpbin"
            assert w.location is not None and w.location.line > 0
            assert "spec.clusterIP" in w.message
        else:
            assert "foo/httpbin" in w.message and "status.podIP" in w.message


_RANGES = ("10.96.0.0/12", "10.96.0.0/13", "10.0.0.0/8", "0.0.0.0/0", "::/0", "fd00::/8", "*")


def _boundary_addresses(texts: list[str]) -> set[str]:
    """Every CIDR's first and last address and their neighbours, and each family's ends: an
    address in every cell the CIDRs cut (a brute-force stand-in for "any address")."""
    import ipaddress

    nets = [ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0")]
    for text in texts:
        nets += [ipaddress.ip_network(t) for t in text.split(",") if t and t != "*"]
    out: set[str] = set()
    for net in nets:
        top = 2**net.max_prefixlen - 1
        for value in (int(net.network_address), int(net.broadcast_address)):
            for near in (value - 1, value, value + 1):
                if 0 <= near <= top:
                    out.add(str(ipaddress.ip_address(near) if net.version == 4 else
                                ipaddress.IPv6Address(near)))  # fmt: skip
    return out


@settings(max_examples=300, deadline=None)
@given(
    exclude=st.none() | st.lists(st.sampled_from(_RANGES), max_size=2).map(",".join),
    include=st.none() | st.lists(st.sampled_from(_RANGES), max_size=2).map(",".join),
    include_ports=st.none() | st.sampled_from(("80", "443", "80,443")),
    exclude_ports=st.none() | st.sampled_from(("80", "8080")),
)
def test_outbound_capture_to_an_unknown_address_is_what_some_address_gets(
    exclude: str | None, include: str | None, include_ports: str | None, exclude_ports: str | None
) -> None:
    """`outbound` without an address answers what every address answers, or None when two
    addresses (of either family) answer differently; `address_dependent` names the ranges
    exactly when some port's answer is None."""
    annotations = {
        capture.EXCLUDE_OUTBOUND_RANGES: exclude,
        capture.INCLUDE_OUTBOUND_RANGES: include,
        capture.INCLUDE_OUTBOUND_PORTS: include_ports,
        capture.EXCLUDE_OUTBOUND_PORTS: exclude_ports,
    }
    w = _workload({"annotations": {k: v for k, v in annotations.items() if v is not None}})
    addresses = _boundary_addresses([t for t in (exclude, include) if t])
    dependent = False
    for port in (80, 443, 8080, 9000):
        outcomes = {capture.outbound(w, port, ip).captured for ip in addresses}
        expected = outcomes.pop() if len(outcomes) == 1 else None
        assert capture.outbound(w, port, None).captured is expected, (port, outcomes)
        dependent |= expected is None
    assert bool(capture.address_dependent(w)) is dependent
