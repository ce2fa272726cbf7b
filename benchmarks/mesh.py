#!/usr/bin/env python3
"""Mesh authorization at scale, and kubezt side by side with IBM NCA.

    python benchmarks/mesh.py                 # growth + NCA at 200 and 500 pods
    python benchmarks/mesh.py --nca-pods 200 500 1000
    python benchmarks/mesh.py --no-nca        # growth only

Growth: Istio-only clusters (one ServiceAccount per app, no NetworkPolicies, authorization only
in AuthorizationPolicies), sidecar and ambient with a waypoint per namespace, from 200 to
10,000 pods; each row is `kubezt.load` + `kubezt.evaluate` in a fresh process, with the CPU
seconds of loading (the YAML parsing of its worker processes included) and of evaluation apart.
Targets: at most linear growth in pods × policies, 10,000 pods / 2,000 AuthorizationPolicies
under 10 s (judged on CPU seconds, for the evaluation and for the whole process).

NCA: `network-config-analyzer` is installed with pip into its own virtualenv
(`benchmarks/out/nca-venv`, made on first use). For each input (Kubernetes policies, Kubernetes +
Calico, Istio sidecar-only) and size, `kubezt reach DIR -o json --by class` and `nca --connectivity
--resource_list DIR` run alternately in fresh processes on the same files; the median of
`--repeat` runs is kept. Target: kubezt at least 10 times faster on 500 pods / 250
AuthorizationPolicies.

Wall time and CPU time (user + system of the child, from wait4) are both reported: on a shared
machine CPU time is the steadier figure. Results go to `benchmarks/out/mesh-results.json`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = HERE / "out"
GENERATOR = HERE / "generate.py"
NCA_VENV = OUT / "nca-venv"

GROWTH = [(200, 100), (500, 250), (1_000, 500), (2_000, 800), (5_000, 1_500), (10_000, 2_000)]
BIG_S = 10.0
NCA_RATIO = 10.0

ENGINE = r"""
import json, resource, sys, time
t0, c0 = time.perf_counter(), time.process_time()
import kubezt
r = kubezt.load([sys.argv[1]])
t1, c1 = time.perf_counter(), time.process_time()
m = kubezt.evaluate(r.model)
t2, c2 = time.perf_counter(), time.process_time()
workers = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({
    "load_s": t1 - t0, "evaluate_s": t2 - t1, "classes": len(m.classes),
    "load_cpu_s": c1 - c0 + workers.ru_utime + workers.ru_stime, "evaluate_cpu_s": c2 - c1,
}))
"""


@dataclass
class Run:
    wall: float
    cpu: float
    peak_mib: float
    returncode: int
    stdout: str
    stderr: str


def env() -> dict[str, str]:
    e = dict(os.environ)
    e["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT / "src"), e.get("PYTHONPATH")) if p)
    return e


def run_measured(cmd: list[str], timeout: float, keep_stdout: bool = False) -> Run:
    """Run one child; CPU and peak RSS are that child's own (os.wait4)."""
    import tempfile
    import threading

    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env=env(),
            stdin=subprocess.DEVNULL,
            stdout=out if keep_stdout else subprocess.DEVNULL,
            stderr=err,
        )
        timer = threading.Timer(timeout, proc.kill)
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return Run(
            wall,
            usage.ru_utime + usage.ru_stime,
            usage.ru_maxrss / 1024,
            proc.returncode,
            out.read().decode("utf-8", "replace"),
            err.read().decode("utf-8", "replace"),
        )


def generator_digest() -> str:
    """The generator's sources: output made by another version is generated again."""
    import hashlib

    h = hashlib.sha256()
    for path in sorted([GENERATOR, *(HERE / "clustergen").glob("*.py")]):
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:16]


def generate(name: str, args: list[str]) -> Path:
    out = OUT / "mesh" / name
    stamp = out / ".args"
    want = " ".join(args) + " # generator " + generator_digest()
    if stamp.exists() and stamp.read_text() == want:
        return out
    if out.exists():
        shutil.rmtree(out)
    subprocess.run([sys.executable, str(GENERATOR), *args, "--out", str(out)], check=True, cwd=ROOT)
    stamp.write_text(want)
    return out


def ensure_nca() -> Path:
    nca = NCA_VENV / "bin" / "nca"
    if not nca.exists():
        subprocess.run([sys.executable, "-m", "venv", str(NCA_VENV)], check=True)
        subprocess.run(
            [str(NCA_VENV / "bin" / "pip"), "install", "-q", "network-config-analyzer"],
            check=True,
        )
    return nca


def median_runs(
    cmd: list[str], repeat: int, timeout: float, keep_stdout: bool = False
) -> tuple[float, float, float, Run]:
    runs = [run_measured(cmd, timeout, keep_stdout) for _ in range(repeat)]
    last = runs[-1]
    return (
        statistics.median(r.wall for r in runs),
        statistics.median(r.cpu for r in runs),
        max(r.peak_mib for r in runs),
        last,
    )


def growth(args: argparse.Namespace, results: dict) -> None:
    print("\n## Istio-only growth (load + evaluate, fresh process)\n")
    print(
        "| mode | pods | AuthorizationPolicies | classes | wall s | CPU s | load CPU s | "
        "evaluate CPU s | peak MiB |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    rows = []
    for mode in args.modes:
        for pods, aps in GROWTH:
            if pods > args.max_pods or (args.pods and pods not in args.pods):
                continue
            gen = ["--pods", str(pods), "--policies", "0", "--istio-only", mode]
            gen += ["--authz", str(aps), "--seed", str(args.seed)]
            suffix = ""
            if args.format != "docs":
                gen += ["--format", args.format]
                suffix = f"-{args.format}"
            d = generate(f"istio-{mode}-{pods}{suffix}", gen)
            wall, cpu, mib, last = median_runs(
                [sys.executable, "-c", ENGINE, str(d)], args.repeat, args.timeout, True
            )
            detail = (
                json.loads(last.stdout.strip().splitlines()[-1]) if last.returncode == 0 else {}
            )
            row = {
                "mode": mode,
                "format": args.format,
                "pods": pods,
                "authorization_policies": aps,
                "wall_s": round(wall, 3),
                "cpu_s": round(cpu, 3),
                "peak_mib": round(mib, 1),
                **detail,
                "ok": last.returncode == 0,
            }
            rows.append(row)
            results["growth"] = rows
            save(args, results)
            print(
                f"| {mode} | {pods:,} | {aps:,} | {detail.get('classes', '?')} | {wall:.2f} | "
                f"{cpu:.2f} | {detail.get('load_cpu_s', float('nan')):.2f} | "
                f"{detail.get('evaluate_cpu_s', float('nan')):.2f} | {mib:.0f} |",
                flush=True,
            )
    results["growth"] = rows
    for mode in args.modes:
        pts = [r for r in rows if r["mode"] == mode and r["ok"]]
        if len(pts) >= 2:
            import math

            a, b = pts[0], pts[-1]
            work = (b["pods"] * b["authorization_policies"]) / (
                a["pods"] * a["authorization_policies"]
            )
            exp = math.log(b["cpu_s"] / a["cpu_s"]) / math.log(b["pods"] / a["pods"])
            growth_cpu = b["cpu_s"] / a["cpu_s"]
            print(
                f"\n{mode}: CPU ×{growth_cpu:.1f} for pods ×{b['pods'] / a['pods']:.0f}"
                f" (pods × policies ×{work:.0f}); exponent in pods {exp:.2f}"
            )
            if b["pods"] >= 10_000:
                for what, seconds in (
                    ("evaluation", b.get("evaluate_cpu_s", float("nan"))),
                    ("whole process", b["cpu_s"]),
                ):
                    verdict = "pass" if seconds < BIG_S else "FAIL"
                    print(
                        f"{mode}: 10,000 pods / 2,000 AuthorizationPolicies, {what} "
                        f"{seconds:.2f} CPU s (< {BIG_S:g} s): {verdict}"
                    )


NCA_INPUTS = {
    "k8s": lambda pods: ["--policies", str(pods // 2)],
    "calico": lambda pods: ["--policies", str(pods // 2), "--calico-share", "0.3"],
    "istio": lambda pods: ["--policies", "0", "--istio-only", "sidecar", "--authz", str(pods // 2)],
}


def nca(args: argparse.Namespace, results: dict) -> None:
    tool = ensure_nca()
    print("\n## kubezt vs NCA (same files, alternating fresh processes, median)\n")
    print(
        "| input | pods | policies | kubezt wall s | kubezt CPU s | NCA wall s | NCA CPU s | "
        "ratio (CPU) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    rows = []
    for kind in args.nca_inputs:
        for pods in args.nca_pods:
            gen = ["--pods", str(pods), *NCA_INPUTS[kind](pods), "--seed", str(args.seed)]
            d = generate(f"nca-{kind}-{pods}", gen)
            kz_cmd = [
                sys.executable,
                "-m",
                "kubezt",
                "reach",
                str(d),
                "-o",
                "json",
                "--by",
                "class",
            ]
            nca_cmd = [str(tool), "--connectivity", "--resource_list", str(d)]
            kz, nc = [], []
            for _ in range(args.repeat):
                kz.append(run_measured(kz_cmd, args.timeout))
                nc.append(run_measured(nca_cmd, args.nca_timeout))
            ok = all(r.returncode in (0, 1) for r in kz) and all(r.returncode == 0 for r in nc)
            kz_wall = statistics.median(r.wall for r in kz)
            kz_cpu = statistics.median(r.cpu for r in kz)
            nc_wall = statistics.median(r.wall for r in nc)
            nc_cpu = statistics.median(r.cpu for r in nc)
            ratio = nc_cpu / kz_cpu if kz_cpu else float("nan")
            row = {
                "input": kind,
                "pods": pods,
                "policies": pods // 2,
                "kubezt_wall_s": round(kz_wall, 3),
                "kubezt_cpu_s": round(kz_cpu, 3),
                "nca_wall_s": round(nc_wall, 3),
                "nca_cpu_s": round(nc_cpu, 3),
                "ratio_cpu": round(ratio, 1),
                "ok": ok,
                "nca_stderr": "" if ok else nc[-1].stderr[-2000:],
                "kubezt_stderr": "" if ok else kz[-1].stderr[-2000:],
            }
            rows.append(row)
            results["nca"] = rows
            save(args, results)
            print(
                f"| {kind} | {pods:,} | {pods // 2:,} | {kz_wall:.2f} | {kz_cpu:.2f} | "
                f"{nc_wall:.2f} | {nc_cpu:.2f} | {ratio:.1f}× |" + ("" if ok else " (failed)"),
                flush=True,
            )
            if kind == "istio" and pods == 500:
                verdict = "pass" if ratio >= NCA_RATIO else "FAIL"
                print(
                    f"istio 500 pods: kubezt {ratio:.1f}× faster than NCA "
                    f"(target ≥ {NCA_RATIO:g}×): {verdict}"
                )
    results["nca"] = rows


def save(args: argparse.Namespace, results: dict) -> None:
    """Write the rows so far (a long run stopped midway keeps what it measured)."""
    OUT.mkdir(parents=True, exist_ok=True)
    tmp = OUT / (args.results + ".tmp")
    tmp.write_text(json.dumps(results, indent=2) + "\n")
    tmp.replace(OUT / args.results)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--modes", nargs="+", default=["sidecar", "ambient"])
    ap.add_argument("--max-pods", type=int, default=10_000)
    ap.add_argument(
        "--pods",
        type=int,
        nargs="+",
        help="growth: only these sizes (of 200 500 1000 2000 5000 10000)",
    )
    ap.add_argument(
        "--format",
        choices=["docs", "json"],
        default="docs",
        help="growth: the generator's output format (docs: YAML; json: kubectl get -o json)",
    )
    ap.add_argument("--nca-pods", type=int, nargs="+", default=[200, 500])
    ap.add_argument("--nca-inputs", nargs="+", default=list(NCA_INPUTS), choices=list(NCA_INPUTS))
    ap.add_argument("--no-nca", action="store_true")
    ap.add_argument("--no-growth", action="store_true")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=900)
    ap.add_argument("--nca-timeout", type=float, default=1800)
    ap.add_argument(
        "--results",
        default="mesh-results.json",
        help="file name under benchmarks/out/ for the rows (default mesh-results.json)",
    )
    args = ap.parse_args(argv)
    results: dict = {"args": vars(args)}
    if not args.no_growth:
        growth(args, results)
    if not args.no_nca:
        nca(args, results)
    save(args, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
