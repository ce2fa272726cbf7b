"""Intent → manifests: `compile_intent` turns a resolved `ir.intent.Intent` into the complete
set of Kubernetes, Calico, Istio (and optionally SPIRE and installation) objects, as plain dicts
grouped into rollout phases (one file each). One module per target dialect; none imports YAML.

What a target cannot express goes through the `unsupported` channel: `on_unsupported="raise"`
raises `UnsupportedError` naming every case, `"warn"` returns them with the output.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

from kubezt.errors import UnsupportedError
from kubezt.generate.calico import generate_calico, outside_ingress_deny
from kubezt.generate.cluster_policy import cluster_default_deny
from kubezt.generate.istio import generate_istio
from kubezt.generate.k8s import generate_k8s
from kubezt.generate.plan import Manifest, Phase, Plan
from kubezt.generate.platform import generate_platform
from kubezt.generate.spire import generate_spire
from kubezt.ir.intent import Intent, Mode

OnUnsupported = Literal["raise", "warn"]


@dataclass(frozen=True, slots=True)
class ManifestFile:
    """One rollout phase: its file name and objects, in apply order."""

    name: str
    objects: tuple[dict[str, Any], ...]


@dataclass(frozen=True, slots=True)
class Compiled:
    intent: Intent
    """The intent as compiled (its `mode` is the mode of the output)."""
    files: tuple[ManifestFile, ...]
    warnings: tuple[str, ...] = ()
    """What the targets cannot express, with `on_unsupported="warn"`."""

    def objects(self) -> Iterator[dict[str, Any]]:
        """Every object, in rollout order."""
        for f in self.files:
            yield from f.objects


def compile_intent(
    intent: Intent,
    *,
    mode: Mode | None = None,
    spire: bool = False,
    platform: bool = False,
    on_unsupported: OnUnsupported = "raise",
    cluster_policy: bool = False,
) -> Compiled:
    """The manifests that realise `intent` in `mode` (default: the intent's own).

    Output is deterministic: files in rollout order (docs/intent.md), objects in each file by
    kind (a Tier before its policies), namespace and name. Every object carries the annotation
    `kubezt.io/intent-entry` naming the intent entries it came from.
    """
    if mode is not None and mode is not intent.mode:
        intent = dataclasses.replace(intent, mode=mode)
    plan = Plan(intent, intent.mode)
    problems: list[str] = []
    manifests: list[Manifest] = []
    manifests += generate_k8s(plan)
    calico = generate_calico(plan, problems.append)
    if cluster_policy:
        # The default deny as a Baseline ClusterNetworkPolicy instead of a GlobalNetworkPolicy.
        calico = [m for m in calico if m.phase is not Phase.DEFAULT_DENY]
        calico.extend(cluster_default_deny(plan))
        calico.append(outside_ingress_deny(plan))
    manifests += calico
    manifests += generate_istio(plan)
    if spire:
        manifests += generate_spire(plan, problems.append)
    if platform:
        manifests += generate_platform(plan, spire)
    if problems and on_unsupported == "raise":
        raise UnsupportedError(
            "the intent needs what the targets cannot express: "
            + "; ".join(problems)
            + " (pass on_unsupported='warn' / --on-unsupported warn to generate anyway)"
        )
    phases = list(Phase)
    files: list[ManifestFile] = []
    for phase in phases:
        chosen = sorted((m for m in manifests if m.phase is phase), key=lambda m: m.sort_key)
        if chosen:
            files.append(ManifestFile(phase.file, tuple(dict(m.body) for m in chosen)))
    return Compiled(intent, tuple(files), tuple(problems))


__all__ = ["Compiled", "ManifestFile", "OnUnsupported", "compile_intent"]
