"""Reading Istio resources: every field lands in the mesh IR, Istio's admission validation
(semantics.md §4.9 and the readers' own checks) rejects bad objects with a located diagnostic,
the mesh ConfigMap sets the mesh configuration, and the model warnings about ambient L7 rules
(W060) and CUSTOM policies (W061) name the policy and where it was written."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

import kubezt
from kubezt.engine.diagnose import model_warnings
from kubezt.errors import Diagnostic, Severity
from kubezt.ir.mesh import (
    AuthorizationPolicy,
    AuthzAction,
    AuthzCondition,
    AuthzOperation,
    AuthzRule,
    AuthzSource,
    DestinationRule,
    MtlsMode,
    PeerAuthentication,
    TargetRef,
    TlsMode,
    Waypoint,
)
from kubezt.ir.topology import Labels
from kubezt.report.warnings import model_diagnostics

MARK = "# <-"


def write(tmp_path: Path, text: str, name: str = "input.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def load(tmp_path: Path, text: str) -> kubezt.LoadResult:
    return kubezt.load([str(write(tmp_path, text))])


def marked_line(text: str) -> int:
    """1-based line of the (single) line carrying the `# <-` marker."""
    lines = textwrap.dedent(text).lstrip("\n").splitlines()
    hits = [i + 1 for i, line in enumerate(lines) if MARK in line]
    assert len(hits) == 1, "a case marks exactly one line"
    return hits[0]


def errors(tmp_path: Path, text: str) -> tuple[Diagnostic, ...]:
    with pytest.raises(kubezt.InputError) as info:
        kubezt.load([str(write(tmp_path, text))])
    return info.value.diagnostics


# --- lowering --------------------------------------------------------------------------------

FULL_POLICY = """
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: everything
  namespace: shop
  annotations: {istio.io/dry-run: "true"}
spec:
  selector:
    matchLabels: {app: web, tier: front}
  action: DENY
  rules:
  - from:
    - source:
        principals: ["cluster.local/ns/a/sa/b", "*/sa/c"]
        notPrincipals: ["cluster.local/ns/x/*"]
        requestPrincipals: ["iss/sub"]
        notRequestPrincipals: ["*"]
        namespaces: ["a", "team-*"]
        notNamespaces: ["kube-system"]
        ipBlocks: ["10.0.0.0/8", "192.168.1.1"]
        notIpBlocks: ["10.1.0.0/16"]
        remoteIpBlocks: ["203.0.113.0/24"]
        notRemoteIpBlocks: ["203.0.113.7"]
        trustDomains: ["cluster.local"]
        notTrustDomains: ["evil.example"]
    - source:
        serviceAccounts: ["shop/web", "cart"]
        notServiceAccounts: ["shop/admin"]
    to:
    - operation:
        hosts: ["shop.example.com"]
        notHosts: ["admin.example.com"]
        ports: ["8080", "9090"]
        notPorts: ["15090"]
        methods: ["GET", "HEAD"]
        notMethods: ["DELETE"]
        paths: ["/api/*", "/users/{*}/profile"]
        notPaths: ["/api/internal*"]
    when:
    - key: request.headers[x-token]
      values: ["abc"]
    - key: source.ip
      notValues: ["10.9.9.9"]
    - key: request.auth.claims[groups][0]
      values: ["admins"]
  - {}
"""


def test_authorization_policy_fields_are_lowered(tmp_path) -> None:
    result = load(tmp_path, FULL_POLICY)
    (policy,) = result.model.mesh.authorization_policies
    expected = AuthorizationPolicy(
        name="everything",
        namespace="shop",
        action=AuthzAction.DENY,
        selector=Labels({"app": "web", "tier": "front"}),
        target_refs=(),
        rules=(
            AuthzRule(
                sources=(
                    AuthzSource(
                        principals=("cluster.local/ns/a/sa/b", "*/sa/c"),
                        not_principals=("cluster.local/ns/x/*",),
                        request_principals=("iss/sub",),
                        not_request_principals=("*",),
                        namespaces=("a", "team-*"),
                        not_namespaces=("kube-system",),
                        ip_blocks=("10.0.0.0/8", "192.168.1.1"),
                        not_ip_blocks=("10.1.0.0/16",),
                        remote_ip_blocks=("203.0.113.0/24",),
                        not_remote_ip_blocks=("203.0.113.7",),
                        trust_domains=("cluster.local",),
                        not_trust_domains=("evil.example",),
                    ),
                    AuthzSource(
                        service_accounts=("shop/web", "cart"),
                        not_service_accounts=("shop/admin",),
                    ),
                ),
                operations=(
                    AuthzOperation(
                        hosts=("shop.example.com",),
                        not_hosts=("admin.example.com",),
                        ports=("8080", "9090"),
                        not_ports=("15090",),
                        methods=("GET", "HEAD"),
                        not_methods=("DELETE",),
                        paths=("/api/*", "/users/{*}/profile"),
                        not_paths=("/api/internal*",),
                    ),
                ),
                conditions=(
                    AuthzCondition("request.headers[x-token]", ("abc",), None),
                    AuthzCondition("source.ip", None, ("10.9.9.9",)),
                    AuthzCondition("request.auth.claims[groups][0]", ("admins",), None),
                ),
                index=0,
            ),
            AuthzRule(sources=None, operations=None, conditions=(), index=1),
        ),
        provider="",
        dry_run=True,
    )
    assert policy == expected
    assert policy.ref == "AuthorizationPolicy shop/everything"
    assert policy.source is not None and policy.source.location is not None
    assert policy.source.location.line == 1
    assert policy.source.location.file.endswith("input.yaml")


def test_authorization_policy_defaults_and_absent_fields(tmp_path) -> None:
    result = load(
        tmp_path,
        """
        apiVersion: security.istio.io/v1beta1
        kind: AuthorizationPolicy
        metadata: {name: allow-nothing, namespace: shop}
        spec: {}
        ---
        apiVersion: security.istio.io/v1
        kind: AuthorizationPolicy
        metadata: {name: no-spec, namespace: shop}
        ---
        apiVersion: security.istio.io/v1
        kind: AuthorizationPolicy
        metadata: {name: explicit-false, namespace: shop, annotations: {istio.io/dry-run: "false"}}
        spec:
          rules:
          - from: [{source: {principals: ["*"]}}]
          - to: [{operation: {ports: ["80"]}}]
          - when: [{key: destination.port, values: ["80"]}]
        """,
    )
    by_name = {p.name: p for p in result.model.mesh.authorization_policies}
    for name in ("allow-nothing", "no-spec"):
        policy = by_name[name]
        assert policy.action is AuthzAction.ALLOW
        assert policy.rules == () and policy.selector is None and policy.target_refs == ()
        assert not policy.dry_run
    rules = by_name["explicit-false"].rules
    assert not by_name["explicit-false"].dry_run
    assert rules[0] == AuthzRule(sources=(AuthzSource(principals=("*",)),), index=0)
    assert rules[1] == AuthzRule(operations=(AuthzOperation(ports=("80",)),), index=1)
    assert rules[2] == AuthzRule(conditions=(AuthzCondition("destination.port", ("80",)),), index=2)


def test_target_refs_custom_provider_and_singular_target_ref(tmp_path) -> None:
    result = load(
        tmp_path,
        """
        apiVersion: security.istio.io/v1
        kind: AuthorizationPolicy
        metadata: {name: waypoint-policy, namespace: shop}
        spec:
          targetRefs:
          - {kind: Service, group: "", name: cart}
          - {kind: Gateway, group: gateway.networking.k8s.io, name: waypoint, namespace: shop}
          rules: [{}]
        ---
        apiVersion: security.istio.io/v1
        kind: AuthorizationPolicy
        metadata: {name: single-ref, namespace: istio-system}
        spec:
          targetRef: {kind: GatewayClass, group: gateway.networking.k8s.io, name: istio-waypoint}
          action: CUSTOM
          provider: {name: ext-authz}
          rules: [{to: [{operation: {paths: ["/admin*"]}}]}]
        """,
    )
    by_name = {p.name: p for p in result.model.mesh.authorization_policies}
    assert by_name["waypoint-policy"].target_refs == (
        TargetRef("Service", "cart", "", ""),
        TargetRef("Gateway", "waypoint", "gateway.networking.k8s.io", "shop"),
    )
    custom = by_name["single-ref"]
    assert custom.target_refs == (
        TargetRef("GatewayClass", "istio-waypoint", "gateway.networking.k8s.io", ""),
    )
    assert custom.action is AuthzAction.CUSTOM and custom.provider == "ext-authz"


def test_peer_authentication_fields_are_lowered(tmp_path) -> None:
    result = load(
        tmp_path,
        """
        apiVersion: security.istio.io/v1
        kind: PeerAuthentication
        metadata:
          name: default
          namespace: istio-system
          creationTimestamp: "2024-03-01T10:00:00Z"
        spec:
          mtls: {mode: STRICT}
        ---
        apiVersion: security.istio.io/v1beta1
        kind: PeerAuthentication
        metadata: {name: web, namespace: shop}
        spec:
          selector: {matchLabels: {app: web}}
          mtls: {mode: PERMISSIVE}
          portLevelMtls:
            9090: {mode: DISABLE}
            8080: {mode: STRICT}
            "8443": {}
        ---
        apiVersion: security.istio.io/v1
        kind: PeerAuthentication
        metadata: {name: inherit, namespace: shop}
        spec: {}
        """,
    )
    by_name = {p.name: p for p in result.model.mesh.peer_authentications}
    assert by_name["default"] == PeerAuthentication(
        "default", "istio-system", None, MtlsMode.STRICT, (), "2024-03-01T10:00:00Z"
    )
    assert by_name["web"] == PeerAuthentication(
        "web",
        "shop",
        Labels({"app": "web"}),
        MtlsMode.PERMISSIVE,
        ((8080, MtlsMode.STRICT), (8443, MtlsMode.UNSET), (9090, MtlsMode.DISABLE)),
        "",
    )
    assert by_name["inherit"].mode is MtlsMode.UNSET and by_name["inherit"].selector is None


def test_destination_rule_and_waypoint_fields_are_lowered(tmp_path) -> None:
    result = load(
        tmp_path,
        """
        apiVersion: networking.istio.io/v1
        kind: DestinationRule
        metadata: {name: cart, namespace: shop}
        spec:
          host: cart.shop.svc.cluster.local
          trafficPolicy:
            tls: {mode: ISTIO_MUTUAL}
            portLevelSettings:
            - port: {number: 80}
              tls: {mode: DISABLE}
            - port: {number: 443}
              tls: {mode: SIMPLE}
        ---
        apiVersion: networking.istio.io/v1beta1
        kind: DestinationRule
        metadata: {name: no-tls, namespace: shop}
        spec:
          host: "*.local"
          trafficPolicy: {loadBalancer: {simple: ROUND_ROBIN}}
        ---
        apiVersion: gateway.networking.k8s.io/v1
        kind: Gateway
        metadata: {name: waypoint, namespace: shop}
        spec:
          gatewayClassName: istio-waypoint
          listeners: [{name: mesh, port: 15008, protocol: HBONE}]
        ---
        apiVersion: gateway.networking.k8s.io/v1
        kind: Gateway
        metadata: {name: pods, namespace: shop, labels: {istio.io/waypoint-for: workload}}
        spec: {gatewayClassName: istio-waypoint}
        ---
        apiVersion: gateway.networking.k8s.io/v1
        kind: Gateway
        metadata: {name: ingress, namespace: shop}
        spec: {gatewayClassName: istio}
        """,
    )
    mesh = result.model.mesh
    by_name = {d.name: d for d in mesh.destination_rules}
    assert by_name["cart"] == DestinationRule(
        "cart",
        "shop",
        "cart.shop.svc.cluster.local",
        TlsMode.ISTIO_MUTUAL,
        ((80, TlsMode.DISABLE), (443, TlsMode.SIMPLE)),
    )
    assert by_name["no-tls"] == DestinationRule("no-tls", "shop", "*.local", None, ())
    assert set(mesh.waypoints) == {
        Waypoint("waypoint", "shop", "service"),
        Waypoint("pods", "shop", "workload"),
    }, "a Gateway of another class is not a waypoint"


def test_mesh_configmap_sets_root_namespace_trust_domain_and_aliases(tmp_path) -> None:
    result = load(
        tmp_path,
        """
        apiVersion: v1
        kind: ConfigMap
        metadata: {name: istio, namespace: istio-system}
        data:
          mesh: |-
            rootNamespace: mesh-root
            trustDomain: corp.example
            trustDomainAliases: [old.example, cluster.local]
            enableAutoMtls: false
        """,
    )
    config = result.model.mesh_config
    assert config.root_namespace == "mesh-root"
    assert config.trust_domain == "corp.example"
    assert config.trust_domain_aliases == ("old.example", "cluster.local")
    assert config.enable_auto_mtls is False


def test_mesh_configmap_defaults_root_namespace_to_its_own_namespace(tmp_path) -> None:
    result = load(
        tmp_path,
        """
        apiVersion: v1
        kind: ConfigMap
        metadata: {name: istio, namespace: istio-system}
        data:
          mesh: |-
            trustDomain: corp.example
        ---
        apiVersion: v1
        kind: ConfigMap
        metadata: {name: app-settings, namespace: shop}
        data:
          mesh: |-
            rootNamespace: shop
            trustDomain: wrong.example
        """,
    )
    config = result.model.mesh_config
    assert config.root_namespace == "istio-system"
    assert config.trust_domain == "corp.example"
    assert config.trust_domain_aliases == ()


def test_without_mesh_configmap_the_defaults_apply(tmp_path) -> None:
    config = load(
        tmp_path, "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n"
    ).model.mesh_config
    assert (config.root_namespace, config.trust_domain, config.trust_domain_aliases) == (
        "istio-system",
        "cluster.local",
        (),
    )
    assert config.enable_auto_mtls is True


def test_mesh_configmap_with_invalid_yaml_is_an_error(tmp_path) -> None:
    text = """
    apiVersion: v1
    kind: ConfigMap
    metadata: {name: istio, namespace: istio-system}
    data:
      mesh: "trustDomain: [unclosed"  # <-
    """
    (diag,) = errors(tmp_path, text)
    assert (diag.code, diag.path, diag.location.line) == ("E055", "data.mesh", marked_line(text))


# --- admission validation --------------------------------------------------------------------

AP = "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n"
PA = "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\n"

INVALID = [
    pytest.param(
        AP
        + """metadata: {name: p, namespace: shop}
spec:
  action: DENY
  rules: []  # <-
""",
        "E046",
        "spec.rules",
        "requires at least one rule",
        id="deny-with-empty-rules",
    ),
    pytest.param(
        AP
        + """metadata: {name: p, namespace: shop}
spec:
  action: CUSTOM
  provider: {name: opa}
  rules: []  # <-
""",
        "E046",
        "spec.rules",
        "CUSTOM requires at least one rule",
        id="custom-without-rules",
    ),
    pytest.param(
        AP
        + """metadata: {name: p, namespace: shop}
spec:
  action: CUSTOM
  rules: [{}]
  provider: {}  # <-
""",
        "E045",
        "spec.provider",
        "provider name",
        id="custom-without-provider-name",
    ),
    pytest.param(
        AP
        + """metadata: {name: p, namespace: shop}
spec:
  rules: [{}]
  provider: {name: opa}  # <-
""",
        "E045",
        "spec.provider",
        "only allowed with action CUSTOM",
        id="provider-on-allow",
    ),
    pytest.param(
        AP
        + """metadata: {name: p, namespace: shop}
spec:
  action: DENY
  rules:
  - from: []  # <-
""",
        "E048",
        "spec.rules[0].from",
        "empty from",
        id="empty-from",
    ),
    pytest.param(
        AP
        + """metadata: {name: p, namespace: shop}
spec:
  rules:
  - to: []  # <-
""",
        "E048",
        "spec.rules[0].to",
        "empty to",
        id="empty-to",
    ),
    pytest.param(
        AP
        + """metadata: {name: p, namespace: shop}
spec:
  rules:
  - from:
    - {}  # <-
""",
        "E048",
        "spec.rules[0].from[0]",
        "non-empty source",
        id="from-without-source",
    ),
    pytest.param(
        AP
        + """metadata: {name: p, namespace: shop}
spec:
  rules:
  - from:
    - source: {}  # <-
""",
        "E048",
        "spec.rules[0].from[0]",
        "non-empty source",
        id="from-with-empty-source",
    ),
    pytest.param(
        AP
        + """metadata: {name: p, namespace: shop}
spec:
  rules:
  - to:
    - operation: {}  # <-
""",
        "E048",
        "spec.rules[0].to[0]",
        "non-empty operation",
        id="empty-operation",
    ),
    pytest.param(
        AP
        + """metadata: {name: p, namespace: shop}
spec:
  rules:
  - from:
    - source:
        ipBlocks:
        - 10.0.0.0/8
        - 10.0.0.300  # <-
""",
        "E052",
        "spec.rules[0].from[0].source.ipBlocks[1]",
        "IP address or CIDR",
        id="bad-ip",
    ),
    pytest.param(
        AP
        + """metadata: {name: p, namespace: shop}
spec:
  action: DENY
  rules:
  - from:
    - source:
        notRemoteIpBlocks:
        - 192.168.0.0/33  # <-
""",
        "E052",
        "spec.rules[0].from[0].source.notRemoteIpBlocks[0]",
        "IP address or CIDR",
        id="bad-cidr",
    ),
    pytest.param(
        AP
        + """metadata: {name: p, namespace: shop}
spec:
  rules:
  - to:
    - operation:
        ports:
        - "8080"
        - http  # <-
""",
        "E050",
        "spec.rules[0].to[0].operation.ports[1]",
        "port number string",
        id="named-port-string",
    ),
    pytest.param(
        AP
        + """metadata: {name: p, namespace: shop}
spec:
  rules:
  - to:
    - operation:
        notPorts:
        - "70000"  # <-
""",
        "E050",
        "spec.rules[0].to[0].operation.notPorts[0]",
        "port number string",
        id="port-out-of-range",
    ),
    pytest.param(
        AP
        + """metadata: {name: p, namespace: shop}
spec:
  rules:
  - when:
    - key: request.header[x-token]  # <-
      values: ["a"]
""",
        "E051",
        "spec.rules[0].when[0].key",
        "supported condition key",
        id="unknown-when-key",
    ),
    pytest.param(
        AP
        + """metadata: {name: p, namespace: shop}
spec:
  rules:
  - when:
    - key: source.ip  # <-
""",
        "E051",
        "spec.rules[0].when[0]",
        "values or notValues",
        id="when-without-values",
    ),
    pytest.param(
        AP
        + """metadata: {name: p, namespace: shop}
spec:
  rules:
  - from:
    - source:  # <-
        serviceAccounts: ["shop/web"]
        principals: ["cluster.local/ns/shop/sa/web"]
""",
        "E049",
        "spec.rules[0].from[0].source",
        "serviceAccounts cannot be combined",
        id="service-accounts-with-principals",
    ),
    pytest.param(
        AP
        + """metadata: {name: p, namespace: shop}
spec:
  rules:
  - from:
    - source:  # <-
        namespaces: ["shop"]
        serviceAccounts: ["web"]
""",
        "E049",
        "spec.rules[0].from[0].source",
        "serviceAccounts cannot be combined",
        id="service-accounts-with-namespaces",
    ),
    pytest.param(
        AP
        + """metadata: {name: p, namespace: shop}
spec:
  selector: {matchLabels: {app: web}}
  targetRefs:  # <-
  - {kind: Service, group: "", name: web}
""",
        "E044",
        "spec.targetRefs",
        "selector and targetRefs",
        id="selector-and-target-refs",
    ),
    pytest.param(
        AP
        + """metadata: {name: p, namespace: shop}
spec:
  targetRefs:
  - kind: Service
    name: web
    namespace: other  # <-
""",
        "E047",
        "spec.targetRefs[0].namespace",
        "cross-namespace",
        id="cross-namespace-target-ref",
    ),
    pytest.param(
        AP
        + """metadata: {name: p, namespace: shop}
spec:
  action: REJECT  # <-
  rules: [{}]
""",
        "E043",
        "spec.action",
        "ALLOW, DENY, AUDIT, CUSTOM",
        id="unknown-action",
    ),
    pytest.param(
        AP
        + """metadata: {name: p, namespace: shop}
spec:
  rules:
  - from:
    - source:
        principal: ["x"]  # <-
""",
        "E012",
        "spec.rules[0].from[0].source.principal",
        "",
        id="unknown-source-field",
    ),
    pytest.param(
        PA
        + """metadata: {name: p, namespace: shop}
spec:
  mtls:
    mode: STRICTER  # <-
""",
        "E042",
        "spec.mtls.mode",
        "UNSET, DISABLE, PERMISSIVE, STRICT",
        id="bad-mtls-mode",
    ),
    pytest.param(
        PA
        + """metadata: {name: p, namespace: shop}
spec:
  selector: {matchLabels: {app: web}}
  portLevelMtls:
    8080:
      mode: strict  # <-
""",
        "E042",
        "spec.portLevelMtls.8080.mode",
        "UNSET, DISABLE, PERMISSIVE, STRICT",
        id="bad-port-level-mode",
    ),
    pytest.param(
        PA
        + """metadata: {name: p, namespace: shop}
spec:
  mtls: {mode: STRICT}
  portLevelMtls:  # <-
    8080: {mode: PERMISSIVE}
""",
        "E040",
        "spec.portLevelMtls",
        "non-empty workload selector",
        id="port-level-without-selector",
    ),
    pytest.param(
        PA
        + """metadata: {name: p, namespace: shop}
spec:
  selector: {matchLabels: {}}
  portLevelMtls:  # <-
    8080: {mode: PERMISSIVE}
""",
        "E040",
        "spec.portLevelMtls",
        "non-empty workload selector",
        id="port-level-with-empty-selector",
    ),
    pytest.param(
        PA
        + """metadata: {name: p, namespace: shop}
spec:
  selector: {matchLabels: {app: web}}
  portLevelMtls:
    http: {mode: PERMISSIVE}  # <-
""",
        "E041",
        "spec.portLevelMtls.http",
        "port number 1-65535",
        id="port-level-named-port",
    ),
    pytest.param(
        PA
        + """metadata: {name: p, namespace: shop}
spec:
  selector: {matchLabels: {app: web}}
  portLevelMtls:
    0: {mode: PERMISSIVE}  # <-
""",
        "E041",
        "spec.portLevelMtls.0",
        "port number 1-65535",
        id="port-level-port-zero",
    ),
    pytest.param(
        """apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: d, namespace: shop}
spec:
  host: web
  trafficPolicy:
    tls:
      mode: MUTUAL_ISTIO  # <-
""",
        "E053",
        "spec.trafficPolicy.tls.mode",
        "DISABLE, SIMPLE, MUTUAL, ISTIO_MUTUAL",
        id="bad-dr-tls-mode",
    ),
    pytest.param(
        """apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: d, namespace: shop}
spec:
  host: web
  trafficPolicy:
    portLevelSettings:
    - port: {number: 80}
      tls:
        mode: istio_mutual  # <-
""",
        "E053",
        "spec.trafficPolicy.portLevelSettings[0].tls.mode",
        "DISABLE, SIMPLE, MUTUAL, ISTIO_MUTUAL",
        id="bad-dr-port-tls-mode",
    ),
    pytest.param(
        """apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: waypoint
  namespace: shop
  labels:
    istio.io/waypoint-for: pods  # <-
spec: {gatewayClassName: istio-waypoint}
""",
        "E054",
        "metadata.labels.istio.io/waypoint-for",
        "service, workload, all, none",
        id="bad-waypoint-for",
    ),
]


@pytest.mark.parametrize(("text", "code", "path", "message"), INVALID)
def test_invalid_object_is_rejected_with_a_located_error(
    tmp_path, text: str, code: str, path: str, message: str
) -> None:
    diagnostics = errors(tmp_path, text)
    assert len(diagnostics) == 1, [d.render() for d in diagnostics]
    (diag,) = diagnostics
    assert diag.severity is Severity.ERROR
    assert diag.code == code, diag.render()
    assert diag.path == path, diag.render()
    assert message in diag.message, diag.render()
    assert diag.location is not None and diag.location.file.endswith("input.yaml")
    assert diag.location.line == marked_line(text), diag.render()
    kind = text.split("kind: ", 1)[1].split("\n", 1)[0]
    assert diag.obj.startswith(f"{kind} shop/"), diag.render()
    assert diag.render().startswith(f"{diag.location}: error {code}: {diag.obj}: {path}: ")


def test_deny_without_rules_points_at_the_policy(tmp_path) -> None:
    """With no `rules` key the error is about the missing field: it is located at the closest
    written parent (`spec:`) and the path names the missing field."""
    diagnostics = errors(
        tmp_path, AP + "metadata: {name: p, namespace: shop}\nspec:\n  action: DENY\n"
    )
    (diag,) = diagnostics
    assert (diag.code, diag.path, diag.obj) == ("E046", "spec.rules", "AuthorizationPolicy shop/p")
    assert "DENY requires at least one rule" in diag.message
    assert diag.location is not None and diag.location.line == 4  # the `spec:` line


def test_every_invalid_object_of_a_file_is_reported_in_file_order(tmp_path) -> None:
    docs = [p.values[0] for p in INVALID[:5]]
    text = "\n---\n".join(doc.replace("name: p,", f"name: p{i},") for i, doc in enumerate(docs))
    path = write(tmp_path, text)
    with pytest.raises(kubezt.InputError) as info:
        kubezt.load([str(path)])
    diagnostics = info.value.diagnostics
    assert [d.code for d in diagnostics] == [p.values[1] for p in INVALID[:5]]
    lines = [d.location.line for d in diagnostics]
    assert lines == sorted(lines)
    assert [d.obj for d in diagnostics] == [f"AuthorizationPolicy shop/p{i}" for i in range(5)]


def test_a_rejected_policy_is_not_half_applied(tmp_path) -> None:
    """An object with a validation error stops the load: nothing is evaluated from a partially
    read policy."""
    text = AP + "metadata: {name: p, namespace: shop}\nspec:\n  rules:\n  - to: []\n"
    with pytest.raises(kubezt.InputError):
        kubezt.load([str(write(tmp_path, text))])


# --- model warnings ----------------------------------------------------------------------------

WARNINGS_INPUT = """
apiVersion: v1
kind: Namespace
metadata: {name: amb, labels: {istio.io/dataplane-mode: ambient}}
---
apiVersion: v1
kind: Namespace
metadata: {name: side, labels: {istio-injection: enabled}}
---
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: amb, labels: {app: web}}
spec: {containers: [{name: c, image: x, ports: [{containerPort: 8080}]}]}
---
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: side, labels: {app: web}}
spec: {containers: [{name: c, image: x, ports: [{containerPort: 8080}]}]}
---
# ALLOW with an L7 rule on an ambient workload: W060
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: get-only, namespace: amb}
spec:
  selector: {matchLabels: {app: web}}
  rules: [{to: [{operation: {methods: [GET]}}]}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-post, namespace: amb}
spec:
  action: DENY
  rules: [{to: [{operation: {methods: [POST], ports: ["8080"]}}]}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: l4-only, namespace: amb}
spec:
  rules: [{from: [{source: {namespaces: [amb]}}], to: [{operation: {ports: ["8080"]}}]}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: waypoint-l7, namespace: amb}
spec:
  targetRefs: [{kind: Service, group: "", name: web}]
  rules: [{to: [{operation: {methods: [GET]}}]}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: sidecar-l7, namespace: side}
spec:
  rules: [{to: [{operation: {methods: [GET]}}]}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ext, namespace: side}
spec:
  action: CUSTOM
  provider: {name: opa}
  rules: [{to: [{operation: {paths: ["/admin*"]}}]}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ext-dry, namespace: side, annotations: {istio.io/dry-run: "true"}}
spec:
  action: CUSTOM
  provider: {name: opa}
  rules: [{}]
"""


def _line_of(text: str, needle: str) -> int:
    """The line of the `apiVersion:` that opens the document containing `needle`."""
    lines = textwrap.dedent(text).lstrip("\n").splitlines()
    hit = next(i for i, line in enumerate(lines) if needle in line)
    return max(i for i in range(hit + 1) if lines[i].startswith("apiVersion:")) + 1


def test_ambient_l7_and_custom_warnings_name_the_policy_and_its_location(tmp_path) -> None:
    path = write(tmp_path, WARNINGS_INPUT)
    result = kubezt.load([str(path)])
    warnings = model_diagnostics(model_warnings(result.model))
    by_obj = {(d.code, d.obj): d for d in warnings}
    assert set(by_obj) == {
        ("W060", "AuthorizationPolicy amb/get-only"),
        ("W060", "AuthorizationPolicy amb/deny-post"),
        ("W061", "AuthorizationPolicy side/ext"),
    }, [d.render() for d in warnings]
    for (code, obj), diag in by_obj.items():
        name = obj.rsplit("/", 1)[1]
        assert diag.severity is Severity.WARNING
        assert diag.location is not None
        assert diag.location.file == str(path)
        assert diag.location.line == _line_of(WARNINGS_INPUT, f"name: {name},")
        assert diag.render().startswith(f"{path}:{diag.location.line}:1: warning {code}: {obj}: ")
    assert "dropped" in by_obj[("W060", "AuthorizationPolicy amb/get-only")].message
    assert "L4+L7 rule denies" in by_obj[("W060", "AuthorizationPolicy amb/deny-post")].message
    assert "'opa'" in by_obj[("W061", "AuthorizationPolicy side/ext")].message


def test_no_warnings_without_ambient_l7_or_custom(tmp_path) -> None:
    result = load(
        tmp_path,
        """
        apiVersion: v1
        kind: Namespace
        metadata: {name: amb, labels: {istio.io/dataplane-mode: ambient}}
        ---
        apiVersion: v1
        kind: Pod
        metadata: {name: web, namespace: amb, labels: {app: web}}
        spec: {containers: [{name: c, image: x, ports: [{containerPort: 8080}]}]}
        ---
        apiVersion: security.istio.io/v1
        kind: AuthorizationPolicy
        metadata: {name: l4, namespace: amb}
        spec:
          rules:
          - from: [{source: {principals: ["*"]}}]
            when: [{key: source.ip, values: [10.0.0.0/8]}]
        """,
    )
    assert [d for d in model_warnings(result.model) if d.code in ("W060", "W061")] == []
