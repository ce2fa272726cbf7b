"""Kubernetes label syntax and label selectors (`matchLabels`/`matchExpressions`) → IR."""

from __future__ import annotations

import re

from kubezt.dialects._reader import Cursor
from kubezt.errors import did_you_mean
from kubezt.ir.selectors import (
    All,
    Equals,
    Has,
    In,
    Not,
    NotIn,
    Selector,
    conjunction,
)

_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_IANA_SVC_NAME = re.compile(r"^(?=.*[a-z])[a-z0-9]+(-[a-z0-9]+)*$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")
_KEY_RULE = (
    "a label key (an optional DNS prefix and '/', then at most 63 alphanumerics, '-', '_' or '.')"
)
_VALUE_RULE = "a label value (at most 63 alphanumerics, '-', '_' or '.')"


def is_label_key(key: str) -> bool:
    """A qualified name: optional DNS-subdomain prefix and '/', then a name of at most 63."""
    prefix, _, name = key.rpartition("/")
    if "/" in key and (not prefix or len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix)):
        return False
    return 0 < len(name) <= 63 and bool(_NAME.match(name))


def is_label_value(value: str) -> bool:
    return value == "" or (len(value) <= 63 and bool(_NAME.match(value)))


def is_port_name(name: str) -> bool:
    """IANA_SVC_NAME: at most 15 lower-case letters, digits and single inner dashes, ≥1 letter."""
    return 0 < len(name) <= 15 and bool(_IANA_SVC_NAME.match(name))


def is_dns_label(name: str) -> bool:
    return 0 < len(name) <= 63 and bool(_DNS_LABEL.match(name))


def read_labels(cur: Cursor) -> dict[str, str]:
    """`metadata.labels`: keys and values checked with the API server's rules."""
    fields = cur.map(what="a mapping of label keys to values")
    if not fields:
        return {}
    out: dict[str, str] = {}
    for key, value in fields.items():
        if not is_label_key(key):
            value.error(_KEY_RULE, "E011", got=f'the key "{key}"')
            continue
        if isinstance(value.value, str) and is_label_value(value.value):
            out[key] = value.value
        elif isinstance(value.value, str):
            value.error(_VALUE_RULE, "E011")
        else:
            value.error('a label value string (quote values such as "true" or "1")', "E011")
    return out


def read_label_selector(cur: Cursor) -> Selector | None:
    """A `metav1.LabelSelector`; `{}` selects everything, None when absent or invalid."""
    fields = cur.map(what="a label selector (matchLabels / matchExpressions)")
    if fields is None:
        return None
    if cur.unknown_fields(("matchLabels", "matchExpressions"), code="E012"):
        return None  # ignoring a misspelt matchLabels would select every pod
    terms: list[Selector] = []
    match_labels = fields.get("matchLabels")
    if match_labels is not None:
        for key, value in read_labels(match_labels).items():
            terms.append(Equals(key, value))
    exprs = cur["matchExpressions"].list()
    for expr in exprs or []:
        term = _read_expression(expr)
        if term is not None:
            terms.append(term)
    return conjunction(*terms) if terms else All()


def _read_expression(expr: Cursor) -> Selector | None:
    if expr.map(what="a selector requirement (key, operator, values)") is None:
        return None
    if expr.unknown_fields(("key", "operator", "values"), code="E012"):
        return None
    key_cur, op_cur, values_cur = expr["key"], expr["operator"], expr["values"]
    key = key_cur.value if isinstance(key_cur.value, str) else None
    if key is None or not is_label_key(key):
        key_cur.error(_KEY_RULE, "E011")
    op = op_cur.value if isinstance(op_cur.value, str) else None
    if op not in _OPERATORS:
        op_cur.error(
            "one of In, NotIn, Exists, DoesNotExist",
            "E013",
            hint=did_you_mean(op, _OPERATORS) if op else "",
        )
        op = None
    items = values_cur.list(what="a list of label values")
    values: list[str] = []
    for item in items or []:
        if not isinstance(item.value, str):
            item.error('a label value string (quote values such as "true" or "1")', "E011")
        elif not is_label_value(item.value):
            item.error(_VALUE_RULE, "E011")
        else:
            values.append(item.value)
    if key is None or not is_label_key(key) or op is None:
        return None
    if items is not None and len(values) != len(items):
        return None
    if op in ("In", "NotIn"):
        if not values:
            values_cur.error(f"a non-empty list of values for operator {op}", "E013")
            return None
        return In(key, frozenset(values)) if op == "In" else NotIn(key, frozenset(values))
    if values:
        shown = ", ".join(f'"{v}"' for v in values)
        values_cur.error(f"no values for operator {op}", "E013", got=f"[{shown}]")
        return None
    return Has(key) if op == "Exists" else Not(Has(key))
