"""Shared pytest configuration: the KubeEmulator fixtures (``kube_emulator``) for every test."""

pytest_plugins = ["apim_selfhosted.testing.kube.pytest_plugin"]
