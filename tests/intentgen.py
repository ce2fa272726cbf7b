"""Random intents for the property tests: the strategy that draws a ZeroTrustIntent document
and the vocabulary it draws from."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

NAMESPACES = ("alpha", "beta", "gamma")
SERVICES = ("api", "web", "db", "cache", "worker")
ACCOUNTS = ("runner", "reader")
PORTS: tuple[tuple[int, str | None], ...] = (
    (8080, "http"),
    (9090, "grpc"),
    (2379, "tcp"),
    (5432, None),
    (80, "http2"),
)
HTTP_PORTS = {port for port, app in PORTS if app in ("http", "grpc", "http2")}
METHODS = ("GET", "POST", "PUT")
PATHS = ("/api/*", "/health", "*.json", "/")
HOSTS = ("shop.example.com", "*.internal")
CIDRS_OUT = ("192.0.2.0/24", "198.51.100.7/32", "2001:db8::/64")
CIDRS_IN = ("172.16.0.0/24", "10.200.0.0/16")


@st.composite
def http_rules(draw: st.DrawFn) -> dict[str, list[str]] | None:
    if not draw(st.booleans()):
        return None
    rule = {
        "methods": draw(st.lists(st.sampled_from(METHODS), max_size=2, unique=True)),
        "paths": draw(st.lists(st.sampled_from(PATHS), max_size=2, unique=True)),
        "hosts": draw(st.lists(st.sampled_from(HOSTS), max_size=1, unique=True)),
    }
    rule = {k: v for k, v in rule.items() if v}
    return rule or None


@st.composite
def intent_documents(draw: st.DrawFn) -> dict[str, Any]:
    namespaces = draw(st.lists(st.sampled_from(NAMESPACES), min_size=1, max_size=3, unique=True))
    keys = draw(
        st.lists(
            st.tuples(st.sampled_from(namespaces), st.sampled_from(SERVICES)),
            min_size=1,
            max_size=5,
            unique=True,
        )
    )
    services: list[dict[str, Any]] = []
    ports_of: dict[str, list[int]] = {}
    identity_of: dict[str, tuple[str, str]] = {}
    used_accounts: set[tuple[str, str]] = set()
    for ns, name in keys:
        svc: dict[str, Any] = {"name": name, "namespace": ns}
        account = draw(st.sampled_from((None, *ACCOUNTS)))
        if account is not None and (ns, account) not in used_accounts:
            svc["serviceAccount"] = account
        else:
            account = name
        used_accounts.add((ns, account))
        if draw(st.booleans()):
            svc["selector"] = {"app": name, "tier": draw(st.sampled_from(("a", "b")))}
        chosen = draw(st.lists(st.sampled_from(PORTS), max_size=3, unique_by=lambda p: p[0]))
        ports = []
        for port, app in chosen:
            spec: dict[str, Any] = {"port": port, "name": f"p{port}"}
            if app:
                spec["appProtocol"] = app
            if draw(st.integers(0, 5)) == 0:
                spec["metrics"] = True
            ports.append(spec)
        if ports:
            svc["ports"] = ports
        services.append(svc)
        ref = f"{ns}/{name}"
        ports_of[ref] = [p for p, _ in chosen]
        identity_of[ref] = (ns, account)
    refs = [f"{ns}/{name}" for ns, name in keys]
    with_ports = [r for r in refs if ports_of[r]]

    # grants: one caller, service and port is granted by at most one unrestricted entry
    granted: dict[tuple[str, str], list[tuple[set[int], bool]]] = {}

    def grant(caller: str, target: str) -> dict[str, Any] | None:
        some = draw(st.booleans())
        ports = (
            draw(st.lists(st.sampled_from(ports_of[target]), min_size=1, unique=True))
            if some
            else list(ports_of[target])
        )
        http = draw(http_rules()) if set(ports) <= HTTP_PORTS else None
        for other, restricted in granted.get((caller, target), []):
            if other & set(ports) and (not restricted or http is None):
                return None
        granted.setdefault((caller, target), []).append((set(ports), http is not None))
        entry: dict[str, Any] = {"to": target}
        if some:
            entry["ports"] = sorted(ports)
        if http:
            entry["http"] = http
        return entry

    calls = []
    if with_ports:
        for _ in range(draw(st.integers(0, 5))):
            caller = draw(st.sampled_from(refs))
            target = draw(st.sampled_from(with_ports))
            entry = grant(caller, target)
            if entry is not None:
                ns, account = identity_of[caller]
                calls.append({"from": {"serviceAccount": account, "namespace": ns}, **entry})
    routes = []
    if with_ports:
        for _ in range(draw(st.integers(0, 2))):
            entry = grant("gateway", draw(st.sampled_from(with_ports)))
            if entry is not None:
                routes.append(entry)
    spec: dict[str, Any] = {
        "mesh": {"mode": "sidecar"},
        "namespaces": namespaces,
        "services": services,
        "calls": calls,
        "ingress": {"allow": routes},
    }
    egress = []
    for _ in range(draw(st.integers(0, 2))):
        ns, account = identity_of[draw(st.sampled_from(refs))]
        to: dict[str, Any] = {}
        cidrs = draw(st.lists(st.sampled_from(CIDRS_OUT), max_size=2, unique=True))
        if cidrs:
            to["cidrs"] = cidrs
        if not cidrs or draw(st.booleans()):
            to["hosts"] = ["api.example.com"]
        egress.append(
            {
                "from": {"serviceAccount": account, "namespace": ns},
                "to": to,
                "ports": draw(st.lists(st.sampled_from((443, 5432)), min_size=1, unique=True)),
            }
        )
    spec["egress"] = egress
    if with_ports and draw(st.booleans()):
        target = draw(st.sampled_from(with_ports))
        spec["exceptions"] = [
            {
                "name": "legacy",
                "reason": "a client outside the mesh",
                "to": target,
                "ports": [draw(st.sampled_from(ports_of[target]))],
                "from": {"cidrs": [draw(st.sampled_from(CIDRS_IN))]},
            }
        ]
    platform: dict[str, Any] = {}
    if draw(st.booleans()):
        platform["metrics"] = {"from": {"serviceAccount": "prometheus", "namespace": "monitoring"}}
    if draw(st.booleans()):
        ns, account = identity_of[draw(st.sampled_from(refs))]
        platform["kubeApiServer"] = {"from": [{"serviceAccount": account, "namespace": ns}]}
    if draw(st.integers(0, 4)) == 0:
        platform["dns"] = {"enabled": False}
    spec["platform"] = platform
    return {
        "apiVersion": "kubezt.io/v1alpha1",
        "kind": "ZeroTrustIntent",
        "metadata": {"name": "random"},
        "spec": spec,
    }
