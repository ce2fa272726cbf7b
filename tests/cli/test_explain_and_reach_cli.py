"""`kubezt explain` and `kubezt reach` as a user runs them (a subprocess of `python -m kubezt`):
request options, exit codes, the JSON documents, mesh overrides, and the documented facts of
the bundled example (examples/shop)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

SHOP = Path(__file__).resolve().parents[2] / "examples" / "shop"
LAYERS = {
    "k8s-netpol",
    "calico",
    "cluster-netpol",
    "peer-authentication",
    "tls-mismatch",
    "authz-sidecar",
    "ztunnel",
    "waypoint",
    "calico-alp",
    "dataplane",
}
EFFECTS = {"allow", "deny", "continue", "info"}


def kubezt(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kubezt", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def manifest(tmp_path: Path, text: str, name: str = "input.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def line_of(text: str, needle: str) -> int:
    """1-based line of the first line of `text` (as written by `manifest`) containing `needle`."""
    lines = textwrap.dedent(text).lstrip("\n").splitlines()
    return next(i for i, line in enumerate(lines, 1) if needle in line)


def explain_json(*args: str | Path) -> tuple[int, dict[str, Any]]:
    result = kubezt("explain", *args, "-o", "json")
    assert result.returncode in (0, 1), result.stderr
    return result.returncode, json.loads(result.stdout)


def reach_json(*args: str | Path) -> dict[str, Any]:
    result = kubezt("reach", *args, "-o", "json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


# A sidecar namespace whose API accepts only GET /api/* for host api.example.com with the header
# x-team: blue (HTTP Service port), and an ambient namespace with a service waypoint.
HTTP_POLICY = """
apiVersion: v1
kind: Namespace
metadata: {name: web, labels: {istio-injection: enabled}}
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: web, labels: {app: client}}
spec: {serviceAccountName: client, containers: [{name: c, image: curl}]}
---
apiVersion: v1
kind: Pod
metadata: {name: api, namespace: web, labels: {app: api}}
spec: {serviceAccountName: api, containers: [{name: c, image: x, ports: [{containerPort: 8080}]}]}
---
apiVersion: v1
kind: Service
metadata: {name: api, namespace: web}
spec: {selector: {app: api}, ports: [{name: http, port: 80, targetPort: 8080}]}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: api, namespace: web}
spec:
  selector: {matchLabels: {app: api}}
  rules:
  - to: [{operation: {methods: [GET], paths: ["/api/*"], hosts: ["api.example.com"]}}]
    when: [{key: "request.headers[x-team]", values: [blue]}]
---
apiVersion: v1
kind: Namespace
metadata: {name: amb, labels: {istio.io/dataplane-mode: ambient}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: waypoint, namespace: amb}
spec:
  gatewayClassName: istio-waypoint
  listeners: [{name: mesh, port: 15008, protocol: HBONE}]
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: amb, labels: {app: client}}
spec: {serviceAccountName: client, containers: [{name: c, image: curl}]}
---
apiVersion: v1
kind: Pod
metadata: {name: shop, namespace: amb, labels: {app: shop}}
spec: {serviceAccountName: shop, containers: [{name: c, image: x, ports: [{containerPort: 8080}]}]}
---
apiVersion: v1
kind: Service
metadata: {name: shop, namespace: amb, labels: {istio.io/use-waypoint: waypoint}}
spec: {selector: {app: shop}, ports: [{name: http, port: 80, targetPort: 8080}]}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: shop-no-delete, namespace: amb}
spec:
  targetRefs: [{kind: Service, group: "", name: shop}]
  action: DENY
  rules: [{to: [{operation: {methods: [DELETE]}}]}]
"""

GOOD = ("--method", "GET", "--path", "/api/items", "--host", "api.example.com")


@pytest.fixture
def http_manifest(tmp_path: Path) -> Path:
    return manifest(tmp_path, HTTP_POLICY)


# --- explain: request options and exit codes ---------------------------------------------------


def test_explain_http_request_allowed_exits_0(http_manifest) -> None:
    code, doc = explain_json(
        "web/client", "web/api", http_manifest, "--port", "8080", *GOOD, "--header", "x-team=blue"
    )
    assert code == 0
    assert doc["verdict"] == "allow" and "denied_by" not in doc
    matched = [s for s in doc["steps"] if s["reason"] == "allow-policy-matched"]
    assert matched and matched[0]["layer"] == "authz-sidecar"
    assert matched[0]["object"] == "AuthorizationPolicy web/api"
    opening = line_of(HTTP_POLICY, "kind: AuthorizationPolicy") - 1  # its apiVersion line
    assert matched[0]["location"] == f"{http_manifest}:{opening}:1"


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(("--method", "POST"), id="method"),
        pytest.param(("--path", "/admin"), id="path"),
        pytest.param(("--host", "other.example.com"), id="host"),
        pytest.param(("--header", "x-team=red"), id="header"),
    ],
)
def test_explain_each_http_attribute_can_deny(http_manifest, change) -> None:
    """Each of --method/--path/--host/--header reaches the policy: changing it alone denies."""
    args = dict(zip(GOOD[::2], GOOD[1::2], strict=True))
    args["--header"] = "x-team=blue"
    args[change[0]] = change[1]
    flat = [item for pair in args.items() for item in pair]
    code, doc = explain_json("web/client", "web/api", http_manifest, "--port", "8080", *flat)
    assert code == 1
    assert doc["verdict"] == "deny" and doc["denied_by"] == "authz-sidecar"
    assert doc["steps"][-1]["effect"] == "deny"
    assert doc["steps"][-1]["reason"] == "no-allow-rule-matched"


def test_explain_header_names_are_case_insensitive(http_manifest) -> None:
    code, _ = explain_json(
        "web/client", "web/api", http_manifest, "--port", "8080", *GOOD, "--header", "X-Team=blue"
    )
    assert code == 0


def test_explain_service_routes_through_the_waypoint(http_manifest) -> None:
    args = ("amb/client", "amb/shop", http_manifest, "--port", "8080", "--method", "DELETE")
    code, doc = explain_json(*args, "--service", "amb/shop:80")
    assert code == 1
    assert doc["denied_by"] == "waypoint"
    assert any(s["layer"] == "waypoint" and s["effect"] == "deny" for s in doc["steps"])
    code, doc = explain_json(*args)
    assert code == 0, "addressed by pod IP a service waypoint is not used"
    assert not any(s["layer"] == "waypoint" for s in doc["steps"])


def test_explain_table_output_and_exit_codes(http_manifest) -> None:
    allowed = kubezt("explain", "amb/client", "amb/shop", http_manifest, "--port", "8080")
    assert allowed.returncode == 0
    assert "ALLOW" in allowed.stdout
    denied = kubezt("explain", "web/client", "web/api", http_manifest, "--port", "8080")
    assert denied.returncode == 1
    assert "DENY" in denied.stdout and "denied by authz-sidecar" in denied.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(("web/nobody", "web/api", "--port", "8080"), "no workload", id="unknown-src"),
        pytest.param(("web/client", "node", "--port", "8080"), "only be a source", id="node-dst"),
        pytest.param(("external:999.1.1.1", "web/api", "--port", "80"), "external", id="bad-ip"),
        pytest.param(
            ("web/client", "web/api", "--port", "8080", "--service", "api:80"),
            "namespace/name:port",
            id="bad-service",
        ),
        pytest.param(
            ("web/client", "web/api", "--port", "8080", "--service", "web/apii:80"),
            "did you mean 'web/api'?",
            id="unknown-service",
        ),
        pytest.param(
            ("web/client", "web/api", "--port", "8080", "--service", "web/api:81"),
            "has no port 81",
            id="unknown-service-port",
        ),
        pytest.param(
            ("web/client", "web/api", "--port", "8080", "--header", "x-team"),
            "NAME=VALUE",
            id="bad-header",
        ),
        pytest.param(("web/client", "web/api"), "--port", id="missing-port"),
        pytest.param(("web/client", "web/api", "--port", "0"), "--port", id="port-range"),
    ],
)
def test_explain_usage_errors_exit_2(http_manifest, args, message) -> None:
    src, dst, *rest = args
    result = kubezt("explain", src, dst, http_manifest, *rest)
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr
    assert result.stdout == ""


def test_invalid_manifest_exits_2_with_file_and_line(tmp_path) -> None:
    text = """
        apiVersion: security.istio.io/v1
        kind: AuthorizationPolicy
        metadata: {name: broken, namespace: web}
        spec:
          action: DENY
          rules:
          - to: []
        """
    path = manifest(tmp_path, text)
    for command in (("explain", "a/b", "c/d", path, "--port", "80"), ("reach", path)):
        result = kubezt(*command)
        assert result.returncode == 2
        assert f"{path}:{line_of(text, '- to: []')}:5: error E048" in result.stderr
        assert "E048" in result.stderr and "AuthorizationPolicy web/broken" in result.stderr
        assert "nothing was evaluated" in result.stderr
        assert result.stdout == ""


# --- explain -o json ----------------------------------------------------------------------------


def test_explain_json_document_shape() -> None:
    code, doc = explain_json("storefront/web", "shop/customer", SHOP, "--port", "8080")
    assert code == 1
    assert doc["schemaVersion"] == "kubezt.io/explain/v1"
    assert (doc["src"], doc["dst"], doc["port"], doc["protocol"]) == (
        "storefront/web",
        "shop/customer",
        8080,
        "TCP",
    )
    assert doc["verdict"] == "deny"
    assert doc["denied_by"] == "peer-authentication"
    assert isinstance(doc["warnings"], list)
    assert doc["steps"], "an explanation lists its steps"
    for step in doc["steps"]:
        assert {"layer", "reason", "effect", "detail"} <= set(step)
        assert step["layer"] in LAYERS and step["effect"] in EFFECTS
        assert step["reason"] and step["reason"] == step["reason"].lower()
    last = doc["steps"][-1]
    assert (last["layer"], last["reason"], last["effect"]) == (
        "peer-authentication",
        "strict-rejects-plaintext",
        "deny",
    )
    assert last["object"] == "PeerAuthentication istio-system/default"
    assert last["location"].endswith("40-platform.yaml:52:1")
    layers = [s["layer"] for s in doc["steps"]]
    assert layers.index("k8s-netpol") < layers.index("calico") < layers.index("peer-authentication")


@pytest.mark.parametrize(
    ("src", "dst", "port", "verdict", "denied_by"),
    [
        ("shop/customer", "shop/summary", 8080, "allow", None),
        ("shop/summary", "shop/database", 2379, "allow", None),
        ("shop/customer", "shop/database", 2379, "deny", "calico"),
        ("default/sleep", "default/httpbin", 8080, "allow", None),
        ("default/notsleep", "default/httpbin", 8080, "deny", "ztunnel"),
        ("storefront/web", "shop/summary", 8080, "deny", "k8s-netpol"),
    ],
)
def test_explain_shop_verdicts_name_the_layer(src, dst, port, verdict, denied_by) -> None:
    code, doc = explain_json(src, dst, SHOP, "--port", str(port))
    assert code == (0 if verdict == "allow" else 1)
    assert doc["verdict"] == verdict
    assert doc.get("denied_by") == denied_by


def test_explain_yaml_output_is_the_same_document(http_manifest) -> None:
    import yaml

    result = kubezt(
        "explain", "amb/client", "amb/shop", http_manifest, "--port", "8080", "-o", "yaml"
    )
    assert result.returncode == 0
    doc = yaml.safe_load(result.stdout)
    assert doc["verdict"] == "allow" and doc["schemaVersion"] == "kubezt.io/explain/v1"


# --- mesh overrides -----------------------------------------------------------------------------

OVERRIDES = """
apiVersion: v1
kind: Namespace
metadata: {name: side, labels: {istio-injection: enabled}}
---
apiVersion: v1
kind: Namespace
metadata: {name: amb, labels: {istio.io/dataplane-mode: ambient}}
---
apiVersion: v1
kind: Namespace
metadata: {name: mesh-root}
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: side}
spec: {serviceAccountName: client, containers: [{name: c, image: curl}]}
---
apiVersion: v1
kind: Pod
metadata: {name: by-alias, namespace: side, labels: {app: by-alias}}
spec:
  serviceAccountName: by-alias
  containers: [{name: c, image: x, ports: [{containerPort: 8080}]}]
---
apiVersion: v1
kind: Pod
metadata: {name: open, namespace: side, labels: {app: open}}
spec: {serviceAccountName: open, containers: [{name: c, image: x, ports: [{containerPort: 8080}]}]}
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: amb}
spec: {serviceAccountName: client, containers: [{name: c, image: curl}]}
---
apiVersion: v1
kind: Pod
metadata: {name: by-cluster-local, namespace: amb, labels: {app: by-cluster-local}}
spec:
  serviceAccountName: by-cluster-local
  containers: [{name: c, image: x, ports: [{containerPort: 8080}]}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: by-alias, namespace: side}
spec:
  selector: {matchLabels: {app: by-alias}}
  rules: [{from: [{source: {principals: ["old-td/ns/side/sa/client"]}}]}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: by-cluster-local, namespace: amb}
spec:
  selector: {matchLabels: {app: by-cluster-local}}
  rules: [{from: [{source: {principals: ["cluster.local/ns/amb/sa/client"]}}]}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-side, namespace: mesh-root}
spec:
  action: DENY
  rules: [{from: [{source: {namespaces: ["side"]}}]}]
"""


@pytest.fixture
def overrides_manifest(tmp_path: Path) -> Path:
    return manifest(tmp_path, OVERRIDES)


def test_trust_domain_alias_override_changes_the_verdict(overrides_manifest) -> None:
    args = ("side/client", "side/by-alias", overrides_manifest, "--port", "8080")
    assert kubezt("explain", *args).returncode == 1, "old-td is foreign by default"
    with_alias = kubezt(
        "explain", *args, "--trust-domain", "new-td", "--trust-domain-alias", "old-td"
    )
    assert with_alias.returncode == 0, with_alias.stdout
    only_domain = kubezt("explain", *args, "--trust-domain", "old-td")
    assert only_domain.returncode == 0, "the policy names the mesh's own trust domain"


def test_trust_domain_override_changes_an_ambient_verdict(overrides_manifest) -> None:
    args = ("amb/client", "amb/by-cluster-local", overrides_manifest, "--port", "8080")
    assert kubezt("explain", *args).returncode == 0
    code, doc = explain_json(*args, "--trust-domain", "corp.example")
    assert code == 1, "ztunnel compares cluster.local/... literally with corp.example/..."
    assert doc["denied_by"] == "ztunnel"


def test_root_namespace_override_changes_the_verdict(overrides_manifest) -> None:
    args = ("side/client", "side/open", overrides_manifest, "--port", "8080")
    assert kubezt("explain", *args).returncode == 0, "mesh-root is an ordinary namespace"
    code, doc = explain_json(*args, "--root-namespace", "mesh-root")
    assert code == 1
    assert doc["denied_by"] == "authz-sidecar"
    assert any(s.get("object") == "AuthorizationPolicy mesh-root/deny-side" for s in doc["steps"])


def test_overrides_apply_to_reach_too(overrides_manifest) -> None:
    def pairs(*extra: str) -> set[tuple[str, str]]:
        doc = reach_json(overrides_manifest, "--port", "8080", *extra)
        return {(a["src"], a["dst"]) for a in doc["allowed"]}

    assert ("side/client", "side/open") in pairs()
    assert ("side/client", "side/open") not in pairs("--root-namespace", "mesh-root")
    assert ("side/client", "side/by-alias") not in pairs()
    assert ("side/client", "side/by-alias") in pairs(
        "--trust-domain", "new-td", "--trust-domain-alias", "old-td"
    )


# --- reach -o json ------------------------------------------------------------------------------


def test_reach_json_shape_and_partial_http_requests(http_manifest) -> None:
    doc = reach_json(http_manifest)
    assert doc["schemaVersion"] == "kubezt.io/reach/v1"
    assert doc["workloads"] == sorted(doc["workloads"])
    assert {"web/client", "web/api", "amb/client", "amb/shop"} <= set(doc["workloads"])
    assert isinstance(doc["warnings"], list)
    rows = {(a["src"], a["dst"], a["port"], a["protocol"]): a for a in doc["allowed"]}
    for row in doc["allowed"]:
        # a cell of several ports: "port" names it (`other`, `8000-8080`), "ports" lists them
        several = isinstance(row["port"], str)
        keys = {"src", "dst", "port", "protocol", "requests"} | ({"ports"} if several else set())
        assert set(row) == keys
        assert row["requests"] == "all" or isinstance(row["requests"], list)
    assert any(row["port"] == "other" for row in doc["allowed"])
    assert isinstance(doc["outside"], list)
    partial = rows[("web/client", "web/api", 8080, "TCP")]["requests"]
    assert isinstance(partial, list) and partial
    for request in partial:
        assert request["method"] == "GET"
        assert request["path"].startswith("/api/")
        assert request["host"] == "api.example.com"
        assert request["headers"] == {"x-team": "blue"}
    assert rows[("web/api", "web/api", 8080, "TCP")]["requests"] == "all"


def test_reach_lists_the_waypoint_restricted_requests(http_manifest) -> None:
    """Through the Service the waypoint denies DELETE; by pod IP nothing does: at least one
    route lets every request through, so the pair is reported with all requests."""
    doc = reach_json(http_manifest)
    (row,) = [
        a
        for a in doc["allowed"]
        if (a["src"], a["dst"], a["port"]) == ("amb/client", "amb/shop", 8080)
    ]
    assert row["requests"] == "all"


def test_reach_port_option_limits_the_rows(http_manifest) -> None:
    doc = reach_json(http_manifest, "--port", "9999")
    assert all(a["port"] == 9999 for a in doc["allowed"])


# --- the bundled example ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shop() -> dict[tuple[str, int], set[str]]:
    """(destination, port) → sources allowed, other than the destination itself."""
    doc = reach_json(SHOP)
    out: dict[tuple[str, int], set[str]] = {}
    for row in doc["allowed"]:
        if row["src"] != row["dst"]:
            out.setdefault((row["dst"], row["port"]), set()).add(row["src"])
    return out


def test_shop_only_customer_reaches_summary(shop) -> None:
    assert shop[("shop/summary", 8080)] == {"shop/customer"}


def test_shop_only_summary_reaches_the_database(shop) -> None:
    assert shop[("shop/database", 2379)] == {"shop/summary"}


def test_shop_only_sleep_reaches_httpbin(shop) -> None:
    assert "default/sleep" in shop[("default/httpbin", 8080)]
    assert "default/notsleep" not in shop[("default/httpbin", 8080)]


def test_shop_storefront_reaches_nothing_in_shop(shop) -> None:
    """web may send to shop/customer (NetworkPolicy and Calico allow it), but the mesh-wide
    STRICT PeerAuthentication refuses its plaintext."""
    reached = {dst for (dst, _), srcs in shop.items() if "storefront/web" in srcs}
    assert not {d for d in reached if d.startswith("shop/")}
    code, doc = explain_json("storefront/web", "shop/customer", SHOP, "--port", "8080")
    assert (code, doc["denied_by"]) == (1, "peer-authentication")


def test_shop_reach_table_output(shop) -> None:
    result = kubezt("reach", SHOP)
    assert result.returncode == 0
    assert "8080/TCP" in result.stdout and "2379/TCP" in result.stdout
    assert "shop/customer" in result.stdout
