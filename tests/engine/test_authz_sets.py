"""The matrix decides AuthorizationPolicy for all source classes at once
(`engine.authz_sets`, `engine.mesh_sets`); `explain` decides one request (`engine.authz`,
`engine.connection.mesh_decision`). Both must give the same verdict:

* rule by rule: for random policy sets and sources at every enforcement point, the bit of each
  source equals `authorize` for that source's request;
* end to end: on random meshes (sidecar, and ambient with a waypoint; random
  AuthorizationPolicies with selectors, identities, addresses, ports and L7 items; random
  PeerAuthentication modes), the matrix equals the matrix whose every source class goes through
  `mesh_decision` (explain's own code) — connections and passing requests alike — and every
  verdict agrees with `explain`: absent pairs are denied for every request, "all" pairs are
  allowed, "some" pairs let exactly their passing witnesses through (every other witness of
  their request space is denied on every route; `tests/explainkit.py`).
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import kubezt
from explainkit import matrix_vs_explain, request_rows
from kubezt.engine.authz import AuthzRequest, Enforcer, authorize, ports_named
from kubezt.engine.authz_sets import SetAuthorizer, SourceSpace
from kubezt.engine.meshview import MeshView
from kubezt.ir.config import MeshConfig
from kubezt.ir.mesh import MeshPolicies, MtlsMode, PeerAuthentication, TargetRef
from kubezt.ir.ports import PortKey, Protocol
from kubezt.ir.requests import HttpRequest
from kubezt.ir.topology import Labels
from strategies import pick, scenarios
from strategies import policies as drawn_policies

ENFORCERS = (Enforcer.SIDECAR, Enforcer.WAYPOINT, Enforcer.ZTUNNEL)


def assert_bit_agrees(sets, policies, enforcer, mtls: bool, i: int, r) -> None:
    """The set authorizer's bit for source `i` is `authorize`'s verdict on its request (with
    its identity when `mtls`, plaintext otherwise)."""
    expected = authorize(
        policies,
        AuthzRequest(r.principal if mtls else None, r.source_ip, r.destination_ip, r.port, r.http),
        enforcer,
        sets.config,
        "test",
    ).allowed
    (bits,) = sets.allowed_each(policies, enforcer, mtls, r.destination_ip, r.port, [r.http])
    assert bool(bits >> i & 1) == expected, (enforcer, mtls, r, policies)


def authorizer(reqs, config: MeshConfig) -> SetAuthorizer:
    """A set authorizer whose source classes are the requests' sources."""
    principals = [r.principal for r in reqs]
    addresses = [r.source_ip for r in reqs]
    space = SourceSpace(principals, addresses, addresses, config)
    anonymous = SourceSpace([None] * len(reqs), addresses, addresses, config)
    return SetAuthorizer(space, anonymous, config)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_set_authorizer_agrees_with_authorize_for_every_source(scenario) -> None:
    policies, reqs, config = scenario
    for enforcer in ENFORCERS:
        sets = authorizer(reqs, config)
        for i, r in enumerate(reqs):
            for mtls in (True, False):
                assert_bit_agrees(sets, policies, enforcer, mtls, i, r)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios(), st.data())
def test_one_authorizer_shared_by_many_policy_sets(scenario, data) -> None:
    """Destinations that share some of their policies (namespace-wide, root namespace) share
    one authorizer, whose per-policy and per-operation answers are reused across their sets:
    every set, in any order, still decides as `authorize` does."""
    policies, reqs, config = scenario
    subsets = data.draw(
        st.lists(st.permutations(policies).flatmap(lambda ps: st.just(ps[: len(ps) // 2 + 1])))
        | st.just([]),
        label="policy sets",
    )
    sets_of_policies = [policies, *subsets, []]
    for enforcer in ENFORCERS:
        sets = authorizer(reqs, config)
        for chosen in sets_of_policies:
            for mtls in (True, False):
                for i, r in enumerate(reqs):
                    assert_bit_agrees(sets, chosen, enforcer, mtls, i, r)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios(), st.data())
def test_one_authorizer_shared_by_many_ports(scenario, data) -> None:
    """The authorizer caches one answer for all the ports its policies do not name: asked on
    named and unnamed ports in any order, every source still gets `authorize`'s verdict."""
    policies, reqs, config = scenario
    named = sorted(ports_named(policies))
    ports = data.draw(
        st.lists(pick((*named, 1, 7, 8080, 65535)), min_size=1, max_size=6), label="ports"
    )
    for enforcer in ENFORCERS:
        sets = authorizer(reqs, config)
        for port in ports:
            for mtls in (True, False):
                for i, r in enumerate(reqs):
                    assert_bit_agrees(
                        sets, policies, enforcer, mtls, i, dataclasses.replace(r, port=port)
                    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios(), st.data())
def test_shortcuts_of_the_matrix_agree_with_authorize(scenario, data) -> None:
    """The matrix decides once for every request when `request_blind` says no rule that can
    match on the port reads the request, and once for every port `ports_named` leaves out:
    `authorize` must then give each source the same verdict for every request, and for any
    two such ports."""
    policies, reqs, config = scenario
    named = ports_named(policies)
    others = [p for p in (1, 7, 65535) if p not in named][:2]
    https = [r.http for r in reqs if r.http is not None] or [HttpRequest()]
    for enforcer in (Enforcer.SIDECAR, Enforcer.WAYPOINT):
        sets = authorizer(reqs, config)
        for r in reqs:
            port = data.draw(pick((r.port, *others)), label="port")
            blind = sets.request_blind(policies, enforcer, port)
            for mtls in (True, False):

                def verdict(http, port: int, r=r, mtls: bool = mtls, e=enforcer) -> bool:
                    request = AuthzRequest(
                        r.principal if mtls else None, r.source_ip, r.destination_ip, port, http
                    )
                    return authorize(policies, request, e, config, "test").allowed

                if blind:
                    assert len({verdict(h, port) for h in https}) == 1, (enforcer, port, r)
                if len(others) == 2:
                    for h in https:
                        assert verdict(h, others[0]) == verdict(h, others[1]), (enforcer, r)


# --- random meshes ----------------------------------------------------------------------------

APPS = (
    # namespace, app, service account, pod IP, port (name, number)
    ("foo", "web", "web", "10.0.0.1", ("http", 8080)),
    ("foo", "api", "a", "10.1.2.3", ("grpc", 9090)),
    ("bar", "db", "b", "10.1.0.7", ("tcp-db", 80)),
    ("team-a", "job", "a", "192.168.1.5", ("http", 8080)),
)


def _topology(mode: str) -> list[dict]:
    """Namespaces foo and bar in the mesh (`mode`), team-a outside; in ambient mode foo's
    Services go through a waypoint."""
    objects: list[dict] = []
    for ns in ("foo", "bar", "team-a", "istio-system"):
        labels: dict[str, str] = {"kubernetes.io/metadata.name": ns}
        if ns in ("foo", "bar"):
            if mode == "sidecar":
                labels["istio-injection"] = "enabled"
            else:
                labels["istio.io/dataplane-mode"] = "ambient"
        if ns == "foo" and mode == "ambient":
            labels["istio.io/use-waypoint"] = "waypoint"
        objects.append(
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": labels}}
        )
    for ns, app, sa, ip, (port_name, port) in APPS:
        objects.append(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": f"{app}-0", "namespace": ns, "labels": {"app": app}},
                "spec": {
                    "serviceAccountName": sa,
                    "containers": [
                        {
                            "name": app,
                            "image": "example/app:1",
                            "ports": [{"name": port_name, "containerPort": port}]
                            + (
                                # declared, no Service targets it
                                [{"name": "metrics", "containerPort": 9102}] if app == "web" else []
                            ),
                        }
                    ],
                },
                "status": {"podIP": ip, "podIPs": [{"ip": ip}]},
            }
        )
        service_ports = [{"name": port_name, "port": port, "targetPort": port}]
        if app == "web":
            # a second port of the same protocol selection (`MeshView._port_class`)
            service_ports.append({"name": "grpc-web", "port": 9090, "targetPort": 9090})
        objects.append(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": app, "namespace": ns},
                "spec": {"selector": {"app": app}, "ports": service_ports},
            }
        )
    if mode == "ambient":
        objects.append(
            {
                "apiVersion": "gateway.networking.k8s.io/v1",
                "kind": "Gateway",
                "metadata": {
                    "name": "waypoint",
                    "namespace": "foo",
                    "labels": {"istio.io/waypoint-for": "service"},
                },
                "spec": {
                    "gatewayClassName": "istio-waypoint",
                    "listeners": [{"name": "mesh", "port": 15008, "protocol": "HBONE"}],
                },
            }
        )
    return objects


_MODELS: dict[str, kubezt.Model] = {}


def base_model(mode: str, tmp: Path) -> kubezt.Model:
    if mode not in _MODELS:
        path = tmp / f"{mode}.yaml"
        path.write_text(yaml.safe_dump_all(_topology(mode), sort_keys=False), encoding="utf-8")
        _MODELS[mode] = kubezt.load([str(path)]).model
    return _MODELS[mode]


@st.composite
def mesh_policies(draw: st.DrawFn) -> tuple[list, list[tuple[str, str]], MeshConfig]:
    """AuthorizationPolicies from the oracle's strategies, each bound to the whole namespace,
    to one app, or (in ambient mode) by targetRefs to a Service; PeerAuthentication modes."""
    config = draw(pick((MeshConfig(), MeshConfig(trust_domain_aliases=("old-td",)))))
    count = draw(st.integers(1, 4))
    out = []
    for i in range(count):
        hint = draw(pick(tuple((ns, sa, ("old-td",)) for ns, _, sa, _, _ in APPS)))
        policy = draw(drawn_policies(i, hint))
        bind = draw(pick(("namespace", "app", "app", "service", "root")))
        app = draw(pick(tuple(a for ns, a, *_ in APPS if ns == policy.namespace) or ("none",)))
        if bind == "app":
            policy = dataclasses.replace(policy, selector=Labels({"app": app}))
        elif bind == "service":
            policy = dataclasses.replace(policy, target_refs=(TargetRef("Service", app),))
        elif bind == "root":
            policy = dataclasses.replace(policy, namespace="istio-system")
        out.append(policy)
    modes = draw(
        st.lists(
            st.tuples(
                pick(("istio-system", "foo", "bar")),
                pick(("STRICT", "PERMISSIVE", "DISABLE")),
            ),
            max_size=2,
            unique_by=lambda t: t[0],
        )
    )
    return out, modes, config


def _with_mesh(model: kubezt.Model, policies: list, modes, config: MeshConfig) -> kubezt.Model:
    peer = tuple(PeerAuthentication("default", ns, None, MtlsMode(mode)) for ns, mode in modes)
    mesh = dataclasses.replace(
        model.mesh, authorization_policies=tuple(policies), peer_authentications=peer
    )
    assert isinstance(mesh, MeshPolicies)
    return dataclasses.replace(model, mesh=mesh, mesh_config=config)


@contextlib.contextmanager
def one_by_one() -> Iterator[None]:
    """The matrix with every source class decided by `mesh_decision` (explain's code)."""
    MeshView.batched = False
    try:
        yield
    finally:
        MeshView.batched = True


@pytest.mark.parametrize("mode", ["sidecar", "ambient"])
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(drawn=mesh_policies())
def test_matrix_agrees_with_explain_on_random_meshes(mode, drawn, tmp_path_factory) -> None:
    policies, modes, config = drawn
    model = _with_mesh(base_model(mode, tmp_path_factory.mktemp("mesh")), policies, modes, config)
    result = kubezt.evaluate(model)
    rows = request_rows(result)
    with one_by_one():
        pairwise = request_rows(kubezt.evaluate(model))
    # the same connections, and for each the same requests, as when every pair is decided by
    # the explanation's own mesh decision
    assert rows == pairwise
    problems = matrix_vs_explain(model, rows)
    assert not problems, "\n".join(problems[:20])


CANDIDATE_PORTS = (1, 7, 80, 8080, 9090, 9102, 15008, 15020, 15021, 15090)


@pytest.mark.parametrize("mode", ["sidecar", "ambient"])
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(drawn=mesh_policies())
def test_ports_of_one_class_compose_alike(mode, drawn, tmp_path_factory) -> None:
    """The composition decides one port of each class at a destination and gives the others
    its answer (`MeshView.compose_cell`): ports no configuration names, the sidecar's own
    ports, ports that Services target alike. Deciding each port itself (L3/L4 allowing every
    source) must give every port of a class the same sources and the same passing requests."""
    policies, modes, config = drawn
    model = _with_mesh(base_model(mode, tmp_path_factory.mktemp("mesh")), policies, modes, config)
    seen: list[MeshView] = []
    compose = MeshView.compose

    def recording(self, *args):
        seen.append(self)
        return compose(self, *args)

    MeshView.compose = recording  # type: ignore[method-assign]
    try:
        kubezt.evaluate(model)
    finally:
        MeshView.compose = compose  # type: ignore[method-assign]
    (view,) = seen
    everyone = (1 << len(view.classes)) - 1
    keys = {
        (port, d): PortKey(port, Protocol.TCP, c.peer.port_name(port, Protocol.TCP))
        for d, c in enumerate(view.classes)
        for port in CANDIDATE_PORTS
    }
    l4: dict[PortKey, dict[int, int]] = {}
    for (_, d), key in keys.items():
        l4.setdefault(key, {})[d] = everyone
    view.refresh_waypoint_sources(l4)
    view._named_everywhere = view._ports_named_everywhere()
    view._service_ports_exact = view._named_everywhere
    for d in range(len(view.classes)):
        answers: dict[object, tuple[int, list]] = {}
        for port in CANDIDATE_PORTS:
            klass = view._port_class(d, port) if port in view._ports_named(d) else None
            bits, groups = view._compose_cell(keys[(port, d)], d, l4)
            answer = (bits, sorted((m, repr(r)) for m, r in groups))
            first = answers.setdefault(klass, answer)
            assert answer == first, (mode, d, port, klass)
