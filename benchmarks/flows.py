"""Flow-log benchmark: `kubezt learn` and `kubezt replay` over 1,000,000 flow lines of a
10,000-pod cluster, each in a fresh process, reporting lines/s and peak memory.

    python benchmarks/flows.py                 # 1,000,000 lines, 10,000 pods
    python benchmarks/flows.py --lines 50000   # a quick run

The cluster: `--pods` Pods with addresses in 20 namespaces, 20 pods per app (pod names
`<app>-<hash>-<hash>`, as a Deployment makes them), each app calling 3 others on an HTTP port
and 1 on a TCP port, plus DNS. The flow logs: Calico Goldmane JSON lines (DNS and half the TCP
connections; one connection per line, so the joins and the evaluation see every line), ztunnel
access-log text lines (the other TCP connections) and Hubble L7 lines carrying method and path
(ids in the paths, so `learn` has templates to find). Rows:

* read only: parse every line into records (the readers' throughput);
* learn: `kubezt learn FLOWS -m CLUSTER -o intent.yaml` end to end;
* replay: `kubezt replay FLOWS OUT --workloads CLUSTER -o json` against the compiled learned
  intent, end to end (every line joined and evaluated; verdicts cached per distinct call).

Wall time includes start-up; CPU time (user + system) and peak RSS are the child's
`ru_utime + ru_stime` and `ru_maxrss` (`os.wait4`): on a shared machine the CPU time is the
figure that does not depend on the load. Everything is written under `benchmarks/out/flows/`
(gitignored).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "out" / "flows"
T0 = 1_767_225_600


def generate_cluster(pods: int, rng: random.Random) -> list[tuple[str, str, str, str]]:
    """(namespace, app, pod name, ip) per pod; writes cluster.yaml."""
    per_app = 20
    apps = max(pods // per_app, 2)
    namespaces = 20
    out: list[tuple[str, str, str, str]] = []
    docs: list[str] = []
    for ns in range(namespaces):
        docs.append(f"apiVersion: v1\nkind: Namespace\nmetadata: {{name: ns{ns}}}\n")
    for a in range(apps):
        ns, app = f"ns{a % namespaces}", f"app{a}"
        docs.append(
            f"apiVersion: v1\nkind: ServiceAccount\nmetadata: {{name: {app}, namespace: {ns}}}\n"
        )
        docs.append(
            f"apiVersion: v1\nkind: Service\nmetadata: {{name: {app}, namespace: {ns}}}\n"
            f"spec:\n  selector: {{app: {app}}}\n  ports:\n"
            "  - {name: http, port: 80, targetPort: 8080, appProtocol: http}\n"
            "  - {name: tcp-db, port: 5432, targetPort: 5432}\n"
        )
        rs = f"{rng.getrandbits(40):010x}"
        for i in range(per_app):
            n = a * per_app + i
            ip = f"10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}"
            name = f"{app}-{rs}-{rng.getrandbits(25):05x}"
            docs.append(
                f"apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  namespace: {ns}\n"
                f"  labels: {{app: {app}}}\nspec:\n  serviceAccountName: {app}\n  containers:\n"
                f"  - name: app\n    image: example/app:1\n    ports:\n"
                "    - {name: http, containerPort: 8080}\n    - {name: db, containerPort: 5432}\n"
                f"status: {{podIP: {ip}}}\n"
            )
            out.append((ns, app, name, ip))
    docs.append(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: coredns-6f6b679f8f-4kz9m\n"
        "  namespace: kube-system\n  labels: {k8s-app: kube-dns}\nspec:\n"
        "  serviceAccountName: coredns\n  containers:\n  - name: coredns\n    image: coredns\n"
        "    ports: [{containerPort: 53, protocol: UDP}]\nstatus: {podIP: 10.255.0.10}\n"
    )
    (OUT / "cluster").mkdir(parents=True, exist_ok=True)
    (OUT / "cluster" / "cluster.yaml").write_text("---\n".join(docs))
    return out


def generate_flows(
    pods: list[tuple[str, str, str, str]], lines: int, rng: random.Random
) -> list[Path]:
    by_app: dict[str, list[tuple[str, str, str, str]]] = {}
    for pod in pods:
        by_app.setdefault(pod[1], []).append(pod)
    apps = sorted(by_app)
    calls = {a: rng.sample(apps, 4) for a in apps}
    paths = [OUT / "flows.calico.jsonl", OUT / "flows.hubble.jsonl", OUT / "flows.ztunnel.log"]
    with open(paths[0], "w") as f, open(paths[1], "w") as hubble, open(paths[2], "w") as zt:
        for n in range(lines):
            src = rng.choice(pods)
            t = T0 + n // 100
            kind = n % 10
            if kind == 0:
                key = {
                    "source_name": src[2].rsplit("-", 1)[0] + "-*",
                    "source_namespace": src[0],
                    "source_type": "wep",
                    "dest_name": "coredns-6f6b679f8f-*",
                    "dest_namespace": "kube-system",
                    "dest_type": "wep",
                    "dest_port": 53,
                    "proto": "udp",
                    "reporter": "src",
                    "action": "Allow",
                }
                f.write(json.dumps({"Key": key, "start_time": t, "end_time": t + 15}) + "\n")
                continue
            callee = calls[src[1]][kind % 4]
            dst = rng.choice(by_app[callee])
            if kind % 4 == 3 and n // 10 % 2:  # TCP, as ztunnel logs it (HBONE)
                zt.write(
                    f"2026-01-01T{t // 3600 % 24:02d}:{t // 60 % 60:02d}:{t % 60:02d}.000000Z"
                    f"\tinfo\taccess\tconnection complete\tsrc.addr={src[3]}:{40000 + n % 20000}"
                    f' src.workload="{src[2]}" src.namespace="{src[0]}"'
                    f' src.identity="spiffe://cluster.local/ns/{src[0]}/sa/{src[1]}"'
                    f" dst.addr={dst[3]}:15008 dst.hbone_addr={dst[3]}:5432"
                    f' dst.service="{dst[1]}.{dst[0]}.svc.cluster.local" dst.workload="{dst[2]}"'
                    f' dst.namespace="{dst[0]}"'
                    f' dst.identity="spiffe://cluster.local/ns/{dst[0]}/sa/{dst[1]}"'
                    ' direction="inbound" bytes_sent=283 bytes_recv=358 duration="2ms"\n'
                )
                continue
            if kind % 4 == 3:  # TCP
                key = {
                    "source_name": src[2].rsplit("-", 1)[0] + "-*",
                    "source_namespace": src[0],
                    "source_type": "wep",
                    "dest_name": dst[2].rsplit("-", 1)[0] + "-*",
                    "dest_namespace": dst[0],
                    "dest_type": "wep",
                    "dest_port": 5432,
                    "dest_service_name": dst[1],
                    "dest_service_namespace": dst[0],
                    "dest_service_port": 5432,
                    "proto": "tcp",
                    "reporter": "dst",
                    "action": "Allow",
                }
                f.write(
                    json.dumps(
                        {
                            "Key": key,
                            "start_time": t,
                            "end_time": t + 15,
                            "num_connections_started": 1,
                        }
                    )
                    + "\n"
                )
                continue
            method = "GET" if kind % 2 else "POST"
            resource = ("orders", "items", "users")[kind % 3]
            flow = {
                "time": f"2026-01-01T{t // 3600 % 24:02d}:{t // 60 % 60:02d}:{t % 60:02d}Z",
                "verdict": "FORWARDED",
                "IP": {"source": src[3], "destination": dst[3], "ipVersion": "IPv4"},
                "l4": {"TCP": {"source_port": 40000 + n % 20000, "destination_port": 8080}},
                "source": {
                    "namespace": src[0],
                    "labels": [f"k8s:app={src[1]}"],
                    "pod_name": src[2],
                },
                "destination": {
                    "namespace": dst[0],
                    "labels": [f"k8s:app={dst[1]}"],
                    "pod_name": dst[2],
                },
                "Type": "L7",
                "l7": {
                    "type": "REQUEST",
                    "http": {
                        "method": method,
                        "url": f"http://{dst[1]}.{dst[0]}/api/{resource}/"
                        f"{rng.randrange(1000, 1005)}",
                        "protocol": "HTTP/1.1",
                    },
                },
                "destination_service": {"name": dst[1], "namespace": dst[0]},
                "traffic_direction": "INGRESS",
                "is_reply": False,
            }
            hubble.write(json.dumps({"flow": flow}) + "\n")
    return paths


def measure(label: str, command: list[str], lines: int) -> dict[str, object]:
    env = dict(
        os.environ, PYTHONPATH=str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")
    )
    start = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    assert child.stderr is not None
    stderr = child.stderr.read()
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - start
    cpu = usage.ru_utime + usage.ru_stime
    code = os.waitstatus_to_exitcode(status)
    row = {
        "phase": label,
        "seconds": round(seconds, 1),
        "cpu_seconds": round(cpu, 1),
        "lines_per_second": int(lines / seconds),
        "lines_per_cpu_second": int(lines / cpu) if cpu else 0,
        "peak_mib": round(usage.ru_maxrss / 1024),
        "exit": code,
    }
    if code not in (0, 1):
        row["stderr"] = stderr.decode(errors="replace")[-2000:]
    return row


READ_ONLY = (
    "import sys\n"
    "from kubezt.dialects.flows import FlowStats, read_flows\n"
    "stats = FlowStats()\n"
    "for _ in read_flows(sys.argv[1:], stats): pass\n"
    "assert stats.bad == 0, stats.diagnostics\n"
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--pods", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    OUT.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    pods = generate_cluster(args.pods, rng)
    files = generate_flows(pods, args.lines, rng)
    flows = [str(f) for f in files]
    size = sum(f.stat().st_size for f in files) / 2**20
    print(
        f"generated {len(pods)} pods and {args.lines} flow lines ({size:.0f} MiB) "
        f"in {time.perf_counter() - started:.0f} s",
        file=sys.stderr,
    )
    python = sys.executable
    cluster = str(OUT / "cluster")
    intent = OUT / "intent.yaml"
    compiled = OUT / "compiled"
    rows = [measure("read only (parse every line)", [python, "-c", READ_ONLY, *flows], args.lines)]
    rows.append(
        measure(
            "kubezt learn (end to end)",
            [
                python,
                "-m",
                "kubezt",
                "learn",
                *flows,
                "-m",
                cluster,
                "-o",
                str(intent),
                "--mode",
                "sidecar",
            ],
            args.lines,
        )
    )
    subprocess.run(
        [python, "-m", "kubezt", "compile", str(intent), "-o", str(compiled)],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=dict(os.environ, PYTHONPATH=str(ROOT / "src")),
    )
    rows.append(
        measure(
            "kubezt replay (end to end)",
            [
                python,
                "-m",
                "kubezt",
                "replay",
                *flows,
                str(compiled),
                "--workloads",
                cluster,
                "-o",
                "json",
            ],
            args.lines,
        )
    )
    print(
        f"| phase ({args.lines:,} lines, {len(pods):,} pods) | wall | CPU | lines/s (wall) "
        "| lines per CPU second | peak RSS |"
    )
    print("|---|---|---|---|---|---|")
    failed = False
    for row in rows:
        print(
            f"| {row['phase']} | {row['seconds']} s | {row['cpu_seconds']} s "
            f"| {row['lines_per_second']:,} | {row['lines_per_cpu_second']:,} "
            f"| {row['peak_mib']} MiB |"
        )
        if "stderr" in row:
            failed = True
            print(row["stderr"], file=sys.stderr)
    (OUT / "results.json").write_text(json.dumps(rows, indent=2))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
