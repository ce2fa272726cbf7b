"""Write output files so that a reader never sees a half-written one.

The text goes to a temporary file in the destination's directory, is flushed to disk, and then
replaces the destination in one `os.replace` (atomic on POSIX and on Windows for one volume). If
anything fails, the destination is untouched and the temporary file is removed.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from pathlib import Path


def write_atomic(path: str | os.PathLike[str], text: str, encoding: str = "utf-8") -> None:
    """Replace the file at `path` with `text`, all at once.

    The directory must exist. A new file gets the usual permissions (0o666 less the umask); an
    existing file keeps its permissions. Newlines are written as given ("\\n" stays "\\n").
    """
    target = Path(path)
    directory = target.parent
    data = text.encode(encoding)
    try:
        mode: int | None = stat.S_IMODE(os.stat(target).st_mode)
    except FileNotFoundError:
        mode = None
    tmp = directory / f".{target.name}.{secrets.token_hex(6)}.tmp"
    fh = open(tmp, "xb")  # noqa: SIM115 - created 0o666 less the umask, as open(..., "w") is
    try:
        with fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _sync_directory(directory)


def _sync_directory(directory: Path) -> None:
    """Make the rename itself durable where the platform allows it (POSIX)."""
    flags = getattr(os, "O_DIRECTORY", None)
    if flags is None:  # pragma: no cover - Windows
        return
    try:
        fd = os.open(directory, os.O_RDONLY | flags)
    except OSError:  # pragma: no cover - e.g. a directory we may write but not open
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some file systems refuse fsync on directories
        pass
    finally:
        os.close(fd)
