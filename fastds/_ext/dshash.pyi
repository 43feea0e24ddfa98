"""Type stub of the compiled destination picker (source: ext/dshash.pyx)."""

from collections.abc import Sequence

from fastds._ext.sipscan import SipMessage

FLAG_FAILOVER: int
FLAG_USER_ONLY: int
FLAG_DEFAULT: int
FLAG_CONSISTENT: int
STATE_ACTIVE: int
STATE_INACTIVE: int
STATE_PROBING: int
KEY_LITERAL: int
KEY_FROM_USER: int
KEY_FROM_HOST: int
KEY_TO_USER: int
KEY_TO_HOST: int
KEY_RURI_USER: int
KEY_RURI_HOST: int
KEY_CALL_ID: int
KEY_FROM_TAG: int
KEY_SOURCE_IP: int
KEY_AUTH_USER: int

class SetTable:
    size: int
    def __init__(self, weights: Sequence[int], ids: Sequence[bytes],
                 live: tuple[object, int, int, int, int] | None = None) -> None: ...
    def set_state(self, i: int, state: int) -> None: ...
    def get_state(self, i: int) -> int: ...
    def set_load(self, i: int, in_flight: int) -> None: ...
    def add_load(self, i: int, delta: int) -> int: ...
    def add_pick(self, i: int) -> int: ...
    def add_failover(self, i: int) -> int: ...
    def counts(self, i: int) -> tuple[int, int]: ...
    def set_rtt(self, i: int, rtt_ms: float) -> None: ...

class KeyTemplate:
    parts: tuple[tuple[int, bytes], ...]
    def __init__(self, parts: Sequence[tuple[int, bytes]]) -> None: ...

def seed_random(seed: int | None = None) -> None: ...
def key_of(m: SipMessage, alg: int, flags: int = 0, template: KeyTemplate | None = None,
           source_ip: bytes = b"") -> bytes | None: ...
def select_key(t: SetTable, key: bytes | None, alg: int, flags: int = 0, max_results: int = 1000) -> list[int]: ...
def select(t: SetTable, m: SipMessage, alg: int, flags: int = 0, max_results: int = 1000,
           template: KeyTemplate | None = None, source_ip: bytes = b"") -> list[int]: ...
