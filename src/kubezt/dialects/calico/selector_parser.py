"""Parser for Calico label-selector expressions, and Calico's operations on parsed selectors.

This module owns the grammar of the selector language (turning tokens from
`kubezt.dialects.calico.selector_lexer` into the shared AST of `kubezt.ir.selectors`) and the
Calico-specific views of a parsed selector: label prefixing, label restrictions and the unique ID.
It follows libcalico-go `lib/selector/parser`:

```
selector   := <empty> | or_expr EOF
or_expr    := and_expr ("||" and_expr)*
and_expr   := operation ("&&" operation)*
operation  := "!"* ( "has(" label ")" | "all()" | "global()" | "(" or_expr ")"
                   | label ("==" | "!=" | "contains" | "starts with" | "ends with") string
                   | label ("in" | "not in") "{" [string ("," string)* [","]] "}" )
```

A run of `!` collapses to a single negation or none (`!!e` is `e`), and a negation covers one
whole operation (`!a in {"x"}` is `!(a in {"x"})`). `&&` binds tighter than `||`.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from kubezt.dialects.calico.selector_lexer import Token, TokenKind, tokenize
from kubezt.errors import SelectorSyntaxError
from kubezt.ir.selectors import (
    All,
    And,
    Contains,
    EndsWith,
    Equals,
    Global,
    Has,
    In,
    Not,
    NotEquals,
    NotIn,
    Or,
    Selector,
    StartsWith,
)

__all__ = [
    "LabelRestriction",
    "label_restrictions",
    "parse_selector",
    "prefix_labels",
    "unique_id",
]

_VALUE_OPERATORS: dict[TokenKind, type[Equals | NotEquals | Contains | StartsWith | EndsWith]] = {
    TokenKind.EQ: Equals,
    TokenKind.NE: NotEquals,
    TokenKind.CONTAINS: Contains,
    TokenKind.STARTS_WITH: StartsWith,
    TokenKind.ENDS_WITH: EndsWith,
}

_SET_OPERATORS: dict[TokenKind, type[In | NotIn]] = {
    TokenKind.IN: In,
    TokenKind.NOT_IN: NotIn,
}

_TOKEN_TEXT: dict[TokenKind, str] = {
    TokenKind.LBRACE: "{",
    TokenKind.RBRACE: "}",
    TokenKind.COMMA: ",",
    TokenKind.EQ: "==",
    TokenKind.NE: "!=",
    TokenKind.IN: "in",
    TokenKind.NOT: "!",
    TokenKind.NOT_IN: "not in",
    TokenKind.CONTAINS: "contains",
    TokenKind.STARTS_WITH: "starts with",
    TokenKind.ENDS_WITH: "ends with",
    TokenKind.ALL: "all()",
    TokenKind.GLOBAL: "global()",
    TokenKind.LPAREN: "(",
    TokenKind.RPAREN: ")",
    TokenKind.AND: "&&",
    TokenKind.OR: "||",
}


def parse_selector(text: str) -> Selector:
    """Parse a Calico selector expression; an empty or blank expression is `All()`.

    Raises `SelectorSyntaxError` with the 1-based column of the offending token.
    """
    tokens = tokenize(text)
    if tokens[0].kind is TokenKind.EOF:
        return All()
    parser = _Parser(text, tokens)
    node = parser.or_expression()
    if parser.peek().kind is not TokenKind.EOF:
        raise parser.unexpected(parser.peek())
    return node


def _describe(token: Token) -> str:
    match token.kind:
        case TokenKind.EOF:
            return "end of selector"
        case TokenKind.LABEL:
            return f"label {token.value!r}"
        case TokenKind.STRING_LITERAL:
            quote = "'" if '"' in token.value else '"'
            return f"string literal {quote}{token.value}{quote}"
        case TokenKind.HAS:
            return f"'has({token.value})'"
        case kind:
            return repr(_TOKEN_TEXT[kind])


class _Parser:
    """Recursive-descent parser over one token list (which always ends with EOF)."""

    def __init__(self, text: str, tokens: list[Token]) -> None:
        self.text = text
        self.tokens = tokens
        self.index = 0

    def peek(self, ahead: int = 0) -> Token:
        return self.tokens[min(self.index + ahead, len(self.tokens) - 1)]

    def advance(self) -> Token:
        token = self.peek()
        if token.kind is not TokenKind.EOF:
            self.index += 1
        return token

    def error(self, token: Token, message: str) -> SelectorSyntaxError:
        return SelectorSyntaxError(self.text, token.column, message)

    def unexpected(self, token: Token) -> SelectorSyntaxError:
        return self.error(token, f"unexpected {_describe(token)}")

    def or_expression(self) -> Selector:
        operands = [self.and_expression()]
        while self.peek().kind is TokenKind.OR:
            self.advance()
            operands.append(self.and_expression())
        return operands[0] if len(operands) == 1 else Or(tuple(operands))

    def and_expression(self) -> Selector:
        operands = [self.operation()]
        while self.peek().kind is TokenKind.AND:
            self.advance()
            operands.append(self.operation())
        return operands[0] if len(operands) == 1 else And(tuple(operands))

    def operation(self) -> Selector:
        negated = False
        while self.peek().kind is TokenKind.NOT:
            self.advance()
            negated = not negated
        token = self.advance()
        node: Selector
        match token.kind:
            case TokenKind.HAS:
                node = Has(token.value)
            case TokenKind.ALL:
                node = All()
            case TokenKind.GLOBAL:
                node = Global()
            case TokenKind.LABEL:
                node = self.comparison(token.value)
            case TokenKind.LPAREN:
                node = self.or_expression()
                closing = self.advance()
                if closing.kind is not TokenKind.RPAREN:
                    raise self.error(closing, f"expected ')', found {_describe(closing)}")
            case _:
                raise self.unexpected(token)
        return Not(node) if negated else node

    def comparison(self, label: str) -> Selector:
        operator = self.advance()
        if operator.kind in _VALUE_OPERATORS:
            value = self.advance()
            if value.kind is not TokenKind.STRING_LITERAL:
                raise self.error(value, f"expected a string literal, found {_describe(value)}")
            return _VALUE_OPERATORS[operator.kind](label, value.value)
        if operator.kind in _SET_OPERATORS:
            return _SET_OPERATORS[operator.kind](label, self.string_set())
        raise self.error(
            operator, f"expected an operator after label {label!r}, found {_describe(operator)}"
        )

    def string_set(self) -> frozenset[str]:
        opening = self.advance()
        if opening.kind is not TokenKind.LBRACE:
            raise self.error(
                opening, f"expected a set literal '{{...}}', found {_describe(opening)}"
            )
        values: list[str] = []
        # Upstream accepts a trailing comma (`{"a",}`) but not a leading one (`{,}`).
        while True:
            token = self.advance()
            if token.kind is TokenKind.RBRACE:
                return frozenset(values)
            if token.kind is not TokenKind.STRING_LITERAL:
                raise self.error(
                    token, f"expected a string literal or '}}', found {_describe(token)}"
                )
            values.append(token.value)
            token = self.advance()
            if token.kind is TokenKind.RBRACE:
                return frozenset(values)
            if token.kind is not TokenKind.COMMA:
                raise self.error(token, f"expected ',' or '}}', found {_describe(token)}")


def prefix_labels(selector: Selector, prefix: str) -> Selector:
    """The selector with every label name it mentions prefixed by `prefix`.

    Calico uses this to aim namespace and service-account selectors at the `pcns.` / `pcsa.`
    labels it copies onto endpoints. The prefixed names are not re-validated.
    """
    match selector:
        case All() | Global():
            return selector
        case Has(key):
            return Has(prefix + key)
        case Equals(key, value):
            return Equals(prefix + key, value)
        case NotEquals(key, value):
            return NotEquals(prefix + key, value)
        case Contains(key, value):
            return Contains(prefix + key, value)
        case StartsWith(key, value):
            return StartsWith(prefix + key, value)
        case EndsWith(key, value):
            return EndsWith(prefix + key, value)
        case In(key, values):
            return In(prefix + key, values)
        case NotIn(key, values):
            return NotIn(prefix + key, values)
        case Not(operand):
            return Not(prefix_labels(operand, prefix))
        case And(operands):
            return And(tuple(prefix_labels(op, prefix) for op in operands))
        case Or(operands):
            return Or(tuple(prefix_labels(op, prefix) for op in operands))


@dataclass(frozen=True, slots=True)
class LabelRestriction:
    """What every label set matched by a selector must satisfy for one label name.

    `one_of_values` is None when no value restriction is known, and an empty set when the
    selector cannot match any value (`a == "x" && a == "y"`).
    """

    must_be_present: bool = False
    must_be_absent: bool = False
    one_of_values: frozenset[str] | None = None

    def possible_to_satisfy(self) -> bool:
        """False when the restriction is self-contradictory, so the selector matches nothing."""
        if self.must_be_present and self.must_be_absent:
            return False
        return self.one_of_values is None or bool(self.one_of_values)


LabelRestrictions = Mapping[str, LabelRestriction]
"""Label name to restriction; an empty mapping means the selector restricts no label."""


def label_restrictions(selector: Selector) -> LabelRestrictions:
    """Lower-bound restrictions on the labels of anything `selector` matches.

    For `a == "b" && has(c)`: `a` must be present with value `b`, and `c` must be present. The
    analysis is upstream's: it is exact for conjunctions of positive terms and `!has(...)`, and
    gives up (returns no restriction) under any other negation.
    """
    return MappingProxyType(_restrictions(selector))


def _restrictions(selector: Selector) -> dict[str, LabelRestriction]:
    match selector:
        case Has(key) | Contains(key, _) | StartsWith(key, _) | EndsWith(key, _):
            return {key: LabelRestriction(must_be_present=True)}
        case Equals(key, value):
            return {key: LabelRestriction(must_be_present=True, one_of_values=frozenset([value]))}
        case In(key, values):
            return {key: LabelRestriction(must_be_present=True, one_of_values=values)}
        case Not(Has(key)):
            return {key: LabelRestriction(must_be_absent=True)}
        case And(operands):
            return _and_restrictions(operands)
        case Or(operands):
            return _or_restrictions(operands)
        case _:
            # all(), global(), !=, not in, and negations other than !has(...).
            return {}


def _and_restrictions(operands: tuple[Selector, ...]) -> dict[str, LabelRestriction]:
    merged: dict[str, LabelRestriction] = {}
    for operand in operands:
        for name, r in _restrictions(operand).items():
            base = merged.get(name, LabelRestriction())
            values = base.one_of_values
            if values is None:
                values = r.one_of_values
            elif r.one_of_values is not None:
                values = values & r.one_of_values
            merged[name] = LabelRestriction(
                must_be_present=base.must_be_present or r.must_be_present,
                must_be_absent=base.must_be_absent or r.must_be_absent,
                one_of_values=values,
            )
    return merged


def _or_restrictions(operands: tuple[Selector, ...]) -> dict[str, LabelRestriction]:
    if not operands:
        return {}
    merged = _restrictions(operands[0])
    for operand in operands[1:]:
        other = _restrictions(operand)
        combined: dict[str, LabelRestriction] = {}
        for name, r in merged.items():
            o = other.get(name, LabelRestriction())
            present = r.must_be_present and o.must_be_present
            absent = r.must_be_absent and o.must_be_absent
            values: frozenset[str] | None = None
            if present and r.one_of_values is not None and o.one_of_values is not None:
                values = r.one_of_values | o.one_of_values
            if present or absent:
                combined[name] = LabelRestriction(present, absent, values)
        merged = combined
    return merged


def unique_id(selector: Selector) -> str:
    """Calico's unique ID for a selector: `s:` and the URL-safe base64 SHA-224 of `s:<canonical>`.

    Equal for selectors whose canonical forms (`str(selector)`) are equal.
    """
    digest = hashlib.sha224(f"s:{selector}".encode()).digest()
    return "s:" + base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")
