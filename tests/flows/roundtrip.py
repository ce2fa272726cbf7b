"""Learn → compile → replay, shared by the example and the property tests: the workloads an
intent describes (as Pods with addresses, or as Deployments), traffic that exercises its
grants, and the check that the compiled learned intent breaks nothing and grants no caller
that was never seen."""

from __future__ import annotations

import itertools
import shutil
from pathlib import Path
from typing import Any

import yaml

import kubezt
from flowkit import POD_SUFFIX, Pod, Traffic, write
from intentkit import workload_objects
from kubezt.analysis.replay import replay
from kubezt.analysis.verify import verify
from kubezt.dialects.flows import FlowStats, read_flows
from kubezt.dialects.intent import parse_intent_data
from kubezt.generate import compile_intent
from kubezt.generate.intent import intent_document
from kubezt.generate.learn import Learner
from kubezt.ir.intent import Grant, Intent, Mode


def as_pods(
    objects: list[dict[str, Any]],
) -> tuple[list[dict[str, Any]], dict[tuple[str, str], Pod]]:
    """Every Deployment replaced by one Pod (`<name>-<hash>-<hash>`, with `status.podIP`);
    and the pods by (namespace, deployment name)."""
    out: list[dict[str, Any]] = []
    pods: dict[tuple[str, str], Pod] = {}
    addresses = (f"10.{1 + i // 250}.{i % 250}.{7 + i % 3}" for i in itertools.count())
    for obj in objects:
        if obj["kind"] != "Deployment":
            out.append(obj)
            continue
        meta, template = obj["metadata"], obj["spec"]["template"]
        name = meta["name"] + POD_SUFFIX
        ip = next(addresses)
        out.append(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": name, "namespace": meta["namespace"], **template["metadata"]},
                "spec": template["spec"],
                "status": {"podIP": ip, "podIPs": [{"ip": ip}]},
            }
        )
        pods[(meta["namespace"], meta["name"])] = Pod(
            meta["namespace"],
            name,
            ip,
            template["spec"]["serviceAccountName"],
            tuple(sorted(template["metadata"]["labels"].items())),
        )
    return out, pods


def concrete_path(pattern: str, n: int) -> str:
    if pattern == "*":
        return f"/any/{n}"
    if pattern.startswith("*"):
        return f"/x{n}{pattern[1:]}"
    if pattern.endswith("*"):
        return f"{pattern[:-1]}item/{n}"
    return pattern


def traffic_for(
    intent: Intent, pods: dict[tuple[str, str], Pod], grants: list[Grant]
) -> list[Traffic]:
    """Flows that exercise each grant: every port, and on HTTP-limited grants one request per
    method and path pattern (hosts are left to the proxies)."""
    by_identity = {
        (s.namespace, s.service_account): pods[(s.namespace, s.name)] for s in intent.services
    }
    gateway = pods[(intent.gateway.namespace, "ingress-gateway")]
    out: list[Traffic] = []
    n = 0
    for g in grants:
        src = (
            gateway
            if g.from_gateway
            else by_identity[(g.caller.namespace, g.caller.service_account)]
        )
        dst = pods[(g.service.namespace, g.service.name)]
        for p in g.ports:
            n += 1
            service = (g.service.namespace, g.service.name, p.port)
            if not p.is_http:
                out.append(
                    Traffic(
                        src, dst, p.port, p.protocol.value, service=service, time=1_767_225_600 + n
                    )
                )
                continue
            methods = (g.http.methods if g.http and g.http.methods else ()) or ("GET",)
            paths = (g.http.paths if g.http and g.http.paths else ()) or ("/orders/42",)
            for method, path in itertools.product(methods, paths):
                n += 1
                out.append(
                    Traffic(
                        src,
                        dst,
                        p.port,
                        "TCP",
                        method,
                        concrete_path(path, n),
                        service,
                        time=1_767_225_600 + n,
                    )
                )
    return out


def learn_compile_replay(
    tmp_path: Path,
    intent: Intent,
    fmt: str,
    mode: Mode,
    grants: list[Grant] | None = None,
    *,
    pods_not_deployments: bool = True,
) -> None:
    """The round trip; asserts that replay finds nothing that breaks, that the learned intent
    grants only callers (identity → service) that were seen, and that the compiled learned
    intent is exactly what it grants (`verify`)."""
    objects = workload_objects(intent)
    pod_objects, pods = as_pods(objects)
    manifests = pod_objects if pods_not_deployments else objects
    grants = list(intent.grants) if grants is None else grants
    traffic = traffic_for(intent, pods, grants)
    work = tmp_path / f"{fmt}-{mode.value}"
    if work.exists():
        shutil.rmtree(work)
    (work / "out").mkdir(parents=True)
    (work / "workloads.yaml").write_text(yaml.safe_dump_all(manifests, sort_keys=False), "utf-8")
    flows = work / "flows.log"
    flows.write_text(write(traffic, fmt, intent.trust_domain), "utf-8")
    model = kubezt.load([str(work / "workloads.yaml")], trust_domain=intent.trust_domain).model

    learner = Learner(model)
    stats = FlowStats()
    learner.add_all(read_flows([str(flows)], stats))
    assert stats.bad == 0, stats.diagnostics
    result = learner.finish(name="learned", mode=mode, namespaces=intent.namespaces)
    assert result.unresolved == 0, result.notes
    learned = parse_intent_data(intent_document(result.intent), "<learned>")

    seen = {
        ("gateway" if g.from_gateway else str(g.caller), str(g.service)) for g in grants if g.ports
    }
    granted = {
        ("gateway" if g.from_gateway else str(g.caller), str(g.service)) for g in learned.grants
    }
    assert granted <= seen, granted - seen

    compiled = compile_intent(learned, mode=mode)
    for f in compiled.files:
        (work / "out" / f.name).write_text(yaml.safe_dump_all(f.objects, sort_keys=False), "utf-8")
    (work / "out" / "workloads.yaml").write_text(
        yaml.safe_dump_all(manifests, sort_keys=False), "utf-8"
    )
    cluster = kubezt.load([str(work / "out")], trust_domain=intent.trust_domain).model
    check = verify(learned, cluster, mode)
    assert check.ok, [d for d in check.differences]
    stats = FlowStats()
    replayed = replay(cluster, read_flows([str(flows)], stats))
    assert replayed.unresolved == 0, replayed.notes
    assert replayed.evaluated == len(traffic)
    assert replayed.ok, [(g.src, g.dst, g.port, g.request, g.policy) for g in replayed.breaks]
