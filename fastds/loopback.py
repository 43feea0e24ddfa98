"""fastds on loopback as a subprocess: what the tests and the benchmarks start it with.

Owns free loopback ports, the environment every such fastds runs with (loopback only,
FASTDS_EGRESS_ALLOW=127.0.0.0/8, its own SQLite store and state directory), starting
`fastds run` with its log in a file and waiting until it logs that it is ready (or dies
first: the log says why), and stopping a process by its PID (SIGTERM, then SIGKILL).
A tool of the tests and benchmarks, shipped with the package so that neither imports the
other; nothing in the service imports it (tests/test_layout.py).
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

READY_LINE = b"fastds ready"


def _free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def free_udp_port() -> int:
    return _free_port(socket.SOCK_DGRAM)


def free_tcp_port() -> int:
    return _free_port(socket.SOCK_STREAM)


def environment(directory: Path, db: Path, sip_port: int, api_port: int, path: str, **settings) -> dict[str, str]:
    """FASTDS_* for a fastds on 127.0.0.1 that sends nowhere but loopback (and PATH=path);
    `settings` by lower-case name override the defaults (workers=2, fr_timeout_ms=1000 ...)."""
    env = {"PATH": path, "FASTDS_SIP_LISTEN": f"127.0.0.1:{sip_port}", "FASTDS_DB_URL": f"sqlite:///{db}",
           "FASTDS_STATE_DIR": str(directory), "FASTDS_EGRESS_ALLOW": "127.0.0.0/8", "FASTDS_LOG_LEVEL": "info",
           "FASTDS_WORKERS": "1", "FASTDS_API_LISTEN": f"127.0.0.1:{api_port}",
           "FASTDS_DRAIN_IDLE_S": "0"}  # a test or benchmark stops once its transactions are done
    env.update({f"FASTDS_{name.upper()}": str(value) for name, value in settings.items()})
    return env


def start(env: dict[str, str], log: Path) -> subprocess.Popen:
    """`fastds run` with stdout and stderr appended to `log`."""
    with open(log, "ab") as out:
        return subprocess.Popen([sys.executable, "-m", "fastds", "run"], env=env, stdout=out, stderr=subprocess.STDOUT)


def wait_ready(process: subprocess.Popen, log: Path, timeout: float = 30, ready_lines: int = 1) -> None:
    """Until `log` holds `ready_lines` ready lines; RuntimeError with the log's tail if the
    process ends or the time runs out first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        if log.exists() and log.read_bytes().count(READY_LINE) >= ready_lines:
            return
        time.sleep(0.05)
    raise RuntimeError(f"fastds did not become ready: {log.read_text()[-2000:] if log.exists() else ''}")


def stop(process: subprocess.Popen, timeout: float = 15) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)
