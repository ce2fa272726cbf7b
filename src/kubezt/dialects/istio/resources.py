"""Istio `security.istio.io` / `networking.istio.io` resources, waypoint Gateways and the mesh
ConfigMap → mesh IR, with Istio's admission validation (semantics.md §4.9).
"""

from __future__ import annotations

import ipaddress
from typing import Any

import yaml

from kubezt.dialects._reader import Cursor
from kubezt.dialects.context import ReadContext, Reader
from kubezt.errors import Severity
from kubezt.ir.mesh import (
    AuthorizationPolicy,
    AuthzAction,
    AuthzCondition,
    AuthzOperation,
    AuthzRule,
    AuthzSource,
    DestinationRule,
    MtlsMode,
    Patterns,
    PeerAuthentication,
    TargetRef,
    TlsMode,
    Waypoint,
)
from kubezt.ir.provenance import Source
from kubezt.ir.topology import Labels

SOURCE_FIELDS = {
    "principals": "principals",
    "notPrincipals": "not_principals",
    "requestPrincipals": "request_principals",
    "notRequestPrincipals": "not_request_principals",
    "namespaces": "namespaces",
    "notNamespaces": "not_namespaces",
    "serviceAccounts": "service_accounts",
    "notServiceAccounts": "not_service_accounts",
    "ipBlocks": "ip_blocks",
    "notIpBlocks": "not_ip_blocks",
    "remoteIpBlocks": "remote_ip_blocks",
    "notRemoteIpBlocks": "not_remote_ip_blocks",
    "trustDomains": "trust_domains",
    "notTrustDomains": "not_trust_domains",
}
OPERATION_FIELDS = {
    "hosts": "hosts",
    "notHosts": "not_hosts",
    "ports": "ports",
    "notPorts": "not_ports",
    "methods": "methods",
    "notMethods": "not_methods",
    "paths": "paths",
    "notPaths": "not_paths",
}
WHEN_KEYS = (
    "source.ip",
    "source.namespace",
    "source.principal",
    "source.serviceAccount",
    "source.trustDomain",
    "remote.ip",
    "destination.ip",
    "destination.port",
    "connection.sni",
    "request.auth.principal",
    "request.auth.audiences",
    "request.auth.presenter",
)
WHEN_KEY_PREFIXES = ("request.headers[", "request.auth.claims[", "experimental.envoy.filters.")


def _selector_labels(cur: Cursor) -> Labels | None:
    if not cur.present:
        return None
    if cur.map(what="a workload selector (matchLabels)") is None:
        return None
    cur.unknown_fields(("matchLabels",), code="E012")
    return Labels(cur["matchLabels"].str_map() or {})


def read_peer_authentication(root: Cursor, meta: Cursor, src: Source, rc: ReadContext) -> None:
    assert src.namespace is not None
    spec = root["spec"]
    if spec.present and spec.map(what="a PeerAuthentication spec") is None:
        return
    spec.unknown_fields(("selector", "mtls", "portLevelMtls"), code="E012")
    selector = _selector_labels(spec["selector"])
    mode = _mtls_mode(spec["mtls"])
    port_modes: list[tuple[int, MtlsMode]] = []
    plm_cur = spec["portLevelMtls"]
    if plm_cur.present and not isinstance(plm_cur.value, dict):
        plm_cur.error("a mapping of port numbers to mTLS settings", "E041")
        return
    plm: dict[Any, Any] = plm_cur.value if plm_cur.present else {}
    if plm:
        if not selector:
            plm_cur.problem("portLevelMtls requires a non-empty workload selector", "E040")
            return
        for key in plm:
            text = str(key)
            value = Cursor(plm_cur.ctx, plm[key], (*plm_cur.path, text))
            if not text.isdigit() or not 1 <= int(text) <= 65535:
                value.error("a port number 1-65535 as the key", "E041", got=f'"{text}"')
                continue
            port_modes.append((int(text), _mtls_mode(value)))
    created = meta["creationTimestamp"].value if meta["creationTimestamp"].present else ""
    rc.peer_authentications.append(
        PeerAuthentication(
            src.name, src.namespace, selector, mode, tuple(sorted(port_modes)), str(created), src
        )
    )


def _mtls_mode(cur: Cursor) -> MtlsMode:
    if not cur.present:
        return MtlsMode.UNSET
    if cur.map(what="an mTLS setting (mode)") is None:
        return MtlsMode.UNSET
    text = cur["mode"].str() or "UNSET"
    try:
        return MtlsMode(text)
    except ValueError:
        cur["mode"].error("one of UNSET, DISABLE, PERMISSIVE, STRICT", "E042")
        return MtlsMode.UNSET


def read_authorization_policy(root: Cursor, meta: Cursor, src: Source, rc: ReadContext) -> None:
    assert src.namespace is not None
    spec = root["spec"]
    if spec.present and spec.map(what="an AuthorizationPolicy spec") is None:
        return
    spec.unknown_fields(
        ("selector", "targetRef", "targetRefs", "action", "rules", "provider"), code="E012"
    )
    action_text = spec["action"].str() or "ALLOW"
    try:
        action = AuthzAction(action_text)
    except ValueError:
        spec["action"].error("one of ALLOW, DENY, AUDIT, CUSTOM", "E043")
        return
    selector = _selector_labels(spec["selector"])
    refs = _target_refs(spec, src)
    if refs and selector is not None:
        spec["targetRefs"].problem("selector and targetRefs cannot both be set", "E044")
        return
    provider = spec["provider"]["name"].str() or ""
    if spec["provider"].present and action is not AuthzAction.CUSTOM:
        spec["provider"].problem("provider is only allowed with action CUSTOM", "E045")
        return
    rules_cur = spec["rules"]
    rule_items = rules_cur.list(what="a list of rules") or []
    if action in (AuthzAction.DENY, AuthzAction.CUSTOM) and not rule_items:
        rules_cur.problem(f"action {action.value} requires at least one rule", "E046")
        return
    if action is AuthzAction.CUSTOM and not provider:
        spec["provider"].error("a provider name for action CUSTOM", "E045")
        return
    rules: list[AuthzRule] = []
    for index, rule in enumerate(rule_items):
        parsed = _rule(rule, index)
        if parsed is None:
            return
        rules.append(parsed)
    annotations = meta["annotations"].str_map() or {}
    dry_run = annotations.get("istio.io/dry-run", "").lower() == "true"
    rc.authorization_policies.append(
        AuthorizationPolicy(
            src.name, src.namespace, action, selector, refs, tuple(rules), provider, dry_run, src
        )
    )


def _target_refs(spec: Cursor, src: Source) -> tuple[TargetRef, ...]:
    items: list[Cursor] = []
    if spec["targetRef"].present:
        items.append(spec["targetRef"])
    items.extend(spec["targetRefs"].list() or [])
    refs: list[TargetRef] = []
    for item in items:
        if item.map(what="a policy target reference (group, kind, name)") is None:
            continue
        kind = item["kind"].str(required=True)
        name = item["name"].str(required=True)
        group = item["group"].str() or ""
        namespace = item["namespace"].str() or ""
        if namespace and namespace != src.namespace:
            item["namespace"].problem("cross-namespace targetRefs are rejected", "E047")
            continue
        if kind and name:
            refs.append(TargetRef(kind, name, group, namespace))
    return tuple(refs)


def _patterns(cur: Cursor) -> Patterns:
    values = cur.str_list()
    return tuple(values) if values is not None else None


def _rule(rule: Cursor, index: int) -> AuthzRule | None:
    if rule.map(what="a rule (from, to, when)") is None:
        return None
    rule.unknown_fields(("from", "to", "when"), code="E012")
    sources: list[AuthzSource] | None = None
    if rule["from"].present:
        items = rule["from"].list(what="a list of sources") or []
        if not items:
            rule["from"].problem("an empty from list is rejected", "E048")
            return None
        sources = []
        for item in items:
            fields = item["source"].map(what="a source") if item["source"].present else None
            if not fields:
                item.problem("every from element needs a non-empty source", "E048")
                return None
            item["source"].unknown_fields(tuple(SOURCE_FIELDS), code="E012")
            if "serviceAccounts" in fields and any(
                f in fields for f in ("principals", "namespaces")
            ):
                item["source"].problem(
                    "serviceAccounts cannot be combined with principals or "
                    "namespaces in one source",
                    "E049",
                )
                return None
            source = item["source"]
            # only the fields written (an absent one reads as None)
            values = {
                attr: _patterns(source[key]) for key, attr in SOURCE_FIELDS.items() if key in fields
            }
            for key in ("ipBlocks", "notIpBlocks", "remoteIpBlocks", "notRemoteIpBlocks"):
                if key in fields and not _check_ips(source[key]):
                    return None
            sources.append(AuthzSource(**values))
    operations: list[AuthzOperation] | None = None
    if rule["to"].present:
        items = rule["to"].list(what="a list of operations") or []
        if not items:
            rule["to"].problem("an empty to list is rejected", "E048")
            return None
        operations = []
        for item in items:
            fields = (
                item["operation"].map(what="an operation") if item["operation"].present else None
            )
            if not fields:
                item.problem("every to element needs a non-empty operation", "E048")
                return None
            operation = item["operation"]
            operation.unknown_fields(tuple(OPERATION_FIELDS), code="E012")
            for key in ("ports", "notPorts"):
                if key not in fields:
                    continue
                for i, port in enumerate(operation[key].str_list() or []):
                    if not port.isdigit() or not 1 <= int(port) <= 65535:
                        operation[key][i].error('a port number string such as "8080"', "E050")
                        return None
            values = {
                attr: _patterns(operation[key])
                for key, attr in OPERATION_FIELDS.items()
                if key in fields
            }
            operations.append(AuthzOperation(**values))
    conditions: list[AuthzCondition] = []
    for cond in rule["when"].list() or []:
        cond_key = cond["key"].str(required=True)
        if cond_key is None:
            return None
        if cond_key not in WHEN_KEYS and not cond_key.startswith(WHEN_KEY_PREFIXES):
            cond["key"].error(
                "a supported condition key (source.ip, source.namespace, "
                "source.principal, request.headers[<name>], …)",
                "E051",
            )
            return None
        cond_values = _patterns(cond["values"])
        not_values = _patterns(cond["notValues"])
        if not cond_values and not not_values:
            cond.problem("a condition needs values or notValues", "E051")
            return None
        conditions.append(AuthzCondition(cond_key, cond_values, not_values))
    return AuthzRule(
        tuple(sources) if sources is not None else None,
        tuple(operations) if operations is not None else None,
        tuple(conditions),
        index,
    )


def _check_ips(cur: Cursor) -> bool:
    for i, text in enumerate(cur.str_list() or []):
        try:
            ipaddress.ip_network(text, strict=False)
        except ValueError:
            cur[i].error("an IP address or CIDR", "E052")
            return False
    return True


def read_destination_rule(root: Cursor, meta: Cursor, src: Source, rc: ReadContext) -> None:
    assert src.namespace is not None
    spec = root["spec"]
    host = spec["host"].str(required=True)
    if host is None:
        return
    policy = spec["trafficPolicy"]
    tls = _tls_mode(policy["tls"]["mode"])
    port_tls: list[tuple[int, TlsMode]] = []
    for setting in policy["portLevelSettings"].list() or []:
        number = setting["port"]["number"].int(lo=1, hi=65535, what="a port number 1-65535")
        mode = _tls_mode(setting["tls"]["mode"])
        if number is not None and mode is not None:
            port_tls.append((number, mode))
    if spec["subsets"].present:
        spec["subsets"].warn(
            "subset traffic policies are not modelled; kubezt uses the host-level TLS settings",
            "W040",
        )
    rc.destination_rules.append(
        DestinationRule(src.name, src.namespace, host, tls, tuple(port_tls), src)
    )


def _tls_mode(cur: Cursor) -> TlsMode | None:
    text = cur.str()
    if text is None:
        return None
    try:
        return TlsMode(text)
    except ValueError:
        cur.error("one of DISABLE, SIMPLE, MUTUAL, ISTIO_MUTUAL", "E053")
        return None


def read_gateway(root: Cursor, meta: Cursor, src: Source, rc: ReadContext) -> None:
    assert src.namespace is not None
    if root["spec"]["gatewayClassName"].str() != "istio-waypoint":
        return
    labels = meta["labels"].str_map() or {}
    waypoint_for = labels.get("istio.io/waypoint-for", "service")
    if waypoint_for not in ("service", "workload", "all", "none"):
        meta["labels"]["istio.io/waypoint-for"].error("one of service, workload, all, none", "E054")
        return
    rc.waypoints.append(Waypoint(src.name, src.namespace, waypoint_for, src))


def read_config_map(root: Cursor, meta: Cursor, src: Source, rc: ReadContext) -> None:
    """The mesh configuration: ConfigMap `istio` (data.mesh) in the Istio namespace."""
    if src.name != "istio":
        return
    text = root["data"]["mesh"].str()
    if not text:
        return
    try:
        mesh: Any = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        root["data"]["mesh"].problem(f"mesh configuration is not valid YAML: {exc}", "E055")
        return
    if not isinstance(mesh, dict):
        root["data"]["mesh"].error("a mesh configuration mapping", "E055")
        return
    settings: dict[str, Any] = {"root_namespace": src.namespace}
    for key, attr in (
        ("rootNamespace", "root_namespace"),
        ("trustDomain", "trust_domain"),
        ("enableAutoMtls", "enable_auto_mtls"),
    ):
        if key in mesh:
            settings[attr] = mesh[key]
    aliases = mesh.get("trustDomainAliases")
    if isinstance(aliases, list):
        settings["trust_domain_aliases"] = tuple(str(a) for a in aliases)
    if "outboundTrafficPolicy" in mesh:
        root["data"]["mesh"].problem(
            "outboundTrafficPolicy is not modelled", "W041", Severity.WARNING
        )
    rc.mesh_settings.update(settings)


READERS: dict[tuple[str, str], tuple[Reader, bool]] = {
    ("security.istio.io", "PeerAuthentication"): (read_peer_authentication, True),
    ("security.istio.io", "AuthorizationPolicy"): (read_authorization_policy, True),
    ("networking.istio.io", "DestinationRule"): (read_destination_rule, True),
    ("gateway.networking.k8s.io", "Gateway"): (read_gateway, True),
    ("", "ConfigMap"): (read_config_map, True),
}
