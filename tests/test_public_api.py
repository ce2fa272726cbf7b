"""The public API is exactly what `kubezt.__all__` lists, sorted, and every name exists."""

import kubezt

EXPECTED = [
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


def test_all_is_pinned_and_sorted() -> None:
    assert kubezt.__all__ == EXPECTED


def test_every_exported_name_exists() -> None:
    for name in kubezt.__all__:
        assert hasattr(kubezt, name), name
