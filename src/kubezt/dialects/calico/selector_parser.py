"""Parser for Calico label-selector expressions.

This module owns the grammar of the selector language (turning tokens from
`kubezt.dialects.calico.selector_lexer` into the shared AST of `kubezt.ir.selectors`). It
follows libcalico-go `lib/selector/parser`:

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

__all__ = ["parse_selector"]

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
