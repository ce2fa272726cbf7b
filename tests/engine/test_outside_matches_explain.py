"""The outside cells, decided as bitsets (`engine.outside`: every cell a peer of the class
index, L3/L4 by `engine.l4.decide`, the mesh by `engine.mesh_sets` over the cells as plaintext
callers), never disagree with the one-connection explainer asked about each cell's
representative address and each port cell's representative port: for every workload, outside
cell, port cell and direction (`tests/explainkit.outside_vs_explain`).

* L3/L4: random Kubernetes and Calico policies with ipBlock cidr/except, nets/notNets, network
  sets, port ranges and named ports;
* the mesh: sidecar and ambient namespaces with random AuthorizationPolicies (ipBlocks,
  remoteIpBlocks, `source.ip`, principals, L7 items) and PeerAuthentication modes — an outside
  caller speaks plaintext without a principal.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from test_authz_sets import _with_mesh, base_model, mesh_policies
from test_properties import load_model, with_calico

from explainkit import outside_vs_explain
from kubezt.engine.outside import evaluate_outside
from strategies import MixedCluster, mixed_clusters


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mixed=mixed_clusters())
def test_outside_cells_agree_with_explain_at_l3_l4(mixed: MixedCluster) -> None:
    model = with_calico(load_model(mixed.cluster.objects), mixed)
    problems = outside_vs_explain(model, evaluate_outside(model))
    assert not problems, "\n".join(problems[:20])


@pytest.mark.parametrize("mode", ["sidecar", "ambient"])
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(drawn=mesh_policies())
def test_outside_cells_agree_with_explain_in_the_mesh(mode, drawn, tmp_path_factory) -> None:
    policies, modes, config = drawn
    model = _with_mesh(base_model(mode, tmp_path_factory.mktemp(mode)), policies, modes, config)
    problems = outside_vs_explain(model, evaluate_outside(model))
    assert not problems, "\n".join(problems[:20])
