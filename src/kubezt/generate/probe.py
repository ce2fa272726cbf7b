"""Probe plan: Kubernetes Jobs that test the predicted connectivity matrix on a real cluster,
as the upstream network-policy e2e suite and Cyclonus do, with agnhost.

One Indexed Job per source workload, in its namespace, whose pods carry the source's labels,
annotations and ServiceAccount (so every policy treats them as the source, and Istio injects
the sidecar the source has), with one completion index per probe. A readiness gate that
nothing sets keeps the probe pods out of the Services that select the source. Index `i` probes one
destination port through a Service that selects the destination, prints one line

    kubezt-probe <id> <outcome>

and exits 0 when the destination was reached, 1 when it was blocked, 3 when the probe could
not run (a pod failure policy then fails the Job). So the Job's own status says what
happened: `status.completedIndexes` are the reached probes and `status.failedIndexes` the
blocked ones, which `kubectl get jobs -o json` shows without reading any log.

`id` is `SRC>DST:PORT/PROTOCOL`. How a probe connects depends on the path:

* neither end in the mesh: agnhost's `connect`; outcome `connected`, `refused` (the SYN
  reached the destination host, so the network let it through), `timeout` (dropped) or
  `other` (DNS failure, bad address: the probe said nothing);
* the source has a sidecar or ambient capture, or the destination is in the mesh: a TCP
  handshake then completes at a proxy whatever the policies decide, so the probe sends an HTTP
  request (`curl http://ADDRESS/`) through the source's own capture, where mTLS and
  AuthorizationPolicy apply: `responded` (any answer from the destination), `refused`,
  `denied` (403 `RBAC: access denied`), `reset` (a proxy's 503 local reply, or the connection
  reset: mTLS or a policy refused it), `timeout` or `other`. Ports Istio treats as TCP cannot
  be told apart this way, and pairs where only some HTTP requests pass depend on the request;
  both are listed as unprobed with the reason.

A source with a sidecar gets `sidecar.istio.io/nativeSidecar: "true"` (the Job then ends when
the probe does); the probe also waits for the proxy to be ready and, for a classic sidecar,
asks it to quit when done (`POST :15020/quitquitquit`).

The Job's annotation `kubezt.io/expected` holds every probe in index order with its predicted
result (`reached` / `blocked`); `kubezt.io/unprobed` lists what could not be probed.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kubezt.engine.connection import is_single_pod
from kubezt.engine.mesh import mesh_mode, port_protocol
from kubezt.engine.reach import AllowedConnection
from kubezt.engine.requests import AllRequests, RequestSet
from kubezt.ir.model import Model
from kubezt.ir.topology import MeshMode, Service, Workload

AGNHOST = "registry.k8s.io/e2e-test-images/agnhost:2.53"
EXPECTED = "kubezt.io/expected"
UNPROBED = "kubezt.io/unprobed"
SOURCE = "kubezt.io/probe-source"
PROBE_LABEL = "kubezt.io/probe"
NATIVE_SIDECAR = "sidecar.istio.io/nativeSidecar"
TIMEOUT_SECONDS = 2
PARALLELISM = 4
EXIT_REACHED, EXIT_BLOCKED, EXIT_ERROR = 0, 1, 3

UNPROBED_NO_SERVICE = "no Service exposes the port"
UNPROBED_MESH_TCP = (
    "Istio treats the port as TCP: a connection through a proxy completes whatever the "
    "policies decide"
)
UNPROBED_PER_REQUEST = "only some HTTP requests pass: one request cannot test the prediction"
UNPROBED_SELF = (
    "a single pod reaching itself never leaves the pod; a probe pod would be a second one"
)
READY_GATE = "kubezt.io/probe-never-ready"
"""A readiness gate nothing sets: probe pods carry the source's labels but never become
endpoints of the Services that select the source."""


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
    method: str = "connect"
    """`connect` (agnhost, TCP/UDP/SCTP handshake) or `http` (curl through the mesh)."""


@dataclass(frozen=True, slots=True)
class Unprobed:
    id: str
    source: str
    reason: str


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


def mesh_modes(model: Model) -> dict[str, MeshMode]:
    topology = model.topology
    return {
        w.id: mesh_mode(w, topology.namespace(w.namespace), model.mesh) for w in topology.workloads
    }


def plan_probes(
    model: Model, allowed: Iterable[AllowedConnection]
) -> tuple[list[Probe], list[Unprobed]]:
    """Every (source, destination, declared port) probe with its prediction, and what cannot
    be probed with the reason."""
    reached: dict[tuple[str, str, int, str], RequestSet] = {
        (a.src, a.dst, a.port, a.protocol): a.requests for a in allowed
    }
    workloads = [w for w in model.topology.workloads if not w.host_network]
    services = model.topology.services
    modes = mesh_modes(model)
    probes: list[Probe] = []
    unprobed: list[Unprobed] = []
    for src in workloads:
        for dst in workloads:
            meshed = modes[src.id] is not MeshMode.NONE or modes[dst.id] is not MeshMode.NONE
            for cp in dst.ports:
                key = (src.id, dst.id, cp.port, cp.protocol.value)
                pid = probe_id(*key)
                address = _service_address(services, dst, cp.port, cp.protocol.value)
                reason = ""
                if not address:
                    reason = UNPROBED_NO_SERVICE
                elif src is dst and is_single_pod(src):
                    reason = UNPROBED_SELF
                elif meshed and port_protocol(services, dst, cp.port, cp.protocol) == "tcp":
                    reason = UNPROBED_MESH_TCP
                elif meshed and key in reached and not isinstance(reached[key], AllRequests):
                    reason = UNPROBED_PER_REQUEST
                if reason:
                    unprobed.append(Unprobed(pid, src.id, reason))
                    continue
                probes.append(
                    Probe(
                        pid,
                        src.id,
                        dst.id,
                        cp.port,
                        cp.protocol.value,
                        address,
                        "reached" if key in reached else "blocked",
                        "http" if meshed else "connect",
                    )
                )
    return probes, unprobed


_CONNECT = (
    "if r=$(/agnhost connect {address} --timeout={timeout}s --protocol={protocol} 2>&1); "
    'then o=connected; else case "$r" in *REFUSED*) o=refused;; *TIMEOUT*) o=timeout;; '
    "*) o=other;; esac; fi"
)
_HTTP = (
    "c=$(curl -sS -o /tmp/body -w '%{{http_code}}' --max-time {timeout} http://{address}/ "
    "2>/dev/null); x=$?; case $x in 0) "
    "if [ \"$c\" = 403 ] && grep -q 'RBAC: access denied' /tmp/body; then o=denied; "
    "elif [ \"$c\" = 503 ] && grep -q 'upstream connect error or disconnect/reset' /tmp/body; "
    "then o=reset; else o=responded; fi;; 7) o=refused;; 28) o=timeout;; 52|56) o=reset;; "
    "*) o=other;; esac"
)
_WAIT_FOR_PROXY = (
    "i=0; until curl -fsS -o /dev/null http://127.0.0.1:15021/healthz/ready 2>/dev/null; do "
    "i=$((i+1)); [ $i -ge 60 ] && break; sleep 1; done"
)
_QUIT_PROXY = "curl -fsS -o /dev/null -X POST http://127.0.0.1:15020/quitquitquit 2>/dev/null"


def _script(probes: Sequence[Probe], sidecar: bool) -> str:
    """Run the probe of completion index $JOB_COMPLETION_INDEX, print its line, exit with the
    outcome's code."""
    lines = ["set -u", 'case "$JOB_COMPLETION_INDEX" in']
    for i, p in enumerate(probes):
        template = _HTTP if p.method == "http" else _CONNECT
        command = template.format(
            address=p.address, timeout=TIMEOUT_SECONDS, protocol=p.protocol.lower()
        )
        lines.append(f"{i}) id='{p.id}'; probe() {{ {command}; }};;")
    lines.append("*) echo \"kubezt-probe: no probe at index $JOB_COMPLETION_INDEX\"; "
                 f"exit {EXIT_ERROR};;")  # fmt: skip
    lines.append("esac")
    if sidecar:
        lines.append(_WAIT_FOR_PROXY)
    lines.append("probe")
    lines.append('echo "kubezt-probe $id $o"')
    if sidecar:
        lines.append(_QUIT_PROXY)
    lines.append(
        f"case $o in connected|refused|responded) exit {EXIT_REACHED};; "
        f"timeout|denied|reset) exit {EXIT_BLOCKED};; *) exit {EXIT_ERROR};; esac"
    )
    return "\n".join(lines) + "\n"


def job_name(source: str) -> str:
    digest = hashlib.sha256(source.encode()).hexdigest()[:10]
    stem = source.split("/", 1)[1][:40].strip("-.")
    return f"kubezt-probe-{stem}-{digest}"


def probe_jobs(
    model: Model, probes: list[Probe], unprobed: list[Unprobed], parallelism: int = PARALLELISM
) -> list[dict[str, Any]]:
    """One Indexed Job per source with its probes (sources with nothing to probe get none)."""
    by_source: dict[str, list[Probe]] = {}
    for p in probes:
        by_source.setdefault(p.source, []).append(p)
    skipped: dict[str, list[dict[str, str]]] = {}
    for u in unprobed:
        skipped.setdefault(u.source, []).append({"id": u.id, "reason": u.reason})
    modes = mesh_modes(model)
    jobs = []
    for w in model.topology.workloads:
        mine = by_source.get(w.id)
        if not mine:
            continue
        annotations = {
            SOURCE: w.id,
            EXPECTED: json.dumps(
                [
                    {"index": i, "id": p.id, "address": p.address, "expected": p.expected}
                    for i, p in enumerate(mine)
                ],
                separators=(",", ":"),
            ),
        }
        if w.id in skipped:
            annotations[UNPROBED] = json.dumps(skipped[w.id], separators=(",", ":"))
        sidecar = modes[w.id] is MeshMode.SIDECAR
        labels = {**dict(w.labels), PROBE_LABEL: "true"}
        pod_annotations = dict(w.annotations)
        if sidecar:
            pod_annotations[NATIVE_SIDECAR] = "true"
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
                    "completionMode": "Indexed",
                    "completions": len(mine),
                    "parallelism": min(parallelism, len(mine)),
                    "backoffLimitPerIndex": 0,
                    "podFailurePolicy": {
                        "rules": [
                            {
                                "action": "Ignore",
                                "onPodConditions": [{"type": "DisruptionTarget"}],
                            },
                            {
                                "action": "FailJob",
                                "onExitCodes": {
                                    "containerName": "probe",
                                    "operator": "In",
                                    "values": [EXIT_ERROR],
                                },
                            },
                        ]
                    },
                    "ttlSecondsAfterFinished": 86400,
                    "template": {
                        "metadata": {"labels": labels, "annotations": pod_annotations},
                        "spec": {
                            "serviceAccountName": w.service_account,
                            "restartPolicy": "Never",
                            "readinessGates": [{"conditionType": READY_GATE}],
                            "containers": [
                                {
                                    "name": "probe",
                                    "image": AGNHOST,
                                    "command": ["/bin/sh", "-c", _script(mine, sidecar)],
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


OBSERVED = {
    "connected": "reached",
    "refused": "reached",
    "responded": "reached",
    "timeout": "blocked",
    "denied": "blocked",
    "reset": "blocked",
    "other": "error",
    # from a Job's status
    "reached": "reached",
    "blocked": "blocked",
    "error": "error",
}
OUTCOMES = tuple(o for o in OBSERVED if o not in ("reached", "blocked", "error"))
"""What a probe's log line can say."""


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


class JobStatusError(ValueError):
    """A Job object that does not have the shape `kubectl get jobs -o json` gives."""


_INDEXES = re.compile(r"^(\d+(-\d+)?)(,\d+(-\d+)?)*$")
_FAILED_POD = re.compile(r"for pod [^/\s]+/(\S+) failed with exit code (\d+)")
_INDEX_IN_POD_NAME = re.compile(r"-(\d+)-[a-z0-9]{5}$")


def parse_indexes(text: str) -> set[int]:
    """`1,3-5,7` (the Job controller's interval list) as a set."""
    if not text:
        return set()
    if not _INDEXES.match(text):
        raise JobStatusError(f"expected an index list like 1,3-5, got {text!r}")
    found: set[int] = set()
    for part in text.split(","):
        first, _, last = part.partition("-")
        found.update(range(int(first), int(last or first) + 1))
    return found


def _failed_by_policy(status: Mapping[str, Any]) -> tuple[bool, set[int]]:
    """Whether the pod failure policy failed the Job (a probe could not run), and the
    completion indexes its conditions name."""
    failed = False
    named: set[int] = set()
    for condition in status.get("conditions") or ():
        if not isinstance(condition, Mapping) or condition.get("reason") != "PodFailurePolicy":
            continue
        failed = True
        match = _FAILED_POD.search(str(condition.get("message") or ""))
        if match and int(match.group(2)) == EXIT_ERROR:
            index = _INDEX_IN_POD_NAME.search(match.group(1))
            if index:
                named.add(int(index.group(1)))
    return failed, named


def observed_from_jobs(jobs: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """Each probe's outcome from its Job's status: a completed index reached its destination, a
    failed index was blocked. A probe that could not run fails its Job through the pod failure
    policy; its index is read from the condition's message, and when the message does not name
    it every failed index of that Job counts as `error` (never as `blocked`). Probes of indexes
    the Job has not finished are absent."""
    observed: dict[str, str] = {}
    for job in jobs:
        if not isinstance(job, Mapping) or job.get("kind", "Job") != "Job":
            raise JobStatusError(f"expected a Job, got {_describe(job)}")
        metadata = job.get("metadata") or {}
        notes = (metadata.get("annotations") or {}).get(EXPECTED)
        if not notes:
            continue
        name = f"{metadata.get('namespace', '')}/{metadata.get('name', '')}"
        try:
            entries = json.loads(notes)
        except ValueError as exc:
            raise JobStatusError(f"Job {name}: annotation {EXPECTED}: not JSON: {exc}") from None
        status = job.get("status") or {}
        try:
            completed = parse_indexes(str(status.get("completedIndexes") or ""))
            failed = parse_indexes(str(status.get("failedIndexes") or ""))
        except JobStatusError as exc:
            raise JobStatusError(f"Job {name}: status: {exc}") from None
        by_policy, errored = _failed_by_policy(status)
        if by_policy and not errored:
            errored = failed
        for position, entry in enumerate(entries):
            index = int(entry.get("index", position))
            if index in errored:
                observed[entry["id"]] = "error"
            elif index in completed:
                observed[entry["id"]] = "reached"
            elif index in failed:
                observed[entry["id"]] = "blocked"
    return observed


def jobs_in(document: Any) -> list[Mapping[str, Any]] | None:
    """The Jobs of a `kubectl get jobs -o json|yaml` document (a List or JobList, or one
    Job), or None when the document is not one."""
    if not isinstance(document, Mapping):
        return None
    kind = document.get("kind")
    if kind == "Job":
        return [document]
    if kind in ("List", "JobList") and isinstance(document.get("items"), list):
        return list(document["items"])
    return None


def _describe(obj: Any) -> str:
    if isinstance(obj, Mapping):
        return f"kind {obj.get('kind')!r}"
    return type(obj).__name__
