"""Consistency of `reach` with `explain` on random clusters of both layers in the mesh:
Kubernetes and Calico policies, sidecar and ambient namespaces (with a waypoint), capture
annotations, PeerAuthentications and AuthorizationPolicies with L7 attributes. For every
ordered pair of workloads, every port the matrix considers and every witness request of the
request space of all the cluster's AuthorizationPolicies, the matrix's verdict is explain's."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import kubezt
from explainkit import reach_vs_explain_everywhere
from kubezt.ir.ports import Protocol
from meshkit import mesh_models
from strategies import probes

PROPERTY = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("mode", ["sidecar", "ambient", "mixed"])
@PROPERTY
@given(data=st.data())
def test_reach_equals_explain_for_every_pair_port_and_witness(
    mode: str, data: st.DataObject
) -> None:
    model = data.draw(mesh_models((mode,)), label="cluster")
    problems = reach_vs_explain_everywhere(model, kubezt.evaluate(model))
    assert not problems, "\n".join(problems[:10])
    port, protocol = data.draw(probes(), label="probe")
    one_port = kubezt.evaluate(model, port, Protocol(protocol))
    problems = reach_vs_explain_everywhere(model, one_port)
    assert not problems, "\n".join(problems[:10])
