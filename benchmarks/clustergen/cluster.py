"""The generator: builds a whole cluster from its parts and writes it out."""

from __future__ import annotations

import json
from pathlib import Path

from .calico import Calico
from .catalog import Obj
from .istio import Istio
from .model import largest_remainder
from .netpol import NetworkPolicies
from .topology import Topology
from .workloads import Workloads
from .yamlout import to_yaml


class Generator(Topology, Workloads, NetworkPolicies, Calico, Istio):
    def build(self) -> None:
        self.plan()
        if self.calico and self.namespaces:
            # one quarantined workload for the security tier to find
            victim = self.rng.choice(self.namespaces[0].apps)
            victim.extra_labels["quarantine"] = "true"

        system_ns = [
            "default",
            "kube-system",
            "kube-public",
            "kube-node-lease",
            "monitoring",
            "ingress-nginx",
        ]
        if self.calico:
            system_ns.append("calico-system")
        if self.istio:
            system_ns.append("istio-system")
        for name in system_ns:
            self.cluster_docs.append(self.namespace_obj(name))
        for ns in self.namespaces:
            self.cluster_docs.append(self.namespace_obj(ns.name, ns.labels))
        for node in self.nodes:
            self.cluster_docs.append(self.node_obj(node))
        self.counts["v1/Namespace"] = len(system_ns) + len(self.namespaces)
        self.counts["v1/Node"] = len(self.nodes)

        self.system_objects()
        for ns in self.namespaces:
            self.app_objects(ns)
        self.policies()
        if self.calico:
            self.calico_globals()
        if self.istio:
            self.istio_objects()
            if self.authz_total is not None:
                self.fit_authorization_policies(self.authz_total)

    def policies(self) -> None:
        budget = self.policies_total
        policy_ns = [ns.name for ns in self.namespaces] + ["monitoring", "ingress-nginx"]
        baseline = [(ns, b) for ns in policy_ns for b in self.baseline_policies(ns)]
        # default-deny everywhere first, then DNS, so a tiny budget still isolates namespaces
        baseline.sort(key=lambda item: item[1][0] != "default-deny-all")
        planned: list[tuple[str, str, Obj]] = [
            (ns, self.np_name(ns, name), spec) for ns, (name, spec) in baseline[:budget]
        ]
        for ns_name, name, spec in self.system_allow_policies()[: budget - len(planned)]:
            planned.append((ns_name, self.np_name(ns_name, name), spec))
        n_system_allow = len(planned) - min(budget, len(baseline))
        first_team = len(planned)
        remaining = budget - len(planned)
        if remaining > 0:
            weights = [float(len(ns.apps)) for ns in self.namespaces]
            quotas = largest_remainder(remaining, weights, minimum=0)
            for ns, quota in zip(self.namespaces, quotas, strict=True):
                order = list(ns.apps)
                self.rng.shuffle(order)
                for i in range(quota):
                    name, spec = self.allow_policy(ns, order[i % len(order)])
                    planned.append((ns.name, self.np_name(ns.name, name), spec))
        # a share of all allow policies becomes Calico equivalents (team namespaces only)
        n_allow = n_system_allow + len(planned) - first_team
        n_calico = min(round(self.args.calico_share * n_allow), len(planned) - first_team)
        calico_idx = set(self.rng.sample(range(first_team, len(planned)), n_calico))
        for i, (ns_name, name, spec) in enumerate(planned):
            if i in calico_idx:
                self.emit(ns_name, self.to_calico(self.ns_by_name[ns_name], name, spec))
                self.calico_np_count += 1
            else:
                self.emit(ns_name, self.netpol(ns_name, name, spec))
                self.k8s_np_count += 1

    def write(self, out: Path, fmt: str) -> tuple[int, int]:
        out.mkdir(parents=True, exist_ok=True)
        for pattern in ("*.yaml", "*.json"):
            for old in out.glob(pattern):
                old.unlink()
        files = {"cluster-scoped": self.cluster_docs, **self.docs}
        total = 0
        for stem, docs in files.items():
            if fmt == "json":  # what `kubectl get -o json` prints: one List, 4-space indent
                listing = {"apiVersion": "v1", "items": docs, "kind": "List"}
                listing["metadata"] = {"resourceVersion": ""}
                text = json.dumps(listing, indent=4) + "\n"
                (out / f"{stem}.json").write_text(text, encoding="utf-8")
                total += len(text)
                continue
            path = out / f"{stem}.yaml"
            if fmt == "list":
                docs = [
                    {
                        "apiVersion": "v1",
                        "kind": "List",
                        "items": docs,
                        "metadata": {"resourceVersion": ""},
                    }
                ]
            text = "---\n".join(to_yaml(doc) for doc in docs)
            path.write_text(text, encoding="utf-8")
            total += len(text)
        return len(files), total
