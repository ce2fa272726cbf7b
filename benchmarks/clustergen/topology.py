"""Topology: nodes, team namespaces, apps and their call graph."""

from __future__ import annotations

import math
from collections import defaultdict

from .base import GeneratorBase
from .catalog import (
    COMPONENTS,
    DATA_DOMAINS,
    DOMAINS,
    FRONTEND_DOMAINS,
    MAX_PODS_PER_NODE,
    NS_NAME_LABEL,
    PCI_DOMAINS,
    POD_CIDR_BLOCKS,
    PODS_PER_NODE_TARGET,
    QUALIFIERS,
    REPLICAS,
    TIER_WEIGHTS,
    PortSpec,
)
from .model import App, Namespace, Node, largest_remainder


class Topology(GeneratorBase):
    def plan(self) -> None:
        n_team = max(1, round(self.pods_total / 100))
        n_nodes = max(1, math.ceil(self.pods_total / PODS_PER_NODE_TARGET))
        self.make_nodes(n_nodes)
        self.make_team_namespaces(n_team)
        if self.istio_only is not None:
            # Istio-only clusters: every team namespace in one mode; ambient ones each with
            # a waypoint serving their Services.
            for ns in self.namespaces:
                ns.mesh = self.istio_only
                if self.istio_only == "sidecar":
                    ns.labels["istio-injection"] = "enabled"
                else:
                    ns.labels["istio.io/dataplane-mode"] = "ambient"
                    ns.waypoint = True
                    ns.labels["istio.io/use-waypoint"] = "waypoint"
        elif self.istio:
            team = list(self.namespaces)
            self.rng.shuffle(team)
            n_sidecar = max(1, round(len(team) * 0.5))
            n_ambient = max(1, round(len(team) * 0.2)) if len(team) > 1 else 0
            for ns in team[:n_sidecar]:
                ns.mesh = "sidecar"
                ns.labels["istio-injection"] = "enabled"
            for ns in team[n_sidecar : n_sidecar + n_ambient]:
                ns.mesh = "ambient"
                ns.labels["istio.io/dataplane-mode"] = "ambient"
            ambient = [ns for ns in self.namespaces if ns.mesh == "ambient"]
            if ambient:
                ambient[0].waypoint = True
                ambient[0].labels["istio.io/use-waypoint"] = "waypoint"

        system_pods = self.system_pod_count()
        app_budget = self.pods_total - system_pods
        if app_budget < 3 * n_team:
            raise SystemExit(
                f"--pods {self.pods_total} is too small: {system_pods} system pods leave "
                f"{app_budget} for {n_team} application namespace(s)"
            )
        weights = [self.rng.lognormvariate(0.0, 0.45) for _ in range(n_team)]
        shares = largest_remainder(app_budget, weights, minimum=3)
        for ns, share in zip(self.namespaces, shares, strict=True):
            ns.budget = share
            self.make_apps(ns)
        self.make_call_graph()

    def system_pod_count(self) -> int:
        nodes = len(self.nodes)
        count = 2 + nodes + 1  # coredns, kube-proxy (hostNetwork), metrics-server
        count += 3  # prometheus x2, grafana
        count += 2  # ingress-nginx controllers
        if self.calico:
            count += nodes + 1  # calico-node (hostNetwork), calico-kube-controllers
        if self.istio:
            count += 2  # istiod
            if any(ns.mesh == "ambient" for ns in self.namespaces):
                count += nodes  # ztunnel
            count += sum(ns.waypoint for ns in self.namespaces)  # waypoint proxies
        return count

    def make_nodes(self, n: int) -> None:
        if n > POD_CIDR_BLOCKS:
            raise SystemExit("too many nodes for a 10.0.0.0/12 pod CIDR")
        blocks = self.rng.sample(range(POD_CIDR_BLOCKS), n)
        zones = ["eu-west-1a", "eu-west-1b", "eu-west-1c"]
        for i, block in enumerate(blocks):
            ip = f"10.240.{i // 250}.{i % 250 + 4}"
            free = list(range(2, 255))
            self.rng.shuffle(free)
            self.nodes.append(
                Node(
                    name=f"ip-{ip.replace('.', '-')}.eu-west-1.compute.internal",
                    ip=ip,
                    pod_cidr=f"10.{block >> 8}.{block & 255}.0/24",
                    zone=zones[i % 3],
                    free=free,
                )
            )

    def place(self) -> tuple[Node, str]:
        """Power-of-two-choices scheduling; returns the node and a fresh pod IP on it."""
        a, b = self.rng.choice(self.nodes), self.rng.choice(self.nodes)
        node = a if a.load <= b.load else b
        if node.load >= MAX_PODS_PER_NODE or not node.free:
            node = min(self.nodes, key=lambda n: n.load)
        if not node.free:
            raise SystemExit("pod CIDR exhausted")
        node.load += 1
        host = node.free.pop()
        prefix = node.pod_cidr.rsplit(".", 1)[0]
        return node, f"{prefix}.{host}"

    def place_on(self, node: Node) -> str:
        node.load += 1
        host = node.free.pop()
        return f"{node.pod_cidr.rsplit('.', 1)[0]}.{host}"

    def make_team_namespaces(self, n: int) -> None:
        names: list[tuple[str, str, str]] = []
        round_no = 0
        while len(names) < n:
            for domain in DOMAINS:
                if len(names) >= n:
                    break
                if round_no == 0:
                    names.append((f"team-{domain}", domain, "prod"))
                elif round_no == 1:
                    names.append((f"{domain}-staging", domain, "staging"))
                elif round_no == 2:
                    names.append((f"{domain}-dev", domain, "dev"))
                else:
                    names.append((f"team-{domain}-{round_no - 1}", domain, "prod"))
            round_no += 1
        for name, domain, env in names:
            tier = (
                "frontend"
                if domain in FRONTEND_DOMAINS
                else "data"
                if domain in DATA_DOMAINS
                else "backend"
            )
            labels = {NS_NAME_LABEL: name, "team": domain, "env": env, "tier": tier}
            if domain in PCI_DOMAINS and env == "prod":
                labels["compliance"] = "pci"
            if self.rng.random() < 0.3:
                labels["cost-center"] = f"cc-{self.rng.randint(1000, 9999)}"
            ns = Namespace(name=name, domain=domain, env=env, labels=labels)
            self.namespaces.append(ns)
            self.ns_by_name[name] = ns

    def make_apps(self, ns: Namespace) -> None:
        remaining = ns.budget
        used: set[str] = set()
        tiers = list(TIER_WEIGHTS)
        weights = [TIER_WEIGHTS[t] for t in tiers]
        first = ["web", "api", "data"]
        while remaining > 0:
            tier = first.pop(0) if first else self.rng.choices(tiers, weights)[0]
            comp = self.rng.choice(COMPONENTS[tier])
            replicas = min(self.rng.choice(REPLICAS[tier]), remaining, 20)
            name = self.app_name(ns.domain, comp.kind, used)
            app = App(name, ns.name, ns.domain, tier, comp, replicas)
            ns.apps.append(app)
            remaining -= replicas
        # service accounts: workers share one, some data/cache apps stay on "default"
        workers = [a for a in ns.apps if a.tier == "worker"]
        shared = f"{ns.domain}-workers" if len(workers) >= 2 else None
        for app in ns.apps:
            if self.istio_only is not None:
                app.sa = app.name  # one identity per workload
            elif app.tier == "worker" and shared:
                app.sa = shared
            elif app.tier in ("data", "cache") and self.rng.random() < 0.3:
                app.sa = "default"
            else:
                app.sa = app.name
            canary = app.tier in ("web", "api") and app.replicas >= 3 and self.rng.random() < 0.12
            if app.component.stateful:
                app.versions = [("v1", f"{app.name}-{self.rand_hash(10)}", app.replicas)]
            elif canary:
                app.versions = [
                    ("v1", self.rand_hash(self.rng.choice([9, 10])), app.replicas - 1),
                    ("v2", self.rand_hash(self.rng.choice([9, 10])), 1),
                ]
            else:
                app.versions = [("v1", self.rand_hash(self.rng.choice([9, 10])), app.replicas)]

    def app_name(self, domain: str, kind: str, used: set[str]) -> str:
        candidates = [f"{domain}-{kind}"] + [f"{domain}-{q}-{kind}" for q in QUALIFIERS]
        for candidate in candidates:
            if candidate not in used:
                used.add(candidate)
                return candidate
        i = 2
        while f"{domain}-{kind}-{i}" in used:
            i += 1
        used.add(f"{domain}-{kind}-{i}")
        return f"{domain}-{kind}-{i}"

    def make_call_graph(self) -> None:
        by_env: dict[str, list[Namespace]] = defaultdict(list)
        for ns in self.namespaces:
            by_env[ns.env].append(ns)

        def link(src: App, dst: App, port: PortSpec | None = None) -> None:
            if src is dst or any(d is dst for d, _ in src.deps):
                return
            p = port or dst.primary_port()
            src.deps.append((dst, p))
            dst.callers.append((src, p))

        for ns in self.namespaces:
            tier: dict[str, list[App]] = defaultdict(list)
            for app in ns.apps:
                tier[app.tier].append(app)
            apis, stores = tier["api"], tier["data"] + tier["cache"]
            for web in tier["web"]:
                for api in self.rng.sample(apis, min(len(apis), self.rng.randint(1, 2))):
                    link(web, api, api.port("http") or api.primary_port())
            for api in apis:
                others = [a for a in apis if a is not api]
                for other in self.rng.sample(others, min(len(others), self.rng.randint(0, 2))):
                    link(api, other)
                for store in self.rng.sample(stores, min(len(stores), self.rng.randint(0, 2))):
                    link(api, store, store.ports[0])
            for worker in tier["worker"]:
                if apis and self.rng.random() < 0.5:
                    link(worker, self.rng.choice(apis))
                if stores:
                    store = self.rng.choice(stores)
                    link(worker, store, store.ports[0])
            for media in tier["media"]:
                if apis:
                    link(media, self.rng.choice(apis))
            # cross-namespace calls, mostly within the same environment
            for api in apis:
                if self.rng.random() < 0.3:
                    pool = [o for o in by_env[ns.env] if o is not ns] or [
                        o for o in self.namespaces if o is not ns
                    ]
                    if not pool:
                        continue
                    other_ns = self.rng.choice(pool)
                    targets = [a for a in other_ns.apps if a.tier == "api"]
                    if targets:
                        link(api, self.rng.choice(targets))
