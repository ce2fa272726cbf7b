"""Reading Calico resources: every field lowers into the policy IR as Calico stores it, `types`
is inferred the way libcalico-go does, every invalid input is a located error and every construct
kubezt does not enforce is a warning naming the object."""

from __future__ import annotations

import ipaddress
import textwrap
from pathlib import Path
from typing import Any

import pytest

import kubezt
from casekit import load_objects
from kubezt.errors import Diagnostic, Severity
from kubezt.ir.policy import (
    Action,
    Dialect,
    Direction,
    HttpMatch,
    NamespaceScope,
    Policy,
)
from kubezt.ir.ports import PortRange, PortSet
from kubezt.ir.selectors import All, And, Equals, Has, In, Not, NotEquals

NS = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}


def np(spec: dict[str, Any], name: str = "p", kind: str = "NetworkPolicy", **meta: Any) -> dict:
    metadata = {"name": name, **meta}
    if kind in ("NetworkPolicy", "StagedNetworkPolicy", "StagedKubernetesNetworkPolicy"):
        metadata.setdefault("namespace", "shop")
    return {"apiVersion": "projectcalico.org/v3", "kind": kind, "metadata": metadata, "spec": spec}


def gnp(spec: dict[str, Any], name: str = "g", **meta: Any) -> dict:
    return np(spec, name, "GlobalNetworkPolicy", **meta)


def tier(name: str, **spec: Any) -> dict:
    return {
        "apiVersion": "projectcalico.org/v3",
        "kind": "Tier",
        "metadata": {"name": name},
        "spec": spec,
    }


def load(tmp_path: Path, *objects: dict) -> kubezt.LoadResult:
    return load_objects(tmp_path, [NS, *objects])


def only_policy(tmp_path: Path, *objects: dict) -> Policy:
    (policy,) = load(tmp_path, *objects).model.policies.policies
    return policy


def errors(tmp_path: Path, *objects: dict) -> tuple[Diagnostic, ...]:
    with pytest.raises(kubezt.InputError) as info:
        load(tmp_path, *objects)
    return info.value.diagnostics


def one_error(tmp_path: Path, *objects: dict) -> Diagnostic:
    found = errors(tmp_path, *objects)
    assert len(found) == 1, "\n".join(d.render() for d in found)
    return found[0]


def warnings(result: kubezt.LoadResult, code: str) -> list[Diagnostic]:
    return [d for d in result.diagnostics if d.code == code]


# --- lowering ----------------------------------------------------------------------------------


def test_namespaced_policy_fields_lower_into_the_ir(tmp_path: Path) -> None:
    policy = only_policy(
        tmp_path,
        np(
            {
                "order": 250,
                "selector": "app == 'db'",
                "serviceAccountSelector": "has(role)",
                "types": ["Ingress"],
                "ingress": [
                    {
                        "action": "Allow",
                        "protocol": "tcp",
                        "notProtocol": 17,
                        "ipVersion": 4,
                        "source": {
                            "nets": ["10.0.0.0/8"],
                            "notNets": ["10.1.0.0/16"],
                            "selector": "tier in {'web', 'api'}",
                            "notSelector": "!has(trusted)",
                            "ports": ["1024:65535"],
                            "serviceAccounts": {"names": ["web"], "selector": "team == 'a'"},
                        },
                        "destination": {"ports": [5432, "6000:6010", "metrics", "8080"]},
                        "metadata": {"annotations": {"owner": "db-team"}},
                    }
                ],
            }
        ),
    )
    assert (policy.dialect, policy.kind, policy.name, policy.namespace) == (
        Dialect.CALICO,
        "NetworkPolicy",
        "p",
        "shop",
    )
    assert (policy.tier, policy.order, policy.staged) == ("default", 250.0, False)
    assert policy.selector == Equals("app", "db")
    assert policy.service_account_selector == Has("role")
    assert policy.types == {Direction.INGRESS}
    (rule,) = policy.ingress
    assert (rule.action, rule.protocol, rule.not_protocol, rule.ip_version) == (
        Action.ALLOW,
        6,
        17,
        4,
    )
    assert rule.index == 0 and rule.origin is not None and rule.origin.path == "spec.ingress[0]"
    src = rule.source
    assert src.nets == (ipaddress.ip_network("10.0.0.0/8"),)
    assert src.not_nets == (ipaddress.ip_network("10.1.0.0/16"),)
    assert src.selector == In("tier", frozenset({"web", "api"}))
    assert src.not_selector == Not(Has("trusted"))
    assert src.namespace_scope is NamespaceScope.OWN and src.namespace_selector is None
    assert src.service_account_names == {"web"}
    assert src.service_account_selector == Equals("team", "a")
    assert src.ports == PortSet.of([PortRange(1024, 65535)])
    assert rule.destination.ports == PortSet.of(
        [PortRange(5432, 5432), PortRange(6000, 6010), PortRange(8080, 8080)], {"metrics"}
    )
    assert rule.destination.namespace_scope is NamespaceScope.OWN


def test_global_policy_scopes_selectors_cluster_wide(tmp_path: Path) -> None:
    policy = only_policy(
        tmp_path,
        gnp(
            {
                "namespaceSelector": "projectcalico.org/name != 'kube-system'",
                "egress": [
                    {"action": "Deny", "destination": {"selector": "app == 'x'"}},
                    {"action": "Pass", "destination": {"namespaceSelector": "global()"}},
                    {"action": "Log", "destination": {"namespaceSelector": "all()"}},
                ],
            }
        ),
    )
    assert policy.namespace is None and policy.order is None
    assert policy.namespace_selector == NotEquals("projectcalico.org/name", "kube-system")
    assert policy.types == {Direction.EGRESS}
    deny, passing, log = policy.egress
    assert deny.destination.namespace_scope is NamespaceScope.ANY
    assert passing.action is Action.PASS
    assert passing.destination.namespace_scope is NamespaceScope.GLOBAL
    assert log.action is Action.LOG
    assert log.destination.namespace_scope is NamespaceScope.SELECTED
    assert log.destination.namespace_selector == All()


def test_empty_fields_mean_no_constraint(tmp_path: Path) -> None:
    policy = only_policy(
        tmp_path,
        np(
            {
                "selector": "",
                "ingress": [
                    {
                        "action": "Allow",
                        "source": {"selector": "", "nets": [], "serviceAccounts": {}},
                        "destination": {"ports": []},
                    }
                ],
            }
        ),
    )
    assert policy.selector is None
    (rule,) = policy.ingress
    assert rule.source.selector is None and rule.source.nets is None
    assert rule.source.service_account_names is None
    assert rule.destination.ports is None
    assert not rule.source.selects_endpoints


@pytest.mark.parametrize(
    ("rules", "types"),
    [
        ({}, {Direction.INGRESS}),
        ({"ingress": [{"action": "Allow"}]}, {Direction.INGRESS}),
        ({"egress": [{"action": "Allow"}]}, {Direction.EGRESS}),
        ({"ingress": [], "egress": [{"action": "Deny"}]}, {Direction.EGRESS}),
        (
            {"ingress": [{"action": "Allow"}], "egress": [{"action": "Allow"}]},
            {Direction.INGRESS, Direction.EGRESS},
        ),
        ({"types": ["Egress"], "ingress": [{"action": "Allow"}]}, {Direction.EGRESS}),
        ({"types": [], "egress": [{"action": "Allow"}]}, {Direction.EGRESS}),
    ],
    ids=["no-rules", "ingress-only", "egress-only", "empty-ingress", "both", "explicit", "empty"],
)
def test_types_are_inferred_as_calico_stores_them(
    rules: dict[str, Any], types: set[Direction], tmp_path: Path
) -> None:
    assert only_policy(tmp_path, gnp(rules)).types == types


def test_protocols_by_name_in_any_case_or_number(tmp_path: Path) -> None:
    names = ["TCP", "udp", "Icmp", "ICMPv6", "sctp", "UDPLite", 47, "89"]
    policy = only_policy(
        tmp_path, gnp({"ingress": [{"action": "Deny", "protocol": p} for p in names]})
    )
    assert [r.protocol for r in policy.ingress] == [6, 17, 1, 58, 132, 136, 47, 89]


def test_icmp_and_http_clauses(tmp_path: Path) -> None:
    result = load(
        tmp_path,
        gnp(
            {
                "ingress": [
                    {"action": "Deny", "protocol": "ICMP", "icmp": {"type": 8, "code": 0}},
                    {"action": "Allow", "protocol": "ICMPv6", "notICMP": {"type": 128}},
                    {
                        "action": "Allow",
                        "http": {
                            "methods": ["GET", "HEAD"],
                            "paths": [{"exact": "/healthz"}, {"prefix": "/api"}],
                        },
                    },
                ]
            }
        ),
    )
    deny, allow, http = result.model.policies.policies[0].ingress
    assert deny.icmp and allow.icmp and not http.icmp
    assert http.http == HttpMatch(("GET", "HEAD"), ("/healthz",), ("/api",))
    (warning,) = warnings(result, "W030")
    assert warning.obj == "GlobalNetworkPolicy g"
    assert warning.path == "spec.ingress[2].http"
    assert "wider" in warning.message or "more than written" in warning.message


def test_services_default_to_the_policy_namespace(tmp_path: Path) -> None:
    policy = only_policy(
        tmp_path,
        np(
            {
                "egress": [
                    {"action": "Allow", "destination": {"services": {"name": "db"}}},
                    {
                        "action": "Allow",
                        "destination": {"services": {"name": "kubernetes", "namespace": "default"}},
                    },
                ]
            }
        ),
    )
    assert [r.destination.services for r in policy.egress] == [
        ("shop", "db"),
        ("default", "kubernetes"),
    ]


def test_tiers_may_be_declared_after_their_policies(tmp_path: Path) -> None:
    result = load(
        tmp_path,
        gnp({"tier": "security", "order": 10}, name="security.first"),
        gnp({"tier": "security"}, name="plain-name"),
        tier("security", order=100, defaultAction="Pass"),
        tier("platform"),
    )
    policies = result.model.policies
    assert [p.tier for p in policies.policies] == ["security", "security"]
    assert policies.tier("security").order == 100.0
    assert policies.tier("security").default_action is Action.PASS
    assert policies.tier("platform").order is None
    assert policies.tier("platform").default_action is Action.DENY
    assert policies.tier("default").order == 1_000_000.0


def test_crd_group_reads_the_same_kinds(tmp_path: Path) -> None:
    objects = [
        {**tier("security", order=5), "apiVersion": "crd.projectcalico.org/v1"},
        {**gnp({"tier": "security"}), "apiVersion": "crd.projectcalico.org/v1"},
        {**np({"egress": [{"action": "Allow"}]}), "apiVersion": "crd.projectcalico.org/v1"},
    ]
    policies = load(tmp_path, *objects).model.policies
    assert [(p.kind, p.tier) for p in policies.policies] == [
        ("GlobalNetworkPolicy", "security"),
        ("NetworkPolicy", "default"),
    ]


def test_staged_policies_are_read_but_marked_staged(tmp_path: Path) -> None:
    result = load(
        tmp_path,
        np(
            {"selector": "app == 'db'", "ingress": [{"action": "Deny"}]}, kind="StagedNetworkPolicy"
        ),
        np({"stagedAction": "Delete"}, name="gone", kind="StagedGlobalNetworkPolicy"),
        np(
            {"podSelector": {"matchLabels": {"app": "db"}}, "policyTypes": ["Egress"]},
            name="k",
            kind="StagedKubernetesNetworkPolicy",
        ),
        np({"stagedAction": "Delete"}, name="k-gone", kind="StagedKubernetesNetworkPolicy"),
    )
    staged, deleted, k8s, k8s_deleted = result.model.policies.policies
    assert all(p.staged for p in (staged, deleted, k8s, k8s_deleted))
    assert staged.kind == "StagedNetworkPolicy" and staged.types == {Direction.INGRESS}
    assert deleted.types == frozenset() and deleted.namespace is None
    assert (k8s.dialect, k8s.kind, k8s.order) == (
        Dialect.K8S,
        "StagedKubernetesNetworkPolicy",
        1000.0,
    )
    assert k8s.types == {Direction.EGRESS} and k8s.selector == Equals("app", "db")
    assert k8s_deleted.types == frozenset() and k8s_deleted.dialect is Dialect.K8S


def test_network_sets(tmp_path: Path) -> None:
    result = load(
        tmp_path,
        {
            "apiVersion": "projectcalico.org/v3",
            "kind": "NetworkSet",
            "metadata": {"name": "partners", "namespace": "shop", "labels": {"role": "partner"}},
            "spec": {"nets": ["198.51.100.0/28", "203.0.113.7"]},
        },
        {
            "apiVersion": "projectcalico.org/v3",
            "kind": "GlobalNetworkSet",
            "metadata": {"name": "bad-actors", "labels": {"threat": "high"}},
            "spec": {"nets": ["192.0.2.0/24"]},
        },
    )
    partners, actors = result.model.policies.network_sets
    assert (partners.namespace, partners.labels) == ("shop", (("role", "partner"),))
    assert partners.nets == (
        ipaddress.ip_network("198.51.100.0/28"),
        ipaddress.ip_network("203.0.113.7/32"),
    )
    assert actors.namespace is None and actors.labels == (("threat", "high"),)


@pytest.mark.parametrize(("prefix", "alp"), [("/var/run/nodeagent", True), (None, False)])
def test_felix_policy_sync_switches_on_application_layer_policy(
    prefix: str | None, alp: bool, tmp_path: Path
) -> None:
    spec = {"logSeverityScreen": "Info"}
    if prefix is not None:
        spec["policySyncPathPrefix"] = prefix
    felix = {
        "apiVersion": "projectcalico.org/v3",
        "kind": "FelixConfiguration",
        "metadata": {"name": "default"},
        "spec": spec,
    }
    result = load(tmp_path, felix)
    assert result.model.mesh_config.calico_alp is alp
    assert not result.warnings


# --- errors ------------------------------------------------------------------------------------


def test_selector_syntax_error_names_field_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "gnp.yaml"
    path.write_text(
        textwrap.dedent(
            """\
            apiVersion: projectcalico.org/v3
            kind: GlobalNetworkPolicy
            metadata:
              name: deny-egress
            spec:
              ingress:
                - action: Deny
                  source:
                    selector: role == 'db' && !has(tier))
            """
        ),
        encoding="utf-8",
    )
    with pytest.raises(kubezt.InputError) as info:
        kubezt.load([str(path)])
    (diag,) = info.value.diagnostics
    assert diag.code == "E031"
    assert diag.location is not None and (diag.location.file, diag.location.line) == (
        str(path),
        9,
    )
    assert diag.obj == "GlobalNetworkPolicy deny-egress"
    assert diag.path == "spec.ingress[0].source.selector"
    assert "column 27" in diag.message and "role == 'db' && !has(tier))" in diag.message


@pytest.mark.parametrize(
    ("spec", "path"),
    [
        ({"selector": "a =="}, "spec.selector"),
        ({"namespaceSelector": "has("}, "spec.namespaceSelector"),
        ({"serviceAccountSelector": "x in {'a'"}, "spec.serviceAccountSelector"),
        ({"egress": [{"action": "Allow", "destination": {"notSelector": "&&"}}]}, None),
        (
            {"egress": [{"action": "Allow", "destination": {"namespaceSelector": "a ="}}]},
            "spec.egress[0].destination.namespaceSelector",
        ),
        (
            {
                "egress": [
                    {"action": "Allow", "destination": {"serviceAccounts": {"selector": "!"}}}
                ]
            },
            "spec.egress[0].destination.serviceAccounts.selector",
        ),
    ],
)
def test_every_selector_field_reports_syntax_errors(
    spec: dict[str, Any], path: str | None, tmp_path: Path
) -> None:
    diag = one_error(tmp_path, gnp(spec))
    assert diag.code == "E031" and "at column" in diag.message
    assert diag.path == (path or "spec.egress[0].destination.notSelector")


@pytest.mark.parametrize(
    "spec",
    [
        {"selector": "global()"},
        {"ingress": [{"action": "Allow", "source": {"selector": "global() && a == 'b'"}}]},
        {"ingress": [{"action": "Allow", "source": {"namespaceSelector": "!global()"}}]},
    ],
)
def test_global_selector_only_as_a_whole_rule_namespace_selector(
    spec: dict[str, Any], tmp_path: Path
) -> None:
    assert one_error(tmp_path, gnp(spec)).code == "E060"


@pytest.mark.parametrize(
    ("ports", "protocol", "message"),
    [
        ([70000], "TCP", "0-65535"),
        (["90:80"], "TCP", "first ≤ last"),
        (["a:b"], "TCP", "range"),
        (["Not_A_Name"], "TCP", "port name"),
        ([True], "TCP", "port number"),
        ([80], None, "numeric ports need protocol TCP, UDP or SCTP"),
        (["8000:8080"], "ICMP", "numeric ports need protocol"),
        (["http"], "ICMP", "named ports need protocol"),
    ],
)
def test_bad_ports(ports: list[Any], protocol: str | None, message: str, tmp_path: Path) -> None:
    rule: dict[str, Any] = {"action": "Allow", "destination": {"ports": ports}}
    if protocol:
        rule["protocol"] = protocol
    diag = one_error(tmp_path, gnp({"ingress": [rule]}))
    assert diag.code == "E062"
    assert diag.path == "spec.ingress[0].destination.ports[0]"
    assert message in diag.message


def test_source_ports_and_not_ports_need_a_protocol_too(tmp_path: Path) -> None:
    found = errors(
        tmp_path,
        gnp(
            {
                "ingress": [
                    {"action": "Allow", "source": {"ports": [1]}, "destination": {"notPorts": [2]}}
                ]
            }
        ),
    )
    assert sorted(d.path for d in found) == [
        "spec.ingress[0].destination.notPorts[0]",
        "spec.ingress[0].source.ports[0]",
    ]


def test_named_port_without_protocol_is_read_with_a_warning(tmp_path: Path) -> None:
    result = load(
        tmp_path, gnp({"ingress": [{"action": "Allow", "destination": {"ports": ["http"]}}]})
    )
    (rule,) = result.model.policies.policies[0].ingress
    assert rule.protocol is None and rule.destination.ports == PortSet((), frozenset({"http"}))
    (warning,) = warnings(result, "W033")
    assert warning.path == "spec.ingress[0].destination.ports[0]"


def test_policy_in_an_undeclared_tier_is_an_error_naming_the_tier(tmp_path: Path) -> None:
    diag = one_error(tmp_path, tier("security"), gnp({"tier": "securty"}, name="securty.x"))
    assert diag.code == "E064" and diag.path == "spec.tier"
    assert "'securty'" in diag.message
    assert diag.hint == "did you mean 'security'?"
    assert diag.obj == "GlobalNetworkPolicy securty.x"


@pytest.mark.parametrize(
    ("action", "expected"),
    [("allow", "did you mean 'Allow'?"), ("Reject", ""), (None, ""), (3, "")],
)
def test_action_is_required_and_case_sensitive(action: Any, expected: str, tmp_path: Path) -> None:
    rule = {} if action is None else {"action": action}
    (diag,) = [d for d in errors(tmp_path, gnp({"ingress": [rule]})) if d.code in ("E063", "E010")]
    assert diag.path == "spec.ingress[0].action"
    assert diag.hint.startswith(expected)


@pytest.mark.parametrize("cidr", ["0.0.0.0/0", "::/0"])
def test_not_nets_covering_every_address_is_rejected(cidr: str, tmp_path: Path) -> None:
    diag = one_error(
        tmp_path, gnp({"egress": [{"action": "Deny", "destination": {"notNets": [cidr]}}]})
    )
    assert (diag.code, diag.path) == ("E065", "spec.egress[0].destination.notNets[0]")


@pytest.mark.parametrize(
    ("rule", "code", "path"),
    [
        ({"protocol": "HTTP"}, "E061", "spec.ingress[0].protocol"),
        ({"protocol": 0}, "E061", "spec.ingress[0].protocol"),
        ({"notProtocol": 256}, "E061", "spec.ingress[0].notProtocol"),
        ({"icmp": {"type": 8}}, "E066", "spec.ingress[0].icmp"),
        ({"protocol": "ICMP", "icmp": {"code": 1}}, "E066", "spec.ingress[0].icmp.code"),
        ({"protocol": "ICMP", "ipVersion": 6}, "E066", "spec.ingress[0].ipVersion"),
        ({"ipVersion": 5}, "E065", "spec.ingress[0].ipVersion"),
        (
            {"source": {"nets": ["10.0.0.0/8"]}, "destination": {"nets": ["fd00::/8"]}},
            "E065",
            "spec.ingress[0]",
        ),
        (
            {"ipVersion": 6, "source": {"nets": ["10.0.0.0/8"]}},
            "E065",
            "spec.ingress[0].source.nets[0]",
        ),
        ({"source": {"nets": ["10.0.0.300/8"]}}, "E010", "spec.ingress[0].source.nets[0]"),
        (
            {"source": {"services": {"name": "db", "namespace": "shop"}, "selector": "a == 'b'"}},
            "E067",
            "spec.ingress[0].source.services",
        ),
        ({"source": {"services": {"name": "db"}}}, "E067", "spec.ingress[0].source.services"),
        ({"destination": {"services": {"name": "db", "namespace": "x"}}}, "E067", None),
        (
            {"source": {"services": {"namespace": "x"}}},
            "E067",
            "spec.ingress[0].source.services.name",
        ),
    ],
)
def test_invalid_rules_are_located_errors(
    rule: dict[str, Any], code: str, path: str | None, tmp_path: Path
) -> None:
    diag = one_error(tmp_path, gnp({"ingress": [{"action": "Allow", **rule}]}))
    assert diag.code == code, diag.render()
    assert diag.path == (path or "spec.ingress[0].destination.services")


def test_services_cannot_be_an_egress_source_or_carry_destination_ports(tmp_path: Path) -> None:
    found = errors(
        tmp_path,
        np(
            {
                "egress": [
                    {"action": "Allow", "source": {"services": {"name": "a"}}},
                    {
                        "action": "Allow",
                        "protocol": "TCP",
                        "destination": {"services": {"name": "b"}, "ports": [80]},
                    },
                ]
            }
        ),
    )
    assert sorted((d.code, d.path) for d in found) == [
        ("E067", "spec.egress[0].source.services"),
        ("E067", "spec.egress[1].destination.ports"),
    ]


@pytest.mark.parametrize(
    ("direction", "rule", "message"),
    [
        ("ingress", {"action": "Deny", "http": {"methods": ["GET"]}}, "Allow rules"),
        ("egress", {"action": "Allow", "http": {"methods": ["GET"]}}, "ingress rules"),
        ("ingress", {"action": "Allow", "protocol": "UDP", "http": {}}, "protocol TCP"),
    ],
)
def test_http_only_on_ingress_allow_over_tcp(
    direction: str, rule: dict[str, Any], message: str, tmp_path: Path
) -> None:
    diag = one_error(tmp_path, gnp({direction: [rule]}))
    assert diag.code == "E068" and message in diag.message


def test_http_path_needs_exactly_one_of_exact_or_prefix(tmp_path: Path) -> None:
    rule = {"action": "Allow", "http": {"paths": [{"exact": "/a", "prefix": "/b"}]}}
    diag = one_error(tmp_path, gnp({"ingress": [rule]}))
    assert (diag.code, diag.path) == ("E068", "spec.ingress[0].http.paths[0]")


@pytest.mark.parametrize(
    ("obj", "code", "path"),
    [
        (gnp({"types": ["ingress"]}), "E069", "spec.types[0]"),
        (tier("t", defaultAction="Allow"), "E070", "spec.defaultAction"),
        (tier("default", order=5), "E070", "spec.order"),
        (tier("dotted.name"), "E070", "metadata.name"),
        (gnp({"doNotTrack": True}), "E071", "spec.doNotTrack"),
        (
            gnp({"doNotTrack": True, "preDNAT": True, "applyOnForward": True}),
            "E071",
            "spec.preDNAT",
        ),
        (
            gnp({"preDNAT": True, "applyOnForward": True, "types": ["Egress"]}),
            "E071",
            "spec.types",
        ),
        (np({"stagedAction": "Later"}, kind="StagedNetworkPolicy"), "E072", "spec.stagedAction"),
        (
            np({"stagedAction": "Delete", "selector": "all()"}, kind="StagedNetworkPolicy"),
            "E072",
            "spec.selector",
        ),
        (
            np(
                {"stagedAction": "Delete", "podSelector": {}},
                kind="StagedKubernetesNetworkPolicy",
            ),
            "E072",
            "spec.podSelector",
        ),
        (
            {
                "apiVersion": "projectcalico.org/v3",
                "kind": "GlobalNetworkSet",
                "metadata": {"name": "s", "labels": {"projectcalico.org/namespace": "x"}},
                "spec": {"nets": ["10.0.0.0/8"]},
            },
            "E073",
            "metadata.labels.projectcalico.org/namespace",
        ),
    ],
)
def test_invalid_objects_are_located_errors(
    obj: dict, code: str, path: str, tmp_path: Path
) -> None:
    diag = one_error(tmp_path, obj)
    assert (diag.code, diag.path) == (code, path), diag.render()
    assert diag.location is not None and diag.location.line > 0


def test_errors_in_many_rules_are_all_reported(tmp_path: Path) -> None:
    found = errors(
        tmp_path,
        gnp(
            {
                "ingress": [{"action": "Allow", "protocol": "TCP", "source": {"selector": "("}}],
                "egress": [{"action": "Allow", "destination": {"ports": [80]}}],
            }
        ),
        tier("x", defaultAction="Maybe"),
    )
    assert sorted(d.code for d in found) == ["E031", "E062", "E070"]


# --- warnings ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flags", "kept"),
    [
        ({"applyOnForward": True}, True),
        ({"applyOnForward": True, "doNotTrack": True}, False),
        ({"applyOnForward": True, "preDNAT": True, "types": ["Ingress"]}, False),
    ],
)
def test_host_endpoint_features_are_warned_about(
    flags: dict[str, Any], kept: bool, tmp_path: Path
) -> None:
    result = load(tmp_path, gnp({**flags, "ingress": [{"action": "Deny"}]}, name="host-fw"))
    (warning,) = warnings(result, "W031")
    assert warning.severity is Severity.WARNING
    assert warning.obj == "GlobalNetworkPolicy host-fw"
    assert "host-endpoint feature not modelled" in warning.message
    assert "workload endpoints only" in warning.message
    assert bool(result.model.policies.policies) is kept


def test_host_endpoint_is_reported_as_not_modelled(tmp_path: Path) -> None:
    result = load(
        tmp_path,
        {
            "apiVersion": "projectcalico.org/v3",
            "kind": "HostEndpoint",
            "metadata": {"name": "node1-eth0", "labels": {"role": "k8s-worker"}},
            "spec": {"node": "node1", "interfaceName": "eth0", "expectedIPs": ["192.0.2.10"]},
        },
    )
    (warning,) = warnings(result, "W032")
    assert warning.obj == "HostEndpoint node1-eth0" and "not modelled" in warning.message


def test_unknown_fields_are_errors_with_did_you_mean(tmp_path: Path) -> None:
    # A misspelt field would otherwise be dropped silently (a misspelt `selector` would select
    # every endpoint); the Calico API server rejects unknown fields too.
    found = errors(
        tmp_path,
        gnp(
            {
                "selecter": "app == 'x'",
                "ingress": [{"action": "Allow", "sorce": {}, "destination": {"port": [80]}}],
            }
        ),
    )
    hints = {d.path: d.hint for d in found if d.code == "E012"}
    assert hints == {
        "spec.selecter": "did you mean 'selector'?",
        "spec.ingress[0].sorce": "did you mean 'source'?",
        "spec.ingress[0].destination.port": "did you mean 'ports'?",
    }


def test_namespace_selector_is_not_a_namespaced_policy_field(tmp_path: Path) -> None:
    (error,) = errors(tmp_path, np({"namespaceSelector": "all()"}))
    assert (error.code, error.path) == ("E012", "spec.namespaceSelector")


def test_a_conjunction_of_selectors_parses_into_the_shared_ast(tmp_path: Path) -> None:
    policy = only_policy(tmp_path, gnp({"selector": "a == 'x' && has(b)"}))
    assert policy.selector == And((Equals("a", "x"), Has("b")))
