"""Learn → compile → replay round trips.

* The bundled example (`examples/intent.yaml`): traffic exercising each of its grants, written
  in every flow format, learned into an intent, compiled in both mesh modes and loaded with the
  workloads: replay finds nothing that breaks, `verify` finds the compiled cluster equal to the
  learned intent, and the learned intent grants no caller that never called.
* The property: the same for random intents (tests/generate/test_compile_proof.py's strategy)
  and a random subset of their grants, of their egress entries and of webhook targets (the API
  server calling a service's port) as the observed traffic, in a random format and mode.

Egress and the API server's calls are in the traffic of both: learned egress names only
addresses and DNS names that were seen, learned exceptions only the API server's address and
the ports it called.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from roundtrip import learn_compile_replay

from flowkit import FORMATS
from intentgen import intent_documents
from intentkit import EXAMPLE
from kubezt.dialects.intent import load_intent, parse_intent_data
from kubezt.ir.intent import Egress, Identity, Mode, Port, ServiceRef

EXAMPLE_EGRESS = [
    Egress(
        entry="egress/summary",
        caller=Identity("shop", "summary"),
        ports=(Port(443),),
        cidrs=("192.0.2.0/24",),
        hosts=("api.example.com",),
    ),
    Egress(
        entry="egress/sleep",
        caller=Identity("default", "sleep"),
        ports=(Port(5432), Port(8443)),
        cidrs=("198.51.100.7/32", "2001:db8::/64"),
    ),
]
"""The example declares no egress: these are its summary's and sleep's outside calls."""
EXAMPLE_WEBHOOKS = [(ServiceRef("default", "httpbin"), 8080)]
"""...and the API server calling httpbin's port as an admission webhook."""


@pytest.mark.parametrize("mode", list(Mode), ids=lambda m: m.value)
@pytest.mark.parametrize("fmt", FORMATS)
def test_example_round_trip(tmp_path: Path, fmt: str, mode: Mode) -> None:
    learn_compile_replay(
        tmp_path,
        load_intent(str(EXAMPLE)),
        fmt,
        mode,
        egress=EXAMPLE_EGRESS,
        webhooks=EXAMPLE_WEBHOOKS,
    )


@pytest.mark.parametrize("fmt", ["calico", "hubble"])
def test_example_round_trip_joins_deployments_by_pod_name(tmp_path: Path, fmt: str) -> None:
    """Calico and Hubble name pods: the manifests need only the Deployments, no addresses."""
    learn_compile_replay(
        tmp_path, load_intent(str(EXAMPLE)), fmt, Mode.SIDECAR, pods_not_deployments=False
    )


def _without_hosts(document: dict[str, Any]) -> dict[str, Any]:
    """Traffic carries no Host constraints of its own: drop the intent's host limits so every
    generated request is one the intent allows. An entry limited by hosts alone is dropped
    whole: without its hosts it would grant every request, and might then repeat another
    entry's grant (an input error, E113)."""
    spec = document["spec"]

    def keep(entry: dict[str, Any]) -> bool:
        http = entry.get("http")
        if http:
            http.pop("hosts", None)
            return bool(http)
        return True

    spec["calls"] = [e for e in spec.get("calls", []) if keep(e)]
    if "ingress" in spec:
        spec["ingress"]["allow"] = [e for e in spec["ingress"].get("allow", []) if keep(e)]
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
    egress = data.draw(
        st.lists(st.sampled_from(intent.egress), unique=True) if intent.egress else st.just([])
    )
    targets = [
        (s.ref, p.port) for s in intent.services for p in s.ports if p.protocol.value == "TCP"
    ]
    webhooks = data.draw(
        st.lists(st.sampled_from(targets), max_size=2, unique=True) if targets else st.just([])
    )
    learn_compile_replay(tmp_path, intent, fmt, mode, grants, egress=egress, webhooks=webhooks)
