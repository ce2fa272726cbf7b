"""Readers for the policy dialects kubezt understands (Kubernetes, Calico, Istio)."""
