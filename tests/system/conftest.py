"""The fixtures of tests/harness.py and tests/dns_zone.py."""

from tests.dns_zone import zone  # noqa: F401 - a fixture, used by name
from tests.harness import harness, mysql_database  # noqa: F401 - fixtures, used by name
