"""kubezt: compile, analyse and prove zero-trust policy for Kubernetes, Calico and Istio.

The public API (docs/api.md): `load` manifests into a model (with mesh overrides and every
warning), `evaluate` every connection (one reachability result serves everything else),
`explain_connection` for one of them; `audit`, `blast_radius`, `rank` and `diff` over
reachability results; `load_intent`, `compile_intent` and `verify` for intents.
"""

from kubezt.analysis.audit import AuditReport, audit
from kubezt.analysis.blast_radius import BlastRadius, blast_radius, rank
from kubezt.analysis.diff import Diff, diff
from kubezt.analysis.verify import VerifyResult, verify
from kubezt.api import load
from kubezt.dialects.intent import load_intent
from kubezt.dialects.registry import LoadResult
from kubezt.engine.connection import End, EndKind, explain_connection
from kubezt.engine.explain import Layer, Step, Verdict
from kubezt.engine.reach import Reachability, evaluate
from kubezt.errors import (
    ClusterError,
    Diagnostic,
    InputError,
    KubeztError,
    Location,
    SelectorSyntaxError,
    Severity,
    UnsupportedError,
)
from kubezt.generate import compile_intent
from kubezt.ir.model import Model

__version__ = "0.1.0"

__all__ = [
    "AuditReport",
    "BlastRadius",
    "ClusterError",
    "Diagnostic",
    "Diff",
    "End",
    "EndKind",
    "InputError",
    "KubeztError",
    "Layer",
    "LoadResult",
    "Location",
    "Model",
    "Reachability",
    "SelectorSyntaxError",
    "Severity",
    "Step",
    "UnsupportedError",
    "Verdict",
    "VerifyResult",
    "__version__",
    "audit",
    "blast_radius",
    "compile_intent",
    "diff",
    "evaluate",
    "explain_connection",
    "load",
    "load_intent",
    "rank",
    "verify",
]
