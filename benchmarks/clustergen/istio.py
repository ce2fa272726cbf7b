"""Istio: mesh resources and AuthorizationPolicies."""

from __future__ import annotations

from collections import defaultdict

from .base import GeneratorBase
from .catalog import HTTP_METHODS, Obj, PortSpec
from .model import App, Namespace


class Istio(GeneratorBase):
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

    def fit_authorization_policies(self, total: int) -> None:
        """Exactly `total` AuthorizationPolicies: drop the last-emitted ones (never a
        namespace's `allow-nothing` while others remain), or add per-app ALLOW policies for
        Prometheus scraping, round-robin over the mesh apps."""
        kind = "security.istio.io/v1/AuthorizationPolicy"

        def is_ap(obj: Obj) -> bool:
            return f"{obj['apiVersion']}/{obj['kind']}" == kind

        emitted = [(stem, obj) for stem, docs in self.docs.items() for obj in docs if is_ap(obj)]
        excess = len(emitted) - total
        if excess > 0:
            order = [e for e in emitted if e[1]["metadata"]["name"] != "allow-nothing"]
            order += [e for e in emitted if e[1]["metadata"]["name"] == "allow-nothing"]
            drop = {id(obj) for _, obj in order[len(order) - excess :]}
            for stem in list(self.docs):
                self.docs[stem] = [o for o in self.docs[stem] if id(o) not in drop]
            self.counts[kind] -= excess
            return
        apps = [(ns, app) for ns in self.namespaces if ns.mesh for app in ns.apps]
        if not apps:
            return
        for i in range(-excess):
            ns, app = apps[i % len(apps)]
            port = app.port("metrics") or app.primary_port()
            self.emit(
                ns.name,
                {
                    "apiVersion": "security.istio.io/v1",
                    "kind": "AuthorizationPolicy",
                    "metadata": self.meta(
                        f"{app.name}-allow-scrape-{i // len(apps)}", ns.name, generation=True
                    ),
                    "spec": {
                        "selector": {"matchLabels": {"app": app.name}},
                        "action": "ALLOW",
                        "rules": [
                            {
                                "from": [
                                    {
                                        "source": {
                                            "principals": [
                                                "cluster.local/ns/monitoring/sa/prometheus-k8s"
                                            ]
                                        }
                                    }
                                ],
                                "to": [{"operation": {"ports": [str(port.port)]}}],
                            }
                        ],
                    },
                },
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
