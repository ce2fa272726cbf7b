#!/usr/bin/env python3
"""Generate a synthetic but realistic Kubernetes cluster dump for the kubezt benchmarks.

    python benchmarks/generate.py --pods 10000 --policies 2000 --out benchmarks/out/large \
        [--seed 1] [--calico-share 0.3] [--istio] [--format docs|list] [--lean]

The output looks like `kubectl get -A -o yaml` of a microservice cluster: one multi-document
YAML file per namespace (ServiceAccounts, Services, Pods, policies) plus `cluster-scoped.yaml`
(Namespaces, Nodes and, when enabled, Calico Tiers / GlobalNetworkPolicies /
GlobalNetworkSets). The output is a pure function of the arguments: the same seed gives
byte-identical files.

Exact counts: `--pods` is the total number of Pod objects (system pods included) and
`--policies` the number of namespaced network policies, i.e. `networking.k8s.io/v1`
NetworkPolicies plus `projectcalico.org/v3` NetworkPolicies. Calico GlobalNetworkPolicies and
Istio resources come on top of that.
"""

import argparse
import json
import sys
import time
from pathlib import Path

from clustergen.cluster import Generator


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pods", type=int, required=True, help="total Pod objects (exact)")
    ap.add_argument(
        "--policies",
        type=int,
        required=True,
        help="namespaced network policies, Kubernetes + Calico (exact)",
    )
    ap.add_argument("--out", type=Path, required=True, help="output directory")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument(
        "--calico-share",
        type=float,
        default=0.0,
        help="fraction of the allow policies emitted as projectcalico.org/v3 NetworkPolicies",
    )
    ap.add_argument("--istio", action="store_true", help="add Istio mesh labels and resources")
    ap.add_argument(
        "--istio-only",
        choices=["sidecar", "ambient"],
        help="every team namespace in this Istio mode (ambient: each with a waypoint), one "
        "ServiceAccount per app; use with --policies 0 for authorization in Istio only",
    )
    ap.add_argument(
        "--authz",
        type=int,
        help="exact number of AuthorizationPolicies (with --istio or --istio-only)",
    )
    ap.add_argument(
        "--format",
        choices=["docs", "list", "json"],
        default="docs",
        help="docs: one YAML document per object; list: one v1 List per file; json: one v1 "
        "List per file as `kubectl get -o json` prints it",
    )
    ap.add_argument(
        "--lean",
        action="store_true",
        help="omit fields no policy analysis needs (status conditions, volumes, ...)",
    )
    ap.add_argument("--summary", type=Path, help="write a JSON summary of what was generated")
    args = ap.parse_args(argv)
    if args.pods < 1 or args.policies < 0:
        ap.error("--pods must be positive and --policies non-negative")
    if not 0.0 <= args.calico_share <= 1.0:
        ap.error("--calico-share must be within [0, 1]")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    t0 = time.perf_counter()
    gen = Generator(args)
    gen.build()
    t1 = time.perf_counter()
    files, size = gen.write(args.out, args.format)
    t2 = time.perf_counter()
    pods = gen.counts["v1/Pod"]
    summary = {
        "args": {
            "pods": args.pods,
            "policies": args.policies,
            "seed": args.seed,
            "calico_share": args.calico_share,
            "istio": args.istio,
            "istio_only": args.istio_only,
            "authz": args.authz,
            "format": args.format,
            "lean": args.lean,
        },
        "pods": pods,
        "host_network_pods": gen.counts["hostNetwork pods"],
        "namespaces": gen.counts["v1/Namespace"],
        "application_namespaces": len(gen.namespaces),
        "apps": sum(len(ns.apps) for ns in gen.namespaces),
        "nodes": len(gen.nodes),
        "k8s_network_policies": gen.k8s_np_count,
        "calico_network_policies": gen.calico_np_count,
        "authorization_policies": gen.counts["security.istio.io/v1/AuthorizationPolicy"],
        "kinds": dict(sorted((k, v) for k, v in gen.counts.items() if "/" in k)),
        "files": files,
        "bytes": size,
        "build_s": round(t1 - t0, 3),
        "write_s": round(t2 - t1, 3),
    }
    if args.summary:
        args.summary.parent.mkdir(parents=True, exist_ok=True)
        args.summary.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    assert pods == args.pods, (pods, args.pods)
    assert gen.k8s_np_count + gen.calico_np_count == args.policies
    print(
        f"{args.out}: {pods} pods in {summary['application_namespaces']} app namespaces "
        f"({summary['apps']} apps, {len(gen.nodes)} nodes), "
        f"{gen.k8s_np_count} NetworkPolicies + {gen.calico_np_count} Calico NetworkPolicies, "
        f"{files} files, {size / 1e6:.1f} MB in {t2 - t0:.2f} s",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
