"""Properties of the L3/L4 evaluator on small random clusters: it agrees with the per-pod
oracle (`kubezt.engine.reference`), allow rules only add reachability, a pod isolated by a
rule-less policy admits nothing, and the result does not depend on input order."""

from __future__ import annotations

import dataclasses
import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import kubezt
from kubezt import evaluate
from kubezt.engine.reference import reference_connections
from kubezt.ir.model import Model
from kubezt.ir.policy import Action, Direction, PolicySet
from kubezt.ir.ports import Protocol
from strategies import (
    POD_LABELS,
    Cluster,
    MixedCluster,
    calico_rules,
    k8s_clusters,
    k8s_rules,
    label_selectors,
    mixed_clusters,
    probes,
)

PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
LIGHT = settings(PROPERTY, max_examples=100)
"""For properties that run twice (parametrized) or that other properties mostly cover."""


def load_model(objects: list[dict[str, Any]]) -> Model:
    """Load manifests through the real loader (JSON documents are YAML, and quick to write)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "objects.yaml"
        path.write_text("\n---\n".join(json.dumps(o) for o in objects), encoding="utf-8")
        return kubezt.load([str(path)]).model


def with_calico(model: Model, mixed: MixedCluster) -> Model:
    policies = PolicySet(
        policies=(*model.policies.policies, *mixed.policies),
        tiers=(*model.policies.tiers, *mixed.tiers),
        network_sets=(*model.policies.network_sets, *mixed.network_sets),
    )
    return dataclasses.replace(model, policies=policies)


def engine_connections(
    model: Model, port: int | None = None, protocol: Protocol = Protocol.TCP
) -> set[tuple[str, str, int, str]]:
    return set(evaluate(model, port, protocol).connections())


def assert_agrees_with_reference(
    model: Model, port: int | None = None, protocol: Protocol = Protocol.TCP
) -> None:
    fast = engine_connections(model, port, protocol)
    slow = reference_connections(model, port, protocol)
    assert fast == slow, (
        f"engine only: {sorted(fast - slow)}\nreference only: {sorted(slow - fast)}"
    )


# --- (a), (b) the engine agrees with the oracle -------------------------------------------------


@PROPERTY
@given(cluster=k8s_clusters(1, 4), probe=probes())
def test_engine_matches_reference_on_k8s_policies(cluster: Cluster, probe: tuple[int, str]) -> None:
    model = load_model(cluster.objects)
    assert_agrees_with_reference(model)
    assert_agrees_with_reference(model, probe[0], Protocol(probe[1]))


@PROPERTY
@given(mixed=mixed_clusters(), probe=probes())
def test_engine_matches_reference_with_calico_policies(
    mixed: MixedCluster, probe: tuple[int, str]
) -> None:
    model = with_calico(load_model(mixed.cluster.objects), mixed)
    assert_agrees_with_reference(model)
    assert_agrees_with_reference(model, probe[0], Protocol(probe[1]))


# --- (c) allow rules are monotone -------------------------------------------------------------


@PROPERTY
@given(cluster=k8s_clusters(min_policies=1), data=st.data())
def test_adding_a_rule_to_a_k8s_policy_never_removes_a_connection(
    cluster: Cluster, data: st.DataObject
) -> None:
    index = data.draw(st.integers(0, len(cluster.policies) - 1), label="policy")
    policy = cluster.policies[index]
    spec = policy["spec"]
    direction = data.draw(st.sampled_from(("ingress", "egress")), label="direction")
    if direction == "egress" and not spec.get("policyTypes") and not spec.get("egress"):
        # Without policyTypes a first egress rule also turns on egress isolation (§1.2):
        # that is a different policy, not an added rule.
        direction = "ingress"
    peers_field = "from" if direction == "ingress" else "to"
    rule = data.draw(k8s_rules(peers_field), label="added rule")
    grown_spec = {**spec, direction: [*(spec.get(direction) or []), rule]}
    grown = [*cluster.policies]
    grown[index] = {**policy, "spec": grown_spec}
    probe = data.draw(probes(), label="probe")
    before = load_model(cluster.objects)
    after = load_model([*cluster.topology, *grown])
    for port, protocol in ((None, Protocol.TCP), (probe[0], Protocol(probe[1]))):
        lost = engine_connections(before, port, protocol) - engine_connections(
            after, port, protocol
        )
        assert not lost, f"adding {rule} to {direction} of {policy['metadata']} removed {lost}"


@LIGHT
@given(mixed=mixed_clusters(), data=st.data())
def test_adding_an_allow_rule_to_any_policy_never_removes_a_connection(
    mixed: MixedCluster, data: st.DataObject
) -> None:
    base = with_calico(load_model(mixed.cluster.objects), mixed)
    policies = base.policies.policies
    index = data.draw(st.integers(0, len(policies) - 1), label="policy")
    policy = policies[index]
    rule = data.draw(calico_rules(policy.namespace is not None), label="rule")
    rule = dataclasses.replace(rule, action=Action.ALLOW)
    direction = data.draw(st.sampled_from(tuple(policy.types) or (Direction.INGRESS,)))
    rules = list(policy.rules(direction))
    rules.insert(data.draw(st.integers(0, len(rules)), label="position"), rule)
    field = "ingress" if direction is Direction.INGRESS else "egress"
    grown = dataclasses.replace(policy, **{field: tuple(rules)})
    after = dataclasses.replace(
        base,
        policies=dataclasses.replace(
            base.policies, policies=(*policies[:index], grown, *policies[index + 1 :])
        ),
    )
    lost = engine_connections(base) - engine_connections(after)
    assert not lost, f"adding {rule} to {policy.ref} {direction.value} removed {lost}"


# --- (d) a selected pod without matching rule admits nothing ---------------------------------


@LIGHT
@pytest.mark.parametrize("direction", ["ingress", "egress"])
@given(cluster=k8s_clusters(), data=st.data())
def test_pod_selected_by_policy_without_rules_is_isolated(
    direction: str, cluster: Cluster, data: st.DataObject
) -> None:
    namespace = data.draw(st.sampled_from(cluster.namespaces), label="namespace")
    policy_type = "Ingress" if direction == "ingress" else "Egress"
    # No policy of the namespace keeps a rule for the direction, so nothing can re-open it.
    policies = []
    for policy in cluster.policies:
        if policy["metadata"]["namespace"] == namespace:
            spec = {k: v for k, v in policy["spec"].items() if k != direction}
            if direction == "egress" and "policyTypes" not in spec and policy["spec"].get("egress"):
                spec["policyTypes"] = ["Ingress", "Egress"]  # keep its egress isolation
            policy = {**policy, "spec": spec}
        policies.append(policy)
    isolating_spec: dict[str, Any] = {"podSelector": data.draw(label_selectors(POD_LABELS))}
    if direction == "egress" or data.draw(st.booleans(), label="explicit policyTypes"):
        isolating_spec["policyTypes"] = [policy_type]
    policies.append(
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "isolate", "namespace": namespace},
            "spec": isolating_spec,
        }
    )
    model = load_model([*cluster.topology, *policies])
    isolating = next(p for p in model.policies.policies if p.name == "isolate")
    assert isolating.selector is not None
    isolated = {
        w.id
        for w in model.topology.workloads
        if w.namespace == namespace and not w.host_network and isolating.selector.matches(w.labels)
    }
    single = {w.id for w in model.topology.workloads if w.kind == "Pod" or w.replicas <= 1}
    probe = data.draw(probes(), label="probe")
    for port, protocol in ((None, Protocol.TCP), (probe[0], Protocol(probe[1]))):
        for src, dst, p, proto in evaluate(model, port, protocol).connections():
            pod, other = (dst, src) if direction == "ingress" else (src, dst)
            if pod in isolated:
                assert pod == other and pod in single, f"{src} -> {dst} {p}/{proto}"


# --- (e) determinism and input order ------------------------------------------------------------


@LIGHT
@given(mixed=mixed_clusters(), data=st.data())
def test_evaluation_is_deterministic_and_independent_of_input_order(
    mixed: MixedCluster, data: st.DataObject
) -> None:
    model = with_calico(load_model(mixed.cluster.objects), mixed)
    shuffled_objects = data.draw(st.permutations(mixed.cluster.objects), label="documents")
    shuffled = MixedCluster(
        dataclasses.replace(mixed.cluster, topology=shuffled_objects, policies=[]),
        tuple(data.draw(st.permutations(mixed.policies), label="calico policies")),
        tuple(data.draw(st.permutations(mixed.tiers), label="tiers")),
        tuple(data.draw(st.permutations(mixed.network_sets), label="network sets")),
    )
    other = with_calico(load_model(shuffled.cluster.objects), shuffled)
    probe = data.draw(probes(), label="probe")
    for port, protocol in ((None, Protocol.TCP), (probe[0], Protocol(probe[1]))):
        first = list(evaluate(model, port, protocol).connections())
        assert first == list(evaluate(model, port, protocol).connections())
        assert first == list(evaluate(other, port, protocol).connections())
