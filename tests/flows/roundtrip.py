"""Learn → compile → replay, shared by the example and the property tests: the workloads an
intent describes (as Pods with addresses, or as Deployments), traffic that exercises its
grants, its egress (to outside addresses and DNS names) and the API server's calls into
webhook services, and the check that the compiled learned intent breaks nothing and grants no
caller, egress destination or webhook caller that was never seen."""

from __future__ import annotations

import ipaddress
import itertools
import shutil
from pathlib import Path
from typing import Any

import yaml

import kubezt
from flowkit import POD_SUFFIX, Pod, Traffic, outside, write_files
from intentkit import workload_objects
from kubezt.analysis.replay import replay
from kubezt.analysis.verify import verify
from kubezt.dialects.flows import FlowStats, read_flows
from kubezt.dialects.intent import parse_intent_data
from kubezt.generate import compile_intent
from kubezt.generate.intent import intent_document
from kubezt.generate.learn import Learner
from kubezt.ir.intent import Egress, Grant, Intent, Mode, ServiceRef

API_SERVER = "172.18.0.2"
"""The API server's address in the generated logs (`--api-server`)."""
HOST_ADDRESS = "93.184.215.14"
"""Where a DNS name of an egress entry resolves to in the generated logs."""


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


def outside_traffic(
    intent: Intent,
    pods: dict[tuple[str, str], Pod],
    egress: list[Egress],
    webhooks: list[tuple[ServiceRef, int]],
) -> list[Traffic]:
    """Connections to each egress entry's ports: an address in each of its CIDRs, and its
    DNS names (at `HOST_ADDRESS`); and the API server's calls to each (service, port)."""
    by_identity = {
        (s.namespace, s.service_account): pods[(s.namespace, s.name)] for s in intent.services
    }
    out: list[Traffic] = []
    t = 1_767_229_200
    for e in egress:
        src = by_identity[(e.caller.namespace, e.caller.service_account)]
        targets = [(str(next(iter(n.hosts()), n.network_address)), "") for n in e.networks]
        targets += [(HOST_ADDRESS, h) for h in e.hosts]
        for (address, host), p in itertools.product(targets, e.ports):
            t += 1
            out.append(
                Traffic(
                    src,
                    outside(address),
                    p.port,
                    p.protocol.value,
                    time=t,
                    kind="egress",
                    host=host,
                )
            )
    for ref, number in webhooks:
        t += 1
        dst = pods[(ref.namespace, ref.name)]
        service = (ref.namespace, ref.name, number)
        out.append(
            Traffic(outside(API_SERVER), dst, number, service=service, time=t, kind="webhook")
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
    egress: list[Egress] | None = None,
    webhooks: list[tuple[ServiceRef, int]] = (),  # type: ignore[assignment]
) -> None:
    """The round trip; asserts that replay finds nothing that breaks, that the learned intent
    grants only callers (identity → service) that were seen, and that the compiled learned
    intent is exactly what it grants (`verify`)."""
    objects = workload_objects(intent)
    pod_objects, pods = as_pods(objects)
    manifests = pod_objects if pods_not_deployments else objects
    grants = list(intent.grants) if grants is None else grants
    egress = list(intent.egress) if egress is None else egress
    traffic = traffic_for(intent, pods, grants)
    beyond = outside_traffic(intent, pods, egress, list(webhooks))
    traffic += beyond
    work = tmp_path / f"{fmt}-{mode.value}"
    if work.exists():
        shutil.rmtree(work)
    (work / "out").mkdir(parents=True)
    (work / "workloads.yaml").write_text(yaml.safe_dump_all(manifests, sort_keys=False), "utf-8")
    files = []
    for suffix, part in write_files(traffic, fmt, intent.trust_domain).items():
        files.append(str(work / f"flows{suffix}.log"))
        Path(files[-1]).write_text(part, "utf-8")
    model = kubezt.load([str(work / "workloads.yaml")], trust_domain=intent.trust_domain).model

    learner = Learner(model, api_server=(f"{API_SERVER}/32",))
    stats = FlowStats()
    learner.add_all(read_flows(files, stats))
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
    # Egress: only callers, ports, addresses and names that were seen.
    seen_egress = {
        (str(t.src.namespace), t.src.service_account, t.port, t.dst.ip, t.host)
        for t in beyond
        if t.kind == "egress"
    }
    for e in learned.egress:
        for p in e.ports:
            for cidr in e.cidrs:
                net = ipaddress.ip_network(cidr)
                assert net.num_addresses == 1, cidr
                assert any(
                    (e.caller.namespace, e.caller.service_account, p.port, str(net.network_address))
                    == (ns, sa, port, ip)
                    for ns, sa, port, ip, _ in seen_egress
                ), (e, seen_egress)
            for host in e.hosts:
                assert any(
                    (e.caller.namespace, e.caller.service_account, p.port, host)
                    == (ns, sa, port, h)
                    for ns, sa, port, _, h in seen_egress
                ), (e, seen_egress)
    # Webhooks: only the API server's address, to the services and ports it called.
    seen_hooks = {t.service for t in beyond if t.kind == "webhook"}
    for x in learned.exceptions:
        assert x.cidrs == (f"{API_SERVER}/32",), x
        for p in x.ports:
            assert (x.service.namespace, x.service.name, p.port) in seen_hooks, (x, seen_hooks)

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
    replayed = replay(cluster, read_flows(files, stats), api_server=(f"{API_SERVER}/32",))
    assert replayed.unresolved == 0, replayed.notes
    # Calico OSS flow logs name no address outside the cluster: those flows are not evaluated.
    unaddressed = len(beyond) if fmt == "calico" else 0
    assert replayed.skipped == unaddressed, replayed.notes
    assert replayed.evaluated == len(traffic) - unaddressed
    assert replayed.ok, [(g.src, g.dst, g.port, g.request, g.policy) for g in replayed.breaks]
