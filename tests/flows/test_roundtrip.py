"""Learn → compile → replay round trips.

* The bundled example (`examples/intent.yaml`): traffic exercising each of its grants, written
  in every flow format, learned into an intent, compiled in both mesh modes and loaded with the
  workloads: replay finds nothing that breaks, `verify` finds the compiled cluster equal to the
  learned intent, and the learned intent grants no caller that never called.
* The property: the same for random intents (tests/generate/test_compile_proof.py's strategy)
  and a random subset of their grants as the observed traffic, in a random format and mode.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from roundtrip import learn_compile_replay

from flowkit import FORMATS
from generate.test_compile_proof import intent_documents
from intentkit import EXAMPLE
from kubezt.dialects.intent import load_intent, parse_intent_data
from kubezt.ir.intent import Mode


@pytest.mark.parametrize("mode", list(Mode), ids=lambda m: m.value)
@pytest.mark.parametrize("fmt", FORMATS)
def test_example_round_trip(tmp_path: Path, fmt: str, mode: Mode) -> None:
    learn_compile_replay(tmp_path, load_intent(str(EXAMPLE)), fmt, mode)


@pytest.mark.parametrize("fmt", ["calico", "hubble"])
def test_example_round_trip_joins_deployments_by_pod_name(tmp_path: Path, fmt: str) -> None:
    """Calico and Hubble name pods: the manifests need only the Deployments, no addresses."""
    learn_compile_replay(
        tmp_path, load_intent(str(EXAMPLE)), fmt, Mode.SIDECAR, pods_not_deployments=False
    )


def _without_hosts(document: dict[str, Any]) -> dict[str, Any]:
    """Traffic carries no Host constraints of its own: drop the intent's host limits so every
    generated request is one the intent allows."""
    spec = document["spec"]
    for entry in spec.get("calls", []) + spec.get("ingress", {}).get("allow", []):
        http = entry.get("http")
        if http:
            http.pop("hosts", None)
            if not http:
                entry.pop("http")
    return document


@pytest.mark.slow
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    document=intent_documents(),
    fmt=st.sampled_from(FORMATS),
    mode=st.sampled_from(list(Mode)),
    data=st.data(),
)
def test_random_traffic_round_trip(
    tmp_path: Path, document: dict[str, Any], fmt: str, mode: Mode, data: st.DataObject
) -> None:
    intent = parse_intent_data(_without_hosts(document))
    grants = data.draw(
        st.lists(st.sampled_from(intent.grants), unique=True) if intent.grants else st.just([])
    )
    learn_compile_replay(tmp_path, intent, fmt, mode, grants)
