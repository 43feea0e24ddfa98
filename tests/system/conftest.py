"""The fixtures of tests/harness.py."""

from tests.harness import harness, mysql_database  # noqa: F401 - fixtures, used by name
