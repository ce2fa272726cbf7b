"""Calico selector conformance: every row of tests/cases/calico/selectors.yaml, plus properties.

One parametrized test per section of the conformance file (evaluation, invalid, valid,
canonical, parseTrees, tokenizer), and hypothesis properties
tying the parser to the AST printer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from kubezt.dialects.calico.selector_lexer import MAX_LABEL_LENGTH, TokenKind, tokenize
from kubezt.dialects.calico.selector_parser import parse_selector
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

CASES_FILE = Path(__file__).parent.parent / "cases" / "calico" / "selectors.yaml"
CASES: dict[str, Any] = yaml.safe_load(CASES_FILE.read_text(encoding="utf-8"))


def _rows(section: str) -> list[Any]:
    rows = CASES[section]
    params = []
    for index, row in enumerate(rows):
        text = row["selector"]
        shown = text if len(text) <= 60 else f"{text[:40]}...({len(text)} chars)"
        params.append(pytest.param(row, id=f"{index}:{shown}"))
    return params


def test_every_section_is_exercised() -> None:
    sections = set(CASES) - {"source"}
    assert sections == {
        "evaluation",
        "invalid",
        "valid",
        "canonical",
        "parseTrees",
        "tokenizer",
    }


# --- evaluation ----------------------------------------------------------------------------------


@pytest.mark.parametrize("row", _rows("evaluation"))
def test_evaluation(row: dict[str, Any]) -> None:
    labels = row["labels"]
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in labels.items())
    assert parse_selector(row["selector"]).matches(labels) is row["matches"]


# --- invalid -------------------------------------------------------------------------------------


@pytest.mark.parametrize("row", _rows("invalid"))
def test_invalid(row: dict[str, Any]) -> None:
    text = row["selector"]
    assert row["valid"] is False
    with pytest.raises(SelectorSyntaxError) as caught:
        parse_selector(text)
    error = caught.value
    assert error.expression == text
    assert 1 <= error.column <= len(text) + 1
    assert error.reason
    assert f"column {error.column}" in str(error)
    if row["from"] == "tokenizer error":
        with pytest.raises(SelectorSyntaxError):
            tokenize(text)


@pytest.mark.parametrize(
    ("text", "column", "message"),
    [
        (")", 1, "unexpected ')'"),
        ("()", 2, "unexpected ')'"),
        ("(", 2, "unexpected end of selector"),
        ("!", 2, "unexpected end of selector"),
        ("b == b", 6, "expected a string literal, found label 'b'"),
        ("foo != ||", 8, "expected a string literal, found '||'"),
        ('(a == "foo"', 12, "expected ')', found end of selector"),
        ('"FOO', 1, "unterminated string literal"),
        ('a == "b" && %', 13, "unexpected character '%'"),
        ("label inf 'v'", 7, "expected an operator after label 'label'"),
        ("thing=hello &", 6, "expected '=='"),
        ('foo == "bar" &', 14, "expected '&&'"),
        ("has()", 5, "expected a label name inside 'has(...)'"),
        ("has( foo ", 10, "expected ')' to close 'has('"),
        ('a in {"x" "y"}', 11, "expected ',' or '}', found string literal \"y\""),
        ("a in {,}", 7, "expected a string literal or '}', found ','"),
        ('foo in ""', 8, "expected a set literal '{...}', found string literal \"\""),
        ("a == 'b' has(c)", 10, "unexpected 'has(c)'"),
        ("a" * 513, 1, "label name is 513 characters long, the limit is 512"),
    ],
)
def test_error_positions_and_messages(text: str, column: int, message: str) -> None:
    with pytest.raises(SelectorSyntaxError) as caught:
        parse_selector(text)
    assert (caught.value.column, caught.value.reason) == (column, message)


# --- valid ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("row", _rows("valid"))
def test_valid(row: dict[str, Any]) -> None:
    assert row["valid"] is True
    selector = parse_selector(row["selector"])
    canonical = str(selector)
    # The canonical form parses back to a selector with the same canonical form.
    assert str(parse_selector(canonical)) == canonical


# --- canonical -----------------------------------------------------------------------------------


@pytest.mark.parametrize("row", _rows("canonical"))
def test_canonical(row: dict[str, Any]) -> None:
    selector = parse_selector(row["selector"])
    assert str(selector) == row["canonical"]


# --- parseTrees ----------------------------------------------------------------------------------


def _tree(selector: Selector) -> Any:
    match selector:
        case Or(operands):
            return {"or": [_tree(op) for op in operands]}
        case And(operands):
            return {"and": [_tree(op) for op in operands]}
        case Not(operand):
            return {"not": _tree(operand)}
        case _:
            return str(selector)


@pytest.mark.parametrize("row", _rows("parseTrees"))
def test_parse_trees(row: dict[str, Any]) -> None:
    assert _tree(parse_selector(row["selector"])) == row["tree"]


def test_global_parses_to_global() -> None:
    assert parse_selector(" global( ) ") == Global()
    assert parse_selector("") == All()
    assert parse_selector(" \t") == All()


def test_negation_runs_collapse() -> None:
    assert parse_selector("!!has(a)") == Has("a")
    assert parse_selector("! !! has(a)") == Not(Has("a"))
    assert parse_selector('!a in {"x"}') == Not(In("a", frozenset({"x"})))


# --- tokenizer -----------------------------------------------------------------------------------


@pytest.mark.parametrize("row", _rows("tokenizer"))
def test_tokenizer(row: dict[str, Any]) -> None:
    text = row["selector"]
    if row.get("tokenizeError"):
        with pytest.raises(SelectorSyntaxError) as caught:
            tokenize(text)
        assert 1 <= caught.value.column <= len(text) + 1
        return
    tokens = tokenize(text)
    expected = [(kind, value[0] if value else "") for kind, *value in row["tokens"]]
    assert [(t.kind.value, t.value) for t in tokens] == expected
    columns = [t.column for t in tokens]
    assert columns == sorted(columns)
    assert tokens[-1].column == len(text) + 1


def test_token_columns() -> None:
    tokens = tokenize('a  not  in {"x"}&&has( b )')
    assert [(t.kind, t.column) for t in tokens] == [
        (TokenKind.LABEL, 1),
        (TokenKind.NOT_IN, 4),
        (TokenKind.LBRACE, 12),
        (TokenKind.STRING_LITERAL, 13),
        (TokenKind.RBRACE, 16),
        (TokenKind.AND, 17),
        (TokenKind.HAS, 19),
        (TokenKind.EOF, 27),
    ]


def test_label_length_limit() -> None:
    longest = "a" * MAX_LABEL_LENGTH
    assert parse_selector(f"has({longest})") == Has(longest)
    with pytest.raises(SelectorSyntaxError):
        parse_selector(f"has({longest}a)")


# --- properties ----------------------------------------------------------------------------------

_KEY_POOL = ["a", "b", "k8s-app", "calico/k8s_ns", "x.y_z"]
_VALUE_POOL = ["", "a", "b", "ab", "ba", "x'y", 'x"y', " sp ", "é"]
_LABEL_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./-"

keys = st.one_of(
    st.sampled_from(_KEY_POOL),
    st.text(alphabet=_LABEL_ALPHABET, min_size=1, max_size=12),
)
# A Calico string literal cannot contain both quote characters.
values = st.one_of(st.sampled_from(_VALUE_POOL), st.text(max_size=6)).filter(
    lambda v: not ('"' in v and "'" in v)
)
value_sets = st.frozensets(values, max_size=4)

leaves: st.SearchStrategy[Selector] = st.one_of(
    st.just(All()),
    st.just(Global()),
    st.builds(Has, keys),
    st.builds(Equals, keys, values),
    st.builds(NotEquals, keys, values),
    st.builds(Contains, keys, values),
    st.builds(StartsWith, keys, values),
    st.builds(EndsWith, keys, values),
    st.builds(In, keys, value_sets),
    st.builds(NotIn, keys, value_sets),
)


def _compound(children: st.SearchStrategy[Selector]) -> st.SearchStrategy[Selector]:
    groups = st.lists(children, max_size=4).map(tuple)
    return st.one_of(st.builds(Not, children), st.builds(And, groups), st.builds(Or, groups))


selectors: st.SearchStrategy[Selector] = st.recursive(leaves, _compound, max_leaves=12)
label_maps = st.dictionaries(
    st.one_of(st.sampled_from(_KEY_POOL), keys),
    st.one_of(st.sampled_from(_VALUE_POOL), st.text(max_size=4)),
    max_size=5,
)


@settings(max_examples=400)
@given(selectors, st.lists(label_maps, min_size=1, max_size=6))
def test_printed_selector_parses_to_an_equivalent_one(
    selector: Selector, maps: list[dict[str, str]]
) -> None:
    reparsed = parse_selector(str(selector))
    for labels in maps:
        assert reparsed.matches(labels) == selector.matches(labels)
    once = str(reparsed)
    twice = str(parse_selector(once))
    assert once == twice


@settings(max_examples=400)
@given(st.text(alphabet=st.sampled_from(list("ab =!&|(){}\",'_/.-\tinotcsh%é")), max_size=30))
def test_arbitrary_text_parses_or_fails_cleanly(text: str) -> None:
    try:
        selector = parse_selector(text)
    except SelectorSyntaxError as error:
        assert 1 <= error.column <= len(text) + 1
        assert error.reason
    else:
        assert str(parse_selector(str(selector))) == str(selector)
