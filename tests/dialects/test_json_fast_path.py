"""JSON files are read without composing anything as YAML (`_json_fast`): Pods, workload
controllers, Services, ServiceAccounts, Namespaces and Nodes are located by offset, other objects
by indexing their text when a field is located (`json_marks`, equal to the composed node's marks
on random JSON). The property: on random objects of
every kind, written as a `kind: List` (any indentation) or as a stream of values, the fast path
gives the same documents as the exact path (the data the readers use, each object's line and
column, and every field's location, found by composing the file again only when asked); and a
file it cannot read exactly (a key written twice, a syntax error) is left to the exact path."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kubezt.dialects._json_marks import json_marks
from kubezt.dialects._yaml import (
    LAZY_JSON_KINDS,
    PRUNED_KINDS,
    _compose_json,
    _json_fast,
    _marks,
    _prune,
    load_documents,
)
from kubezt.errors import DiagnosticSink

KINDS = sorted(LAZY_JSON_KINDS | {"NetworkPolicy", "AuthorizationPolicy", "ConfigMap"})

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**40), 2**40),
    st.integers(-(2**70), 2**70),  # beyond 64 bits orjson would read a float
    st.floats(allow_nan=False, allow_infinity=False),
    st.text('ab:"\\/{}[],\n\té', max_size=6),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from(["name", "ports", "spec", "x", "a:b"]), inner, max_size=3),
    ),
    max_leaves=8,
)


@st.composite
def objects(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(KINDS))
    obj: dict[str, Any] = {"apiVersion": "v1", "kind": kind}
    obj["metadata"] = {"name": draw(st.sampled_from(["web", "db"])), "labels": {"app": "x"}}
    spec = PRUNED_KINDS.get(kind, {})
    fields = {"spec": draw(values), "status": draw(values), "extra": draw(values)}
    if "spec" in spec and isinstance(spec["spec"], dict):
        inner = {k: draw(values) for k in spec["spec"] if draw(st.booleans())}
        inner["unused"] = draw(values)
        fields["spec"] = inner
    obj.update({k: v for k, v in fields.items() if draw(st.booleans())})
    return obj


def paths(data: Any, prefix: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    out = [prefix]
    if isinstance(data, dict):
        for k, v in data.items():
            out += paths(v, (*prefix, k))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            out += paths(v, (*prefix, i))
    return out


def exact_data(doc_data: Any) -> Any:
    kind = doc_data.get("kind") if isinstance(doc_data, dict) else None
    return _prune(doc_data, PRUNED_KINDS.get(kind, True)) if kind in LAZY_JSON_KINDS else doc_data


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    objs=st.lists(objects(), min_size=1, max_size=5),
    as_list=st.booleans(),
    indent=st.sampled_from([None, 2, 4, "\t"]),
    ascii_only=st.booleans(),
)
def test_fast_json_reads_what_the_exact_path_reads(
    tmp_path: Path, objs: list[dict[str, Any]], as_list: bool, indent: Any, ascii_only: bool
) -> None:
    # (ascii_only: "é" written as a \u escape, which the List items' orjson path leaves alone)
    if as_list:
        listing = {"apiVersion": "v1", "kind": "List", "items": objs}
        text = json.dumps(listing, indent=indent, ensure_ascii=ascii_only)
    else:
        text = "\n".join(json.dumps(o, indent=indent, ensure_ascii=ascii_only) for o in objs)
    # a new file each time: a file's composed nodes are cached by name while a run lasts
    path = tmp_path / f"objects-{len(list(tmp_path.iterdir()))}.json"
    path.write_text(text, encoding="utf-8")
    file = str(path)
    assert _json_fast(text, file, DiagnosticSink()) is not None
    fast = list(load_documents(text, file, DiagnosticSink()))
    exact = list(load_documents(text, file, DiagnosticSink(), exact=True))
    assert len(fast) == len(exact) == len(objs)
    for f, e in zip(fast, exact, strict=True):
        assert f.data == exact_data(e.data)
        for p in paths(f.data):
            assert f.locate(p) == e.locate(p), p


def test_a_key_written_twice_is_left_to_the_exact_path(tmp_path: Path) -> None:
    pod = '{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a", "name": "b"}}'
    for text in (pod, '{"kind": "List", "items": [' + pod + "]}"):
        assert _json_fast(text, "pods.json", DiagnosticSink()) is None
        sink = DiagnosticSink()
        docs = list(load_documents(text, "pods.json", sink))
        assert [d.duplicates[0].path for d in docs] == [("metadata", "name")]


def test_a_key_written_twice_in_a_pretty_list_item_is_left_to_the_exact_path() -> None:
    items = [
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a"}},
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "b", "uid": "u"}},
    ]
    text = json.dumps({"apiVersion": "v1", "kind": "List", "items": items}, indent=4)
    text = text.replace('"uid": "u"', '"name": "c"')
    assert _json_fast(text, "pods.json", DiagnosticSink()) is None
    docs = list(load_documents(text, "pods.json", DiagnosticSink()))
    assert [d.duplicates[0].path for d in docs if d.duplicates] == [("metadata", "name")]


def test_big_integers_in_a_pretty_list_item_stay_integers() -> None:
    item = {"apiVersion": "v1", "kind": "ConfigMap", "data": {"a": 2**64, "b": -(2**63) - 1}}
    text = json.dumps({"apiVersion": "v1", "kind": "List", "items": [item]}, indent=4)
    (doc,) = _json_fast(text, "maps.json", DiagnosticSink()) or []
    assert doc.data == item
    assert [type(v) for v in doc.data["data"].values()] == [int, int]


def test_malformed_json_is_left_to_the_exact_path() -> None:
    for text in ('{"kind": "Pod",}', '[{"kind": "Pod"}]', '{"kind": "Pod"} x', '{"a": NaN'):
        assert _json_fast(text, "x.json", DiagnosticSink()) is None


any_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.text('ab:"\\/{}[],\n\té', max_size=4), inner, max_size=3),
    ),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None)
@given(
    value=any_values,
    indent=st.sampled_from([None, 1, 4, "\t"]),
    ascii_only=st.booleans(),
    where=st.tuples(st.integers(1, 5), st.integers(1, 9)),
)
def test_json_marks_place_every_field_where_the_composed_node_does(
    value: Any, indent: Any, ascii_only: bool, where: tuple[int, int]
) -> None:
    text = json.dumps(value, indent=indent, ensure_ascii=ascii_only)
    line, column = where
    node = _compose_json(text, line - 1, column - 1)
    assert node is not None
    assert json_marks(text, line, column) == _marks(node, True)
