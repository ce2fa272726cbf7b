"""The mesh part of a connection's verdict (`engine.connection.mesh_decision`) for a set of
source classes at once.

Given one path (client mode, TLS, waypoint: the same for all the sources asked about), the
steps before authorization — mTLS admission, client TLS meeting a plaintext server — depend on
the destination only, and authorization depends on the source only through its principal and
address. So the verdict for all sources is one bitset: the destination's policy set decided by
`authz_sets.SetAuthorizer`, which computes each source item of each rule once per distinct
principal or address. `mesh_decision` stays the explanation of one pair; the two are held
together by the agreement properties in the tests.
"""

from __future__ import annotations

from collections.abc import Sequence

from kubezt.engine.authz import (
    AuthzRequest,
    Enforcer,
    authorize,
    ports_named,
    waypoint_policies,
    workload_policies,
)
from kubezt.engine.authz_sets import SetAuthorizer, SourceSpace
from kubezt.engine.connection import Path
from kubezt.engine.index import EndpointClass
from kubezt.engine.mesh import (
    WAYPOINT_GATEWAY_LABEL,
    WaypointRef,
    effective_mtls,
    port_protocol,
    principal,
    waypoint_workload,
)
from kubezt.engine.requests import Some
from kubezt.ir.mesh import AuthorizationPolicy, MtlsMode
from kubezt.ir.model import Model
from kubezt.ir.ports import PortKey, Protocol
from kubezt.ir.requests import HttpRequest
from kubezt.ir.topology import MeshMode, Service, Workload


class Situation:
    """A cell as `MeshSets.allowed` sees it (`MeshSets.situation`): equal and hashed by `key`;
    `policies`, `ip` and `port` are those of the first cell, for deciding it."""

    __slots__ = ("ip", "key", "policies", "port")

    def __init__(
        self,
        key: tuple[object, ...],
        policies: list[AuthorizationPolicy],
        ip: str | None,
        port: int,
    ) -> None:
        self.key = key
        self.policies = policies
        self.ip = ip
        self.port = port

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Situation) and other.key == self.key

    def __hash__(self) -> int:
        return hash(self.key)


_EVERYONE = Situation(("everyone",), [], None, 0)
"""Nothing on the mesh side decides: every source passes."""
_NO_ONE = Situation(("no one",), [], None, 0)
"""mTLS admission or the client's TLS refuses every source."""


def source_spaces(
    model: Model,
    classes: Sequence[EndpointClass],
    reps: Sequence[Workload],
    authz_nets: Sequence[object],
) -> tuple[SourceSpace, SourceSpace]:
    """The classes as sources: with their mTLS principals, and over plaintext (no principal).
    Addresses are grouped by which AuthorizationPolicy CIDRs contain them."""
    config = model.mesh_config
    principals: list[str | None] = []
    addresses: list[str | None] = []
    keys: list[object] = []
    for c, rep in zip(classes, reps, strict=True):
        principals.append(principal(config, rep.namespace, rep.service_account))
        addresses.append(rep.ip)
        ip = c.peer.ip
        keys.append(
            ("raw", rep.ip) if ip is None else tuple(ip in net for net in authz_nets)  # type: ignore[operator]
        )
    return (
        SourceSpace(principals, addresses, keys, config),
        SourceSpace([None] * len(reps), addresses, keys, config),
    )


class MeshSets:
    """Batched mesh decisions for one evaluation."""

    def __init__(
        self,
        model: Model,
        classes: Sequence[EndpointClass],
        reps: Sequence[Workload],
        services: Sequence[Sequence[Service]],
        authz_nets: Sequence[object],
        spaces: tuple[SourceSpace, SourceSpace] | None = None,
    ) -> None:
        """`spaces`: the `source_spaces` of these classes under this mesh config, when known."""
        self.model = model
        self.reps = reps
        self.services = services
        space, anonymous = spaces or source_spaces(model, classes, reps, authz_nets)
        self.spaces = (space, anonymous)
        self.authorizer = SetAuthorizer(space, anonymous, model.mesh_config)
        self._mtls: dict[tuple[int, int], MtlsMode] = {}
        self._server_policies: dict[int, list[AuthorizationPolicy]] = {}
        self._waypoint_policies: dict[tuple[object, ...], list[AuthorizationPolicy]] = {}
        self._ztunnel_after_waypoint: dict[tuple[object, ...], bool] = {}
        self._protocols: dict[tuple[int, int], str] = {}
        self._facts: dict[int, tuple[tuple[int, ...], frozenset[int], bool]] = {}
        self._keep: list[object] = []
        self._waypoints: tuple[SetAuthorizer, dict[tuple[str | None, str | None], int]] | None = (
            None
        )
        self.decided: dict[tuple[object, ...], tuple[int, list[tuple[int, Some]]]] = {}
        """The composition's answers by (sources, situation, request space), kept with the
        sources' identities they were decided for (`meshview.MeshView._mesh_set`)."""

    def server_policies(self, d: int) -> list[AuthorizationPolicy]:
        """Policies without targetRefs that select the destination: its sidecar's or ztunnel's."""
        cached = self._server_policies.get(d)
        if cached is None:
            config = self.model.mesh_config
            server = self.reps[d]
            cached = workload_policies(
                self.model.mesh.authorization_in(server.namespace, config.root_namespace),
                server,
                config,
            )
            self._server_policies[d] = cached
        return cached

    def waypoint_policies(
        self, waypoint: Workload, svc: Service | None
    ) -> list[AuthorizationPolicy]:
        key = (
            waypoint.namespace,
            waypoint.name,
            waypoint.labels.get(WAYPOINT_GATEWAY_LABEL),
            svc.namespace if svc else None,
            svc.name if svc else None,
        )
        cached = self._waypoint_policies.get(key)
        if cached is None:
            cached = waypoint_policies(
                self.model.mesh.authorization_policies,
                waypoint.labels.get(WAYPOINT_GATEWAY_LABEL) or waypoint.name,
                waypoint.namespace,
                svc.name if svc else None,
                svc.namespace if svc else None,
                self.model.mesh_config,
            )
            self._waypoint_policies[key] = cached
        return cached

    def _mtls_mode(self, d: int, port: int) -> MtlsMode:
        mode = self._mtls.get((d, port))
        if mode is None:
            mode = effective_mtls(self.reps[d], port, self.model).mode
            self._mtls[(d, port)] = mode
        return mode

    def protocol(self, d: int, key: PortKey) -> str:
        """`mesh.port_protocol` of class `d`'s port."""
        proto = self._protocols.get((d, key.port))
        if proto is None:
            proto = port_protocol(self.services[d], self.reps[d], key.port, key.protocol)
            self._protocols[(d, key.port)] = proto
        return proto

    def allowed(
        self,
        sources: int,
        d: int,
        key: PortKey,
        svc: Service | None,
        path: Path,
        requests: Sequence[HttpRequest | None],
    ) -> list[int]:
        """For each request (None: the connection, no HTTP request), the sources (bitset)
        that pass mTLS admission and authorization on the way to class `d` on `key` along
        `path` (`mesh_decision`)."""
        return self.allowed_in(self.situation(d, key, svc, path), sources, requests)

    def situation(self, d: int, key: PortKey, svc: Service | None, path: Path) -> Situation:
        """What `allowed` reads of the destination, port, route and path: two cells with equal
        situations give every source and request the same answer. mTLS admission and a client
        TLS failure are decided here; what remains is the enforcement point with its policies
        (by identity), the client's mTLS, whether the port carries HTTP, the destination
        address when a rule reads it, and the port when a rule names it (`authz.ports_named`)."""
        if key.protocol is not Protocol.TCP:
            return _EVERYONE
        if path.tls_layer_fail:
            return _NO_ONE
        if path.server in (MeshMode.SIDECAR, MeshMode.AMBIENT):
            mode = self._mtls_mode(d, key.port)
            if (mode is MtlsMode.STRICT and not path.mtls) or (
                mode is MtlsMode.DISABLE and path.mtls and path.server is MeshMode.SIDECAR
            ):
                return _NO_ONE
        http = self.protocol(d, key) in ("http", "sniff")
        if path.server is MeshMode.AMBIENT:
            wp = path.waypoint
            if wp is None:
                policies, enforcer, http = self.server_policies(d), Enforcer.ZTUNNEL, False
            elif not self._ztunnel_sees_waypoint(d, key.port, wp):
                return _NO_ONE
            else:
                policies, enforcer = self.waypoint_policies(wp, svc), Enforcer.WAYPOINT
        elif path.server is MeshMode.SIDECAR:
            policies, enforcer = self.server_policies(d), Enforcer.SIDECAR
        else:
            return _EVERYONE
        ids, named, reads_ip = self._policy_facts(policies)
        ip = self.reps[d].ip
        return Situation(
            (
                ids,
                enforcer,
                path.mtls,
                http,
                ip if reads_ip else None,
                key.port if key.port in named else None,
            ),
            policies,
            ip,
            key.port,
        )

    def _policy_facts(
        self, policies: list[AuthorizationPolicy]
    ) -> tuple[tuple[int, ...], frozenset[int], bool]:
        """The policies' identities (the model holds them), the ports they name and whether a
        rule reads the destination address (then it keys the answer)."""
        facts = self._facts.get(id(policies))
        if facts is None:
            facts = (
                tuple(map(id, policies)),
                ports_named(policies),
                any(
                    c.key == "destination.ip"
                    for p in policies
                    for r in p.rules
                    for c in r.conditions
                ),
            )
            self._facts[id(policies)] = facts
            self._keep.append(policies)  # the id in the key stays valid
        return facts

    def allowed_in(
        self, situation: Situation, sources: int, requests: Sequence[HttpRequest | None]
    ) -> list[int]:
        """`allowed` for a cell of this `situation`."""
        if situation is _EVERYONE:
            return [sources] * len(requests)
        if situation is _NO_ONE:
            return [0] * len(requests)
        enforcer = situation.key[1]
        assert isinstance(enforcer, Enforcer)
        mtls = bool(situation.key[2])
        if enforcer is Enforcer.ZTUNNEL:
            bits = (
                sources
                & self.authorizer.allowed_each(
                    situation.policies, enforcer, mtls, situation.ip, situation.port, [None]
                )[0]
            )
            return [bits] * len(requests)
        if not situation.key[3]:
            requests = [None] * len(requests)
        return self._each(sources, situation, requests)

    def _each(
        self,
        sources: int,
        situation: Situation,
        requests: Sequence[HttpRequest | None],
    ) -> list[int]:
        """The sources allowed for each request by an Envoy enforcement point; decided once
        when no rule that can match on this port reads the request."""
        authorizer = self.authorizer
        policies, ip, port = situation.policies, situation.ip, situation.port
        enforcer = situation.key[1]
        assert isinstance(enforcer, Enforcer)
        mtls = bool(situation.key[2])
        if (
            len(requests) > 1
            and requests[0] is not None
            and authorizer.request_blind(policies, enforcer, port)
        ):
            first = requests[:1]
            once = authorizer.allowed_each(policies, enforcer, mtls, ip, port, first)
            return [sources & once[0]] * len(requests)
        each = authorizer.allowed_each(policies, enforcer, mtls, ip, port, requests)
        return [sources & bits for bits in each]

    def _ztunnel_sees_waypoint(self, d: int, port: int, wp: Workload) -> bool:
        """The destination's ztunnel authorizes the waypoint's identity, not the client's."""
        key = (d, port, wp.namespace, wp.name)
        cached = self._ztunnel_after_waypoint.get(key)
        if cached is None:
            config = self.model.mesh_config
            server = self.reps[d]
            wp_principal = principal(config, wp.namespace, wp.service_account)
            authorizer, bits_of = self._waypoint_sources()
            bit = bits_of.get((wp_principal, wp.ip))
            if bit is not None:
                # every waypoint of the input as a source at once (`SetAuthorizer`)
                (allowed,) = authorizer.allowed_each(
                    self.server_policies(d), Enforcer.ZTUNNEL, True, server.ip, port, [None]
                )
                cached = bool(allowed & bit)
            else:
                cached = authorize(
                    self.server_policies(d),
                    AuthzRequest(wp_principal, wp.ip, server.ip, port, None),
                    Enforcer.ZTUNNEL,
                    config,
                    server.id,
                ).allowed
            self._ztunnel_after_waypoint[key] = cached
        return cached

    def _waypoint_sources(self) -> tuple[SetAuthorizer, dict[tuple[str | None, str | None], int]]:
        """The waypoints' pods (or the pods Istio would create for them) as the sources of a
        set authorizer: each (principal, address) a bit."""
        if self._waypoints is None:
            config = self.model.mesh_config
            bits_of: dict[tuple[str | None, str | None], int] = {}
            for gateway in self.model.mesh.waypoints:
                wp = waypoint_workload(self.model, WaypointRef(gateway.name, gateway.namespace))
                identity = (principal(config, wp.namespace, wp.service_account), wp.ip)
                bits_of.setdefault(identity, 1 << len(bits_of))
            principals = [p for p, _ in bits_of]
            addresses = [ip for _, ip in bits_of]
            space = SourceSpace(principals, addresses, addresses, config)
            anonymous = SourceSpace([None] * len(bits_of), addresses, addresses, config)
            self._waypoints = (SetAuthorizer(space, anonymous, config), bits_of)
        return self._waypoints
