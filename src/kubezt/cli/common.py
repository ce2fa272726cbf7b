"""What every command shares: consoles, options, loading with overrides, input
errors → exit code 2, and emitting JSON/YAML documents.

Exit codes (every command):
  0  success; for `explain`: the connection is allowed
  1  a finding: for `explain`, the connection is denied
  2  invalid input or usage (every problem is listed, with file:line)
"""

from __future__ import annotations

import contextlib
import functools
import gc
import inspect
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar, cast

import typer
from rich.console import Console

from kubezt.api import load
from kubezt.dialects.registry import LoadResult
from kubezt.errors import Diagnostic, InputError, KubeztError, Severity
from kubezt.report.atomic import write_atomic
from kubezt.report.documents import to_json

EXIT_OK = 0
EXIT_FINDING = 1
EXIT_INPUT = 2
MAX_SHOWN = 50

err = Console(stderr=True, highlight=False, soft_wrap=True)
PIPE_WIDTH = 1 << 16
"""Width of tables written to a pipe or file: wide enough that no name is ever cut."""
out = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else PIPE_WIDTH)

T = TypeVar("T")
KEYWORD = inspect.Parameter.POSITIONAL_OR_KEYWORD


class Output(StrEnum):
    TABLE = "table"
    JSON = "json"
    YAML = "yaml"


class ProtocolOption(StrEnum):
    TCP = "TCP"
    UDP = "UDP"
    SCTP = "SCTP"


PathsArg = Annotated[
    list[str] | None,
    typer.Argument(
        metavar="PATH",
        help="Manifest files or directories (recursive: *.yaml, *.yml, *.json), or - for stdin. "
        "With --cluster/--context/--kubeconfig: objects applied over the live state.",
        show_default=False,
    ),
]
ClusterOpt = Annotated[
    bool,
    typer.Option(
        "--cluster",
        help="Read the live cluster of the current kubeconfig context (in a pod: its own "
        "cluster). Needs the `live` extra.",
    ),
]
ContextOpt = Annotated[
    str | None,
    typer.Option(
        "--context", metavar="CONTEXT", help="Read the live cluster of this kubeconfig context."
    ),
]
KubeconfigOpt = Annotated[
    str | None,
    typer.Option(
        "--kubeconfig",
        metavar="FILE",
        help="Kubeconfig file for --cluster/--context (else $KUBECONFIG).",
    ),
]
OutputOpt = Annotated[Output, typer.Option("-o", "--output", help="Output format.")]
VerboseOpt = Annotated[
    bool, typer.Option("--verbose", "-v", help="Also list skipped objects of unknown kinds.")
]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Do not show progress on stderr.")]


def fail_input(diagnostics: tuple[Diagnostic, ...]) -> NoReturn:
    for diag in diagnostics[:MAX_SHOWN]:
        err.print(diag.render(), markup=False)
    if len(diagnostics) > MAX_SHOWN:
        err.print(f"… and {len(diagnostics) - MAX_SHOWN} more", markup=False)
    errors = sum(1 for d in diagnostics if d.severity is Severity.ERROR)
    err.print(f"kubezt: {errors} error(s) in the input; nothing was evaluated", markup=False)
    raise typer.Exit(EXIT_INPUT)


IntentFileOpt = Annotated[
    str,
    typer.Option(
        "-o", "--output", metavar="FILE", help="Intent file to write (atomically), or - for stdout."
    ),
]
IntentNameOpt = Annotated[str, typer.Option(metavar="NAME", help="metadata.name of the intent.")]


def write_files(target: str, files: Mapping[Path, str]) -> None:
    """Write each file atomically; a failure is an input error naming `target` (exit 2)."""
    try:
        for path, text in files.items():
            write_atomic(path, text)
    except OSError as exc:
        err.print(f"kubezt: cannot write {target}: {exc.strerror or exc}", markup=False)
        raise typer.Exit(EXIT_INPUT) from None


def write_output(target: str, text: str) -> None:
    """`text` to stdout when `target` is `-`, else atomically to the file `target`."""
    if target == "-":
        typer.echo(text, nl=False)
        return
    write_files(target, {Path(target): text})


def usage_error(message: str) -> NoReturn:
    err.print(f"kubezt: {message}", markup=False)
    raise typer.Exit(EXIT_INPUT)


@contextlib.contextmanager
def frozen_heap() -> Iterator[None]:
    """Evaluate with the objects alive so far (the loaded model) out of the cyclic garbage
    collector's sight (`gc.freeze`): they live until the command ends, and every collection
    evaluating triggers would scan them again (13 % of evaluating 30,000 pods). Undone at
    the end, so a caller in the same process (the tests) keeps an ordinary heap."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def guarded(call: Callable[[], T]) -> T:
    """Run a library call; input problems become the documented exit code, never a traceback."""
    try:
        return call()
    except InputError as exc:
        fail_input(exc.diagnostics)
    except KubeztError as exc:
        usage_error(str(exc))


RootNamespaceOpt = Annotated[
    str | None,
    typer.Option(
        "--root-namespace",
        metavar="NAMESPACE",
        help="Istio root namespace (default: from the mesh ConfigMap, else istio-system).",
    ),
]
TrustDomainOpt = Annotated[
    str | None,
    typer.Option(
        "--trust-domain",
        metavar="DOMAIN",
        help="Istio trust domain (default: from the mesh ConfigMap, else cluster.local).",
    ),
]
AliasOpt = Annotated[
    list[str] | None,
    typer.Option("--trust-domain-alias", metavar="DOMAIN", help="Trust-domain alias; repeatable."),
]


@dataclass(frozen=True, slots=True)
class LoadOptions:
    """The options every command that reads manifests shares (see `load_options`)."""

    verbose: bool = False
    quiet: bool = False
    root_namespace: str | None = None
    trust_domain: str | None = None
    trust_domain_aliases: tuple[str, ...] = ()
    cluster: bool = False
    context: str | None = None
    kubeconfig: str | None = None

    @property
    def live(self) -> bool:
        """Whether to read a live cluster (--cluster, --context or --kubeconfig)."""
        return bool(self.cluster or self.context or self.kubeconfig)


_VERBOSE = (
    inspect.Parameter("verbose", KEYWORD, default=False, annotation=VerboseOpt),
    inspect.Parameter("quiet", KEYWORD, default=False, annotation=QuietOpt),
)
_MESH = (
    inspect.Parameter("root_namespace", KEYWORD, default=None, annotation=RootNamespaceOpt),
    inspect.Parameter("trust_domain", KEYWORD, default=None, annotation=TrustDomainOpt),
    inspect.Parameter("trust_domain_alias", KEYWORD, default=None, annotation=AliasOpt),
)

_LIVE = (
    inspect.Parameter("cluster", KEYWORD, default=False, annotation=ClusterOpt),
    inspect.Parameter("context", KEYWORD, default=None, annotation=ContextOpt),
    inspect.Parameter("kubeconfig", KEYWORD, default=None, annotation=KubeconfigOpt),
)

Command = TypeVar("Command", bound=Callable[..., None])


def load_options(*, mesh: bool = True) -> Callable[[Command], Command]:
    """Give a command the shared options in place of its `options: LoadOptions` parameter:
    `--verbose`, `--quiet`, the live options, and with `mesh` also `--root-namespace`,
    `--trust-domain` and `--trust-domain-alias`. The command receives them as one `LoadOptions`."""
    added = _VERBOSE + _LIVE + (_MESH if mesh else ())

    def decorate(command: Command) -> Command:
        signature = inspect.signature(command, eval_str=True)
        params: list[inspect.Parameter] = []
        for param in signature.parameters.values():
            params.extend(added if param.name == "options" else (param,))

        @functools.wraps(command)
        def run(**kwargs: Any) -> None:
            values = {p.name: kwargs.pop(p.name) for p in added}
            options = LoadOptions(
                verbose=values["verbose"],
                quiet=values["quiet"],
                root_namespace=values.get("root_namespace"),
                trust_domain=values.get("trust_domain"),
                trust_domain_aliases=tuple(values.get("trust_domain_alias") or ()),
                cluster=values["cluster"],
                context=values["context"],
                kubeconfig=values["kubeconfig"],
            )
            command(**kwargs, options=options)

        run.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
        run.__annotations__ = {p.name: p.annotation for p in params} | {"return": None}
        return cast(Command, run)

    return decorate


_SAID: set[str] = set()


def load_paths(paths: list[str] | None, options: LoadOptions) -> LoadResult:
    """Load manifests (or, with the live options, the cluster with the manifests applied over
    it) with the options' mesh overrides; print warnings (and with --verbose the skipped
    objects) to stderr. Reading a cluster shows its progress on stderr when it is a terminal
    (not with --quiet)."""
    if options.live:
        from kubezt.api import settled
        from kubezt.cli.cluster import load_live
        from kubezt.cli.progress import Progress

        progress = Progress(options.quiet)
        try:
            result = guarded(
                lambda: settled(
                    load_live(options, paths or [], progress.reading),
                    root_namespace=options.root_namespace,
                    trust_domain=options.trust_domain,
                    trust_domain_aliases=options.trust_domain_aliases,
                )
            )
        finally:
            progress.done()
    elif not paths:
        usage_error("no input: give manifest files or directories, or --cluster/--context")
    else:
        from kubezt.cli.progress import shown

        files = paths
        with shown(options.quiet, "loading manifests"):
            result = guarded(
                lambda: load(
                    files,
                    root_namespace=options.root_namespace,
                    trust_domain=options.trust_domain,
                    trust_domain_aliases=options.trust_domain_aliases,
                )
            )
    for diag in result.warnings:
        text = diag.render()
        if text not in _SAID:  # diff loads twice: a warning both sides share is said once
            _SAID.add(text)
            err.print(text, markup=False)
    if options.verbose:
        for skipped in result.skipped:
            err.print(f"skipped (kind not read by kubezt): {skipped}", markup=False)
    return result


def emit(doc: object, output: Output) -> None:
    """Write a document to stdout as JSON or YAML."""
    if output is Output.JSON:
        sys.stdout.write(to_json(doc))
    else:
        import yaml

        sys.stdout.write(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))
