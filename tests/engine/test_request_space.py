"""The request space is complete by construction: for random patterns over a small alphabet,
every value a brute-force enumeration finds falls in a cell that has a witness, and for random
AuthorizationPolicies every concrete request gets the same decision from the engine as the
witness of its cell gets from the independent reference (tests/authz_oracle.py)."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from authz_oracle import Request, decide
from kubezt.engine.authz import AuthzRequest, Enforcer, authorize, normalize_path
from kubezt.engine.requests import Attribute, attribute_witnesses, path_glob, space_of, string_glob
from kubezt.ir.config import MeshConfig
from kubezt.ir.mesh import (
    AuthorizationPolicy,
    AuthzAction,
    AuthzCondition,
    AuthzOperation,
    AuthzRule,
)
from kubezt.ir.requests import HttpRequest

ALPHABET = "ab/.="
WORDS = ("a", "b", "ab", "a.b", "/a", "/a/", "/a/b", "/b.a", "a=b", "/", ".a")
PATH_WORDS = ("/", "/a", "/a/", "/b", "/a/b", "/a.b", "/ab")
TEMPLATES = ("/a/{*}", "/{*}/b", "/a/{**}", "/{*}", "/{**}", "/a/{*}/b", "/{*}/{**}")


def values(max_len: int) -> list[str]:
    return [
        "".join(chars)
        for n in range(max_len + 1)
        for chars in itertools.product(ALPHABET, repeat=n)
    ]


ALL_VALUES = values(5)
ALL_PATHS = sorted({normalize_path(v) for v in ALL_VALUES if v.startswith("/")})


@st.composite
def string_patterns(draw: st.DrawFn, words: tuple[str, ...] = WORDS) -> str:
    word = draw(st.sampled_from(words))
    kind = draw(st.sampled_from(("exact", "prefix", "suffix", "presence")))
    return {"exact": word, "prefix": word + "*", "suffix": "*" + word, "presence": "*"}[kind]


path_patterns = st.one_of(string_patterns(PATH_WORDS), st.sampled_from(TEMPLATES))


@settings(max_examples=150, deadline=None)
@given(st.lists(string_patterns(), min_size=1, max_size=5, unique=True))
def test_every_cell_of_string_patterns_has_a_witness(patterns: list[str]) -> None:
    globs = [string_glob(p) for p in patterns]
    witnesses = attribute_witnesses(globs, Attribute.HEADER)

    def cell(v: str) -> tuple[bool, ...]:
        return tuple(g.matches(v) for g in globs)

    covered = {cell(w) for w in witnesses}
    assert len(covered) == len(witnesses), "one witness per cell"
    for v in ALL_VALUES:
        assert cell(v) in covered, (patterns, v)


@settings(max_examples=150, deadline=None)
@given(st.lists(path_patterns, min_size=1, max_size=5, unique=True))
def test_every_cell_of_path_patterns_has_a_witness(patterns: list[str]) -> None:
    globs = [path_glob(p) for p in patterns]
    witnesses = attribute_witnesses(globs, Attribute.PATH)
    for w in witnesses:
        assert normalize_path(w) == w, f"witness {w!r} is not a normalized path"

    def cell(v: str) -> tuple[bool, ...]:
        return tuple(g.matches(v) for g in globs)

    covered = {cell(w) for w in witnesses}
    for v in ALL_PATHS:
        assert cell(v) in covered, (patterns, v)


@st.composite
def operations(draw: st.DrawFn) -> AuthzOperation:
    fields: dict[str, tuple[str, ...]] = {}
    for name, strategy in (
        ("methods", string_patterns(("GET", "POST", "G", "T"))),
        ("not_methods", string_patterns(("GET", "POST", "G", "T"))),
        ("paths", path_patterns),
        ("not_paths", path_patterns),
        ("hosts", string_patterns(("a", "ab", "b.a"))),
        ("not_hosts", string_patterns(("a", "ab", "b.a"))),
    ):
        if draw(st.integers(0, 3)) == 0:
            fields[name] = tuple(draw(st.lists(strategy, min_size=1, max_size=2, unique=True)))
    return AuthzOperation(**fields)  # type: ignore[arg-type]


@st.composite
def rules(draw: st.DrawFn) -> AuthzRule:
    ops = tuple(draw(st.lists(operations(), min_size=1, max_size=2)))
    conditions: tuple[AuthzCondition, ...] = ()
    if draw(st.booleans()):
        header = draw(st.lists(string_patterns(), min_size=1, max_size=2, unique=True))
        negative = draw(st.booleans())
        conditions = (
            AuthzCondition(
                "request.headers[x-k]",
                () if negative else tuple(header),
                tuple(header) if negative else (),
            ),
        )
    return AuthzRule(operations=ops, conditions=conditions)


@st.composite
def policies(draw: st.DrawFn) -> list[AuthorizationPolicy]:
    out = []
    for i in range(draw(st.integers(1, 3))):
        action = draw(st.sampled_from((AuthzAction.ALLOW, AuthzAction.DENY)))
        out.append(
            AuthorizationPolicy(
                f"p{i}", "foo", action, rules=tuple(draw(st.lists(rules(), max_size=2)))
            )
        )
    return out


@st.composite
def requests(draw: st.DrawFn) -> HttpRequest:
    method = draw(st.sampled_from(("GET", "POST", "PUT", "G", "GT", "T")))
    path = draw(st.sampled_from([v for v in ALL_VALUES if v.startswith("/") and len(v) <= 4]))
    host = draw(st.sampled_from(("", "a", "ab", "b.a", "xb.a")))
    header = draw(st.sampled_from((None, "", "a", "ab", "b.ab", "=")))
    return HttpRequest(method, path, host, () if header is None else (("X-K", header),))


@settings(max_examples=300, deadline=None)
@given(policies(), requests(), st.sampled_from(("sidecar", "waypoint")))
def test_engine_on_a_request_equals_oracle_on_its_cells_witness(
    pols: list[AuthorizationPolicy], request: HttpRequest, enforcer: str
) -> None:
    """explain allows a request ⇔ the witness of its cell is allowed: so the matrix, which
    evaluates every witness, lists a request with the same decision."""
    config = MeshConfig()
    principal = "cluster.local/ns/foo/sa/a"
    space = space_of(pols)
    by_cell = {space.cell(w): w for w in space.witnesses()}
    witness = by_cell.get(space.cell(request))
    assert witness is not None, f"no witness for the cell of {request}"
    engine = authorize(
        pols,
        AuthzRequest(principal, "10.0.0.1", "10.9.0.1", 8080, request),
        Enforcer(enforcer),
        config,
        "test",
    ).allowed
    oracle = decide(pols, Request(principal, "10.0.0.1", "10.9.0.1", 8080, witness), enforcer)
    assert engine == oracle, (request, witness)
