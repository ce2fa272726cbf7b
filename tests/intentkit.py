"""Helpers shared by the intent tests: the workloads an intent describes, as manifests, and
compiling + loading + verifying in one call."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import yaml

import kubezt
from kubezt.analysis.verify import VerifyResult, verify
from kubezt.generate import Compiled, compile_intent
from kubezt.ir.intent import Intent, Mode

ROOT = Path(__file__).parent.parent
EXAMPLE = ROOT / "examples" / "intent.yaml"


def _deployment(
    namespace: str,
    name: str,
    labels: dict[str, str],
    service_account: str,
    ports: list[dict[str, Any]],
    replicas: int = 1,
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    template: dict[str, Any] = {"labels": dict(labels)}
    if annotations:
        template["annotations"] = annotations
    container: dict[str, Any] = {"name": "app", "image": "example/app:1"}
    if ports:
        container["ports"] = ports
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": dict(labels)},
            "template": {
                "metadata": template,
                "spec": {"serviceAccountName": service_account, "containers": [container]},
            },
        },
    }


def workload_objects(intent: Intent, replicas: int = 1) -> list[dict[str, Any]]:
    """A Deployment and a Kubernetes Service for each service of the intent (labels, SA and
    ports as declared), plus the platform workloads it refers to: kube-dns, istiod, the
    ingress gateway and Prometheus."""
    objects: list[dict[str, Any]] = []
    for s in intent.services:
        ports = []
        for p in s.ports:
            port: dict[str, Any] = {"containerPort": p.port, "protocol": p.protocol.value}
            if p.name:
                port["name"] = p.name
            ports.append(port)
        objects.append(
            _deployment(s.namespace, s.name, dict(s.selector), s.service_account, ports, replicas)
        )
        if s.ports:
            svc_ports = []
            for p in s.ports:
                sp: dict[str, Any] = {
                    "name": f"{p.protocol.value.lower()}-{p.port}",
                    "port": p.port,
                    "targetPort": p.port,
                    "protocol": p.protocol.value,
                }
                if p.app_protocol:
                    sp["appProtocol"] = p.app_protocol
                svc_ports.append(sp)
            objects.append(
                {
                    "apiVersion": "v1",
                    "kind": "Service",
                    "metadata": {"name": s.name, "namespace": s.namespace},
                    "spec": {"selector": dict(s.selector), "ports": svc_ports},
                }
            )
    platform = intent.platform
    if platform.dns is not None:
        dns = platform.dns
        objects.append(
            _deployment(
                dns.namespace,
                "coredns",
                dict(dns.selector),
                "coredns",
                [
                    {"name": "dns", "containerPort": dns.port, "protocol": "UDP"},
                    {"name": "dns-tcp", "containerPort": dns.port, "protocol": "TCP"},
                ],
            )
        )
    istiod = platform.istiod
    objects.append(
        _deployment(
            istiod.namespace,
            "istiod",
            dict(istiod.selector),
            "istiod",
            [{"containerPort": istiod.port}, {"containerPort": 15017}],
        )
    )
    gateway = intent.gateway
    objects.append(
        _deployment(
            gateway.namespace,
            "ingress-gateway",
            {"istio": "ingressgateway"},
            gateway.service_account,
            [{"containerPort": 8080}],
            annotations={"kubezt.io/proxy": "gateway"},
        )
    )
    if platform.metrics is not None:
        scraper = platform.metrics.scraper
        objects.append(
            _deployment(
                scraper.namespace, "prometheus", {"app": "prometheus"}, scraper.service_account, []
            )
        )
    return objects


def compile_and_verify(
    tmp_path: Path, intent: Intent, mode: Mode, replicas: int = 1, **options: Any
) -> tuple[Compiled, VerifyResult]:
    compiled = compile_intent(intent, mode=mode, **options)
    out = tmp_path / f"out-{mode.value}"
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    for f in compiled.files:
        (out / f.name).write_text(yaml.safe_dump_all(f.objects, sort_keys=False), "utf-8")
    (out / "workloads.yaml").write_text(
        yaml.safe_dump_all(workload_objects(intent, replicas), sort_keys=False), "utf-8"
    )
    loaded = kubezt.load([str(out)])
    return compiled, verify(intent, loaded.model, mode)
