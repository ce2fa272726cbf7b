"""YAML output."""

from __future__ import annotations

import functools
import json
import re
from typing import Any

import yaml

from .catalog import Obj

# A small block-style emitter in kubectl's layout (sorted keys, two-space indent, sequences not
# indented under their key). It is ~6x faster than yaml.dump with libyaml because PyYAML's
# representer runs in Python either way. Any string the YAML 1.1 resolver would read as
# something else (bool, int, float, null, timestamp) or that holds indicator characters is
# written double-quoted via JSON escaping, which is valid YAML.

_PLAIN = re.compile(r"[A-Za-z0-9_./][A-Za-z0-9_./:@=+-]*\Z")
_RESOLVER = yaml.resolver.Resolver()
_STR_TAG = "tag:yaml.org,2002:str"


@functools.lru_cache(maxsize=1 << 16)
def _plain_ok(text: str) -> bool:
    return (
        _PLAIN.match(text) is not None
        and not text.endswith(":")
        and _RESOLVER.resolve(yaml.ScalarNode, text, (True, False)) == _STR_TAG
    )


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return value if _plain_ok(value) else json.dumps(value)
    raise TypeError(f"cannot emit {type(value).__name__}")


def _emit_mapping(lines: list[str], mapping: Obj, indent: str) -> None:
    for key in sorted(mapping, key=str):
        value, k = mapping[key], _scalar(key)
        if isinstance(value, dict):
            if value:
                lines.append(f"{indent}{k}:")
                _emit_mapping(lines, value, indent + "  ")
            else:
                lines.append(f"{indent}{k}: {{}}")
        elif isinstance(value, list):
            if value:
                lines.append(f"{indent}{k}:")
                _emit_sequence(lines, value, indent)
            else:
                lines.append(f"{indent}{k}: []")
        else:
            lines.append(f"{indent}{k}: {_scalar(value)}")


def _emit_sequence(lines: list[str], items: list[Any], indent: str) -> None:
    for item in items:
        if isinstance(item, dict) and item:
            start = len(lines)
            _emit_mapping(lines, item, indent + "  ")
            lines[start] = f"{indent}- {lines[start][len(indent) + 2 :]}"
        elif isinstance(item, list) and item:
            lines.append(f"{indent}-")
            _emit_sequence(lines, item, indent + "  ")
        elif isinstance(item, dict | list):
            lines.append(f"{indent}- {'{}' if isinstance(item, dict) else '[]'}")
        else:
            lines.append(f"{indent}- {_scalar(item)}")


def to_yaml(doc: Obj) -> str:
    """One YAML document (without the `---` separator)."""
    lines: list[str] = []
    _emit_mapping(lines, doc, "")
    return "\n".join(lines) + "\n"
