#!/usr/bin/env python3
"""Generate the standard benchmark clusters and measure kubezt on them.

    python benchmarks/run.py            # small, large, large-calico-istio
    python benchmarks/run.py --quick    # one tiny cluster, a smoke test of the harness

Every measurement runs in a fresh subprocess; wall time is taken around the child and peak
RSS comes from os.wait4() on that single child. Results are printed as a Markdown table and
written to benchmarks/out/results.json. The exit status is 1 when any row failed (a missed
target or a crashed child); rows whose API is not importable yet are "n/a" and do not fail.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
GENERATOR = HERE / "generate.py"
GIB = 1024.0

# Thresholds from the project's performance goals.
SMALL_E2E_S = 2.0
LARGE_S = 30.0
LARGE_MIB = 4 * GIB


@dataclass(frozen=True)
class Target:
    seconds: float | None = None
    mib: float | None = None

    def describe(self) -> str:
        parts = []
        if self.seconds is not None:
            parts.append(f"< {self.seconds:g} s")
        if self.mib is not None:
            parts.append(f"< {self.mib / GIB:g} GiB" if self.mib >= GIB else f"< {self.mib} MiB")
        return ", ".join(parts) or "-"

    def met(self, seconds: float, mib: float | None) -> bool:
        if self.seconds is not None and seconds >= self.seconds:
            return False
        return not (self.mib is not None and (mib is None or mib >= self.mib))


@dataclass(frozen=True)
class Size:
    name: str
    pods: int
    policies: int
    calico_share: float = 0.0
    istio: bool = False
    e2e: Target | None = None
    engine: Target | None = None

    def generator_args(self) -> list[str]:
        args = ["--pods", str(self.pods), "--policies", str(self.policies)]
        if self.calico_share:
            args += ["--calico-share", str(self.calico_share)]
        if self.istio:
            args.append("--istio")
        return args


LARGE = Target(LARGE_S, LARGE_MIB)
SIZES = {
    "tiny": Size("tiny", 200, 80, calico_share=0.3, istio=True),
    "small": Size("small", 1_000, 500, e2e=Target(SMALL_E2E_S)),
    "large": Size("large", 10_000, 2_000, e2e=LARGE, engine=LARGE),
    "large-calico-istio": Size(
        "large-calico-istio", 10_000, 2_000, calico_share=0.3, istio=True, e2e=LARGE, engine=LARGE
    ),
}
STANDARD = ["small", "large", "large-calico-istio"]
QUICK = ["tiny"]

YAML_SNIPPET = r"""
import sys, time
from pathlib import Path
import yaml
loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
t = time.perf_counter()
n = 0
for path in sorted(Path(sys.argv[1]).glob("*.yaml")):
    with path.open(encoding="utf-8") as fh:
        n += sum(1 for _ in yaml.load_all(fh, Loader=loader))
print('{"documents": %d, "loader": "%s", "parse_s": %.6f}'
      % (n, loader.__name__, time.perf_counter() - t))
"""

ENGINE_SNIPPET = r"""
import json, sys, time
t0 = time.perf_counter()
try:
    import kubezt
    load, evaluate = kubezt.load, kubezt.evaluate
except (ImportError, AttributeError) as exc:
    print(json.dumps({"unavailable": f"{type(exc).__name__}: {exc}"}))
    raise SystemExit(0)
t_import = time.perf_counter()
r = load([sys.argv[1]])
t1 = time.perf_counter()
m = evaluate(r.model)
t2 = time.perf_counter()


def count(root, *paths):
    for path in paths:
        value = root
        for name in path.split("."):
            value = getattr(value, name, None)
        if value is None:
            continue
        if callable(value):
            try:
                value = value()
            except Exception:
                continue
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        try:
            return len(value)
        except TypeError:
            continue
    return None


print(json.dumps({
    "import_s": t_import - t0,
    "load_s": t1 - t_import,
    "evaluate_s": t2 - t1,
    "classes": count(m, "classes", "class_count"),
    "pods": count(r, "model.topology.workloads", "model.pods", "model.endpoints"),
}))
"""


@dataclass
class ChildRun:
    returncode: int
    seconds: float
    peak_mib: float | None
    stdout: str
    stderr: str
    timed_out: bool = False


@dataclass
class Row:
    size: str
    pods: int
    policies: int
    phase: str
    seconds: float | None = None
    peak_mib: float | None = None
    target: str = "-"
    result: str = "ok"  # pass | FAIL | n/a | ok (no target) | skipped
    notes: str = ""
    command: list[str] = field(default_factory=list)
    stderr_tail: str = ""
    details: dict[str, Any] = field(default_factory=dict)


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    src = str(ROOT / "src")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def maxrss_mib(ru_maxrss: int) -> float:
    # Linux reports KiB, macOS bytes.
    return ru_maxrss / (1024 * 1024) if sys.platform == "darwin" else ru_maxrss / 1024


def run_child(cmd: list[str], timeout: float, capture_stdout: bool) -> ChildRun:
    """Run one child, wait for it with wait4() and return wall time and its own peak RSS."""
    with (
        tempfile.TemporaryFile() as out,
        tempfile.TemporaryFile() as err,
        open(os.devnull, "wb") as null,
    ):
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env=child_env(),
            stdin=subprocess.DEVNULL,
            stdout=out if capture_stdout else null,
            stderr=err,
        )
        done = threading.Event()
        timed_out = threading.Event()

        def kill() -> None:
            if not done.is_set():
                timed_out.set()
                proc.kill()

        timer = threading.Timer(timeout, kill)
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            done.set()
            timer.cancel()
        seconds = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)  # already reaped; keep Popen quiet
        out.seek(0)
        err.seek(0)
        return ChildRun(
            returncode=proc.returncode,
            seconds=seconds,
            peak_mib=maxrss_mib(usage.ru_maxrss),
            stdout=out.read().decode("utf-8", "replace"),
            stderr=err.read().decode("utf-8", "replace"),
            timed_out=timed_out.is_set(),
        )


def tail(text: str, lines: int = 20) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def last_json(text: str) -> dict[str, Any] | None:
    for line in reversed(text.strip().splitlines()):
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    return None


def failure_note(run: ChildRun, timeout: float) -> str:
    if run.timed_out:
        return f"killed after {timeout:g} s timeout"
    last = run.stderr.strip().splitlines()[-1:] or [""]
    return f"exit {run.returncode}: {last[0][:120]}"


def generator_hash() -> str:
    digest = hashlib.sha256()
    for path in [GENERATOR, *sorted((HERE / "clustergen").glob("*.py"))]:
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def generate(size: Size, out: Path, seed: int, lean: bool, reuse: bool, timeout: float) -> Row:
    directory = out / size.name
    summary_path = out / f"{size.name}.summary.json"
    meta_path = out / f"{size.name}.meta.json"
    args = [*size.generator_args(), "--seed", str(seed)] + (["--lean"] if lean else [])
    meta = {"args": args, "generator_sha256": generator_hash()}
    row = Row(size.name, size.pods, size.policies, "generate")
    if reuse and meta_path.exists() and directory.is_dir() and summary_path.exists():
        try:
            if json.loads(meta_path.read_text()) == meta:
                row.result, row.notes = "skipped", "reused existing output (--reuse)"
                row.details = json.loads(summary_path.read_text())
                return row
        except ValueError:
            pass
    cmd = [sys.executable, str(GENERATOR), *args, "--out", str(directory)]
    cmd += ["--summary", str(summary_path)]
    row.command = cmd
    run = run_child(cmd, timeout, capture_stdout=False)
    row.seconds, row.peak_mib = run.seconds, run.peak_mib
    if run.returncode != 0:
        row.result, row.notes, row.stderr_tail = (
            "FAIL",
            failure_note(run, timeout),
            tail(run.stderr),
        )
        return row
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    summary = json.loads(summary_path.read_text())
    row.details = summary
    row.notes = (
        f"{summary['files']} files, {summary['bytes'] / 1e6:.1f} MB, "
        f"{summary['k8s_network_policies']} k8s + {summary['calico_network_policies']} calico NPs"
    )
    return row


def measure_yaml(size: Size, directory: Path, timeout: float) -> Row:
    cmd = [sys.executable, "-c", YAML_SNIPPET, str(directory)]
    row = Row(size.name, size.pods, size.policies, "yaml parse only (baseline)", command=cmd)
    run = run_child(cmd, timeout, capture_stdout=True)
    row.seconds, row.peak_mib = run.seconds, run.peak_mib
    info = last_json(run.stdout)
    if run.returncode != 0 or info is None:
        row.result, row.notes, row.stderr_tail = (
            "FAIL",
            failure_note(run, timeout),
            tail(run.stderr),
        )
        return row
    row.details = info
    row.notes = f"{info['documents']} docs, {info['loader']}, parse {info['parse_s']:.2f} s"
    return row


def measure_e2e(size: Size, directory: Path, timeout: float) -> Row:
    cmd = [sys.executable, "-m", "kubezt", "reach", str(directory), "-o", "json"]
    target = size.e2e
    row = Row(size.name, size.pods, size.policies, "e2e: kubezt reach -o json", command=cmd)
    row.target = target.describe() if target else "-"
    run = run_child(cmd, timeout, capture_stdout=False)
    row.seconds, row.peak_mib = run.seconds, run.peak_mib
    if run.returncode != 0:
        row.result, row.notes, row.stderr_tail = (
            "FAIL",
            failure_note(run, timeout),
            tail(run.stderr),
        )
        return row
    row.result, row.notes = verdict(target, run.seconds, run.peak_mib)
    return row


def measure_engine(size: Size, directory: Path, timeout: float) -> Row:
    cmd = [sys.executable, "-c", ENGINE_SNIPPET, str(directory)]
    target = size.engine
    row = Row(size.name, size.pods, size.policies, "engine: load + evaluate", command=cmd)
    row.target = target.describe() if target else "-"
    run = run_child(cmd, timeout, capture_stdout=True)
    row.peak_mib = run.peak_mib
    info = last_json(run.stdout)
    if run.returncode != 0 or info is None:
        row.seconds = run.seconds
        row.result, row.notes, row.stderr_tail = (
            "FAIL",
            failure_note(run, timeout),
            tail(run.stderr),
        )
        return row
    row.details = info
    if "unavailable" in info:
        row.result, row.notes, row.peak_mib = "n/a", f"not available: {info['unavailable']}", None
        return row
    row.seconds = info["load_s"] + info["evaluate_s"]
    row.result, missed = verdict(target, row.seconds, row.peak_mib)
    notes = [
        f"import {info['import_s']:.2f} s",
        f"load {info['load_s']:.2f} s",
        f"evaluate {info['evaluate_s']:.2f} s",
    ]
    if info.get("classes") is not None:
        notes.append(f"{info['classes']} classes")
    if info.get("pods") is not None:
        notes.append(f"{info['pods']} workloads")
    row.notes = ", ".join(([missed] if missed else []) + notes)
    return row


def verdict(target: Target | None, seconds: float, mib: float | None) -> tuple[str, str]:
    if target is None:
        return "ok", ""
    if target.met(seconds, mib):
        return "pass", ""
    return "FAIL", "target missed"


def repeated(measure: Any, size: Size, directory: Path, timeout: float, times: int) -> Row:
    """Run a measurement `times` times and report the median run (a crash stops early)."""
    runs: list[Row] = []
    for _ in range(max(1, times)):
        row = measure(size, directory, timeout)
        runs.append(row)
        if row.result == "n/a" or row.stderr_tail:
            return row  # crashed or unavailable: repeating will not help
    failed = [r for r in runs if r.result == "FAIL"]
    timed = sorted((r for r in runs if r.seconds is not None), key=lambda r: r.seconds or 0.0)
    chosen = failed[0] if len(failed) > len(runs) // 2 else timed[len(timed) // 2]
    if len(runs) > 1:
        chosen.details["runs_s"] = [round(r.seconds or 0.0, 4) for r in runs]
        chosen.details["runs_peak_mib"] = [r.peak_mib for r in runs]
        chosen.notes = "; ".join(x for x in (f"median of {len(runs)}", chosen.notes) if x)
    return chosen


def markdown(rows: list[Row]) -> str:
    head = ["size", "pods", "policies", "phase", "seconds", "peak MiB", "target", "result", "notes"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for r in rows:
        cells = [
            r.size,
            f"{r.pods:,}",
            f"{r.policies:,}",
            r.phase,
            "-" if r.seconds is None else f"{r.seconds:.2f}",
            "-" if r.peak_mib is None else f"{r.peak_mib:,.0f}",
            r.target,
            r.result,
            r.notes.replace("|", "/"),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="only a tiny cluster (smoke test)")
    ap.add_argument(
        "--size",
        action="append",
        choices=sorted(SIZES),
        help="run only these sizes (repeatable); default: small, large, large-calico-istio",
    )
    ap.add_argument("--out", type=Path, default=HERE / "out", help="output directory")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=900.0, help="per-subprocess limit (s)")
    ap.add_argument("--reuse", action="store_true", help="keep clusters generated earlier")
    ap.add_argument("--repeat", type=int, default=1, help="runs per measurement; median is kept")
    ap.add_argument("--lean", action="store_true", help="generate without bulky pod fields")
    args = ap.parse_args(argv)

    names = args.size or (QUICK if args.quick else STANDARD)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    rows: list[Row] = []
    for name in names:
        size = SIZES[name]
        print(f"[{name}] generating {size.pods} pods / {size.policies} policies", file=sys.stderr)
        gen = generate(size, out, args.seed, args.lean, args.reuse, args.timeout)
        rows.append(gen)
        directory = out / name
        if gen.result == "FAIL":
            print(f"[{name}] generation failed:\n{gen.stderr_tail}", file=sys.stderr)
            continue
        for measure in (measure_yaml, measure_e2e, measure_engine):
            row = repeated(measure, size, directory, args.timeout, args.repeat)
            rows.append(row)
            took = "-" if row.seconds is None else f"{row.seconds:.2f} s"
            print(f"[{name}] {row.phase}: {took} {row.result} {row.notes}", file=sys.stderr)

    table = markdown(rows)
    print(table)
    failed = [r for r in rows if r.result == "FAIL"]
    for r in failed:
        if r.stderr_tail:
            print(f"\n### {r.size} / {r.phase}: stderr (last lines)\n```\n{r.stderr_tail}\n```")
    results = {
        "generated_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "quick": args.quick,
        "seed": args.seed,
        "lean": args.lean,
        "targets": {
            "small_e2e_s": SMALL_E2E_S,
            "large_s": LARGE_S,
            "large_peak_mib": LARGE_MIB,
        },
        "rows": [asdict(r) for r in rows],
        "failed": len(failed),
    }
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"\nresults written to {out / 'results.json'}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
