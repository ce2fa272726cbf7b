"""A Kubernetes NetworkPolicy and its hand translation into Calico (what libcalico-go's
converter produces: order 1000, one Allow rule per peer and protocol, selector strings) give
the same reachability, whether translated to a namespaced Calico NetworkPolicy or to a
GlobalNetworkPolicy pinned to the namespace with `projectcalico.org/name == '<ns>'`.

The translation is written here from the documentation (semantics.md §2.6), independently of
the K8s reader, so the property checks the Calico reader, the K8s reader and the evaluator
against each other.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings

import kubezt
from kubezt.ir.model import Model
from kubezt.ir.ports import Protocol
from strategies import PROBES, Cluster, k8s_clusters

PROPERTY = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
Manifest = dict[str, Any]


def selector_text(selector: Manifest) -> str:
    """A `metav1.LabelSelector` as a Calico selector expression (`{}` → `all()`)."""
    terms = [f"{k} == '{v}'" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for requirement in selector.get("matchExpressions") or []:
        key, values = requirement["key"], requirement.get("values") or []
        listed = ", ".join(f"'{v}'" for v in values)
        terms.append(
            {
                "In": f"{key} in {{{listed}}}",
                "NotIn": f"{key} not in {{{listed}}}",
                "Exists": f"has({key})",
                "DoesNotExist": f"!has({key})",
            }[requirement["operator"]]
        )
    return " && ".join(terms) or "all()"


def peer_entity(peer: Manifest | None, own_namespace: Manifest) -> Manifest:
    if peer is None:
        return {}
    if "ipBlock" in peer:
        entity: Manifest = {"nets": [peer["ipBlock"]["cidr"]]}
        if peer["ipBlock"].get("except"):
            entity["notNets"] = list(peer["ipBlock"]["except"])
        return entity
    entity = {}
    if "namespaceSelector" in peer:
        entity["namespaceSelector"] = selector_text(peer["namespaceSelector"])
    else:
        entity.update(own_namespace)
    if "podSelector" in peer:
        entity["selector"] = selector_text(peer["podSelector"])
    return entity


def port_groups(entries: list[Manifest]) -> list[tuple[str | None, list[Any] | None]]:
    """Ports grouped per protocol (TCP by default); None ports = every port of the protocol;
    no entries at all = every protocol."""
    if not entries:
        return [(None, None)]
    groups: dict[str, list[Any] | None] = {}
    for entry in entries:
        protocol = entry.get("protocol", "TCP")
        ports = groups.setdefault(protocol, [])
        if "port" not in entry:
            groups[protocol] = None
        elif ports is not None:
            port = entry["port"]
            ports.append(f"{port}:{entry['endPort']}" if "endPort" in entry else port)
    return list(groups.items())


def calico_rules(rule: Manifest, ingress: bool, own_namespace: Manifest) -> list[Manifest]:
    peers = rule.get("from" if ingress else "to") or [None]
    out = []
    for peer in peers:
        entity = peer_entity(peer, own_namespace)
        for protocol, ports in port_groups(rule.get("ports") or []):
            calico: Manifest = {"action": "Allow"}
            if protocol is not None:
                calico["protocol"] = protocol
            if ingress:
                calico["source"] = entity
                if ports:
                    calico["destination"] = {"ports": ports}
            else:
                calico["destination"] = {**entity, **({"ports": ports} if ports else {})}
            out.append(calico)
    return out


def translate(policy: Manifest, global_policy: bool) -> Manifest:
    namespace, name = policy["metadata"]["namespace"], policy["metadata"]["name"]
    spec = policy["spec"]
    # Written out, because Calico infers `types` differently from Kubernetes' policyTypes.
    types = spec.get("policyTypes") or (
        ["Ingress", "Egress"] if spec.get("egress") else ["Ingress"]
    )
    by_name = f"projectcalico.org/name == '{namespace}'"
    own = {"namespaceSelector": by_name} if global_policy else {}
    calico_spec: Manifest = {
        "order": 1000,
        "selector": selector_text(spec["podSelector"]),
        "types": sorted(set(types)),
        "ingress": [r for rule in spec.get("ingress") or [] for r in calico_rules(rule, True, own)],
        "egress": [r for rule in spec.get("egress") or [] for r in calico_rules(rule, False, own)],
    }
    if global_policy:
        calico_spec["namespaceSelector"] = by_name
        metadata = {"name": f"{namespace}-{name}"}
    else:
        metadata = {"name": name, "namespace": namespace}
    return {
        "apiVersion": "projectcalico.org/v3",
        "kind": "GlobalNetworkPolicy" if global_policy else "NetworkPolicy",
        "metadata": metadata,
        "spec": calico_spec,
    }


def load_model(objects: list[Manifest]) -> Model:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "objects.yaml"
        path.write_text("\n---\n".join(json.dumps(o) for o in objects), encoding="utf-8")
        return kubezt.load([str(path)]).model


def connections(model: Model, port: int | None, protocol: Protocol) -> set[tuple[str, ...]]:
    return set(kubezt.evaluate(model, port, protocol).connections())


@PROPERTY
@given(cluster=k8s_clusters(1, 4))
def test_calico_translation_of_k8s_policies_has_the_same_matrix(cluster: Cluster) -> None:
    k8s = load_model(cluster.objects)
    assert all(p.dialect.value == "k8s" for p in k8s.policies.policies)
    for global_policy in (False, True):
        calico = load_model(
            [*cluster.topology, *(translate(p, global_policy) for p in cluster.policies)]
        )
        assert all(p.dialect.value == "calico" for p in calico.policies.policies)
        for port, protocol in ((None, Protocol.TCP), *((p, Protocol(n)) for p, n in PROBES)):
            want, got = connections(k8s, port, protocol), connections(calico, port, protocol)
            assert want == got, (
                f"{'global' if global_policy else 'namespaced'} translation, port {port}\n"
                f"only with K8s policies: {sorted(want - got)}\n"
                f"only with Calico policies: {sorted(got - want)}"
            )
