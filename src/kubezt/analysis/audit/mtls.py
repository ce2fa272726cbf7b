"""The mesh: mesh-wide STRICT mTLS, PERMISSIVE/DISABLE overrides, workloads or namespaces
outside the mesh, and mesh namespaces that no AuthorizationPolicy covers.

Membership and the effective mode come from the engine (`kubezt.engine.mesh.mesh_mode`,
`effective_mtls`: mesh → namespace → workload → port, the oldest policy of a scope winning;
semantics.md §3.2, §3.5, §5.1). Namespaces of the cluster's own components and the Istio root
namespace are never expected in the mesh; waypoints, gateways and hostNetwork pods are proxies
or node processes, not workloads to enrol.
"""

from __future__ import annotations

from kubezt.analysis.audit._facts import (
    SYSTEM_NAMESPACES,
    Workloads,
    anchor,
    is_proxy,
    listing,
    location_of,
    mode_of,
    namespace_ref,
)
from kubezt.analysis.audit.finding import Finding, FindingSeverity, Principle, RuleSpec
from kubezt.engine.authz import workload_policies
from kubezt.engine.mesh import ModeSource, effective_mtls
from kubezt.engine.reach import Reachability
from kubezt.errors import Location
from kubezt.ir.mesh import AuthorizationPolicy, AuthzAction, MtlsMode, PeerAuthentication
from kubezt.ir.model import Model
from kubezt.ir.topology import Labels, MeshMode, Workload

KZT201 = RuleSpec(
    id="KZT201",
    name="MeshWideStrictMtls",
    title="No mesh-wide STRICT mTLS",
    severity=FindingSeverity.HIGH,
    principle=Principle.ENCRYPT_IN_TRANSIT,
    help=(
        "Without a STRICT PeerAuthentication in the Istio root namespace (no selector), mesh "
        "workloads accept plaintext from any client, which then carries no identity. Enrol the "
        "workloads, verify that every client is in the mesh, then apply `mtls.mode: STRICT` "
        "mesh-wide."
    ),
)
KZT202 = RuleSpec(
    id="KZT202",
    name="MtlsOverride",
    title="PERMISSIVE or DISABLE mTLS override",
    severity=FindingSeverity.MEDIUM,
    principle=Principle.ENCRYPT_IN_TRANSIT,
    help=(
        "A namespace, workload or port-level PeerAuthentication that sets PERMISSIVE or DISABLE "
        "makes those ports accept plaintext. Keep such exceptions to the ports that need them "
        "(API-server webhooks, scrapes from outside the mesh) and set them back to STRICT once "
        "the clients are enrolled."
    ),
)
KZT203 = RuleSpec(
    id="KZT203",
    name="NamespaceOutsideMesh",
    title="Workloads outside the mesh",
    severity=FindingSeverity.MEDIUM,
    principle=Principle.ENCRYPT_IN_TRANSIT,
    help=(
        "Workloads that are neither sidecar-injected nor enrolled in ambient mode send and "
        "accept plaintext and have no mesh identity, so identity-based policy cannot name them. "
        "Label the namespace `istio.io/dataplane-mode=ambient` (or `istio-injection=enabled`)."
    ),
)
KZT204 = RuleSpec(
    id="KZT204",
    name="NamespaceHalfInMesh",
    title="Namespace half in the mesh",
    severity=FindingSeverity.MEDIUM,
    principle=Principle.ENCRYPT_IN_TRANSIT,
    help=(
        "Some workloads of the namespace are in the mesh and some are not (pod-level opt-out "
        "or injection disabled). The outside ones talk plaintext, and STRICT mTLS in the "
        "namespace rejects them as clients. Enrol them or move them to another namespace."
    ),
)

KZT205 = RuleSpec(
    id="KZT205",
    name="MeshNamespaceWithoutAuthorization",
    title="Mesh namespace without any AuthorizationPolicy",
    severity=FindingSeverity.MEDIUM,
    principle=Principle.DENY_ALL_BY_DEFAULT,
    help=(
        "Workloads of the namespace are in the mesh (sidecar or ambient), but no enforcing "
        "AuthorizationPolicy applies to them: none in the namespace, none in the Istio root "
        "namespace that covers it. mTLS then proves who calls, yet every identity of the mesh "
        "may call every port. Apply an allow-nothing baseline (an ALLOW policy with an empty "
        "spec) in the namespace, or mesh-wide in the root namespace, and ALLOW each caller "
        "explicitly."
    ),
)


def _mesh_wide(model: Model) -> tuple[MtlsMode, PeerAuthentication | None]:
    """The mode the mesh-wide policy sets: `effective_mtls` for a pod of the root namespace,
    where no namespace or workload policy applies."""
    root = model.mesh_config.root_namespace
    probe = Workload(namespace=root, name="", kind="Pod", labels=Labels())
    eff = effective_mtls(probe, 0, model)
    return eff.mode, eff.decided_by


def mesh_workloads(reach: Reachability) -> list[Workload]:
    model = reach.model
    return [
        w
        for w in Workloads(reach).real()
        if not is_proxy(model, w) and mode_of(model, w) is not MeshMode.NONE
    ]


def _uses_istio(reach: Reachability) -> bool:
    mesh = reach.model.mesh
    return bool(
        mesh_workloads(reach)
        or mesh.peer_authentications
        or mesh.authorization_policies
        or mesh.destination_rules
        or mesh.waypoints
    )


def _root_anchor(reach: Reachability) -> tuple[str, Location | None]:
    """Where to point a finding about the missing mesh-wide policy: the root namespace, else
    the first namespace in the mesh, else the first object of the input."""
    workloads = Workloads(reach)
    root = reach.model.mesh_config.root_namespace
    loc = workloads.namespace_location(root)
    if loc is not None:
        return namespace_ref(root), loc
    for w in sorted(mesh_workloads(reach), key=lambda w: w.id):
        loc = workloads.namespace_location(w.namespace)
        if loc is not None:
            return namespace_ref(w.namespace), loc
    return namespace_ref(root), anchor(reach.model)


def check_mesh_wide_strict(model: Model, reach: Reachability) -> list[Finding]:
    """KZT201: the input uses Istio (a workload in the mesh, or any Istio policy), and the
    mesh-wide PeerAuthentication is missing or not STRICT. Without any Istio object the
    namespaces outside the mesh are reported by KZT203 instead."""
    if not _uses_istio(reach):
        return []
    mode, policy = _mesh_wide(reach.model)
    if mode is MtlsMode.STRICT:
        return []
    root = reach.model.mesh_config.root_namespace
    if policy is not None:
        obj = f"PeerAuthentication {policy.namespace}/{policy.name}"
        where = location_of(policy.source)
        message = f"the mesh-wide PeerAuthentication sets {mode.value}, so mesh workloads accept"
        path = "spec.mtls.mode"
    else:
        obj, where = _root_anchor(reach)
        message = (
            f"no PeerAuthentication in the root namespace {root} sets STRICT, so mesh "
            "workloads accept"
        )
        path = ""
    message += " plaintext from clients without an identity"
    if not mesh_workloads(reach):
        message += " (and no workload is in the mesh yet)"
    return [
        KZT201.finding(
            obj=obj,
            namespace=None,
            location=where,
            path=path,
            message=message,
            remediation=(
                f"Apply a PeerAuthentication named `default` in namespace {root} with no selector "
                "and `mtls: {mode: STRICT}` once every client is in the mesh."
            ),
        )
    ]


def check_mtls_overrides(model: Model, reach: Reachability) -> list[Finding]:
    """KZT202: namespace, workload or port-level PeerAuthentications that decide PERMISSIVE or
    DISABLE for at least one port of a mesh workload."""
    hits: dict[tuple[str, str], list[str]] = {}
    policies: dict[tuple[str, str], tuple[PeerAuthentication, set[MtlsMode], set[ModeSource]]] = {}
    for w in mesh_workloads(reach):
        ports = sorted({cp.port for cp in w.ports}) or [0]
        for port in ports:
            eff = effective_mtls(w, port, reach.model)
            if eff.mode not in (MtlsMode.PERMISSIVE, MtlsMode.DISABLE) or eff.decided_by is None:
                continue
            if eff.scope not in (ModeSource.NAMESPACE, ModeSource.WORKLOAD, ModeSource.PORT):
                continue
            pa = eff.decided_by
            key = (pa.namespace, pa.name)
            hits.setdefault(key, []).append(f"{w.id}:{port}" if port else w.id)
            _, modes, scopes = policies.setdefault(key, (pa, set(), set()))
            modes.add(eff.mode)
            scopes.add(eff.scope)
    findings: list[Finding] = []
    for key, where in sorted(hits.items()):
        pa, modes, scopes = policies[key]
        mode_text = "/".join(sorted(m.value for m in modes))
        scope = "port-level" if scopes == {ModeSource.PORT} else f"{sorted(scopes)[0].value}-wide"
        findings.append(
            KZT202.finding(
                obj=f"PeerAuthentication {pa.namespace}/{pa.name}",
                namespace=pa.namespace,
                location=location_of(pa.source),
                path="spec.portLevelMtls" if scopes == {ModeSource.PORT} else "spec.mtls.mode",
                message=(
                    f"{scope} {mode_text} decides the mTLS mode of {listing(where)}: "
                    "these ports accept plaintext"
                    + (" only" if modes == {MtlsMode.DISABLE} else "")
                ),
                remediation=(
                    "Set the mode to STRICT (or remove the override so the mesh-wide STRICT "
                    "applies); keep a port-level PERMISSIVE only for a port whose clients "
                    "cannot join the mesh, such as an API-server webhook."
                ),
            )
        )
    return findings


def _membership(reach: Reachability) -> dict[str, tuple[list[Workload], list[Workload]]]:
    """Per namespace where enrolment is expected: (workloads in the mesh, workloads outside)."""
    model = reach.model
    skip = SYSTEM_NAMESPACES | {model.mesh_config.root_namespace}
    out: dict[str, tuple[list[Workload], list[Workload]]] = {}
    for w in Workloads(reach).real():
        if w.namespace in skip or w.host_network or is_proxy(model, w):
            continue
        inside, outside = out.setdefault(w.namespace, ([], []))
        (outside if mode_of(model, w) is MeshMode.NONE else inside).append(w)
    return dict(sorted(out.items()))


def check_outside_mesh(model: Model, reach: Reachability) -> list[Finding]:
    """KZT203: namespaces none of whose workloads is in the mesh."""
    workloads = Workloads(reach)
    findings: list[Finding] = []
    for ns, (inside, outside) in _membership(reach).items():
        if inside or not outside:
            continue
        findings.append(
            KZT203.finding(
                obj=namespace_ref(ns),
                namespace=ns,
                location=workloads.namespace_location(ns),
                message=(
                    f"no workload of namespace {ns} is in the mesh "
                    f"({listing(w.name for w in outside)}): their connections are plaintext and "
                    "carry no identity"
                ),
                remediation=(
                    f"Label namespace {ns} `istio.io/dataplane-mode=ambient` (or "
                    "`istio-injection=enabled` and restart the pods), then require STRICT mTLS."
                ),
            )
        )
    return findings


def check_half_in_mesh(model: Model, reach: Reachability) -> list[Finding]:
    """KZT204: namespaces where some workloads are in the mesh and some are not."""
    workloads = Workloads(reach)
    findings: list[Finding] = []
    for ns, (inside, outside) in _membership(reach).items():
        if not inside or not outside:
            continue
        findings.append(
            KZT204.finding(
                obj=namespace_ref(ns),
                namespace=ns,
                location=workloads.namespace_location(ns),
                message=(
                    f"{len(inside)} of {len(inside) + len(outside)} workloads of namespace {ns} "
                    f"are in the mesh; outside: {listing(w.name for w in outside)}"
                ),
                remediation=(
                    "Remove the pod-level opt-out (`istio.io/dataplane-mode=none`, "
                    "`sidecar.istio.io/inject=false`) so the workloads join the mesh, or move "
                    "them to a namespace that is not enrolled."
                ),
            )
        )
    return findings


def _enforcing(policy: AuthorizationPolicy) -> bool:
    """Does the policy decide anything? AUDIT only logs and a dry-run policy is not enforced."""
    return policy.action is not AuthzAction.AUDIT and not policy.dry_run


def check_mesh_namespace_without_authorization(model: Model, reach: Reachability) -> list[Finding]:
    """KZT205: namespaces with workloads in the mesh to none of which an enforcing
    AuthorizationPolicy applies (`workload_policies`: the namespace's own and the root
    namespace's, with a matching selector or none), and whose waypoints and Services no
    policy of the namespace targets (`targetRefs`)."""
    model = reach.model
    config = model.mesh_config
    workloads = Workloads(reach)
    targeted = {
        p.namespace for p in model.mesh.authorization_policies if p.target_refs and _enforcing(p)
    }
    findings: list[Finding] = []
    for ns, (inside, _) in _membership(reach).items():
        if not inside or ns in targeted:
            continue
        candidates = tuple(
            p for p in model.mesh.authorization_in(ns, config.root_namespace) if _enforcing(p)
        )
        if any(workload_policies(candidates, w, config) for w in inside):
            continue
        modes = sorted({mode_of(model, w).value for w in inside})
        findings.append(
            KZT205.finding(
                obj=namespace_ref(ns),
                namespace=ns,
                location=workloads.namespace_location(ns),
                message=(
                    f"{listing(w.name for w in inside)} in namespace {ns} "
                    f"({'/'.join(modes)}) are in the mesh, but no AuthorizationPolicy applies "
                    f"to them (none in {ns}, none in the root namespace {config.root_namespace}):"
                    " the mesh admits every identity to every port, only L3/L4 policy restricts"
                    " who connects"
                ),
                remediation=(
                    f"Apply an allow-nothing AuthorizationPolicy in namespace {ns} "
                    "(`metadata: {name: allow-nothing}`, `spec: {}`) — or one in "
                    f"{config.root_namespace} for the whole mesh — and ALLOW each caller by "
                    "principal."
                ),
            )
        )
    return findings
