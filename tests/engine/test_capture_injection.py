"""Sidecar injection and traffic capture, from the case tables in tests/cases/mesh (each names
the upstream source it was derived from)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from kubezt.engine import capture
from kubezt.engine.mesh import sidecar_injected
from kubezt.ir.topology import Labels, Namespace, Workload
from kubezt.report.steps import message_text

CASES = Path(__file__).parent.parent / "cases" / "mesh"


def _cases(name: str) -> list[dict[str, Any]]:
    return yaml.safe_load((CASES / name).read_text())["cases"]


def _workload(case: dict[str, Any]) -> Workload:
    return Workload(
        namespace=case.get("namespace_name", "app"),
        name="w",
        kind="Pod",
        labels=Labels(case.get("labels", {})),
        annotations=Labels(case.get("annotations", {})),
        host_network=case.get("host_network", False),
    )


@pytest.mark.parametrize("case", _cases("injection.yaml"), ids=lambda c: c["name"])
def test_injection_follows_the_webhooks(case: dict[str, Any]) -> None:
    w = _workload(case)
    ns = Namespace(w.namespace, Labels(case["namespace"]))
    assert sidecar_injected(w, ns) is case["injected"], case["why"]


@pytest.mark.parametrize("case", _cases("capture.yaml"), ids=lambda c: c["name"])
def test_capture_annotations(case: dict[str, Any]) -> None:
    w = _workload(case)
    if case["direction"] == "inbound":
        result = capture.inbound(w, case["port"])
    elif case["direction"] == "outbound":
        result = capture.outbound(w, case["port"], case["ip"])
    else:
        result = capture.ztunnel_inbound(w)
    assert result.captured is case["captured"]
    assert result.captured or (result.why is not None and message_text(result.why))
