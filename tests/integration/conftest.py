"""The harness fixture (tests/harness.py) for the integration tests."""

from tests.harness import harness  # noqa: F401 - a fixture, used by name
