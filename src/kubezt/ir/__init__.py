"""kubezt's intermediate representation: pure, hashable data every dialect lowers into.

Nothing here performs I/O, parses text or knows about YAML; the engine evaluates these values.
"""
