"""The suite runs only against compiled modules built from the sources it sees (fastds/compiled.py)."""

import pytest

from fastds.compiled import stale_message, stale_modules


def pytest_sessionstart(session):
    stale = stale_modules()
    if stale:
        raise pytest.UsageError(stale_message(stale))
