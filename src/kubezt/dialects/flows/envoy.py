"""Istio/Envoy access logs: Istio's default text format and its JSON encoding.

Follows `EnvoyTextLogFormat` and `EnvoyJSONLogFormatIstio` of istio/istio
(`pilot/pkg/model/telemetry_logging.go`, documented at istio.io "Default access log format"):

    [%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%"
    %RESPONSE_CODE% %RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS%
    "%UPSTREAM_TRANSPORT_FAILURE_REASON%" %BYTES_RECEIVED% %BYTES_SENT% %DURATION%
    %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%"
    "%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%" %UPSTREAM_CLUSTER_RAW%
    %UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS%
    %REQUESTED_SERVER_NAME% %ROUTE_NAME%

and the JSON keys `start_time`, `method`, `path`, `protocol`, `response_code`,
`response_flags`, `response_code_details`, `connection_termination_details`, `authority`,
`upstream_host`, `upstream_cluster`, `upstream_local_address`, `downstream_local_address`,
`downstream_remote_address`, `requested_server_name`, `route_name`, …. Istio's defaults do not
log the peer's identity; a format that adds `%DOWNSTREAM_PEER_URI_SAN%` /
`%UPSTREAM_PEER_URI_SAN%` as `downstream_peer_uri_san` / `upstream_peer_uri_san` (JSON) is read.

Which proxy wrote the line follows from `upstream_cluster`: `inbound|8080||` is the server's
sidecar (the client is `downstream_remote_address`, the server `downstream_local_address`);
`outbound|80||summary.shop.svc.cluster.local` is the client's (the server is
`upstream_host`, the Service is named by the cluster; a cluster host that is not a Service's,
`outbound|443||api.example.com`, is a ServiceEntry's: the destination's DNS name);
`PassthroughCluster` is a client's connection to an address no Service names (its original
destination `upstream_host`), `BlackHoleCluster` one refused by `outboundTrafficPolicy:
REGISTRY_ONLY` (denied; the destination is `downstream_local_address`).

An ambient waypoint (an Envoy that istiod configures) writes the same format; its clusters are
named `inbound-vip|8000|http|probe.starfleet.svc.cluster.local` (a request to a
Service: the client is `downstream_remote_address`, which ztunnel keeps, the pod
`upstream_host`, `envoy://connect_originate/10.244.0.15:8080`) or
`inbound-pod|9080||10.244.2.9` (a request to a pod). Its HBONE `CONNECT` lines and requests it
refused before choosing a pod (`upstream_host` `-`: no destination pod) are skipped.

A request Istio's RBAC filter refused
(`response_code_details` or `connection_termination_details` starting with
`rbac_access_denied`) is a denied flow; anything else Envoy logged went through policy.
"""

from __future__ import annotations

import re
from typing import Any

from kubezt.dialects.flows._fields import BadLine, host_port, port, text, timestamp
from kubezt.ir.flows import FlowEnd, FlowRecord, Observed
from kubezt.ir.ports import Protocol

WAYPOINT_CLUSTERS = frozenset({"inbound-vip", "inbound-pod"})
PASSTHROUGH_CLUSTERS = frozenset({"PassthroughCluster", "BlackHoleCluster"})

_QUOTED = r'"((?:[^"\\]|\\.)*)"'
_TOKEN = r"(\S+)"
TEXT_LINE = re.compile(
    r"^\[(?P<start_time>[^\]]*)\] "
    r'"(?P<method>\S+) (?P<path>\S+) (?P<protocol>[^"]*)" '
    r"(?P<response_code>\S+) (?P<response_flags>\S+) (?P<response_code_details>\S+) "
    r"(?P<connection_termination_details>\S+) "
    rf"{_QUOTED.replace('(', '(?P<upstream_transport_failure_reason>', 1)} "
    r"(?P<bytes_received>\S+) (?P<bytes_sent>\S+) (?P<duration>\S+) "
    r"(?P<upstream_service_time>\S+) "
    rf"{_QUOTED.replace('(', '(?P<x_forwarded_for>', 1)} "
    rf"{_QUOTED.replace('(', '(?P<user_agent>', 1)} "
    rf"{_QUOTED.replace('(', '(?P<request_id>', 1)} "
    rf"{_QUOTED.replace('(', '(?P<authority>', 1)} "
    rf"{_QUOTED.replace('(', '(?P<upstream_host>', 1)} ?"
    r"(?P<upstream_cluster>\S+) +(?P<upstream_local_address>\S+) +"
    r"(?P<downstream_local_address>\S+) (?P<downstream_remote_address>\S+) "
    r"(?P<requested_server_name>\S+) (?P<route_name>\S+)\s*$"
)
"""Istio's default text format (a missing space before the upstream cluster, as some Istio
versions print it, is accepted)."""


def parse_envoy_text(line_text: str, file: str, line: int) -> FlowRecord | None:
    match = TEXT_LINE.match(line_text)
    if match is None:
        raise BadLine("not Istio's default access-log format (or JSON)")
    return parse_envoy_fields(match.groupdict(), file, line)


def parse_envoy_fields(doc: Any, file: str, line: int) -> FlowRecord | None:
    """One access-log entry as a mapping of Istio's JSON keys to values; None for a
    waypoint's HBONE `CONNECT` line or a request it refused before choosing a pod."""
    if not isinstance(doc, dict):
        raise BadLine(f"expected a JSON object, got {type(doc).__name__}")
    cluster = _dash(text(doc, "upstream_cluster")).rstrip(";")
    direction, _, rest = cluster.partition("|")
    local_ip, local_port = host_port(
        _internal(text(doc, "downstream_local_address")), "downstream_local_address"
    )
    remote_ip, _ = host_port(
        _internal(text(doc, "downstream_remote_address")), "downstream_remote_address"
    )
    upstream_ip, upstream_port = host_port(_internal(text(doc, "upstream_host")), "upstream_host")
    svc_ns = svc_name = entry_host = ""
    svc_port = 0
    if direction in PASSTHROUGH_CLUSTERS:
        # Outbound to an address no Service or ServiceEntry names (the client's sidecar):
        # PassthroughCluster forwards it to the original destination, BlackHoleCluster
        # (outboundTrafficPolicy REGISTRY_ONLY) refuses it.
        dst_ip, dst_port = (upstream_ip, upstream_port) if upstream_port else (local_ip, local_port)
        if not dst_port:
            raise BadLine(f"downstream_local_address: no destination address for {cluster}")
        src = FlowEnd(ip=remote_ip)
        dst = FlowEnd(ip=dst_ip, principal=_principal(text(doc, "upstream_peer_uri_san")))
        reporter = "outbound"
    elif direction == "inbound":
        dst_ip, dst_port = local_ip, local_port
        if not dst_port:
            parts = rest.split("|")
            dst_port = int(parts[0]) if parts and parts[0].isdigit() else 0
        src = FlowEnd(ip=remote_ip, principal=_principal(text(doc, "downstream_peer_uri_san")))
        dst = FlowEnd(ip=dst_ip)
        reporter = "inbound"
    elif direction == "outbound":
        parts = rest.split("|")
        host = parts[2] if len(parts) > 2 else ""
        labels = host.split(".")
        if len(labels) >= 3 and labels[2] == "svc":
            svc_name, svc_ns = labels[0], labels[1]
            svc_port = int(parts[0]) if parts[0].isdigit() else 0
        else:
            entry_host = host  # a ServiceEntry host: the destination's DNS name
        dst_ip, dst_port = upstream_ip, upstream_port
        src = FlowEnd(ip=remote_ip)
        dst = FlowEnd(ip=dst_ip, principal=_principal(text(doc, "upstream_peer_uri_san")))
        reporter = "outbound"
        if not dst_port:
            raise BadLine(f"upstream_host: no upstream address for cluster {cluster!r}")
    elif direction in WAYPOINT_CLUSTERS:
        # A waypoint: `inbound-vip|<service port>|<http|tcp>[/subset]|<service host>` or
        # `inbound-pod|<port>||<pod address>`; the client is `downstream_remote_address`
        # (ztunnel keeps the original source), the pod `upstream_host`.
        parts = rest.split("|")
        if _dash(text(doc, "method")) == "CONNECT":
            return None  # the HBONE tunnel itself, not a request
        if direction == "inbound-pod" and not upstream_port and len(parts) > 2:
            upstream_ip = parts[2]
            upstream_port = int(parts[0]) if parts[0].isdigit() else 0
        if not upstream_port:
            return None  # refused before a pod was chosen: the log names no destination pod
        labels = parts[2].split(".") if len(parts) > 2 else []
        if direction == "inbound-vip" and len(labels) >= 3 and labels[2] == "svc":
            svc_name, svc_ns = labels[0], labels[1]
            svc_port = int(parts[0]) if parts[0].isdigit() else 0
        dst_ip, dst_port = upstream_ip, upstream_port
        src = FlowEnd(ip=remote_ip, principal=_principal(text(doc, "downstream_peer_uri_san")))
        dst = FlowEnd(ip=dst_ip, principal=_principal(text(doc, "upstream_peer_uri_san")))
        reporter = "waypoint"
    else:
        raise BadLine(
            "upstream_cluster: expected inbound|…, outbound|… (a sidecar's log) or "
            f"inbound-vip|… / inbound-pod|… (a waypoint's), got {cluster!r}"
        )
    method = _dash(text(doc, "method"))
    path = _dash(text(doc, "path")).split("?", 1)[0]
    code = _dash(str(doc.get("response_code", "") if doc.get("response_code") is not None else ""))
    details = (
        _dash(text(doc, "response_code_details"))
        + " "
        + _dash(text(doc, "connection_termination_details"))
    )
    if "rbac_access_denied" in details or direction == "BlackHoleCluster":
        observed = Observed.DENIED
    elif code and code != "0":
        observed = Observed.ALLOWED
    elif method:
        observed = Observed.UNKNOWN  # no response: the request may never have reached policy
    else:
        observed = Observed.ALLOWED  # a TCP connection Envoy proxied
    if code and not code.isdigit():
        raise BadLine(f"response_code: expected a number, got {code!r}")
    return FlowRecord(
        file=file,
        line=line,
        src=src,
        dst=dst,
        port=port(
            dst_port, "downstream_local_address" if reporter == "inbound" else "upstream_host"
        ),
        protocol=Protocol.TCP,
        observed=observed,
        time=timestamp(_dash(text(doc, "start_time")), "start_time"),
        service_namespace=svc_ns,
        service_name=svc_name,
        service_port=svc_port,
        method=method,
        path=path,
        host=_dash(text(doc, "authority")) or entry_host,
        reporter=reporter,
    )


def _dash(value: str) -> str:
    return "" if value == "-" else value


def _internal(value: str) -> str:
    """An address, with a waypoint's Envoy-internal forms read: `envoy://connect_originate/
    10.244.0.15:8080` is that address; `envoy://internal_client_address/` and other internal
    listeners name none."""
    value = _dash(value)
    if not value.startswith("envoy://"):
        return value
    name, _, address = value.removeprefix("envoy://").partition("/")
    if name == "connect_originate" and address:
        return address.rstrip("/")
    parts = name.split("|")
    if parts[0] == "inbound-pod" and len(parts) == 4 and parts[1].isdigit() and parts[3]:
        ip = parts[3]
        return f"[{ip}]:{parts[1]}" if ":" in ip else f"{ip}:{parts[1]}"
    return ""


def _principal(uri: str) -> str:
    uri = _dash(uri)
    return uri.removeprefix("spiffe://")
