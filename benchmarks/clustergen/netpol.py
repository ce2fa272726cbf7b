"""Kubernetes NetworkPolicies: baselines, system allows and the allow-policy kinds."""

from __future__ import annotations

import json

from .base import GeneratorBase
from .catalog import NODE_SUBNET, NS_NAME_LABEL, PRIVATE_RANGES, QUALIFIERS, Obj, PortSpec
from .model import App, Namespace


class NetworkPolicies(GeneratorBase):
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
