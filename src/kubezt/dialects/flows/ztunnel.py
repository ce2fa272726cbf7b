"""Istio ambient ztunnel access logs: its plain text lines and its JSON lines (`LOG_FORMAT=json`).

Follows istio/ztunnel `src/proxy/metrics.rs` (the `access` target: `ConnectionResult` writes
"connection complete" when a connection ends, `log_early_deny` writes "connection failed"
when one is refused before its workloads are known) as `src/telemetry.rs` prints it:

    <time>\\t<level>\\taccess\\tconnection complete\\tsrc.addr=10.244.0.24:46238
    src.workload="shell-6d8bcd654d-t88gp" src.namespace="default"
    src.identity="spiffe://cluster.local/ns/default/sa/default" dst.addr=10.244.0.42:15008
    dst.hbone_addr=10.244.0.42:8080 dst.service="echo.default.svc.cluster.local"
    dst.workload="echo-7d8f9c6b5-x2kq4" dst.namespace="default"
    dst.identity="spiffe://cluster.local/ns/default/sa/echo" direction="outbound"
    bytes_sent=67 bytes_recv=490 duration="13ms"

(one line; values are Rust `Debug` strings, quoted, or bare; older releases print
`<time>  INFO access: connection complete src.addr=…`, also read), and in JSON the same keys
next to `level`, `time`, `scope` and `message`. Lines of other targets (`xds`, `dns`, `state`,
…), "connection opened" (debug; the "connection complete" line follows) and "connection
failed" (refused before any authorization: it names addresses only, and its error is never a
policy's) are skipped.

The connection's target is `dst.hbone_addr` when the connection was tunnelled (HBONE; then
`dst.addr` is the peer's port 15008) and `dst.addr` otherwise. When the HBONE target is not
the address of the peer (`dst.addr`), the peer is a waypoint or a network gateway reached for
a Service: that hop is skipped, since the waypoint's own access log (read by the `envoy`
reader) names the client and the pod it chose. A connection with no `error` is allowed; an
authorization rejection (`connection closed due to policy rejection: …`, `… policy change`,
or, at the client's end, `http status: 401 Unauthorized` from the server's ztunnel) is
denied; any other error has no verdict. `src.identity`/`dst.identity` (present only over mTLS)
are the SPIFFE identities the join uses; `src.workload`/`dst.workload` the pod names.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from kubezt.dialects.flows._fields import BadLine, host_port, port, timestamp
from kubezt.ir.flows import FlowEnd, FlowRecord, Observed
from kubezt.ir.ports import Protocol

TEXT_START = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z?\s+[A-Za-z]+\s")
"""A ztunnel text line: an RFC 3339 time and a level."""
_OLD_HEAD = re.compile(
    r"^(?P<time>\S+)\s+(?P<level>[A-Za-z]+)\s+(?P<scope>[\w:]+?):?\s+(?P<rest>.*)$"
)
_FIELD = re.compile(r'([A-Za-z_][\w.]*)=("(?:[^"\\]|\\.)*"|\S*)')
ACCESS_SCOPES = frozenset({"access", "ztunnel::proxy::metrics", "ztunnel::access"})
DENIALS = (
    "connection closed due to policy rejection",
    "connection closed due to policy change",
    "http status: 401",
)


def parse_ztunnel_text(line_text: str, file: str, line: int) -> FlowRecord | None:
    """One ztunnel text line; None for a line of another target or message."""
    parts = line_text.split("\t", 4)
    if len(parts) >= 4 and TEXT_START.match(line_text):
        time, level, scope, message = parts[0], parts[1], parts[2], parts[3]
        rest = parts[4] if len(parts) > 4 else ""
    else:
        head = _OLD_HEAD.match(line_text)
        if head is None or not TEXT_START.match(line_text):
            raise BadLine("not a ztunnel log line (expected `<time> <level> <target> …`)")
        time, level, scope = head["time"], head["level"], head["scope"]
        message, _, rest = head["rest"].partition(" src.")
        rest = "src." + rest if rest else ""
    if scope.split(":", 1)[0] != "access" and scope not in ACCESS_SCOPES:
        return None
    doc: dict[str, Any] = {"time": time, "level": level.lower(), "message": message.strip()}
    for key, value in _FIELD.findall(rest):
        doc[key] = _unquote(value)
    return parse_ztunnel_fields(doc, file, line)


def parse_ztunnel_fields(doc: Any, file: str, line: int) -> FlowRecord | None:
    """One ztunnel access-log entry as a mapping of its keys (its JSON form)."""
    if not isinstance(doc, dict):
        raise BadLine(f"expected a JSON object, got {type(doc).__name__}")
    scope = doc.get("scope")
    if scope is not None and scope not in ACCESS_SCOPES:
        return None
    if _str(doc, "message") != "connection complete":
        return None
    direction = _str(doc, "direction")
    if direction not in ("inbound", "outbound"):
        raise BadLine(f"direction: expected inbound or outbound, got {direction!r}")
    src_ip, _ = host_port(_str(doc, "src.addr"), "src.addr")
    peer_ip, peer_port = host_port(_str(doc, "dst.addr"), "dst.addr")
    if not peer_port:
        raise BadLine("dst.addr: missing")
    hbone = _str(doc, "dst.hbone_addr")
    target_ip, target_port = host_port(hbone, "dst.hbone_addr") if hbone else (peer_ip, peer_port)
    if target_ip != peer_ip:
        return None  # a hop to a waypoint or gateway: the waypoint's log has the call
    error = _str(doc, "error")
    if not error:
        observed = Observed.ALLOWED
    elif any(error.startswith(d) for d in DENIALS):
        observed = Observed.DENIED
    else:
        observed = Observed.UNKNOWN
    service = _str(doc, "dst.service")
    labels = service.split(".")
    svc_name = svc_ns = host = ""
    if len(labels) >= 3 and labels[2] == "svc":
        svc_name, svc_ns = labels[0], labels[1]
    elif service:
        host = service  # a ServiceEntry host (outside the cluster)
    return FlowRecord(
        file=file,
        line=line,
        src=FlowEnd(
            namespace=_str(doc, "src.namespace"),
            name=_str(doc, "src.workload"),
            ip=src_ip,
            principal=_principal(_str(doc, "src.identity")),
        ),
        dst=FlowEnd(
            namespace=_str(doc, "dst.namespace"),
            name=_str(doc, "dst.workload"),
            ip=target_ip,
            principal=_principal(_str(doc, "dst.identity")),
        ),
        port=port(target_port, "dst.hbone_addr" if hbone else "dst.addr"),
        protocol=Protocol.TCP,
        observed=observed,
        time=timestamp(doc.get("time"), "time"),
        service_namespace=svc_ns,
        service_name=svc_name,
        host=host,
        reporter=direction,
    )


def _str(doc: Mapping[str, Any], key: str) -> str:
    value = doc.get(key)
    if value is None:
        return ""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise BadLine(f"{key}: expected a string, got {value!r}")
    return value


def _unquote(value: str) -> str:
    """A Rust `Debug` string (`"a\\"b"`) or a bare value."""
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        return re.sub(r"\\(.)", r"\1", value[1:-1])
    return value


def _principal(uri: str) -> str:
    return uri.removeprefix("spiffe://")
