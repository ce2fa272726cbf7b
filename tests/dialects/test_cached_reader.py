"""`CachedReader` (what `kubezt watch` reads the cluster's objects with) gives the model
`load_parsed` gives for the same documents, after any documents are replaced, added or
removed, on every example."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import pytest

from kubezt.dialects._yaml import Document
from kubezt.dialects.registry import CachedReader, load_parsed, parse_paths
from kubezt.errors import DiagnosticSink

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted(p for p in (ROOT / "examples").iterdir() if p.is_dir())


def _documents(path: Path) -> list[Document]:
    sink = DiagnosticSink()
    docs, _ = parse_paths([str(path)], sink)
    assert not sink.errors
    # one origin per object, as the cluster's documents have
    return [dataclasses.replace(d, file=f"{d.file}#{i}") for i, d in enumerate(docs)]


def _relabelled(doc: Document) -> Document:
    data = copy.deepcopy(doc.data)
    meta = data.setdefault("metadata", {})
    meta["labels"] = {**(meta.get("labels") or {}), "kubezt.io/edited": "yes"}
    return dataclasses.replace(doc, data=data)


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_cached_reader_equals_a_fresh_read(example: Path) -> None:
    docs = _documents(example)
    reader = CachedReader()
    assert reader.load(docs, ()).model == load_parsed(docs, ()).model
    for i in range(0, len(docs), max(1, len(docs) // 5)):
        changed = [*docs[:i], _relabelled(docs[i]), *docs[i + 1 :]]
        assert reader.load(changed, ()).model == load_parsed(changed, ()).model
        dropped = docs[:i] + docs[i + 1 :]
        assert reader.load(dropped, ()).model == load_parsed(dropped, ()).model
    assert reader.load(docs, ()).model == load_parsed(docs, ()).model
