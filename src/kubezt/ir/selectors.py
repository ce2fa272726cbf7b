"""The label-selector AST shared by Kubernetes, Calico and Istio selectors.

Kubernetes `matchLabels`/`matchExpressions`, Calico selector expressions and Istio
`selector.matchLabels` all lower into these nodes. This module owns evaluation against a label
set and Calico's canonical printing (`str(node)`); it must not parse text (the Calico parser lives
in `kubezt.dialects.calico`).

Semantics follow libcalico-go `lib/selector/parser`: a missing label makes `==`, `in`,
`contains`, `starts with` and `ends with` false and makes `!=` and `not in` true.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeAlias

LabelMap: TypeAlias = Mapping[str, str]


def _quote(value: str) -> str:
    # Calico prints double quotes unless the value itself contains one.
    return f"'{value}'" if '"' in value else f'"{value}"'


@dataclass(frozen=True, slots=True)
class All:
    """Matches every label set (`all()`, the empty Calico selector, K8s `{}`)."""

    def matches(self, labels: LabelMap) -> bool:
        return True

    def __str__(self) -> str:
        return "all()"


@dataclass(frozen=True, slots=True)
class Global:
    """Calico `global()`: matches every label set, and as a rule's namespaceSelector switches
    the rule's scope to non-namespaced objects (GlobalNetworkSets, host endpoints)."""

    def matches(self, labels: LabelMap) -> bool:
        return True

    def __str__(self) -> str:
        return "global()"


@dataclass(frozen=True, slots=True)
class Has:
    key: str

    def matches(self, labels: LabelMap) -> bool:
        return self.key in labels

    def __str__(self) -> str:
        return f"has({self.key})"


@dataclass(frozen=True, slots=True)
class Equals:
    key: str
    value: str

    def matches(self, labels: LabelMap) -> bool:
        return labels.get(self.key) == self.value

    def __str__(self) -> str:
        return f"{self.key} == {_quote(self.value)}"


@dataclass(frozen=True, slots=True)
class NotEquals:
    """`k != v`: true when the label is absent or differs."""

    key: str
    value: str

    def matches(self, labels: LabelMap) -> bool:
        return labels.get(self.key) != self.value

    def __str__(self) -> str:
        return f"{self.key} != {_quote(self.value)}"


@dataclass(frozen=True, slots=True)
class In:
    key: str
    values: frozenset[str]

    def matches(self, labels: LabelMap) -> bool:
        value = labels.get(self.key)
        return value is not None and value in self.values

    def __str__(self) -> str:
        return f"{self.key} in {{{', '.join(_quote(v) for v in sorted(self.values))}}}"


@dataclass(frozen=True, slots=True)
class NotIn:
    """`k not in {...}`: true when the label is absent or its value is not in the set."""

    key: str
    values: frozenset[str]

    def matches(self, labels: LabelMap) -> bool:
        value = labels.get(self.key)
        return value is None or value not in self.values

    def __str__(self) -> str:
        return f"{self.key} not in {{{', '.join(_quote(v) for v in sorted(self.values))}}}"


@dataclass(frozen=True, slots=True)
class Contains:
    key: str
    value: str

    def matches(self, labels: LabelMap) -> bool:
        label = labels.get(self.key)
        return label is not None and self.value in label

    def __str__(self) -> str:
        return f"{self.key} contains {_quote(self.value)}"


@dataclass(frozen=True, slots=True)
class StartsWith:
    key: str
    value: str

    def matches(self, labels: LabelMap) -> bool:
        label = labels.get(self.key)
        return label is not None and label.startswith(self.value)

    def __str__(self) -> str:
        return f"{self.key} starts with {_quote(self.value)}"


@dataclass(frozen=True, slots=True)
class EndsWith:
    key: str
    value: str

    def matches(self, labels: LabelMap) -> bool:
        label = labels.get(self.key)
        return label is not None and label.endswith(self.value)

    def __str__(self) -> str:
        return f"{self.key} ends with {_quote(self.value)}"


@dataclass(frozen=True, slots=True)
class Not:
    operand: Selector

    def matches(self, labels: LabelMap) -> bool:
        return not self.operand.matches(labels)

    def __str__(self) -> str:
        text = str(self.operand)
        # A run of `!` collapses when parsed (`!!e` is `e`), so a negated negation keeps its
        # brackets to survive a round trip; Calico itself would print `!!e` here.
        return f"!({text})" if text.startswith("!") else f"!{text}"


@dataclass(frozen=True, slots=True)
class And:
    operands: tuple[Selector, ...]

    def matches(self, labels: LabelMap) -> bool:
        return all(op.matches(labels) for op in self.operands)

    def __str__(self) -> str:
        # Calico brackets every conjunction, even at the top level; no operands is all().
        return _wrap(" && ", self.operands) if self.operands else "all()"


@dataclass(frozen=True, slots=True)
class Or:
    operands: tuple[Selector, ...]

    def matches(self, labels: LabelMap) -> bool:
        return any(op.matches(labels) for op in self.operands)

    def __str__(self) -> str:
        # Calico brackets every disjunction, even at the top level; no operands matches nothing.
        return _wrap(" || ", self.operands) if self.operands else "!all()"


Selector: TypeAlias = (
    All
    | Global
    | Has
    | Equals
    | NotEquals
    | In
    | NotIn
    | Contains
    | StartsWith
    | EndsWith
    | Not
    | And
    | Or
)


def _wrap(operator: str, operands: tuple[Selector, ...]) -> str:
    # Bracketing every &&/|| group makes `!` (which prints as a bare prefix) and nesting
    # unambiguous without precedence rules: `!(a || b)`, `((a && b) || c)`.
    return f"({operator.join(str(op) for op in operands)})"


def conjunction(*operands: Selector) -> Selector:
    """AND the operands, dropping `all()` terms and flattening nested ANDs."""
    flat: list[Selector] = []
    for op in operands:
        if isinstance(op, All):
            continue
        if isinstance(op, And):
            flat.extend(op.operands)
        else:
            flat.append(op)
    if not flat:
        return All()
    if len(flat) == 1:
        return flat[0]
    return And(tuple(flat))
