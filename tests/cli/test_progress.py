"""Progress of long work: shown on stderr when it is a terminal (a pseudo-terminal here) for
every stage of the commands that load and evaluate, never on stdout, and not with --quiet."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from ttykit import run_on_a_terminal

ROOT = Path(__file__).resolve().parents[2]
SHOP = str(ROOT / "examples" / "shop")
ENV = dict(os.environ)


@pytest.mark.parametrize(
    ("args", "code", "stages"),
    [
        (["audit", SHOP, "-o", "json"], 1, ["loading manifests", "evaluating and auditing"]),
        (["reach", SHOP, "-o", "json"], 0, ["loading manifests", "evaluating every connection"]),
        (["blast-radius", "--all", SHOP, "-o", "json"], 0, ["evaluating every connection"]),
        (["diff", SHOP, SHOP, "-o", "json"], 0, ["comparing every connection"]),
    ],
)
def test_stages_are_shown_on_a_terminal_and_stdout_holds_the_document_only(
    args: list[str], code: int, stages: list[str]
) -> None:
    status, stdout, terminal = run_on_a_terminal(*args, env=ENV)
    assert status == code, terminal
    for stage in stages:
        assert f"kubezt: {stage}… (" in terminal
    assert terminal.rstrip().endswith("\x1b[2K")  # the line is cleared at the end
    json.loads(stdout)
    assert "\x1b" not in stdout and "kubezt: " not in stdout


def test_quiet_shows_no_progress() -> None:
    status, stdout, terminal = run_on_a_terminal("audit", SHOP, "-o", "json", "--quiet", env=ENV)
    assert status == 1
    assert "\x1b[2K" not in terminal and "loading manifests" not in terminal
    assert json.loads(stdout)["findings"]
