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

from kubezt.cli import common
from kubezt.cli.common import LoadOptions, Output, PathsArg, usage_error
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
from kubezt.generate.probe import (
    EXPECTED,
    OUTCOMES,
    PARALLELISM,
    JobStatusError,
    compare,
    jobs_in,
    observed_from_jobs,
    plan_probes,
    probe_jobs,
)

PREDICTION_SCHEMA = "kubezt.io/probe-prediction/v1"
LINE = re.compile(rf"kubezt-probe (\S+) ({'|'.join(OUTCOMES)})\s*$")

probe_app = typer.Typer(
    help="Test the predicted connectivity on a real cluster with agnhost probe Jobs.",
    no_args_is_help=True,
)


@probe_app.command("plan")
@common.load_options(mesh=False)
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
    parallelism: Annotated[
        int,
        typer.Option(min=1, metavar="N", help="Probe pods each Job runs at once."),
    ] = PARALLELISM,
    options: LoadOptions = LoadOptions(),
) -> None:
    """Write one Indexed probe Job per source workload (its labels, annotations and
    ServiceAccount; one completion index per destination port, reached through a Service) to
    DIR/probes.yaml, and the predicted outcome of every probe to DIR/prediction.json. A source
    with an Istio sidecar probes through its own sidecar (an HTTP request, so mTLS and
    AuthorizationPolicy apply) and its Job ends with the probe. Run them with
    `kubectl apply -f DIR/probes.yaml`; when they have finished, collect
    `kubectl get jobs -A -l kubezt.io/probe=true -o json` (or the pods' logs,
    `kubectl logs -n NS -l kubezt.io/probe=true --tail=-1`), then
    `kubezt probe compare RESULTS DIR`. Exit codes: 0 written, 2 invalid input."""
    loaded = common.load_paths(paths, options)
    with shown(options.quiet, "evaluating every connection"):
        reach = common.guarded(lambda: evaluate(loaded.model))
    probes, unprobed = plan_probes(loaded.model, reach.detailed())
    jobs = probe_jobs(loaded.model, probes, unprobed, parallelism)
    directory = Path(output_dir)
    if directory.exists() and not directory.is_dir():
        usage_error(f"-o {output_dir}: not a directory")
    directory.mkdir(parents=True, exist_ok=True)
    prediction = {
        "schemaVersion": PREDICTION_SCHEMA,
        "probes": [
            {"id": p.id, "address": p.address, "method": p.method, "expected": p.expected}
            for p in probes
        ],
        "unprobed": [{"id": u.id, "reason": u.reason} for u in unprobed],
    }
    common.write_files(
        output_dir,
        {
            directory / "probes.yaml": yaml.safe_dump_all(jobs, sort_keys=False, width=4096),
            directory / "prediction.json": json.dumps(prediction, indent=2) + "\n",
        },
    )
    common.err.print(
        f"kubezt: wrote {len(jobs)} Jobs with {len(probes)} probes to {output_dir}"
        + (f" ({len(unprobed)} not probed: see prediction.json)" if unprobed else ""),
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


def _observed(results: str) -> dict[str, str]:
    """Probe outcomes from the Jobs (`kubectl get jobs -o json|yaml`) or the pods' logs."""
    try:
        text = sys.stdin.read() if results == "-" else Path(results).read_text("utf-8")
    except OSError as exc:
        usage_error(f"{results}: {exc.strerror or exc}")
    head = text.lstrip()[:200]
    if head.startswith("{") or re.match(r"(apiVersion|kind|items|metadata):", head):
        try:
            documents = (
                [json.loads(text)] if head.startswith("{") else list(yaml.safe_load_all(text))
            )
        except (ValueError, yaml.YAMLError) as exc:
            usage_error(f"{results}: not a JSON or YAML document: {exc}")
        jobs: list[Any] = []
        for document in documents:
            found = jobs_in(document)
            if found is None:
                usage_error(
                    f"{results}: expected Jobs (kubectl get jobs -o json|yaml), got "
                    f"{document.get('kind') if isinstance(document, dict) else document!r}"
                )
            jobs += found
        try:
            return observed_from_jobs(jobs)
        except JobStatusError as exc:
            usage_error(f"{results}: {exc}")
    observed: dict[str, str] = {}
    for line in text.splitlines():
        match = LINE.search(line)
        if match:
            observed[match.group(1)] = match.group(2)
    return observed


@probe_app.command("compare")
def compare_command(
    results: Annotated[
        str,
        typer.Argument(
            help="The probe Jobs (`kubectl get jobs -o json` or `-o yaml`), or their pods' "
            "logs (one file, concatenated), or -."
        ),
    ],
    prediction: Annotated[
        str,
        typer.Argument(help="The plan directory, its prediction.json, or its probes.yaml."),
    ],
    output: ListOutputOpt = ListOutput.TABLE,
    no_headers: NoHeadersOpt = False,
) -> None:
    """List every probe where the cluster and the prediction disagree: `reached` against
    `blocked`, `error` when the probe could not run, `missing` when the results have none for
    it (its Job has not finished that index, or the logs have no line for it).

    From Jobs, a completed index is `reached` and a failed one `blocked`. From logs,
    `connected`, `refused` (the destination host answered) and `responded` are `reached`;
    `timeout`, `denied` (403 from AuthorizationPolicy) and `reset` (a proxy refused) are
    `blocked`; lines other than `kubezt-probe ID OUTCOME` are ignored. -o wide or --no-headers
    list one disagreement per row (the counts go to stderr; wide adds the source, destination
    and port). Exit codes: 0 all agree, 1 any disagreement, 2 invalid input."""
    expected = _expected(prediction)
    observed = _observed(results)
    disagreements, agreed = compare(expected, observed)
    if plain(output, no_headers):
        write_listing(
            DISAGREEMENT_COLUMNS,
            [[d.id, d.expected, d.observed, *_probe_ends(d.id)] for d in disagreements],
            wide=output is ListOutput.WIDE,
            no_headers=no_headers,
        )
        common.err.print(f"{agreed} probe(s) agree, {len(disagreements)} disagree", markup=False)
    elif output is ListOutput.TABLE:
        common.out.print(f"{agreed} probe(s) agree, {len(disagreements)} disagree", markup=False)
        if disagreements:
            grid = Table()
            for column in ("probe", "predicted", "observed"):
                grid.add_column(column)
            for d in disagreements:
                grid.add_row(d.id, d.expected, d.observed)
            common.out.print(grid)
    else:
        common.emit(
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
    raise typer.Exit(common.EXIT_FINDING if disagreements else common.EXIT_OK)


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
