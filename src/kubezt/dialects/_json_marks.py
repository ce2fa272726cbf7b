"""Where each field of one JSON object is written, without composing it as YAML.

A JSON object read on the fast path (`_yaml._json_fast`) keeps its source text; when a reader
asks for a field's location, `json_marks` indexes it in one pass of a tokenizer: every mapping
field at its key, every list item at the item, exactly as `_yaml._marks` places them from a
composed node. The text is valid JSON (a JSON parser has already read it), so the tokenizer does
not validate; a raw newline is never inside a string, so lines are counted on the text as is.
"""

from __future__ import annotations

import json
import re

PathPart = str | int
Marks = dict[tuple[PathPart, ...], tuple[int, int]]

_TOKEN = re.compile(r'[ \t\n\r]*("(?:[^"\\]|\\.)*"|[{}\[\],:]|[^ \t\n\r{}\[\],:"]+)')


_KEY, _ITEM, _VALUE, _AFTER = range(4)


def json_marks(text: str, line: int, column: int) -> Marks:
    """(line, column) of every field of the JSON value `text`, which starts at `line`, `column`
    (1-based) of its file; the empty path is the value itself."""
    out: Marks = {(): (line, column)}
    frames: list[tuple[tuple[PathPart, ...], list[int] | None]] = []  # path, [next list index]
    path: tuple[PathPart, ...] = ()  # of the value being read
    state = _VALUE
    lines = scanned = 0
    last_newline = -1
    for match in _TOKEN.finditer(text):
        token = match.group(1)
        first = token[0]
        if state == _AFTER:
            if first == ",":
                parent, index = frames[-1]
                if index is None:
                    state = _KEY
                else:
                    index[0] += 1
                    path = (*parent, index[0])
                    state = _ITEM
            else:  # } or ]
                frames.pop()
            continue
        if state == _VALUE:
            if first == ":":
                continue
        elif first == "}" or first == "]":  # an empty mapping or list
            frames.pop()
            state = _AFTER
            continue
        else:  # a key, or a list item: where it starts is its mark
            pos = match.start(1)
            found = text.count("\n", scanned, pos)
            if found:
                lines += found
                last_newline = text.rfind("\n", scanned, pos)
            scanned = pos
            if state == _KEY:
                key = token[1:-1] if "\\" not in token else json.loads(token)
                path = (*frames[-1][0], key)
            out[path] = (line + lines, pos - last_newline) if lines else (line, column + pos)
            if state == _KEY:
                state = _VALUE
                continue
        if first == "{":
            frames.append((path, None))
            state = _KEY
        elif first == "[":
            frames.append((path, [0]))
            path = (*path, 0)
            state = _ITEM
        else:
            state = _AFTER
    return out
