"""Traffic failure reports, workers to the prober (ds_mark_dst "p" on live traffic).

Owns the little protocol end to end: the address (an abstract unix datagram socket
named after the master's pid), the encoding (one datagram per report: the destination
id, a space, 1 or 0 for whether it was answering meanwhile, a space, how many failures it
stands for, a space, the reason in UTF-8), how a worker coalesces them (ReportWindows),
the workers' sender, which counts what it could not send (the prober is restarting: its
probes catch up), and the prober's side, which binds the address and decodes.

Why coalesce: a destination that answers 503 to every call while its OPTIONS get 200 stays
active, so every call hashed to it fails over and is reported -- at 200 calls/s a hundred
datagrams a second, each a wake-up of the prober (≈ 35 µs) that changes nothing, since the
prober confirms a destination's failures by a probe at most once per CONFIRM_GAP_S and
counts no more than the probing threshold of them.
"""

from __future__ import annotations

import dataclasses
import socket

from fastds.dispatch.health import CONFIRM_GAP_S
from fastds.dispatch.txn import ReportFailure


def report_address(master_pid: int) -> str:
    return f"\0fastds-{master_pid}-prober"


def encode(dest_id: int, answering: bool, count: int, reason: str) -> bytes:
    return b"%d %d %d %s" % (dest_id, answering, count, reason.encode())


def decode(data: bytes) -> tuple[int, str, bool, int] | None:
    """(destination id, reason, answering, failures) of one report; None for a datagram that is not one."""
    dest_id, _, rest = data.decode("utf-8", "replace").partition(" ")
    answering, _, rest = rest.partition(" ")
    count, _, reason = rest.partition(" ")
    if not dest_id.isdigit() or answering not in ("0", "1") or not count.isdigit() or int(count) < 1:
        return None
    return int(dest_id), reason or "traffic failure", answering == "1", int(count)


@dataclasses.dataclass(slots=True)
class _Window:
    ends: float
    sent: int = 0     # reports sent at once in this window
    pending: int = 0  # reports held for the window's end
    reason: str = ""  # the latest held one's


class ReportWindows:
    """A worker's coalescing of its failure reports, sans-IO (the clock is the caller's).

    Per destination and answering flag, a window of CONFIRM_GAP_S opens with the first
    report: the first `threshold` reports of the window go at once (a dead destination is
    taken out as soon as without coalescing: the prober needs no more than the threshold),
    the rest are counted and go as one report carrying their count when the window ends.
    """

    def __init__(self, threshold: int, window_s: float = CONFIRM_GAP_S):
        self._threshold = threshold
        self._window_s = window_s
        self._windows: dict[tuple[int, bool], _Window] = {}

    def offer(self, report: ReportFailure, now: float) -> bytes | None:
        """The datagram to send at once, or None: held for flush()."""
        key = (report.destination.id, report.answering)
        window = self._windows.get(key)
        held = 0
        if window is None or now >= window.ends:
            held = window.pending if window is not None else 0  # its flush() is late: they go with this one
            window = self._windows[key] = _Window(now + self._window_s)
        if window.sent < self._threshold:
            window.sent += 1
            return encode(report.destination.id, report.answering, held + 1, report.reason)
        window.pending += 1
        window.reason = report.reason
        return None

    def next_flush(self) -> float | None:
        """When the earliest window holding reports ends (a plain loop: a generator per held
        report cost more than the rest of the report, compiled)."""
        due = None
        for window in self._windows.values():
            if window.pending and (due is None or window.ends < due):
                due = window.ends
        return due

    def flush(self, now: float) -> list[bytes]:
        """The held reports of the windows ended by `now`, one datagram each; ended windows go."""
        out = []
        for key, window in list(self._windows.items()):
            if window.ends > now:
                continue
            if window.pending:
                out.append(encode(key[0], key[1], window.pending, window.reason))
            del self._windows[key]
        return out


class FailureReporter:
    """A worker's side: `reporter(ReportFailure)` sends it, or holds it for its window's end
    (ReportWindows) on the worker's loop; `lost` counts what could not go."""

    def __init__(self, address: str, threshold: int, loop):
        self._address = address
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._socket.setblocking(False)
        self._windows = ReportWindows(threshold)
        self._loop = loop
        self._flush_at: float | None = None
        self.lost = 0

    def __call__(self, report: ReportFailure) -> None:
        data = self._windows.offer(report, self._loop.time())
        if data is not None:
            self._send(data)  # no report held: the flush armed before (if any) still stands
        else:
            self._arm()

    def _arm(self) -> None:
        due = self._windows.next_flush()
        if due is not None and (self._flush_at is None or due < self._flush_at):
            self._flush_at = due
            self._loop.call_at(due, self._flush)

    def _flush(self) -> None:
        self._flush_at = None
        for data in self._windows.flush(self._loop.time()):
            self._send(data)
        self._arm()

    def _send(self, data: bytes) -> None:
        try:
            self._socket.sendto(data, self._address)
        except OSError:
            self.lost += 1


def bind_reports(address: str) -> socket.socket:
    """The prober's side: the non-blocking socket the reports arrive on."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(address)
    sock.setblocking(False)
    return sock
