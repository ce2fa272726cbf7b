"""The Prometheus metrics `kubezt watch` serves (`prometheus_client`, its own registry)."""

from __future__ import annotations

from typing import Any

from kubezt.analysis.audit import AuditReport, FindingSeverity

REEVALUATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    """Every metric, registered on a registry of its own (tests read it back)."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry()
        r = self.registry
        self.connections_allowed = Gauge(
            "kubezt_connections_allowed",
            "Connections (source, destination, port, protocol between workloads) allowed now.",
            registry=r,
        )
        self.intent_violations = Gauge(
            "kubezt_intent_violations",
            "Differences between the cluster and the intent (--intent), as verify reports them.",
            registry=r,
        )
        self.audit_findings = Gauge(
            "kubezt_audit_findings", "Audit findings by severity.", ["severity"], registry=r
        )
        self.posture_score = Gauge(
            "kubezt_posture_score",
            'Zero-trust score (0-100) of each namespace; namespace="" is the whole cluster.',
            ["namespace"],
            registry=r,
        )
        self.reevaluation_seconds = Histogram(
            "kubezt_reevaluation_seconds",
            "From a batch of changes to its delta: the model rebuilt and re-evaluated.",
            buckets=REEVALUATION_BUCKETS,
            registry=r,
        )
        self.connection_changes = Counter(
            "kubezt_connection_changes",
            "Connections whose verdict changed, by change (allowed, denied, widened, ...).",
            ["change"],
            registry=r,
        )
        self.verdicts_known = Gauge(
            "kubezt_verdicts_known",
            "1 while every resource is listed and watched; 0 after a lost watch until relisted.",
            registry=r,
        )
        self.leader = Gauge(
            "kubezt_leader", "1 on the replica that reports (holds the Lease).", registry=r
        )
        self._server: Any = None

    def audit(self, report: AuditReport) -> None:
        for severity in FindingSeverity:
            count = sum(1 for f in report.findings if f.severity is severity)
            self.audit_findings.labels(severity.value).set(count)
        self.posture_score.clear()
        self.posture_score.labels("").set(report.score)
        for ns in report.namespaces:
            self.posture_score.labels(ns.namespace).set(ns.score)

    def serve(self, address: str) -> tuple[str, int]:
        """Serve /metrics on `HOST:PORT` (`:PORT`: every address); the address bound."""
        from prometheus_client import start_http_server

        host, _, port = address.rpartition(":")
        server, _ = start_http_server(int(port), host or "0.0.0.0", registry=self.registry)
        self._server = server
        bound = server.server_address
        return str(bound[0]), int(bound[1])

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
