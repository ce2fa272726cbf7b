"""`kubezt apply`: server-side apply of a compiled intent (or a directory of manifests) to a
live cluster, refusing when the result would not be what the intent grants."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.table import Table

from kubezt.cli.cluster import open_session
from kubezt.cli.common import (
    EXIT_FINDING,
    EXIT_INPUT,
    EXIT_OK,
    ContextOpt,
    KubeconfigOpt,
    LoadOptions,
    Output,
    OutputOpt,
    emit,
    err,
    guarded,
    out,
    usage_error,
)
from kubezt.cli.compile import ModeOpt
from kubezt.dialects._yaml import Document
from kubezt.ir.intent import Intent, Mode


class DryRun(StrEnum):
    SERVER = "server"
    NONE = "none"


def _source_objects(
    source: str, mode: ModeOpt, intent_path: str | None
) -> tuple[list[dict[str, Any]], Intent | None, str]:
    """The objects to apply (rollout order), the intent that guards them, and a label."""
    from kubezt.dialects.intent import load_intent
    from kubezt.generate import compile_intent

    path = Path(source)
    if path.is_dir():
        objects: list[dict[str, Any]] = []
        for file in sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml", ".json")):
            try:
                objects += [d for d in yaml.safe_load_all(file.read_text("utf-8")) if d]
            except (OSError, yaml.YAMLError) as exc:
                usage_error(f"{file}: {exc}")
        chosen = Mode(mode.value) if mode else None
        intent = guarded(lambda: load_intent(intent_path, chosen)) if intent_path else None
        return objects, intent, str(path)
    intent = guarded(lambda: load_intent(source, Mode(mode.value) if mode else None))
    compiled = guarded(lambda: compile_intent(intent, mode=Mode(mode.value) if mode else None))
    return list(compiled.objects()), compiled.intent, f"compiled:{source}"


def apply_command(
    source: Annotated[
        str,
        typer.Argument(
            help="An intent file (compiled here, in rollout order) or a directory of manifests "
            "(e.g. the output of `kubezt compile -o DIR`, applied in file-name order)."
        ),
    ],
    mode: ModeOpt = None,
    dry_run: Annotated[
        DryRun,
        typer.Option(
            "--dry-run",
            help="server: send every object with dryRun=All and show the server's verdict on "
            "each and the change in connectivity, storing nothing.",
        ),
    ] = DryRun.NONE,
    prune: Annotated[
        bool,
        typer.Option(
            "--prune",
            help="Delete policy objects labelled app.kubernetes.io/managed-by=kubezt that the "
            "set no longer contains.",
        ),
    ] = False,
    force: Annotated[
        str | None,
        typer.Option(
            "--force",
            metavar="REASON",
            help="Apply even though the result would differ from the intent (or no intent "
            "guards a directory); the reason is printed with the result.",
        ),
    ] = None,
    intent_path: Annotated[
        str | None,
        typer.Option(
            "--intent", metavar="INTENT", help="For a directory: the intent the result must match."
        ),
    ] = None,
    output: OutputOpt = Output.TABLE,
    context: ContextOpt = None,
    kubeconfig: KubeconfigOpt = None,
) -> None:
    """Apply with server-side apply (field manager `kubezt`; conflicts are reported, never
    forced) in rollout order, labelling what kubezt owns. Before writing, the live state plus
    the change is analysed: what becomes allowed and denied is shown, and the apply is refused
    when the result would deny a connection the intent grants or allow one it does not. If the
    server rejects an object halfway, what was written is put back as it was.

    kubezt apply examples/intent.yaml --context prod --dry-run=server

    Exit codes: 0 applied (or dry run passed), 1 refused (differs from the intent) or a
    conflict, 2 invalid input, an object rejected by the server, or a cluster error."""
    from kubezt.analysis.diff import diff as compare
    from kubezt.analysis.verify import verify
    from kubezt.cli.diff import diff_table
    from kubezt.engine.reach import evaluate
    from kubezt.live.apply import apply_objects, ref
    from kubezt.live.read import snapshot

    objects, intent, label = _source_objects(source, mode, intent_path)
    session = guarded(
        lambda: open_session(LoadOptions(cluster=True, context=context, kubeconfig=kubeconfig))
    )
    state = guarded(lambda: snapshot(session))
    change = [Document(o, f"{label} {ref(o)}", 0, None) for o in objects]
    before = guarded(lambda: state.load())
    after = guarded(lambda: state.load(change, (label,)))
    delta = guarded(lambda: compare(evaluate(before.model), evaluate(after.model)))
    verdict = guarded(lambda: verify(intent, after.model)) if intent else None
    differs = verdict is not None and not verdict.ok
    table = output is Output.TABLE
    if table:
        diff_table(err, delta)
    if differs or verdict is None:
        why = (
            f"the result would differ from the intent in {len(verdict.differences)} connection(s)"
            if verdict is not None
            else "no intent guards a directory (give --intent FILE)"
        )
        if verdict is not None:
            for difference in verdict.differences[:20]:
                err.print(f"  {difference}", markup=False)
        if not force:
            err.print(f"kubezt: refusing to apply: {why}; --force REASON overrides", markup=False)
            if not table:
                emit({"schemaVersion": "kubezt.io/apply/v1", "ok": False, "refused": why}, output)
            raise typer.Exit(EXIT_FINDING)
        err.print(f"kubezt: applying anyway ({why}): --force {force!r}", markup=False)
    report = guarded(
        lambda: apply_objects(session, objects, dry_run=dry_run is DryRun.SERVER, prune=prune)
    )
    if table:
        grid = Table(title="server-side dry run" if report.dry_run else "applied")
        grid.add_column("object")
        grid.add_column("result")
        grid.add_column("message", overflow="fold")
        for outcome in report.outcomes:
            grid.add_row(outcome.ref, outcome.action, outcome.message)
        out.print(grid)
        for restored in report.restored:
            out.print(f"rolled back: {restored.ref}: {restored.action}", markup=False)
    else:
        doc = report.document()
        doc["newlyAllowed"] = len(delta.opened)
        doc["newlyDenied"] = len(delta.closed)
        if force:
            doc["forced"] = force
        emit(doc, output)
    if report.failed:
        conflict = any(o.action == "conflict" for o in report.outcomes)
        raise typer.Exit(EXIT_FINDING if conflict else EXIT_INPUT)
    raise typer.Exit(EXIT_OK)
