"""Line sources for flow logs: plain or gzip files (told apart by their magic bytes, not their
name) or stdin, read one line at a time so that files of millions of lines take constant
memory; and the JSON decoder (orjson when installed, else the standard library)."""

from __future__ import annotations

import gzip
import io
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO, Any, cast

loads: Callable[[str], Any]
JSONDecodeError: tuple[type[Exception], ...]
try:  # pragma: no cover - which branch runs depends on the environment
    import orjson

    loads = orjson.loads
    JSONDecodeError = (orjson.JSONDecodeError,)
except ImportError:  # pragma: no cover
    import json

    loads = json.loads
    JSONDecodeError = (json.JSONDecodeError,)

GZIP_MAGIC = b"\x1f\x8b"

Progress = Callable[[int], None]
"""Called with the number of (compressed) bytes read so far."""


@contextmanager
def open_flow_file(path: str) -> Iterator[tuple[IO[bytes], IO[bytes] | None]]:
    """(the decompressed byte stream, the raw file for progress) of `path` (`-` = stdin)."""
    if path == "-":
        raw: IO[bytes] = sys.stdin.buffer
        head = raw.peek(2)[:2] if isinstance(raw, io.BufferedReader) else b""
        if head == GZIP_MAGIC:
            yield cast(IO[bytes], gzip.GzipFile(fileobj=raw)), None
        else:
            yield raw, None
        return
    with open(path, "rb") as raw_file:
        head = raw_file.read(2)
        raw_file.seek(0)
        if head == GZIP_MAGIC:
            with gzip.GzipFile(fileobj=raw_file) as unzipped:
                yield cast(IO[bytes], unzipped), raw_file
        else:
            yield raw_file, raw_file


def numbered_lines(path: str, progress: Progress | None = None) -> Iterator[tuple[int, str]]:
    """(1-based line number, text without the line break) of every line of `path`.

    Undecodable bytes are replaced (the line is then reported bad by its reader, not here).
    `progress` is called every 4096 lines with the raw bytes read so far. Raises OSError (and
    EOFError / gzip.BadGzipFile for a truncated or corrupt gzip file)."""
    with open_flow_file(path) as (stream, raw):
        number = 0
        for number, data in enumerate(stream, 1):
            if progress is not None and raw is not None and not number & 0xFFF:
                progress(raw.tell())
            yield number, data.decode("utf-8", "replace").rstrip("\r\n")
        if progress is not None and raw is not None:
            progress(raw.tell())
