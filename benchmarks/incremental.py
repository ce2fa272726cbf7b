#!/usr/bin/env python3
"""Measure the incremental engine: the time from one object change to its delta.

    python benchmarks/incremental.py                  # 10,000 pods, 2,000 policies, Istio
    python benchmarks/incremental.py --pods 50000 --policies 10000
    python benchmarks/incremental.py --quick          # 1,000 pods: a check that it runs

Generates (or reuses) a cluster with `benchmarks/generate.py --calico-share 0.3 --istio`,
loads it, builds the incremental state (one full evaluation) and applies `--changes` random
changes drawn from the cluster itself, in equal shares:

* add a policy (a copy of an existing NetworkPolicy or Calico policy under a new name),
* delete a policy,
* edit a policy's selector (it takes the selector of another policy of its namespace),
* relabel a pod (a pod of an app with a canary takes the canary's labels, or back),
* flip a namespace's PeerAuthentication (STRICT <-> PERMISSIVE, added when absent),
* add an AuthorizationPolicy (ALLOW one app from the service account of another).

Each change is timed in CPU seconds of the process (`time.process_time`: the machine may be
shared) around `IncrementalReach.apply` (the delta included). A full
re-evaluation (`kubezt.evaluate`) of the final objects is timed in the same run for the ratio.
Prints a Markdown table and writes `benchmarks/out/incremental-<pods>.json`. Exit status 1 if
a target is missed: median < 100 ms and 99th percentile < 500 ms.
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import gc
import io
import json
import pstats
import random
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "src"))

import kubezt  # noqa: E402
from kubezt.engine.incremental import Change, IncrementalReach, rows_of  # noqa: E402
from kubezt.ir.mesh import (  # noqa: E402
    AuthorizationPolicy,
    AuthzRule,
    AuthzSource,
    DestinationRule,
    MtlsMode,
    PeerAuthentication,
    TlsMode,
    Waypoint,
)
from kubezt.ir.model import Model  # noqa: E402
from kubezt.ir.topology import Labels  # noqa: E402

MEDIAN_MS = 100.0
P99_MS = 500.0
KINDS = ("add", "delete", "edit-selector", "relabel", "flip-mtls", "add-authz")
STRUCTURAL = ("relabel-new", "namespace-labels", "account-labels", "service")
"""`--kinds` beyond the issue's mix: a pod takes a label no pod has (a new class), a
namespace's or service account's labels change, a Service's selector changes."""
ROUTING = ("destination-rule", "waypoint", "use-waypoint")
"""`--kinds` that move the mesh's routes: a DestinationRule for a Service added, edited (its
TLS mode) or deleted; a waypoint Gateway added to or deleted from an ambient namespace; a
Service of an ambient namespace labelled to use its namespace's waypoint, or unlabelled."""


def generate(pods: int, policies: int, seed: int) -> Path:
    out = HERE / "out" / f"incremental-{pods}-{policies}-{seed}"
    if not (out / "cluster-scoped.yaml").exists():
        subprocess.run(
            [
                sys.executable,
                str(HERE / "generate.py"),
                "--pods",
                str(pods),
                "--policies",
                str(policies),
                "--calico-share",
                "0.3",
                "--istio",
                "--lean",
                "--seed",
                str(seed),
                "--out",
                str(out),
            ],
            check=True,
        )
    return out


class Changes:
    """Random realistic changes drawn from the current model."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.count = 0

    def draw(self, kind: str, model: Model) -> Change:
        self.count += 1
        rng = self.rng
        policies = [p for p in model.policies.policies if p.namespace is not None]
        if kind == "add":
            base = rng.choice(policies)
            return Change.upsert(dataclasses.replace(base, name=f"bench-{self.count}"))
        if kind == "delete":
            return Change.delete(rng.choice(policies))
        if kind == "edit-selector":
            policy = rng.choice(policies)
            others = [
                p.selector
                for p in policies
                if p.namespace == policy.namespace and p.selector != policy.selector
            ]
            selector = rng.choice(others) if others else None
            return Change.upsert(dataclasses.replace(policy, selector=selector))
        if kind == "relabel":
            return self._relabel(model)
        if kind == "relabel-new":
            pod = rng.choice([w for w in model.topology.workloads if not w.host_network])
            labels = pod.labels.merged({"bench-rollout": f"r{self.count}"})
            return Change.upsert(dataclasses.replace(pod, labels=labels))
        if kind == "namespace-labels":
            ns = rng.choice(sorted(model.topology.namespaces.values(), key=lambda n: n.name))
            labels = ns.labels.merged({"bench-owner": f"o{self.count}"})
            return Change.upsert(dataclasses.replace(ns, labels=labels))
        if kind == "account-labels":
            accounts = sorted(
                model.topology.service_accounts.values(), key=lambda a: (a.namespace, a.name)
            )
            sa = rng.choice(accounts)
            labels = sa.labels.merged({"bench-owner": f"o{self.count}"})
            return Change.upsert(dataclasses.replace(sa, labels=labels))
        if kind == "service":
            svc = rng.choice([s for s in model.topology.services if s.selector])
            other = rng.choice(
                [s for s in model.topology.services if s.namespace == svc.namespace and s.selector]
            )
            return Change.upsert(dataclasses.replace(svc, selector=other.selector))
        if kind == "flip-mtls":
            return self._flip(model)
        if kind == "destination-rule":
            return self._destination_rule(model)
        if kind == "waypoint":
            return self._waypoint(model)
        if kind == "use-waypoint":
            return self._use_waypoint(model)
        return self._authz(model)

    def _meshed(self, model: Model, ambient: bool = False) -> list[str]:
        return sorted(
            ns.name
            for ns in model.topology.namespaces.values()
            if ns.labels.get("istio.io/dataplane-mode") == "ambient"
            or (not ambient and ns.labels.get("istio-injection") == "enabled")
        )

    def _destination_rule(self, model: Model) -> Change:
        rng = self.rng
        ours = [dr for dr in model.mesh.destination_rules if dr.name.startswith("bench-")]
        if ours and rng.random() < 0.3:
            return Change.delete(rng.choice(ours))
        meshed = set(self._meshed(model))
        svc = rng.choice([s for s in model.topology.services if s.namespace in meshed])
        mode = rng.choice((TlsMode.ISTIO_MUTUAL, TlsMode.DISABLE, TlsMode.SIMPLE))
        return Change.upsert(DestinationRule(f"bench-{svc.name}", svc.namespace, svc.name, mode))

    def _waypoint(self, model: Model) -> Change:
        rng = self.rng
        ours = [w for w in model.mesh.waypoints if w.name.startswith("bench-")]
        if ours and rng.random() < 0.5:
            return Change.delete(rng.choice(ours))
        namespace = rng.choice(self._meshed(model, ambient=True))
        return Change.upsert(Waypoint(f"bench-wp-{self.count}", namespace, "service"))

    def _use_waypoint(self, model: Model) -> Change:
        rng = self.rng
        ambient = set(self._meshed(model, ambient=True))
        svc = rng.choice([s for s in model.topology.services if s.namespace in ambient])
        if "istio.io/use-waypoint" in svc.labels:
            labels = Labels({k: v for k, v in svc.labels.items() if k != "istio.io/use-waypoint"})
        else:
            names = [w.name for w in model.mesh.waypoints if w.namespace == svc.namespace]
            labels = svc.labels.merged({"istio.io/use-waypoint": rng.choice(names or ["waypoint"])})
        return Change.upsert(dataclasses.replace(svc, labels=labels))

    def _relabel(self, model: Model) -> Change:
        by_app: dict[tuple[str, str], list[int]] = {}
        workloads = model.topology.workloads
        for i, w in enumerate(workloads):
            app = w.labels.get("app")
            if app is not None:
                by_app.setdefault((w.namespace, app), []).append(i)
        canaried = []
        for members in by_app.values():
            labels = {workloads[i].labels for i in members}
            if len(labels) > 1:
                canaried.append(members)
        members = self.rng.choice(canaried)
        pod = workloads[self.rng.choice(members)]
        other = next(workloads[i].labels for i in members if workloads[i].labels != pod.labels)
        return Change.upsert(dataclasses.replace(pod, labels=Labels(other)))

    def _flip(self, model: Model) -> Change:
        namespace = self.rng.choice(self._meshed(model))
        for pa in model.mesh.peer_authentications:
            if pa.namespace == namespace and not pa.selector:
                mode = MtlsMode.PERMISSIVE if pa.mode is MtlsMode.STRICT else MtlsMode.STRICT
                return Change.upsert(dataclasses.replace(pa, mode=mode))
        return Change.upsert(PeerAuthentication("default", namespace, None, MtlsMode.PERMISSIVE))

    def _authz(self, model: Model) -> Change:
        meshed = set(self._meshed(model))
        candidates = [
            w for w in model.topology.workloads if w.namespace in meshed and "app" in w.labels
        ]
        server = self.rng.choice(candidates)
        client = self.rng.choice(candidates)
        principal = f"cluster.local/ns/{client.namespace}/sa/{client.service_account}"
        app = server.labels["app"]
        return Change.upsert(
            AuthorizationPolicy(
                f"bench-{self.count}",
                server.namespace,
                selector=Labels({"app": app}),
                rules=(AuthzRule(sources=(AuthzSource(principals=(principal,)),)),),
            )
        )


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pods", type=int, default=10_000)
    parser.add_argument("--policies", type=int, default=2_000)
    parser.add_argument("--changes", type=int, default=240)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--kinds",
        default=",".join(KINDS),
        help="comma-separated change kinds, in equal shares "
        f"(also: {', '.join(STRUCTURAL + ROUTING)})",
    )
    parser.add_argument("--quick", action="store_true", help="1,000 pods, 60 changes")
    parser.add_argument(
        "--check", action="store_true", help="also compare the final state with a full evaluation"
    )
    parser.add_argument(
        "--profile-slow",
        type=float,
        metavar="MS",
        help="run each change under cProfile (which inflates its time) and print the change, "
        "its path and its most expensive calls when it takes longer than MS",
    )
    args = parser.parse_args()
    if args.quick:
        args.pods, args.policies, args.changes = 1_000, 500, 60
    directory = generate(args.pods, args.policies, args.seed)
    t = time.process_time()
    model = kubezt.load([str(directory)]).model
    load_s = time.process_time() - t
    t = time.process_time()
    state = IncrementalReach(model)
    build_s = time.process_time() - t
    rss_built = rss_mib()
    rng = random.Random(args.seed)
    source = Changes(rng)
    chosen = tuple(args.kinds.split(","))
    unknown = set(chosen) - set(KINDS) - set(STRUCTURAL) - set(ROUTING)
    if unknown:
        parser.error(f"unknown kinds: {', '.join(sorted(unknown))}")
    kinds = [chosen[i % len(chosen)] for i in range(args.changes)]
    rng.shuffle(kinds)
    timings: dict[str, list[float]] = {k: [] for k in chosen}
    paths: dict[str, int] = {}
    moved = 0
    gc.collect()
    for kind in kinds:
        change = source.draw(kind, state.model)
        profile = cProfile.Profile() if args.profile_slow is not None else None
        t = time.process_time()
        if profile is not None:
            profile.enable()
        delta = state.apply(change)
        if profile is not None:
            profile.disable()
        timings[kind].append((time.process_time() - t) * 1000)
        if profile is not None and timings[kind][-1] > args.profile_slow:
            text = io.StringIO()
            pstats.Stats(profile, stream=text).sort_stats("cumulative").print_stats(30)
            print(f"{kind} {change.key} by {delta.path.value}: {timings[kind][-1]:.0f} ms")
            print(text.getvalue(), flush=True)
        paths[delta.path.value] = paths.get(delta.path.value, 0) + 1
        moved += len(delta.connections)
    t = time.process_time()
    full = kubezt.evaluate(state.model)
    full_s = time.process_time() - t
    agrees = None
    if args.check:
        agrees = dict(rows_of(full)) == dict(rows_of(state.reachability()))
    every = sorted(x for xs in timings.values() for x in xs)
    median = statistics.median(every)
    p99 = every[min(len(every) - 1, round(0.99 * (len(every) - 1)))]
    result = {
        "pods": args.pods,
        "policies": args.policies,
        "kinds": list(chosen),
        "clock": "CPU time of this process (time.process_time)",
        "changes": len(every),
        "load_s": round(load_s, 2),
        "build_s": round(build_s, 2),
        "full_evaluation_s": round(full_s, 2),
        "median_ms": round(median, 2),
        "p99_ms": round(p99, 2),
        "max_ms": round(every[-1], 2),
        "ratio_full_over_median": round(full_s * 1000 / median, 1),
        "peak_rss_mib": round(rss_mib(), 1),
        "rss_after_build_mib": round(rss_built, 1),
        "paths": paths,
        "connections_moved": moved,
        "per_kind_median_ms": {k: round(statistics.median(v), 2) for k, v in timings.items() if v},
        "per_kind_max_ms": {k: round(max(v), 2) for k, v in timings.items() if v},
        "final_state_equals_full_evaluation": agrees,
    }
    suffix = "" if chosen == KINDS else "-" + "-".join(chosen)
    out = HERE / "out" / f"incremental-{args.pods}{suffix}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print("| pods | policies | changes | median | p99 | max | full evaluation | ratio | peak RSS |")
    print("|---|---|---|---|---|---|---|---|---|")
    print(
        f"| {args.pods:,} | {args.policies:,} | {len(every)} | {median:.1f} ms | {p99:.1f} ms "
        f"| {every[-1]:.1f} ms | {full_s:.1f} s | {full_s * 1000 / median:,.0f}x "
        f"| {rss_mib():,.0f} MiB |"
    )
    print()
    print("per kind (median / max ms):")
    for kind in chosen:
        if timings[kind]:
            print(f"  {kind:14} {statistics.median(timings[kind]):8.1f} {max(timings[kind]):9.1f}")
    print(f"paths: {paths}; build {build_s:.1f} s, load {load_s:.1f} s")
    if agrees is not None:
        print(f"final state equals a full evaluation: {agrees}")
    ok = median < MEDIAN_MS and p99 < P99_MS and agrees is not False
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
