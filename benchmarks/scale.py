#!/usr/bin/env python3
"""End to end at scale: files → class-level JSON, with the time of every phase and the parsing
floor, from 1,000 to 100,000 pods.

    python benchmarks/scale.py                        # 1k, 10k, 30k, 100k pods
    python benchmarks/scale.py --pods 1000 10000      # some sizes only
    python benchmarks/scale.py --format json          # `kubectl get -o json` Lists as input
    python benchmarks/scale.py --mix k8s              # Kubernetes NetworkPolicies only

Inputs: the generator's mixed clusters (`--policies pods/10 --calico-share 0.3 --istio`:
Kubernetes and Calico policies with tiers, Istio sidecar and ambient namespaces with a
waypoint; 10,000 policies at 100,000 pods), or with `--mix k8s` Kubernetes NetworkPolicies only;
as YAML (`--format yaml`, one document per object) or as `kubectl get -o json` Lists. For
each size, in fresh processes:

* `e2e`: `kubezt reach DIR -o json --by class > file` — wall, CPU and peak RSS; median of
  `--repeat`;
* `phases` (CPU seconds): one process timing `parse` (every file through the loader's
  parser, in the same worker processes `kubezt.load` uses), `load` (parse + lowering to the
  model; `lower` is the difference), `evaluate` and `write` (class document + orjson);
* `floor` (CPU seconds): PyYAML's C loader alone on the same files (YAML input; `YAML
  compose`: its composer alone, every node with its line and column and nothing constructed),
  and `json.loads` / `orjson.loads` on the same objects as JSON — what any reader of these
  formats pays;
* `KiB/pod`: the end-to-end run's peak RSS divided by the pods (interpreter included);
* at 10,000 pods, the class-level result expanded to pairs is compared with the per-pair
  result (`--by pair`): both must agree.

Targets: 10,000 pods under 2 s, 100,000 pods under 10 s and 4 GiB (end to end). Results go to
`benchmarks/out/scale-results-MIX-FORMAT.json`; a growth table with the exponent is printed.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
from pathlib import Path

from mesh import OUT, generate, run_measured

SIZES = [1_000, 10_000, 30_000, 100_000]
TARGETS = {10_000: (2.0, None), 100_000: (10.0, 4096.0)}

PHASES = r"""
import json, sys, gc, resource
from pathlib import Path
import orjson


def clock():
    # CPU seconds of this process and its finished children (the parser workers): on a shared
    # machine the steady measure; wall time is in the e2e row
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


t0 = clock()
import kubezt
from kubezt.dialects import registry
from kubezt.dialects._yaml import expand_paths
from kubezt.errors import DiagnosticSink
from kubezt.report.class_documents import reach_class_document
d = sys.argv[1]
t_import = clock()
sink = DiagnosticSink()
files = expand_paths([d], sink)
gc.disable()
docs = sum(len(x) for x in registry._documents(files, sink))
gc.enable()
t_parse = clock()
r = kubezt.load([d])
t_load = clock()
gc.freeze()  # as `kubezt reach` evaluates (cli.common.frozen_heap)
m = kubezt.evaluate(r.model)
gc.unfreeze()
t_eval = clock()
doc = reach_class_document(m, r.warnings)
data = orjson.dumps(doc, option=orjson.OPT_INDENT_2)
Path(sys.argv[2]).write_bytes(data)
t_write = clock()
parse = t_parse - t_import
load = t_load - t_parse
print(json.dumps({
    "import_s": t_import - t0, "parse_s": parse, "lower_s": max(load - parse, 0.0),
    "load_s": load, "evaluate_s": t_eval - t_load, "write_s": t_write - t_eval,
    "documents": docs, "classes": len(doc["classes"]), "edges": len(doc["allowed"]),
    "output_bytes": len(data),
}))
"""

FLOOR = r"""
import json, sys, time
from pathlib import Path
import yaml, orjson
clock = time.process_time  # CPU seconds (single process)
out = {}
files = sorted(Path(sys.argv[1]).glob("*.yaml"))
if files:
    t = clock()
    objs = []
    for f in files:
        with f.open(encoding="utf-8") as fh:
            objs.extend(yaml.load_all(fh, Loader=yaml.CSafeLoader))
    out["yaml_c_s"] = clock() - t
    # the C composer alone: every node with its line and column, nothing constructed (what
    # locating fields costs at least; kubezt's workers compose, then build only what it reads)
    t = clock()
    for f in files:
        with f.open(encoding="utf-8") as fh:
            loader = yaml.CSafeLoader(fh)
            try:
                while loader.check_node():
                    loader.get_node()
            finally:
                loader.dispose()
    out["yaml_compose_s"] = clock() - t
    texts = [json.dumps({"apiVersion": "v1", "kind": "List", "items": [o for o in objs if o]})]
    del objs
else:
    texts = [f.read_text(encoding="utf-8") for f in sorted(Path(sys.argv[1]).glob("*.json"))]
t = clock()
for text in texts:
    json.loads(text)
out["json_loads_s"] = clock() - t
t = clock()
for text in texts:
    orjson.loads(text)
out["orjson_loads_s"] = clock() - t
out["json_bytes"] = sum(len(text) for text in texts)
print(json.dumps(out))
"""

AGREE = r"""
import json, sys
from kubezt.report.class_documents import expand_classes
classes = json.load(open(sys.argv[1]))
pairs = []
with open(sys.argv[2]) as fh:
    header = json.loads(fh.readline())
    pairs = [json.loads(line) for line in fh]
expanded = expand_classes(classes)
print(json.dumps({"pairs": len(pairs), "expanded": len(expanded), "agree": expanded == pairs}))
"""


def last_json(text: str) -> dict:
    lines = text.strip().splitlines()
    return json.loads(lines[-1]) if lines else {}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pods", type=int, nargs="+", default=SIZES)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=1800)
    ap.add_argument("--no-agree", action="store_true", help="skip the class/pair comparison")
    ap.add_argument("--format", choices=["yaml", "json"], default="yaml", help="input format")
    ap.add_argument(
        "--mix",
        choices=["mixed", "k8s"],
        default="mixed",
        help="mixed: Kubernetes + Calico (30%%) policies and Istio; k8s: NetworkPolicies only",
    )
    args = ap.parse_args(argv)
    # the byte code an installed kubezt has: without it (PYTHONDONTWRITEBYTECODE, a read-only
    # checkout) every process would compile the sources again, about 0.3 s of each run
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(Path(__file__).parent.parent / "src")],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    rows = []
    print(f"input: {args.mix}, {args.format}; load average {os.getloadavg()[0]:.1f}", flush=True)
    print(
        "| pods | policies | e2e wall s | e2e CPU s | peak MiB | parse | lower | evaluate "
        "| write | YAML C loader | YAML compose | json.loads | orjson.loads | classes "
        "| output MB | KiB/pod | target |"
    )
    print("|" + "---|" * 18)
    failed = False
    for pods in args.pods:
        policies = pods // 10
        gen = ["--pods", str(pods), "--policies", str(policies)]
        if args.mix == "mixed":
            gen += ["--calico-share", "0.3", "--istio"]
        gen += ["--seed", str(args.seed)]
        name = f"scale-{pods}" + ("" if args.mix == "mixed" else "-k8s")
        if args.format == "json":
            gen += ["--format", "json"]
            name += "-json"
        d = generate(name, gen)
        out_file = OUT / "mesh" / f"{name}.classes.json"
        e2e = [
            run_measured(
                [
                    "sh",
                    "-c",
                    '"$0" -m kubezt reach "$1" -o json --by class > "$2"',
                    sys.executable,
                    str(d),
                    str(out_file),
                ],
                args.timeout,
            )
            for _ in range(args.repeat)
        ]
        wall = statistics.median(r.wall for r in e2e)
        cpu = statistics.median(r.cpu for r in e2e)
        mib = max(r.peak_mib for r in e2e)
        ok = all(r.returncode in (0, 1) for r in e2e)
        phases = run_measured(
            [sys.executable, "-c", PHASES, str(d), str(out_file) + ".phases"],
            args.timeout,
            keep_stdout=True,
        )
        ph = last_json(phases.stdout) if phases.returncode == 0 else {}
        floor_run = run_measured([sys.executable, "-c", FLOOR, str(d)], args.timeout, True)
        floor = last_json(floor_run.stdout) if floor_run.returncode == 0 else {}
        row = {
            "pods": pods,
            "policies": policies,
            "e2e_wall_s": round(wall, 3),
            "e2e_cpu_s": round(cpu, 3),
            "peak_mib": round(mib, 1),
            # memory per pod: the whole process's peak (interpreter, input, model, result)
            "kib_per_pod": round(mib * 1024 / pods, 2),
            "ok": ok,
            **{k: round(v, 3) if isinstance(v, float) else v for k, v in ph.items()},
            **{k: round(v, 3) if isinstance(v, float) else v for k, v in floor.items()},
        }
        if not ok:
            row["stderr"] = e2e[-1].stderr[-2000:]
        target = TARGETS.get(pods)
        verdict = "-"
        if target is not None:
            met = ok and wall < target[0] and (target[1] is None or mib < target[1])
            verdict = (
                ("pass" if met else "FAIL")
                + f" (< {target[0]:g} s"
                + (f", < {target[1] / 1024:g} GiB)" if target[1] else ")")
            )
            failed |= not met
        row["target"] = verdict
        if pods == 10_000 and not args.no_agree:
            pair_file = OUT / "mesh" / f"{name}.pairs.jsonl"
            pair_run = run_measured(
                [
                    "sh",
                    "-c",
                    '"$0" -m kubezt reach "$1" -o json --by pair > "$2"',
                    sys.executable,
                    str(d),
                    str(pair_file),
                ],
                args.timeout,
            )
            agree = run_measured(
                [sys.executable, "-c", AGREE, str(out_file), str(pair_file)], args.timeout, True
            )
            row["class_pair_agreement"] = (
                last_json(agree.stdout)
                if agree.returncode == 0
                else {"error": agree.stderr[-2000:]}
            )
            failed |= not row["class_pair_agreement"].get("agree", False)
            # streamed: the per-pair run's memory stays near the class-level run's
            row["class_pair_agreement"]["pair_run_peak_mib"] = round(pair_run.peak_mib, 1)
            row["class_pair_agreement"]["pair_output_mb"] = round(pair_file.stat().st_size / 1e6, 1)
        rows.append(row)

        def f(key: str, row: dict = row) -> str:
            v = row.get(key)
            return f"{v:.2f}" if isinstance(v, float) else "?"

        print(
            f"| {pods:,} | {policies:,} | {wall:.2f} | {cpu:.2f} | {mib:.0f} | {f('parse_s')} | "
            f"{f('lower_s')} | {f('evaluate_s')} | {f('write_s')} | {f('yaml_c_s')} | "
            f"{f('yaml_compose_s')} | {f('json_loads_s')} | {f('orjson_loads_s')} | "
            f"{row.get('classes', '?')} | {row.get('output_bytes', 0) / 1e6:.1f} | "
            f"{row['kib_per_pod']:.1f} | {verdict} |",
            flush=True,
        )
        if "class_pair_agreement" in row:
            print(f"10,000 pods: class vs pair: {row['class_pair_agreement']}", flush=True)
    good = [r for r in rows if r["ok"]]
    if len(good) >= 2:
        a, b = good[0], good[-1]
        exp_wall = math.log(b["e2e_wall_s"] / a["e2e_wall_s"]) / math.log(b["pods"] / a["pods"])
        exp_cpu = math.log(b["e2e_cpu_s"] / a["e2e_cpu_s"]) / math.log(b["pods"] / a["pods"])
        print(
            f"\ngrowth {a['pods']:,} → {b['pods']:,} pods: exponent {exp_wall:.2f} (wall), "
            f"{exp_cpu:.2f} (CPU)"
        )
    OUT.mkdir(parents=True, exist_ok=True)
    print(f"load average {os.getloadavg()[0]:.1f}")
    results = OUT / f"scale-results-{args.mix}-{args.format}.json"
    results.write_text(json.dumps({"rows": rows}, indent=2) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
