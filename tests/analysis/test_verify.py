"""`verify` finds every difference between a cluster and an intent: hand-made over-permissive
changes to compiled output (at L3/L4 and per HTTP request), granted flows a change blocks,
workloads running under the wrong identity, and plaintext exceptions from outside the mesh.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

import kubezt
from explainkit import universe
from intentkit import EXAMPLE, workload_objects
from kubezt.analysis.verify import DifferenceKind, VerifyResult, verify
from kubezt.cli.main import app
from kubezt.dialects.intent import load_intent, parse_intent_data
from kubezt.generate import compile_intent
from kubezt.ir.intent import Intent, Mode
from outsidekit import outside_expected, outside_reported

INTENT = load_intent(str(EXAMPLE))


def _write(path: Path, objects: list[dict[str, Any]]) -> Path:
    path.write_text(yaml.safe_dump_all(objects, sort_keys=False), "utf-8")
    return path


def _compiled(intent: Intent, mode: Mode) -> list[dict[str, Any]]:
    return list(compile_intent(intent, mode=mode).objects())


def _verify(
    tmp_path: Path, objects: list[dict[str, Any]], mode: Mode, intent: Intent = INTENT
) -> VerifyResult:
    manifests = _write(tmp_path / "manifests.yaml", objects)
    workloads = _write(tmp_path / "workloads.yaml", workload_objects(intent, replicas=2))
    return verify(intent, kubezt.load([str(manifests), str(workloads)]).model, mode)


def _outside_oracle(tmp_path: Path, mode: Mode, intent: Intent) -> set[Any]:
    """What the brute-force oracle (`outsidekit`) says the last `_verify` must report about
    addresses outside the cluster."""
    files = [str(tmp_path / "manifests.yaml"), str(tmp_path / "workloads.yaml")]
    model = kubezt.load(files).model
    config = dataclasses.replace(
        model.mesh_config, root_namespace=intent.root_namespace, trust_domain=intent.trust_domain
    )
    model = dataclasses.replace(model, mesh_config=config)
    return outside_expected(dataclasses.replace(intent, mode=mode), model, universe(model))


def _find(objects: list[dict[str, Any]], kind: str, namespace: str, name: str) -> dict[str, Any]:
    for obj in objects:
        meta = obj["metadata"]
        if obj["kind"] == kind and meta.get("namespace") == namespace and meta["name"] == name:
            return obj
    raise KeyError((kind, namespace, name))


@pytest.mark.parametrize("mode", list(Mode), ids=lambda m: m.value)
def test_compiled_example_matches(tmp_path: Path, mode: Mode) -> None:
    result = _verify(tmp_path, _compiled(INTENT, mode), mode)
    assert result.ok, [str(d) for d in result.differences]


def test_opening_both_layers_by_hand_is_reported(tmp_path: Path) -> None:
    """Someone lets every pod reach the database: an allow-all Kubernetes NetworkPolicy (order
    1000, before the default deny) and an ALLOW for every principal of the mesh."""
    objects = _compiled(INTENT, Mode.SIDECAR)
    objects.append(
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "database-debug", "namespace": "shop"},
            "spec": {"podSelector": {"matchLabels": {"app": "database"}}, "ingress": [{}]},
        }
    )
    objects.append(
        {
            "apiVersion": "security.istio.io/v1",
            "kind": "AuthorizationPolicy",
            "metadata": {"name": "database-debug", "namespace": "shop"},
            "spec": {
                "selector": {"matchLabels": {"app": "database"}},
                "rules": [{"from": [{"source": {"principals": ["*"]}}]}],
            },
        }
    )
    result = _verify(tmp_path, objects, Mode.SIDECAR)
    extra = {
        (d.src, d.dst, f"{d.port_label}/{d.protocol}")
        for d in result.differences
        if d.kind is DifferenceKind.NOT_GRANTED
    }
    # The ingress gateway's egress is not the intent's to restrict: it now reaches the database
    # on every port (any principal is allowed). The sidecar captures TCP only, so on UDP and
    # SCTP neither STRICT mTLS nor the authorization applies: the platform pods and the outside
    # reach the database there too. The in-scope workloads' own egress stays closed.
    gateway = "istio-system/ingress-gateway"
    every_port = ("2379/TCP", "8080/TCP", "53/TCP", "15008/TCP", "15012/TCP", "other/TCP")
    not_captured = ("53/UDP", "other/UDP", "other/SCTP")
    sources = (gateway, "istio-system/istiod", "kube-system/coredns")
    sources += ("external:0.0.0.0/0", "external:::/0")
    # The proxy's own ports (15020 status, 15021 readiness, 15090 stats) are never captured:
    # with L3/L4 open, every source reaches them in plaintext.
    proxy_ports = ("15020/TCP", "15021/TCP", "15090/TCP")
    assert extra == {(gateway, "shop/database", p) for p in every_port} | {
        (s, "shop/database", p) for s in sources for p in (*not_captured, *proxy_ports)
    }
    assert all(d.kind is DifferenceKind.NOT_GRANTED for d in result.differences)


@pytest.mark.parametrize("mode", list(Mode), ids=lambda m: m.value)
def test_dropping_an_http_restriction_is_reported_per_request(tmp_path: Path, mode: Mode) -> None:
    objects = _compiled(INTENT, mode)
    name = "summary-waypoint" if mode is Mode.AMBIENT else "summary"
    policy = _find(objects, "AuthorizationPolicy", "shop", name)
    for rule in policy["spec"]["rules"]:
        for to in rule["to"]:
            to["operation"].pop("methods", None)
    result = _verify(tmp_path, objects, mode)
    (diff,) = result.differences
    assert diff.kind is DifferenceKind.NOT_GRANTED
    assert (diff.src, diff.dst, diff.port) == ("shop/customer", "shop/summary", 8080)
    assert diff.requests is not None
    methods = {r.method for r in diff.requests}
    assert "POST" in methods and "GET" not in methods
    assert all(r.path.startswith("/api/") for r in diff.requests)


def test_removing_an_allow_rule_is_reported_as_blocked(tmp_path: Path) -> None:
    objects = _compiled(INTENT, Mode.AMBIENT)
    objects = [o for o in objects if o["metadata"]["name"] != "default.database"]
    result = _verify(tmp_path, objects, Mode.AMBIENT)
    blocked = [d for d in result.differences if d.kind is DifferenceKind.BLOCKED]
    assert [(d.src, d.dst, d.port, d.entry, d.denied_by) for d in blocked] == [
        ("shop/summary", "shop/database", 2379, "calls/summary-to-database", "calico")
    ]


def test_a_workload_on_the_wrong_service_account_is_reported(tmp_path: Path) -> None:
    objects = _compiled(INTENT, Mode.SIDECAR)
    workloads = workload_objects(INTENT)
    for w in workloads:
        if w["kind"] == "Deployment" and w["metadata"]["name"] == "customer":
            w["spec"]["template"]["spec"]["serviceAccountName"] = "default"
    manifests = _write(tmp_path / "m.yaml", objects)
    loaded = kubezt.load([str(manifests), str(_write(tmp_path / "w.yaml", workloads))])
    result = verify(INTENT, loaded.model)
    kinds = {(d.kind, d.src, d.dst) for d in result.differences}
    assert (DifferenceKind.IDENTITY, "shop/customer", "shop/customer") in kinds
    # callers address it by ServiceAccount: web's egress rule no longer matches it
    assert (DifferenceKind.BLOCKED, "storefront/web", "shop/customer") in kinds


EXCEPTION_INTENT: dict[str, Any] = {
    "apiVersion": "kubezt.io/v1alpha1",
    "kind": "ZeroTrustIntent",
    "metadata": {"name": "hooks"},
    "spec": {
        "mesh": {"mode": "sidecar"},
        "namespaces": ["apps"],
        "services": [{"name": "hook", "namespace": "apps", "ports": [{"port": 8443}]}],
        "egress": [
            {
                "from": {"serviceAccount": "hook", "namespace": "apps"},
                "to": {"cidrs": ["192.0.2.0/24"]},
                "ports": [443],
            }
        ],
        "exceptions": [
            {
                "name": "apiserver",
                "reason": "admission webhook called by the API server",
                "to": "apps/hook",
                "ports": [8443],
                "from": {"cidrs": ["10.0.0.0/24"]},
            }
        ],
    },
}


@pytest.mark.parametrize("mode", list(Mode), ids=lambda m: m.value)
def test_plaintext_exception_needs_its_permissive_port(tmp_path: Path, mode: Mode) -> None:
    intent = parse_intent_data(EXCEPTION_INTENT)
    objects = _compiled(intent, mode)
    assert _verify(tmp_path, objects, mode, intent).ok
    objects = [
        o for o in objects if not (o["kind"] == "PeerAuthentication" and "selector" in o["spec"])
    ]
    result = _verify(tmp_path, objects, mode, intent)
    assert [(d.kind, d.src, d.dst, d.port, d.denied_by) for d in result.differences] == [
        (DifferenceKind.BLOCKED, "external:10.0.0.0/24", "apps/hook", 8443, "peer-authentication")
    ]
    assert outside_reported(result) == _outside_oracle(tmp_path, mode, intent)


def test_egress_outside_the_granted_cidrs_is_reported(tmp_path: Path) -> None:
    intent = parse_intent_data(EXCEPTION_INTENT)
    objects = _compiled(intent, Mode.SIDECAR)
    policy = _find(objects, "NetworkPolicy", "apps", "default.hook")
    for rule in policy["spec"]["egress"]:
        rule["destination"]["nets"] = ["0.0.0.0/0"]
    result = _verify(tmp_path, objects, Mode.SIDECAR, intent)
    # every outside cell but the granted 192.0.2.0/24 (the exception's CIDR is a cell too);
    # the IPv6 cell stays closed: 0.0.0.0/0 holds no IPv6 address
    assert [(d.kind, d.src, d.dst, d.port) for d in result.differences] == [
        (DifferenceKind.NOT_GRANTED, "apps/hook", "external:0.0.0.0/0", 443),
        (DifferenceKind.NOT_GRANTED, "apps/hook", "external:10.0.0.0/24", 443),
    ]
    assert outside_reported(result) == _outside_oracle(tmp_path, Mode.SIDECAR, intent)


UDP_INTENT: dict[str, Any] = {
    "apiVersion": "kubezt.io/v1alpha1",
    "kind": "ZeroTrustIntent",
    "metadata": {"name": "udp"},
    "spec": {
        "mesh": {"mode": "sidecar"},
        "namespaces": ["apps"],
        "services": [
            {"name": "syslog", "namespace": "apps", "ports": [{"port": 514, "protocol": "UDP"}]},
            {"name": "app", "namespace": "apps"},
        ],
        "calls": [{"from": {"serviceAccount": "app"}, "to": "apps/syslog"}],
    },
}


@pytest.mark.parametrize("mode", list(Mode), ids=lambda m: m.value)
def test_udp_grant_is_allowed(tmp_path: Path, mode: Mode) -> None:
    intent = parse_intent_data(UDP_INTENT)
    result = _verify(tmp_path, _compiled(intent, mode), mode, intent)
    assert result.ok, [str(d) for d in result.differences]


def test_cli_verify_json_and_exit_codes(tmp_path: Path) -> None:
    out = tmp_path / "out"
    runner = CliRunner()
    assert runner.invoke(app, ["compile", str(EXAMPLE), "-o", str(out)]).exit_code == 0
    _write(out / "workloads.yaml", workload_objects(INTENT))
    ok = runner.invoke(app, ["verify", str(EXAMPLE), str(out), "-o", "json"])
    assert ok.exit_code == 0, ok.output
    doc = json.loads(ok.stdout)
    assert doc["schemaVersion"] == "kubezt.io/verify/v1"
    assert doc["ok"] is True and doc["differences"] == [] and doc["checked"] > 0
    (out / "90-default-deny.yaml").unlink()
    (out / "80-authorization-default-deny.yaml").unlink()
    bad = runner.invoke(app, ["verify", str(EXAMPLE), str(out), "-o", "yaml"])
    assert bad.exit_code == 1
    doc = yaml.safe_load(bad.stdout)
    assert doc["ok"] is False
    assert {d["kind"] for d in doc["differences"]} == {"allowed-not-granted"}
    table = runner.invoke(app, ["verify", str(EXAMPLE), str(out)])
    assert table.exit_code == 1
    assert "differs from the intent in" in table.stdout
