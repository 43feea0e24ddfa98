"""Traffic failure reports, workers to the prober (ds_mark_dst "p" on live traffic).

Owns the little protocol end to end: the address (an abstract unix datagram socket
named after the master's pid), the encoding (one datagram per report: the destination
id, a space, 1 or 0 for whether it was answering meanwhile, a space, the reason in
UTF-8), the workers' sender, which counts what it could not send (the prober is
restarting: its probes catch up), and the prober's side, which binds the address and
decodes.
"""

from __future__ import annotations

import socket

from fastds.dispatch.txn import ReportFailure


def report_address(master_pid: int) -> str:
    return f"\0fastds-{master_pid}-prober"


class FailureReporter:
    """A worker's side: `reporter(ReportFailure)` sends it; `lost` counts what could not go."""

    def __init__(self, address: str):
        self._address = address
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._socket.setblocking(False)
        self.lost = 0

    def __call__(self, report: ReportFailure) -> None:
        try:
            self._socket.sendto(b"%d %d %s" % (report.destination.id, report.answering, report.reason.encode()),
                                self._address)
        except OSError:
            self.lost += 1


def bind_reports(address: str) -> socket.socket:
    """The prober's side: the non-blocking socket the reports arrive on."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(address)
    sock.setblocking(False)
    return sock


def decode(data: bytes) -> tuple[int, str, bool] | None:
    """(destination id, reason, answering) of one report; None for a datagram that is not one."""
    dest_id, _, rest = data.decode("utf-8", "replace").partition(" ")
    answering, _, reason = rest.partition(" ")
    if not dest_id.isdigit() or answering not in ("0", "1"):
        return None
    return int(dest_id), reason or "traffic failure", answering == "1"
