"""Tokenizer for Calico label-selector expressions.

This module owns the lexical layer of the selector language: token kinds, label-name rules and
the error positions reported for malformed input. It follows libcalico-go
`lib/selector/tokenizer`:

* whitespace is spaces and tabs only;
* string literals are `'...'` or `"..."` with no escapes (a literal cannot hold its own quote);
* label names are 1-512 characters from `[A-Za-z0-9_./-]`;
* `has(label)`, `all()` and `global()` are single tokens (spaces allowed inside the parentheses);
* right after a label the only words accepted are the operators `contains`, `starts with`,
  `ends with`, `not in` and `in` (`startswith`, `endswith` and `notin` are the same operators),
  and each must end at a word boundary (`label inf` is an error, `label in"x"` is not).

Tokenizing succeeds for some token sequences that do not parse (`a in "x"`); the grammar is the
parser's business (`kubezt.dialects.calico.selector_parser`).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from kubezt.errors import SelectorSyntaxError

__all__ = ["MAX_LABEL_LENGTH", "Token", "TokenKind", "is_label_char", "tokenize", "valid_label"]

MAX_LABEL_LENGTH = 512
"""The longest label name a selector may mention."""

_WHITESPACE = " \t"
_LABEL_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./-")


class TokenKind(StrEnum):
    """Token kinds, named as in libcalico-go without the `Tok` prefix."""

    LABEL = "Label"
    STRING_LITERAL = "StringLiteral"
    LBRACE = "LBrace"
    RBRACE = "RBrace"
    COMMA = "Comma"
    EQ = "Eq"
    NE = "Ne"
    IN = "In"
    NOT = "Not"
    NOT_IN = "NotIn"
    CONTAINS = "Contains"
    STARTS_WITH = "StartsWith"
    ENDS_WITH = "EndsWith"
    ALL = "All"
    HAS = "Has"
    LPAREN = "LParen"
    RPAREN = "RParen"
    AND = "And"
    OR = "Or"
    GLOBAL = "Global"
    EOF = "EOF"


@dataclass(frozen=True, slots=True)
class Token:
    """One token: `value` is the label name (Label, Has), the unquoted text (StringLiteral) or
    "" for every other kind; `column` is the 1-based position of its first character (one past
    the end of the expression for EOF)."""

    kind: TokenKind
    value: str
    column: int


_SINGLE_CHAR_TOKENS: dict[str, TokenKind] = {
    "(": TokenKind.LPAREN,
    ")": TokenKind.RPAREN,
    "{": TokenKind.LBRACE,
    "}": TokenKind.RBRACE,
    ",": TokenKind.COMMA,
}

# Operators recognised right after a label, in the order upstream tries them. Each is a sequence
# of words that may be separated (or not) by whitespace.
_LABEL_OPERATORS: tuple[tuple[tuple[str, ...], TokenKind], ...] = (
    (("contains",), TokenKind.CONTAINS),
    (("starts", "with"), TokenKind.STARTS_WITH),
    (("ends", "with"), TokenKind.ENDS_WITH),
    (("not", "in"), TokenKind.NOT_IN),
    (("in",), TokenKind.IN),
)

# Function-style tokens that take no argument: `all()` and `global()`.
_NULLARY_FUNCTIONS: tuple[tuple[str, TokenKind], ...] = (
    ("all(", TokenKind.ALL),
    ("global(", TokenKind.GLOBAL),
)


def is_label_char(char: str) -> bool:
    """Whether `char` may appear in a label name."""
    return char in _LABEL_CHARS


def valid_label(name: str) -> bool:
    """Whether `name` is a label name a selector can mention."""
    return 0 < len(name) <= MAX_LABEL_LENGTH and all(c in _LABEL_CHARS for c in name)


def tokenize(text: str) -> list[Token]:
    """Split a selector expression into tokens, always ending with an EOF token.

    Raises `SelectorSyntaxError` (with the 1-based column of the offending character) for an
    unterminated string, a lone `=`, `&` or `|`, a malformed `has(...)`, `all()` or `global()`,
    a label longer than 512 characters, a word after a label that is not an operator, or any
    character that cannot start a token.
    """
    return _Lexer(text).run()


class _Lexer:
    """Single-use scanner over one expression; `pos` is a 0-based index into `text`."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.tokens: list[Token] = []

    def error(self, pos: int, message: str) -> SelectorSyntaxError:
        return SelectorSyntaxError(self.text, pos + 1, message)

    def skip_whitespace(self, pos: int) -> int:
        while pos < len(self.text) and self.text[pos] in _WHITESPACE:
            pos += 1
        return pos

    def emit(self, kind: TokenKind, start: int, end: int, value: str = "") -> None:
        self.tokens.append(Token(kind, value, start + 1))
        self.pos = end

    def run(self) -> list[Token]:
        text = self.text
        while True:
            start = self.pos = self.skip_whitespace(self.pos)
            if start >= len(text):
                self.tokens.append(Token(TokenKind.EOF, "", len(text) + 1))
                return self.tokens
            char = text[start]
            if char in _SINGLE_CHAR_TOKENS:
                self.emit(_SINGLE_CHAR_TOKENS[char], start, start + 1)
            elif char in "\"'":
                self.string_literal(start, char)
            elif char == "=":
                self.two_char_operator(start, "==", TokenKind.EQ)
            elif char == "&":
                self.two_char_operator(start, "&&", TokenKind.AND)
            elif char == "|":
                self.two_char_operator(start, "||", TokenKind.OR)
            elif char == "!":
                if text.startswith("!=", start):
                    self.emit(TokenKind.NE, start, start + 2)
                else:
                    self.emit(TokenKind.NOT, start, start + 1)
            elif self.tokens and self.tokens[-1].kind is TokenKind.LABEL:
                self.label_operator(start)
            elif text.startswith("has(", start):
                self.has(start)
            else:
                self.nullary_function_or_label(start)

    def string_literal(self, start: int, quote: str) -> None:
        end = self.text.find(quote, start + 1)
        if end == -1:
            raise self.error(start, "unterminated string literal")
        self.emit(TokenKind.STRING_LITERAL, start, end + 1, self.text[start + 1 : end])

    def two_char_operator(self, start: int, operator: str, kind: TokenKind) -> None:
        if not self.text.startswith(operator, start):
            raise self.error(start, f"expected {operator!r}")
        self.emit(kind, start, start + 2)

    def at_word_boundary(self, pos: int) -> bool:
        return pos >= len(self.text) or self.text[pos] not in _LABEL_CHARS

    def cut_words(self, start: int, words: tuple[str, ...]) -> int | None:
        """The end of `words` at `start` (whitespace allowed between and after multi-word
        operators), or None when they are absent or run into a longer word."""
        pos = start
        for word in words:
            if not self.text.startswith(word, pos):
                return None
            pos += len(word)
            if len(words) > 1:
                pos = self.skip_whitespace(pos)
        return pos if self.at_word_boundary(pos) else None

    def label_operator(self, start: int) -> None:
        for words, kind in _LABEL_OPERATORS:
            end = self.cut_words(start, words)
            if end is not None:
                self.emit(kind, start, end)
                return
        label = self.tokens[-1].value
        char = self.text[start]
        if char in _LABEL_CHARS:
            raise self.error(start, f"expected an operator after label {label!r}")
        raise self.error(
            start, f"unexpected character {char!r} after label {label!r}, expected an operator"
        )

    def cut_label(self, start: int) -> int:
        """The end of the label name at `start`; raises if there is none or it is too long."""
        end = start
        while end < len(self.text) and self.text[end] in _LABEL_CHARS:
            end += 1
        if end == start:
            if start < len(self.text):
                raise self.error(start, f"unexpected character {self.text[start]!r}")
            raise self.error(start, "expected a label name")
        if end - start > MAX_LABEL_LENGTH:
            raise self.error(
                start,
                f"label name is {end - start} characters long, the limit is {MAX_LABEL_LENGTH}",
            )
        return end

    def close_paren(self, pos: int, function: str) -> int:
        """The position after the `)` expected at `pos` (after whitespace)."""
        pos = self.skip_whitespace(pos)
        if not self.text.startswith(")", pos):
            raise self.error(pos, f"expected ')' to close {function!r}")
        return pos + 1

    def has(self, start: int) -> None:
        name_start = self.skip_whitespace(start + len("has("))
        if name_start >= len(self.text) or self.text[name_start] not in _LABEL_CHARS:
            raise self.error(name_start, "expected a label name inside 'has(...)'")
        name_end = self.cut_label(name_start)
        end = self.close_paren(name_end, "has(")
        self.emit(TokenKind.HAS, start, end, self.text[name_start:name_end])

    def nullary_function_or_label(self, start: int) -> None:
        for opener, kind in _NULLARY_FUNCTIONS:
            if self.text.startswith(opener, start):
                end = self.close_paren(start + len(opener), opener)
                self.emit(kind, start, end)
                return
        end = self.cut_label(start)
        self.emit(TokenKind.LABEL, start, end, self.text[start:end])
