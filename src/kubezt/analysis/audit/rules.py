"""The audit rules, in the order they run and are documented.

Ids are stable and grouped by hundreds: 1xx deny all by default at L3/L4, 2xx mTLS, mesh
membership and the mesh's own default deny, 3xx identities, 4xx broad allows, 5xx ambient
layering, 6xx policy hygiene. An id is never reused: a rule that is withdrawn moves to
`RETIRED`.
"""

from __future__ import annotations

from kubezt.analysis.audit import ambient, breadth, hygiene, identity, isolation, mtls
from kubezt.analysis.audit.finding import AuditRule

RULES: tuple[AuditRule, ...] = (
    AuditRule(isolation.KZT101, isolation.check_ingress_default_deny),
    AuditRule(isolation.KZT102, isolation.check_egress_default_deny),
    AuditRule(isolation.KZT103, isolation.check_egress_to_internet),
    AuditRule(isolation.KZT104, isolation.check_cluster_default_deny),
    AuditRule(mtls.KZT201, mtls.check_mesh_wide_strict),
    AuditRule(mtls.KZT202, mtls.check_mtls_overrides),
    AuditRule(mtls.KZT203, mtls.check_outside_mesh),
    AuditRule(mtls.KZT204, mtls.check_half_in_mesh),
    AuditRule(mtls.KZT205, mtls.check_mesh_namespace_without_authorization),
    AuditRule(identity.KZT301, identity.check_ip_rules_match_pods),
    AuditRule(identity.KZT302, identity.check_identity_rules_accept_plaintext),
    AuditRule(identity.KZT303, identity.check_default_service_account),
    AuditRule(identity.KZT304, identity.check_shared_service_account),
    AuditRule(identity.KZT305, identity.check_unknown_references),
    AuditRule(breadth.KZT401, breadth.check_allow_any_source),
    AuditRule(breadth.KZT402, breadth.check_allow_any_namespace),
    AuditRule(breadth.KZT403, breadth.check_allow_any_pod),
    AuditRule(breadth.KZT404, breadth.check_allow_any_principal),
    AuditRule(ambient.KZT501, ambient.check_l7_at_ztunnel),
    AuditRule(ambient.KZT502, ambient.check_waypoint_bypass),
    AuditRule(ambient.KZT503, ambient.check_hbone_blocked),
    AuditRule(hygiene.KZT601, hygiene.check_policies_selecting_nothing),
    AuditRule(hygiene.KZT602, hygiene.check_shadowed_rules),
    AuditRule(hygiene.KZT603, hygiene.check_redundant_rules),
    AuditRule(hygiene.KZT604, hygiene.check_pass_to_allow_all),
    AuditRule(hygiene.KZT605, hygiene.check_equal_priority_overlap),
)

RETIRED: frozenset[str] = frozenset()
"""Ids of withdrawn rules; never to be given to another rule."""


def rule(rule_id: str) -> AuditRule:
    """The rule with this id; KeyError when there is none."""
    for r in RULES:
        if r.id == rule_id:
            return r
    raise KeyError(rule_id)
