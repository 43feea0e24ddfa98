"""The destination state: one type for OpenSIPS's dispatcher state codes
(OpenSIPS modules/dispatcher/dispatch.h).

Owns the codes the `state` column, shared memory and ext/dshash.pyx use (0 active,
1 inactive: administratively off, never probed; 2 probing: failed, probed every
interval), their names in the JSON API, the CLI and the log (lower case) and in the
OpenSIPS MI (capitalised), and reading a state an operator typed.
"""

from __future__ import annotations

import enum


class DestinationState(enum.IntEnum):
    ACTIVE = 0
    INACTIVE = 1
    PROBING = 2

    @property
    def label(self) -> str:
        """The name in the JSON API, the CLI and log lines: active, inactive, probing."""
        return self.name.lower()

    @property
    def mi_name(self) -> str:
        """The name OpenSIPS's ds_list shows: Active, Inactive, Probing."""
        return self.name.capitalize()

    @classmethod
    def parse(cls, text: str) -> DestinationState:
        """A name (any case) or a code; ValueError otherwise."""
        value = text.strip()
        if value.isdigit() and int(value) in cls._value2member_map_:
            return cls(int(value))
        try:
            return cls[value.upper()]
        except KeyError:
            raise ValueError(f"{text!r} is not a state (active, inactive, probing or 0, 1, 2)") from None
