"""Installation output (`--platform`): the Tigera operator's `Installation` and `APIServer`
(the API server serves the `projectcalico.org/v3` kinds the other files use), and an
`IstioOperator` for `istioctl install -f` with the profile of the mode (`default` for sidecars,
`ambient`) and the intent's trust domain and root namespace.

Sources: semantics.md §2.7 (policy sync for sidecars), §5 (ambient), §6.5 (SPIRE injection
template), §7.1 (ports).
"""

from __future__ import annotations

from typing import Any

from kubezt.generate.plan import Manifest, Phase, Plan
from kubezt.generate.spire import MANAGED_LABEL

TIGERA_API = "operator.tigera.io/v1"
ISTIO_INSTALL_API = "install.istio.io/v1alpha1"
CLASSIC_GATEWAY = ("istio-system", "istio-ingressgateway-service-account")
SPIRE_TEMPLATE = f"""\
labels:
  {MANAGED_LABEL}: "true"
spec:
  containers:
  - name: istio-proxy
    volumeMounts:
    - name: workload-socket
      mountPath: /run/secrets/workload-spiffe-uds
      readOnly: true
  volumes:
  - name: workload-socket
    csi:
      driver: "csi.spiffe.io"
      readOnly: true
"""
"""The injection template that mounts the SPIRE agent's SDS socket (Istio's SPIRE guide)."""


def generate_platform(plan: Plan, spire: bool) -> list[Manifest]:
    intent = plan.intent
    installation = {
        "apiVersion": TIGERA_API,
        "kind": "Installation",
        "metadata": plan.meta("Installation", "default", None, ["mesh"]),
        "spec": {
            "variant": "Calico",
            # iptables: host-originated traffic (kubelet probes) to local pods is not policed.
            "calicoNetwork": {"linuxDataplane": "Iptables"},
        },
    }
    api_server = {
        "apiVersion": TIGERA_API,
        "kind": "APIServer",
        "metadata": plan.meta("APIServer", "default", None, ["mesh"]),
        "spec": {},
    }
    mesh_config: dict[str, Any] = {
        "trustDomain": intent.trust_domain,
        "rootNamespace": intent.root_namespace,
    }
    spec: dict[str, Any] = {
        "profile": "ambient" if plan.ambient else "default",
        "meshConfig": mesh_config,
    }
    gateway = (intent.gateway.namespace, intent.gateway.service_account)
    if any(g.from_gateway for g in intent.grants) and gateway == CLASSIC_GATEWAY:
        component: dict[str, Any] = {"name": "istio-ingressgateway", "enabled": True}
        if spire:
            component["label"] = {MANAGED_LABEL: "true"}
        spec["components"] = {"ingressGateways": [component]}
    if spire and not plan.ambient:
        spec["values"] = {
            "sidecarInjectorWebhook": {
                "templates": {"spire": SPIRE_TEMPLATE},
                "defaultTemplates": ["sidecar", "spire"],
            }
        }
    operator = {
        "apiVersion": ISTIO_INSTALL_API,
        "kind": "IstioOperator",
        "metadata": plan.meta(
            "IstioOperator",
            plan.names.label("IstioOperator", "", intent.name),
            intent.platform.istiod.namespace,
            ["mesh"],
        ),
        "spec": spec,
    }
    return [
        Manifest(Phase.PLATFORM_CALICO, installation),
        Manifest(Phase.PLATFORM_CALICO, api_server),
        Manifest(Phase.PLATFORM_ISTIO, operator),
    ]
