"""The request space: what a connection's verdict can depend on beyond the 5-tuple, and the one
place that builds concrete witness requests for it.

Every HTTP attribute a policy looks at (method, path, host, each header) is matched against a
finite set of patterns: Istio's exact / `prefix*` / `*suffix` / `*` (presence) values and path
templates (`{*}`, `{**}`), their `not*` forms, and Calico application-layer `http` clauses
(exact methods, exact paths, path prefixes at a segment boundary). Each pattern is a regular
language; the patterns of one attribute cut its value space into cells (the values every pattern
agrees on). `RequestSpace.witnesses()` walks the product automaton of all patterns of an
attribute breadth first and keeps the shortest value that reaches each distinct vector of
pattern verdicts, so every satisfiable cell — a value matching a prefix and a suffix at once, a
template and a suffix, or none of the patterns — has exactly one witness, by construction. The
cells of the attributes combine as a product, so every decision class a policy can reach is
represented by one concrete request.

`RequestSet` is the closed answer for a connection: every request (`ALL`), only some (`Some`,
with the passing witnesses and the space they were drawn from), or none (`NONE`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum

from kubezt.engine.authz import TEMPLATE_LITERAL, normalize_path
from kubezt.ir.mesh import AuthorizationPolicy
from kubezt.ir.policy import HttpMatch
from kubezt.ir.requests import HttpRequest

ANY = "*"
"""The wildcard of a summarized request: any value of this attribute passes."""

HEADER_KEY_PREFIX = "request.headers["

_PATH_UNSAFE = frozenset("%\\?#")
"""Characters a normalized path never needs as filler (they are decoded, turned into `/`, or
start the query)."""


class Attribute(StrEnum):
    METHOD = "method"
    PATH = "path"
    HOST = "host"
    HEADER = "header"


# --- patterns as small automata --------------------------------------------------------------

_ANY_CHAR = "any"
_TEMPLATE_CHAR = "template"
_TEMPLATE_OR_SLASH = "template-or-slash"

Element = tuple[str, str, bool]
"""(kind, char, repeat): kind "lit" with its char, or a class (`_ANY_CHAR`, …) matched once,
or zero or more times when `repeat`."""


def _in_class(kind: str, c: str) -> bool:
    if kind == _ANY_CHAR:
        return True
    if kind == _TEMPLATE_CHAR:
        return c in TEMPLATE_LITERAL
    return c in TEMPLATE_LITERAL or c == "/"


@dataclass(frozen=True, slots=True)
class Glob:
    """One pattern as a sequence of elements; `text` names it."""

    text: str
    elements: tuple[Element, ...]

    def start(self) -> frozenset[int]:
        return self._closure({0})

    def _closure(self, positions: Iterable[int]) -> frozenset[int]:
        out: set[int] = set()
        todo = list(positions)
        while todo:
            p = todo.pop()
            if p in out:
                continue
            out.add(p)
            if p < len(self.elements) and self.elements[p][2]:
                todo.append(p + 1)
        return frozenset(out)

    def step(self, state: frozenset[int], c: str) -> frozenset[int]:
        nxt: set[int] = set()
        for p in state:
            if p >= len(self.elements):
                continue
            kind, char, repeat = self.elements[p]
            if kind == "lit":
                if c == char:
                    nxt.add(p + 1)
            elif _in_class(kind, c):
                nxt.add(p if repeat else p + 1)
        return self._closure(nxt) if nxt else frozenset()

    def accepts(self, state: frozenset[int]) -> bool:
        return len(self.elements) in state

    def matches(self, value: str) -> bool:
        state = self.start()
        for c in value:
            state = self.step(state, c)
            if not state:
                return False
        return self.accepts(state)

    @property
    def literals(self) -> frozenset[str]:
        return frozenset(c for kind, c, _ in self.elements if kind == "lit")


def _lits(text: str) -> tuple[Element, ...]:
    return tuple(("lit", c, False) for c in text)


def string_glob(pattern: str) -> Glob:
    """Istio value matching: exact, `prefix*`, `*suffix`, `*` (present and non-empty)."""
    if pattern == "*":
        return Glob(pattern, ((_ANY_CHAR, "", False), (_ANY_CHAR, "", True)))
    if pattern.startswith("*"):
        return Glob(pattern, ((_ANY_CHAR, "", True), *_lits(pattern[1:])))
    if pattern.endswith("*"):
        return Glob(pattern, (*_lits(pattern[:-1]), (_ANY_CHAR, "", True)))
    return Glob(pattern, _lits(pattern))


def is_path_template(pattern: str) -> bool:
    return "{*}" in pattern or "{**}" in pattern


def template_glob(pattern: str) -> Glob:
    """An Istio path template: `{*}` is one or more template-literal characters (one segment),
    `{**}` zero or more of them or `/` (Envoy's PathGlob and TextGlob)."""
    elements: list[Element] = []
    rest = pattern
    while rest:
        if rest.startswith("{**}"):
            elements.append((_TEMPLATE_OR_SLASH, "", True))
            rest = rest[4:]
        elif rest.startswith("{*}"):
            elements += [(_TEMPLATE_CHAR, "", False), (_TEMPLATE_CHAR, "", True)]
            rest = rest[3:]
        else:
            elements.append(("lit", rest[0], False))
            rest = rest[1:]
    return Glob(pattern, tuple(elements))


def path_glob(pattern: str) -> Glob:
    return template_glob(pattern) if is_path_template(pattern) else string_glob(pattern)


def calico_path_globs(match: HttpMatch) -> list[Glob]:
    """Dikastes: exact paths, and prefixes that match the prefix itself or at a `/` boundary."""
    out = [Glob(p, _lits(p)) for p in match.exact_paths]
    for prefix in match.prefix_paths:
        out.append(Glob(prefix, _lits(prefix)))
        base = prefix if prefix.endswith("/") else prefix + "/"
        out.append(Glob(base + "*", (*_lits(base), (_ANY_CHAR, "", True))))
    return out


def calico_method_globs(match: HttpMatch) -> list[Glob]:
    return [string_glob(m) if m != "*" else string_glob("*") for m in match.methods]


# --- the space ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RequestSpace:
    """The patterns each HTTP attribute is matched against, anywhere in the policies that apply."""

    methods: frozenset[Glob] = frozenset()
    paths: frozenset[Glob] = frozenset()
    hosts: frozenset[Glob] = frozenset()
    headers: tuple[tuple[str, frozenset[Glob]], ...] = ()
    """Lower-cased header name → patterns, sorted by name."""

    @property
    def empty(self) -> bool:
        return not (self.methods or self.paths or self.hosts or self.headers)

    def merged(self, other: RequestSpace) -> RequestSpace:
        headers: dict[str, frozenset[Glob]] = dict(self.headers)
        for name, globs in other.headers:
            headers[name] = headers.get(name, frozenset()) | globs
        return RequestSpace(
            self.methods | other.methods,
            self.paths | other.paths,
            self.hosts | other.hosts,
            tuple(sorted(headers.items())),
        )

    def witnesses(self) -> tuple[HttpRequest, ...]:
        return _witnesses(self)

    def cell(self, request: HttpRequest) -> tuple[object, ...]:
        """The cell of a concrete request: every pattern's verdict on every attribute (on the
        normalized path, the value policies compare)."""
        host = request.host.lower() if request.host else ""
        path = normalize_path(request.path)
        return (
            tuple(g.matches(request.method) for g in sorted(self.methods, key=_glob_key)),
            tuple(g.matches(path) for g in sorted(self.paths, key=_glob_key)),
            tuple(g.matches(host) for g in sorted(self.hosts, key=_glob_key)),
            tuple(
                tuple(value is not None and g.matches(value) for g in sorted(globs, key=_glob_key))
                for name, globs in self.headers
                for value in (request.header(name),)
            ),
        )


def _glob_key(g: Glob) -> tuple[str, tuple[Element, ...]]:
    return (g.text, g.elements)


def space_of(
    policies: Iterable[AuthorizationPolicy], http_matches: Iterable[HttpMatch] = ()
) -> RequestSpace:
    """The request space of AuthorizationPolicies (every rule, `not*` forms included) and of
    Calico `http` clauses."""
    methods: set[Glob] = set()
    paths: set[Glob] = set()
    hosts: set[Glob] = set()
    headers: dict[str, set[Glob]] = {}
    for policy in policies:
        for rule in policy.rules:
            for op in rule.operations or ():
                methods.update(string_glob(p) for p in (op.methods or ()) + (op.not_methods or ()))
                paths.update(path_glob(p) for p in (op.paths or ()) + (op.not_paths or ()))
                hosts.update(
                    string_glob(p.lower()) for p in (op.hosts or ()) + (op.not_hosts or ())
                )
            for cond in rule.conditions:
                if cond.key.startswith(HEADER_KEY_PREFIX) and cond.key.endswith("]"):
                    name = cond.key[len(HEADER_KEY_PREFIX) : -1].lower()
                    headers.setdefault(name, set()).update(
                        string_glob(p) for p in (cond.values or ()) + (cond.not_values or ())
                    )
    for match in http_matches:
        methods.update(calico_method_globs(match))
        paths.update(calico_path_globs(match))
    return RequestSpace(
        frozenset(methods),
        frozenset(paths),
        frozenset(hosts),
        tuple(sorted((k, frozenset(v)) for k, v in headers.items())),
    )


def intent_space(
    methods: Iterable[str], paths: Iterable[str], hosts: Iterable[str]
) -> RequestSpace:
    """The space of an intent's HTTP grants (Istio value matching)."""
    return RequestSpace(
        frozenset(string_glob(m) for m in methods),
        frozenset(path_glob(p) for p in paths),
        frozenset(string_glob(h.lower()) for h in hosts),
    )


# --- witnesses ------------------------------------------------------------------------------------

_FILLERS = "xyzqjkwvb0123456789"
_OTHER_FILLERS = '^`|<>"[]'


def _alphabet(globs: Iterable[Glob], attribute: Attribute) -> list[str]:
    """The literal characters of the patterns plus one representative per class of other
    characters (no pattern tells two characters of a class apart)."""
    literals: set[str] = set()
    for g in globs:
        literals |= g.literals
    chars = sorted(literals)
    if attribute is Attribute.PATH:
        chars = [c for c in chars if c != "\\"]
    fillers = _FILLERS.upper() + _FILLERS if attribute is Attribute.METHOD else _FILLERS
    chars.append(next(c for c in fillers if c not in literals))
    if "/" not in literals:
        chars.append("/")
    other = next(c for c in _OTHER_FILLERS if c not in literals)
    chars.append(other)
    if attribute is Attribute.PATH:
        chars = [c for c in chars if c not in _PATH_UNSAFE or c in literals]
    return chars


def _path_shape(state: int, c: str) -> int:
    """A normalized path: starts with `/`, has no `.` or `..` segment. States: 0 start, 1 after
    `/`, 2 segment `.`, 3 segment `..`, 4 other segment; -1 rejected."""
    if state == 0:
        return 1 if c == "/" else -1
    if c == "/":
        return -1 if state in (2, 3) else 1
    if c == ".":
        return {1: 2, 2: 3}.get(state, 4)
    return 4


def attribute_witnesses(globs: Iterable[Glob], attribute: Attribute) -> list[str]:
    """One shortest value per satisfiable cell of the partition the patterns make: a breadth
    first walk of the product automaton, keeping a value for each new vector of verdicts.

    Each pattern's automaton is shared by every walk (`_dfa`), and its successors over the
    whole alphabet are taken once per state (`rows`): a product state's successors are then
    the columns of its patterns' rows."""
    ordered = sorted(set(globs), key=_glob_key)
    alphabet = _alphabet(ordered, attribute)
    path = attribute is Attribute.PATH
    dfas = [_dfa(g) for g in ordered]
    # the shape automaton: 0 start, 1 non-empty (paths: after `/`), -1 rejected (`_path_shape`)
    shapes = [[_path_shape(shape, c) if path else 1 for c in alphabet] for shape in range(5)]
    rows: list[dict[int, tuple[int, ...]]] = [{} for _ in dfas]

    def successors(states: tuple[int, ...]) -> Iterable[tuple[int, ...]]:
        if not dfas:
            return [()] * len(alphabet)
        columns = []
        for dfa, known, state in zip(dfas, rows, states, strict=True):
            row = known.get(state)
            if row is None:
                row = known[state] = tuple([dfa.step(state, c) for c in alphabet])
            columns.append(row)
        return zip(*columns, strict=True)

    start = (0, (0,) * len(dfas))
    seen = {start}
    frontier = [(start, "")]
    found: dict[tuple[bool, ...], str] = {}
    while frontier:
        nxt = []
        for (shape, states), value in frontier:
            complete = (
                shape in (1, 4) if path else (shape == 1 or attribute is not Attribute.METHOD)
            )
            if complete:
                vector = tuple([d.accepting[s] for d, s in zip(dfas, states, strict=True)])
                found.setdefault(vector, value)
            for c, shape2, states2 in zip(alphabet, shapes[shape], successors(states), strict=True):
                if shape2 < 0:
                    continue
                key = (shape2, states2)
                if key in seen:
                    continue
                seen.add(key)
                nxt.append((key, value + c))
        frontier = nxt
    return sorted(found.values(), key=lambda v: (len(v), v))


@functools.lru_cache(maxsize=65536)
def _dfa(glob: Glob) -> _LazyDfa:
    """A pattern's automaton, shared by the walks of every pattern set it is in (its states
    are numbered as they are first reached; the numbers never change)."""
    return _LazyDfa(glob)


class _LazyDfa:
    """A pattern's automaton with its state sets numbered and its transitions remembered as
    they are taken (the product walk steps every pattern on every character of every product
    state; most of those steps repeat)."""

    __slots__ = ("accepting", "glob", "ids", "sets", "table")

    def __init__(self, glob: Glob) -> None:
        start = glob.start()
        self.glob = glob
        self.sets = [start]
        self.ids = {start: 0}
        self.accepting = [glob.accepts(start)]
        self.table: dict[tuple[int, str], int] = {}

    def step(self, state: int, c: str) -> int:
        nxt = self.table.get((state, c))
        if nxt is None:
            target = self.glob.step(self.sets[state], c)
            nxt = self.ids.get(target)
            if nxt is None:
                nxt = self.ids[target] = len(self.sets)
                self.sets.append(target)
                self.accepting.append(self.glob.accepts(target))
            self.table[(state, c)] = nxt
        return nxt


FAMILIAR_METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS")


@functools.lru_cache(maxsize=4096)
def _witnesses(space: RequestSpace) -> tuple[HttpRequest, ...]:
    methods = (
        _prefer(_cell_witnesses(space.methods, Attribute.METHOD), FAMILIAR_METHODS, space.methods)
        if space.methods
        else ["GET"]
    )
    paths = (
        _prefer(_cell_witnesses(space.paths, Attribute.PATH), ("/",), space.paths)
        if space.paths
        else ["/"]
    )
    hosts = _cell_witnesses(space.hosts, Attribute.HOST) if space.hosts else [""]
    header_choices: list[list[tuple[tuple[str, str], ...]]] = []
    for name, globs in space.headers:
        values = _cell_witnesses(globs, Attribute.HEADER)
        header_choices.append([(), *(((name, v),) for v in values)])
    header_sets: list[tuple[tuple[str, str], ...]] = [()]
    for choices in header_choices:
        header_sets = [hs + extra for hs in header_sets for extra in choices]
    out = [
        HttpRequest(m, p, h, hs)
        for m in methods
        for p in paths
        for h in hosts
        for hs in header_sets
    ]
    return tuple(out)


@functools.lru_cache(maxsize=4096)
def _cell_witnesses(globs: frozenset[Glob], attribute: Attribute) -> list[str]:
    """`attribute_witnesses` once per distinct pattern set: the spaces of many destinations
    share an attribute's patterns (a namespace-wide policy's paths) while differing in another.
    The list is only read."""
    return attribute_witnesses(globs, attribute)


def _prefer(values: list[str], familiar: tuple[str, ...], globs: frozenset[Glob]) -> list[str]:
    """Replace a witness by the first familiar value of its cell, if any."""
    ordered = sorted(globs, key=_glob_key)

    def vector(v: str) -> tuple[bool, ...]:
        return tuple(g.matches(v) for g in ordered)

    by_cell: dict[tuple[bool, ...], str] = {}
    for f in familiar:
        by_cell.setdefault(vector(f), f)
    return [by_cell.get(vector(v), v) for v in values]


# --- the answer for a connection ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AllRequests:
    """Every request passes (or the verdict does not depend on the request)."""

    def __repr__(self) -> str:
        return "ALL"


@dataclass(frozen=True, slots=True)
class NoRequests:
    def __repr__(self) -> str:
        return "NONE"


@dataclass(frozen=True, slots=True)
class Some:
    """Only some requests pass: the passing witnesses of `space` (concrete requests)."""

    passing: tuple[HttpRequest, ...]
    space: RequestSpace

    @property
    def summary(self) -> tuple[HttpRequest, ...]:
        """The passing witnesses shortened with `*` where every value passes."""
        free = tuple(
            attr
            for attr, patterns in (
                ("method", self.space.methods),
                ("path", self.space.paths),
            )
            if not patterns
        )
        return summarize(self.space.witnesses(), self.passing, free)

    def __iter__(self) -> Iterator[HttpRequest]:
        return iter(self.summary)


ALL = AllRequests()
NONE = NoRequests()
RequestSet = AllRequests | Some | NoRequests


def requests_passing(space: RequestSpace, allows: Callable[[HttpRequest], bool]) -> RequestSet:
    """Evaluate `allows(request) -> bool` on every witness of `space`."""
    witnesses = space.witnesses()
    passing = tuple(w for w in witnesses if allows(w))
    if len(passing) == len(witnesses):
        return ALL
    if not passing:
        return NONE
    return Some(passing, space)


def union(a: RequestSet, b: RequestSet) -> RequestSet:
    """Requests passing on either of two routes, both decided over the same space (a witness
    of one space says nothing about the other cells of a finer one)."""
    if isinstance(a, AllRequests) or isinstance(b, NoRequests):
        return a
    if isinstance(b, AllRequests) or isinstance(a, NoRequests):
        return b
    if a.space != b.space:
        raise ValueError("union of request sets decided over different request spaces")
    either = set(a.passing) | set(b.passing)
    witnesses = a.space.witnesses()
    passing = tuple(w for w in witnesses if w in either)
    return ALL if len(passing) == len(witnesses) else Some(passing, a.space)


# --- summaries --------------------------------------------------------------------------------


def wildcard(request: HttpRequest, attr: str) -> HttpRequest:
    """`request` with attribute `attr` replaced by "any value"."""
    method, path, host, headers = request.method, request.path, request.host, request.headers
    if attr == "method":
        method = ANY
    elif attr == "path":
        path = ANY
    elif attr == "host":
        host = ANY
    else:
        headers = ((ANY, ANY),)
    return HttpRequest(method, path, host, headers)


def is_summary(request: HttpRequest) -> bool:
    return ANY in (request.method, request.path, request.host) or request.headers == ((ANY, ANY),)


@functools.lru_cache(maxsize=4096)
def summarize(
    candidates: tuple[HttpRequest, ...],
    passing: tuple[HttpRequest, ...],
    free: tuple[str, ...] = (),
) -> tuple[HttpRequest, ...]:
    """Shorten passing witnesses: an attribute for which every candidate value passes (the
    others fixed), or that no pattern looks at (`free`), becomes `*`. E.g. GET on every path
    → (GET, *)."""
    current = list(passing)
    universe = list(candidates)
    attributes = ("path", "host", "headers", "method")
    for attr in attributes:

        def rest(r: HttpRequest, attr: str = attr) -> tuple[object, ...]:
            return tuple(getattr(r, a) for a in attributes if a != attr)

        values_by_rest: dict[tuple[object, ...], set[object]] = {}
        for r in universe:
            values_by_rest.setdefault(rest(r), set()).add(getattr(r, attr))
        passing_by_rest: dict[tuple[object, ...], set[object]] = {}
        for r in current:
            passing_by_rest.setdefault(rest(r), set()).add(getattr(r, attr))

        def collapse(
            items: list[HttpRequest],
            attr: str = attr,
            values_by_rest: dict[tuple[object, ...], set[object]] = values_by_rest,
            passing_by_rest: dict[tuple[object, ...], set[object]] = passing_by_rest,
        ) -> list[HttpRequest]:
            out: list[HttpRequest] = []
            for r in items:
                key = rest(r)
                full = values_by_rest.get(key, set())
                item = (
                    wildcard(r, attr)
                    if passing_by_rest.get(key) == full and (len(full) > 1 or attr in free)
                    else r
                )
                if item not in out:
                    out.append(item)
            return out

        current, universe = collapse(current), collapse(universe)
    return tuple(current)
