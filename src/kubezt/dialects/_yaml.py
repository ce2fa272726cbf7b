"""Position-aware loading of YAML and JSON manifests.

Owns: expanding paths (files, directories, `-` for stdin), splitting multi-document YAML, JSON,
`kind: List`, and remembering for every object its file and line. Uses PyYAML's C loader when it
is available. Must not interpret any object (that is the dialect readers' job).

JSON is parsed with the standard library's C scanner (strict JSON, and a stream of several JSON
values such as `jq` prints is accepted). A file's Pods and workload controllers (the bulk of a
`kubectl get -o json` dump) are kept as decoded, pruned to the fields readers use, and located
by their offsets; their fields are located only when a reader reports one (the file is then
composed again). Every other object keeps its JSON text, indexed by a tokenizer the first time a
reader locates one of its fields (`_json_marks`): JSON is never composed as YAML on this path.
Duplicate mapping keys, which PyYAML would silently merge, are found before construction and
reported by the registry with the object they belong to.
"""

from __future__ import annotations

import functools
import gc
import json
import os
import re
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import yaml

from kubezt.dialects._json_marks import json_marks
from kubezt.errors import Diagnostic, DiagnosticSink, Location, Severity

try:  # the C loader is an order of magnitude faster on large clusters
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - depends on how PyYAML was built
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

_PLAIN_TAGS: dict[str, str] = {}
_PLAIN_TAGS_MAX = 1 << 17


class _ManifestLoader(_Loader):
    """PyYAML's safe loader, resolving the implicit tag of a plain scalar once per distinct
    value (the tag of a plain scalar depends on its text alone while no path resolver is
    registered, and the C composer asks the Python resolver for every scalar: a quarter of the
    composing time on large clusters)."""

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        if kind is yaml.ScalarNode and implicit[0] and not self.yaml_path_resolvers:
            tag = _PLAIN_TAGS.get(value)
            if tag is None:
                tag = super().resolve(kind, value, implicit)  # type: ignore[no-untyped-call]
                if len(_PLAIN_TAGS) < _PLAIN_TAGS_MAX:
                    _PLAIN_TAGS[value] = tag
            return tag
        return super().resolve(kind, value, implicit)  # type: ignore[no-untyped-call]

    def descend_resolver(self, current_node: Any, current_index: Any) -> None:
        if self.yaml_path_resolvers:
            super().descend_resolver(current_node, current_index)

    def ascend_resolver(self) -> None:
        if self.yaml_path_resolvers:
            super().ascend_resolver()


MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
PathPart = str | int
_MERGE_TAG = "tag:yaml.org,2002:merge"
_JSON_SPACE = re.compile(r"[ \t\n\r]*")


@dataclass(frozen=True, slots=True)
class DuplicateKey:
    """A mapping key written twice: `path` is the field (relative to its object)."""

    path: tuple[PathPart, ...]
    key: yaml.Node
    first: yaml.Node


@dataclass(slots=True)
class Document:
    """One Kubernetes object as read: its data and where it was written.

    `node` is the composed YAML node of the object, kept so that a field path can be turned into
    a line and column when a reader reports a problem.
    """

    data: Any
    file: str
    line: int
    node: yaml.Node | None
    duplicates: tuple[DuplicateKey, ...] = ()
    column: int = 0
    marks: dict[tuple[PathPart, ...], tuple[int, int]] | None = None
    """(line, column) of each field: a document read in a worker process comes back without
    its node (too costly to send), with this index instead, or with `seq` to find it again."""
    seq: int = -1
    text: str | None = None
    """The JSON source of an object read on the fast path, indexed into `marks` (from `line`,
    `column`) the first time a field is located."""

    def locate(self, path: Sequence[PathPart]) -> Location:
        """The location of the field at `path`, or of its nearest existing parent.

        A field is located at its key (`ports:` rather than the first item below it), a list
        item at the item itself, and the object (empty path) at its first line.
        """
        node = self.node
        if node is None and self.marks is None and self.text is not None:
            if not path:
                return Location(self.file, self.line, self.column)
            self.marks = json_marks(self.text, self.line, self.column)
            self.text = None
        if node is None and self.marks is not None:
            line, column = self.marks[()]
            for i in range(len(path)):
                found = self.marks.get(tuple(path[: i + 1]))
                if found is None:
                    break
                line, column = found
            return Location(self.file, line, column)
        if node is None and path and self.seq >= 0:
            node = _relocate(self.file, self.seq)
        if node is None:
            return Location(self.file, self.line, self.column)
        mark = node.start_mark
        for part in path:
            entry = _entry(node, part)
            if entry is None:
                break
            key, node = entry
            mark = (key if key is not None else node).start_mark
        return Location(self.file, mark.line + 1, mark.column + 1)


_RELOCATED: dict[str, list[yaml.Node | None]] = {}


def _relocate(file: str, seq: int) -> yaml.Node | None:
    """The node of the `seq`-th document of `file`, composed again (only when reporting)."""
    nodes = _RELOCATED.get(file)
    if nodes is None:
        sink = DiagnosticSink()
        text = read_text(file, sink)
        nodes = (
            [d.node for d in load_documents(text, file, sink, exact=True)]
            if text is not None
            else []
        )
        if len(_RELOCATED) >= 32:
            _RELOCATED.clear()
        _RELOCATED[file] = nodes
    return nodes[seq] if 0 <= seq < len(nodes) else None


def _marks(node: yaml.Node, spec: Any) -> dict[tuple[PathPart, ...], tuple[int, int]]:
    """Where each field (as `Document.locate` places it) of the pruned document starts."""
    out: dict[tuple[PathPart, ...], tuple[int, int]] = {
        (): (node.start_mark.line + 1, node.start_mark.column + 1)
    }
    stack: list[tuple[yaml.Node, tuple[PathPart, ...], Any]] = [(node, (), spec)]
    while stack:
        current, path, sub = stack.pop()
        if isinstance(current, yaml.MappingNode):
            for key, value in current.value:
                if not isinstance(key, yaml.ScalarNode):
                    continue
                if sub is not True and key.value not in sub:
                    continue
                here = (*path, key.value)
                out[here] = (key.start_mark.line + 1, key.start_mark.column + 1)
                stack.append((value, here, True if sub is True else sub[key.value]))
        elif isinstance(current, yaml.SequenceNode):
            for index, item in enumerate(current.value):
                here = (*path, index)
                out[here] = (item.start_mark.line + 1, item.start_mark.column + 1)
                stack.append((item, here, sub))
    return out


def parse_file(file: str) -> tuple[list[Document], list[Diagnostic]]:
    """Every document of one file, with a field-position index instead of its node, so it can
    be sent cheaply from a worker process."""
    gc.disable()  # a worker only builds acyclic data (see registry.load)
    sink = DiagnosticSink()
    text = read_text(file, sink)
    docs = list(load_documents(text, file, sink)) if text is not None else []
    for seq, doc in enumerate(docs):
        node = doc.node
        if node is not None:
            doc.line, doc.column = node.start_mark.line + 1, node.start_mark.column + 1
            kind = doc.data.get("kind") if isinstance(doc.data, dict) else None
            # Workloads are the bulk of a cluster and their readers rarely report anything:
            # their nodes are recomposed only when asked (`locate`); policies keep an index.
            doc.marks = None if kind in PRUNED_KINDS else _marks(node, True)
        doc.node = None
        doc.seq = seq
    return docs, sink.items


def dotted(path: Sequence[PathPart]) -> str:
    """`spec.ingress[0].from` for ("spec", "ingress", 0, "from")."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


def _entry(node: yaml.Node, part: PathPart) -> tuple[yaml.Node | None, yaml.Node] | None:
    """(key node, value node) of a mapping field, or (None, item) of a list item."""
    if isinstance(node, yaml.MappingNode) and isinstance(part, str):
        found = None
        for key, value in node.value:  # the last of duplicate keys wins, as in the data
            if isinstance(key, yaml.ScalarNode) and key.value == part:
                found = (key, value)
        return found
    if (
        isinstance(node, yaml.SequenceNode)
        and isinstance(part, int)
        and 0 <= part < len(node.value)
    ):
        return None, node.value[part]
    return None


def _child(node: yaml.Node, part: PathPart) -> yaml.Node | None:
    entry = _entry(node, part)
    return entry[1] if entry is not None else None


def duplicate_keys(node: yaml.Node, aliases: bool = True) -> list[DuplicateKey]:
    """Every mapping key written twice under `node` (paths relative to `node`).

    Must run before the node is constructed: construction flattens `<<` merge keys into the
    mapping, and keys brought in by a merge may legitimately repeat. Aliased nodes are visited
    once, so a document full of aliases costs no more than its distinct nodes.
    """
    if not _has_duplicate_keys(node, aliases):
        return []
    out: list[DuplicateKey] = []
    stack: list[tuple[yaml.Node, tuple[PathPart, ...]]] = [(node, ())]
    visited: set[int] = set()
    while stack:
        current, path = stack.pop()
        if id(current) in visited:
            continue
        visited.add(id(current))
        if isinstance(current, yaml.MappingNode):
            first: dict[str, yaml.Node] = {}
            for key, value in current.value:
                if not isinstance(key, yaml.ScalarNode) or key.tag == _MERGE_TAG:
                    continue
                if key.value in first:
                    out.append(DuplicateKey((*path, key.value), key, first[key.value]))
                else:
                    first[key.value] = key
                stack.append((value, (*path, key.value)))
        elif isinstance(current, yaml.SequenceNode):
            stack.extend((item, (*path, i)) for i, item in enumerate(current.value))
    return out


def duplicate_key_diagnostic(dup: DuplicateKey, file: str, obj: str) -> Diagnostic:
    name = dup.path[-1] if dup.path else ""
    first = dup.first.start_mark.line + 1
    return Diagnostic(
        Severity.ERROR,
        "E023",
        f'expected each key once in a mapping, got "{name}" again (first at line {first})',
        Location(file, dup.key.start_mark.line + 1, dup.key.start_mark.column + 1),
        obj,
        dotted(dup.path),
        hint="a YAML or JSON reader would silently keep only the last value",
    )


def _has_duplicate_keys(root: yaml.Node, aliases: bool = True) -> bool:
    """A quick first pass without paths; may say True for a repeated merge key. Without
    `aliases` (a text with no anchor, so no node is reached twice) nodes are not remembered."""
    mapping, sequence, scalar = yaml.MappingNode, yaml.SequenceNode, yaml.ScalarNode
    stack = [root]
    visited: set[int] = set()
    while stack:
        node = stack.pop()
        if aliases:
            if id(node) in visited:
                continue
            visited.add(id(node))
        if type(node) is mapping:
            pairs = node.value
            if len({k.value for k, _ in pairs if type(k) is scalar}) != len(pairs):
                return True
            stack.extend(v for _, v in pairs if type(v) is not scalar)
        elif type(node) is sequence:
            stack.extend(v for v in node.value if type(v) is not scalar)
    return False


def expand_paths(paths: Sequence[str], sink: DiagnosticSink) -> list[str]:
    """Files in argument order; directories expand recursively to sorted manifest files.

    Inside a directory, files and directories whose name starts with '.' are ignored.
    """
    files: list[str] = []
    for raw in paths:
        if raw == "-":
            files.append("-")
            continue
        path = Path(raw)
        if path.is_dir():
            found = sorted(
                str(p)
                for p in path.rglob("*")
                if p.is_file()
                and p.suffix.lower() in MANIFEST_SUFFIXES
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
            if not found:
                sink.add(
                    Diagnostic(
                        Severity.WARNING,
                        "W001",
                        "directory holds no *.yaml, *.yml or *.json file",
                        Location(raw),
                    )
                )
            files.extend(found)
        elif path.is_file():
            files.append(str(path))
        else:
            sink.add(Diagnostic(Severity.ERROR, "E001", "no such file or directory", Location(raw)))
    return files


def read_text(file: str, sink: DiagnosticSink) -> str | None:
    name = "<stdin>" if file == "-" else file
    try:
        if file == "-":
            text = sys.stdin.read()
        else:
            with open(file, encoding="utf-8") as fh:
                text = fh.read()
    except UnicodeDecodeError as exc:
        sink.add(
            Diagnostic(
                Severity.ERROR,
                "E002",
                f"expected UTF-8 text, got the byte 0x{exc.object[exc.start]:02x} at byte "
                f"offset {exc.start} ({exc.reason})",
                Location(name),
            )
        )
        return None
    except OSError as exc:
        sink.add(
            Diagnostic(
                Severity.ERROR, "E001", os.strerror(exc.errno or 0) or str(exc), Location(name)
            )
        )
        return None
    return text.removeprefix("\ufeff")


def load_documents(
    text: str, file: str, sink: DiagnosticSink, exact: bool = False
) -> Iterator[Document]:
    """Every object in `text`: multi-document YAML, JSON, and the items of `kind: List`.

    Empty documents and comments (Helm output) are skipped. A syntax error is reported with its
    line and column; the documents before it are still returned. `exact`: every JSON object
    with its composed node (see `_json_fast`).
    """
    name = "<stdin>" if file == "-" else file
    text = text.removeprefix("\ufeff")
    strict_json = file.lower().endswith(".json")
    if strict_json and not exact and file != "-":
        fast = _json_fast(text, name, sink)
        if fast is not None:
            yield from fast
            return
    if strict_json or (file == "-" and text.lstrip().startswith("{")):
        documents = _json_documents(text, name, sink, strict_json)
        if documents is not None:
            yield from documents
            return
    yield from _yaml_documents(text, name, sink)


def _yaml_documents(text: str, name: str, sink: DiagnosticSink) -> Iterator[Document]:
    loader = _ManifestLoader(text)
    aliases = "&" in text  # no anchor: no node is reached twice
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            duplicates = duplicate_keys(node, aliases)
            data = _construct(loader, node, aliases)
            if data is None:
                continue
            yield from _expand(data, node, name, sink, duplicates)
    except yaml.MarkedYAMLError as exc:
        sink.add(_syntax_error(exc, text, name))
    except yaml.reader.ReaderError as exc:
        sink.add(_reader_error(exc, text, name))
    except yaml.YAMLError as exc:
        sink.add(Diagnostic(Severity.ERROR, "E003", f"malformed YAML: {exc}", Location(name)))
    except RecursionError:
        sink.add(
            Diagnostic(
                Severity.ERROR,
                "E003",
                "malformed YAML: expected a manifest, got collections nested too deeply to read",
                Location(name),
            )
        )
    finally:
        loader.dispose()


_META: dict[str, Any] = dict.fromkeys(
    ("name", "generateName", "namespace", "labels", "annotations", "creationTimestamp"), True
)
_CONTAINER: dict[str, Any] = {"name": True, "ports": True}
_POD_SPEC: dict[str, Any] = {
    "serviceAccountName": True,
    "serviceAccount": True,
    "hostNetwork": True,
    "containers": _CONTAINER,
    "initContainers": _CONTAINER,
}
_TEMPLATE: dict[str, Any] = {"metadata": _META, "spec": _POD_SPEC}
_HEAD: dict[str, Any] = {"apiVersion": True, "kind": True, "metadata": _META}
PRUNED_KINDS: dict[str, dict[str, Any]] = {
    "Pod": {**_HEAD, "spec": _POD_SPEC, "status": {"podIP": True, "podIPs": True}},
    "CronJob": {**_HEAD, "spec": {"jobTemplate": {"spec": {"template": _TEMPLATE}}}},
    **{
        kind: {**_HEAD, "spec": {"replicas": True, "template": _TEMPLATE}}
        for kind in (
            "Deployment",
            "StatefulSet",
            "DaemonSet",
            "ReplicaSet",
            "ReplicationController",
            "Job",
        )
    },
}
"""For the bulky workload kinds, the only fields any reader looks at: the rest of a Pod
(env, volumes, managedFields, status conditions, …) is never built, which halves load time on
real cluster dumps."""


def _construct(loader: Any, node: yaml.Node, aliases: bool = True) -> Any:
    """Build a document's data, pruned to the fields readers use for the bulky kinds. Without
    `aliases` (no anchor in the text) strings, lists and mappings are built directly (`_built`)."""
    spec = PRUNED_KINDS.get(_scalar_value(node, "kind") or "")
    if spec is None and aliases:
        return loader.construct_document(node)
    build = loader.construct_object if aliases else functools.partial(_built, loader)
    try:
        return build(node, True) if spec is None else _pruned(loader, node, spec, build)
    finally:
        loader.constructed_objects = {}
        loader.recursive_objects = {}


def _scalar_value(node: yaml.Node, key: str) -> str | None:
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            if isinstance(k, yaml.ScalarNode) and k.value == key and isinstance(v, yaml.ScalarNode):
                return str(v.value)
    return None


def _pruned(loader: Any, node: yaml.Node, spec: Any, build: Any) -> Any:
    if spec is True:
        return build(node, True)
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == _MERGE_TAG:
                return loader.construct_object(node, deep=True)  # merge keys: build it all
            if key_node.value in spec:
                out[loader.construct_object(key_node)] = _pruned(
                    loader, value_node, spec[key_node.value], build
                )
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_pruned(loader, item, spec, build) for item in node.value]
    # not the shape readers expect: build it as is, so they report what they got
    return loader.construct_object(node, deep=True)


_STR_TAG = "tag:yaml.org,2002:str"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_MAP_TAG = "tag:yaml.org,2002:map"


def _built(loader: Any, node: yaml.Node, deep: bool = True) -> Any:
    """What the safe constructor builds from `node` of a document without anchors (no node is
    shared): strings, lists and mappings with string keys directly, anything else (numbers,
    booleans, timestamps, merge keys, explicit tags) by PyYAML's own constructor."""
    kind = type(node)
    if kind is yaml.ScalarNode:
        if node.tag == _STR_TAG:
            return node.value
    elif kind is yaml.MappingNode:
        if node.tag == _MAP_TAG:
            out: dict[Any, Any] = {}
            for key, value in node.value:
                if type(key) is not yaml.ScalarNode or key.tag != _STR_TAG:
                    break
                out[key.value] = _built(loader, value)
            else:
                return out
    elif kind is yaml.SequenceNode and node.tag == _SEQ_TAG:
        return [_built(loader, item) for item in node.value]
    return loader.construct_object(node, deep=True)


class _RepeatedKey(ValueError):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        raise _RepeatedKey
    return out


_SCAN = json.JSONDecoder(object_pairs_hook=_unique_keys).scan_once  # type: ignore[attr-defined]
"""The standard library's C scanner, refusing a key written twice (the decoder keeps the last)."""
LAZY_JSON_KINDS = frozenset(PRUNED_KINDS) | {"Service", "ServiceAccount", "Namespace", "Node"}
"""Kinds whose readers locate a field only to report it: from a JSON file they are not
composed as YAML unless a reader asks (`Document.locate`)."""


def _json_fast(text: str, name: str, sink: DiagnosticSink) -> list[Document] | None:
    """The documents of a JSON file of objects without repeated keys (what kubectl and every
    JSON writer produce), read without composing anything as YAML: Pods and workload
    controllers (`LAZY_JSON_KINDS`) are decoded once, pruned (`PRUNED_KINDS`) and located by
    offset, with `seq` to compose their file again if a field must be located; every other
    object keeps its text for `_json_marks` to index when a reader locates a field. None:
    anything else (a syntax error, a value that is not an object, a key written twice), for
    `_json_documents` to read exactly.
    """
    values: list[tuple[Any, list[tuple[Any, int, int]] | None, int, int]] = []
    try:
        pos = _JSON_SPACE.match(text, 0).end()  # type: ignore[union-attr]
        while pos < len(text):
            if text[pos] != "{":
                return None
            value, items, end = _top_object(text, pos)
            values.append((value, items, pos, end))
            pos = _JSON_SPACE.match(text, end).end()  # type: ignore[union-attr]
    except (ValueError, IndexError, StopIteration, RecursionError):
        return None
    out: list[Document] = []
    line = scanned = 0  # 0-based line of offset `scanned`

    def add(value: Any, start: int, end: int) -> None:
        nonlocal line, scanned
        line += text.count("\n", scanned, start)
        scanned = start
        column = start - (text.rfind("\n", 0, start) + 1)
        kind = value.get("kind") if isinstance(value, dict) else None
        if isinstance(kind, str) and kind in LAZY_JSON_KINDS:
            spec = PRUNED_KINDS.get(kind, True)
            out.append(Document(_prune(value, spec), name, line + 1, None, (), column + 1))
            out[-1].seq = len(out) - 1
            return
        if isinstance(value, dict) and not (
            isinstance(kind, str) and kind.endswith("List") and "items" in value
        ):  # located from its text when a reader asks (`Document.locate`)
            out.append(Document(value, name, line + 1, None, (), column + 1, None, len(out)))
            out[-1].text = text[start:end]
            return
        node = _compose_json(text[start:end], line, column) if isinstance(value, dict) else None
        for doc in _expand(value, node, name, sink, (), line + 1, column + 1):
            doc.seq = len(out)
            out.append(doc)

    for value, items, start, end in values:
        kind = value.get("kind")
        if items is None or not (isinstance(kind, str) and kind.endswith("List")):
            add(value, start, end)
            continue
        for item, item_start, item_end in items:
            add(item, item_start, item_end)
    return out


def _top_object(text: str, pos: int) -> tuple[Any, list[tuple[Any, int, int]] | None, int]:
    """Decode the object at `pos`; when it has an `items` array, also where each item is."""
    space = _JSON_SPACE.match
    obj: dict[str, Any] = {}
    items: list[tuple[Any, int, int]] | None = None
    pos = space(text, pos + 1).end()  # type: ignore[union-attr]
    if text[pos] == "}":
        return obj, None, pos + 1
    while True:
        if text[pos] != '"':
            raise ValueError
        key, pos = json.decoder.scanstring(text, pos + 1)  # type: ignore[attr-defined]
        pos = space(text, pos).end()  # type: ignore[union-attr]
        if text[pos] != ":" or key in obj:
            raise ValueError
        pos = space(text, pos + 1).end()  # type: ignore[union-attr]
        if key == "items" and text[pos] == "[":
            items = []
            pos = space(text, pos + 1).end()  # type: ignore[union-attr]
            if text[pos] == "]":
                pos += 1
            else:
                pretty = True  # until an item is not laid out as `_fast_item` reads
                while True:
                    fast = _fast_item(text, pos) if pretty else None
                    if fast is None or fast is _NOT_PRETTY:
                        pretty = pretty and fast is None
                        item, end = _SCAN(text, pos)
                    else:
                        item, end = fast  # type: ignore[misc]
                    items.append((item, pos, end))
                    pos = space(text, end).end()  # type: ignore[union-attr]
                    if text[pos] == "]":
                        pos += 1
                        break
                    if text[pos] != ",":
                        raise ValueError
                    pos = space(text, pos + 1).end()  # type: ignore[union-attr]
            obj[key] = [item for item, _, _ in items]
        else:
            obj[key], pos = _SCAN(text, pos)
        pos = space(text, pos).end()  # type: ignore[union-attr]
        if text[pos] == "}":
            return obj, items, pos + 1
        if text[pos] != ",":
            raise ValueError
        pos = space(text, pos + 1).end()  # type: ignore[union-attr]


_NOT_PRETTY = object()


def _fast_item(text: str, pos: int) -> tuple[Any, int] | object | None:
    """The item of a pretty-printed List at `pos` (a `{` first on its line, as `kubectl get
    -o json` writes every item) and where it ends, decoded by orjson; None when it cannot be
    read so and told equal to what `_SCAN` reads (the caller then scans it).

    The item ends at the first `}` first on a line at the same indentation; a slice that
    orjson decodes whole is exactly that value (a JSON value is never a proper prefix of
    another). orjson keeps the last of keys written twice, turns integers beyond 64 bits into
    floats and refuses lone surrogates, where `_SCAN` refuses, keeps integers and accepts: the
    slice is taken only without `\\u` escapes (so every `"` of the text is a delimiter or a
    `\\"` and re-encoding writes each one back), with as many `"` as orjson's own encoding of
    the value (a dropped key drops at least its quotes) and with no float written with an
    exponent `e+` (how orjson encodes the floats an integer beyond 64 bits became).
    `_NOT_PRETTY`: the List is laid out otherwise (the caller stops looking for closing
    lines, which could otherwise scan the rest of the file for every item).
    """
    line_start = text.rfind("\n", 0, pos) + 1
    indent = text[line_start:pos]
    if indent.strip(" \t") or text[pos + 1 : pos + 2] not in ("\n", "\r"):
        return _NOT_PRETTY
    close = "\n" + indent + "}"
    end = text.find(close, pos)
    if end < 0:
        return _NOT_PRETTY
    end += len(close)
    segment = text[pos:end]
    if "\\" in segment and "\\u" in segment:  # (most items have no escape at all)
        return None
    try:
        item = orjson.loads(segment)
    except orjson.JSONDecodeError:
        return _NOT_PRETTY
    encoded = orjson.dumps(item)
    if segment.count('"') != encoded.count(b'"') or b"e+" in encoded:
        return None
    return item, end


def _prune(value: Any, spec: Any) -> Any:
    """`_pruned` on decoded data."""
    if spec is True:
        return value
    if isinstance(value, dict):
        return {k: _prune(v, spec[k]) for k, v in value.items() if k in spec}
    if isinstance(value, list):
        return [_prune(item, spec) for item in value]
    return value


def _json_documents(
    text: str, name: str, sink: DiagnosticSink, strict: bool
) -> list[Document] | None:
    """The documents of a JSON file: one value, or several in a row (as `jq` prints them).

    With `strict` (a *.json file) a syntax error is reported and the values before it are kept;
    otherwise (stdin) None means "not JSON, read it as YAML".
    """
    decoder = json.JSONDecoder()
    values: list[tuple[Any, int, int]] = []
    pos = _JSON_SPACE.match(text, 0).end()  # type: ignore[union-attr]
    error: Diagnostic | None = None
    while pos < len(text):
        try:
            value, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            error = _json_error(exc, name)
            break
        except RecursionError:
            error = Diagnostic(
                Severity.ERROR,
                "E003",
                "malformed JSON: expected a manifest, got arrays or objects nested too deeply",
                Location(name, text.count("\n", 0, pos) + 1),
            )
            break
        values.append((value, pos, end))
        pos = _JSON_SPACE.match(text, end).end()  # type: ignore[union-attr]
    if error is not None and not strict:
        return None
    out: list[Document] = []
    line = scanned = 0  # 0-based line of offset `scanned`
    for value, start, end in values:
        line += text.count("\n", scanned, start)
        scanned = start
        line_start = text.rfind("\n", 0, start) + 1
        node = _compose_json(text[start:end], line, start - line_start)
        duplicates = duplicate_keys(node) if node is not None else []
        out.extend(_expand(value, node, name, sink, duplicates, line + 1, start - line_start + 1))
    if error is not None:
        sink.add(error)
    return out


def _compose_json(segment: str, line: int, column: int) -> yaml.Node | None:
    """The YAML node of one JSON value, with marks shifted to where it sits in its file.

    Valid JSON holds tabs only as whitespace (never inside strings), so turning them into
    spaces keeps every position and lets PyYAML, which rejects some tabs, read it.
    """
    loader = _ManifestLoader(segment.replace("\t", " "))
    try:
        node = loader.get_single_node()
    except (yaml.YAMLError, RecursionError):
        return None
    finally:
        loader.dispose()
    if node is not None and (line or column):
        _shift_marks(node, line, column)
    return node


def _shift_marks(root: yaml.Node, line: int, column: int) -> None:
    def shifted(mark: yaml.Mark) -> yaml.Mark:
        col = mark.column + (column if mark.line == 0 else 0)
        return yaml.Mark(mark.name, mark.index, mark.line + line, col, None, 0)

    stack: list[yaml.Node] = [root]
    visited: set[int] = set()
    while stack:
        node = stack.pop()
        if id(node) in visited:
            continue
        visited.add(id(node))
        node.start_mark = shifted(node.start_mark)
        node.end_mark = shifted(node.end_mark)
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                stack.extend((key, value))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)


def _expand(
    data: Any,
    node: yaml.Node | None,
    file: str,
    sink: DiagnosticSink,
    duplicates: Sequence[DuplicateKey] = (),
    line: int = 1,
    column: int = 1,
) -> Iterator[Document]:
    if node is not None:
        line, column = node.start_mark.line + 1, node.start_mark.column + 1
    if not isinstance(data, dict):
        hint = (
            "separate objects with '---', or wrap them in a 'kind: List' with 'items'"
            if isinstance(data, list)
            else ""
        )
        sink.add(
            Diagnostic(
                Severity.ERROR,
                "E004",
                f"expected a Kubernetes object (a mapping with apiVersion and kind), got "
                f"{type_name(data)}",
                Location(file, line, column),
                hint=hint,
            )
        )
        return
    kind = data.get("kind")
    if isinstance(kind, str) and kind.endswith("List") and "items" in data:
        items = data.get("items")
        entry = _entry(node, "items") if node is not None else None
        items_key, items_node = entry if entry is not None else (None, None)
        for dup in duplicates:
            if not (len(dup.path) > 1 and dup.path[0] == "items"):
                sink.add(duplicate_key_diagnostic(dup, file, kind))
        if items is None:
            return
        if not isinstance(items, list):
            where = items_key if items_key is not None else node
            sink.add(
                Diagnostic(
                    Severity.ERROR,
                    "E005",
                    f"expected a list of objects, got {type_name(items)}",
                    Location(file, where.start_mark.line + 1, where.start_mark.column + 1)
                    if where is not None
                    else Location(file, line),
                    obj=kind,
                    path="items",
                )
            )
            return
        for i, item in enumerate(items):
            child = _child(items_node, i) if items_node is not None else None
            mine = [
                DuplicateKey(d.path[2:], d.key, d.first)
                for d in duplicates
                if len(d.path) > 2 and d.path[0] == "items" and d.path[1] == i
            ]
            yield from _expand(
                item, child if child is not None else node, file, sink, mine, line, column
            )
        return
    yield Document(data, file, line, node, tuple(duplicates))


def _syntax_error(exc: yaml.MarkedYAMLError, text: str, name: str) -> Diagnostic:
    """A YAML syntax error as `expected …, got …`, located where a reader would look.

    When the parser only notices the problem at the end of the file (an unclosed quote or
    bracket), the location is where the unclosed construct starts.
    """
    problem = exc.problem or "invalid YAML"
    context = exc.context or ""
    pm, cm = exc.problem_mark, exc.context_mark
    lines = text.split("\n")
    content = text.rstrip().split("\n")
    at_end = pm is not None and (
        pm.line > len(content) - 1
        or (pm.line == len(content) - 1 and pm.column >= len(content[-1]))
    )
    expected = _expected_of(problem)
    hint = ""
    mark: yaml.Mark | None
    if at_end and cm is not None:
        mark = cm
        if expected is None:
            expected = "the closing quote" if "quoted scalar" in context else "more input"
        message = f"expected {expected}, got the end of the file ({context} that starts here)"
    else:
        mark = pm or cm
        got = _snippet(lines, mark.line, mark.column) if mark is not None else ""
        if got.startswith('"\t'):
            expected = expected or "indentation with spaces"
            got = "a tab"
            hint = "YAML does not allow tabs for indentation"
        message = f"expected {expected}, got {got}" if expected else problem
        if context:
            other_line = cm is not None and mark is not None and cm.line != mark.line
            where = f" at line {cm.line + 1}" if cm is not None and other_line else ""
            message += f" ({context}{where})"
        if "block" in context and not hint:
            hint = "check the indentation"
    location = Location(name, mark.line + 1, mark.column + 1) if mark else Location(name)
    return Diagnostic(Severity.ERROR, "E003", f"malformed YAML: {message}", location, hint=hint)


def _expected_of(problem: str) -> str | None:
    """`X` of libyaml's "did not find expected X" or PyYAML's "expected X, but found Y"."""
    if problem.startswith("did not find expected "):
        return problem.removeprefix("did not find expected ")
    match = re.match(r"expected (.*), but (?:found|got) ", problem)
    return match.group(1) if match else None


def _snippet(lines: Sequence[str], line: int, column: int) -> str:
    if line >= len(lines):
        return "the end of the file"
    rest = lines[line][column:].rstrip()
    if not rest:
        return "the end of the line" if line < len(lines) - 1 else "the end of the file"
    if len(rest) > 40:
        rest = rest[:37] + "..."
    return _quoted(rest)


def _quoted(text: str) -> str:
    return f"'{text}'" if '"' in text and "'" not in text else f'"{text}"'


_JSON_TOKEN = re.compile(r'"(?:[^"\\\n]|\\.)*"?|[^\s,:\[\]{}"]+|\S')


def _reader_error(exc: yaml.reader.ReaderError, text: str, name: str) -> Diagnostic:
    position = exc.position if 0 <= exc.position <= len(text) else 0
    line = text.count("\n", 0, position) + 1
    column = position - (text.rfind("\n", 0, position) + 1) + 1
    char = exc.character if isinstance(exc.character, int) else ord(str(exc.character)[:1] or " ")
    return Diagnostic(
        Severity.ERROR,
        "E003",
        f"malformed YAML: expected printable text, got the control character U+{char:04X}",
        Location(name, line, column),
    )


def _json_error(exc: json.JSONDecodeError, name: str) -> Diagnostic:
    token = _JSON_TOKEN.match(exc.doc, exc.pos) if exc.pos < len(exc.doc) else None
    if token is not None:
        got = _quoted(token.group() if len(token.group()) <= 40 else token.group()[:37] + "...")
    else:
        got = _snippet(exc.doc.split("\n"), exc.lineno - 1, exc.colno - 1)
    msg = exc.msg
    if msg.startswith("Expecting "):
        expected = msg.removeprefix("Expecting ").removesuffix(" delimiter")
        expected = {
            "value": "a value",
            "property name enclosed in double quotes": "a property name in double quotes",
        }.get(expected, expected)
        message = f"expected {expected}, got {got}"
    elif msg.startswith("Unterminated string"):
        message = (
            "expected the closing quote of the string that starts here, got the end of the file"
        )
    elif msg.startswith("Invalid control character"):
        message = f"expected the closing quote or an escaped character, got {got}"
    else:
        message = f"{msg[:1].lower()}{msg[1:]}, at {got}"
    return Diagnostic(
        Severity.ERROR,
        "E003",
        f"malformed JSON: {message}",
        Location(name, exc.lineno, exc.colno),
    )


def type_name(value: Any) -> str:
    """How a value is named in messages: `the string "x"`, `a list`, `nothing`."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return f"a boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        shown = value if len(value) <= 60 else value[:57] + "..."
        return f'the string "{shown}"'
    if isinstance(value, list):
        return "a list" if value else "an empty list"
    if isinstance(value, dict):
        return "a mapping" if value else "an empty mapping"
    return f"a {type(value).__name__} {value}"
