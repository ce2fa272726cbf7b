"""Flow-log lines as the upstream tools write them, for tests: Calico Goldmane `Flow` JSON,
Hubble `hubble observe -o jsonpb`, Istio's default access-log text format and its JSON
encoding (sidecars), ztunnel's access log (text and JSON) and an ambient waypoint's access log
(with ztunnel lines for what a waypoint does not carry). `Traffic` is one observed connection
or request between two pods, from a pod to an address outside the cluster (egress), or from
the API server to a pod (an admission webhook call)."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

FORMATS = (
    "calico",
    "hubble",
    "envoy-json",
    "envoy-text",
    "ztunnel-text",
    "ztunnel-json",
    "waypoint",
)
POD_SUFFIX = "-5d7f8c9b4-x7k2p"
"""The ReplicaSet and pod hash a Deployment's pod name carries."""


@dataclass(frozen=True)
class Pod:
    namespace: str
    name: str
    """The pod's name (a Deployment's pods: `<deployment>-<hash>-<hash>`)."""
    ip: str
    service_account: str
    labels: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Traffic:
    src: Pod
    dst: Pod
    port: int
    protocol: str = "TCP"
    method: str = ""
    path: str = ""
    service: tuple[str, str, int] | None = None
    """(namespace, name, port) of the Service the client called."""
    allowed: bool = True
    time: int = 1_767_225_600  # 2026-01-01T00:00:00Z
    kind: str = "call"
    """`call` (pod to pod), `egress` (`dst` is an address outside the cluster, `host` its DNS
    name when the client used one) or `webhook` (`src` is the API server's address)."""
    host: str = ""


def outside(ip: str) -> Pod:
    """An address that is no pod (an egress destination, the API server)."""
    return Pod("", "", ip, "")


def _iso(t: int) -> str:
    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def calico(t: Traffic, trust_domain: str = "cluster.local") -> str:
    """A Goldmane `Flow` (goldmane/proto/api.proto) as JSON with proto field names."""
    del trust_domain
    # Calico OSS names no address outside the cluster: `pub`/`pvt` networks of type `net`.
    src_name, src_type = (
        ("pvt", "net") if t.kind == "webhook" else (t.src.name.rsplit("-", 1)[0] + "-*", "wep")
    )
    dst_name, dst_type = (
        ("pub", "net") if t.kind == "egress" else (t.dst.name.rsplit("-", 1)[0] + "-*", "wep")
    )
    key: dict[str, Any] = {
        "source_name": src_name,
        "source_namespace": t.src.namespace,
        "source_type": src_type,
        "dest_name": dst_name,
        "dest_namespace": t.dst.namespace,
        "dest_type": dst_type,
        "dest_port": t.port,
        "proto": t.protocol.lower(),
        "reporter": "dst",
        "action": "Allow" if t.allowed else "Deny",
        "policies": {
            "enforced_policies": [
                {
                    "kind": "CalicoNetworkPolicy",
                    "namespace": t.dst.namespace,
                    "name": "default.allow",
                    "tier": "default",
                    "action": "Allow" if t.allowed else "Deny",
                    "policy_index": 0,
                    "rule_index": 0,
                }
            ]
        },
    }
    if t.service:
        key["dest_service_namespace"], key["dest_service_name"], key["dest_service_port"] = (
            t.service
        )
    return json.dumps(
        {
            "Key": key,
            "start_time": t.time,
            "end_time": t.time + 15,
            "source_labels": [f"{k}={v}" for k, v in t.src.labels],
            "dest_labels": [f"{k}={v}" for k, v in t.dst.labels],
            "packets_in": 10,
            "packets_out": 12,
            "bytes_in": 1000,
            "bytes_out": 1200,
            "num_connections_started": 1,
            "num_connections_completed": 1,
            "num_connections_live": 0,
        }
    )


def hubble(t: Traffic, trust_domain: str = "cluster.local") -> str:
    """A `GetFlowsResponse` as `hubble observe -o jsonpb` prints it (cilium api/v1/flow)."""
    del trust_domain

    def endpoint(p: Pod, ident: int) -> dict[str, Any]:
        if not p.name:  # reserved identities: 2 world, 7 kube-apiserver
            reserved = "kube-apiserver" if t.kind == "webhook" else "world"
            return {"identity": 7 if t.kind == "webhook" else 2, "labels": [f"reserved:{reserved}"]}
        return {
            "ID": ident,
            "identity": ident + 1000,
            "namespace": p.namespace,
            "labels": [f"k8s:{k}={v}" for k, v in p.labels]
            + [f"k8s:io.kubernetes.pod.namespace={p.namespace}"],
            "pod_name": p.name,
            "workloads": [{"name": p.name.rsplit("-", 2)[0], "kind": "Deployment"}],
        }

    l4 = {
        t.protocol: {"source_port": 40000, "destination_port": t.port}
        | ({"flags": {"SYN": True}} if t.protocol == "TCP" else {})
    }
    flow: dict[str, Any] = {
        "time": _iso(t.time),
        "uuid": "6b4a2b7e-0000-4000-8000-000000000000",
        "verdict": "FORWARDED" if t.allowed else "DROPPED",
        "IP": {"source": t.src.ip, "destination": t.dst.ip, "ipVersion": "IPv4"},
        "l4": l4,
        "source": endpoint(t.src, 11),
        "destination": endpoint(t.dst, 22),
        "Type": "L7" if t.method else "L3_L4",
        "node_name": "kind-worker",
        "event_type": {"type": 129 if t.method else 4},
        "traffic_direction": "INGRESS",
        "is_reply": False,
        "Summary": "TCP Flags: SYN",
    }
    if t.host:
        flow["destination_names"] = [t.host]
    if not t.allowed:
        flow["drop_reason_desc"] = "POLICY_DENIED"
    if t.service:
        flow["destination_service"] = {"name": t.service[1], "namespace": t.service[0]}
    if t.method:
        host = f"{t.service[1]}.{t.service[0]}" if t.service else t.dst.ip
        flow["l7"] = {
            "type": "REQUEST",
            "http": {
                "method": t.method,
                "url": f"http://{host}{t.path}",
                "protocol": "HTTP/1.1",
                "headers": [{"key": "User-Agent", "value": "curl/8.5.0"}],
            },
        }
    return json.dumps({"flow": flow, "node_name": "kind-worker", "time": _iso(t.time)})


def _envoy_fields(t: Traffic, trust_domain: str) -> dict[str, str]:
    """An inbound access-log entry of the server's sidecar (Istio's JSON keys)."""
    denied = not t.allowed
    return {
        "start_time": _iso(t.time),
        "method": t.method or "-",
        "path": t.path or "-",
        "protocol": "HTTP/1.1" if t.method else "-",
        "response_code": ("403" if denied else "200") if t.method else "0",
        "response_flags": "-",
        "response_code_details": (
            "rbac_access_denied_matched_policy[none]" if denied else "via_upstream"
        )
        if t.method
        else "-",
        "connection_termination_details": "-",
        "upstream_transport_failure_reason": "-",
        "bytes_received": "0",
        "bytes_sent": "135",
        "duration": "4",
        "upstream_service_time": "3",
        "x_forwarded_for": "-",
        "user_agent": "curl/8.5.0" if t.method else "-",
        "request_id": "84961386-6d84-929d-98bd-c5aee93b5c88" if t.method else "-",
        "authority": f"{t.service[1]}.{t.service[0]}:{t.service[2]}"
        if t.service and t.method
        else "-",
        "upstream_host": f"{t.dst.ip}:{t.port}",
        "upstream_cluster": f"inbound|{t.port}||",
        "upstream_local_address": "127.0.0.6:41931",
        "downstream_local_address": f"{t.dst.ip}:{t.port}",
        "downstream_remote_address": f"{t.src.ip}:37652",
        "requested_server_name": "outbound_.80_._.svc.cluster.local",
        "route_name": "default",
        "downstream_peer_uri_san": f"spiffe://{trust_domain}/ns/{t.src.namespace}/sa/"
        f"{t.src.service_account}",
    }


def _envoy_egress(t: Traffic, fields: dict[str, str]) -> dict[str, str]:
    """The client sidecar's outbound line: a ServiceEntry host's cluster, or
    PassthroughCluster for a bare address."""
    address = f"[{t.dst.ip}]:{t.port}" if ":" in t.dst.ip else f"{t.dst.ip}:{t.port}"
    return fields | {
        "upstream_host": address,
        "upstream_cluster": f"outbound|{t.port}||{t.host}" if t.host else "PassthroughCluster",
        "upstream_local_address": f"{t.src.ip}:41142",
        "downstream_local_address": address,
        "downstream_remote_address": f"{t.src.ip}:41142",
        "requested_server_name": t.host or "-",
        "route_name": "-",
        "downstream_peer_uri_san": "-",
    }


def _envoy_entry(t: Traffic, trust_domain: str) -> dict[str, str]:
    fields = _envoy_fields(t, trust_domain)
    if t.kind == "egress":
        return _envoy_egress(t, fields)
    if t.kind == "webhook":  # plaintext from the API server: no peer identity
        return fields | {"downstream_peer_uri_san": "-", "requested_server_name": "-"}
    return fields


def envoy_json(t: Traffic, trust_domain: str = "cluster.local") -> str:
    return json.dumps(_envoy_entry(t, trust_domain))


def envoy_text(t: Traffic, trust_domain: str = "cluster.local") -> str:
    """Istio's default text format (pilot/pkg/model/telemetry_logging.go EnvoyTextLogFormat)."""
    return _envoy_text_line(_envoy_entry(t, trust_domain))


def _envoy_text_line(f: dict[str, str]) -> str:
    return (
        f'[{f["start_time"]}] "{f["method"]} {f["path"]} {f["protocol"]}" {f["response_code"]} '
        f"{f['response_flags']} {f['response_code_details']} {f['connection_termination_details']} "
        f'"{f["upstream_transport_failure_reason"]}" {f["bytes_received"]} {f["bytes_sent"]} '
        f'{f["duration"]} {f["upstream_service_time"]} "{f["x_forwarded_for"]}" '
        f'"{f["user_agent"]}" "{f["request_id"]}" "{f["authority"]}" "{f["upstream_host"]}" '
        f"{f['upstream_cluster']} {f['upstream_local_address']} {f['downstream_local_address']} "
        f"{f['downstream_remote_address']} {f['requested_server_name']} {f['route_name']}"
    )


def _ztunnel_fields(t: Traffic, trust_domain: str) -> dict[str, Any]:
    """A ztunnel "connection complete" entry (istio/ztunnel src/proxy/metrics.rs): a call over
    HBONE (at the client's ztunnel for an odd port, the server's for an even one), egress at
    the client's ztunnel, a webhook call in plaintext at the server's."""

    def identity(p: Pod) -> str:
        return f"spiffe://{trust_domain}/ns/{p.namespace}/sa/{p.service_account}"

    def addr(ip: str, number: int) -> str:
        return f"[{ip}]:{number}" if ":" in ip else f"{ip}:{number}"

    doc: dict[str, Any] = {"src.addr": addr(t.src.ip, 40978)}
    if t.src.name:
        doc |= {
            "src.workload": t.src.name,
            "src.namespace": t.src.namespace,
            "src.identity": identity(t.src),
        }
    if t.kind == "call":
        doc["dst.addr"] = addr(t.dst.ip, 15008)
        doc["dst.hbone_addr"] = addr(t.dst.ip, t.port)
    else:
        doc["dst.addr"] = addr(t.dst.ip, t.port)
    if t.service:
        doc["dst.service"] = f"{t.service[1]}.{t.service[0]}.svc.cluster.local"
    elif t.host:
        doc["dst.service"] = t.host
    if t.dst.name:
        doc |= {"dst.workload": t.dst.name, "dst.namespace": t.dst.namespace}
        if t.kind == "call":
            doc["dst.identity"] = identity(t.dst)
    inbound = t.kind == "webhook" or (t.kind == "call" and t.port % 2 == 0)
    doc["direction"] = "inbound" if inbound else "outbound"
    doc |= {"bytes_sent": 283, "bytes_recv": 358, "duration": "2ms"}
    if not t.allowed:
        doc["error"] = (
            "connection closed due to policy rejection: allow policies exist, but none allowed"
            if inbound
            else "http status: 401 Unauthorized"
        )
    return doc


def ztunnel_json(t: Traffic, trust_domain: str = "cluster.local") -> str:
    """`LOG_FORMAT=json` (istio/ztunnel src/telemetry.rs IstioJsonFormat)."""
    head = {
        "level": "info" if t.allowed else "error",
        "time": _iso(t.time).replace(".000Z", ".000000Z"),
        "scope": "access",
        "message": "connection complete",
    }
    return json.dumps(head | _ztunnel_fields(t, trust_domain))


def ztunnel_text(t: Traffic, trust_domain: str = "cluster.local") -> str:
    """The plain format (istio/ztunnel src/telemetry.rs IstioFormat): strings quoted as Rust
    `Debug` prints them, addresses and numbers bare."""
    fields = " ".join(
        f"{k}={v}" if isinstance(v, int) or k.endswith(("addr", "hbone_addr")) else f'{k}="{v}"'
        for k, v in _ztunnel_fields(t, trust_domain).items()
    )
    time = _iso(t.time).replace(".000Z", ".000000Z")
    level = "info" if t.allowed else "error"
    return f"{time}\t{level}\taccess\tconnection complete\t{fields}"


def through_waypoint(t: Traffic) -> bool:
    """An HTTP request to a Service: what a waypoint carries (and logs)."""
    return t.kind == "call" and bool(t.method) and t.service is not None


def waypoint(t: Traffic, trust_domain: str = "cluster.local") -> str:
    """An HTTP request through the destination's waypoint as the waypoint logs it (Istio's
    default text format; cluster `inbound-vip|<port>|http|<service host>`, upstream
    `envoy://connect_originate/<pod>`); anything a waypoint does not carry (TCP, egress, the
    API server's calls) as the ztunnel line."""
    if not through_waypoint(t):
        return ztunnel_text(t, trust_domain)
    assert t.service is not None
    f = _envoy_fields(t, trust_domain)
    ns, name, service_port = t.service
    return _envoy_text_line(
        f
        | {
            "upstream_host": f"envoy://connect_originate/{t.dst.ip}:{t.port}",
            "upstream_cluster": f"inbound-vip|{service_port}|http|{name}.{ns}.svc.cluster.local",
            "upstream_local_address": "envoy://internal_client_address/",
            "downstream_local_address": f"10.96.0.10:{service_port}",
            "requested_server_name": "-",
            "downstream_peer_uri_san": "-",
        }
    )


WRITERS = {
    "calico": calico,
    "hubble": hubble,
    "envoy-json": envoy_json,
    "envoy-text": envoy_text,
    "ztunnel-text": ztunnel_text,
    "ztunnel-json": ztunnel_json,
    "waypoint": waypoint,
}


def write_files(
    traffic: list[Traffic], fmt: str, trust_domain: str = "cluster.local"
) -> dict[str, str]:
    """File suffix → lines: one file, but for `waypoint` the waypoint's log and the ztunnel
    log of what the waypoint does not carry, as two files (as they are collected)."""
    if fmt != "waypoint":
        return {"": write(traffic, fmt, trust_domain)}
    return {
        "": write([t for t in traffic if through_waypoint(t)], fmt, trust_domain),
        "-ztunnel": write([t for t in traffic if not through_waypoint(t)], fmt, trust_domain),
    }


def write(traffic: list[Traffic], fmt: str, trust_domain: str = "cluster.local") -> str:
    writer = WRITERS[fmt]
    return "".join(writer(t, trust_domain) + "\n" for t in traffic)
