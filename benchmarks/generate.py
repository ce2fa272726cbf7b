#!/usr/bin/env python3
"""Generate a synthetic but realistic Kubernetes cluster dump for the kubezt benchmarks.

    python benchmarks/generate.py --pods 10000 --policies 2000 --out benchmarks/out/large \
        [--seed 1] [--calico-share 0.3] [--istio] [--format docs|list] [--lean]

The output looks like `kubectl get -A -o yaml` of a microservice cluster: one multi-document
YAML file per namespace (ServiceAccounts, Services, Pods, policies) plus `cluster-scoped.yaml`
(Namespaces, Nodes and, when enabled, Calico Tiers / GlobalNetworkPolicies /
GlobalNetworkSets). The output is a pure function of the arguments: the same seed gives
byte-identical files.

Exact counts: `--pods` is the total number of Pod objects (system pods included) and
`--policies` the number of namespaced network policies, i.e. `networking.k8s.io/v1`
NetworkPolicies plus `projectcalico.org/v3` NetworkPolicies. Calico GlobalNetworkPolicies and
Istio resources come on top of that.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import random
import re
import sys
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

Obj = dict[str, Any]

# --------------------------------------------------------------------------------------------
# Cluster constants
# --------------------------------------------------------------------------------------------

POD_CIDR_BLOCKS = 4096  # 10.0.0.0/12 cut into /24 node blocks: 10.<0-15>.<0-255>.0/24
NODE_SUBNET = "10.240.0.0/16"
PRIVATE_RANGES = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]
METADATA_IP = "169.254.169.254/32"
PARTNER_NETS = ["198.51.100.0/24", "203.0.113.0/25"]
MAX_PODS_PER_NODE = 110
PODS_PER_NODE_TARGET = 90
HASH_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # k8s.io/apimachinery rand.SafeEncodeString
BASE_TIME = datetime(2024, 11, 4, 8, 0, 0, tzinfo=UTC)
K8S_VERSION = "v1.30.4"
NS_NAME_LABEL = "kubernetes.io/metadata.name"
PART_OF = "app.kubernetes.io/part-of"

DOMAINS = [
    "payments", "checkout", "catalog", "search", "inventory", "shipping", "orders", "accounts",
    "auth", "billing", "notify", "recommend", "reviews", "cart", "pricing", "fraud", "analytics",
    "reporting", "media", "messaging", "profile", "loyalty", "ads", "geo", "ledger", "identity",
    "support", "content", "booking", "warehouse", "returns", "tax", "promotions", "email", "sms",
    "feeds", "chat", "video", "maps", "risk", "kyc", "compliance", "audit", "partners", "webhooks",
]  # fmt: skip
FRONTEND_DOMAINS = {"checkout", "catalog", "search", "cart", "media", "content", "video", "maps"}
DATA_DOMAINS = {"analytics", "reporting", "ledger", "audit", "warehouse"}
PCI_DOMAINS = {"payments", "billing", "ledger", "fraud", "checkout"}
QUALIFIERS = [
    "core", "events", "sync", "export", "import", "admin", "public", "internal", "batch",
    "stream", "audit", "report", "edge", "query", "ingest", "rules", "state", "router",
]  # fmt: skip
ENVS = ["prod", "staging", "dev"]
HTTP_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]


@dataclass(frozen=True)
class PortSpec:
    name: str
    port: int
    protocol: str = "TCP"


@dataclass(frozen=True)
class Component:
    kind: str
    tier: str
    ports: tuple[PortSpec, ...]
    image: str
    stateful: bool = False


def _p(name: str, port: int, protocol: str = "TCP") -> PortSpec:
    return PortSpec(name, port, protocol)


COMPONENTS: dict[str, list[Component]] = {
    "web": [
        Component("web", "web", (_p("http", 8080), _p("metrics", 9102)), "nginx-unprivileged"),
        Component("frontend", "web", (_p("http", 3000), _p("metrics", 9102)), "node-frontend"),
        Component("bff", "web", (_p("http", 8000), _p("metrics", 9102)), "bff"),
    ],
    "api": [
        Component("api", "api", (_p("http", 8080), _p("grpc", 9090), _p("metrics", 9102)), "api"),
        Component("grpc", "api", (_p("grpc", 9090), _p("http-health", 8081), _p("metrics", 9102)),
                  "grpc-server"),
        Component("service", "api",
                  (_p("http", 8080), _p("metrics", 9102), _p("statsd", 8125, "UDP")), "service"),
        Component("gateway", "api", (_p("http", 8080), _p("https", 8443), _p("metrics", 9102)),
                  "envoy-gateway"),
    ],
    "worker": [
        Component("worker", "worker", (_p("metrics", 9102), _p("http-health", 8081)), "worker"),
        Component("consumer", "worker", (_p("metrics", 9102),), "kafka-consumer"),
        Component("scheduler", "worker", (_p("metrics", 9102), _p("http-health", 8081)), "cron"),
        Component("indexer", "worker", (_p("metrics", 9102), _p("statsd", 8125, "UDP")), "indexer"),
    ],
    "data": [
        Component("postgres", "data", (_p("tcp-postgres", 5432), _p("metrics", 9187)),
                  "postgres:16.4", stateful=True),
        Component("mysql", "data", (_p("tcp-mysql", 3306), _p("metrics", 9104)), "mysql:8.4.2",
                  stateful=True),
        Component("mongodb", "data", (_p("tcp-mongodb", 27017), _p("metrics", 9216)),
                  "mongo:7.0.14", stateful=True),
        Component("elasticsearch", "data", (_p("http", 9200), _p("transport", 9300)),
                  "elasticsearch:8.15.1", stateful=True),
    ],
    "cache": [
        Component("redis", "cache", (_p("tcp-redis", 6379), _p("metrics", 9121)), "redis:7.4.0"),
        Component("memcached", "cache",
                  (_p("tcp-memcache", 11211), _p("udp-memcache", 11211, "UDP"),
                   _p("metrics", 9150)), "memcached:1.6.29"),
    ],
    "media": [
        Component("turn", "media",
                  (_p("turn-udp", 3478, "UDP"), _p("turn-tcp", 3478), _p("metrics", 9102)),
                  "coturn:4.6.2"),
    ],
}  # fmt: skip
TIER_WEIGHTS = {"api": 34, "worker": 24, "web": 12, "data": 12, "cache": 10, "media": 2}
REPLICAS = {
    "web": [2, 2, 3, 3, 4, 6, 8, 10],
    "api": [1, 2, 2, 3, 3, 3, 4, 5, 6, 8, 10, 12, 15, 20],
    "worker": [1, 1, 2, 2, 3, 4, 6],
    "data": [1, 1, 3],
    "cache": [1, 1, 3, 3, 6],
    "media": [2, 4],
}


# --------------------------------------------------------------------------------------------
# In-memory cluster model
# --------------------------------------------------------------------------------------------


@dataclass
class App:
    name: str
    namespace: str
    domain: str
    tier: str
    component: Component
    replicas: int
    sa: str = "default"
    versions: list[tuple[str, str, int]] = field(default_factory=list)  # (version, hash, count)
    callers: list[tuple[App, PortSpec]] = field(default_factory=list)
    deps: list[tuple[App, PortSpec]] = field(default_factory=list)
    extra_labels: dict[str, str] = field(default_factory=dict)

    @property
    def ports(self) -> tuple[PortSpec, ...]:
        return self.component.ports

    def port(self, name: str) -> PortSpec | None:
        return next((p for p in self.ports if p.name == name), None)

    def primary_port(self) -> PortSpec:
        for name in ("grpc", "http", "https"):
            p = self.port(name)
            if p is not None:
                return p
        return self.ports[0]


@dataclass
class Namespace:
    name: str
    domain: str
    env: str
    labels: dict[str, str]
    budget: int = 0
    apps: list[App] = field(default_factory=list)
    mesh: str | None = None  # None | "sidecar" | "ambient"
    waypoint: bool = False

    def app(self, name: str) -> App | None:
        return next((a for a in self.apps if a.name == name), None)


@dataclass
class Node:
    name: str
    ip: str
    pod_cidr: str
    zone: str
    free: list[int]
    load: int = 0


def valid_label_value(value: str) -> str:
    if len(value) > 63:
        raise ValueError(f"label value too long: {value!r}")
    return value


# --------------------------------------------------------------------------------------------
# Generator
# --------------------------------------------------------------------------------------------


class Generator:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.rng = random.Random(args.seed)
        self.pods_total: int = args.pods
        self.policies_total: int = args.policies
        self.calico = args.calico_share > 0
        self.istio: bool = args.istio
        self.lean: bool = args.lean
        self.resource_version = 4_181_000
        self.namespaces: list[Namespace] = []
        self.ns_by_name: dict[str, Namespace] = {}
        self.nodes: list[Node] = []
        self.docs: dict[str, list[Obj]] = defaultdict(list)  # file stem -> objects
        self.cluster_docs: list[Obj] = []
        self.used_service_ips: set[int] = set()
        self.policy_names: dict[str, set[str]] = defaultdict(set)
        self.counts: dict[str, int] = defaultdict(int)
        self.calico_np_count = 0
        self.k8s_np_count = 0
        self.owner_uids: dict[tuple[str, str, str], str] = {}

    # ---- small helpers ---------------------------------------------------------------------

    def rand_hash(self, n: int) -> str:
        return "".join(self.rng.choice(HASH_ALPHABET) for _ in range(n))

    def uid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def instant(self, max_days: float = 120.0, min_days: float = 0.0) -> datetime:
        seconds = self.rng.uniform(min_days * 86400, max_days * 86400)
        return BASE_TIME - timedelta(seconds=int(seconds))

    def timestamp(self, max_days: float = 120.0, min_days: float = 0.0) -> str:
        return fmt_time(self.instant(max_days, min_days))

    def owner_uid(self, kind: str, namespace: str, name: str) -> str:
        key = (kind, namespace, name)
        if key not in self.owner_uids:
            self.owner_uids[key] = self.uid()
        return self.owner_uids[key]

    def rv(self) -> str:
        self.resource_version += self.rng.randint(1, 40)
        return str(self.resource_version)

    def meta(
        self,
        name: str,
        namespace: str | None = None,
        labels: dict[str, str] | None = None,
        annotations: dict[str, str] | None = None,
        generation: bool = False,
        created: str | None = None,
    ) -> Obj:
        m: Obj = {
            "name": name,
            "uid": self.uid(),
            "resourceVersion": self.rv(),
            "creationTimestamp": created or self.timestamp(),
        }
        if namespace is not None:
            m["namespace"] = namespace
        if labels:
            for value in labels.values():
                valid_label_value(value)
            m["labels"] = dict(labels)
        if annotations:
            m["annotations"] = dict(annotations)
        if generation:
            m["generation"] = self.rng.choice([1, 1, 1, 2, 3])
        return m

    def emit(self, stem: str, obj: Obj) -> None:
        self.docs[stem].append(obj)
        self.counts[f"{obj['apiVersion']}/{obj['kind']}"] += 1

    def service_ip(self) -> str:
        # 10.96.0.0/12; .1 (kubernetes) and .10 (kube-dns) are reserved up front.
        while True:
            n = self.rng.randrange(256, 1 << 20)
            if n not in self.used_service_ips:
                self.used_service_ips.add(n)
                return f"10.{96 + (n >> 16)}.{(n >> 8) & 255}.{n & 255}"

    # ---- topology ---------------------------------------------------------------------------

    def plan(self) -> None:
        n_team = max(1, round(self.pods_total / 100))
        n_nodes = max(1, math.ceil(self.pods_total / PODS_PER_NODE_TARGET))
        self.make_nodes(n_nodes)
        self.make_team_namespaces(n_team)
        if self.istio:
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
            if any(ns.waypoint for ns in self.namespaces):
                count += 1  # waypoint proxy
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
            if app.tier == "worker" and shared:
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

    # ---- objects ----------------------------------------------------------------------------

    def namespace_obj(self, name: str, labels: dict[str, str] | None = None) -> Obj:
        labels = {NS_NAME_LABEL: name, **(labels or {})}
        return {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": self.meta(name, labels=labels, created=self.timestamp(400, 200)),
            "spec": {"finalizers": ["kubernetes"]},
            "status": {"phase": "Active"},
        }

    def node_obj(self, node: Node) -> Obj:
        return {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": self.meta(
                node.name,
                labels={
                    "beta.kubernetes.io/arch": "amd64",
                    "beta.kubernetes.io/os": "linux",
                    "kubernetes.io/arch": "amd64",
                    "kubernetes.io/hostname": node.name,
                    "kubernetes.io/os": "linux",
                    "node.kubernetes.io/instance-type": "m6i.2xlarge",
                    "topology.kubernetes.io/region": "eu-west-1",
                    "topology.kubernetes.io/zone": node.zone,
                },
                annotations={"node.alpha.kubernetes.io/ttl": "0"},
                created=self.timestamp(60, 10),
            ),
            "spec": {
                "podCIDR": node.pod_cidr,
                "podCIDRs": [node.pod_cidr],
                "providerID": f"aws:///{node.zone}/i-0{self.rng.getrandbits(64):016x}",
            },
            "status": {
                "addresses": [
                    {"address": node.ip, "type": "InternalIP"},
                    {"address": node.name, "type": "Hostname"},
                    {"address": node.name, "type": "InternalDNS"},
                ],
                "allocatable": {"cpu": "7910m", "memory": "31482140Ki", "pods": "110"},
                "capacity": {"cpu": "8", "memory": "32386396Ki", "pods": "110"},
                "nodeInfo": {
                    "architecture": "amd64",
                    "containerRuntimeVersion": "containerd://1.7.20",
                    "kubeletVersion": K8S_VERSION,
                    "operatingSystem": "linux",
                },
            },
        }

    def service_account(self, ns: str, name: str, labels: dict[str, str] | None = None) -> Obj:
        return {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": self.meta(name, ns, labels=labels),
        }

    def container(self, name: str, image: str, ports: tuple[PortSpec, ...]) -> Obj:
        c: Obj = {
            "name": name,
            "image": image,
            "imagePullPolicy": "IfNotPresent",
            "terminationMessagePath": "/dev/termination-log",
            "terminationMessagePolicy": "File",
        }
        if ports:
            c["ports"] = [
                {"containerPort": p.port, "name": p.name, "protocol": p.protocol} for p in ports
            ]
        if not self.lean:
            cpu = self.rng.choice(["50m", "100m", "250m", "500m"])
            mem = self.rng.choice(["64Mi", "128Mi", "256Mi", "512Mi", "1Gi"])
            c["resources"] = {"limits": {"memory": mem}, "requests": {"cpu": cpu, "memory": mem}}
            c["volumeMounts"] = [
                {
                    "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
                    "name": "kube-api-access",
                    "readOnly": True,
                }
            ]
        return c

    def pod(
        self,
        *,
        ns: str,
        name: str,
        labels: dict[str, str],
        owner_kind: str,
        owner_name: str,
        sa: str,
        containers: list[Obj],
        node: Node,
        ip: str,
        host_network: bool = False,
        annotations: dict[str, str] | None = None,
        priority_class: str | None = None,
    ) -> Obj:
        created = self.instant(30)
        meta = self.meta(
            name, ns, labels=labels, annotations=annotations, created=fmt_time(created)
        )
        if owner_kind in ("ReplicaSet", "DaemonSet"):
            meta["generateName"] = owner_name + "-"
        meta["ownerReferences"] = [
            {
                "apiVersion": "apps/v1",
                "blockOwnerDeletion": True,
                "controller": True,
                "kind": owner_kind,
                "name": owner_name,
                "uid": self.owner_uid(owner_kind, ns, owner_name),
            }
        ]
        spec: Obj = {
            "containers": containers,
            "dnsPolicy": "ClusterFirstWithHostNet" if host_network else "ClusterFirst",
            "enableServiceLinks": True,
            "nodeName": node.name,
            "preemptionPolicy": "PreemptLowerPriority",
            "priority": 2000001000 if priority_class else 0,
            "restartPolicy": "Always",
            "schedulerName": "default-scheduler",
            "securityContext": {},
            "serviceAccount": sa,
            "serviceAccountName": sa,
            "terminationGracePeriodSeconds": 30,
        }
        if priority_class:
            spec["priorityClassName"] = priority_class
        if host_network:
            spec["hostNetwork"] = True
        if not self.lean:
            spec["tolerations"] = [
                {
                    "effect": "NoExecute",
                    "key": f"node.kubernetes.io/{k}",
                    "operator": "Exists",
                    "tolerationSeconds": 300,
                }
                for k in ("not-ready", "unreachable")
            ]
            spec["volumes"] = [
                {
                    "name": "kube-api-access",
                    "projected": {
                        "defaultMode": 420,
                        "sources": [
                            {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                            {
                                "configMap": {
                                    "items": [{"key": "ca.crt", "path": "ca.crt"}],
                                    "name": "kube-root-ca.crt",
                                }
                            },
                        ],
                    },
                }
            ]
        started = fmt_time(created + timedelta(seconds=self.rng.randint(1, 90)))
        status: Obj = {
            "hostIP": node.ip,
            "hostIPs": [{"ip": node.ip}],
            "phase": "Running",
            "podIP": ip,
            "podIPs": [{"ip": ip}],
            "qosClass": "Burstable",
            "startTime": started,
        }
        if not self.lean:
            status["conditions"] = [
                {"lastProbeTime": None, "lastTransitionTime": started, "status": "True", "type": t}
                for t in ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady",
                          "PodScheduled")
            ]  # fmt: skip
            status["containerStatuses"] = [
                {
                    "containerID": f"containerd://{self.rng.getrandbits(256):064x}",
                    "image": c["image"],
                    "imageID": f"{c['image'].split(':')[0]}@sha256:"
                    f"{self.rng.getrandbits(256):064x}",
                    "lastState": {},
                    "name": c["name"],
                    "ready": True,
                    "restartCount": self.rng.choice([0, 0, 0, 0, 1, 2]),
                    "started": True,
                    "state": {"running": {"startedAt": started}},
                }
                for c in containers
            ]
        return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec, "status": status}

    def service(
        self,
        ns: str,
        name: str,
        selector: dict[str, str] | None,
        ports: list[Obj],
        labels: dict[str, str] | None = None,
        cluster_ip: str | None = None,
        headless: bool = False,
        svc_type: str = "ClusterIP",
    ) -> Obj:
        ip = "None" if headless else (cluster_ip or self.service_ip())
        spec: Obj = {
            "clusterIP": ip,
            "clusterIPs": [ip],
            "internalTrafficPolicy": "Cluster",
            "ipFamilies": ["IPv4"],
            "ipFamilyPolicy": "SingleStack",
            "ports": ports,
            "sessionAffinity": "None",
            "type": svc_type,
        }
        if selector:
            spec["selector"] = selector
        status: Obj = {"loadBalancer": {}}
        if svc_type == "LoadBalancer":
            spec["externalTrafficPolicy"] = "Local"
            spec["allocateLoadBalancerNodePorts"] = True
            for p in ports:
                p["nodePort"] = self.rng.randint(30000, 32767)
            status = {"loadBalancer": {"ingress": [{"ip": "203.0.113.10"}]}}
        return {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": self.meta(name, ns, labels=labels),
            "spec": spec,
            "status": status,
        }

    def app_objects(self, ns: Namespace) -> None:
        stem = ns.name
        sas = sorted({a.sa for a in ns.apps if a.sa != "default"})
        self.emit(stem, self.service_account(ns.name, "default"))
        for sa in sas:
            owners = [a for a in ns.apps if a.sa == sa]
            labels = {PART_OF: ns.domain}
            if len(owners) == 1:
                labels["role"] = owners[0].tier
            self.emit(stem, self.service_account(ns.name, sa, labels))
        pods: list[Obj] = []
        for app in ns.apps:
            svc_ports = []
            for p in app.ports:
                port = {"http": 80, "https": 443}.get(p.name, p.port)
                target: int | str = p.name if p.name in ("http", "grpc", "https") else p.port
                svc_ports.append(
                    {"name": p.name, "port": port, "protocol": p.protocol, "targetPort": target}
                )
            self.emit(
                stem,
                self.service(
                    ns.name,
                    app.name,
                    {"app": app.name},
                    svc_ports,
                    labels={"app": app.name, PART_OF: ns.domain},
                    headless=app.component.stateful,
                ),
            )
            pods.extend(self.app_pods(ns, app))
        for pod in pods:
            self.emit(stem, pod)

    def app_pods(self, ns: Namespace, app: App) -> list[Obj]:
        out = []
        image = app.component.image
        if ":" not in image:
            minor, patch = self.rng.randint(0, 40), self.rng.randint(0, 20)
            image = f"registry.example.com/{ns.domain}/{image}:1.{minor}.{patch}"
        ordinal = 0
        for version, rs_hash, count in app.versions:
            for _ in range(count):
                labels = {
                    "app": app.name,
                    "version": version,
                    "tier": app.tier,
                    PART_OF: app.domain,
                }
                labels.update(app.extra_labels)
                annotations: dict[str, str] = {}
                if app.component.stateful:
                    name = f"{app.name}-{ordinal}"
                    labels["controller-revision-hash"] = rs_hash
                    labels["statefulset.kubernetes.io/pod-name"] = name
                    owner_kind, owner_name = "StatefulSet", app.name
                    ordinal += 1
                else:
                    name = f"{app.name}-{rs_hash}-{self.rand_hash(5)}"
                    labels["pod-template-hash"] = rs_hash
                    owner_kind, owner_name = "ReplicaSet", f"{app.name}-{rs_hash}"
                containers = [self.container(app.name, image, app.ports)]
                if ns.mesh == "sidecar":
                    labels["security.istio.io/tlsMode"] = "istio"
                    labels["service.istio.io/canonical-name"] = app.name
                    labels["service.istio.io/canonical-revision"] = version
                    annotations["istio.io/rev"] = "default"
                    annotations["kubectl.kubernetes.io/default-container"] = app.name
                    annotations["sidecar.istio.io/status"] = json.dumps(
                        {
                            "initContainers": ["istio-init"],
                            "containers": ["istio-proxy"],
                            "volumes": ["istio-envoy", "istio-data", "istio-token"],
                            "revision": "default",
                        },
                        separators=(",", ":"),
                    )
                    containers.append(
                        self.container(
                            "istio-proxy",
                            "docker.io/istio/proxyv2:1.23.2",
                            (_p("http-envoy-prom", 15090),),
                        )
                    )
                elif ns.mesh == "ambient":
                    annotations["ambient.istio.io/redirection"] = "enabled"
                if self.rng.random() < 0.5:
                    annotations["prometheus.io/scrape"] = "true"
                    metrics = app.port("metrics")
                    if metrics:
                        annotations["prometheus.io/port"] = str(metrics.port)
                node, ip = self.place()
                out.append(
                    self.pod(
                        ns=ns.name,
                        name=name,
                        labels=labels,
                        owner_kind=owner_kind,
                        owner_name=owner_name,
                        sa=app.sa,
                        containers=containers,
                        node=node,
                        ip=ip,
                        annotations=annotations or None,
                    )
                )
        return out

    def system_objects(self) -> None:
        """kube-system, default, monitoring, ingress-nginx, calico-system and istio-system."""
        ks = "kube-system"
        self.emit(ks, self.service_account(ks, "default"))
        for sa in ("coredns", "kube-proxy", "metrics-server"):
            self.emit(ks, self.service_account(ks, sa))
        self.used_service_ips.update({1, 10})
        self.emit(
            ks,
            self.service(
                ks,
                "kube-dns",
                {"k8s-app": "kube-dns"},
                [
                    sp("dns", 53, 53, "UDP"),
                    sp("dns-tcp", 53, 53),
                    sp("metrics", 9153, 9153),
                ],
                labels={"k8s-app": "kube-dns", "kubernetes.io/name": "CoreDNS"},
                cluster_ip="10.96.0.10",
            ),
        )
        self.emit(
            ks,
            self.service(
                ks,
                "metrics-server",
                {"k8s-app": "metrics-server"},
                [sp("https", 443, "https")],
                labels={"k8s-app": "metrics-server"},
            ),
        )
        self.deployment_pods(
            ks,
            "coredns",
            2,
            {"k8s-app": "kube-dns"},
            "coredns",
            "registry.k8s.io/coredns/coredns:v1.11.3",
            (_p("dns", 53, "UDP"), _p("dns-tcp", 53), _p("metrics", 9153)),
            priority_class="system-cluster-critical",
        )
        self.deployment_pods(
            ks,
            "metrics-server",
            1,
            {"k8s-app": "metrics-server"},
            "metrics-server",
            "registry.k8s.io/metrics-server/metrics-server:v0.7.2",
            (_p("https", 10250),),
            priority_class="system-cluster-critical",
        )
        self.daemonset_pods(
            ks,
            "kube-proxy",
            {"k8s-app": "kube-proxy"},
            "kube-proxy",
            f"registry.k8s.io/kube-proxy:{K8S_VERSION}",
            (),
            host_network=True,
        )

        self.emit("default", self.service_account("default", "default"))
        self.emit(
            "default",
            self.service(
                "default",
                "kubernetes",
                None,
                [sp("https", 443, 6443)],
                labels={"component": "apiserver", "provider": "kubernetes"},
                cluster_ip="10.96.0.1",
            ),
        )

        mon = "monitoring"
        self.emit(mon, self.service_account(mon, "default"))
        self.emit(mon, self.service_account(mon, "prometheus-k8s"))
        self.emit(mon, self.service_account(mon, "grafana"))
        prom = {"app.kubernetes.io/name": "prometheus", "app.kubernetes.io/instance": "k8s"}
        self.emit(
            mon,
            self.service(
                mon,
                "prometheus-k8s",
                prom,
                [sp("web", 9090, "web")],
                labels=prom,
            ),
        )
        self.statefulset_pods(
            mon,
            "prometheus-k8s",
            2,
            prom,
            "prometheus-k8s",
            "quay.io/prometheus/prometheus:v2.54.1",
            (_p("web", 9090),),
        )
        graf = {"app.kubernetes.io/name": "grafana"}
        self.emit(
            mon,
            self.service(
                mon,
                "grafana",
                graf,
                [sp("http", 3000, "http")],
                labels=graf,
            ),
        )
        self.deployment_pods(
            mon, "grafana", 1, graf, "grafana", "grafana/grafana:11.2.0", (_p("http", 3000),)
        )

        ing = "ingress-nginx"
        self.emit(ing, self.service_account(ing, "default"))
        self.emit(ing, self.service_account(ing, "ingress-nginx"))
        ctrl = {
            "app.kubernetes.io/component": "controller",
            "app.kubernetes.io/instance": "ingress-nginx",
            "app.kubernetes.io/name": "ingress-nginx",
        }
        self.emit(
            ing,
            self.service(
                ing,
                "ingress-nginx-controller",
                ctrl,
                [
                    sp("http", 80, "http"),
                    sp("https", 443, "https"),
                ],
                labels=ctrl,
                svc_type="LoadBalancer",
            ),
        )
        self.deployment_pods(
            ing,
            "ingress-nginx-controller",
            2,
            ctrl,
            "ingress-nginx",
            "registry.k8s.io/ingress-nginx/controller:v1.11.2",
            (_p("http", 80), _p("https", 443), _p("webhook", 8443), _p("metrics", 10254)),
        )

        if self.calico:
            cs = "calico-system"
            for sa in ("default", "calico-node", "calico-kube-controllers"):
                self.emit(cs, self.service_account(cs, sa))
            self.daemonset_pods(
                cs,
                "calico-node",
                {"k8s-app": "calico-node"},
                "calico-node",
                "docker.io/calico/node:v3.29.0",
                (),
                host_network=True,
            )
            self.deployment_pods(
                cs,
                "calico-kube-controllers",
                1,
                {"k8s-app": "calico-kube-controllers"},
                "calico-kube-controllers",
                "docker.io/calico/kube-controllers:v3.29.0",
                (),
            )

        if self.istio:
            isys = "istio-system"
            for sa in ("default", "istiod", "ztunnel"):
                self.emit(isys, self.service_account(isys, sa))
            istiod = {"app": "istiod", "istio": "pilot", "istio.io/rev": "default"}
            self.emit(
                isys,
                self.service(
                    isys,
                    "istiod",
                    {"app": "istiod", "istio": "pilot"},
                    [
                        sp("grpc-xds", 15010, 15010),
                        sp("https-dns", 15012, 15012),
                        sp("https-webhook", 443, 15017),
                        sp("http-monitoring", 15014, 15014),
                    ],
                    labels=istiod,
                ),
            )
            self.deployment_pods(
                isys,
                "istiod",
                2,
                istiod,
                "istiod",
                "docker.io/istio/pilot:1.23.2",
                (_p("http-debug", 8080), _p("grpc-xds", 15010), _p("https-dns", 15012),
                 _p("https-webhook", 15017), _p("http-monitoring", 15014)),
            )  # fmt: skip
            if any(ns.mesh == "ambient" for ns in self.namespaces):
                self.daemonset_pods(
                    isys,
                    "ztunnel",
                    {"app": "ztunnel"},
                    "ztunnel",
                    "docker.io/istio/ztunnel:1.23.2",
                    (_p("ztunnel-stats", 15020),),
                )
            for ns in self.namespaces:
                if ns.waypoint:
                    wp = {
                        "gateway.networking.k8s.io/gateway-name": "waypoint",
                        "gateway.istio.io/managed": "istio.io-mesh-controller",
                    }
                    self.emit(ns.name, self.service_account(ns.name, "waypoint"))
                    self.emit(
                        ns.name,
                        self.service(
                            ns.name,
                            "waypoint",
                            {"gateway.networking.k8s.io/gateway-name": "waypoint"},
                            [
                                sp("mesh", 15008, 15008),
                                sp("status-port", 15021, 15021),
                            ],
                            labels=wp,
                        ),
                    )
                    self.deployment_pods(
                        ns.name,
                        "waypoint",
                        1,
                        wp,
                        "waypoint",
                        "docker.io/istio/proxyv2:1.23.2",
                        (_p("mesh", 15008), _p("status-port", 15021), _p("http-envoy-prom", 15090)),
                    )

    def deployment_pods(
        self,
        ns: str,
        name: str,
        replicas: int,
        labels: dict[str, str],
        sa: str,
        image: str,
        ports: tuple[PortSpec, ...],
        priority_class: str | None = None,
    ) -> None:
        rs_hash = self.rand_hash(10)
        for _ in range(replicas):
            node, ip = self.place()
            self.emit(
                ns,
                self.pod(
                    ns=ns,
                    name=f"{name}-{rs_hash}-{self.rand_hash(5)}",
                    labels={**labels, "pod-template-hash": rs_hash},
                    owner_kind="ReplicaSet",
                    owner_name=f"{name}-{rs_hash}",
                    sa=sa,
                    containers=[self.container(name.split("-")[0], image, ports)],
                    node=node,
                    ip=ip,
                    priority_class=priority_class,
                ),
            )

    def statefulset_pods(
        self,
        ns: str,
        name: str,
        replicas: int,
        labels: dict[str, str],
        sa: str,
        image: str,
        ports: tuple[PortSpec, ...],
    ) -> None:
        rev = f"{name}-{self.rand_hash(10)}"
        for i in range(replicas):
            node, ip = self.place()
            self.emit(
                ns,
                self.pod(
                    ns=ns,
                    name=f"{name}-{i}",
                    labels={
                        **labels,
                        "controller-revision-hash": rev,
                        "statefulset.kubernetes.io/pod-name": f"{name}-{i}",
                    },
                    owner_kind="StatefulSet",
                    owner_name=name,
                    sa=sa,
                    containers=[self.container(name.split("-")[0], image, ports)],
                    node=node,
                    ip=ip,
                ),
            )

    def daemonset_pods(
        self,
        ns: str,
        name: str,
        labels: dict[str, str],
        sa: str,
        image: str,
        ports: tuple[PortSpec, ...],
        host_network: bool = False,
    ) -> None:
        rev = self.rand_hash(10)
        for node in self.nodes:
            ip = node.ip if host_network else self.place_on(node)
            if host_network:
                node.load += 1
            self.emit(
                ns,
                self.pod(
                    ns=ns,
                    name=f"{name}-{self.rand_hash(5)}",
                    labels={
                        **labels,
                        "controller-revision-hash": rev,
                        "pod-template-generation": "1",
                    },
                    owner_kind="DaemonSet",
                    owner_name=name,
                    sa=sa,
                    containers=[self.container(name, image, ports)],
                    node=node,
                    ip=ip,
                    host_network=host_network,
                    priority_class="system-node-critical",
                ),
            )
            self.counts["hostNetwork pods"] += int(host_network)

    # ---- Kubernetes NetworkPolicies ---------------------------------------------------------

    def np_name(self, ns: str, base: str) -> str:
        base = base[:200].rstrip("-.")
        name, i = base, 2
        while name in self.policy_names[ns]:
            name = f"{base}-{i}"
            i += 1
        self.policy_names[ns].add(name)
        return name

    def netpol(self, ns: str, name: str, spec: Obj) -> Obj:
        annotations = None
        labels = None
        if not self.lean and self.rng.random() < 0.25:
            applied = {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "NetworkPolicy",
                "metadata": {"annotations": {}, "name": name, "namespace": ns},
                "spec": spec,
            }
            annotations = {
                "kubectl.kubernetes.io/last-applied-configuration": json.dumps(
                    applied, separators=(",", ":"), sort_keys=True
                )
                + "\n"
            }
        elif self.rng.random() < 0.5:
            labels = {"app.kubernetes.io/managed-by": "Helm", "helm.sh/chart": "netpol-0.4.1"}
            annotations = {"meta.helm.sh/release-name": ns, "meta.helm.sh/release-namespace": ns}
        return {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": self.meta(
                name, ns, labels=labels, annotations=annotations, generation=True
            ),
            "spec": spec,
        }

    def port_entry(self, p: PortSpec, named: bool | None = None) -> Obj:
        use_name = self.rng.random() < 0.5 if named is None else named
        entry: Obj = {"port": p.name if use_name else p.port}
        if p.protocol != "TCP" or self.rng.random() < 0.7:
            entry["protocol"] = p.protocol
        return entry

    def baseline_policies(self, ns: str) -> list[tuple[str, Obj]]:
        deny = (
            "default-deny-all",
            {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
        )
        dns = (
            "allow-dns-egress",
            {
                "podSelector": {},
                "policyTypes": ["Egress"],
                "egress": [
                    {
                        "to": [
                            {
                                "namespaceSelector": {
                                    "matchLabels": {NS_NAME_LABEL: "kube-system"}
                                },
                                "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
                            }
                        ],
                        "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}],
                    }
                ],
            },
        )
        return [deny, dns]

    def system_allow_policies(self) -> list[tuple[str, str, Obj]]:
        prom = {"app.kubernetes.io/name": "prometheus"}
        ctrl = {
            "app.kubernetes.io/name": "ingress-nginx",
            "app.kubernetes.io/component": "controller",
        }
        return [
            (
                "monitoring",
                "allow-prometheus-scrape",
                {
                    "podSelector": {"matchLabels": prom},
                    "policyTypes": ["Egress"],
                    "egress": [
                        {
                            "to": [
                                {
                                    "namespaceSelector": {},
                                    "podSelector": {
                                        "matchExpressions": [{"key": "app", "operator": "Exists"}]
                                    },
                                }
                            ],
                            "ports": [{"port": "metrics", "protocol": "TCP"}],
                        },
                        {
                            "to": [{"ipBlock": {"cidr": NODE_SUBNET}}],
                            "ports": [
                                {"port": 10250, "protocol": "TCP"},
                                {"port": 10249, "protocol": "TCP"},
                            ],
                        },
                    ],
                },
            ),
            (
                "monitoring",
                "allow-grafana-to-prometheus",
                {
                    "podSelector": {"matchLabels": prom},
                    "policyTypes": ["Ingress"],
                    "ingress": [
                        {
                            "from": [
                                {
                                    "podSelector": {
                                        "matchLabels": {"app.kubernetes.io/name": "grafana"}
                                    }
                                }
                            ],
                            "ports": [{"port": "web", "protocol": "TCP"}],
                        }
                    ],
                },
            ),
            (
                "ingress-nginx",
                "allow-external-http",
                {
                    "podSelector": {"matchLabels": ctrl},
                    "policyTypes": ["Ingress"],
                    "ingress": [
                        {
                            "from": [{"ipBlock": {"cidr": "0.0.0.0/0"}}],
                            "ports": [
                                {"port": "http", "protocol": "TCP"},
                                {"port": "https", "protocol": "TCP"},
                            ],
                        }
                    ],
                },
            ),
            (
                "ingress-nginx",
                "allow-egress-to-frontends",
                {
                    "podSelector": {"matchLabels": ctrl},
                    "policyTypes": ["Egress"],
                    "egress": [
                        {
                            "to": [
                                {
                                    "namespaceSelector": {
                                        "matchExpressions": [
                                            {
                                                "key": "env",
                                                "operator": "In",
                                                "values": ["prod", "staging"],
                                            }
                                        ]
                                    },
                                    "podSelector": {"matchLabels": {"tier": "web"}},
                                }
                            ],
                            "ports": [{"port": "http", "protocol": "TCP"}],
                        }
                    ],
                },
            ),
        ]

    # Each allow-policy kind returns (name, spec) or None when its preconditions fail.

    def k_ingress_callers(self, ns: Namespace, app: App) -> tuple[str, Obj] | None:
        local = [(c, p) for c, p in app.callers if c.namespace == ns.name]
        if not local:
            return None
        local = local[:4]
        ports = []
        for p in dict.fromkeys(p for _, p in local):
            ports.append(self.port_entry(p))
        spec: Obj = {
            "podSelector": {"matchLabels": {"app": app.name}},
            "ingress": [
                {
                    "from": [{"podSelector": {"matchLabels": {"app": c.name}}} for c, _ in local],
                    "ports": ports,
                }
            ],
        }
        if self.rng.random() > 0.15:  # some authors omit policyTypes (defaults to Ingress)
            spec["policyTypes"] = ["Ingress"]
        src = local[0][0].name if len(local) == 1 else "callers"
        return f"allow-{src}-to-{app.name}", spec

    def k_ingress_cross_ns(self, ns: Namespace, app: App) -> tuple[str, Obj] | None:
        remote = [(c, p) for c, p in app.callers if c.namespace != ns.name]
        if remote:
            peers = []
            for c, _ in remote[:3]:
                caller_ns = self.ns_by_name[c.namespace]
                if self.rng.random() < 0.6:
                    ns_sel: Obj = {"matchLabels": {NS_NAME_LABEL: caller_ns.name}}
                else:
                    ns_sel = {"matchLabels": {"team": caller_ns.domain, "env": caller_ns.env}}
                peers.append(
                    {"namespaceSelector": ns_sel, "podSelector": {"matchLabels": {"app": c.name}}}
                )
            ports = [self.port_entry(p, named=False) for p in dict.fromkeys(p for _, p in remote)]
            name = f"allow-{remote[0][0].namespace}-to-{app.name}"
        elif app.tier == "api":
            peers = [
                {
                    "namespaceSelector": {
                        "matchExpressions": [
                            {"key": "env", "operator": "In", "values": [ns.env]},
                            {"key": "team", "operator": "NotIn", "values": [ns.domain]},
                        ]
                    },
                    "podSelector": {"matchLabels": {"tier": "api"}},
                }
            ]
            ports = [self.port_entry(app.primary_port(), named=False)]
            name = f"allow-{ns.env}-apis-to-{app.name}"
        else:
            return None
        spec = {
            "podSelector": {"matchLabels": {"app": app.name}},
            "policyTypes": ["Ingress"],
            "ingress": [{"from": peers, "ports": ports}],
        }
        return name, spec

    def k_ingress_exprs(self, ns: Namespace, app: App) -> tuple[str, Obj] | None:
        tiers = sorted({app.tier, "api"})
        others = [a.name for a in ns.apps if a.tier in ("web", "worker") and a is not app]
        excluded = sorted(self.rng.sample(others, min(len(others), 2))) or [f"{ns.domain}-legacy"]
        port = app.port("http") or app.primary_port()
        spec = {
            "podSelector": {
                "matchExpressions": [{"key": "tier", "operator": "In", "values": tiers}]
            },
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": [
                        {
                            "podSelector": {
                                "matchExpressions": [
                                    {"key": "tier", "operator": "In", "values": ["web", "worker"]},
                                    {"key": "app", "operator": "NotIn", "values": excluded},
                                    {"key": "version", "operator": "Exists"},
                                ]
                            }
                        }
                    ],
                    "ports": [{"port": port.name, "protocol": port.protocol}],
                }
            ],
        }
        return f"allow-{'-'.join(tiers)}-from-internal", spec

    def k_ingress_metrics(self, ns: Namespace, app: App) -> tuple[str, Obj] | None:
        peer = {
            "namespaceSelector": {"matchLabels": {NS_NAME_LABEL: "monitoring"}},
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}},
        }
        if "allow-prometheus-scrape" not in self.policy_names[ns.name]:
            spec = {
                "podSelector": {"matchExpressions": [{"key": "app", "operator": "Exists"}]},
                "policyTypes": ["Ingress"],
                "ingress": [{"from": [peer], "ports": [{"port": "metrics", "protocol": "TCP"}]}],
            }
            return "allow-prometheus-scrape", spec
        metrics = app.port("metrics")
        if metrics is None:
            return None
        spec = {
            "podSelector": {"matchLabels": {"app": app.name}},
            "policyTypes": ["Ingress"],
            "ingress": [{"from": [peer], "ports": [{"port": metrics.port, "protocol": "TCP"}]}],
        }
        return f"allow-metrics-{app.name}", spec

    def k_ingress_controller(self, ns: Namespace, app: App) -> tuple[str, Obj] | None:
        if app.tier != "web":
            return None
        port = app.port("http") or app.primary_port()
        spec = {
            "podSelector": {"matchLabels": {"app": app.name}},
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": [
                        {
                            "namespaceSelector": {"matchLabels": {NS_NAME_LABEL: "ingress-nginx"}},
                            "podSelector": {
                                "matchLabels": {"app.kubernetes.io/name": "ingress-nginx"}
                            },
                        }
                    ],
                    "ports": [self.port_entry(port)],
                }
            ],
        }
        return f"allow-ingress-nginx-to-{app.name}", spec

    def k_egress_deps(self, ns: Namespace, app: App) -> tuple[str, Obj] | None:
        local = [(d, p) for d, p in app.deps if d.namespace == ns.name]
        if not local:
            return None
        rules = [
            {
                "to": [{"podSelector": {"matchLabels": {"app": d.name}}}],
                "ports": [self.port_entry(p)],
            }
            for d, p in local[:4]
        ]
        spec = {
            "podSelector": {"matchLabels": {"app": app.name}},
            "policyTypes": ["Egress"],
            "egress": rules,
        }
        return f"allow-{app.name}-egress", spec

    def k_egress_cross_ns(self, ns: Namespace, app: App) -> tuple[str, Obj] | None:
        remote = [(d, p) for d, p in app.deps if d.namespace != ns.name]
        if not remote:
            return None
        dep, port = remote[0]
        spec = {
            "podSelector": {"matchLabels": {"app": app.name}},
            "policyTypes": ["Egress"],
            "egress": [
                {
                    "to": [
                        {
                            "namespaceSelector": {"matchLabels": {NS_NAME_LABEL: dep.namespace}},
                            "podSelector": {"matchLabels": {"app": dep.name}},
                        }
                    ],
                    "ports": [{"port": port.name, "protocol": port.protocol}],
                }
            ],
        }
        return f"allow-{app.name}-to-{dep.namespace}", spec

    def k_egress_external(self, ns: Namespace, app: App) -> tuple[str, Obj] | None:
        roll = self.rng.random()
        if roll < 0.55:
            block = {"cidr": "0.0.0.0/0", "except": [*PRIVATE_RANGES, "169.254.0.0/16"]}
            ports: list[Obj] = [{"port": 443, "protocol": "TCP"}]
            name = f"allow-{app.name}-internet-https"
        elif roll < 0.8:
            block = {"cidr": "203.0.113.0/24", "except": ["203.0.113.128/26"]}
            ports = [{"port": 8443, "protocol": "TCP"}, {"port": 443, "protocol": "TCP"}]
            name = f"allow-{app.name}-partner-api"
        elif roll < 0.92:
            block = {"cidr": "198.51.100.0/24"}
            ports = [{"port": 30000, "endPort": 32767, "protocol": "TCP"}]
            name = f"allow-{app.name}-partner-nodeports"
        else:
            block = {"cidr": "2001:db8::/32", "except": ["2001:db8:dead::/48"]}
            ports = [{"port": 443, "protocol": "TCP"}]
            name = f"allow-{app.name}-ipv6-egress"
        spec = {
            "podSelector": {"matchLabels": {"app": app.name}},
            "policyTypes": ["Egress"],
            "egress": [{"to": [{"ipBlock": block}], "ports": ports}],
        }
        return name, spec

    def k_port_range(self, ns: Namespace, app: App) -> tuple[str, Obj] | None:
        if app.tier == "media":
            rule: Obj = {
                "from": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": PRIVATE_RANGES[:1]}}],
                "ports": [
                    {"port": "turn-udp", "protocol": "UDP"},
                    {"port": 49152, "endPort": 49251, "protocol": "UDP"},
                ],
            }
        elif app.tier == "api":
            rule = {
                "from": [{"podSelector": {"matchLabels": {"tier": "worker"}}}],
                "ports": [{"port": 8000, "endPort": 8099, "protocol": "TCP"}],
            }
        else:
            return None
        spec = {
            "podSelector": {"matchLabels": {"app": app.name}},
            "policyTypes": ["Ingress"],
            "ingress": [rule],
        }
        return f"allow-{app.name}-port-range", spec

    def k_ingress_ns_only(self, ns: Namespace, app: App) -> tuple[str, Obj]:
        if self.rng.random() < 0.5:
            ns_sel: Obj = {"matchLabels": {"team": ns.domain}}
            name = f"allow-team-{ns.domain}-to-{app.name}"
        else:
            ns_sel = {"matchLabels": {"env": ns.env, "tier": ns.labels["tier"]}}
            name = f"allow-{ns.env}-{ns.labels['tier']}-to-{app.name}"
        rule: Obj = {"from": [{"namespaceSelector": ns_sel}]}
        if self.rng.random() < 0.7:
            rule["ports"] = [self.port_entry(app.primary_port())]
        spec = {"podSelector": {"matchLabels": {"app": app.name}}, "ingress": [rule]}
        if self.rng.random() < 0.8:
            spec["policyTypes"] = ["Ingress"]
        return name, spec

    def k_allow_all_to_port(self, ns: Namespace, app: App) -> tuple[str, Obj] | None:
        if app.tier != "web":
            return None
        port = app.port("http") or app.primary_port()
        spec = {
            "podSelector": {"matchLabels": {"app": app.name}},
            "policyTypes": ["Ingress"],
            "ingress": [{"ports": [{"port": port.port, "protocol": "TCP"}]}],
        }
        return f"allow-any-to-{app.name}-http", spec

    def k_bidirectional(self, ns: Namespace, app: App) -> tuple[str, Obj] | None:
        local_in = [(c, p) for c, p in app.callers if c.namespace == ns.name][:3]
        local_out = [(d, p) for d, p in app.deps if d.namespace == ns.name][:3]
        if not local_in or not local_out:
            return None
        spec = {
            "podSelector": {"matchLabels": {"app": app.name, "tier": app.tier}},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [
                {
                    "from": [{"podSelector": {"matchLabels": {"app": c.name}}}],
                    "ports": [self.port_entry(p)],
                }
                for c, p in local_in
            ],
            "egress": [
                {
                    "to": [{"podSelector": {"matchLabels": {"app": d.name}}} for d, _ in local_out],
                    "ports": [self.port_entry(p) for p in dict.fromkeys(p for _, p in local_out)],
                }
            ],
        }
        return f"{app.name}-netpol", spec

    def k_udp(self, ns: Namespace, app: App) -> tuple[str, Obj] | None:
        udp = [p for p in app.ports if p.protocol == "UDP"]
        if not udp:
            return None
        spec = {
            "podSelector": {"matchLabels": {"app": app.name}},
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": [{"podSelector": {}}],
                    "ports": [{"port": p.name, "protocol": "UDP"} for p in udp],
                }
            ],
        }
        return f"allow-{app.name}-udp", spec

    def k_stale(self, ns: Namespace, app: App) -> tuple[str, Obj]:
        ghost = f"{ns.domain}-legacy-{self.rng.choice(QUALIFIERS)}"
        spec = {
            "podSelector": {"matchLabels": {"app": ghost}},
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": [{"podSelector": {"matchLabels": {"app": app.name}}}],
                    "ports": [{"port": 8080, "protocol": "TCP"}],
                }
            ],
        }
        return f"allow-{app.name}-to-{ghost}", spec

    def allow_policy(self, ns: Namespace, app: App) -> tuple[str, Obj]:
        kinds = [
            (self.k_ingress_callers, 28),
            (self.k_egress_deps, 14),
            (self.k_ingress_cross_ns, 10),
            (self.k_ingress_controller, 8),
            (self.k_ingress_exprs, 7),
            (self.k_bidirectional, 7),
            (self.k_egress_external, 6),
            (self.k_egress_cross_ns, 6),
            (self.k_ingress_metrics, 4),
            (self.k_ingress_ns_only, 4),
            (self.k_port_range, 3),
            (self.k_udp, 3),
            (self.k_allow_all_to_port, 2),
            (self.k_stale, 1),
        ]
        fns, weights = zip(*kinds, strict=True)
        taken = self.policy_names[ns.name]
        result = None
        for _ in range(4):  # prefer a kind that yields a policy not already present
            result = self.rng.choices(fns, weights)[0](ns, app)
            if result is not None and result[0] not in taken:
                return result
        for fallback in (self.k_ingress_callers, self.k_egress_deps, self.k_ingress_ns_only):
            if result is not None:
                break
            result = fallback(ns, app)
        assert result is not None
        return result

    # ---- Calico -----------------------------------------------------------------------------

    def calico_selector(self, sel: Obj | None) -> str:
        if not sel:
            return "all()"
        parts = [f"{k} == '{v}'" for k, v in sel.get("matchLabels", {}).items()]
        for expr in sel.get("matchExpressions", []):
            key, op = expr["key"], expr["operator"]
            values = ", ".join(f"'{v}'" for v in expr.get("values", []))
            parts.append(
                {
                    "In": f"{key} in {{{values}}}",
                    "NotIn": f"{key} not in {{{values}}}",
                    "Exists": f"has({key})",
                    "DoesNotExist": f"!has({key})",
                }[op]
            )
        return " && ".join(parts) if parts else "all()"

    def calico_entity(self, ns: Namespace, peer: Obj, source: bool) -> Obj:
        if "ipBlock" in peer:
            block = peer["ipBlock"]
            if block["cidr"] in ("198.51.100.0/24", "203.0.113.0/24") and self.rng.random() < 0.5:
                return {"namespaceSelector": "global()", "selector": "role == 'external-partners'"}
            ent: Obj = {"nets": [block["cidr"]]}
            if block.get("except"):
                ent["notNets"] = list(block["except"])
            return ent
        ent = {}
        if "namespaceSelector" in peer:
            ent["namespaceSelector"] = self.calico_selector(peer["namespaceSelector"])
        pod_sel = peer.get("podSelector")
        if pod_sel is None:
            return ent
        labels = pod_sel.get("matchLabels", {})
        if source and "namespaceSelector" not in peer and list(labels) == ["app"]:
            app = ns.app(labels["app"])
            roll = self.rng.random()
            if app is not None and app.sa != "default" and roll < 0.35:
                ent["serviceAccounts"] = {"names": [app.sa]}
                return ent
            if app is not None and roll < 0.42:
                ent["serviceAccounts"] = {"selector": f"{PART_OF} == '{ns.domain}'"}
                ent["selector"] = self.calico_selector(pod_sel)
                return ent
        if pod_sel or "namespaceSelector" not in peer:
            ent["selector"] = self.calico_selector(pod_sel)
        return ent

    def calico_rules(
        self, ns: Namespace, peers: list[Obj] | None, ports: list[Obj] | None, ingress: bool
    ) -> list[Obj]:
        groups: dict[str, list[int | str]] = {}
        for entry in ports or []:
            proto = entry.get("protocol", "TCP")
            plist = groups.setdefault(proto, [])
            if "port" in entry:
                port = entry["port"]
                plist.append(f"{port}:{entry['endPort']}" if "endPort" in entry else port)
        rules = []
        for peer in peers or [None]:
            ent = self.calico_entity(ns, peer, source=ingress) if peer is not None else {}
            for proto, plist in list(groups.items()) or [(None, [])]:
                rule: Obj = {"action": "Allow"}
                if proto is not None:
                    rule["protocol"] = proto
                dest: Obj = {} if ingress else dict(ent)
                if plist:
                    dest["ports"] = list(plist)
                if ingress and ent:
                    rule["source"] = ent
                if dest:
                    rule["destination"] = dest
                rules.append(rule)
        return rules

    def to_calico(self, ns: Namespace, name: str, spec: Obj) -> Obj:
        rng = self.rng
        types = spec.get("policyTypes") or (
            ["Ingress", "Egress"] if "egress" in spec else ["Ingress"]
        )
        selector = self.calico_selector(spec["podSelector"])
        labels = spec["podSelector"].get("matchLabels", {})
        if list(labels) == ["app"] and rng.random() < 0.3:
            app = ns.app(labels["app"])
            if app is not None:
                tiers = ", ".join(f"'{t}'" for t in sorted({app.tier, "api", "web"}))
                selector += f" && tier in {{{tiers}}}"
        cspec: Obj = {"selector": selector, "types": list(types)}
        order = rng.choice([None, 100, 200, 250, 500, 500, 750, 900, 1100])
        if order is not None:
            cspec["order"] = order
        ingress = [
            r
            for rule in spec.get("ingress", [])
            for r in self.calico_rules(ns, rule.get("from"), rule.get("ports"), ingress=True)
        ]
        egress = [
            r
            for rule in spec.get("egress", [])
            for r in self.calico_rules(ns, rule.get("to"), rule.get("ports"), ingress=False)
        ]
        if "Egress" in types and rng.random() < 0.25:
            egress.insert(
                0,
                {
                    "action": "Deny",
                    "protocol": "TCP",
                    "destination": {"nets": [METADATA_IP], "ports": [80]},
                },
            )
        if "Ingress" in types and rng.random() < 0.1:
            ingress.insert(0, {"action": "Deny", "source": {"selector": "quarantine == 'true'"}})
        tiered = rng.random() < 0.15
        if tiered:
            cspec["tier"] = "platform"
            name = f"platform.{name}"
            if "Ingress" in types:
                ingress.append({"action": "Pass"})
            if "Egress" in types:
                egress.append({"action": "Pass"})
        if ingress:
            cspec["ingress"] = ingress
        if egress:
            cspec["egress"] = egress
        return {
            "apiVersion": "projectcalico.org/v3",
            "kind": "NetworkPolicy",
            "metadata": self.meta(name, ns.name, generation=True),
            "spec": cspec,
        }

    def calico_globals(self) -> None:
        def gobj(kind: str, name: str, spec: Obj, labels: dict[str, str] | None = None) -> Obj:
            return {
                "apiVersion": "projectcalico.org/v3",
                "kind": kind,
                "metadata": self.meta(name, labels=labels, generation=True),
                "spec": spec,
            }

        team = sorted(ns.name for ns in self.namespaces)
        pick = sorted(self.rng.sample(team, min(len(team), max(2, len(team) // 3))))
        ns_set = ", ".join(f"'{n}'" for n in pick)
        domains = sorted({ns.domain for ns in self.namespaces if ns.domain in PCI_DOMAINS}) or [
            self.namespaces[0].domain
        ]
        dom_set = ", ".join(f"'{d}'" for d in domains)
        docs = [
            gobj("Tier", "security", {"order": 100, "defaultAction": "Pass"}),
            gobj("Tier", "platform", {"order": 200, "defaultAction": "Deny"}),
            gobj(
                "GlobalNetworkSet",
                "external-partners",
                {"nets": list(PARTNER_NETS)},
                labels={"role": "external-partners"},
            ),
            gobj(
                "GlobalNetworkPolicy",
                "security.block-cloud-metadata",
                {
                    "tier": "security",
                    "order": 10,
                    "selector": "all()",
                    "types": ["Egress"],
                    "egress": [
                        {
                            "action": "Deny",
                            "protocol": "TCP",
                            "destination": {"nets": [METADATA_IP], "ports": [80, 443]},
                        }
                    ],
                },
            ),
            gobj(
                "GlobalNetworkPolicy",
                "security.quarantine",
                {
                    "tier": "security",
                    "order": 20,
                    "selector": "quarantine == 'true'",
                    "types": ["Ingress", "Egress"],
                    "ingress": [{"action": "Deny"}],
                    "egress": [{"action": "Deny"}],
                },
            ),
            gobj(
                "GlobalNetworkPolicy",
                "security.deny-nonprod-to-prod",
                {
                    "tier": "security",
                    "order": 30,
                    "namespaceSelector": "env == 'prod'",
                    "selector": "all()",
                    "types": ["Ingress"],
                    "ingress": [
                        {
                            "action": "Deny",
                            "source": {"namespaceSelector": "env in {'dev', 'staging'}"},
                        },
                        {"action": "Pass"},
                    ],
                },
            ),
            gobj(
                "GlobalNetworkPolicy",
                "platform.allow-dns",
                {
                    "tier": "platform",
                    "order": 100,
                    "namespaceSelector": f"{NS_NAME_LABEL} in {{{ns_set}}}",
                    "selector": "all()",
                    "types": ["Egress"],
                    "egress": [
                        {
                            "action": "Allow",
                            "protocol": proto,
                            "destination": {
                                "namespaceSelector": f"{NS_NAME_LABEL} == 'kube-system'",
                                "selector": "k8s-app == 'kube-dns'",
                                "ports": [53],
                            },
                        }
                        for proto in ("UDP", "TCP")
                    ]
                    + [{"action": "Pass"}],
                },
            ),
            gobj(
                "GlobalNetworkPolicy",
                "platform.allow-prometheus-scrape",
                {
                    "tier": "platform",
                    "order": 200,
                    "namespaceSelector": "env in {'prod', 'staging'}",
                    "selector": "has(app)",
                    "types": ["Ingress"],
                    "ingress": [
                        {
                            "action": "Allow",
                            "protocol": "TCP",
                            "source": {
                                "namespaceSelector": f"{NS_NAME_LABEL} == 'monitoring'",
                                "selector": "app.kubernetes.io/name == 'prometheus'",
                            },
                            "destination": {"ports": ["metrics", 9102]},
                        },
                        {"action": "Pass"},
                    ],
                },
            ),
            gobj(
                "GlobalNetworkPolicy",
                "platform.restrict-dev-egress",
                {
                    "tier": "platform",
                    "order": 300,
                    "namespaceSelector": "env == 'dev'",
                    "selector": "all()",
                    "types": ["Egress"],
                    "egress": [
                        {"action": "Deny", "destination": {"notNets": ["10.0.0.0/8"]}},
                        {"action": "Pass"},
                    ],
                },
            ),
            gobj(
                "GlobalNetworkPolicy",
                "allow-partner-apis",
                {
                    "order": 500,
                    "selector": f"{PART_OF} in {{{dom_set}}} && tier == 'api'",
                    "types": ["Egress"],
                    "egress": [
                        {
                            "action": "Allow",
                            "protocol": "TCP",
                            "destination": {
                                "selector": "role == 'external-partners'",
                                "ports": [443, "8443:8445"],
                            },
                        }
                    ],
                },
            ),
        ]
        for doc in docs:
            self.cluster_docs.append(doc)
            self.counts[f"projectcalico.org/v3/{doc['kind']}"] += 1

    # ---- Istio ------------------------------------------------------------------------------

    def istio_objects(self) -> None:
        def obj(api: str, kind: str, ns: str, name: str, spec: Obj) -> Obj:
            return {
                "apiVersion": api,
                "kind": kind,
                "metadata": self.meta(name, ns, generation=True),
                "spec": spec,
            }

        sec = "security.istio.io/v1"
        self.emit(
            "istio-system",
            obj(sec, "PeerAuthentication", "istio-system", "default", {"mtls": {"mode": "STRICT"}}),
        )
        sidecar = [ns for ns in self.namespaces if ns.mesh == "sidecar"]
        ambient = [ns for ns in self.namespaces if ns.mesh == "ambient"]
        if sidecar:
            legacy = sidecar[-1]
            self.emit(
                legacy.name,
                obj(
                    sec,
                    "PeerAuthentication",
                    legacy.name,
                    "default",
                    {"mtls": {"mode": "PERMISSIVE"}},
                ),
            )
            target = next((a for a in sidecar[0].apps if a.port("metrics")), None)
            if target is not None:
                metrics = target.port("metrics")
                assert metrics is not None
                self.emit(
                    sidecar[0].name,
                    obj(
                        sec,
                        "PeerAuthentication",
                        sidecar[0].name,
                        f"{target.name}-permissive",
                        {
                            "selector": {"matchLabels": {"app": target.name}},
                            "mtls": {"mode": "PERMISSIVE"},
                            "portLevelMtls": {metrics.port: {"mode": "DISABLE"}},
                        },
                    ),
                )
        if len(sidecar) > 1:
            target = next((a for a in sidecar[1].apps if a.port("metrics")), None)
            if target is not None:
                metrics = target.port("metrics")
                assert metrics is not None
                self.emit(
                    sidecar[1].name,
                    obj(
                        sec,
                        "PeerAuthentication",
                        sidecar[1].name,
                        f"{target.name}-metrics-plaintext",
                        {
                            "selector": {"matchLabels": {"app": target.name}},
                            "mtls": {"mode": "STRICT"},
                            # kubectl prints the map keys of portLevelMtls as strings
                            "portLevelMtls": {str(metrics.port): {"mode": "PERMISSIVE"}},
                        },
                    ),
                )
        for ns in ambient[:2]:
            self.emit(
                ns.name,
                obj(sec, "PeerAuthentication", ns.name, "default", {"mtls": {"mode": "STRICT"}}),
            )

        for ns in sidecar + ambient:
            self.emit(ns.name, obj(sec, "AuthorizationPolicy", ns.name, "allow-nothing", {}))
            self.emit(
                ns.name,
                obj(
                    sec,
                    "AuthorizationPolicy",
                    ns.name,
                    "allow-metrics-scrape",
                    {
                        "action": "ALLOW",
                        "rules": [{"to": [{"operation": {"ports": ["9102"]}}]}],
                    },
                ),
            )
            for app in ns.apps:
                spec = self.authz_spec(ns, app, l7=ns.mesh == "sidecar")
                if spec is not None:
                    self.emit(
                        ns.name, obj(sec, "AuthorizationPolicy", ns.name, f"{app.name}-allow", spec)
                    )
            if ns.mesh == "sidecar" and self.rng.random() < 0.5:
                self.emit(
                    ns.name,
                    obj(
                        sec,
                        "AuthorizationPolicy",
                        ns.name,
                        "deny-admin-paths",
                        {
                            "action": "DENY",
                            "rules": [
                                {
                                    "from": [{"source": {"notNamespaces": [ns.name]}}],
                                    "to": [{"operation": {"paths": ["/admin/*", "/debug/*"]}}],
                                }
                            ],
                        },
                    ),
                )
            if ns.waypoint:
                self.emit(
                    ns.name,
                    {
                        "apiVersion": "gateway.networking.k8s.io/v1",
                        "kind": "Gateway",
                        "metadata": self.meta(
                            "waypoint",
                            ns.name,
                            labels={"istio.io/waypoint-for": "service"},
                            generation=True,
                        ),
                        "spec": {
                            "gatewayClassName": "istio-waypoint",
                            "listeners": [{"name": "mesh", "port": 15008, "protocol": "HBONE"}],
                        },
                    },
                )
                served = [a for a in ns.apps if a.callers or a.tier == "web"]
                http_app = next((a for a in served if a.port("http")), None) or next(
                    (a for a in served if a.port("grpc")), None
                )
                if http_app is not None:
                    spec = self.authz_spec(ns, http_app, l7=True) or {}
                    spec.pop("selector", None)
                    spec["targetRefs"] = [{"kind": "Service", "group": "", "name": http_app.name}]
                    self.emit(
                        ns.name,
                        obj(sec, "AuthorizationPolicy", ns.name, f"{http_app.name}-waypoint", spec),
                    )

    def authz_spec(self, ns: Namespace, app: App, l7: bool) -> Obj | None:
        if not app.callers and app.tier != "web":
            return None
        by_port: dict[PortSpec, list[str]] = defaultdict(list)
        if app.tier == "web":
            port = app.port("http") or app.primary_port()
            by_port[port].append("cluster.local/ns/ingress-nginx/sa/ingress-nginx")
        for caller, port in app.callers:
            principal = f"cluster.local/ns/{caller.namespace}/sa/{caller.sa}"
            if principal not in by_port[port]:
                by_port[port].append(principal)
        rules = []
        for port, principals in by_port.items():
            operation: Obj = {"ports": [str(port.port)]}
            if l7 and port.name.startswith("http"):
                operation["methods"] = sorted(self.rng.sample(HTTP_METHODS, self.rng.randint(1, 3)))
                operation["paths"] = ["/api/*", "/healthz"]
            elif l7 and port.name == "grpc":
                svc = "".join(w.capitalize() for w in app.name.split("-"))
                operation["paths"] = [f"/{app.domain}.v1.{svc}/*"]
                operation["methods"] = ["POST"]
            rules.append(
                {
                    "from": [{"source": {"principals": sorted(principals)}}],
                    "to": [{"operation": operation}],
                }
            )
        return {"selector": {"matchLabels": {"app": app.name}}, "action": "ALLOW", "rules": rules}

    # ---- driver -----------------------------------------------------------------------------

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
        for old in out.glob("*.yaml"):
            old.unlink()
        files = {"cluster-scoped": self.cluster_docs, **self.docs}
        total = 0
        for stem, docs in files.items():
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


# --------------------------------------------------------------------------------------------
# YAML output
# --------------------------------------------------------------------------------------------
# A small block-style emitter in kubectl's layout (sorted keys, two-space indent, sequences not
# indented under their key). It is ~6x faster than yaml.dump with libyaml because PyYAML's
# representer runs in Python either way. Any string the YAML 1.1 resolver would read as
# something else (bool, int, float, null, timestamp) or that holds indicator characters is
# written double-quoted via JSON escaping, which is valid YAML.

_PLAIN = re.compile(r"[A-Za-z0-9_./][A-Za-z0-9_./:@=+-]*\Z")
_RESOLVER = yaml.resolver.Resolver()
_STR_TAG = "tag:yaml.org,2002:str"


@functools.lru_cache(maxsize=1 << 16)
def _plain_ok(text: str) -> bool:
    return (
        _PLAIN.match(text) is not None
        and not text.endswith(":")
        and _RESOLVER.resolve(yaml.ScalarNode, text, (True, False)) == _STR_TAG
    )


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return value if _plain_ok(value) else json.dumps(value)
    raise TypeError(f"cannot emit {type(value).__name__}")


def _emit_mapping(lines: list[str], mapping: Obj, indent: str) -> None:
    for key in sorted(mapping, key=str):
        value, k = mapping[key], _scalar(key)
        if isinstance(value, dict):
            if value:
                lines.append(f"{indent}{k}:")
                _emit_mapping(lines, value, indent + "  ")
            else:
                lines.append(f"{indent}{k}: {{}}")
        elif isinstance(value, list):
            if value:
                lines.append(f"{indent}{k}:")
                _emit_sequence(lines, value, indent)
            else:
                lines.append(f"{indent}{k}: []")
        else:
            lines.append(f"{indent}{k}: {_scalar(value)}")


def _emit_sequence(lines: list[str], items: list[Any], indent: str) -> None:
    for item in items:
        if isinstance(item, dict) and item:
            start = len(lines)
            _emit_mapping(lines, item, indent + "  ")
            lines[start] = f"{indent}- {lines[start][len(indent) + 2 :]}"
        elif isinstance(item, list) and item:
            lines.append(f"{indent}-")
            _emit_sequence(lines, item, indent + "  ")
        elif isinstance(item, dict | list):
            lines.append(f"{indent}- {'{}' if isinstance(item, dict) else '[]'}")
        else:
            lines.append(f"{indent}- {_scalar(item)}")


def to_yaml(doc: Obj) -> str:
    """One YAML document (without the `---` separator)."""
    lines: list[str] = []
    _emit_mapping(lines, doc, "")
    return "\n".join(lines) + "\n"


def sp(name: str, port: int, target: int | str, protocol: str = "TCP") -> Obj:
    """A Service port entry."""
    return {"name": name, "port": port, "protocol": protocol, "targetPort": target}


def fmt_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def largest_remainder(total: int, weights: list[float], minimum: int = 0) -> list[int]:
    """Split `total` into integers proportional to `weights`, each at least `minimum`."""
    n = len(weights)
    if n == 0:
        return []
    base = [minimum] * n
    rest = total - minimum * n
    if rest < 0:
        raise ValueError("total too small for the minimum share")
    s = sum(weights) or 1.0
    raw = [rest * w / s for w in weights]
    floors = [int(r) for r in raw]
    short = rest - sum(floors)
    order = sorted(range(n), key=lambda i: (raw[i] - floors[i], -i), reverse=True)
    for i in order[:short]:
        floors[i] += 1
    return [b + f for b, f in zip(base, floors, strict=True)]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pods", type=int, required=True, help="total Pod objects (exact)")
    ap.add_argument(
        "--policies",
        type=int,
        required=True,
        help="namespaced network policies, Kubernetes + Calico (exact)",
    )
    ap.add_argument("--out", type=Path, required=True, help="output directory")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument(
        "--calico-share",
        type=float,
        default=0.0,
        help="fraction of the allow policies emitted as projectcalico.org/v3 NetworkPolicies",
    )
    ap.add_argument("--istio", action="store_true", help="add Istio mesh labels and resources")
    ap.add_argument(
        "--format",
        choices=["docs", "list"],
        default="docs",
        help="docs: one YAML document per object; list: one v1 List per file",
    )
    ap.add_argument(
        "--lean",
        action="store_true",
        help="omit fields no policy analysis needs (status conditions, volumes, ...)",
    )
    ap.add_argument("--summary", type=Path, help="write a JSON summary of what was generated")
    args = ap.parse_args(argv)
    if args.pods < 1 or args.policies < 0:
        ap.error("--pods must be positive and --policies non-negative")
    if not 0.0 <= args.calico_share <= 1.0:
        ap.error("--calico-share must be within [0, 1]")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    t0 = time.perf_counter()
    gen = Generator(args)
    gen.build()
    t1 = time.perf_counter()
    files, size = gen.write(args.out, args.format)
    t2 = time.perf_counter()
    pods = gen.counts["v1/Pod"]
    summary = {
        "args": {
            "pods": args.pods,
            "policies": args.policies,
            "seed": args.seed,
            "calico_share": args.calico_share,
            "istio": args.istio,
            "format": args.format,
            "lean": args.lean,
        },
        "pods": pods,
        "host_network_pods": gen.counts["hostNetwork pods"],
        "namespaces": gen.counts["v1/Namespace"],
        "application_namespaces": len(gen.namespaces),
        "apps": sum(len(ns.apps) for ns in gen.namespaces),
        "nodes": len(gen.nodes),
        "k8s_network_policies": gen.k8s_np_count,
        "calico_network_policies": gen.calico_np_count,
        "kinds": dict(sorted((k, v) for k, v in gen.counts.items() if "/" in k)),
        "files": files,
        "bytes": size,
        "build_s": round(t1 - t0, 3),
        "write_s": round(t2 - t1, 3),
    }
    if args.summary:
        args.summary.parent.mkdir(parents=True, exist_ok=True)
        args.summary.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    assert pods == args.pods, (pods, args.pods)
    assert gen.k8s_np_count + gen.calico_np_count == args.policies
    print(
        f"{args.out}: {pods} pods in {summary['application_namespaces']} app namespaces "
        f"({summary['apps']} apps, {len(gen.nodes)} nodes), "
        f"{gen.k8s_np_count} NetworkPolicies + {gen.calico_np_count} Calico NetworkPolicies, "
        f"{files} files, {size / 1e6:.1f} MB in {t2 - t0:.2f} s",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
