"""Position-aware loading of YAML and JSON manifests.

Owns: expanding paths (files, directories, `-` for stdin), splitting multi-document YAML, JSON,
`kind: List`, and remembering for every object its file and line. Uses PyYAML's C loader when it
is available. Must not interpret any object (that is the dialect readers' job).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from kubezt.errors import Diagnostic, DiagnosticSink, Location, Severity

try:  # the C loader is an order of magnitude faster on large clusters
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - depends on how PyYAML was built
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
PathPart = str | int


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

    def locate(self, path: Sequence[PathPart]) -> Location:
        """The location of the field at `path` (or of its nearest existing parent)."""
        node = self.node
        line, column = self.line, 0
        if node is not None:
            line, column = node.start_mark.line + 1, node.start_mark.column + 1
        for part in path:
            child = _child(node, part) if node is not None else None
            if child is None:
                break
            node = child
            line, column = node.start_mark.line + 1, node.start_mark.column + 1
        return Location(self.file, line, column)


def _child(node: yaml.Node, part: PathPart) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode) and isinstance(part, str):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode) and key.value == part:
                return value  # type: ignore[no-any-return]
    if (
        isinstance(node, yaml.SequenceNode)
        and isinstance(part, int)
        and 0 <= part < len(node.value)
    ):
        return node.value[part]  # type: ignore[no-any-return]
    return None


def expand_paths(paths: Sequence[str], sink: DiagnosticSink) -> list[str]:
    """Files in argument order; directories expand recursively to sorted manifest files."""
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
    try:
        if file == "-":
            return sys.stdin.read()
        with open(file, encoding="utf-8") as fh:
            return fh.read()
    except UnicodeDecodeError as exc:
        sink.add(
            Diagnostic(Severity.ERROR, "E002", f"not UTF-8 text ({exc.reason})", Location(file))
        )
    except OSError as exc:
        sink.add(
            Diagnostic(
                Severity.ERROR, "E001", os.strerror(exc.errno or 0) or str(exc), Location(file)
            )
        )
    return None


def load_documents(text: str, file: str, sink: DiagnosticSink) -> Iterator[Document]:
    """Every object in `text`: multi-document YAML, JSON, and the items of `kind: List`.

    Empty documents and comments (Helm output) are skipped. A syntax error is reported with its
    line and column; the documents before it are still returned.
    """
    name = "<stdin>" if file == "-" else file
    loader = _Loader(text)
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            data = loader.construct_document(node)
            if data is None:
                continue
            yield from _expand(data, node, name, sink)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        loc = Location(name, mark.line + 1, mark.column + 1) if mark else Location(name)
        problem = exc.problem or "invalid YAML"
        context = f" ({exc.context})" if exc.context else ""
        sink.add(
            Diagnostic(Severity.ERROR, "E003", f"malformed YAML/JSON: {problem}{context}", loc)
        )
    except yaml.YAMLError as exc:
        sink.add(Diagnostic(Severity.ERROR, "E003", f"malformed YAML/JSON: {exc}", Location(name)))
    finally:
        loader.dispose()


def _expand(data: Any, node: yaml.Node, file: str, sink: DiagnosticSink) -> Iterator[Document]:
    line = node.start_mark.line + 1
    if not isinstance(data, dict):
        sink.add(
            Diagnostic(
                Severity.ERROR,
                "E004",
                f"expected a Kubernetes object (a mapping with apiVersion and kind), got "
                f"{type_name(data)}",
                Location(file, line, node.start_mark.column + 1),
            )
        )
        return
    kind = data.get("kind")
    if isinstance(kind, str) and kind.endswith("List") and "items" in data:
        items = data.get("items")
        items_node = _child(node, "items")
        if items is None:
            return
        if not isinstance(items, list):
            sink.add(
                Diagnostic(
                    Severity.ERROR,
                    "E005",
                    f"expected a list, got {type_name(items)}",
                    Location(file, line),
                    obj=kind,
                    path="items",
                )
            )
            return
        for i, item in enumerate(items):
            child = _child(items_node, i) if items_node is not None else None
            yield from _expand(item, child if child is not None else node, file, sink)
        return
    yield Document(data, file, line, node)


def type_name(value: Any) -> str:
    """How a value is named in messages: `a string "x"`, `a list`, `nothing`."""
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
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__
