"""`verify(intent, compile(intent) + one extra policy)` reports exactly what the extra policy
changes: for random intents (the compile proof's generator) in both mesh modes, the compiled
manifests match the intent, so every connection the extra object (a Kubernetes NetworkPolicy, a
Calico policy ahead of the compiled default deny, an AuthorizationPolicy ALLOW or DENY, a
PeerAuthentication) changes for some request must be a
difference — allowed-not-granted where explain now allows more, granted-blocked where it
allows less — and nothing else may be. Outside the cluster, the differences are exactly those
of a brute-force oracle (`outsidekit`: what the intent grants against explain at every outside
cell's representative address, on every port cell, both ways)."""

from __future__ import annotations

import dataclasses
import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import kubezt
from explainkit import Explainer, considered, universe
from intentgen import METHODS, PATHS, PORTS, intent_documents
from intentkit import workload_objects
from kubezt.analysis.verify import DifferenceKind, verify
from kubezt.dialects.intent import parse_intent_data
from kubezt.generate import compile_intent
from kubezt.ir.intent import Intent, Mode
from kubezt.ir.model import Model
from outsidekit import outside_expected, outside_reported

PROPERTY = settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))


def load(objects: list[dict[str, Any]]) -> Model:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "objects.yaml"
        path.write_text("\n---\n".join(json.dumps(o) for o in objects), encoding="utf-8")
        return kubezt.load([str(path)]).model


@st.composite
def extra_objects(draw: st.DrawFn, intent: Intent) -> dict[str, Any]:
    """One object someone adds by hand, in the intent's own terms (its namespaces, services,
    identities and ports)."""
    services = intent.services
    service = draw(st.sampled_from(services))
    namespace = draw(st.sampled_from((service.namespace,) * 3 + ("istio-system",)))
    selector = draw(st.sampled_from(({}, {"app": service.name})))
    kind = draw(st.sampled_from(("netpol", "calico", "calico", "allow", "deny", "deny", "peer")))
    meta = {"name": "extra", "namespace": namespace}
    if kind == "calico":
        # before the compiled default deny: order 1 in the default tier
        direction = draw(st.sampled_from(("ingress", "egress")))
        rule = {"action": draw(st.sampled_from(("Allow", "Allow", "Deny")))}
        if draw(st.booleans()):
            rule["protocol"] = "TCP"
            rule["destination"] = {"ports": [draw(st.sampled_from([p for p, _ in PORTS]))]}
        spec = {
            "tier": "default",
            "order": 1,
            "selector": f"app == '{service.name}'" if selector else "all()",
            "types": ["Ingress" if direction == "ingress" else "Egress"],
            direction: [rule],
        }
        if namespace == "istio-system":
            return {"apiVersion": "projectcalico.org/v3", "kind": "GlobalNetworkPolicy",
                    "metadata": {"name": "default.extra"}, "spec": spec}  # fmt: skip
        return {"apiVersion": "projectcalico.org/v3", "kind": "NetworkPolicy",
                "metadata": {**meta, "name": "default.extra"}, "spec": spec}  # fmt: skip
    if kind == "netpol":
        rule: dict[str, Any] = {}
        if draw(st.booleans()):
            rule["ports"] = [{"port": draw(st.sampled_from([p for p, _ in PORTS]))}]
        direction = draw(st.sampled_from(("ingress", "egress")))
        spec = {
            "podSelector": {"matchLabels": selector},
            "policyTypes": ["Ingress" if direction == "ingress" else "Egress"],
            direction: [rule],
        }
        return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                "metadata": meta, "spec": spec}  # fmt: skip
    if kind == "peer":
        return {
            "apiVersion": "security.istio.io/v1",
            "kind": "PeerAuthentication",
            "metadata": meta,
            "spec": {
                "selector": {"matchLabels": selector},
                "mtls": {"mode": draw(st.sampled_from(("PERMISSIVE", "DISABLE", "STRICT")))},
            },
        }
    caller = draw(st.sampled_from(services))
    source = draw(
        st.sampled_from(
            (
                {
                    "principals": [
                        f"cluster.local/ns/{caller.namespace}/sa/{caller.service_account}"
                    ]
                },
                {"namespaces": [caller.namespace]},
                {"principals": ["*"]},
                {"notPrincipals": ["*"]},
            )
        )
    )
    operation: dict[str, Any] = {}
    if draw(st.booleans()):
        operation["ports"] = [str(draw(st.sampled_from([p for p, _ in PORTS])))]
    if draw(st.booleans()):
        operation["methods"] = [draw(st.sampled_from(METHODS))]
    if draw(st.booleans()):
        operation["paths"] = [draw(st.sampled_from(PATHS))]
    rule = {"from": [{"source": source}]}
    if operation:
        rule["to"] = [{"operation": operation}]
    spec = {"action": "ALLOW" if kind == "allow" else "DENY", "rules": [rule]}
    if selector:
        spec["selector"] = {"matchLabels": selector}
    return {"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
            "metadata": meta, "spec": spec}  # fmt: skip


def as_verified(model: Model, intent: Intent) -> Model:
    """The model with the intent's mesh settings, as `verify` evaluates it."""
    config = dataclasses.replace(
        model.mesh_config, root_namespace=intent.root_namespace, trust_domain=intent.trust_domain
    )
    return dataclasses.replace(model, mesh_config=config)


@pytest.mark.slow
@pytest.mark.parametrize("mode", list(Mode), ids=lambda m: m.value)
@PROPERTY
@given(document=intent_documents(), data=st.data())
def test_verify_reports_exactly_what_an_extra_policy_changes(
    mode: Mode, document: dict[str, Any], data: st.DataObject
) -> None:
    intent = parse_intent_data(document)
    compiled = list(compile_intent(intent, mode=mode, on_unsupported="warn").objects())
    objects = [*compiled, *workload_objects(intent)]
    extra = data.draw(extra_objects(intent), label="extra object")
    before, after = load(objects), load([*objects, extra])
    assert verify(intent, before, mode).ok, "the compile proof does not hold"
    result = verify(intent, after, mode)
    old, new = as_verified(before, intent), as_verified(after, intent)
    scope = set(intent.namespaces)
    requests = universe(old, new)
    was_explainer, now_explainer = Explainer(old), Explainer(new)
    expected: dict[tuple[str, str, int, str], set[DifferenceKind]] = {}
    keys = set(considered(kubezt.evaluate(old))) | set(considered(kubezt.evaluate(new)))
    for key in sorted(keys):
        if key[0].split("/")[0] not in scope and key[1].split("/")[0] not in scope:
            continue
        was = was_explainer.vector(key, requests)
        now = now_explainer.vector(key, requests)
        kinds = set()
        if any(n and not w for w, n in zip(was, now, strict=True)):
            kinds.add(DifferenceKind.NOT_GRANTED)
        if any(w and not n for w, n in zip(was, now, strict=True)):
            kinds.add(DifferenceKind.BLOCKED)
        if kinds:
            expected[key] = kinds
    event(f"connections the extra object changes: {min(len(expected), 3)} (3 = 3 or more)")
    reported: dict[tuple[str, str, int, str], set[DifferenceKind]] = {}
    for d in result.differences:
        assert d.kind is not DifferenceKind.IDENTITY, d
        if d.src.startswith("external:") or d.dst.startswith("external:"):
            continue  # below
        reported.setdefault((d.src, d.dst, d.port, d.protocol), set()).add(d.kind)
    assert reported == expected, (extra, sorted(set(reported.items()) ^ set(expected.items())))
    # outside the cluster, both ways: every allowed connection with an outside cell that the
    # intent does not grant, and every granted one that is denied, is reported — and nothing
    # else (a brute-force oracle: explain at each cell's representative address)
    outside = outside_expected(dataclasses.replace(intent, mode=mode), new, requests)
    event(f"outside differences: {min(len(outside), 3)} (3 = 3 or more)")
    assert outside_reported(result) == outside, (
        extra,
        sorted(outside_reported(result) ^ outside),
    )
