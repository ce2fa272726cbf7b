"""The edge model of the kubezt intent format: pydantic v2 models (unknown fields are errors;
the JSON Schema in `kubezt/schemas/intent.schema.json` is generated from them) and the
translation of pydantic's validation errors into located diagnostics with "did you mean".

Owns the shape of the format only; `kubezt.dialects.intent` resolves a validated document
(defaults, references, cross-checks) into `ir.intent.Intent`.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Sequence
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from kubezt.dialects._yaml import Document, PathPart, dotted, type_name
from kubezt.errors import Diagnostic, Severity, did_you_mean

SCHEMA_ID = "https://kubezt.io/schemas/intent.schema.json"

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
PORT_NAME = r"^[a-z0-9]+(-[a-z0-9]+)*$"
TRUST_DOMAIN = r"^[a-z0-9._-]+$"
SERVICE_REF = r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?/)?[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
HTTP_METHOD = r"^[A-Z]+$"
HTTP_PATH = r"^[/*]"

PATTERN_TEXT = {
    DNS_LABEL: "a DNS label (at most 63 lower-case alphanumerics or '-', starting and ending "
    "with an alphanumeric)",
    PORT_NAME: "a port name (at most 15 lower-case alphanumerics or inner '-')",
    TRUST_DOMAIN: "a trust domain (lower-case letters, digits, '.', '_' or '-')",
    SERVICE_REF: "a service reference, namespace/name (or name when it is unique)",
    HTTP_METHOD: "an HTTP method in upper case (GET, POST, …)",
    HTTP_PATH: "a path starting with '/' (or '*' for a suffix match)",
}

DnsLabel = Annotated[str, Field(pattern=DNS_LABEL, max_length=63)]


# --- the edge model (its JSON Schema is what editors see) -----------------------------------


class _Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        frozen=True,
        alias_generator=to_camel,
        field_title_generator=lambda name, info: info.alias or name,
    )


class PortModel(_Model):
    """A container port of the service (the port L3/L4 policy and Istio authorization see)."""

    port: int = Field(ge=1, le=65535, description="Container (target) port number.")
    name: str | None = Field(
        default=None, pattern=PORT_NAME, max_length=15, description="Container port name."
    )
    protocol: Literal["TCP", "UDP", "SCTP"] = "TCP"
    app_protocol: str | None = Field(
        default=None,
        description="Istio protocol selection: http, http2, grpc, grpc-web, h2c (HTTP), or tcp, "
        "tls, … (opaque). HTTP rules need an HTTP port.",
    )
    metrics: bool = Field(
        default=False, description="Prometheus (platform.metrics) scrapes this port in plaintext."
    )


class ServiceModel(_Model):
    """A workload the intent governs."""

    name: DnsLabel = Field(description="Service name (also the Kubernetes Service name).")
    namespace: DnsLabel = Field(description="One of spec.namespaces.")
    selector: dict[str, str] | None = Field(
        default=None, description="Pod labels (matchLabels); default {app: <name>}."
    )
    service_account: DnsLabel | None = Field(
        default=None, description="The identity the pods run as; default <name>."
    )
    ports: list[PortModel] = Field(default_factory=list)


class HttpModel(_Model):
    """Limit a grant to these HTTP requests (Istio value matching: exact, prefix*, *suffix)."""

    methods: list[Annotated[str, Field(pattern=HTTP_METHOD)]] = Field(default_factory=list)
    paths: list[Annotated[str, Field(pattern=HTTP_PATH)]] = Field(default_factory=list)
    hosts: list[Annotated[str, Field(min_length=1)]] = Field(default_factory=list)


class CallerModel(_Model):
    """A caller identity: a ServiceAccount, in a namespace."""

    service_account: DnsLabel = Field(description="The caller's ServiceAccount.")
    namespace: DnsLabel | None = Field(
        default=None, description="The caller's namespace; default: the callee's."
    )


class IdentityModel(_Model):
    """A workload identity outside any call: a ServiceAccount in a namespace (both required)."""

    service_account: DnsLabel = Field(description="The ServiceAccount.")
    namespace: DnsLabel = Field(description="Its namespace.")


PortList = list[Annotated[int, Field(ge=1, le=65535)]]


class CallModel(_Model):
    """An allowed call from a workload identity to a service."""

    name: DnsLabel | None = None
    from_: CallerModel = Field(alias="from")
    to: str = Field(pattern=SERVICE_REF, description="The called service, namespace/name.")
    ports: PortList | None = Field(
        default=None, min_length=1, description="Ports of the service; default: all of them."
    )
    http: HttpModel | None = None


class GatewayModel(_Model):
    """The ingress gateway's identity."""

    namespace: DnsLabel = "istio-system"
    service_account: DnsLabel = "istio-ingressgateway-service-account"


class IngressRouteModel(_Model):
    name: DnsLabel | None = None
    to: str = Field(pattern=SERVICE_REF)
    ports: PortList | None = Field(default=None, min_length=1)
    http: HttpModel | None = None


class IngressModel(_Model):
    """Connections from the ingress gateway."""

    gateway: GatewayModel = Field(default_factory=GatewayModel)
    allow: list[IngressRouteModel] = Field(default_factory=list)


class EgressTargetModel(_Model):
    cidrs: list[str] = Field(default_factory=list)
    hosts: list[Annotated[str, Field(min_length=1)]] = Field(default_factory=list)


class EgressModel(_Model):
    """Connections from a workload identity to destinations outside the cluster."""

    name: DnsLabel | None = None
    from_: IdentityModel = Field(alias="from")
    to: EgressTargetModel
    ports: PortList = Field(min_length=1)
    protocol: Literal["TCP", "UDP", "SCTP"] = "TCP"


class DnsModel(_Model):
    enabled: bool = True
    namespace: DnsLabel = "kube-system"
    selector: dict[str, str] = Field(default_factory=lambda: {"k8s-app": "kube-dns"})
    port: int = Field(default=53, ge=1, le=65535)


class IstiodModel(_Model):
    namespace: DnsLabel | None = Field(default=None, description="Default: the root namespace.")
    selector: dict[str, str] = Field(default_factory=lambda: {"app": "istiod"})
    port: int = Field(default=15012, ge=1, le=65535)


class KubeApiServerModel(_Model):
    from_: list[IdentityModel] = Field(default_factory=list, alias="from")


class MetricsModel(_Model):
    from_: IdentityModel = Field(alias="from", description="The Prometheus identity.")
    proxy_ports: PortList = Field(default_factory=lambda: [15020, 15090])


class PlatformModel(_Model):
    dns: DnsModel = Field(default_factory=DnsModel)
    istiod: IstiodModel = Field(default_factory=IstiodModel)
    kube_api_server: KubeApiServerModel = Field(default_factory=KubeApiServerModel)
    metrics: MetricsModel | None = None


class ExceptionSourceModel(_Model):
    cidrs: list[str] = Field(min_length=1)


class ExceptionModel(_Model):
    """A named exception: plaintext from addresses outside the mesh to some ports."""

    name: DnsLabel
    reason: str = Field(min_length=1, description="Why this exception exists.")
    to: str = Field(pattern=SERVICE_REF)
    ports: PortList = Field(min_length=1)
    from_: ExceptionSourceModel = Field(alias="from")


class MeshModel(_Model):
    mode: Literal["sidecar", "ambient"] | None = Field(
        default=None, description="Required unless the command is given --mode."
    )
    trust_domain: str = Field(default="cluster.local", pattern=TRUST_DOMAIN, max_length=255)
    root_namespace: DnsLabel = "istio-system"


class SpecModel(_Model):
    mesh: MeshModel = Field(default_factory=MeshModel)
    namespaces: list[DnsLabel] = Field(min_length=1)
    services: list[ServiceModel] = Field(default_factory=list)
    calls: list[CallModel] = Field(default_factory=list)
    ingress: IngressModel = Field(default_factory=IngressModel)
    egress: list[EgressModel] = Field(default_factory=list)
    platform: PlatformModel = Field(default_factory=PlatformModel)
    exceptions: list[ExceptionModel] = Field(default_factory=list)


class MetadataModel(_Model):
    name: DnsLabel
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


class IntentModel(_Model):
    """A kubezt zero-trust intent."""

    api_version: Literal["kubezt.io/v1alpha1"]
    kind: Literal["ZeroTrustIntent"]
    metadata: MetadataModel
    spec: SpecModel


def intent_json_schema() -> dict[str, Any]:
    """The JSON Schema of the intent format, as checked in under `kubezt/schemas/`."""
    schema = IntentModel.model_json_schema(by_alias=True)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        **schema,
        "title": "kubezt ZeroTrustIntent",
    }


def pydantic_diagnostic(doc: Document, obj: str, error: Any) -> Diagnostic:
    loc: tuple[PathPart, ...] = tuple(error["loc"])
    kind = error["type"]
    if kind == "extra_forbidden":
        key = str(loc[-1])
        allowed = field_names(loc[:-1])
        return Diagnostic(
            Severity.ERROR,
            "E101",
            f'expected one of the fields {", ".join(allowed)}, got the unknown field "{key}"',
            doc.locate(loc),
            obj,
            dotted(loc),
            did_you_mean(key, allowed),
        )
    if kind == "missing":
        return Diagnostic(
            Severity.ERROR,
            "E102",
            f'expected the field "{loc[-1]}", got nothing',
            doc.locate(loc[:-1]),
            obj,
            dotted(loc),
        )
    ctx = error.get("ctx") or {}
    got = type_name(error.get("input"))
    if kind == "literal_error":
        expected = f"one of {ctx.get('expected', '')}"
        value = error.get("input")
        options = [
            o.strip(" '") for o in str(ctx.get("expected", "")).replace(" or ", ",").split(",")
        ]
        hint = did_you_mean(value, options) if isinstance(value, str) else ""
        message = f"expected {expected}, got {got}"
        return Diagnostic(Severity.ERROR, "E103", message, doc.locate(loc), obj, dotted(loc), hint)
    if kind == "string_pattern_mismatch":
        expected = PATTERN_TEXT.get(ctx.get("pattern", ""), f"a string matching {ctx}")
    elif kind in ("too_short", "string_too_short"):
        expected = "a non-empty value"
    elif kind == "string_too_long":
        expected = f"at most {ctx.get('max_length')} characters"
    elif kind in ("greater_than_equal", "less_than_equal"):
        expected = "a port number 1-65535"  # the only bounded numbers are ports
    elif kind.startswith("int"):
        expected = "an integer"
    elif kind.startswith("string"):
        expected = "a string"
    elif kind.startswith("bool"):
        expected = "true or false"
    elif kind in ("list_type", "tuple_type"):
        expected = "a list"
    elif kind in ("dict_type", "model_type", "model_attributes_type"):
        expected = "a mapping"
    else:
        expected = error.get("msg", "a valid value").lower()
    message = f"expected {expected}, got {got}"
    return Diagnostic(Severity.ERROR, "E103", message, doc.locate(loc), obj, dotted(loc))


def closest_field(word: str, choices: list[str]) -> str:
    """The known field a misspelt one was probably meant to be, or ""."""
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return close[0] if close else ""


def field_names(loc: Sequence[PathPart]) -> list[str]:
    """The field names (aliases) the model allows at `loc`."""
    current: Any = IntentModel
    for part in loc:
        current = _element(current, part)
        if current is None:
            return []
    current = _unwrap(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return [f.alias or name for name, f in current.model_fields.items()]
    return []


def _unwrap(annotation: Any) -> Any:
    while True:
        origin = typing.get_origin(annotation)
        if origin is Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            annotation = args[0] if len(args) == 1 else annotation
            if len(args) != 1:
                return annotation
        else:
            return annotation


def _element(annotation: Any, part: PathPart) -> Any:
    annotation = _unwrap(annotation)
    if isinstance(part, int):
        if typing.get_origin(annotation) is list:
            return typing.get_args(annotation)[0]
        return None
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        for name, f in annotation.model_fields.items():
            if (f.alias or name) == part:
                return f.annotation
        return None
    if typing.get_origin(annotation) is dict:
        return typing.get_args(annotation)[1]
    return None
