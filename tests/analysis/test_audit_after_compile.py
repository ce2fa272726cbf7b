"""The bundled example intent, compiled in either mode and deployed with its workloads, audits
clean in the namespaces the intent owns; the system namespaces compile leaves to the platform
are still reported when the whole input is audited."""

from __future__ import annotations

from pathlib import Path

import pytest

import kubezt
from intentkit import compile_and_verify
from kubezt.ir.intent import Mode

EXAMPLE = Path(__file__).parents[2] / "examples" / "intent.yaml"


@pytest.mark.parametrize("mode", list(Mode), ids=lambda m: m.value)
def test_compiled_example_audits_clean_in_its_namespaces(tmp_path: Path, mode: Mode) -> None:
    intent = kubezt.load_intent(str(EXAMPLE))
    _, verified = compile_and_verify(tmp_path, intent, mode)
    assert verified.ok
    model = kubezt.load([str(tmp_path / f"out-{mode.value}")]).model
    reach = kubezt.evaluate(model)
    scoped = kubezt.audit(reach, namespaces=frozenset(intent.namespaces))
    assert scoped.findings == ()
    assert scoped.score == 100
    whole = kubezt.audit(reach)
    outside = {f.namespace for f in whole.findings} - set(intent.namespaces)
    assert all(ns is not None and ns not in intent.namespaces for ns in outside)
