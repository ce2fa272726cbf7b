"""`kubezt probe plan` and `kubezt probe compare`: test the predicted matrix on a real cluster."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.table import Table

from kubezt.cli.common import (
    EXIT_FINDING,
    EXIT_INPUT,
    EXIT_OK,
    LoadOptions,
    Output,
    PathsArg,
    emit,
    err,
    guarded,
    load_options,
    load_paths,
    out,
    usage_error,
)
from kubezt.cli.progress import shown
from kubezt.cli.tables import (
    Column,
    ListOutput,
    ListOutputOpt,
    NoHeadersOpt,
    plain,
    write_listing,
)
from kubezt.engine.reach import evaluate
from kubezt.generate.probe import EXPECTED, compare, plan_probes, probe_jobs
from kubezt.report.atomic import write_atomic

PREDICTION_SCHEMA = "kubezt.io/probe-prediction/v1"
LINE = re.compile(r"kubezt-probe (\S+) (connected|refused|timeout|other)\s*$")

probe_app = typer.Typer(
    help="Test the predicted connectivity on a real cluster with agnhost probe Jobs.",
    no_args_is_help=True,
)


@probe_app.command("plan")
@load_options(mesh=False)
def plan_command(
    paths: PathsArg = None,
    output_dir: Annotated[
        str,
        typer.Option(
            "-o",
            "--output",
            metavar="DIR",
            help="Directory for probes.yaml and prediction.json.",
        ),
    ] = ...,  # type: ignore[assignment]
    options: LoadOptions = LoadOptions(),
) -> None:
    """Write one probe Job per source workload (its labels, annotations and ServiceAccount,
    agnhost `connect` to each destination port through a Service) to DIR/probes.yaml, and the
    predicted outcome of every probe to DIR/prediction.json. Run them with
    `kubectl apply -f DIR/probes.yaml`, collect the logs with
    `kubectl logs -n NS job/NAME` for each Job (or `-l kubezt.io/probe=true` per namespace),
    then `kubezt probe compare LOGS DIR`. Exit codes: 0 written, 2 invalid input."""
    loaded = load_paths(paths, options)
    with shown(options.quiet, "evaluating every connection"):
        reach = guarded(lambda: evaluate(loaded.model))
    probes, unprobed = plan_probes(loaded.model, reach.connections())
    jobs = probe_jobs(loaded.model, probes, unprobed)
    directory = Path(output_dir)
    if directory.exists() and not directory.is_dir():
        usage_error(f"-o {output_dir}: not a directory")
    directory.mkdir(parents=True, exist_ok=True)
    prediction = {
        "schemaVersion": PREDICTION_SCHEMA,
        "probes": [{"id": p.id, "address": p.address, "expected": p.expected} for p in probes],
        "unprobed": ["{}>{}:{}/{}".format(*u) for u in unprobed],
    }
    try:
        write_atomic(
            directory / "probes.yaml",
            yaml.safe_dump_all(jobs, sort_keys=False, width=4096),
        )
        write_atomic(directory / "prediction.json", json.dumps(prediction, indent=2) + "\n")
    except OSError as exc:
        err.print(f"kubezt: cannot write {output_dir}: {exc.strerror or exc}", markup=False)
        raise typer.Exit(EXIT_INPUT) from None
    err.print(
        f"kubezt: wrote {len(jobs)} Jobs with {len(probes)} probes to {output_dir}"
        + (f" ({len(unprobed)} ports no Service exposes were not probed)" if unprobed else ""),
        markup=False,
    )


def _expected(prediction: str) -> dict[str, str]:
    path = Path(prediction)
    if path.is_dir():
        path = path / "prediction.json"
    try:
        text = path.read_text("utf-8")
    except OSError as exc:
        usage_error(f"{prediction}: {exc.strerror or exc}")
    if path.suffix == ".json":
        try:
            doc: Any = json.loads(text)
        except ValueError as exc:
            usage_error(f"{path}: not JSON: {exc}")
        if not isinstance(doc, dict) or doc.get("schemaVersion") != PREDICTION_SCHEMA:
            usage_error(f"{path}: expected a {PREDICTION_SCHEMA} document")
        return {p["id"]: p["expected"] for p in doc["probes"]}
    expected: dict[str, str] = {}
    try:
        jobs = [d for d in yaml.safe_load_all(text) if d]
    except yaml.YAMLError as exc:
        usage_error(f"{path}: {exc}")
    for job in jobs:
        notes = ((job.get("metadata") or {}).get("annotations") or {}).get(EXPECTED)
        if notes:
            expected.update({p["id"]: p["expected"] for p in json.loads(notes)})
    if not expected:
        usage_error(f"{path}: no probe Jobs with a {EXPECTED} annotation")
    return expected


@probe_app.command("compare")
def compare_command(
    results: Annotated[
        str, typer.Argument(help="The probe Jobs' logs (one file, concatenated), or -.")
    ],
    prediction: Annotated[
        str,
        typer.Argument(help="The plan directory, its prediction.json, or its probes.yaml."),
    ],
    output: ListOutputOpt = ListOutput.TABLE,
    no_headers: NoHeadersOpt = False,
) -> None:
    """List every probe where the cluster and the prediction disagree: `reached` (connected,
    or refused by the destination host) against `blocked` (timed out), `error` when the probe
    could not run, `missing` when the logs have no line for it. Log lines other than
    `kubezt-probe ID OUTCOME` are ignored. -o wide or --no-headers list one disagreement per
    row (the counts go to stderr; wide adds the source, destination and port). Exit codes: 0
    all agree, 1 any disagreement, 2 invalid input."""
    expected = _expected(prediction)
    try:
        text = sys.stdin.read() if results == "-" else Path(results).read_text("utf-8")
    except OSError as exc:
        usage_error(f"{results}: {exc.strerror or exc}")
    observed: dict[str, str] = {}
    for line in text.splitlines():
        match = LINE.search(line)
        if match:
            observed[match.group(1)] = match.group(2)
    disagreements, agreed = compare(expected, observed)
    if plain(output, no_headers):
        write_listing(
            DISAGREEMENT_COLUMNS,
            [[d.id, d.expected, d.observed, *_probe_ends(d.id)] for d in disagreements],
            wide=output is ListOutput.WIDE,
            no_headers=no_headers,
        )
        err.print(f"{agreed} probe(s) agree, {len(disagreements)} disagree", markup=False)
    elif output is ListOutput.TABLE:
        out.print(f"{agreed} probe(s) agree, {len(disagreements)} disagree", markup=False)
        if disagreements:
            grid = Table()
            for column in ("probe", "predicted", "observed"):
                grid.add_column(column)
            for d in disagreements:
                grid.add_row(d.id, d.expected, d.observed)
            out.print(grid)
    else:
        emit(
            {
                "schemaVersion": "kubezt.io/probe-comparison/v1",
                "agreed": agreed,
                "disagreements": [
                    {"probe": d.id, "predicted": d.expected, "observed": d.observed}
                    for d in disagreements
                ],
            },
            Output(output.value),
        )
    raise typer.Exit(EXIT_FINDING if disagreements else EXIT_OK)


DISAGREEMENT_COLUMNS = (
    Column("PROBE"),
    Column("PREDICTED"),
    Column("OBSERVED"),
    Column("SOURCE", wide=True),
    Column("DESTINATION", wide=True),
    Column("PORT", wide=True),
)


def _probe_ends(probe_id: str) -> list[str]:
    """Source, destination and port of a probe id `SRC>DST:PORT/PROTOCOL` (blank otherwise)."""
    src, sep, rest = probe_id.partition(">")
    dst, colon, port = rest.rpartition(":")
    return [src, dst, port] if sep and colon else ["", "", ""]
