"""Running kubezt with stderr on a pseudo-terminal, as a person at a terminal would see it."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys


def run_on_a_terminal(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    """Run kubezt with stderr on a pseudo-terminal and stdout on a pipe."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "kubezt", *args],
        stdout=subprocess.PIPE,
        stderr=slave,
        env=env | {"TERM": "xterm"},
    )
    os.close(slave)
    stdout = b""
    terminal = b""
    assert proc.stdout is not None
    streams = {proc.stdout.fileno(): "out", master: "tty"}
    while streams:
        ready, _, _ = select.select(list(streams), [], [], 120)
        assert ready, "kubezt did not finish in 120 s"
        for fd in ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # the terminal's other end closed
                chunk = b""
            if not chunk:
                del streams[fd]
            elif streams[fd] == "out":
                stdout += chunk
            else:
                terminal += chunk
    os.close(master)
    return proc.wait(timeout=30), stdout.decode(), terminal.decode(errors="replace")
