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
    waypoint_policies,
    workload_policies,
)
from kubezt.engine.authz_sets import SetAuthorizer, SourceSpace
from kubezt.engine.connection import Path
from kubezt.engine.index import EndpointClass
from kubezt.engine.mesh import WAYPOINT_GATEWAY_LABEL, effective_mtls, port_protocol, principal
from kubezt.ir.mesh import AuthorizationPolicy, MtlsMode
from kubezt.ir.model import Model
from kubezt.ir.ports import PortKey, Protocol
from kubezt.ir.requests import HttpRequest
from kubezt.ir.topology import MeshMode, Service, Workload


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

    def _protocol(self, d: int, key: PortKey) -> str:
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
        if key.protocol is not Protocol.TCP:
            return [sources] * len(requests)
        if path.tls_layer_fail:
            return [0] * len(requests)
        if path.server in (MeshMode.SIDECAR, MeshMode.AMBIENT):
            mode = self._mtls_mode(d, key.port)
            if (mode is MtlsMode.STRICT and not path.mtls) or (
                mode is MtlsMode.DISABLE and path.mtls and path.server is MeshMode.SIDECAR
            ):
                return [0] * len(requests)
        server = self.reps[d]
        if self._protocol(d, key) not in ("http", "sniff"):
            requests = [None] * len(requests)
        authorizer = self.authorizer
        if path.server is MeshMode.AMBIENT:
            if path.waypoint is None:
                bits = (
                    sources
                    & authorizer.allowed_each(
                        self.server_policies(d),
                        Enforcer.ZTUNNEL,
                        path.mtls,
                        server.ip,
                        key.port,
                        [None],
                    )[0]
                )
                return [bits] * len(requests)
            wp = path.waypoint
            if not self._ztunnel_sees_waypoint(d, key.port, wp):
                return [0] * len(requests)
            return self._each(
                sources, self.waypoint_policies(wp, svc), Enforcer.WAYPOINT, path, d, key, requests
            )
        if path.server is MeshMode.SIDECAR:
            return self._each(
                sources, self.server_policies(d), Enforcer.SIDECAR, path, d, key, requests
            )
        return [sources] * len(requests)

    def _each(
        self,
        sources: int,
        policies: list[AuthorizationPolicy],
        enforcer: Enforcer,
        path: Path,
        d: int,
        key: PortKey,
        requests: Sequence[HttpRequest | None],
    ) -> list[int]:
        """The sources allowed for each request by an Envoy enforcement point; decided once
        when no rule that can match on this port reads the request."""
        authorizer = self.authorizer
        ip = self.reps[d].ip
        if (
            len(requests) > 1
            and requests[0] is not None
            and authorizer.request_blind(policies, enforcer, key.port)
        ):
            first = requests[:1]
            once = authorizer.allowed_each(policies, enforcer, path.mtls, ip, key.port, first)
            return [sources & once[0]] * len(requests)
        each = authorizer.allowed_each(policies, enforcer, path.mtls, ip, key.port, requests)
        return [sources & bits for bits in each]

    def _ztunnel_sees_waypoint(self, d: int, port: int, wp: Workload) -> bool:
        """The destination's ztunnel authorizes the waypoint's identity, not the client's."""
        key = (d, port, wp.namespace, wp.name)
        cached = self._ztunnel_after_waypoint.get(key)
        if cached is None:
            config = self.model.mesh_config
            server = self.reps[d]
            cached = authorize(
                self.server_policies(d),
                AuthzRequest(
                    principal(config, wp.namespace, wp.service_account),
                    wp.ip,
                    server.ip,
                    port,
                    None,
                ),
                Enforcer.ZTUNNEL,
                config,
                server.id,
            ).allowed
            self._ztunnel_after_waypoint[key] = cached
        return cached
