"""Istio PeerAuthentication, AuthorizationPolicy, DestinationRule, Gateway → mesh IR."""

from __future__ import annotations

READERS: dict[tuple[str, str], tuple[object, bool]] = {}
