"""The k8s tier: a real Kubernetes control plane (tests/k8s/conftest.py)."""
