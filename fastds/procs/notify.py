"""sd_notify without a dependency: READY, WATCHDOG, STATUS and STOPPING to systemd.

Owns the datagram to $NOTIFY_SOCKET (a path, or '@' for the abstract namespace) that a
Type=notify unit expects. Outside systemd (no socket) every call is a no-op.
"""

from __future__ import annotations

import socket


class Notifier:
    def __init__(self, address: str):
        self._address = "\0" + address[1:] if address.startswith("@") else address
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) if address else None

    def notify(self, *fields: str) -> bool:
        """Send "KEY=value" lines; False when there is no systemd to tell or it failed."""
        if self._socket is None:
            return False
        try:
            self._socket.sendto("\n".join(fields).encode(), self._address)
        except OSError:
            return False
        return True

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
