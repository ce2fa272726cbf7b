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
}
"""Warning code → its sentence."""


def model_diagnostic(warning: ModelWarning) -> Diagnostic:
    """The warning as a diagnostic, with its sentence."""
    message = MESSAGES[warning.code](warning)
    return Diagnostic(Severity.WARNING, warning.code, message, warning.location, warning.obj)


def model_diagnostics(warnings: Iterable[ModelWarning]) -> tuple[Diagnostic, ...]:
    return tuple(model_diagnostic(w) for w in warnings)
