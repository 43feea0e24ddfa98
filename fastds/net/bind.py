"""Binding sockets: what every process that listens starts with.

Owns the binds and how a failure reads: OSError whose strerror names the address
(`cannot bind UDP 127.0.0.1:5060: Address already in use`) -- the workers' public UDP
socket (SO_REUSEPORT, shared) and private one, their TCP listener (SO_REUSEPORT too), the
prober's, the API's TCP listener, and the check that no other socket holds the SIP addresses
yet (a second fastds would share them).
"""

from __future__ import annotations

import socket


def bind_udp(host: str, port: int, *, reuse_port: bool, rcvbuf_bytes: int | None = None) -> socket.socket:
    """A bound, non-blocking UDP socket; OSError names the address when it is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if rcvbuf_bytes is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf_bytes)
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise OSError(exc.errno, f"cannot bind UDP {host}:{port}: {exc.strerror}") from None
    sock.setblocking(False)
    return sock


def ensure_udp_free(host: str, port: int) -> None:
    """OSError naming the address unless no socket holds it. A bind without SO_REUSEPORT
    fails while any socket is bound there, another fastds's SO_REUSEPORT ones included
    (which the workers' own binds would silently share: two instances splitting calls)."""
    bind_udp(host, port, reuse_port=False).close()


def bind_tcp(host: str, port: int, *, reuse_port: bool = False, what: str = "the API") -> socket.socket:
    """A listening, non-blocking TCP socket (the API's, or a worker's SIP listener with
    SO_REUSEPORT); OSError names what and the address."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        sock.listen(1024)
    except OSError as exc:
        sock.close()
        raise OSError(exc.errno, f"cannot bind {what} on {host}:{port}: {exc.strerror}") from None
    sock.setblocking(False)
    return sock


def ensure_free(transport: str, host: str, port: int) -> None:
    """OSError naming the address unless no socket holds it: a SIP listener's (udp, tcp or
    tls), as ensure_udp_free."""
    if transport == "udp":
        ensure_udp_free(host, port)
    else:
        bind_tcp(host, port, what=f"SIP over {transport.upper()}").close()
