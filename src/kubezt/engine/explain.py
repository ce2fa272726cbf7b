"""Explanations as data: ordered steps, each naming a layer, an object and what it decided."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TypeAlias

from kubezt.ir.mesh import AuthzAction
from kubezt.ir.policy import Action, Direction
from kubezt.ir.provenance import Source


class Layer(StrEnum):
    """Layer names used in verdicts (`denied_by`) and explanation steps."""

    K8S_NETPOL = "k8s-netpol"
    CALICO = "calico"
    CLUSTER_NETPOL = "cluster-netpol"
    """ClusterNetworkPolicy, AdminNetworkPolicy, BaselineAdminNetworkPolicy."""
    PEER_AUTHENTICATION = "peer-authentication"
    TLS_MISMATCH = "tls-mismatch"
    AUTHZ_SIDECAR = "authz-sidecar"
    ZTUNNEL = "ztunnel"
    WAYPOINT = "waypoint"
    CALICO_ALP = "calico-alp"
    DATAPLANE = "dataplane"
    """Facts of the data plane itself (self traffic, host-originated traffic, mesh capture)."""


class Effect(StrEnum):
    ALLOW = "allow"
    DENY = "deny"
    CONTINUE = "continue"
    """Recorded, no verdict yet (a Log rule, a Pass, a selecting policy without a match)."""
    INFO = "info"


StepParam: TypeAlias = (
    "str | int | float | bool | tuple[str, ...] | tuple[StagedChange, ...] | Step | Message"
    " | tuple[Message, ...] | None"
)
"""A message parameter: a name, a number, a flag, names, staged changes, a nested step, or
nested messages."""


@dataclass(frozen=True, slots=True)
class Message:
    """A sentence as data: a stable kebab-case code and its parameters. The engine says what it
    found this way; the report layer writes the sentence (`kubezt.report.steps`)."""

    code: str
    params: tuple[tuple[str, StepParam], ...] = ()

    def param(self, name: str) -> StepParam:
        return dict(self.params).get(name)


@dataclass(frozen=True, slots=True)
class StagedChange:
    """A staged policy against the enforced set: `added` (with the policy it replaces, if
    any) or deleted."""

    policy: str
    replaces: str = ""
    deleted: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Step:
    """One thing the evaluator looked at.

    `reason` is a stable kebab-case code (`no-policy-selects-destination`, `rule-matched`,
    `calico-tier-pass`, `end-of-tier-deny`, …). It is also the code of the step's message:
    `params` (with the fields below) are its parameters, and the report layer writes the
    sentence (`kubezt.report.steps`); the engine writes no English.
    """

    layer: Layer
    reason: str
    effect: Effect
    params: tuple[tuple[str, StepParam], ...] = ()
    source: Source | None = None
    direction: Direction | None = None
    tier: str = ""
    rule_index: int | None = None
    action: Action | AuthzAction | None = None
    """The action of the rule or policy that matched: Calico's, or an AuthorizationPolicy's."""
    leg: str = ""
    """The wire leg of a multi-leg path (`client→waypoint`, …) the step belongs to."""

    def param(self, name: str) -> StepParam:
        return dict(self.params).get(name)


@dataclass(frozen=True, slots=True)
class LayerVerdict:
    """The verdict of some layers of one connection: whether they let it through, the steps
    that decided, and the layer that said no."""

    allowed: bool
    steps: tuple[Step, ...]
    denied_by: Layer | None = None


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    denied_by: Layer | None
    steps: tuple[Step, ...]

    @property
    def verdict(self) -> str:
        return "allow" if self.allowed else "deny"
