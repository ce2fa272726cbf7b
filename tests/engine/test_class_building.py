"""What was done per pod, done per class or per namespace, equals the per-pod answer.

`build_classes` makes the key of each pod's class from what it shares with other pods plus its
own address: on random clusters (pods with and without addresses, IPv4 and IPv6, host-network
pods, policy CIDRs and Calico network sets) the classes are exactly the groups of workloads with
equal `class_key(workload_peer(w))`, in order of first member, each with its first member's
peer. `Topology.services_selecting_each` equals `services_selecting` of each workload."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from test_properties import load_model, with_calico

from kubezt.engine.index import build_classes, class_key, class_networks, workload_peer
from kubezt.ir.model import Model
from strategies import MixedCluster, mixed_clusters


def grouped_pod_by_pod(model: Model) -> list[tuple[tuple[int, ...], object]]:
    nets = class_networks(model)
    groups: dict[tuple[object, ...], list[int]] = {}
    peers: dict[tuple[object, ...], object] = {}
    for i, workload in enumerate(model.topology.workloads):
        peer = workload_peer(workload, model.topology)
        key = class_key(peer, nets)
        peers.setdefault(key, peer)
        groups.setdefault(key, []).append(i)
    return [(tuple(members), peers[key]) for key, members in groups.items()]


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mixed=mixed_clusters())
def test_classes_are_the_groups_of_equal_class_keys(mixed: MixedCluster) -> None:
    model = with_calico(load_model(mixed.cluster.objects), mixed)
    classes = build_classes(model)
    assert [c.index for c in classes] == list(range(len(classes)))
    assert [(c.members, c.peer) for c in classes] == grouped_pod_by_pod(model)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mixed=mixed_clusters())
def test_services_of_many_workloads_are_those_of_each(mixed: MixedCluster) -> None:
    topology = load_model(mixed.cluster.objects).topology
    workloads = topology.workloads
    assert topology.services_selecting_each(workloads) == [
        topology.services_selecting(w) for w in workloads
    ]
