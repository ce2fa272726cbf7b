"""The public API is exactly what `kubezt.__all__` lists, sorted, every name exists, and
docs/api.md documents exactly these names."""

import re
from pathlib import Path

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


def test_all_is_pinned_and_sorted() -> None:
    assert kubezt.__all__ == EXPECTED


def test_every_exported_name_exists() -> None:
    for name in kubezt.__all__:
        assert hasattr(kubezt, name), name


def test_the_api_page_lists_exactly_the_public_names() -> None:
    page = Path(__file__).resolve().parents[1] / "docs" / "api.md"
    documented: set[str] = set()
    for line in page.read_text(encoding="utf-8").splitlines():
        if line.startswith("| `"):
            documented.update(re.findall(r"`(\w+)`", line.split("|")[1]))
    assert documented == set(kubezt.__all__)
