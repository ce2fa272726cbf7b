#!/usr/bin/env python3
"""Sanity-check a generated benchmark cluster against the real API schemas' rules.

    python benchmarks/validate.py DIR [--pods N] [--policies M] [--fast]

Parses every `*.yaml` in DIR with `yaml.safe_load_all` (or libyaml's CSafeLoader with
`--fast`), checks the requested counts, and validates object shapes: names, label keys and
values, ports and port names, endPort, CIDRs and `except` containment, IP uniqueness and
placement, selector operators, Calico rule fields and Istio enums. Exits 1 on any problem.
"""

from __future__ import annotations

import argparse
import ipaddress
import re
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS_1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
IANA_SVC = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
PRINCIPAL = re.compile(r"^cluster\.local/ns/[a-z0-9-]+/sa/[a-z0-9.-]+$")
K8S_PROTOCOLS = {"TCP", "UDP", "SCTP"}
CALICO_PORT_PROTOCOLS = {"TCP", "UDP", "SCTP", "UDPLite"}
CALICO_PROTOCOLS = CALICO_PORT_PROTOCOLS | {"ICMP", "ICMPv6"}

Obj = dict[str, Any]


class Checker:
    def __init__(self) -> None:
        self.errors: list[str] = []
        self.kinds: Counter[str] = Counter()

    def err(self, where: str, msg: str) -> None:
        self.errors.append(f"{where}: {msg}")

    # ---- primitives -------------------------------------------------------------------------

    def label_key(self, where: str, key: str) -> None:
        prefix, _, name = key.rpartition("/")
        if prefix and (len(prefix) > 253 or not DNS_SUBDOMAIN.match(prefix)):
            self.err(where, f"bad label key prefix {key!r}")
        if not name or len(name) > 63 or not LABEL_NAME.match(name):
            self.err(where, f"bad label key {key!r}")

    def labels(self, where: str, labels: Any) -> None:
        if labels is None:
            return
        if not isinstance(labels, dict):
            self.err(where, "labels must be a map")
            return
        for key, value in labels.items():
            self.label_key(where, key)
            if not isinstance(value, str) or len(value) > 63 or not LABEL_VALUE.match(value):
                self.err(where, f"bad label value {key}={value!r}")

    def port_name(self, where: str, name: Any) -> None:
        if (
            not isinstance(name, str)
            or len(name) > 15
            or not IANA_SVC.match(name)
            or "--" in name
            or not re.search(r"[a-z]", name)
        ):
            self.err(where, f"bad port name {name!r}")

    def port_number(self, where: str, port: Any) -> None:
        if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
            self.err(where, f"bad port {port!r}")

    def cidr(self, where: str, text: Any) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
        try:
            return ipaddress.ip_network(text, strict=True)
        except (ValueError, TypeError):
            self.err(where, f"bad CIDR {text!r}")
            return None

    def label_selector(self, where: str, sel: Any) -> None:
        if sel is None:
            return
        if not isinstance(sel, dict) or set(sel) - {"matchLabels", "matchExpressions"}:
            self.err(where, f"bad label selector {sel!r}")
            return
        self.labels(where, sel.get("matchLabels"))
        for expr in sel.get("matchExpressions") or []:
            self.label_key(where, expr.get("key", ""))
            op, values = expr.get("operator"), expr.get("values")
            if op in ("In", "NotIn"):
                if not values:
                    self.err(where, f"{op} needs values")
                for v in values or []:
                    if not isinstance(v, str) or len(v) > 63 or not LABEL_VALUE.match(v):
                        self.err(where, f"bad selector value {v!r}")
            elif op in ("Exists", "DoesNotExist"):
                if values:
                    self.err(where, f"{op} takes no values")
            else:
                self.err(where, f"bad operator {op!r}")

    def calico_selector(self, where: str, text: Any) -> None:
        if not isinstance(text, str) or not text.strip():
            self.err(where, f"bad Calico selector {text!r}")
            return
        if text.count("'") % 2 or text.count("(") != text.count(")"):
            self.err(where, f"unbalanced Calico selector {text!r}")
        if text.count("{") != text.count("}"):
            self.err(where, f"unbalanced Calico selector {text!r}")

    # ---- objects ----------------------------------------------------------------------------

    def metadata(self, where: str, obj: Obj, namespaced: bool) -> None:
        meta = obj.get("metadata") or {}
        name = meta.get("name")
        kind = obj.get("kind")
        if not isinstance(name, str) or len(name) > 253 or not DNS_SUBDOMAIN.match(name):
            self.err(where, f"bad name {name!r}")
        if kind in ("Namespace", "Service") and (len(name or "") > 63):
            self.err(where, f"{kind} name longer than 63: {name!r}")
        if kind == "Namespace" and not DNS_LABEL.match(name or ""):
            self.err(where, f"bad namespace name {name!r}")
        if kind == "Service" and not DNS_1035.match(name or ""):
            self.err(where, f"bad Service name {name!r}")
        if namespaced and not meta.get("namespace"):
            self.err(where, "namespaced object without metadata.namespace")
        self.labels(where, meta.get("labels"))

    def pod(self, where: str, pod: Obj) -> None:
        spec, status = pod.get("spec") or {}, pod.get("status") or {}
        names: set[str] = set()
        for c in spec.get("containers") or []:
            if not DNS_LABEL.match(c.get("name", "")):
                self.err(where, f"bad container name {c.get('name')!r}")
            seen: set[tuple[int, str]] = set()
            for p in c.get("ports") or []:
                self.port_number(where, p.get("containerPort"))
                if p.get("protocol", "TCP") not in K8S_PROTOCOLS:
                    self.err(where, f"bad protocol {p.get('protocol')!r}")
                if "name" in p:
                    self.port_name(where, p["name"])
                    if p["name"] in names:
                        self.err(where, f"duplicate port name {p['name']!r}")
                    names.add(p["name"])
                key = (p.get("containerPort"), p.get("protocol", "TCP"))
                if key in seen:
                    self.err(where, f"duplicate container port {key}")
                seen.add(key)
        if not spec.get("serviceAccountName"):
            self.err(where, "missing serviceAccountName")
        try:
            ipaddress.ip_address(status.get("podIP"))
        except ValueError:
            self.err(where, f"bad podIP {status.get('podIP')!r}")

    def service(self, where: str, svc: Obj) -> None:
        spec = svc.get("spec") or {}
        seen: set[tuple[int, str]] = set()
        for p in spec.get("ports") or []:
            self.port_number(where, p.get("port"))
            if "nodePort" in p and not 30000 <= p["nodePort"] <= 32767:
                self.err(where, f"bad nodePort {p['nodePort']}")
            target = p.get("targetPort")
            if isinstance(target, str):
                self.port_name(where, target)
            else:
                self.port_number(where, target)
            key = (p.get("port"), p.get("protocol", "TCP"))
            if key in seen:
                self.err(where, f"duplicate service port {key}")
            seen.add(key)
        ip = spec.get("clusterIP")
        if ip != "None" and ipaddress.ip_address(ip) not in ipaddress.ip_network("10.96.0.0/12"):
            self.err(where, f"clusterIP {ip} outside the service CIDR")

    def k8s_netpol(self, where: str, np: Obj) -> None:
        spec = np.get("spec") or {}
        if "podSelector" not in spec:
            self.err(where, "missing spec.podSelector")
        self.label_selector(where, spec.get("podSelector"))
        if set(spec.get("policyTypes") or []) - {"Ingress", "Egress"}:
            self.err(where, f"bad policyTypes {spec.get('policyTypes')}")
        for direction, peer_key in (("ingress", "from"), ("egress", "to")):
            for rule in spec.get(direction) or []:
                if set(rule) - {peer_key, "ports"}:
                    self.err(where, f"unexpected {direction} rule keys {sorted(rule)}")
                for port in rule.get("ports") or []:
                    self.k8s_port(where, port)
                for peer in rule.get(peer_key) or []:
                    self.k8s_peer(where, peer)

    def k8s_port(self, where: str, port: Obj) -> None:
        if port.get("protocol", "TCP") not in K8S_PROTOCOLS:
            self.err(where, f"bad protocol {port.get('protocol')!r}")
        value = port.get("port")
        if isinstance(value, str):
            self.port_name(where, value)
        elif value is not None:
            self.port_number(where, value)
        if "endPort" in port:
            if not isinstance(value, int):
                self.err(where, "endPort needs a numeric port")
            else:
                self.port_number(where, port["endPort"])
                if port["endPort"] < value:
                    self.err(where, f"endPort {port['endPort']} < port {value}")

    def k8s_peer(self, where: str, peer: Obj) -> None:
        if "ipBlock" in peer:
            if set(peer) != {"ipBlock"}:
                self.err(where, "ipBlock cannot be combined with selectors")
            block = peer["ipBlock"]
            net = self.cidr(where, block.get("cidr"))
            for exc in block.get("except") or []:
                sub = self.cidr(where, exc)
                if net and sub and (sub.version != net.version or not sub.subnet_of(net)):
                    self.err(where, f"except {exc} not inside {net}")
                if net and sub and sub == net:
                    self.err(where, f"except {exc} equals cidr")
        else:
            if not set(peer) & {"podSelector", "namespaceSelector"}:
                self.err(where, f"empty peer {peer!r}")
            self.label_selector(where, peer.get("podSelector"))
            self.label_selector(where, peer.get("namespaceSelector"))

    def calico_policy(self, where: str, pol: Obj) -> None:
        spec = pol.get("spec") or {}
        name = pol["metadata"]["name"]
        tier = spec.get("tier", "default")
        if tier != "default" and not name.startswith(f"{tier}."):
            self.err(where, f"policy in tier {tier!r} must be named '{tier}.<name>'")
        for key in ("selector", "namespaceSelector"):
            if key in spec:
                self.calico_selector(where, spec[key])
        if set(spec.get("types") or []) - {"Ingress", "Egress"} or not spec.get("types"):
            self.err(where, f"bad types {spec.get('types')}")
        if "order" in spec and not isinstance(spec["order"], int | float):
            self.err(where, f"bad order {spec['order']!r}")
        for direction in ("ingress", "egress"):
            for rule in spec.get(direction) or []:
                self.calico_rule(where, rule)

    def calico_rule(self, where: str, rule: Obj) -> None:
        allowed = {"action", "protocol", "notProtocol", "source", "destination", "metadata"}
        if set(rule) - allowed:
            self.err(where, f"unexpected rule keys {sorted(set(rule) - allowed)}")
        if rule.get("action") not in ("Allow", "Deny", "Pass", "Log"):
            self.err(where, f"bad action {rule.get('action')!r}")
        proto = rule.get("protocol")
        if proto is not None and proto not in CALICO_PROTOCOLS:
            self.err(where, f"bad protocol {proto!r}")
        for side in ("source", "destination"):
            ent = rule.get(side)
            if ent is None:
                continue
            fields = {"nets", "notNets", "selector", "notSelector", "namespaceSelector", "ports",
                      "notPorts", "serviceAccounts", "services"}  # fmt: skip
            if set(ent) - fields:
                self.err(where, f"unexpected {side} keys {sorted(set(ent) - fields)}")
            for key in ("selector", "notSelector", "namespaceSelector"):
                if key in ent:
                    self.calico_selector(where, ent[key])
            for key in ("nets", "notNets"):
                for net in ent.get(key) or []:
                    self.cidr(where, net)
            ports = (ent.get("ports") or []) + (ent.get("notPorts") or [])
            if ports and proto not in CALICO_PORT_PROTOCOLS:
                self.err(where, f"ports need protocol TCP/UDP/SCTP/UDPLite, got {proto!r}")
            for port in ports:
                self.calico_port(where, port)
            sa = ent.get("serviceAccounts")
            if sa is not None:
                if not set(sa) <= {"names", "selector"} or not sa:
                    self.err(where, f"bad serviceAccounts {sa!r}")
                for n in sa.get("names") or []:
                    if not DNS_SUBDOMAIN.match(n):
                        self.err(where, f"bad service account name {n!r}")
                if "selector" in sa:
                    self.calico_selector(where, sa["selector"])

    def calico_port(self, where: str, port: Any) -> None:
        if isinstance(port, int):
            self.port_number(where, port)
        elif isinstance(port, str) and re.fullmatch(r"\d+:\d+", port):
            lo, hi = (int(x) for x in port.split(":"))
            if not 1 <= lo <= hi <= 65535:
                self.err(where, f"bad port range {port!r}")
        else:
            self.port_name(where, port)

    def istio(self, where: str, obj: Obj) -> None:
        spec = obj.get("spec") or {}
        kind = obj["kind"]
        if kind == "PeerAuthentication":
            modes = {"UNSET", "DISABLE", "PERMISSIVE", "STRICT"}
            if (spec.get("mtls") or {}).get("mode", "UNSET") not in modes:
                self.err(where, f"bad mtls mode {spec.get('mtls')!r}")
            plm = spec.get("portLevelMtls")
            if plm:
                if "selector" not in spec:
                    self.err(where, "portLevelMtls requires a workload selector")
                for port, setting in plm.items():
                    self.port_number(where, int(port))
                    if setting.get("mode") not in modes:
                        self.err(where, f"bad port-level mode {setting!r}")
            if "selector" in spec:
                self.labels(where, spec["selector"].get("matchLabels"))
        elif kind == "AuthorizationPolicy":
            if spec.get("action", "ALLOW") not in ("ALLOW", "DENY", "AUDIT", "CUSTOM"):
                self.err(where, f"bad action {spec.get('action')!r}")
            if "selector" in spec and "targetRefs" in spec:
                self.err(where, "selector and targetRefs are mutually exclusive")
            for rule in spec.get("rules") or []:
                for src in rule.get("from") or []:
                    for p in (src.get("source") or {}).get("principals") or []:
                        if not PRINCIPAL.match(p):
                            self.err(where, f"bad principal {p!r}")
                for to in rule.get("to") or []:
                    for p in (to.get("operation") or {}).get("ports") or []:
                        if not isinstance(p, str) or not p.isdigit():
                            self.err(where, f"AuthorizationPolicy ports are strings: {p!r}")
                        else:
                            self.port_number(where, int(p))
        elif kind == "Gateway":
            for listener in spec.get("listeners") or []:
                self.port_number(where, listener.get("port"))
            if not spec.get("gatewayClassName"):
                self.err(where, "missing gatewayClassName")

    # ---- driver -----------------------------------------------------------------------------

    def run(self, directory: Path, fast: bool) -> list[Obj]:
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader) if fast else None
        objects: list[Obj] = []
        files = sorted(directory.glob("*.yaml"))
        if not files:
            self.err(str(directory), "no *.yaml files")
        for path in files:
            with path.open(encoding="utf-8") as fh:
                try:
                    docs = (
                        list(yaml.load_all(fh, Loader=loader))
                        if loader
                        else list(yaml.safe_load_all(fh))
                    )
                except yaml.YAMLError as exc:
                    self.err(path.name, f"YAML error: {exc}")
                    continue
            for i, doc in enumerate(docs):
                if doc is None:
                    continue
                items = doc["items"] if doc.get("kind") == "List" else [doc]
                for obj in items:
                    obj["_where"] = f"{path.name}#{i}"
                    objects.append(obj)
        for obj in objects:
            where = f"{obj.pop('_where')} {obj.get('kind')}/{obj.get('metadata', {}).get('name')}"
            api, kind = obj.get("apiVersion"), obj.get("kind")
            self.kinds[f"{api}/{kind}"] += 1
            cluster_scoped = kind in ("Namespace", "Node", "Tier", "GlobalNetworkPolicy",
                                      "GlobalNetworkSet")  # fmt: skip
            self.metadata(where, obj, namespaced=not cluster_scoped)
            if kind == "Pod":
                self.pod(where, obj)
            elif kind == "Service":
                self.service(where, obj)
            elif kind == "NetworkPolicy" and api == "networking.k8s.io/v1":
                self.k8s_netpol(where, obj)
            elif kind in ("NetworkPolicy", "GlobalNetworkPolicy"):
                self.calico_policy(where, obj)
            elif kind == "GlobalNetworkSet":
                for net in obj["spec"].get("nets") or []:
                    self.cidr(where, net)
            elif kind == "Tier":
                if obj["spec"].get("defaultAction", "Deny") not in ("Deny", "Pass"):
                    self.err(where, "bad defaultAction")
            elif kind == "Namespace":
                labels = obj["metadata"].get("labels") or {}
                if labels.get("kubernetes.io/metadata.name") != obj["metadata"]["name"]:
                    self.err(where, "missing kubernetes.io/metadata.name label")
            elif api and (api.startswith("security.istio.io") or kind == "Gateway"):
                self.istio(where, obj)
        self.cross_checks(objects)
        return objects

    def cross_checks(self, objects: list[Obj]) -> None:
        nodes = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Node"}
        pod_cidr = ipaddress.ip_network("10.0.0.0/12")
        seen_ips: dict[str, str] = {}
        host_net = 0
        pods = [o for o in objects if o["kind"] == "Pod"]
        for pod in pods:
            name = f"{pod['metadata']['namespace']}/{pod['metadata']['name']}"
            ip = pod["status"]["podIP"]
            node = nodes.get(pod["spec"].get("nodeName"))
            if node is None:
                self.err(name, "scheduled on an unknown node")
                continue
            node_ip = node["status"]["addresses"][0]["address"]
            if pod["spec"].get("hostNetwork"):
                host_net += 1
                if ip != node_ip:
                    self.err(name, f"hostNetwork pod IP {ip} != node IP {node_ip}")
                continue
            addr = ipaddress.ip_address(ip)
            if addr not in pod_cidr:
                self.err(name, f"pod IP {ip} outside 10.0.0.0/12")
            if addr not in ipaddress.ip_network(node["spec"]["podCIDR"]):
                self.err(name, f"pod IP {ip} outside its node's podCIDR")
            if ip in seen_ips:
                self.err(name, f"pod IP {ip} also used by {seen_ips[ip]}")
            seen_ips[ip] = name
        cluster_ips = Counter(
            o["spec"]["clusterIP"]
            for o in objects
            if o["kind"] == "Service" and o["spec"]["clusterIP"] != "None"
        )
        for ip, n in cluster_ips.items():
            if n > 1:
                self.err("services", f"clusterIP {ip} used {n} times")
        names = Counter(
            (o["apiVersion"], o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"])
            for o in objects
        )
        for key, n in names.items():
            if n > 1:
                self.err("objects", f"duplicate object {key}")
        self.kinds["hostNetwork pods"] = host_net


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dir", type=Path)
    ap.add_argument("--pods", type=int, help="expected number of Pods")
    ap.add_argument("--policies", type=int, help="expected namespaced network policies")
    ap.add_argument("--fast", action="store_true", help="parse with libyaml's CSafeLoader")
    args = ap.parse_args(argv)
    checker = Checker()
    checker.run(args.dir, args.fast)
    kinds = checker.kinds
    pods = kinds["v1/Pod"]
    policies = (
        kinds["networking.k8s.io/v1/NetworkPolicy"] + kinds["projectcalico.org/v3/NetworkPolicy"]
    )
    if args.pods is not None and pods != args.pods:
        checker.err("counts", f"{pods} pods, expected {args.pods}")
    if args.policies is not None and policies != args.policies:
        checker.err("counts", f"{policies} namespaced policies, expected {args.policies}")
    for kind, n in sorted(kinds.items()):
        print(f"{n:7d}  {kind}")
    if pods:
        print(f"hostNetwork share: {kinds['hostNetwork pods'] / pods:.1%}")
    for line in checker.errors[:50]:
        print("ERROR", line, file=sys.stderr)
    if checker.errors:
        print(f"{len(checker.errors)} problem(s)", file=sys.stderr)
        return 1
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
