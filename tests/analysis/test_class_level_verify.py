"""`verify` compares the cluster with the intent per pair of classes and expands to workload
pairs only where they differ. The property: for random intents, their workloads (one or two
replicas, so some workloads share a class) and the compiled manifests with a random part of
them left out (so that some granted flows are blocked and some others open), the result equals
the pair-by-pair comparison: the same differences, notes and count of checked connections."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import kubezt
from intentgen import intent_documents
from intentkit import workload_objects
from kubezt.analysis import verify as verify_module
from kubezt.analysis.verify import VerifyResult, verify
from kubezt.dialects.intent import parse_intent_data
from kubezt.engine.connection import is_single_pod
from kubezt.engine.reach import evaluate
from kubezt.engine.requests import NONE, RequestSet
from kubezt.generate import compile_intent
from kubezt.ir.intent import Mode


class _PairByPair(verify_module._Verifier):
    """`_Verifier` comparing every pair of workloads one by one."""

    def _matrix(self) -> None:
        result = evaluate(self.model, cuts=self._cuts())
        planned: set[tuple[str, int, str]] = set()
        self._collect(result, planned)
        actual: dict[tuple[str, str, int, str], RequestSet] = {}
        for src, dst, port, proto, requests in result.detailed():
            actual.setdefault((src, dst, port, proto), requests)
        everyone = list(self.by_id.values())
        scoped = [w for w in everyone if w.id in self.in_scope]
        for dst_id, port, proto in sorted(planned):
            dst = self.by_id.get(dst_id)
            if dst is None:
                continue
            cell = result.port_cell(dst_id, port, proto)
            for src in everyone if dst.id in self.in_scope else scoped:
                if src.id == dst.id and is_single_pod(src):
                    continue
                protocol = verify_module.Protocol(proto)
                expected = self.expect(src, dst, port, protocol)
                got = actual.get((src.id, dst.id, port, proto), NONE)
                self.checked += 1
                self._compare(src, dst, port, protocol, expected, got, cell)


def pair_by_pair(intent: Any, model: Any, mode: Mode) -> VerifyResult:
    intent = dataclasses.replace(intent, mode=mode)
    config = dataclasses.replace(
        model.mesh_config, root_namespace=intent.root_namespace, trust_domain=intent.trust_domain
    )
    return _PairByPair(intent, dataclasses.replace(model, mesh_config=config)).run()


@pytest.mark.slow
@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    document=intent_documents(),
    replicas=st.sampled_from((1, 2)),
    mode=st.sampled_from(list(Mode)),
    dropped=st.sets(st.integers(0, 15), max_size=8),
)
def test_class_level_verify_equals_the_pair_by_pair_comparison(
    tmp_path: Path, document: dict[str, Any], replicas: int, mode: Mode, dropped: set[int]
) -> None:
    intent = parse_intent_data(document)
    compiled = compile_intent(intent, mode=mode, on_unsupported="warn")
    objects = [o for o in compiled.objects() if o.get("kind") != "Namespace"]
    droppable = ("NetworkPolicy", "GlobalNetworkPolicy", "AuthorizationPolicy")
    kept = [o for i, o in enumerate(objects) if i not in dropped or o["kind"] not in droppable]
    out = tmp_path / "out"
    if out.exists():
        shutil.rmtree(out)
    out.mkdir()
    namespaces = [o for o in compiled.objects() if o.get("kind") == "Namespace"]
    (out / "cluster.yaml").write_text(
        yaml.safe_dump_all(namespaces + kept + workload_objects(intent, replicas)), "utf-8"
    )
    model = kubezt.load([str(out)]).model
    fast, slow = verify(intent, model, mode), pair_by_pair(intent, model, mode)
    assert fast.checked == slow.checked
    assert fast.differences == slow.differences
    assert fast.notes == slow.notes
