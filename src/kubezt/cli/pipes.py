"""A reader that closes the pipe early (`kubezt diff … | head`) ends the command quietly, with
the exit code the command had decided on: the verdict does not change because nobody read the
rest. Commands call `decided(code)` before they print; `closed_pipe_safe` wraps each command."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar, cast

import typer

from kubezt.cli.common import EXIT_OK, out

Command = TypeVar("Command", bound=Callable[..., None])
_decided = [EXIT_OK]


def decided(code: int) -> None:
    """The exit code the command will return, known before its output is written."""
    _decided[0] = code


def _broken_pipe() -> None:
    raise BrokenPipeError


# rich ends the process with exit code 1 on a broken pipe; hand it to `closed_pipe_safe` instead
setattr(out, "on_broken_pipe", _broken_pipe)  # noqa: B010


def closed_pipe_safe(command: Command) -> Command:
    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> None:
        _decided[0] = EXIT_OK
        try:
            command(*args, **kwargs)
            sys.stdout.flush()
        except BrokenPipeError:
            # Nothing more can be written; point stdout at /dev/null so the interpreter's final
            # flush does not fail again, then exit with the decided code.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            raise typer.Exit(_decided[0]) from None

    return cast(Command, run)
