"""Type stubs for the batched datagram IO (ext/udpio.pyx)."""

Address = tuple[str, int]

class DatagramIO:
    batch: int
    truncated: int
    receive_errors: int
    send_errors: int
    last_send_errno: int

    def __init__(self, fd: int, family: int, batch: int = 64, max_datagram: int = 65535) -> None: ...
    def receive(self) -> list[tuple[bytes, Address]]: ...
    def send(self, datagrams: list[tuple[bytes, Address]]) -> int: ...
