"""Flow-log readers, table-driven: each `tests/cases/flows/*/<name>.<ext>` sample (written in
the upstream format with its field names: Goldmane/Whisker flows, Istio's default access-log
text format and JSON encoding, `hubble observe -o jsonpb`) reads into exactly the records,
skipped lines and located bad lines of `<name>.expected.yaml`; the same file gzip-compressed
reads the same."""

from __future__ import annotations

import dataclasses
import datetime as dt
import gzip
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubezt.dialects.flows import FlowStats, detect_format, read_flows
from kubezt.ir.flows import FlowFormat

CASES = Path(__file__).parent.parent / "cases" / "flows"
SAMPLES = sorted(p for p in CASES.glob("*/*") if not p.name.endswith(".expected.yaml"))


def _end(end: Any) -> dict[str, Any]:
    doc = {k: v for k, v in dataclasses.asdict(end).items() if v}
    if "labels" in doc:
        doc["labels"] = dict(doc["labels"])
    return doc


def summary(path: Path, flow_format: FlowFormat | None = None) -> dict[str, Any]:
    stats = FlowStats()
    records = []
    for r in read_flows([str(path)], stats, flow_format=flow_format):
        doc: dict[str, Any] = {"line": r.line, "src": _end(r.src), "dst": _end(r.dst)}
        for key in (
            "port",
            "protocol",
            "observed",
            "count",
            "service_namespace",
            "service_name",
            "service_port",
            "method",
            "path",
            "host",
            "reporter",
            "policies",
        ):
            value = getattr(r, key)
            if value or key == "port":
                doc[key] = (
                    value.value
                    if hasattr(value, "value")
                    else list(value)
                    if isinstance(value, tuple)
                    else value
                )
        if r.time is not None:
            doc["time"] = (
                dt.datetime.fromtimestamp(r.time, dt.UTC).isoformat().replace("+00:00", "Z")
            )
        records.append(doc)
    return {
        "format": stats.formats.get(str(path)),
        "lines": stats.lines,
        "skipped": stats.skipped,
        "records": records,
        "bad": [
            {"line": d.location.line, "message": d.message} for d in stats.diagnostics if d.location
        ],
    }


def expected(sample: Path) -> dict[str, Any]:
    name = sample.name.rsplit(".", 1)[0]
    data: dict[str, Any] = yaml.safe_load((sample.parent / f"{name}.expected.yaml").read_text())
    return data


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_reader(sample: Path) -> None:
    assert summary(sample) == expected(sample)


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_gzip_reads_the_same(sample: Path, tmp_path: Path) -> None:
    packed = tmp_path / (sample.name + ".gz")
    with open(sample, "rb") as src, gzip.open(packed, "wb") as dst:
        shutil.copyfileobj(src, dst)
    got = summary(packed)
    want = expected(sample)
    assert {k: v for k, v in got.items() if k not in ("format",)} == {
        k: v for k, v in want.items() if k != "format"
    }


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_format_detected_from_first_line(sample: Path) -> None:
    first = next(line for line in sample.read_text().splitlines() if line.strip())
    assert detect_format(first) == FlowFormat(expected(sample)["format"])


def test_truncated_gzip_is_a_located_error(tmp_path: Path) -> None:
    sample = CASES / "calico" / "goldmane.jsonl"
    packed = gzip.compress(sample.read_bytes())
    broken = tmp_path / "cut.jsonl.gz"
    broken.write_bytes(packed[: len(packed) // 2])
    stats = FlowStats()
    list(read_flows([str(broken)], stats))
    assert stats.bad == 1
    assert stats.diagnostics[0].code == "E141"


def test_missing_file_is_a_located_error(tmp_path: Path) -> None:
    stats = FlowStats()
    assert list(read_flows([str(tmp_path / "nope.log")], stats)) == []
    assert [d.code for d in stats.diagnostics] == ["E141"]
