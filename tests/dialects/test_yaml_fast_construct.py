"""YAML without anchors is built directly (`_built`) and its plain scalars' tags resolved once
per distinct text (`_ManifestLoader`): the property is that every document reads exactly as
PyYAML's safe loader reads it (same values, same types), for the pruned workload kinds as for
every other kind."""

from __future__ import annotations

from typing import Any

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from kubezt.dialects._yaml import PRUNED_KINDS, _prune, load_documents
from kubezt.errors import DiagnosticSink

texts = st.sampled_from(
    ["80", "0x1F", "1.5", "1e3", ".inf", "yes", "on", "null", "~", "2024-01-02",
     "2024-09-21T13:24:50Z", "=", "<<", "a: b", "- x", "", " ", "é", "true", "TCP"]
) | st.text(max_size=5)  # fmt: skip
scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), texts)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.one_of(texts, st.integers(0, 99)), inner, max_size=3),
    ),
    max_leaves=10,
)


@st.composite
def documents(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["Pod", "Deployment", "NetworkPolicy", "ConfigMap"]))
    doc: dict[str, Any] = {"apiVersion": "v1", "kind": kind, "metadata": {"name": "web"}}
    doc["metadata"]["labels"] = draw(values)
    doc["spec"] = draw(values) if draw(st.booleans()) else {"containers": draw(values)}
    doc["data"] = draw(values)
    return doc


@settings(max_examples=150, deadline=None)
@given(docs=st.lists(documents(), min_size=1, max_size=3), flow=st.booleans())
def test_documents_read_as_the_safe_loader_reads_them(docs: list[Any], flow: bool) -> None:
    text = yaml.safe_dump_all(docs, default_flow_style=flow, sort_keys=False)
    got = list(load_documents(text, "docs.yaml", DiagnosticSink()))
    want = list(yaml.safe_load_all(text))
    assert len(got) == len(want)
    for doc, data in zip(got, want, strict=True):
        spec = PRUNED_KINDS.get(data["kind"])
        expected = _prune(data, spec) if spec is not None else data
        assert repr(doc.data) == repr(expected)
