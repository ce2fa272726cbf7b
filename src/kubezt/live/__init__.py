"""Optional live-cluster adapter (extra `kubezt[live]`): the only code that talks to an API
server."""
