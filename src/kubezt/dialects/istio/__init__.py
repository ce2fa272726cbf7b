"""Istio security resources and mesh configuration → mesh IR."""
