"""The library entry point that composes the layers below it: `load()` reads manifests
(dialects), applies the mesh settings the caller overrides, and adds the warnings about the
model as a whole (found by the engine, worded by report). The command line and any other
caller load through here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from kubezt.dialects.registry import LoadResult
from kubezt.dialects.registry import load as read_manifests
from kubezt.engine.diagnose import model_warnings
from kubezt.report.warnings import model_diagnostics


def load(
    paths: Sequence[str],
    *,
    root_namespace: str | None = None,
    trust_domain: str | None = None,
    trust_domain_aliases: Sequence[str] = (),
) -> LoadResult:
    """Read every manifest under `paths` (files, directories, or "-" for stdin) into one
    `Model`, with the given Istio root namespace, trust domain and trust-domain aliases in
    place of the mesh ConfigMap's (each only when given).

    The result's diagnostics are the loader's notes and warnings followed by the warnings about
    the model as a whole (what the mesh or dataplane does differently from what a manifest
    says). Raises `InputError` listing every error of every file when any input is invalid.
    """
    return settled(
        read_manifests(paths),
        root_namespace=root_namespace,
        trust_domain=trust_domain,
        trust_domain_aliases=trust_domain_aliases,
    )


def settled(
    result: LoadResult,
    *,
    root_namespace: str | None = None,
    trust_domain: str | None = None,
    trust_domain_aliases: Sequence[str] = (),
) -> LoadResult:
    """A loaded result (of files or of a live cluster) with the mesh overrides applied and the
    warnings about the model as a whole added."""
    model = result.model
    config = model.mesh_config.overridden(
        root_namespace=root_namespace,
        trust_domain=trust_domain,
        trust_domain_aliases=tuple(trust_domain_aliases),
    )
    if config != model.mesh_config:
        model = dataclasses.replace(model, mesh_config=config)
    return dataclasses.replace(
        result,
        model=model,
        diagnostics=result.diagnostics + model_diagnostics(model_warnings(model)),
    )
