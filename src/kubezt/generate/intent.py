"""The intent format as a target dialect: `ir.intent.Intent` → the `kubezt.io/v1alpha1`
`ZeroTrustIntent` document (a plain dict), with defaults left out. `kubezt.dialects.intent`
reads it back into an equal Intent (a test checks the round trip).
"""

from __future__ import annotations

from typing import Any

from kubezt.ir.intent import (
    DEFAULT_GATEWAY,
    Dns,
    Grant,
    HttpMatch,
    Identity,
    Intent,
    Istiod,
    Port,
    Service,
)
from kubezt.ir.ports import Protocol

API_VERSION = "kubezt.io/v1alpha1"
KIND = "ZeroTrustIntent"


def intent_document(intent: Intent) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "mesh": {"mode": intent.mode.value, "trustDomain": intent.trust_domain},
        "namespaces": list(intent.namespaces),
        "services": [_service(s) for s in intent.services],
    }
    if intent.root_namespace != "istio-system":
        spec["mesh"]["rootNamespace"] = intent.root_namespace
    calls = [_grant(g) for g in intent.grants if not g.from_gateway]
    if calls:
        spec["calls"] = calls
    routes = [_grant(g) for g in intent.grants if g.from_gateway]
    if routes or intent.gateway != DEFAULT_GATEWAY:
        spec["ingress"] = {
            "gateway": {
                "namespace": intent.gateway.namespace,
                "serviceAccount": intent.gateway.service_account,
            },
            "allow": routes,
        }
    if intent.egress:
        spec["egress"] = [
            {
                **_name(e.entry),
                "from": _caller(e.caller),
                "to": {
                    **({"cidrs": list(e.cidrs)} if e.cidrs else {}),
                    **({"hosts": list(e.hosts)} if e.hosts else {}),
                },
                "ports": sorted({p.port for p in e.ports}),
                **(
                    {"protocol": e.ports[0].protocol.value}
                    if e.ports and e.ports[0].protocol is not Protocol.TCP
                    else {}
                ),
            }
            for e in intent.egress
        ]
    platform = _platform(intent)
    if platform:
        spec["platform"] = platform
    if intent.exceptions:
        spec["exceptions"] = [
            {
                "name": x.name,
                "reason": x.reason,
                "to": str(x.service),
                "ports": sorted({p.port for p in x.ports}),
                "from": {"cidrs": list(x.cidrs)},
            }
            for x in intent.exceptions
        ]
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"name": intent.name},
        "spec": spec,
    }


def _port(p: Port) -> dict[str, Any]:
    doc: dict[str, Any] = {"port": p.port}
    if p.name:
        doc["name"] = p.name
    if p.protocol is not Protocol.TCP:
        doc["protocol"] = p.protocol.value
    if p.app_protocol:
        doc["appProtocol"] = p.app_protocol
    if p.metrics:
        doc["metrics"] = True
    return doc


def _service(s: Service) -> dict[str, Any]:
    doc: dict[str, Any] = {"name": s.name, "namespace": s.namespace}
    if dict(s.selector) != {"app": s.name}:
        doc["selector"] = dict(sorted(s.selector.items()))
    if s.service_account != s.name:
        doc["serviceAccount"] = s.service_account
    if s.ports:
        doc["ports"] = [_port(p) for p in s.ports]
    return doc


def _name(entry: str) -> dict[str, str]:
    section, slash, name = entry.partition("/")
    del section
    return {"name": name} if slash else {}


def _caller(identity: Identity) -> dict[str, str]:
    return {"serviceAccount": identity.service_account, "namespace": identity.namespace}


def _http(http: HttpMatch) -> dict[str, list[str]]:
    doc: dict[str, list[str]] = {}
    if http.methods:
        doc["methods"] = list(http.methods)
    if http.paths:
        doc["paths"] = list(http.paths)
    if http.hosts:
        doc["hosts"] = list(http.hosts)
    return doc


def _grant(g: Grant) -> dict[str, Any]:
    doc: dict[str, Any] = {**_name(g.entry)}
    if not g.from_gateway:
        doc["from"] = _caller(g.caller)
    doc["to"] = str(g.service)
    doc["ports"] = sorted({p.port for p in g.ports})
    if g.http is not None:
        doc["http"] = _http(g.http)
    return doc


def _platform(intent: Intent) -> dict[str, Any]:
    p = intent.platform
    doc: dict[str, Any] = {}
    if p.dns is None:
        doc["dns"] = {"enabled": False}
    elif p.dns != Dns():
        doc["dns"] = {
            "namespace": p.dns.namespace,
            "selector": dict(p.dns.selector),
            "port": p.dns.port,
        }
    if p.istiod != Istiod(namespace=intent.root_namespace):
        doc["istiod"] = {
            "namespace": p.istiod.namespace,
            "selector": dict(p.istiod.selector),
            "port": p.istiod.port,
        }
    if p.kube_api_server.callers:
        doc["kubeApiServer"] = {"from": [_caller(c) for c in p.kube_api_server.callers]}
    if p.metrics is not None:
        doc["metrics"] = {
            "from": _caller(p.metrics.scraper),
            "proxyPorts": list(p.metrics.proxy_ports),
        }
    return doc
