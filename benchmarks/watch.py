#!/usr/bin/env python3
"""Measure `kubezt watch`'s step: from a watch event to its delta, on a generated cluster.

    python benchmarks/watch.py                      # 2,000 pods, 400 policies, Istio
    python benchmarks/watch.py --pods 10000 --policies 2000

Generates (or reuses) a cluster with `benchmarks/generate.py --lean --calico-share 0.3
--istio`, feeds its objects to `kubezt.live.watch.Watch` as the informers would report a first
list, evaluates once, then feeds `--changes` watch events in equal shares (a pod relabelled to
another pod's labels, a NetworkPolicy added as a copy of another, a NetworkPolicy deleted, and
a status-only pod update, which must be dropped as noise) and times each `Watch.evaluate()`
(the objects re-read into the model, the differing objects applied to the incremental state,
the moved connections explained). The re-read alone is timed too, to show what the step costs
besides the incremental evaluation. Times are CPU seconds of the process (`time.process_time`:
the machine may be shared). No API server is involved: the network is not measured.
Prints a Markdown table and writes benchmarks/out/watch-<pods>.json.
"""

from __future__ import annotations

import argparse
import copy
import json
import random
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "src"))

from kubezt.live.read import CALICO_V3, CORE, MESH, OPTIONAL, Plan, Resource  # noqa: E402
from kubezt.live.watch import Changed, Listed, Watch  # noqa: E402

KINDS = ("relabel", "add-policy", "delete-policy", "status-only")


def generate(pods: int, policies: int, seed: int) -> Path:
    out = HERE / "out" / f"watch-{pods}-{policies}-{seed}"
    if not (out / "cluster-scoped.yaml").exists():
        subprocess.run(
            [sys.executable, str(HERE / "generate.py"), "--pods", str(pods), "--policies",
             str(policies), "--calico-share", "0.3", "--istio", "--lean", "--seed", str(seed),
             "--out", str(out)],
            check=True,
        )  # fmt: skip
    return out


def objects(directory: Path) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for file in sorted(directory.glob("*.yaml")):
        for doc in yaml.load_all(file.read_text(), Loader=yaml.CSafeLoader):
            if doc:
                docs += doc.get("items", []) if doc.get("kind") == "List" else [doc]
    return docs


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pods", type=int, default=2000)
    parser.add_argument("--policies", type=int, default=400)
    parser.add_argument("--changes", type=int, default=100)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    docs = objects(generate(args.pods, args.policies, args.seed))
    by_kind: dict[tuple[str, str], Resource] = {}
    for res in CORE + CALICO_V3 + MESH + OPTIONAL:
        by_kind.setdefault((res.group, res.kind), res)
    listed: dict[Resource, list[dict[str, Any]]] = {r: [] for r in CORE + CALICO_V3 + MESH}
    for i, doc in enumerate(docs):
        group = str(doc.get("apiVersion", "")).rpartition("/")[0]
        res = by_kind.get((group, str(doc.get("kind"))))
        if res is None or res not in listed:
            continue
        meta = doc.setdefault("metadata", {})
        meta.setdefault("resourceVersion", str(i + 1))
        meta["managedFields"] = [
            {"manager": "bench", "operation": "Apply", "time": "2026-01-01T00:00:00Z"}
        ]
        listed[res].append(doc)
    resources = tuple(listed)
    plan = Plan(tuple((r, "v1") for r in resources), (), mesh_config=False)
    watch = Watch("bench", plan, resources)
    for res, items in listed.items():
        watch.record(Listed(res, tuple(items)))
    began = time.process_time()
    first = watch.evaluate()
    assert first is not None
    sync = time.process_time() - began
    pods_res = next(r for r in resources if r.kind == "Pod")
    np_res = next(
        r
        for r in resources
        if r.kind == "NetworkPolicy" and not r.group.startswith("projectcalico")
    )
    times: dict[str, list[float]] = {k: [] for k in KINDS}
    reread: list[float] = []
    moved = 0
    for n in range(args.changes):
        kind = KINDS[n % len(KINDS)]
        pods = list(watch.store[pods_res].values())
        policies = list(watch.store[np_res].values())
        if kind == "relabel":
            pod, other = rng.sample(pods, 2)
            new = copy.deepcopy(pod)
            new["metadata"]["labels"] = dict(other["metadata"].get("labels") or {})
            event = Changed(pods_res, "MODIFIED", new)
        elif kind == "add-policy":
            new = copy.deepcopy(rng.choice(policies))
            new["metadata"]["name"] = f"bench-{n}"
            event = Changed(np_res, "ADDED", new)
        elif kind == "delete-policy":
            event = Changed(np_res, "DELETED", rng.choice(policies))
        else:
            new = copy.deepcopy(rng.choice(pods))
            new["status"] = {**(new.get("status") or {}), "conditions": [{"type": "Ready"}]}
            new["metadata"]["resourceVersion"] = f"s{n}"
            event = Changed(pods_res, "MODIFIED", new)
        t0 = time.process_time()
        relevant = watch.record(event)
        step = watch.evaluate() if relevant else None
        times[kind].append(time.process_time() - t0)
        if step is not None:
            moved += len(step.moved)
            t1 = time.process_time()
            watch._load()
            reread.append(time.process_time() - t1)
    every = sorted(t for ts in times.values() for t in ts)

    def ms(values: list[float], q: float) -> float:
        return 1000 * values[min(len(values) - 1, int(q * len(values)))] if values else 0.0

    result = {
        "pods": args.pods,
        "policies": args.policies,
        "changes": args.changes,
        "sync_s": round(sync, 3),
        "median_ms": round(1000 * statistics.median(every), 1),
        "p99_ms": round(ms(every, 0.99), 1),
        "max_ms": round(1000 * every[-1], 1),
        "reread_median_ms": round(1000 * statistics.median(reread), 1) if reread else None,
        "per_kind_median_ms": {
            k: round(1000 * statistics.median(v), 1) for k, v in times.items() if v
        },
        "connections_moved": moved,
        "peak_rss_mib": round(rss_mib()),
    }
    out = HERE / "out" / f"watch-{args.pods}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print("| pods | policies | changes | first evaluation | median step | p99 | max | "
          "re-read alone (median) | peak RSS |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    print(f"| {args.pods:,} | {args.policies:,} | {args.changes} | {result['sync_s']} s | "
          f"{result['median_ms']} ms | {result['p99_ms']} ms | {result['max_ms']} ms | "
          f"{result['reread_median_ms']} ms | {result['peak_rss_mib']} MiB |")  # fmt: skip
    print("per kind (median ms):", json.dumps(result["per_kind_median_ms"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
