"""Calico: NetworkPolicies translated from Kubernetes ones, tiers and global objects."""

from __future__ import annotations

from .base import GeneratorBase
from .catalog import METADATA_IP, NS_NAME_LABEL, PART_OF, PARTNER_NETS, PCI_DOMAINS, Obj
from .model import Namespace


class Calico(GeneratorBase):
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
