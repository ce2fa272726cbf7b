"""The kubezt intent format (`kubezt.io/v1alpha1`, kind `ZeroTrustIntent`) → `ir.intent.Intent`.

Owns: reading the file, validating it against the edge model (`dialects._intent_model`, whose
JSON Schema is `kubezt/schemas/intent.schema.json`), located diagnostics for every problem
(`file:line:col: error E1xx: …`, with "did you mean"), defaults, resolving references (services,
caller identities, ports) and the checks that make an intent unambiguous. Must not generate
manifests (that is `kubezt.generate`). The format is documented in docs/intent.md.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kubezt.dialects._labels import is_label_key, is_label_value
from kubezt.dialects._yaml import (
    Document,
    PathPart,
    dotted,
    duplicate_key_diagnostic,
    load_documents,
    read_text,
)
from kubezt.errors import (
    Diagnostic,
    DiagnosticSink,
    InputError,
    Location,
    Severity,
    did_you_mean,
)
from kubezt.ir.intent import (
    SYSTEM_NAMESPACES,
    Dns,
    Egress,
    Exemption,
    Grant,
    HttpMatch,
    Identity,
    Intent,
    Istiod,
    KubeApiServer,
    Metrics,
    Mode,
    Platform,
    Port,
    Service,
    ServiceRef,
)
from kubezt.ir.ports import Protocol
from kubezt.ir.topology import Labels

if TYPE_CHECKING:
    from kubezt.dialects._intent_model import (
        CallerModel,
        HttpModel,
        IdentityModel,
        IntentModel,
        PortModel,
    )

API_VERSION = "kubezt.io/v1alpha1"
KIND = "ZeroTrustIntent"
# The pydantic edge model (`dialects._intent_model`) is imported when an intent is read, not
# with this module: importing pydantic and building the models costs about 0.4 s, which every
# command that reads no intent would pay at start-up.


def intent_json_schema() -> dict[str, Any]:
    """The intent format's JSON Schema (`dialects._intent_model.intent_json_schema`)."""
    from kubezt.dialects import _intent_model

    return _intent_model.intent_json_schema()


# --- reading ---------------------------------------------------------------------------------


def load_intent(path: str, mode: Mode | None = None) -> Intent:
    """Read and resolve the intent in the file at `path` (`-` for stdin); `mode` (the
    command's --mode) stands in for a missing `spec.mesh.mode`.

    Raises `InputError` with every problem found, each located at its file:line:col.
    """
    sink = DiagnosticSink()
    text = read_text(path, sink)
    docs = list(load_documents(text, path, sink)) if text is not None else []
    sink.raise_if_errors()
    name = "<stdin>" if path == "-" else path
    if len(docs) != 1:
        sink.add(
            Diagnostic(
                Severity.ERROR,
                "E100",
                f"expected one {API_VERSION} {KIND} document, got {len(docs)} documents",
                docs[1].locate(()) if len(docs) > 1 else Location(name),
                hint="an intent file holds exactly one ZeroTrustIntent",
            )
        )
        sink.raise_if_errors()
    return parse_intent(docs[0], mode)


def parse_intent(doc: Document, mode: Mode | None = None) -> Intent:
    """Validate one document against the format and resolve it into an `Intent`."""
    sink = DiagnosticSink()
    obj = _object_ref(doc.data)
    for dup in doc.duplicates:
        sink.add(duplicate_key_diagnostic(dup, doc.file, obj))
    from pydantic import ValidationError

    from kubezt.dialects._intent_model import (
        IntentModel,
        closest_field,
        field_names,
        pydantic_diagnostic,
    )

    try:
        model = IntentModel.model_validate(doc.data)
    except ValidationError as exc:
        errors = exc.errors()
        misspelt = {
            (tuple(e["loc"][:-1]), hint)
            for e in errors
            if e["type"] == "extra_forbidden"
            and (hint := closest_field(str(e["loc"][-1]), field_names(e["loc"][:-1])))
        }
        for error in errors:
            loc = tuple(error["loc"])
            if error["type"] == "missing" and (loc[:-1], str(loc[-1])) in misspelt:
                continue  # reported once, as the misspelt field with its correction
            sink.add(pydantic_diagnostic(doc, obj, error))
        raise InputError(sorted(sink.items, key=Diagnostic.sort_key)) from None
    sink.raise_if_errors()
    intent = _Resolver(doc, model, sink, obj, mode).resolve()
    sink.raise_if_errors()
    return intent


def parse_intent_data(data: Any, file: str = "<intent>") -> Intent:
    """`parse_intent` for data built in memory (no line information)."""
    return parse_intent(Document(data, file, 1, None))


def _object_ref(data: Any) -> str:
    if isinstance(data, dict):
        meta = data.get("metadata")
        if isinstance(meta, dict) and isinstance(meta.get("name"), str):
            return f"{KIND} {meta['name']}"
    return KIND


# --- resolving -------------------------------------------------------------------------------


@dataclass
class _Resolver:
    """Turns a validated model into an Intent; every semantic problem becomes a located
    diagnostic (codes E110-E125) and resolution carries on, so all of them are reported."""

    doc: Document
    model: IntentModel
    sink: DiagnosticSink
    obj: str
    mode: Mode | None = None
    """The command's --mode, for an intent without spec.mesh.mode."""
    services: dict[ServiceRef, Service] = field(default_factory=dict)
    service_paths: dict[ServiceRef, tuple[PathPart, ...]] = field(default_factory=dict)
    grant_paths: dict[str, tuple[PathPart, ...]] = field(default_factory=dict)

    def error(self, path: tuple[PathPart, ...], code: str, message: str, hint: str = "") -> None:
        self.sink.add(
            Diagnostic(
                Severity.ERROR, code, message, self.doc.locate(path), self.obj, dotted(path), hint
            )
        )

    def resolve(self) -> Intent:
        spec = self.model.spec
        mode = Mode(spec.mesh.mode) if spec.mesh.mode is not None else self.mode
        if mode is None:
            self.error(
                ("spec", "mesh", "mode"),
                "E102",
                'expected the field "mode" (sidecar or ambient) or the option --mode, got nothing',
            )
            mode = Mode.SIDECAR  # carry on to report every other problem
        root = spec.mesh.root_namespace
        namespaces = self._namespaces(root)
        self._services(namespaces)
        identities = {s.identity for s in self.services.values()}
        gateway = Identity(spec.ingress.gateway.namespace, spec.ingress.gateway.service_account)
        if gateway.namespace in namespaces:
            self.error(
                ("spec", "ingress", "gateway", "namespace"),
                "E122",
                f"expected the ingress gateway to run outside the namespaces in scope, got "
                f'"{gateway.namespace}"',
            )
        grants = self._calls(identities) + self._ingress(gateway)
        self._conflicts(grants)
        egress = self._egress(identities)
        exemptions = self._exceptions()
        platform = self._platform(identities, namespaces, root)
        return Intent(
            name=self.model.metadata.name,
            mode=mode,
            trust_domain=spec.mesh.trust_domain,
            root_namespace=root,
            namespaces=tuple(sorted(namespaces)),
            services=tuple(sorted(self.services.values(), key=lambda s: (s.namespace, s.name))),
            grants=tuple(grants),
            gateway=gateway,
            egress=tuple(egress),
            exceptions=tuple(exemptions),
            platform=platform,
            file=self.doc.file,
        )

    # namespaces and services ------------------------------------------------------------

    def _namespaces(self, root: str) -> set[str]:
        seen: set[str] = set()
        for i, ns in enumerate(self.model.spec.namespaces):
            path: tuple[PathPart, ...] = ("spec", "namespaces", i)
            if ns in seen:
                self.error(path, "E113", f'expected each namespace once, got "{ns}" again')
            elif ns in SYSTEM_NAMESPACES or ns == root:
                what = "Istio's root namespace" if ns == root else "a system namespace"
                self.error(
                    path,
                    "E115",
                    f'expected an application namespace, got "{ns}" ({what})',
                    hint="the default deny would cut the cluster's control plane off; system "
                    "namespaces are handled by the platform allowances",
                )
            seen.add(ns)
        return seen

    def _services(self, namespaces: set[str]) -> None:
        by_sa: dict[Identity, tuple[PathPart, ...]] = {}
        for i, s in enumerate(self.model.spec.services):
            path: tuple[PathPart, ...] = ("spec", "services", i)
            ref = ServiceRef(s.namespace, s.name)
            if s.namespace not in namespaces:
                self.error(
                    (*path, "namespace"),
                    "E114",
                    f"expected one of the namespaces in scope ({', '.join(sorted(namespaces))}), "
                    f'got "{s.namespace}"',
                    hint=did_you_mean(s.namespace, namespaces) or "add it to spec.namespaces",
                )
            if ref in self.services:
                first = self.doc.locate(self.service_paths[ref])
                self.error(
                    (*path, "name"),
                    "E113",
                    f"expected each service once, got {ref} again (first at line {first.line})",
                )
                continue
            sa = s.service_account or s.name
            if sa == "default":
                self.error(
                    (*path, "serviceAccount"),
                    "E116",
                    'expected a dedicated ServiceAccount, got "default"',
                    hint="every service gets its own identity; no workload is left on default",
                )
            identity = Identity(s.namespace, sa)
            if identity in by_sa:
                first = self.doc.locate(by_sa[identity])
                self.error(
                    (*path, "serviceAccount" if s.service_account else "name"),
                    "E113",
                    f"expected one service per ServiceAccount, got {identity} again (first at "
                    f"line {first.line})",
                    hint="two services with one identity cannot be told apart by any policy",
                )
            by_sa.setdefault(identity, path)
            selector = self._labels(s.selector, (*path, "selector")) if s.selector else None
            if s.selector is not None and not s.selector:
                self.error((*path, "selector"), "E119", "expected at least one label, got {}")
            labels = Labels(selector if selector is not None else {"app": s.name})
            ports = self._ports(s.ports, (*path, "ports"))
            service = Service(
                namespace=s.namespace,
                name=s.name,
                selector=labels,
                service_account=sa,
                ports=ports,
                entry=f"services/{ref}",
                location=self.doc.locate(path),
            )
            for other_ref, other in self.services.items():
                if other.namespace == service.namespace and _overlap(other.selector, labels):
                    first = self.doc.locate(self.service_paths[other_ref])
                    self.error(
                        (*path, "selector"),
                        "E113",
                        f"expected a selector no other service's pods match, got one that "
                        f"overlaps {other_ref}'s (line {first.line})",
                        hint="a pod matching both would be two services at once; add a "
                        "distinguishing label",
                    )
            self.services[ref] = service
            self.service_paths[ref] = path

    def _labels(self, labels: dict[str, str], path: tuple[PathPart, ...]) -> dict[str, str]:
        for key, value in labels.items():
            if not is_label_key(key):
                self.error((*path, key), "E119", f'expected a label key, got "{key}"')
            elif not is_label_value(value):
                self.error((*path, key), "E119", f'expected a label value, got "{value}"')
        return labels

    def _ports(self, ports: list[PortModel], path: tuple[PathPart, ...]) -> tuple[Port, ...]:
        out: dict[tuple[int, Protocol], Port] = {}
        names: set[str] = set()
        for i, p in enumerate(ports):
            key = (p.port, Protocol(p.protocol))
            if key in out:
                message = f"expected each port once, got {p.port}/{p.protocol} again"
                self.error((*path, i), "E113", message)
                continue
            if p.name:
                if p.name in names:
                    message = f'expected each port name once, got "{p.name}" again'
                    self.error((*path, i, "name"), "E113", message)
                names.add(p.name)
            app = (p.app_protocol or "").lower()
            out[key] = Port(p.port, key[1], p.name or "", app, p.metrics)
        return tuple(sorted(out.values()))

    # references ---------------------------------------------------------------------------

    def _service(self, text: str, path: tuple[PathPart, ...]) -> Service | None:
        if "/" in text:
            ns, _, name = text.partition("/")
            found = self.services.get(ServiceRef(ns, name))
            if found is not None:
                return found
        else:
            matches = [s for s in self.services.values() if s.name == text]
            if len(matches) == 1:
                return matches[0]
            if len(matches) > 1:
                shown = ", ".join(sorted(str(s.ref) for s in matches))
                message = f'expected one service named "{text}", got {len(matches)} ({shown})'
                self.error(path, "E110", message, hint="write namespace/name")
                return None
        known = sorted(str(r) for r in self.services)
        self.error(
            path,
            "E110",
            f'expected a service declared in spec.services, got "{text}"',
            hint=did_you_mean(text, known + [r.rpartition("/")[2] for r in known]),
        )
        return None

    def _caller(
        self,
        caller: CallerModel | IdentityModel,
        path: tuple[PathPart, ...],
        identities: set[Identity],
        default_ns: str | None,
    ) -> Identity | None:
        ns = caller.namespace or default_ns
        if ns is None:
            self.error((*path, "namespace"), "E102", 'expected the field "namespace", got nothing')
            return None
        identity = Identity(ns, caller.service_account)
        if identity not in identities:
            known = sorted(str(i) for i in identities)
            self.error(
                (*path, "serviceAccount"),
                "E111",
                f"expected the ServiceAccount of a service in the intent, got {identity} (no "
                "service runs as it)",
                hint=did_you_mean(str(identity), known)
                or "declare the caller in spec.services (a service may have no ports)",
            )
            return None
        return identity

    def _grant_ports(
        self, service: Service, numbers: list[int] | None, path: tuple[PathPart, ...]
    ) -> tuple[Port, ...] | None:
        if numbers is None:
            if not service.ports:
                self.error(
                    (*path[:-1], "to"),
                    "E117",
                    f"expected a service with ports, got {service.ref}, which declares none",
                )
                return None
            return service.ports
        out: list[Port] = []
        declared = ", ".join(str(p) for p in service.ports) or "none"
        for i, number in enumerate(numbers):
            found = [p for p in service.ports if p.port == number]
            if not found:
                self.error(
                    (*path, i),
                    "E117",
                    f"expected a port {service.ref} declares ({declared}), got {number}",
                )
            out.extend(found)
        if len(out) < len(numbers) and not out:
            return None
        return tuple(sorted(set(out)))

    def _http(
        self,
        http: HttpModel | None,
        ports: tuple[Port, ...],
        service: Service,
        path: tuple[PathPart, ...],
    ) -> HttpMatch | None:
        if http is None or not (http.methods or http.paths or http.hosts):
            return None
        for p in ports:
            if not p.is_http:
                declared = f"appProtocol {p.app_protocol}" if p.app_protocol else "no appProtocol"
                self.error(
                    path,
                    "E112",
                    f"expected HTTP ports for an HTTP rule, got port {p} of {service.ref} "
                    f"({declared})",
                    hint="set appProtocol: http (or http2, grpc) on the port, or limit ports to "
                    "the HTTP ones",
                )
        return HttpMatch(
            tuple(dict.fromkeys(http.methods)),
            tuple(dict.fromkeys(http.paths)),
            tuple(dict.fromkeys(h.lower() for h in http.hosts)),
        )

    # entries ------------------------------------------------------------------------------

    def _entry(self, section: str, name: str | None, index: int, names: dict[str, int]) -> str:
        if name is None:
            return f"{section}[{index}]"
        if name in names:
            self.error(
                ("spec", *section.split("."), index, "name"),
                "E113",
                f'expected each {section} entry name once, got "{name}" again',
            )
        names[name] = index
        return f"{section.split('.')[0]}/{name}"

    def _calls(self, identities: set[Identity]) -> list[Grant]:
        out: list[Grant] = []
        names: dict[str, int] = {}
        for i, call in enumerate(self.model.spec.calls):
            path: tuple[PathPart, ...] = ("spec", "calls", i)
            entry = self._entry("calls", call.name, i, names)
            service = self._service(call.to, (*path, "to"))
            if service is None:
                continue  # the caller's namespace defaults to the service's: nothing to check
            caller = self._caller(call.from_, (*path, "from"), identities, service.namespace)
            ports = self._grant_ports(service, call.ports, (*path, "ports"))
            if caller is None or ports is None:
                continue
            http = self._http(call.http, ports, service, (*path, "http"))
            self.grant_paths[entry] = path
            out.append(Grant(entry, caller, service.ref, ports, http, False, self.doc.locate(path)))
        return out

    def _ingress(self, gateway: Identity) -> list[Grant]:
        out: list[Grant] = []
        names: dict[str, int] = {}
        for i, route in enumerate(self.model.spec.ingress.allow):
            path: tuple[PathPart, ...] = ("spec", "ingress", "allow", i)
            entry = self._entry("ingress.allow", route.name, i, names)
            service = self._service(route.to, (*path, "to"))
            if service is None:
                continue
            ports = self._grant_ports(service, route.ports, (*path, "ports"))
            if ports is None:
                continue
            http = self._http(route.http, ports, service, (*path, "http"))
            self.grant_paths[entry] = path
            out.append(Grant(entry, gateway, service.ref, ports, http, True, self.doc.locate(path)))
        return out

    def _conflicts(self, grants: list[Grant]) -> None:
        """Two entries granting one caller the same port of one service, where either allows
        every request: one of them is redundant or says the opposite of the other."""
        seen: dict[tuple[Identity, ServiceRef, bool], list[Grant]] = {}
        for later in grants:
            same = seen.setdefault((later.caller, later.service, later.from_gateway), [])
            for earlier in list(same):
                common = sorted(set(earlier.ports) & set(later.ports))
                if not common or (earlier.http is not None and later.http is not None):
                    continue
                line = earlier.location.line if earlier.location else 0
                broad = earlier if earlier.http is None else later
                self.error(
                    self._grant_path(later),
                    "E113",
                    f"expected one entry per caller, service and port, got {later.entry} and "
                    f"{earlier.entry} (line {line}) both granting {later.caller} port "
                    f"{common[0]} of {later.service}; {broad.entry} allows every request there",
                    hint="merge the entries, or remove the broader one",
                )
            same.append(later)

    def _grant_path(self, grant: Grant) -> tuple[PathPart, ...]:
        return self.grant_paths.get(grant.entry, ("spec",))

    def _egress(self, identities: set[Identity]) -> list[Egress]:
        out: list[Egress] = []
        names: dict[str, int] = {}
        for i, e in enumerate(self.model.spec.egress):
            path: tuple[PathPart, ...] = ("spec", "egress", i)
            entry = self._entry("egress", e.name, i, names)
            caller = self._caller(e.from_, (*path, "from"), identities, None)
            cidrs = self._cidrs(e.to.cidrs, (*path, "to", "cidrs"))
            if not e.to.cidrs and not e.to.hosts:
                self.error((*path, "to"), "E121", "expected cidrs or hosts, got neither")
            if caller is None:
                continue
            protocol = Protocol(e.protocol)
            ports = tuple(sorted({Port(p, protocol) for p in e.ports}))
            out.append(
                Egress(
                    entry,
                    caller,
                    ports,
                    cidrs,
                    tuple(sorted({h.lower() for h in e.to.hosts})),
                    self.doc.locate(path),
                )
            )
        return out

    def _cidrs(self, texts: list[str], path: tuple[PathPart, ...]) -> tuple[str, ...]:
        out: list[str] = []
        for i, text in enumerate(texts):
            try:
                out.append(str(ipaddress.ip_network(text, strict=False)))
            except ValueError:
                self.error((*path, i), "E118", f'expected a CIDR such as 10.0.0.0/8, got "{text}"')
        return tuple(dict.fromkeys(out))

    def _exceptions(self) -> list[Exemption]:
        out: list[Exemption] = []
        names: dict[str, int] = {}
        for i, x in enumerate(self.model.spec.exceptions):
            path: tuple[PathPart, ...] = ("spec", "exceptions", i)
            entry = self._entry("exceptions", x.name, i, names)
            if not x.reason.strip():
                self.error((*path, "reason"), "E120", "expected a reason, got blank text")
            service = self._service(x.to, (*path, "to"))
            cidrs = self._cidrs(x.from_.cidrs, (*path, "from", "cidrs"))
            if service is None:
                continue
            ports = self._grant_ports(service, x.ports, (*path, "ports"))
            if ports is None:
                continue
            out.append(
                Exemption(
                    entry,
                    x.name,
                    x.reason.strip(),
                    service.ref,
                    ports,
                    cidrs,
                    self.doc.locate(path),
                )
            )
        return out

    def _platform(self, identities: set[Identity], namespaces: set[str], root: str) -> Platform:
        p = self.model.spec.platform
        path: tuple[PathPart, ...] = ("spec", "platform")
        dns = None
        if p.dns.enabled:
            dns = Dns(
                p.dns.namespace, Labels(self._labels(p.dns.selector, (*path, "dns"))), p.dns.port
            )
        istiod = Istiod(
            p.istiod.namespace or root,
            Labels(self._labels(p.istiod.selector, (*path, "istiod", "selector"))),
            p.istiod.port,
        )
        callers: list[Identity] = []
        for i, c in enumerate(p.kube_api_server.from_):
            identity = self._caller(c, (*path, "kubeApiServer", "from", i), identities, None)
            if identity is not None:
                callers.append(identity)
        metrics = None
        if p.metrics is not None:
            m_path = (*path, "metrics", "from")
            scraper = Identity(p.metrics.from_.namespace, p.metrics.from_.service_account)
            if scraper.namespace in namespaces:
                self.error(
                    (*m_path, "namespace"),
                    "E122",
                    f"expected the metrics scraper to run outside the namespaces in scope, "
                    f'got "{scraper.namespace}"',
                )
            metrics = Metrics(scraper, tuple(sorted(set(p.metrics.proxy_ports))))
        return Platform(dns, istiod, KubeApiServer(tuple(sorted(set(callers)))), metrics)


def _overlap(a: Labels, b: Labels) -> bool:
    """Some pod can carry both label sets: they agree on every key they share."""
    return all(b.get(k, v) == v for k, v in a.items())


__all__ = ["intent_json_schema", "load_intent", "parse_intent", "parse_intent_data"]
