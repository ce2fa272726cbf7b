"""The public API is exactly what `kubezt.__all__` lists, sorted, and every name exists."""

import kubezt

EXPECTED = [
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


def test_all_is_pinned_and_sorted() -> None:
    assert kubezt.__all__ == EXPECTED


def test_every_exported_name_exists() -> None:
    for name in kubezt.__all__:
        assert hasattr(kubezt, name), name
