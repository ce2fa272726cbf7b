"""The sentence of each explanation step, from its message code (`Step.reason`) and parameters.

The engine records what it decided as data; this is the one place its steps (L3/L4, mesh
capture and TLS, authorization) become English, for the table, the JSON/YAML `detail` field,
diff's "why" and the audit. A step whose code has no renderer here (an audit's bare
`allowed`) has no sentence.
"""

from __future__ import annotations

from collections.abc import Callable

from kubezt.engine.capture import (
    BYPASS_INBOUND_CAPTURE,
    EXCLUDE_INBOUND_PORTS,
    EXCLUDE_OUTBOUND_PORTS,
    EXCLUDE_OUTBOUND_RANGES,
    INCLUDE_INBOUND_PORTS,
    INCLUDE_OUTBOUND_RANGES,
)
from kubezt.engine.explain import Message, StagedChange, Step


def _names(step: Step, key: str) -> str:
    value = step.param(key)
    if isinstance(value, tuple):
        return ", ".join(str(v) for v in value)
    return str(value or "")


def _rank(step: Step) -> str:
    """` (order N)`, or for the policy API ` (tier Admin, priority N)`."""
    order = step.param("order")
    api_tier = step.param("api_tier")
    if api_tier:
        if order is None:
            return f" (tier {api_tier})"
        return f" (tier {api_tier}, priority {order:g})"
    return "" if order is None else f" (order {order:g})"


def _rule_matched(step: Step) -> str:
    path = step.param("path")
    direction = step.direction.value.lower() if step.direction is not None else ""
    where = str(path) if path else f"{direction} rule {step.rule_index}"
    if step.param("rule_name"):
        where += f" {step.param('rule_name')!r}"
    text = f"{step.param('policy')}{_rank(step)} {where} ({step.param('rule_action')}) matched"
    return text + (": skip to the next tier" if step.reason == "calico-tier-pass" else "")


def _change(change: StagedChange) -> str:
    if change.deleted:
        return f"deleting {change.policy}"
    return change.policy + (f" replacing {change.replaces}" if change.replaces else " (new)")


def _staged(step: Step) -> str:
    changes = step.param("changes")
    listed = (
        ", ".join(_change(c) for c in changes if isinstance(c, StagedChange))
        if isinstance(changes, tuple)
        else ""
    )
    direction = step.direction.value.lower() if step.direction is not None else ""
    text = (
        f"if the staged policies were enforced ({listed}), {direction} would be "
        f"{'allowed' if step.param('allowed') else 'denied'}"
    )
    if step.reason == "staged-policy-would-change":
        text += f" (today: {'allowed' if step.param('allowed_today') else 'denied'})"
    deciding = step.param("deciding")
    return text + (f": {step_text(deciding)}" if isinstance(deciding, Step) else "")


_NOT_SEEN_INBOUND = "the sidecar does not see this connection"
_NOT_SEEN_OUTBOUND = "the client's sidecar does not see this connection, it leaves as plaintext"

MESSAGES: dict[str, Callable[[Message], str]] = {
    # capture (`engine.capture`): why a proxy does not see a connection
    "inbound-proxy-port": lambda m: (
        f"port {m.param('port')} is one of the sidecar's own ports (Envoy stats 15090, "
        "readiness 15021, the pilot-agent status port, 15020 by default), which istio-iptables "
        "never captures inbound: " + _NOT_SEEN_INBOUND
    ),
    "inbound-port-excluded": lambda m: (
        f"port {m.param('port')} is excluded from inbound capture ({EXCLUDE_INBOUND_PORTS}): "
        + _NOT_SEEN_INBOUND
    ),
    "inbound-ports-empty": lambda m: (
        f"{INCLUDE_INBOUND_PORTS} is empty: port {m.param('port')} is not captured inbound, "
        + _NOT_SEEN_INBOUND
    ),
    "inbound-port-not-listed": lambda m: (
        f"{INCLUDE_INBOUND_PORTS} does not list port {m.param('port')}: port {m.param('port')} "
        "is not captured inbound, " + _NOT_SEEN_INBOUND
    ),
    "outbound-port-excluded": lambda m: (
        f"port {m.param('port')} is excluded from outbound capture ({EXCLUDE_OUTBOUND_PORTS}): "
        + _NOT_SEEN_OUTBOUND
    ),
    "outbound-range-excluded": lambda m: (
        f"{m.param('address')} is in {EXCLUDE_OUTBOUND_RANGES}: " + _NOT_SEEN_OUTBOUND
    ),
    "outbound-range-not-included": lambda m: (
        f"{INCLUDE_OUTBOUND_RANGES} does not cover the destination "
        f"({m.param('address') or 'address unknown'}): " + _NOT_SEEN_OUTBOUND
    ),
    "ztunnel-inbound-bypassed": lambda m: (
        f"{BYPASS_INBOUND_CAPTURE} is true: plaintext inbound connections reach the pod "
        "without ztunnel"
    ),
    # client TLS (`engine.connection.plan_path`): mTLS or plaintext, and why
    "protocol-not-captured": lambda m: (
        f"{m.param('protocol')} is not captured by sidecars or ztunnel: no mesh on the path"
    ),
    "client-outside-mesh": lambda m: "the client is outside the mesh: plaintext",
    "host-traffic-exempt": lambda m: (
        "traffic from the node (kubelet probes; in ambient mode everything the host sends, "
        f"SNATed to {m.param('address')}) is plaintext and exempt from mesh policy"
    ),
    "hbone-to-ambient": lambda m: "mesh client to an ambient pod: HBONE (mTLS)",
    "hbone-ambient-to-sidecar": lambda m: "ambient client to a sidecar pod: HBONE (mTLS)",
    "ambient-to-outside-mesh": lambda m: (
        "ambient client to a pod outside the mesh: plaintext from the client's pod"
    ),
    "destination-rule-tls": lambda m: (
        f"DestinationRule {m.param('rule')} sets {m.param('mode')}"
        + ("" if m.param("mode") == "ISTIO_MUTUAL" else ": no Istio mTLS")
    ),
    "auto-mtls-off": lambda m: "auto mTLS is off and no DestinationRule sets TLS: plaintext",
    "auto-mtls-server-disabled": lambda m: (
        "auto mTLS: the server's mTLS mode is DISABLE, so plaintext"
    ),
    "auto-mtls-sidecars": lambda m: "auto mTLS: sidecar client to a sidecar pod",
    "auto-mtls-no-sidecar": lambda m: "auto mTLS: the server has no sidecar, so plaintext",
}
"""Message code → renderer, for the messages nested in steps and paths."""


def message_text(message: Message) -> str:
    """The sentence of one message."""
    return MESSAGES[message.code](message)


def tls_text(tls: Message, not_captured: tuple[Message, ...] = ()) -> str:
    """Why the client sends mTLS or plaintext, after the capture annotations that decided."""
    return "; ".join(message_text(m) for m in (*not_captured, tls))


def _tls_step(step: Step) -> str:
    tls = step.param("tls")
    notes = step.param("not_captured")
    assert isinstance(tls, Message)
    listed = tuple(n for n in notes if isinstance(n, Message)) if isinstance(notes, tuple) else ()
    return tls_text(tls, listed)


def _mtls_scope(step: Step) -> str:
    policy = step.param("policy")
    return f"{step.param('scope')} policy {policy}" if policy else "Istio default"


_ENFORCED_AT = {
    "waypoint": "waypoint {}",
    "ztunnel": "the ztunnel of {}",
    "sidecar": "the sidecar of {}",
}


def _at(step: Step) -> str:
    """Where an authorization step was decided: `the sidecar of ns/name`, …"""
    return _ENFORCED_AT[str(step.param("enforcer"))].format(step.param("at"))


def _authz_matched(step: Step) -> str:
    text = f"{step.param('policy')} rule {step.rule_index} matched at {_at(step)}"
    if step.reason == "custom-policy-matched":
        text += "; the external authorizer's answer is not modelled, assumed deny"
    return text


def _l7_rewritten(step: Step) -> str:
    what = (
        "ztunnel enforces only L4 attributes"
        if step.param("enforcer") == "ztunnel"
        else "this port is handled as TCP"
    )
    how = "dropped" if step.param("policy_action") == "ALLOW" else "narrowed"
    return f"{step.param('policy')}: {what}; rules with HTTP/L7 attributes are {how}"


def _not_policed(step: Step) -> str:
    direction = step.direction.value.lower() if step.direction is not None else ""
    return f"{step.param('end')} is not a pod-network endpoint: no {direction} policy applies"


RENDERERS: dict[str, Callable[[Step], str]] = {
    "no-policy-selects-endpoint": lambda s: (
        "no policy selects the endpoint in this direction; the namespace profile allows"
    ),
    "tier-applies": lambda s: (
        f"tier {s.tier!r}: policies selecting the endpoint: {_names(s, 'policies')}"
    ),
    "tier-default-pass": lambda s: (
        f"no rule in tier {s.tier!r} decided; its default action is Pass"
    ),
    "end-of-tier-deny": lambda s: f"no rule in tier {s.tier!r} allowed it: end-of-tier deny",
    "profile-allow": lambda s: "passed by the last applicable tier; the namespace profile allows",
    "rule-matched": _rule_matched,
    "calico-tier-pass": _rule_matched,
    "log-rule-matched": _rule_matched,
    "equal-priority-overlap": lambda s: (
        f"{_names(s, 'policies')} have equal priority in tier {s.tier!r} and all match: their "
        "order is undefined, so kubezt takes the deny-safe answer"
    ),
    "staged-policy-would-change": _staged,
    "staged-policy-no-change": _staged,
    # the data plane (`engine.connection`)
    "self-traffic": lambda s: "a pod connecting to itself never leaves its network namespace",
    "host-to-local-workload": lambda s: (
        "traffic from the destination's own node is not policed (Calico iptables/nftables "
        "dataplane)"
    ),
    "source-not-policed": _not_policed,
    "destination-not-policed": _not_policed,
    "hbone-tunnel": lambda s: (
        f"{s.param('leg')}: mesh traffic is tunnelled to port {s.param('port')} (HBONE); L3/L4 "
        "policy sees that port, not the application port"
    ),
    "not-captured": _tls_step,
    "client-tls": _tls_step,
    # mTLS admission
    "mtls-to-plaintext-server": lambda s: (
        "the client sends Istio mTLS but the server has no proxy to terminate it"
    ),
    "strict-rejects-plaintext": lambda s: (
        f"mTLS mode STRICT ({_mtls_scope(s)}) rejects the plaintext connection"
    ),
    "mtls-to-disabled-port": lambda s: (
        f"the client sends mTLS to a port whose mode is DISABLE ({_mtls_scope(s)})"
    ),
    "mtls-admitted": lambda s: (
        f"mTLS mode {s.param('mode')} ({_mtls_scope(s)}) admits this "
        f"{'mTLS' if s.param('mtls') else 'plaintext'} connection"
    ),
    "waypoint-identity": lambda s: (
        f"the destination ztunnel sees the waypoint's identity {s.param('principal')}, not the "
        "client's"
    ),
    # authorization (`engine.authz`)
    "l7-rules-rewritten": _l7_rewritten,
    "custom-policy-matched": _authz_matched,
    "deny-policy-matched": _authz_matched,
    "allow-policy-matched": _authz_matched,
    "no-allow-policy": lambda s: f"no ALLOW policy applies at {_at(s)}",
    "no-allow-rule-matched": lambda s: (
        f"ALLOW policies apply at {_at(s)} ({_names(s, 'policies')}) but none matched"
    ),
}
"""Message code → renderer, for the steps that carry parameters."""


def step_text(step: Step) -> str:
    """The step's sentence."""
    render = RENDERERS.get(step.reason)
    text = "" if render is None else render(step)
    return f"[{step.leg}] {text}" if step.leg else text
