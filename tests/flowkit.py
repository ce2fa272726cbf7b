"""Flow-log lines as the upstream tools write them, for tests: Calico Goldmane `Flow` JSON,
Hubble `hubble observe -o jsonpb`, Istio's default access-log text format and its JSON
encoding. `Traffic` is one observed connection or request between two pods."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

FORMATS = ("calico", "hubble", "envoy-json", "envoy-text")
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


def _iso(t: int) -> str:
    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def calico(t: Traffic, trust_domain: str = "cluster.local") -> str:
    """A Goldmane `Flow` (goldmane/proto/api.proto) as JSON with proto field names."""
    del trust_domain
    key: dict[str, Any] = {
        "source_name": t.src.name.rsplit("-", 1)[0] + "-*",
        "source_namespace": t.src.namespace,
        "source_type": "wep",
        "dest_name": t.dst.name.rsplit("-", 1)[0] + "-*",
        "dest_namespace": t.dst.namespace,
        "dest_type": "wep",
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


def envoy_json(t: Traffic, trust_domain: str = "cluster.local") -> str:
    return json.dumps(_envoy_fields(t, trust_domain))


def envoy_text(t: Traffic, trust_domain: str = "cluster.local") -> str:
    """Istio's default text format (pilot/pkg/model/telemetry_logging.go EnvoyTextLogFormat)."""
    f = _envoy_fields(t, trust_domain)
    return (
        f'[{f["start_time"]}] "{f["method"]} {f["path"]} {f["protocol"]}" {f["response_code"]} '
        f"{f['response_flags']} {f['response_code_details']} {f['connection_termination_details']} "
        f'"{f["upstream_transport_failure_reason"]}" {f["bytes_received"]} {f["bytes_sent"]} '
        f'{f["duration"]} {f["upstream_service_time"]} "{f["x_forwarded_for"]}" '
        f'"{f["user_agent"]}" "{f["request_id"]}" "{f["authority"]}" "{f["upstream_host"]}" '
        f"{f['upstream_cluster']} {f['upstream_local_address']} {f['downstream_local_address']} "
        f"{f['downstream_remote_address']} {f['requested_server_name']} {f['route_name']}"
    )


WRITERS = {"calico": calico, "hubble": hubble, "envoy-json": envoy_json, "envoy-text": envoy_text}


def write(traffic: list[Traffic], fmt: str, trust_domain: str = "cluster.local") -> str:
    writer = WRITERS[fmt]
    return "".join(writer(t, trust_domain) + "\n" for t in traffic)
