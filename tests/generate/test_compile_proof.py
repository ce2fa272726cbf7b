"""The proof: for random intents and the workloads they describe, the manifests `compile` emits
(in both modes) make the engine's connectivity equal to the intent — `verify` finds zero
differences at L3/L4, per HTTP request, and for addresses outside the cluster.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from intentgen import intent_documents
from intentkit import compile_and_verify
from kubezt.dialects.intent import parse_intent_data
from kubezt.ir.intent import Mode


@pytest.mark.slow
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(document=intent_documents(), replicas=st.sampled_from((1, 2)))
def test_compiled_manifests_allow_exactly_the_intent(
    tmp_path: Path, document: dict[str, Any], replicas: int
) -> None:
    intent = parse_intent_data(document)
    for mode in Mode:
        _, result = compile_and_verify(
            tmp_path, intent, mode, replicas=replicas, on_unsupported="warn"
        )
        assert result.ok, "\n".join(str(d) for d in result.differences)
        assert result.checked > 0


@pytest.mark.slow
@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(document=intent_documents())
def test_cluster_policy_default_deny_allows_exactly_the_intent(
    tmp_path: Path, document: dict[str, Any]
) -> None:
    """`--cluster-policy`: the default deny as a Baseline ClusterNetworkPolicy, same proof."""
    intent = parse_intent_data(document)
    for mode in Mode:
        compiled, result = compile_and_verify(
            tmp_path, intent, mode, on_unsupported="warn", cluster_policy=True
        )
        kinds = {o["kind"] for o in compiled.objects()}
        assert "ClusterNetworkPolicy" in kinds
        assert result.ok, "\n".join(str(d) for d in result.differences)
