"""Probe plan: Kubernetes Jobs that test the predicted connectivity matrix on a real cluster,
as the upstream network-policy e2e suite and Cyclonus do, with agnhost's `connect`.

One Job per source workload, in its namespace, whose pod carries the source's labels,
annotations and ServiceAccount (so every policy treats it as the source), probes each
destination port through a Service that selects the destination, and prints one line per
probe:

    kubezt-probe <id> <outcome>

where `id` is `SRC>DST:PORT/PROTOCOL` and `outcome` is agnhost's verdict: `connected`,
`refused` (the SYN reached the destination host, so the network let it through), `timeout`
(dropped) or `other` (DNS failure, bad address: the probe said nothing). The Job's annotation
`kubezt.io/expected` holds every probe and its predicted result (`reached` / `blocked`).
Destination ports that no Service exposes cannot be addressed before the pods exist; they are
listed in the annotation `kubezt.io/unprobed`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from kubezt.ir.model import Model
from kubezt.ir.topology import Service, Workload

AGNHOST = "registry.k8s.io/e2e-test-images/agnhost:2.53"
EXPECTED = "kubezt.io/expected"
UNPROBED = "kubezt.io/unprobed"
SOURCE = "kubezt.io/probe-source"
PROBE_LABEL = "kubezt.io/probe"
TIMEOUT_SECONDS = 2


@dataclass(frozen=True, slots=True)
class Probe:
    id: str
    source: str
    destination: str
    port: int
    protocol: str
    address: str
    """`service.namespace.svc.cluster.local:servicePort`."""
    expected: str
    """`reached` or `blocked`."""


def probe_id(src: str, dst: str, port: int, protocol: str) -> str:
    return f"{src}>{dst}:{port}/{protocol}"


def _service_address(services: Iterable[Service], dst: Workload, port: int, protocol: str) -> str:
    for svc in services:
        if not svc.selects(dst):
            continue
        for sp in svc.ports:
            if sp.protocol.value == protocol and sp.target_on(dst) == port:
                return f"{svc.name}.{svc.namespace}.svc.cluster.local:{sp.port}"
    return ""


def plan_probes(
    model: Model, allowed: Iterable[tuple[str, str, int, str]]
) -> tuple[list[Probe], list[tuple[str, str, int, str]]]:
    """Every (source, destination, declared port) probe with its prediction, and the
    (src, dst, port, protocol) that no Service address reaches."""
    reached = set(allowed)
    workloads = [w for w in model.topology.workloads if not w.host_network]
    services = model.topology.services
    probes: list[Probe] = []
    unprobed: list[tuple[str, str, int, str]] = []
    for src in workloads:
        for dst in workloads:
            for cp in dst.ports:
                key = (src.id, dst.id, cp.port, cp.protocol.value)
                address = _service_address(services, dst, cp.port, cp.protocol.value)
                if not address:
                    unprobed.append(key)
                    continue
                probes.append(
                    Probe(
                        probe_id(*key),
                        src.id,
                        dst.id,
                        cp.port,
                        cp.protocol.value,
                        address,
                        "reached" if key in reached else "blocked",
                    )
                )
    return probes, unprobed


def _script(probes: list[Probe]) -> str:
    lines = ["set -u"]
    for p in probes:
        lines.append(
            f"if r=$(/agnhost connect {p.address} --timeout={TIMEOUT_SECONDS}s "
            f'--protocol={p.protocol.lower()} 2>&1); then o=connected; else case "$r" in '
            "*REFUSED*) o=refused;; *TIMEOUT*) o=timeout;; *) o=other;; esac; fi; "
            f'echo "kubezt-probe {p.id} $o"'
        )
    return "\n".join(lines) + "\n"


def job_name(source: str) -> str:
    digest = hashlib.sha256(source.encode()).hexdigest()[:10]
    stem = source.split("/", 1)[1][:40].strip("-.")
    return f"kubezt-probe-{stem}-{digest}"


def probe_jobs(
    model: Model, probes: list[Probe], unprobed: list[tuple[str, str, int, str]]
) -> list[dict[str, Any]]:
    """One Job per source with its probes (sources with nothing to probe get none)."""
    by_source: dict[str, list[Probe]] = {}
    for p in probes:
        by_source.setdefault(p.source, []).append(p)
    skipped: dict[str, list[str]] = {}
    for src, dst, port, protocol in unprobed:
        skipped.setdefault(src, []).append(probe_id(src, dst, port, protocol))
    jobs = []
    for w in model.topology.workloads:
        mine = by_source.get(w.id)
        if not mine:
            continue
        annotations = {
            SOURCE: w.id,
            EXPECTED: json.dumps(
                [{"id": p.id, "address": p.address, "expected": p.expected} for p in mine],
                separators=(",", ":"),
            ),
        }
        if w.id in skipped:
            annotations[UNPROBED] = json.dumps(skipped[w.id], separators=(",", ":"))
        labels = {**dict(w.labels), PROBE_LABEL: "true"}
        jobs.append(
            {
                "apiVersion": "batch/v1",
                "kind": "Job",
                "metadata": {
                    "name": job_name(w.id),
                    "namespace": w.namespace,
                    "labels": {PROBE_LABEL: "true", "app.kubernetes.io/managed-by": "kubezt"},
                    "annotations": annotations,
                },
                "spec": {
                    "backoffLimit": 0,
                    "ttlSecondsAfterFinished": 86400,
                    "template": {
                        "metadata": {"labels": labels, "annotations": dict(w.annotations)},
                        "spec": {
                            "serviceAccountName": w.service_account,
                            "restartPolicy": "Never",
                            "containers": [
                                {
                                    "name": "probe",
                                    "image": AGNHOST,
                                    "command": ["/bin/sh", "-c", _script(mine)],
                                }
                            ],
                        },
                    },
                },
            }
        )
    return jobs


@dataclass(frozen=True, slots=True)
class Disagreement:
    id: str
    expected: str
    observed: str
    """`reached`, `blocked`, `error` (the probe could not run) or `missing` (no result)."""


OBSERVED = {"connected": "reached", "refused": "reached", "timeout": "blocked", "other": "error"}


def compare(expected: dict[str, str], results: dict[str, str]) -> tuple[list[Disagreement], int]:
    """Probes where the cluster and the prediction disagree, and how many agreed."""
    disagreements = []
    agreed = 0
    for pid, want in sorted(expected.items()):
        outcome = results.get(pid)
        observed = "missing" if outcome is None else OBSERVED.get(outcome, "error")
        if observed == want:
            agreed += 1
        else:
            disagreements.append(Disagreement(pid, want, observed))
    return disagreements, agreed
