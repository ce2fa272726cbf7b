"""What `compile` emits is accepted by `kubectl apply -f` as is: every object has an apiVersion
and kind upstream serves, only fields the upstream types declare (tests/generate/
upstream_fields.yaml), a valid name (DNS label; `<tier>.<name>` for tiered Calico policies),
a namespace exactly when the kind is namespaced, valid labels, and the provenance annotation.
The output is deterministic, and kubezt's own loader reads it without a warning.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

import kubezt
from intentkit import EXAMPLE
from kubezt.dialects._labels import is_dns_label, is_label_key, is_label_value
from kubezt.dialects.intent import load_intent, parse_intent_data
from kubezt.errors import UnsupportedError
from kubezt.generate import compile_intent
from kubezt.generate.plan import ENTRY_ANNOTATION, INTENT_LABEL, SHARED_KINDS
from kubezt.ir.intent import Mode

FIELDS = yaml.safe_load((Path(__file__).parent / "upstream_fields.yaml").read_text("utf-8"))
DEFS: dict[str, Any] = FIELDS["defs"]
KINDS: dict[str, Any] = FIELDS["kinds"]
NOT_READ_BY_KUBEZT = {
    "ServiceEntry",
    "ClusterSPIFFEID",
    "Installation",
    "APIServer",
    "IstioOperator",
}


def _check(value: Any, node: Any, path: str, problems: list[str]) -> None:
    if isinstance(node, str) and node.startswith("$"):
        node = DEFS[node[1:]]
    if node == "any":
        return
    if isinstance(node, list):
        if not isinstance(value, list):
            problems.append(f"{path}: expected a list, got {value!r}")
            return
        for i, item in enumerate(value):
            _check(item, node[0], f"{path}[{i}]", problems)
        return
    if isinstance(node, dict):
        if not isinstance(value, dict):
            problems.append(f"{path}: expected an object, got {value!r}")
            return
        for key, item in value.items():
            if list(node) == ["*"]:
                _check(item, node["*"], f"{path}.{key}", problems)
            elif key not in node:
                problems.append(f"{path}.{key}: not a field of the upstream type")
            else:
                _check(item, node[key], f"{path}.{key}", problems)
        return
    if node.startswith("enum:"):
        if value not in node.removeprefix("enum:").split("|"):
            problems.append(f"{path}: {value!r} is not one of {node}")
        return
    kinds = {"str": str, "int": int, "num": (int, float), "bool": bool}
    if not isinstance(value, kinds[node]) or (node != "bool" and isinstance(value, bool)):
        problems.append(f"{path}: expected {node}, got {value!r}")


def check_object(obj: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    key = f"{obj.get('apiVersion')}/{obj.get('kind')}"
    spec = KINDS.get(key)
    if spec is None:
        return [f"{key}: not a kind the generator may emit"]
    meta = obj.get("metadata", {})
    where = f"{obj['kind']} {meta.get('namespace', '')}/{meta.get('name')}"
    top = {"apiVersion": "str", "kind": "str", "metadata": "$metadata", **spec["fields"]}
    _check(obj, top, where, problems)
    name = meta.get("name", "")
    if spec.get("tiered"):
        tier, dot, rest = name.partition(".")
        if not dot or tier != obj["spec"]["tier"] or not is_dns_label(rest):
            problems.append(f"{where}: expected a name <tier>.<DNS label> for tier {tier!r}")
    elif not is_dns_label(name):
        problems.append(f"{where}: the name is not a DNS label")
    if spec["namespaced"] != ("namespace" in meta):
        problems.append(f"{where}: namespace given for the wrong scope")
    if "namespace" in meta and not is_dns_label(meta["namespace"]):
        problems.append(f"{where}: the namespace is not a DNS label")
    for k in {**meta.get("labels", {}), **meta.get("annotations", {})}:
        if not is_label_key(k):
            problems.append(f"{where}: bad key {k!r}")
    for v in meta.get("labels", {}).values():
        if not is_label_value(v):
            problems.append(f"{where}: bad label value {v!r}")
    if ENTRY_ANNOTATION not in meta.get("annotations", {}):
        problems.append(f"{where}: no {ENTRY_ANNOTATION} annotation")
    shared = obj["kind"] in SHARED_KINDS or (
        obj["kind"] == "PeerAuthentication" and "selector" not in obj["spec"]
    )
    if shared == (INTENT_LABEL in meta.get("labels", {})):
        problems.append(f"{where}: the intent label must be on exactly the unshared objects")
    return problems


RICH_INTENT: dict[str, Any] = {
    "apiVersion": "kubezt.io/v1alpha1",
    "kind": "ZeroTrustIntent",
    "metadata": {"name": "rich"},
    "spec": {
        "mesh": {"mode": "sidecar", "trustDomain": "example.org"},
        "namespaces": ["apps", "edge"],
        "services": [
            {
                "name": "api",
                "namespace": "apps",
                "ports": [
                    {"port": 8080, "name": "http", "appProtocol": "http"},
                    {"port": 9090, "name": "metrics", "metrics": True},
                    {"port": 5353, "protocol": "UDP"},
                ],
            },
            {
                "name": "front",
                "namespace": "edge",
                "ports": [{"port": 8443, "appProtocol": "http2"}],
            },
            {"name": "job", "namespace": "apps"},
        ],
        "calls": [
            {
                "name": "front-reads",
                "from": {"serviceAccount": "front", "namespace": "edge"},
                "to": "apps/api",
                "ports": [8080],
                "http": {"methods": ["GET"], "paths": ["/v1/*"], "hosts": ["api.apps"]},
            },
            {"from": {"serviceAccount": "job"}, "to": "apps/api", "ports": [5353]},
        ],
        "ingress": {"allow": [{"to": "edge/front", "http": {"paths": ["/shop/*"]}}]},
        "egress": [
            {
                "name": "payments",
                "from": {"serviceAccount": "api", "namespace": "apps"},
                "to": {"cidrs": ["192.0.2.0/24", "2001:db8::/64"], "hosts": ["pay.example.com"]},
                "ports": [443],
            },
            {
                "from": {"serviceAccount": "job", "namespace": "apps"},
                "to": {"hosts": ["mirror.example.com"]},
                "ports": [443],
            },
        ],
        "platform": {
            "metrics": {"from": {"serviceAccount": "prometheus", "namespace": "monitoring"}},
            "kubeApiServer": {"from": [{"serviceAccount": "job", "namespace": "apps"}]},
        },
        "exceptions": [
            {
                "name": "webhook",
                "reason": "the API server calls the admission webhook",
                "to": "apps/api",
                "ports": [8080],
                "from": {"cidrs": ["10.0.0.0/24"]},
            }
        ],
    },
}


def _everything(mode: Mode) -> list[dict[str, Any]]:
    intent = parse_intent_data(RICH_INTENT)
    compiled = compile_intent(intent, mode=mode, spire=True, platform=True, on_unsupported="warn")
    return list(compiled.objects())


@pytest.mark.parametrize("mode", list(Mode), ids=lambda m: m.value)
def test_every_object_has_upstream_fields_names_and_scope(mode: Mode) -> None:
    objects = _everything(mode)
    kinds = {o["kind"] for o in objects}
    assert {"ServiceAccount", "Namespace", "Tier", "GlobalNetworkPolicy", "NetworkPolicy"} <= kinds
    assert {"PeerAuthentication", "AuthorizationPolicy", "ClusterSPIFFEID", "ServiceEntry"} <= kinds
    problems = [p for obj in objects for p in check_object(obj)]
    assert not problems, "\n".join(problems)
    ids = [(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]) for o in objects]
    assert len(ids) == len(set(ids)), "two objects share kind, namespace and name"


def test_the_checker_catches_a_misspelt_field() -> None:
    obj = {
        "apiVersion": "security.istio.io/v1",
        "kind": "AuthorizationPolicy",
        "metadata": {
            "name": "x",
            "namespace": "a",
            "labels": {INTENT_LABEL: "i"},
            "annotations": {ENTRY_ANNOTATION: "e"},
        },
        "spec": {"rules": [{"to": [{"operation": {"method": ["GET"]}}]}]},
    }
    assert check_object(obj) == [
        "AuthorizationPolicy a/x.spec.rules[0].to[0].operation.method: not a field of the "
        "upstream type"
    ]


@pytest.mark.parametrize("mode", list(Mode), ids=lambda m: m.value)
def test_output_is_deterministic(mode: Mode) -> None:
    first = yaml.safe_dump_all(_everything(mode), sort_keys=False)
    assert first == yaml.safe_dump_all(_everything(mode), sort_keys=False)


@pytest.mark.parametrize("mode", list(Mode), ids=lambda m: m.value)
def test_kubezt_reads_the_output_without_warnings(tmp_path: Path, mode: Mode) -> None:
    path = tmp_path / "out.yaml"
    path.write_text(yaml.safe_dump_all(_everything(mode)), "utf-8")
    result = kubezt.load([str(path)])
    assert not result.warnings, [w.render() for w in result.warnings]
    skipped = {line.split()[2] for line in result.skipped}
    assert skipped <= NOT_READ_BY_KUBEZT, result.skipped


def test_names_only_egress_is_unsupported_unless_warned() -> None:
    intent = parse_intent_data(RICH_INTENT)
    with pytest.raises(UnsupportedError, match="Calico OSS cannot match DNS names"):
        compile_intent(intent)
    compiled = compile_intent(intent, on_unsupported="warn")
    assert any("mirror.example.com" in w for w in compiled.warnings)
    # an entry with CIDRs and names is enforced by its CIDRs and is not reported
    assert not any("pay.example.com" in w for w in compiled.warnings)


def test_spire_in_ambient_is_unsupported_unless_warned() -> None:
    intent = load_intent(str(EXAMPLE))
    with pytest.raises(UnsupportedError, match="SPIRE"):
        compile_intent(intent, mode=Mode.AMBIENT, spire=True)
    assert compile_intent(intent, mode=Mode.SIDECAR, spire=True).warnings == ()


def test_mode_specific_objects() -> None:
    intent = load_intent(str(EXAMPLE))
    sidecar = list(compile_intent(intent, mode=Mode.SIDECAR).objects())
    ambient = list(compile_intent(intent, mode=Mode.AMBIENT).objects())
    ns_labels = {
        o["metadata"]["name"]: o["metadata"]["labels"] for o in sidecar if o["kind"] == "Namespace"
    }
    assert all(v == {"istio-injection": "enabled"} for v in ns_labels.values())
    assert any(o["kind"] == "FelixConfiguration" for o in sidecar)
    assert not any(o["kind"] == "Gateway" for o in sidecar)
    assert not any("targetRefs" in o.get("spec", {}) for o in sidecar)
    gateways = [o for o in ambient if o["kind"] == "Gateway"]
    # a waypoint only where HTTP rules exist (customer → summary GET /api/* in shop)
    assert [(g["metadata"]["namespace"], g["spec"]["gatewayClassName"]) for g in gateways] == [
        ("shop", "istio-waypoint")
    ]
    ambient_ns = {
        o["metadata"]["name"]: o["metadata"]["labels"] for o in ambient if o["kind"] == "Namespace"
    }
    assert ambient_ns["shop"] == {
        "istio.io/dataplane-mode": "ambient",
        "istio.io/use-waypoint": "waypoint",
    }
    assert ambient_ns["default"] == {"istio.io/dataplane-mode": "ambient"}
    # L7 only in waypoint policies (targetRefs); selector policies at ztunnel stay L4
    for o in ambient:
        if o["kind"] != "AuthorizationPolicy":
            continue
        ops = [op for r in o["spec"].get("rules", []) for t in r.get("to", []) for op in t.values()]
        has_l7 = any({"methods", "paths", "hosts"} & set(op) for op in ops)
        assert not has_l7 or "targetRefs" in o["spec"], o["metadata"]["name"]
