"""Reading a live cluster for every command that takes manifests: `--cluster`, `--context`,
`--kubeconfig`, and manifests given with them applied over the live state."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kubezt.dialects._yaml import Document
from kubezt.dialects.registry import LoadResult, parse_paths
from kubezt.errors import DiagnosticSink

if TYPE_CHECKING:
    from kubezt.cli.common import LoadOptions
    from kubezt.live.read import ReadProgress
    from kubezt.live.session import Session


def open_session(live: LoadOptions) -> Session:
    from kubezt.live.session import Target, connect

    return connect(Target(kubeconfig=live.kubeconfig, context=live.context))


def load_live(
    live: LoadOptions, paths: list[str], progress: ReadProgress | None = None
) -> LoadResult:
    """The live cluster's model; objects in `paths` replace the cluster's objects of the same
    kind, namespace and name (the state after applying them). `progress` is told how the read
    goes."""
    from kubezt.live.read import load_cluster

    session = open_session(live)
    extra: list[Document] = []
    files: list[str] = []
    if paths:
        sink = DiagnosticSink()
        extra, files = parse_paths(paths, sink)
        sink.raise_if_errors()
    return load_cluster(session, extra, tuple(files), progress)
