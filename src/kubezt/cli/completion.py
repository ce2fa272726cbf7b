"""`kubezt completion SHELL`: the shell completion script for bash, zsh or fish."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer
from typer._completion_classes import completion_init
from typer._completion_shared import get_completion_script

PROG = "kubezt"
COMPLETE_VAR = "_KUBEZT_COMPLETE"


class Shell(StrEnum):
    BASH = "bash"
    ZSH = "zsh"
    FISH = "fish"


def enable() -> None:
    """Answer the shell's completion requests (the scripts call kubezt with COMPLETE_VAR set)."""
    completion_init()


def completion_command(
    shell: Annotated[Shell, typer.Argument(metavar="SHELL", help="bash, zsh or fish.")],
) -> None:
    """Print the completion script for SHELL; commands, options and their values complete.

    bash:  source <(kubezt completion bash)   (or save it under /etc/bash_completion.d/)

    zsh:   kubezt completion zsh > "${fpath[1]}/_kubezt"

    fish:  kubezt completion fish > ~/.config/fish/completions/kubezt.fish"""
    script = get_completion_script(prog_name=PROG, complete_var=COMPLETE_VAR, shell=shell.value)
    typer.echo(script)
