"""Renderers: turn engine results into JSON/YAML documents (and SARIF); they decide nothing."""
