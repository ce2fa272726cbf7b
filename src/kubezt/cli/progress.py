"""Progress of long work on stderr: shown only when stderr is a terminal and not `--quiet`, so
stdout is never mixed with it and logs never fill with it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console

from kubezt.cli.common import QuietOpt, err

__all__ = ["Progress", "QuietOpt", "shown"]


class Progress:
    """`stage("loading")` starts a stage; `step(stage, done, total)` updates it (a report's
    callback). Every line is rewritten in place and cleared at the end."""

    def __init__(self, quiet: bool, console: Console = err) -> None:
        self.console = console
        self.enabled = not quiet and console.is_terminal
        self.started = time.monotonic()
        self._last = 0.0

    def stage(self, text: str) -> None:
        self._show(f"{text}…")

    def step(self, stage: str, done: int, total: int) -> None:
        now = time.monotonic()
        if done not in (0, total) and now - self._last < 0.2:
            return
        self._last = now
        self._show(f"{stage}: {done}/{total}")

    def reading(self, kind: str, done: int, total: int, objects: int) -> None:
        """A live read's callback (`kubezt.live.read.ReadProgress`): the kind being read, the
        kinds read before it, the kinds to read and the objects read so far."""
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._last < 0.2:
            return
        self._last = now
        self._show(f"reading the cluster: {kind} ({done + 1}/{total} kinds), {objects:,} objects")

    def _show(self, text: str) -> None:
        if not self.enabled:
            return
        elapsed = time.monotonic() - self.started
        self.console.file.write(f"\r\x1b[2Kkubezt: {text} ({elapsed:.1f} s)")
        self.console.file.flush()

    def done(self) -> None:
        if self.enabled:
            self.console.file.write("\r\x1b[2K")
            self.console.file.flush()


@contextmanager
def shown(quiet: bool, text: str) -> Iterator[None]:
    """Show one stage of work (`loading manifests…`, with the seconds spent) while it runs."""
    progress = Progress(quiet)
    progress.stage(text)
    try:
        yield
    finally:
        progress.done()
