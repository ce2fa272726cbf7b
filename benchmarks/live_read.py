#!/usr/bin/env python3
"""Reading a live cluster at scale: 10,000 pods and 2,000 policies in the test API server,
end to end to `kubezt reach -o json`, next to the same objects read from files.

    python benchmarks/live_read.py                  # 10,000 pods, 2,000 policies
    python benchmarks/live_read.py --pods 1000 --policies 500

Needs the test API server (`bash scripts/testenv.sh` builds it; or KUBEZT_APISERVER and
KUBEZT_ETCD) and the `live` extra. Steps: generate the cluster dump with
benchmarks/generate.py (`--lean --calico-share 0.3 --istio`), start etcd + kube-apiserver with
the vendored CRDs, create every object (and each pod's status, so pods have their IPs), then
time `python -m kubezt reach --kubeconfig K -o json` and `python -m kubezt reach DIR -o json`
in fresh subprocesses (wall time and peak RSS of the child), and check that both print the same
connections. Results go to benchmarks/out/live/results.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "tests" / "live"))

from kube_testenv import TestCluster, find_binaries, resource_path  # noqa: E402

DROP_META = ("uid", "resourceVersion", "creationTimestamp", "generation", "managedFields")


def _clean(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj.get("metadata") or {}
    for key in DROP_META:
        meta.pop(key, None)
    return obj


def _objects(directory: Path) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for file in sorted(directory.glob("*.yaml")):
        for doc in yaml.load_all(file.read_text(), Loader=yaml.CSafeLoader):
            if not doc:
                continue
            docs += doc.get("items", []) if doc.get("kind") == "List" else [doc]
    return docs


def _populate(cluster: TestCluster, objects: list[dict[str, Any]]) -> float:
    """Create every object (namespaces and cluster-scoped kinds first), then pod statuses."""
    began = time.monotonic()
    order = {"Namespace": 0, "CustomResourceDefinition": 0, "Tier": 1}
    objects = sorted(objects, key=lambda o: order.get(o["kind"], 2))
    groups: dict[int, list[dict[str, Any]]] = {}
    for obj in objects:
        groups.setdefault(order.get(obj["kind"], 2), []).append(obj)

    def create(obj: dict[str, Any]) -> None:
        status = obj.get("status")
        body = _clean(json.loads(json.dumps(obj)))
        body.pop("status", None)
        if obj["kind"] == "Pod":  # the priority admission plugin fills it from priorityClassName
            body.get("spec", {}).pop("priority", None)
        if obj["kind"] == "Service":  # the test server allocates from its own range
            body.get("spec", {}).pop("clusterIP", None)
            body.get("spec", {}).pop("clusterIPs", None)
        path = resource_path(cluster, body, collection=True)
        code, answer = cluster.request("POST", path, body)
        if code == 409:
            return  # e.g. the default namespace
        if code >= 300:
            raise RuntimeError(f"create {obj['kind']} {obj['metadata'].get('name')}: {answer}")
        if obj["kind"] == "Pod" and status:
            # The API server derives the QoS class from the containers' resources and refuses
            # any other value: the generated one is not sent.
            status = {k: v for k, v in status.items() if k != "qosClass"}
            code, answer = cluster.request(
                "PATCH",
                resource_path(cluster, body) + "/status",
                json.dumps({"status": status}).encode(),
                content_type="application/merge-patch+json",
            )
            if code >= 300:
                raise RuntimeError(f"status of pod {obj['metadata']['name']}: {answer}")

    with ThreadPoolExecutor(8) as pool:
        for _, batch in sorted(groups.items()):
            for obj in batch:  # discovery once per kind before the threads race for it
                resource_path(cluster, obj, collection=True)
            list(pool.map(create, batch))
    return time.monotonic() - began


def _measure(argv: list[str], env: dict[str, str]) -> tuple[float, float, bytes]:
    began = time.monotonic()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    out = proc.stdout.read() if proc.stdout else b""
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.monotonic() - began
    if status != 0:
        raise RuntimeError(f"{' '.join(argv)} exited with {status}")
    return seconds, usage.ru_maxrss / 1024.0, out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pods", type=int, default=10_000)
    parser.add_argument("--policies", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    out = HERE / "out" / "live"
    dump = out / f"dump-{args.pods}-{args.policies}"
    out.mkdir(parents=True, exist_ok=True)
    if not dump.exists():
        subprocess.run(
            [sys.executable, str(HERE / "generate.py"), "--pods", str(args.pods),
             "--policies", str(args.policies), "--out", str(dump), "--seed", str(args.seed),
             "--lean", "--calico-share", "0.3", "--istio"],
            check=True,
        )  # fmt: skip
    objects = [o for o in _objects(dump) if o.get("kind") != "Node"]
    api, etcd = find_binaries()
    cluster = TestCluster(apiserver=api, etcd=etcd)
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    try:
        cluster.start()
        cluster.install_crds()
        print(f"API server up in {cluster.startup_seconds:.1f} s; creating {len(objects)} objects")
        populate = _populate(cluster, objects)
        print(f"created in {populate:.0f} s")
        live_s, live_mib, live_out = _measure(
            [sys.executable, "-m", "kubezt", "reach", "--kubeconfig", str(cluster.kubeconfig),
             "-o", "json"], env,
        )  # fmt: skip
        file_s, file_mib, file_out = _measure(
            [sys.executable, "-m", "kubezt", "reach", str(dump), "-o", "json"], env
        )
    finally:
        cluster.stop()
    live_doc, file_doc = json.loads(live_out), json.loads(file_out)
    same = live_doc["allowed"] == file_doc["allowed"]
    pods = sum(1 for o in objects if o["kind"] == "Pod")
    results = {
        "pods": pods,
        "objects": len(objects),
        "connections": len(live_doc["allowed"]),
        "cluster": {"seconds": round(live_s, 2), "peak_rss_mib": round(live_mib)},
        "files": {"seconds": round(file_s, 2), "peak_rss_mib": round(file_mib)},
        "same_connections": same,
    }
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    print("| input | reach -o json (s) | peak RSS (MiB) |")
    print("|---|---|---|")
    print(f"| test API server, {pods} pods | {live_s:.1f} | {live_mib:.0f} |")
    print(f"| the same objects as files | {file_s:.1f} | {file_mib:.0f} |")
    print(f"same connections from both: {same} ({len(live_doc['allowed'])} connections)")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
