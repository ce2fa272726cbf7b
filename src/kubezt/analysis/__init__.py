"""Analyses over engine results: audit, blast radius, diff, verify."""
