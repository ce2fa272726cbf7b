"""Large inputs are parsed by worker processes; the result, and every location reported, must
be the same as when the files are read one by one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import kubezt
from kubezt.dialects import registry

POD = """\
---
apiVersion: v1
kind: Pod
metadata:
  name: {name}
  namespace: {ns}
  labels: {{app: {name}}}
spec:
  containers:
  - name: c
    image: app
    ports: [{{containerPort: {port}, name: http}}]
"""
POLICY = """\
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow, namespace: ns0}
spec:
  podSelector: {}
  ingress:
  - from:
    - podSelector: {matchLabels: {app: p1}}
"""


def write_cluster(root: Path, bad_port: bool = False) -> None:
    for n in range(3):
        text = "".join(POD.format(name=f"p{i}", ns=f"ns{n}", port=8080) for i in range(4))
        if bad_port and n == 2:
            text += POD.format(name="bad", ns="ns2", port=70000)
        (root / f"ns{n}.yaml").write_text(text + (POLICY if n == 0 else ""), encoding="utf-8")


def load_both(root: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(registry, "PARALLEL_BYTES", 1 << 40)
    one_by_one = kubezt.load([str(root)])
    monkeypatch.setattr(registry, "PARALLEL_BYTES", 0)
    parallel = kubezt.load([str(root)])
    return one_by_one, parallel


def test_parallel_parsing_gives_the_same_model(tmp_path: Path, monkeypatch) -> None:
    write_cluster(tmp_path)
    a, b = load_both(tmp_path, monkeypatch)
    assert a.model.topology.workloads == b.model.topology.workloads
    assert a.model.policies == b.model.policies
    origins_a = [r.origin.location for p in a.model.policies.policies for r in p.ingress]
    origins_b = [r.origin.location for p in b.model.policies.policies for r in p.ingress]
    assert origins_a == origins_b
    sources = [w.source.location for w in b.model.topology.workloads]
    assert sources == [w.source.location for w in a.model.topology.workloads]


def test_parallel_parsing_reports_errors_at_the_same_place(tmp_path: Path, monkeypatch) -> None:
    write_cluster(tmp_path, bad_port=True)
    errors = []
    for threshold in (1 << 40, 0):
        monkeypatch.setattr(registry, "PARALLEL_BYTES", threshold)
        with pytest.raises(kubezt.InputError) as info:
            kubezt.load([str(tmp_path)])
        errors.append([d.render() for d in info.value.diagnostics])
    assert errors[0] == errors[1]
    assert "ns2.yaml:" in errors[0][0] and "containerPort" in errors[0][0]


def test_json_files_are_read_in_one_process(tmp_path: Path, monkeypatch) -> None:
    """Decoding JSON costs less than sending its documents back from a worker."""
    write_cluster(tmp_path)
    for path in sorted(tmp_path.glob("*.yaml")):
        docs = [d.data for d in registry.parse_paths([str(path)], registry.DiagnosticSink())[0]]
        text = json.dumps({"apiVersion": "v1", "kind": "List", "items": docs})
        path.with_suffix(".json").write_text(text, encoding="utf-8")
        path.unlink()

    def no_workers(*args: object, **kwargs: object) -> None:
        raise AssertionError("JSON input was sent to worker processes")

    monkeypatch.setattr(registry, "PARALLEL_BYTES", 0)
    monkeypatch.setattr(registry.concurrent.futures, "ProcessPoolExecutor", no_workers)
    result = kubezt.load([str(tmp_path)])
    assert len(result.model.topology.workloads) == 12
