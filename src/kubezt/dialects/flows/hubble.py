"""Cilium Hubble flows: `hubble observe -o jsonpb` (and `-o json`) lines.

Follows `api/v1/flow/flow.proto` of cilium/cilium as Hubble prints it (protobuf field names):
a `GetFlowsResponse` line `{"flow": {...}, "node_name", "time"}` or a bare `Flow` with `time`,
`verdict` (`FORWARDED`, `DROPPED`, `AUDIT`, …), `drop_reason_desc`, `IP` (`source`,
`destination`), `l4` (`TCP`/`UDP`/`SCTP` with `source_port`, `destination_port`; ICMP flows are
skipped), `source`/`destination` (`Endpoint`: `ID`, `identity`, `namespace`, `labels` as
`k8s:key=value`, `pod_name`, `workloads`), `destination_service` (`name`, `namespace`), `l7`
(`type` `REQUEST`/`RESPONSE`, `http`: `code`, `method`, `url`, `protocol`, `headers`),
`traffic_direction`, `is_reply`, `destination_names` (the DNS names Cilium's DNS proxy saw for
the destination address: an outside destination's name).

Replies (`is_reply: true`) and L7 responses are skipped (the request is the flow); a
`FORWARDED` verdict is allowed, `DROPPED` denied, `AUDIT` (policy audit mode: would have been
dropped) is recorded as allowed, since the traffic went through.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from kubezt.dialects.flows._fields import BadLine, field, integer, port, text, timestamp
from kubezt.ir.flows import FlowEnd, FlowRecord, Observed
from kubezt.ir.ports import Protocol

VERDICTS = {
    "FORWARDED": Observed.ALLOWED,
    "REDIRECTED": Observed.ALLOWED,
    "AUDIT": Observed.ALLOWED,
    "DROPPED": Observed.DENIED,
    "ERROR": Observed.UNKNOWN,
    "TRACED": Observed.UNKNOWN,
    "TRANSLATED": Observed.UNKNOWN,
    "VERDICT_UNKNOWN": Observed.UNKNOWN,
}
L4 = {"TCP": Protocol.TCP, "UDP": Protocol.UDP, "SCTP": Protocol.SCTP}


def parse_hubble(doc: Any, file: str, line: int) -> FlowRecord | None:
    """The flow of one line, or None for a line that is not a connection (a reply, an L7
    response, ICMP, a non-flow response such as `node_status`)."""
    if not isinstance(doc, dict):
        raise BadLine(f"expected a JSON object, got {type(doc).__name__}")
    flow = doc.get("flow", doc if "verdict" in doc else None)
    if flow is None:
        return None  # GetFlowsResponse of another type (node_status, lost_events)
    if not isinstance(flow, dict):
        raise BadLine(f"flow: expected an object, got {flow!r}")
    if flow.get("is_reply") is True or flow.get("reply") is True:
        return None
    verdict = text(flow, "verdict") or "VERDICT_UNKNOWN"
    if verdict not in VERDICTS:
        raise BadLine(f"verdict: expected one of {', '.join(VERDICTS)}, got {verdict!r}")
    l4 = field(flow, "l4")
    if not isinstance(l4, dict) or not l4:
        return None
    proto_name = next(iter(l4))
    if proto_name not in L4:
        return None
    ports = l4[proto_name]
    if not isinstance(ports, dict):
        raise BadLine(f"l4.{proto_name}: expected an object, got {ports!r}")
    ip = field(flow, "IP", "ip") or {}
    if not isinstance(ip, dict):
        raise BadLine(f"IP: expected an object, got {ip!r}")
    method = path = host = ""
    l7 = field(flow, "l7")
    if isinstance(l7, dict):
        if text(l7, "type") == "RESPONSE":
            return None
        http = l7.get("http")
        if isinstance(http, dict):
            method = text(http, "method")
            url = urlsplit(text(http, "url"))
            path, host = url.path or "/", url.netloc
    if not host:
        names = field(flow, "destination_names") or []
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise BadLine(f"destination_names: expected a list of names, got {names!r}")
        host = names[0].rstrip(".") if names else ""
    service = field(flow, "destination_service") or {}
    if not isinstance(service, dict):
        raise BadLine(f"destination_service: expected an object, got {service!r}")
    return FlowRecord(
        file=file,
        line=line,
        src=_end(field(flow, "source"), text(ip, "source"), "source"),
        dst=_end(field(flow, "destination"), text(ip, "destination"), "destination"),
        port=port(
            integer(ports, "destination_port", required=True), f"l4.{proto_name}.destination_port"
        ),
        protocol=L4[proto_name],
        observed=VERDICTS[verdict],
        time=timestamp(field(flow, "time") or doc.get("time"), "time"),
        service_namespace=text(service, "namespace"),
        service_name=text(service, "name"),
        method=method,
        path=path,
        host=host,
        reporter=text(flow, "traffic_direction").lower(),
        policies=(text(flow, "drop_reason_desc"),) if verdict == "DROPPED" else (),
    )


def _end(endpoint: Any, address: str, name: str) -> FlowEnd:
    if endpoint is None:
        return FlowEnd(ip=address)
    if not isinstance(endpoint, dict):
        raise BadLine(f"{name}: expected an object, got {endpoint!r}")
    raw = endpoint.get("labels") or []
    if not isinstance(raw, list):
        raise BadLine(f"{name}.labels: expected a list, got {raw!r}")
    labels: list[tuple[str, str]] = []
    kind = "pod" if text(endpoint, "pod_name") else ""
    for item in raw:
        source, _, pair = str(item).partition(":")
        key, _, value = pair.partition("=")
        if source == "reserved":
            kind = key  # world, host, kube-apiserver, remote-node, health, …
        elif (
            source == "k8s"
            and not key.startswith("io.cilium.")
            and not key.startswith("io.kubernetes.pod.namespace")
        ):
            labels.append((key, value))
    return FlowEnd(
        namespace=text(endpoint, "namespace"),
        name=text(endpoint, "pod_name"),
        ip=address,
        kind=kind,
        labels=tuple(sorted(labels)),
    )
