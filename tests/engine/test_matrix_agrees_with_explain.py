"""The all-pairs matrix and the one-connection explainer must never disagree: both run the same
layers, one over classes of workloads, the other over one pair. Checked on every conformance
scenario topology, for every pair and every declared port."""

from __future__ import annotations

import dataclasses

import pytest
from test_scenarios import mesh_config, scenario_model

import kubezt
from casekit import read_cases
from kubezt.engine.requests import AllRequests, space_of
from kubezt.ir.requests import ServiceAddress

SCENARIOS = read_cases("scenarios")


def routes(model, server, port):
    out = [None]
    for svc in model.topology.services:
        if svc.selects(server):
            for sp in svc.ports:
                target = sp.target_on(server)
                if target == port:
                    out.append(ServiceAddress(svc.namespace, svc.name, sp.port))
    return out


@pytest.mark.parametrize(("name", "scenario"), SCENARIOS, ids=[n for n, _ in SCENARIOS])
def test_matrix_matches_explain_for_every_pair(name, scenario, tmp_path) -> None:
    loaded = scenario_model(scenario, tmp_path)
    model = dataclasses.replace(loaded.model, mesh_config=mesh_config(scenario))
    result = kubezt.evaluate(model)
    rows = {(s, d, p, proto): req for s, d, p, proto, req in result.detailed()}
    everything = space_of(model.mesh.authorization_policies).witnesses()
    workloads = [w for w in model.topology.workloads]
    problems = []
    for src in workloads:
        for dst in workloads:
            for cp in dst.ports:
                key = (src.id, dst.id, cp.port, cp.protocol.value)

                def verdict(http, route, src=src, dst=dst, cp=cp):
                    return kubezt.explain_connection(
                        model,
                        kubezt.End(kubezt.EndKind.WORKLOAD, workload=src),
                        kubezt.End(kubezt.EndKind.WORKLOAD, workload=dst),
                        cp.port,
                        cp.protocol,
                        service=route,
                        http=http,
                    ).allowed

                rts = routes(model, dst, cp.port)
                if key not in rows:
                    for http in [None, *everything]:
                        if any(verdict(http, r) for r in rts):
                            problems.append(f"{key}: matrix denies, explain allows {http}")
                            break
                elif isinstance(rows[key], AllRequests):
                    if not any(verdict(None, r) for r in rts) and not all(
                        any(verdict(h, r) for r in rts) for h in everything
                    ):
                        problems.append(f"{key}: matrix allows all requests, explain denies")
                else:
                    for http in rows[key].passing:
                        if not any(verdict(http, r) for r in rts):
                            problems.append(f"{key}: matrix allows {http}, explain denies")
    assert not problems, "\n".join(problems[:20])
