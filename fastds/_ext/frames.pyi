"""Type stubs for the hand-off's frames (ext/frames.pyx)."""

Address = tuple[str, int] | tuple[str, int, int]

MESSAGE: int
WRITE: int
MAX_FRAME: int

class FrameOutbox:
    size: int
    frames: int

    def add(self, kind: int, data: bytes, address: Address) -> bool: ...
    def full(self) -> bool: ...
    def take(self) -> bytes: ...

class FrameInbox:
    received: int
    dropped: int

    def __init__(self, fd: int, siblings: object) -> None: ...
    def unpack(self, batch: bytes, messages: list[tuple[bytes, Address]], writes: list[tuple[bytes, Address]]) -> None: ...
