"""Calico `projectcalico.org/v3` policy resources → policy IR (filled in by the Calico layer)."""

from __future__ import annotations

from kubezt.dialects.context import ReadContext  # noqa: F401

READERS: dict[tuple[str, str], tuple[object, bool]] = {}
