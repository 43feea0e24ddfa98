"""How fast a destination that dies is marked, with and without FASTDS_CONFIRM_FAILURES.

`python -m bench.detection` runs fastds on loopback with the production timers (FR 5 s,
probes timed out by the FR timer, FASTDS_PROBING_THRESHOLD=1 so one failure marks), one
destination played here that answers every OPTIONS, and a caller sending OPTIONS routed
to it at --rate a second. The destination then stops answering; the figure is the time
from then until the API shows it probing. Cases: confirmation off (OpenSIPS), on with
traffic flowing (the requests sent after the death find nothing answered during their wait
and count at once), and on when the only failure is a request that was in flight as it
died (sent just before the answer to the previous one: it looks answering, so a probe
confirms it: FR + one probe timeout). Medians of --runs runs each, side by side in one sitting.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import orjson

from bench.load import Fastds
from fastds.sip import build_response, scan


class Callee:
    """A destination that answers OPTIONS 200 until `dead` is set, or until it has given
    `answers_left` more answers; `received` keeps (monotonic time, datagram) of each."""

    def __init__(self):
        self.answers_left: int | None = None
        self.delay_s = 0.0  # answers sent this late
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.socket.bind(("127.0.0.1", 0))
        self.socket.settimeout(0.2)
        self.port = self.socket.getsockname()[1]
        self.dead = False
        self.received: list[tuple[float, bytes]] = []
        self._running = True
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while self._running:
            try:
                data, addr = self.socket.recvfrom(65535)
            except TimeoutError:
                continue
            self.received.append((time.monotonic(), data))
            message = scan(data)
            if self.answers_left == 0:
                self.dead = True
            if not self.dead and message.is_request and message.method == b"OPTIONS":
                answer = build_response(message, 200, to_tag=b"callee")
                if self.delay_s:
                    threading.Timer(self.delay_s, self.socket.sendto, (answer, addr)).start()
                else:
                    self.socket.sendto(answer, addr)
                if self.answers_left is not None:
                    self.answers_left -= 1

    def stop(self) -> None:
        self._running = False
        self._thread.join(5)
        self.socket.close()


def routed_options(port: int, n: int) -> bytes:
    return (f"OPTIONS sip:bob@127.0.0.1:{port} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK-d{n};rport\r\n"
            f"Max-Forwards: 70\r\nFrom: <sip:bench@127.0.0.1>;tag=b{n}\r\nTo: <sip:bob@127.0.0.1>\r\n"
            f"Call-ID: detect-{n}-{os.getpid()}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n").encode()


def state(api_port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{api_port}/api/v1/sets", timeout=5) as response:
        return orjson.loads(response.read())["sets"][0]["destinations"][0]["state"]


def one_run(confirm: bool, rate: float, in_flight: bool) -> float:
    """Seconds from the death to the destination shown probing."""
    callee = Callee()
    fastds = Fastds(Path(tempfile.mkdtemp(prefix="bench-detect-")), 1, confirm_failures=int(confirm),
                    fr_timeout_ms=5000, probing_threshold=1)
    caller = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    caller.setblocking(False)
    try:
        fastds.start([callee.port])
        n = 0
        for _ in range(int(2 * rate)):  # two seconds of answered traffic first
            caller.sendto(routed_options(fastds.port, n), ("127.0.0.1", fastds.port))
            n += 1
            time.sleep(1 / rate)
        if in_flight:  # two back to back: the first is the last answered (50 ms late, after the
            callee.answers_left, callee.delay_s = 1, 0.05  # second was forwarded), the second is lost
            caller.sendto(routed_options(fastds.port, n), ("127.0.0.1", fastds.port))
            caller.sendto(routed_options(fastds.port, n + 1), ("127.0.0.1", fastds.port))
        else:
            callee.dead = True
        died = time.monotonic()
        deadline = died + 60
        while time.monotonic() < deadline:
            if not in_flight:
                caller.sendto(routed_options(fastds.port, n), ("127.0.0.1", fastds.port))
                n += 1
            if state(fastds.api_port) == "probing":
                return time.monotonic() - died
            time.sleep(1 / rate)
        return float("nan")
    finally:
        fastds.stop()
        callee.stop()
        caller.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rate", type=float, default=20.0, help="routed requests a second")
    args = parser.parse_args()
    cases = {"confirmation off (OpenSIPS)": (False, False), "confirmation on, traffic flowing": (True, False),
             "confirmation on, only a request in flight at the death fails": (True, True)}
    results: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(args.runs):  # interleaved, so that the machine's noise falls on every case alike
        for name, (confirm, in_flight) in cases.items():
            results[name].append(one_run(confirm, args.rate, in_flight))
    for name, seconds in results.items():
        print(f"{name}: marked after {statistics.median(seconds):.2f} s (runs: {', '.join(f'{s:.2f}' for s in seconds)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
