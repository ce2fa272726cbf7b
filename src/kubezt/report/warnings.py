"""The sentences of the warnings about the model as a whole (`kubezt.engine.diagnose`), as the
diagnostics every command reports with its results."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from kubezt.engine.diagnose import ModelWarning
from kubezt.errors import Diagnostic, Severity

_AMBIENT_L7 = (
    "applies to ambient workloads, where ztunnel enforces only L4 attributes: "
    "its rules with HTTP/L7 attributes are dropped, so the workload may deny "
    "all traffic; bind L7 rules to a waypoint with targetRefs"
)
_AMBIENT_L7_DENY = (
    "applies to ambient workloads, where ztunnel enforces only L4 attributes: "
    "L7 attributes are removed from its rules, so an L7-only rule denies "
    "nothing and an L4+L7 rule denies all of that L4 traffic; bind it to a "
    "waypoint with targetRefs"
)

MESSAGES: dict[str, Callable[[ModelWarning], str]] = {
    "W060": lambda w: _AMBIENT_L7 if w.param("action") == "ALLOW" else _AMBIENT_L7_DENY,
    "W061": lambda w: (
        f"CUSTOM policy (provider {w.param('provider')!r}): the external authorizer's answer "
        "is not modelled; kubezt assumes it denies the requests the policy matches"
    ),
    "W062": lambda w: (
        f"{w.param('count')} workload(s) have no pod IP (e.g. {w.param('example')}) while "
        "policies match CIDRs: kubezt assumes such rules do not allow them and do deny them; "
        "give status.podIP to evaluate them exactly"
    ),
    "W063": lambda w: (
        "has no spec.clusterIP, the address sidecar clients connect to, while "
        + _capture_clients(w)
        + " whether those sidecars capture connections to this Service is unknown. "
        + _BOTH_WAYS
        + "; give spec.clusterIP (as the API server assigned it) to evaluate them exactly"
    ),
    "W064": lambda w: (
        f"{w.param('count')} workload(s) have no pod IP (e.g. {w.param('example')}) while "
        + _capture_clients(w)
        + " whether those sidecars capture connections to these pods' addresses is unknown. "
        + _BOTH_WAYS
        + "; give status.podIP to evaluate them exactly"
    ),
}
"""Warning code → its sentence."""


_BOTH_WAYS = (
    "kubezt decides each such connection both ways (captured: mTLS as the mesh sends it; not "
    "captured: plaintext without identity, which STRICT refuses) and counts it allowed when "
    "either way allows it, so no exposure is hidden but a connection reported allowed may be "
    "refused"
)


def _capture_clients(w: ModelWarning) -> str:
    clients = w.param("clients")
    named = ", ".join(str(c) for c in clients) if isinstance(clients, tuple) else ""
    count = w.param("client_count")
    more = (
        f" and {int(count) - len(clients)} more"
        if isinstance(count, int) and isinstance(clients, tuple) and count > len(clients)
        else ""
    )
    keys = w.param("annotations")
    listed = " / ".join(str(k) for k in keys) if isinstance(keys, tuple) else ""
    return f"sidecar client(s) {named}{more} set {listed} without covering every address:"


def model_diagnostic(warning: ModelWarning) -> Diagnostic:
    """The warning as a diagnostic, with its sentence."""
    message = MESSAGES[warning.code](warning)
    return Diagnostic(Severity.WARNING, warning.code, message, warning.location, warning.obj)


def model_diagnostics(warnings: Iterable[ModelWarning]) -> tuple[Diagnostic, ...]:
    return tuple(model_diagnostic(w) for w in warnings)
