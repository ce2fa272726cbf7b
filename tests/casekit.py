"""Helpers shared by the table-driven tests: turn conformance models into manifests and load
them through the real loader."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

import kubezt
from kubezt.ir.requests import HttpRequest, ServiceAddress

CASES = Path(__file__).parent / "cases"


def read_cases(folder: str, pattern: str = "*.yaml") -> list[tuple[str, dict[str, Any]]]:
    out = []
    for path in sorted((CASES / folder).glob(pattern)):
        with path.open(encoding="utf-8") as fh:
            out.append((path.stem, yaml.safe_load(fh)))
    return out


def model_objects(model: dict[str, Any], setup: dict[str, Any] | None = None) -> list[dict]:
    """Namespaces and Pods of a conformance `model` (after the phase's `setup` changes)."""
    setup = setup or {}
    ns_labels = {**model.get("namespaceLabels", {}), **setup.get("namespaceLabels", {})}
    pod_labels = {**model.get("podLabels", {}), **setup.get("podLabels", {})}
    ips = model.get("podIPs", {})
    objects: list[dict] = []
    for ns in model["namespaces"]:
        labels = ns_labels.get(ns) or {}
        objects.append(
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": labels}}
        )
    for ns in model["namespaces"]:
        for pod in model["pods"]:
            pid = f"{ns}/{pod}"
            obj: dict[str, Any] = {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": pod, "namespace": ns, "labels": pod_labels.get(pid, {})},
                "spec": {
                    "containers": [
                        {"name": "c", "image": "agnhost", "ports": model.get("containerPorts", [])}
                    ]
                },
            }
            if pid in ips:
                obj["status"] = {"podIP": ips[pid]}
            objects.append(obj)
    return objects


def load_objects(
    tmp_path: Path, objects: list[dict], name: str = "objects.yaml"
) -> kubezt.LoadResult:
    path = tmp_path / name
    path.write_text(yaml.safe_dump_all(objects, sort_keys=False), encoding="utf-8")
    return kubezt.load([str(path)])


def matrix(result: kubezt.Reachability) -> dict[str, set[str]]:
    """Source id → destination ids it may reach (on the evaluated port)."""
    out: dict[str, set[str]] = {w: set() for w in result.workload_ids}
    for src, dst, _, _ in result.connections():
        out[src].add(dst)
    return out


def end(result: kubezt.LoadResult, text: str) -> kubezt.End:
    """A request's `from`/`to`: ns/name, external:<ip>, node or kubelet-probe."""
    if text in ("node", "kubelet-probe"):
        return kubezt.End(kubezt.EndKind(text))
    if text.startswith("external:"):
        return kubezt.End(kubezt.EndKind.EXTERNAL, ip=text.removeprefix("external:"))
    workload = result.model.topology.workload(text)
    assert workload is not None, f"the case names an unknown workload {text}"
    return kubezt.End(kubezt.EndKind.WORKLOAD, workload=workload)


def http_request(request: dict[str, Any]) -> HttpRequest | None:
    http = request.get("http")
    if not http:
        return None
    return HttpRequest(
        method=http.get("method", "GET"),
        path=http.get("path", "/"),
        host=http.get("host", ""),
        headers=tuple((k, str(v)) for k, v in (http.get("headers") or {}).items()),
    )


def service_address(request: dict[str, Any]) -> ServiceAddress | None:
    """`service: ns/name:port` of a request: the client addressed that Service."""
    text = request.get("service")
    if not text:
        return None
    ns_name, _, port = text.rpartition(":")
    namespace, _, name = ns_name.partition("/")
    return ServiceAddress(namespace, name, int(port))
