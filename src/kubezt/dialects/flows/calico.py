"""Calico open-source flow logs: Goldmane flows and Whisker's `/flows` API, as JSON lines.

Follows `goldmane/proto/api.proto` of projectcalico/calico (message `Flow`: `Key` (a
`FlowKey`: `source_name`, `source_namespace`, `source_type`, `dest_name`, `dest_namespace`,
`dest_type`, `dest_port`, `dest_service_name`, `dest_service_namespace`,
`dest_service_port_name`, `dest_service_port`, `proto`, `reporter`, `action`, `policies` (a
`PolicyTrace`: `enforced_policies`/`pending_policies` of `PolicyHit` `kind`, `namespace`,
`name`, `tier`, `action`, `policy_index`, `rule_index`, `trigger`)), `start_time`,
`end_time`, `source_labels`, `dest_labels`, `num_connections_started`, …) and
`whisker-backend/pkg/apis/v1/flows.go` (`FlowResponse`: the same key fields flattened, with
`protocol`, RFC 3339 times, labels as one string, `policies` with `enforced`/`pending`). Both
the proto field names and their JSON (lowerCamelCase) names are accepted.

`source_name`/`dest_name` name a group of pods sharing a generate-name (`customer-5d7f8c-*`),
and `*_type` says what it is: `wep` (a pod), `hep` (a host endpoint), `ns`/`netset` (a
NetworkSet), `pub`/`pvt`/`net` (addresses outside the cluster, no name).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kubezt.dialects.flows._fields import (
    PORTLESS_PROTOCOLS,
    BadLine,
    field,
    integer,
    labels,
    port,
    protocol,
    text,
    timestamp,
)
from kubezt.ir.flows import FlowEnd, FlowRecord, Observed


def parse_calico(doc: Any, file: str, line: int) -> FlowRecord | None:
    """The flow of one line; None for an ICMP flow (no port)."""
    if not isinstance(doc, dict):
        raise BadLine(f"expected a JSON object, got {type(doc).__name__}")
    if "flow" in doc and isinstance(doc["flow"], dict):  # a FlowResult {id, flow}
        doc = doc["flow"]
    key = field(doc, "Key", "key")
    if key is None:
        key = doc
    elif not isinstance(key, dict):
        raise BadLine(f"Key: expected an object, got {key!r}")
    action = text(key, "action").lower()
    observed = {"allow": Observed.ALLOWED, "deny": Observed.DENIED, "drop": Observed.DENIED}
    if action not in observed:
        raise BadLine(f"action: expected Allow or Deny, got {action!r}")
    proto_text = text(key, "proto", "protocol")
    if proto_text.strip().upper() in PORTLESS_PROTOCOLS:
        return None
    proto = protocol(proto_text, "proto")
    started = integer(doc, "num_connections_started", "numConnectionsStarted")
    return FlowRecord(
        file=file,
        line=line,
        src=FlowEnd(
            namespace=text(key, "source_namespace", "sourceNamespace"),
            name=_name(text(key, "source_name", "sourceName")),
            kind=_kind(key, "source"),
            labels=labels(field(doc, "source_labels", "sourceLabels"), "source_labels"),
        ),
        dst=FlowEnd(
            namespace=text(key, "dest_namespace", "destNamespace"),
            name=_name(text(key, "dest_name", "destName")),
            kind=_kind(key, "dest"),
            labels=labels(field(doc, "dest_labels", "destLabels"), "dest_labels"),
        ),
        port=port(integer(key, "dest_port", "destPort", required=True), "dest_port"),
        protocol=proto,
        observed=observed[action],
        time=timestamp(field(doc, "start_time", "startTime"), "start_time"),
        end_time=timestamp(field(doc, "end_time", "endTime"), "end_time"),
        count=max(started, 1),
        service_namespace=text(key, "dest_service_namespace", "destServiceNamespace"),
        service_name=text(key, "dest_service_name", "destServiceName"),
        service_port=integer(key, "dest_service_port", "destServicePort"),
        reporter=text(key, "reporter").lower(),
        policies=_policies(field(key, "policies")),
    )


def _name(name: str) -> str:
    return "" if name in ("-", "pub", "pvt") else name


def _kind(key: Mapping[str, Any], end: str) -> str:
    """The endpoint type; Whisker leaves it out and names outside networks `pub`/`pvt`."""
    kind = text(key, f"{end}_type", f"{end}Type")
    name = text(key, f"{end}_name", f"{end}Name")
    if not kind and name in ("pub", "pvt"):
        return name
    return kind


def _policies(trace: Any) -> tuple[str, ...]:
    if trace is None:
        return ()
    if not isinstance(trace, dict):
        raise BadLine(f"policies: expected an object, got {trace!r}")
    hits = field(trace, "enforced_policies", "enforcedPolicies", "enforced") or []
    if not isinstance(hits, list):
        raise BadLine(f"policies.enforced_policies: expected a list, got {hits!r}")
    out = []
    for hit in hits:
        if not isinstance(hit, dict):
            raise BadLine(f"policies.enforced_policies: expected objects, got {hit!r}")
        namespace = text(hit, "namespace")
        name = f"{namespace}/{text(hit, 'name')}" if namespace else text(hit, "name")
        kind = hit.get("kind", "")
        out.append(
            f"{text(hit, 'tier') or '-'}/{kind}/{name}#{integer(hit, 'rule_index', 'ruleIndex')}"
            f"={text(hit, 'action')}"
        )
    return tuple(out)
