from django.apps import AppConfig


class ProbeConfig(AppConfig):
    """A test-only module with its own outbox and a controllable consumer."""

    name = "tests.probe"
    label = "probe"
