"""A brute-force oracle for `verify` on addresses outside the cluster: for every workload in the
intent's namespaces, every outside address cell (at its representative address) and every port
cell, both ways, what the intent grants (read directly from its egress entries and exceptions)
against what `explain` allows for some request (in ambient mode, ingress from the addresses
istio-cni sends kubelet probes from is host traffic and left out). What the two disagree on is
exactly what `verify` must report: an allowed connection nothing grants, a granted one that is
denied."""

from __future__ import annotations

from typing import Any

import kubezt
from kubezt.analysis.verify import DifferenceKind, intent_ports
from kubezt.engine.cells import CELL_PROTOCOLS, port_cells, port_cuts
from kubezt.engine.mesh import AMBIENT_PROBE_NETWORKS
from kubezt.engine.outside import outside_cells
from kubezt.engine.reach import SYNTHETIC_ANNOTATION
from kubezt.ir.intent import Identity, Intent, Mode
from kubezt.ir.model import Model
from kubezt.ir.requests import HttpRequest

OutsideKey = tuple[DifferenceKind, str, str, int, str]
"""(kind, source, destination, port, protocol), an outside end as its cell's label."""


def outside_expected(
    intent: Intent, model: Model, requests: tuple[HttpRequest | None, ...]
) -> set[OutsideKey]:
    """The outside differences `verify(intent, model)` must report (`intent` with the mode
    verify compares for, `model` with the intent's mesh settings, as verify evaluates it);
    `requests`: the witnesses explain is asked on."""
    networks = tuple(n for e in intent.egress for n in e.networks)
    networks += tuple(n for x in intent.exceptions for n in x.networks)
    cells = outside_cells(model, networks)
    cuts = port_cuts(model).with_ports(intent_ports(intent))
    scope = set(intent.namespaces)
    memo: dict[tuple[object, ...], Any] = {}

    def allowed(src: kubezt.End, dst: kubezt.End, port: int, protocol: Any) -> bool:
        return any(
            kubezt.explain_connection(
                model, src, dst, port, protocol, http=h, legs_memo=memo
            ).allowed
            for h in requests
        )

    out: set[OutsideKey] = set()
    for w in model.topology.workloads:
        if w.namespace not in scope or SYNTHETIC_ANNOTATION in w.annotations:
            continue
        inner = kubezt.End(kubezt.EndKind.WORKLOAD, workload=w)
        identity = Identity(w.namespace, w.service_account)
        refs = {
            s.ref
            for s in intent.services
            if s.namespace == w.namespace and s.selector.matches(w.labels)
        }
        for cell in cells:
            address = cell.representative
            outer = kubezt.End(kubezt.EndKind.EXTERNAL, ip=str(address))
            for protocol in CELL_PROTOCOLS:
                for port in port_cells(cuts, protocol):
                    number = port.representative
                    granted = any(
                        e.caller == identity
                        and any(p.port == number and p.protocol is protocol for p in e.ports)
                        and (not e.cidrs or any(address in n for n in e.networks))
                        for e in intent.egress
                    )
                    key = (w.id, cell.label, number, protocol.value)
                    _compare(out, key, granted, allowed(inner, outer, number, protocol))
                if intent.mode is Mode.AMBIENT and cell.network in AMBIENT_PROBE_NETWORKS:
                    continue  # where istio-cni sends the node's kubelet probes from: host traffic
                declared = [cp.port for cp in w.ports if cp.protocol is protocol]
                for port in port_cells(cuts, protocol, declared):
                    number = port.representative
                    granted = any(
                        x.service in refs
                        and any(p.port == number and p.protocol is protocol for p in x.ports)
                        and any(address in n for n in x.networks)
                        for x in intent.exceptions
                    )
                    key = (cell.label, w.id, number, protocol.value)
                    _compare(out, key, granted, allowed(outer, inner, number, protocol))
    return out


def _compare(
    out: set[OutsideKey], key: tuple[str, str, int, str], granted: bool, allowed: bool
) -> None:
    if allowed and not granted:
        out.add((DifferenceKind.NOT_GRANTED, *key))
    elif granted and not allowed:
        out.add((DifferenceKind.BLOCKED, *key))


def outside_reported(result: Any) -> set[OutsideKey]:
    """The differences of a `verify` result with an end outside the cluster."""
    return {
        (d.kind, d.src, d.dst, d.port, d.protocol)
        for d in result.differences
        if d.src.startswith("external:") or d.dst.startswith("external:")
    }
