"""`diff` compares the two class matrices and expands only the changed pairs: on random clusters
it equals the pair-level diff, which reads both sides' workload rows (`Reachability.detailed`),
cuts every allowed row's port cell by the ports the destination declares on either side, and
compares every workload pair on every refined cell. Sides differ by their NetworkPolicies,
Calico policies and tiers, a workload fewer, a relabelled workload (other classes), a
Deployment whose replica count makes it a single pod or no longer one, and, in the mesh, by
AuthorizationPolicies, PeerAuthentications and membership (request-level changes)."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_diff_properties import load_model, with_calico, with_policies_of

import kubezt
from kubezt.analysis.diff import (
    Allowance,
    Change,
    Diff,
    PairChanges,
    Presence,
    _change_key,
    _compare,
    _Side,
    diff,
)
from kubezt.engine.cells import PortCell, port_cells, port_cuts
from kubezt.engine.connection import is_single_pod
from kubezt.engine.index import iter_bits
from kubezt.engine.reach import Reachability
from kubezt.engine.requests import ALL
from kubezt.ir.ports import Protocol
from meshkit import changed, mesh_models
from strategies import MixedCluster, k8s_clusters, mixed_clusters

PROPERTY = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
Key = tuple[str, str, int, str]


def pair_level(old: Reachability, new: Reachability) -> Diff:
    """The diff computed pair by pair from both sides' workload rows (no outside cells)."""
    sides = (_Side(old.model, old), _Side(new.model, new))
    rows: list[dict[Key, Any]] = []
    declared: list[set[tuple[str, int, str]]] = []
    for reach in (old, new):
        rows.append({(s, d, p, proto): r for s, d, p, proto, r in reach.detailed()})
        planned = set()
        workloads = reach.model.topology.workloads
        for port_key, bits in reach.plan.items():
            for ci in iter_bits(bits):
                for wi in reach.classes[ci].members:
                    planned.add((workloads[wi].id, port_key.port, port_key.protocol.value))
        declared.append(planned)
    common = sides[0].workloads.keys() & sides[1].workloads.keys()
    cuts = old.cuts
    keys: dict[Key, PortCell | None] = {}
    for reach, side_rows in zip((old, new), rows, strict=True):
        for src, dst, port, proto in side_rows:
            if src not in common or dst not in common:
                continue
            if cuts is None:
                keys[(src, dst, port, proto)] = None
                continue
            cell = reach.port_cell(dst, port, proto)
            ports = sides[0].declared_ports(dst, proto) | sides[1].declared_ports(dst, proto)
            for part in port_cells(cuts, Protocol(proto), ports):
                if cell.contains(part.representative):
                    keys[(src, dst, part.representative, proto)] = part

    def allowance(i: int, key: Key) -> Allowance:
        reach = (old, new)[i]
        src, dst, port, proto = key
        row = (
            key
            if reach.cuts is None
            else (src, dst, reach.port_cell(dst, port, proto).representative, proto)
        )
        known = (dst, port, proto) in declared[i] or reach.cuts is not None
        if row in rows[i]:
            return Allowance(True, rows[i][row], known)
        return Allowance(False, ALL, known)

    changes: dict[tuple[str, str], list[Change]] = {}
    for key in sorted(keys):
        src, dst = key[0], key[1]
        if src == dst and all(is_single_pod(s.workloads[src]) for s in sides):
            continue
        for change in _compare(key, allowance(0, key), allowance(1, key), *sides):
            if keys[key] is not None:
                change = dataclasses.replace(change, cell=keys[key])
            changes.setdefault((src, dst), []).append(change)

    def presence(i: int, chosen: set[str]) -> tuple[Presence, ...]:
        out: dict[str, set[str]] = {w: set() for w in chosen}
        into: dict[str, set[str]] = {w: set() for w in chosen}
        for src, dst, _, _ in rows[i]:
            if src != dst:
                out.get(src, set()).add(dst)
                into.get(dst, set()).add(src)
        return tuple(Presence(w, len(out[w]), len(into[w])) for w in sorted(chosen))

    return Diff(
        tuple(
            PairChanges(src, dst, tuple(sorted(items, key=_change_key)))
            for (src, dst), items in sorted(changes.items())
        ),
        added=presence(1, sides[1].workloads.keys() - common),
        removed=presence(0, sides[0].workloads.keys() - common),
    )


def assert_same(old: Reachability, new: Reachability) -> None:
    expected = pair_level(old, new)
    assert diff(old, new, outside=False) == expected
    assert diff(new, old, outside=False) == expected.mirrored()


WORKLOAD_KINDS = ("Pod", "Deployment")


@st.composite
def changed_topology(draw: st.DrawFn, topology: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The topology with, sometimes, one workload fewer, one relabelled, and one Deployment's
    replica count flipped between 1 and 2."""
    out = copy.deepcopy(topology)
    workloads = [i for i, o in enumerate(out) if o["kind"] in WORKLOAD_KINDS]
    deployments = [i for i, o in enumerate(out) if o["kind"] == "Deployment"]
    if deployments and draw(st.booleans(), label="flip replicas"):
        spec = out[draw(st.sampled_from(deployments))]["spec"]
        spec["replicas"] = 1 if spec.get("replicas", 1) > 1 else 2
    if workloads and draw(st.booleans(), label="relabel"):
        obj = out[draw(st.sampled_from(workloads))]
        meta = (
            obj["spec"]["template"]["metadata"] if obj["kind"] == "Deployment" else obj["metadata"]
        )
        meta.setdefault("labels", {})["moved"] = draw(st.sampled_from(["a", "b"]))
    if workloads and draw(st.booleans(), label="remove"):
        del out[draw(st.sampled_from(workloads))]
    return out


@st.composite
def k8s_pairs(draw: st.DrawFn) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    a = draw(k8s_clusters(0, 3))
    other = draw(k8s_clusters(0, 3))
    policies = []
    for policy in other.policies:
        moved = copy.deepcopy(policy)
        index = other.namespaces.index(policy["metadata"]["namespace"])
        moved["metadata"]["namespace"] = a.namespaces[index % len(a.namespaces)]
        policies.append(moved)
    keep = draw(st.booleans(), label="keep policies")
    return a.objects, [
        *draw(changed_topology(list(a.topology))),
        *(a.policies if keep else policies),
    ]


@PROPERTY
@given(pair=k8s_pairs())
def test_class_level_diff_equals_pair_level_on_k8s_clusters(
    pair: tuple[list[dict[str, Any]], list[dict[str, Any]]],
) -> None:
    old, new = load_model(pair[0]), load_model(pair[1])
    cuts = port_cuts(old).merged(port_cuts(new))
    assert_same(kubezt.evaluate(old, cuts=cuts), kubezt.evaluate(new, cuts=cuts))
    # the ports destinations declare only (no port cells)
    assert_same(kubezt.evaluate(old, declared_only=True), kubezt.evaluate(new, declared_only=True))


@PROPERTY
@given(mixed=mixed_clusters(), other=mixed_clusters(), data=st.data())
def test_class_level_diff_equals_pair_level_on_calico_clusters(
    mixed: MixedCluster, other: MixedCluster, data: st.DataObject
) -> None:
    topology = data.draw(changed_topology(list(mixed.cluster.topology)))
    old = with_calico(load_model(mixed.cluster.objects), mixed)
    new = with_calico(
        load_model([*topology, *mixed.cluster.policies]), with_policies_of(mixed, other)
    )
    cuts = port_cuts(old).merged(port_cuts(new))
    assert_same(kubezt.evaluate(old, cuts=cuts), kubezt.evaluate(new, cuts=cuts))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_class_level_diff_equals_pair_level_in_the_mesh(data: st.DataObject) -> None:
    old = data.draw(mesh_models(), label="A")
    new = old
    for _ in range(data.draw(st.integers(1, 2), label="changes")):
        new = changed(new, data.draw)
    cuts = port_cuts(old).merged(port_cuts(new))
    assert_same(kubezt.evaluate(old, cuts=cuts), kubezt.evaluate(new, cuts=cuts))
