"""The sentence of each explanation step, from its message code (`Step.reason`) and parameters.

The engine records what it decided as data; this is the one place its L3/L4 steps become
English, for the table, the JSON/YAML `detail` field, diff's "why" and the audit. Steps whose
code has no renderer here carry their sentence in `Step.detail`.
"""

from __future__ import annotations

from collections.abc import Callable

from kubezt.engine.explain import StagedChange, Step


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
}
"""Message code → renderer, for the steps that carry parameters."""


def step_text(step: Step) -> str:
    """The step's sentence."""
    render = RENDERERS.get(step.reason)
    text = step.detail if render is None or step.detail else render(step)
    return f"[{step.leg}] {text}" if step.leg else text
