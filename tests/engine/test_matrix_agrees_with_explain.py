"""The all-pairs matrix and the one-connection explainer must never disagree: both run the same
layers, one over classes of workloads, the other over one pair. Checked on every conformance
scenario topology, for every pair and every declared port."""

from __future__ import annotations

import dataclasses

import pytest
from test_scenarios import mesh_config, scenario_model

import kubezt
from casekit import read_cases
from explainkit import matrix_vs_explain, request_rows

SCENARIOS = read_cases("scenarios")


@pytest.mark.parametrize(("name", "scenario"), SCENARIOS, ids=[n for n, _ in SCENARIOS])
def test_matrix_matches_explain_for_every_pair(name, scenario, tmp_path) -> None:
    loaded = scenario_model(scenario, tmp_path)
    model = dataclasses.replace(loaded.model, mesh_config=mesh_config(scenario))
    problems = matrix_vs_explain(model, request_rows(kubezt.evaluate(model)))
    assert not problems, "\n".join(problems[:20])
