"""Generators: intents → manifests as plain dicts."""
