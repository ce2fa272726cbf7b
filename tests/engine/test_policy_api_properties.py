"""Properties of the policy API through the tiers, on small random clusters with random
ClusterNetworkPolicies (priorities drawn from a tiny set, so equal priorities are common) and
Kubernetes NetworkPolicies: the fast evaluator agrees with the per-pod oracle, which tries every
order of equal priorities and takes the deny-safe outcome; a deny-safe answer is never more
permissive than any order an implementation may pick."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_properties import assert_agrees_with_reference, load_model

from kubezt.ir.ports import Protocol
from strategies import (
    CIDRS,
    NAMESPACE_SELECTORS,
    POD_SELECTORS,
    Cluster,
    k8s_clusters,
    probes,
)

PROPERTY = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
Manifest = dict[str, Any]

_PROTOCOL = st.one_of(
    st.builds(
        lambda proto, port: {proto: {"destinationPort": {"number": port}}},
        st.sampled_from(("tcp", "udp", "sctp")),
        st.sampled_from((53, 80, 81, 443)),
    ),
    st.builds(
        lambda proto, start: {
            proto: {"destinationPort": {"range": {"start": start, "end": start + 30}}}
        },
        st.sampled_from(("tcp", "udp")),
        st.sampled_from((50, 60, 79, 81)),
    ),
    st.builds(
        lambda name: {"destinationNamedPort": name}, st.sampled_from(("http", "dns", "https"))
    ),
)


def _peer(egress: bool) -> st.SearchStrategy[Manifest]:
    choices = [
        st.builds(lambda ns: {"namespaces": ns}, NAMESPACE_SELECTORS),
        st.builds(
            lambda ns, pod: {"pods": {"namespaceSelector": ns, "podSelector": pod}},
            NAMESPACE_SELECTORS,
            POD_SELECTORS,
        ),
    ]
    if egress:
        choices.append(
            st.builds(
                lambda nets: {"networks": nets},
                st.lists(st.sampled_from(CIDRS), min_size=1, max_size=2, unique=True),
            )
        )
    return st.one_of(*choices)


def _rule(egress: bool) -> st.SearchStrategy[Manifest]:
    def build(action: str, peers: list[Manifest], protocols: list[Manifest] | None) -> Manifest:
        rule: Manifest = {"action": action, "to" if egress else "from": peers}
        if protocols:
            if any("networks" in p for p in peers):
                protocols = [p for p in protocols if "destinationNamedPort" not in p]
            if protocols:
                rule["protocols"] = protocols
        return rule

    return st.builds(
        build,
        st.sampled_from(("Accept", "Deny", "Pass")),
        st.lists(_peer(egress), min_size=1, max_size=2),
        st.one_of(st.none(), st.lists(_PROTOCOL, min_size=1, max_size=2)),
    )


@st.composite
def cluster_policies(draw: st.DrawFn) -> list[Manifest]:
    out: list[Manifest] = []
    for i in range(draw(st.integers(1, 4))):
        subject = draw(
            st.one_of(
                st.builds(lambda ns: {"namespaces": ns}, NAMESPACE_SELECTORS),
                st.builds(
                    lambda ns, pod: {"pods": {"namespaceSelector": ns, "podSelector": pod}},
                    NAMESPACE_SELECTORS,
                    POD_SELECTORS,
                ),
            )
        )
        spec: Manifest = {
            "tier": draw(st.sampled_from(("Admin", "Baseline"))),
            "priority": draw(st.sampled_from((1, 2))),
            "subject": subject,
        }
        for field, egress in (("ingress", False), ("egress", True)):
            rules = draw(st.lists(_rule(egress), max_size=3))
            if rules:
                spec[field] = rules
        out.append(
            {
                "apiVersion": "policy.networking.k8s.io/v1alpha2",
                "kind": "ClusterNetworkPolicy",
                "metadata": {"name": f"cnp-{i}"},
                "spec": spec,
            }
        )
    return out


@PROPERTY
@given(cluster=k8s_clusters(0, 2), cnps=cluster_policies(), probe=probes())
def test_engine_matches_reference_with_cluster_policies(
    cluster: Cluster, cnps: list[Manifest], probe: tuple[int, str]
) -> None:
    model = load_model([*cluster.objects, *cnps])
    assert_agrees_with_reference(model)
    assert_agrees_with_reference(model, probe[0], Protocol(probe[1]))


@PROPERTY
@given(cluster=k8s_clusters(0, 1), cnps=cluster_policies(), probe=probes())
def test_equal_priorities_are_never_more_permissive_than_a_fixed_order(
    cluster: Cluster, cnps: list[Manifest], probe: tuple[int, str]
) -> None:
    """Giving equal-priority policies distinct priorities in either order (what an
    implementation may do) allows at least what the deny-safe answer allows."""
    from test_properties import engine_connections

    model = load_model([*cluster.objects, *cnps])
    port, protocol = probe[0], Protocol(probe[1])
    tied = engine_connections(model, port, protocol)
    for reverse in (False, True):
        ordered = [dict(c, spec=dict(c["spec"])) for c in cnps]
        ranked = sorted(ordered, key=lambda c: c["metadata"]["name"], reverse=reverse)
        for rank, cnp in enumerate(ranked):
            cnp["spec"]["priority"] = cnp["spec"]["priority"] * 10 + rank
        fixed = engine_connections(load_model([*cluster.objects, *ordered]), port, protocol)
        assert tied <= fixed
