"""Cluster objects: Namespaces, Nodes, ServiceAccounts, Pods, Services, system pods."""

from __future__ import annotations

import json
from datetime import timedelta

from .base import GeneratorBase
from .catalog import K8S_VERSION, NS_NAME_LABEL, PART_OF, Obj, PortSpec, ps
from .model import App, Namespace, Node, fmt_time, sp


class Workloads(GeneratorBase):
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
        used = self.pod_names[ns]
        while name in used:
            # Random ReplicaSet/DaemonSet suffixes can collide (27^5 values): the controller
            # would draw again, and so do we.
            if owner_kind not in ("ReplicaSet", "DaemonSet"):
                raise AssertionError(f"duplicate pod {ns}/{name}")
            name = f"{owner_name}-{self.rand_hash(5)}"
        used.add(name)
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
                            (ps("http-envoy-prom", 15090),),
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
            (ps("dns", 53, "UDP"), ps("dns-tcp", 53), ps("metrics", 9153)),
            priority_class="system-cluster-critical",
        )
        self.deployment_pods(
            ks,
            "metrics-server",
            1,
            {"k8s-app": "metrics-server"},
            "metrics-server",
            "registry.k8s.io/metrics-server/metrics-server:v0.7.2",
            (ps("https", 10250),),
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
            (ps("web", 9090),),
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
            mon, "grafana", 1, graf, "grafana", "grafana/grafana:11.2.0", (ps("http", 3000),)
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
            (ps("http", 80), ps("https", 443), ps("webhook", 8443), ps("metrics", 10254)),
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
                (ps("http-debug", 8080), ps("grpc-xds", 15010), ps("https-dns", 15012),
                 ps("https-webhook", 15017), ps("http-monitoring", 15014)),
            )  # fmt: skip
            if any(ns.mesh == "ambient" for ns in self.namespaces):
                self.daemonset_pods(
                    isys,
                    "ztunnel",
                    {"app": "ztunnel"},
                    "ztunnel",
                    "docker.io/istio/ztunnel:1.23.2",
                    (ps("ztunnel-stats", 15020),),
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
                        (ps("mesh", 15008), ps("status-port", 15021), ps("http-envoy-prom", 15090)),
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
