"""kubezt: compile, analyse and prove zero-trust policy for Kubernetes, Calico and Istio.

The public API: `load` manifests into a model, `evaluate` every connection, and
`explain_connection` for one of them.
"""

from kubezt.dialects.registry import LoadResult, load
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

__version__ = "0.1.0"

__all__ = [
    "ClusterError",
    "Diagnostic",
    "End",
    "EndKind",
    "InputError",
    "KubeztError",
    "Layer",
    "LoadResult",
    "Location",
    "Reachability",
    "SelectorSyntaxError",
    "Severity",
    "Step",
    "UnsupportedError",
    "Verdict",
    "__version__",
    "evaluate",
    "explain_connection",
    "load",
]
