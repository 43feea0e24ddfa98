"""The whole fastds exception hierarchy.

Importable without the compiled extensions (the Cython scanner imports it, not the
other way round). Timeouts and failover are events, never exceptions; anything raised
here is either bad input from outside (a message, an env var, a store row) or a
broken invariant that must stop the process.
"""

from __future__ import annotations


class FastdsError(Exception):
    """Base of every error fastds raises on purpose."""


class ConfigError(FastdsError):
    """One or more environment variables are invalid; lists every problem at once."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("invalid configuration:\n  " + "\n  ".join(self.problems))


class SipParseError(FastdsError):
    """Bytes from the network that are not an acceptable SIP message.

    status_hint: the status to answer with (400, 505, 513 ...) when the message is a
    request whose top Via could be read, 0 when the message must just be dropped.
    offset: where in the bytes the scanner gave up (-1 when not tied to a position).
    message: the partly scanned request (header index filled) when status_hint != 0,
    so a local error response can copy Via, From, To, Call-ID and CSeq from it.
    """

    def __init__(self, reason: str, status_hint: int = 0, offset: int = -1, message=None):
        self.reason = reason
        self.status_hint = status_hint
        self.offset = offset
        self.message = message
        super().__init__(reason if offset < 0 else f"{reason} (at byte {offset})")


class StoreError(FastdsError):
    """The destination store could not be read or written."""


class MissingTable(StoreError):
    """An optional table (address) is not in the store: fastds goes on without it."""


class TableVersionMismatch(StoreError):
    """A table's row in the version table is not the version fastds speaks (OpenSIPS 3.4)."""


class RowNotFound(StoreError):
    """The store has no row (destination, address) with that id (removed meanwhile, or never there)."""


class ShmLayoutError(FastdsError):
    """A shared-memory segment does not match the layout this build expects."""


class FieldError(FastdsError):
    """A management request (API body, CLI input) with a bad field: names the field, the
    value given and what was expected; nothing was written."""

    def __init__(self, field: str, value, expected: str):
        self.field, self.value, self.expected = field, value, expected
        super().__init__(f"{field}: {value!r} is not valid: expected {expected}")

    def as_json(self) -> dict:
        return {"error": str(self), "field": self.field, "value": self.value, "expected": self.expected}


class ProberUnavailable(FastdsError):
    """The prober did not answer a request from the API (it is restarting, or stuck)."""
