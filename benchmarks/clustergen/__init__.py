"""A synthetic but realistic Kubernetes cluster for the kubezt benchmarks (see generate.py)."""
