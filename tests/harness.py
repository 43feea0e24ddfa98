"""Test harness: `fastds run` as a subprocess on loopback, SIPp UAC/UAS around it.

Every fastds runs with FASTDS_EGRESS_ALLOW=127.0.0.0/8 and only loopback destinations.
Every SIPp run is bounded in calls and time (-m, -timeout, subprocess timeout) and every
process started here is ended by its PID. Waits are on conditions with generous bounds.
"""

from __future__ import annotations

import asyncio
import csv
import json
import os
import secrets
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import asyncmy
import orjson
import pytest

from fastds import loopback
from fastds.loopback import free_tcp_port, free_udp_port
from fastds.loopback import stop as stop_process
from fastds.sip import build_response, scan
from fastds.store.sqlite import SqliteStore

ROOT = Path(__file__).parents[1]
SCENARIOS = ROOT / "bench" / "sipp"
SIPP = shutil.which("sipp")


def wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def sipp_stats(path: Path) -> dict[str, str]:
    rows = list(csv.reader(path.read_text().splitlines(), delimiter=";"))
    return dict(zip(rows[0], rows[-1]))


class Sipp:
    """A SIPp process writing its statistics to a CSV file."""

    def __init__(self, directory: Path, name: str, args: list[str]):
        self.stat_file = directory / f"{name}.csv"
        self.log = directory / f"{name}.log"
        local = [] if "-i" in args else ["-i", "127.0.0.1"]  # a test may bind another loopback address
        command = [SIPP, *args, *local, "-nostdin", "-trace_stat", "-stf", str(self.stat_file),
                   "-fd", "1", "-trace_err", "-error_file", str(directory / f"{name}.errors")]
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=directory)

    def stop(self) -> dict[str, str]:
        stop_process(self.process)
        return self.stats()

    def wait(self, timeout: float) -> int:
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            stop_process(self.process)
            raise AssertionError(f"SIPp did not finish in {timeout}s: {self.log.read_text()[-2000:]}") from None

    def stats(self) -> dict[str, str]:
        wait_for(lambda: self.stat_file.exists() and len(self.stat_file.read_text().splitlines()) > 1, 10,
                 f"statistics in {self.stat_file}")
        return sipp_stats(self.stat_file)

    def periods(self) -> list[dict[str, str]]:
        """SIPp's rows, one per second (-fd 1): the (P) columns count that period, and
        "at" is its end as a Unix time (CurrentTime's third field)."""
        header, *rows = csv.reader(self.stat_file.read_text().splitlines(), delimiter=";")
        return [{**dict(zip(header, row)), "at": row[header.index("CurrentTime")].split("\t")[2]} for row in rows]


class LoopbackDestination:
    """A destination played by the test: a UDP socket on 127.0.0.1 whose thread records every
    datagram (arrival time, bytes) and hands it to `answer(data, addr, sock)`, if given."""

    def __init__(self, answer=None):
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.socket.bind(("127.0.0.1", 0))
        self.socket.settimeout(0.2)
        self.port = self.socket.getsockname()[1]
        self.received: list[tuple[float, bytes]] = []
        self._answer = answer
        self._running = True
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self):
        while self._running:
            try:
                data, addr = self.socket.recvfrom(65535)
            except TimeoutError:
                continue
            self.received.append((time.monotonic(), data))
            if self._answer is not None:
                self._answer(data, addr, self.socket)

    def stop(self):
        self._running = False
        self._thread.join(5)
        self.socket.close()


class OptionsCallee(LoopbackDestination):
    """A destination that answers every OPTIONS (routed ones and probes) 200 until `silent`
    is set, and ignores every other request."""

    def __init__(self):
        self.silent = False
        super().__init__(self._reply)

    def _reply(self, data, addr, sock):
        message = scan(data)
        if not self.silent and message.is_request and message.method == b"OPTIONS":
            sock.sendto(build_response(message, 200, to_tag=b"callee"), addr)


class Harness:
    def __init__(self, directory: Path):
        self.directory = directory
        self.port = free_udp_port()
        self.api_port = free_tcp_port()
        self.db = directory / "fastds.db"
        self.processes: list[subprocess.Popen] = []
        self.sipps: list[Sipp] = []
        self.log = directory / "fastds.log"
        self._run(self._init_store())

    @staticmethod
    def _run(coroutine):
        return asyncio.run(coroutine)

    async def _init_store(self):
        store = SqliteStore(str(self.db))
        await store.init_schema()
        await store.close()

    def add_destination(self, port: int, setid: int = 1, state: int = 0, weight: int = 1, priority: int = 0,
                        uri: str | None = None, attrs: str = "") -> None:
        """sip:127.0.0.1:port, or `uri` (e.g. with ;transport=tcp)."""
        async def add():
            store = SqliteStore(str(self.db))
            await store.add_destination({"setid": setid, "destination": uri or f"sip:127.0.0.1:{port}", "state": state,
                                         "weight": str(weight), "priority": priority, "attrs": attrs})
            await store.close()

        self._run(add())

    def env(self, **overrides) -> dict[str, str]:
        return loopback.environment(self.directory, self.db, self.port, self.api_port, os.environ["PATH"], **overrides)

    def start_fastds(self, expect_ready: bool = True, extra_env: dict[str, str] | None = None,
                     **overrides) -> subprocess.Popen:
        """`fastds run`; overrides are FASTDS_* settings by lower-case name, extra_env raw variables."""
        ready_before = self.log.read_bytes().count(loopback.READY_LINE) if self.log.exists() else 0
        process = loopback.start({**self.env(**overrides), **(extra_env or {})}, self.log)
        self.processes.append(process)
        if expect_ready:
            try:
                loopback.wait_ready(process, self.log, ready_lines=ready_before + 1)
            except RuntimeError as exc:
                raise AssertionError(str(exc)) from None
        return process

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def api(self, method: str, path: str, body=None, *, token: str | None = None, raw: bytes | None = None,
            headers: dict[str, str] | None = None):
        """(HTTP status, decoded JSON body or the raw bytes when it is not JSON, response headers)."""
        data = raw if raw is not None else orjson.dumps(body) if body is not None else None
        request = urllib.request.Request(self.api_url + path, data=data, method=method,
                                         headers={"Content-Type": "application/json", **(headers or {})})
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                status, payload, reply_headers = response.status, response.read(), response.headers
        except urllib.error.HTTPError as exc:
            status, payload, reply_headers = exc.code, exc.read(), exc.headers
        try:
            return status, orjson.loads(payload), reply_headers
        except orjson.JSONDecodeError:
            return status, payload, reply_headers

    def mi(self, method: str, params=None, request_id=1, token: str | None = None):
        """One MI JSON-RPC call -> the whole reply object."""
        request = {"jsonrpc": "2.0", "method": method, "id": request_id}
        if params is not None:
            request["params"] = params
        status, reply, _ = self.api("POST", "/mi", request, token=token)
        assert status == 200, (status, reply)
        return reply

    def log_lines(self, needle: str) -> list[str]:
        return [line for line in self.log.read_text().splitlines() if needle in line]

    def uas(self, scenario: str, port: int, *extra: str) -> Sipp:
        """A callee; -aa answers the prober's OPTIONS with 200."""
        name = f"uas-{port}-{len(self.sipps)}"
        sipp = Sipp(self.directory, name, ["-sf", str(SCENARIOS / scenario), "-p", str(port), "-aa",
                                           "-timeout", "120s", *extra])
        self.sipps.append(sipp)
        return sipp

    def start_uac(self, scenario: str, calls: int, rate: int = 20, timeout: float = 60, pause_ms: int = 50,
                  *extra: str, to_port: int | None = None) -> Sipp:
        """A caller towards fastds's UDP port, or `to_port` (its TCP one, with extra "-t", "t1"; SIPp
        then binds its own port for TCP: one free for TCP, or it exits 254)."""
        sipp = Sipp(self.directory, f"uac-{scenario}-{len(self.sipps)}", [
            "-sf", str(SCENARIOS / scenario), f"127.0.0.1:{to_port or self.port}",
            "-p", str(free_tcp_port() if to_port else free_udp_port()),
            "-s", "cust",
            "-m", str(calls), "-r", str(rate), "-d", str(pause_ms), "-timeout", f"{int(timeout)}s",
            "-recv_timeout", "15s",  # a call whose answer was lost fails instead of waiting forever
            "-trace_msg", "-message_file", str(self.directory / f"uac-{scenario}.messages"), *extra])
        self.sipps.append(sipp)
        sipp.timeout = timeout
        return sipp

    def uac(self, scenario: str, calls: int, rate: int = 20, timeout: float = 60, *extra: str,
            to_port: int | None = None) -> tuple[int, dict[str, str]]:
        sipp = self.start_uac(scenario, calls, rate, timeout, 50, *extra, to_port=to_port)
        code = sipp.wait(timeout + 30)
        return code, sipp.stats()

    def close(self) -> None:
        for sipp in self.sipps:
            stop_process(sipp.process)
        for process in self.processes:
            stop_process(process)


@pytest.fixture
def harness(tmp_path):
    if SIPP is None:
        pytest.fail("SIPp is required: apt-get install -y sip-tester")
    harness = Harness(tmp_path)
    yield harness
    harness.close()


# -- MariaDB (127.0.0.1:3306, root, empty password) -------------------------------------------

MARIADB = dict(host="127.0.0.1", port=3306, user="root", password="")


async def admin(*statements: str) -> None:
    connection = await asyncmy.connect(**MARIADB, autocommit=True)
    async with connection.cursor() as cursor:
        for statement in statements:
            await cursor.execute(statement)
    connection.close()


def mysql_url(name: str, port: int = 3306) -> str:
    return f"mysql://root:@127.0.0.1:{port}/{name}"


@pytest.fixture
def mysql_database():
    """A fresh database on the machine's MariaDB, dropped afterwards."""
    name = f"fastds_test_{secrets.token_hex(4)}"
    asyncio.run(admin(f"CREATE DATABASE {name}"))
    yield name
    asyncio.run(admin(f"DROP DATABASE IF EXISTS {name}"))  # a test may have dropped it itself


class Relay:
    """A TCP relay to a shared server (MariaDB by default, Redis) that can be cut (every
    connection closed, new ones refused) and restored, or stalled (a silent partition) and
    healed: an outage without touching the server."""

    def __init__(self, target_port: int = 3306):
        self.target_port = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.open = True
        self.flowing = threading.Event()  # cleared: a partition, nothing forwarded and nothing closed
        self.flowing.set()
        self.pairs: list[tuple[socket.socket, socket.socket]] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.open:
                client.close()
                continue
            server = socket.create_connection(("127.0.0.1", self.target_port))
            self.pairs.append((client, server))
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, source, target):
        try:
            while data := source.recv(65536):
                self.flowing.wait()
                target.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, target):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def cut(self):
        self.open = False
        for pair in self.pairs:
            for sock in pair:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        self.pairs.clear()

    def restore(self):
        self.open = True

    def stall(self):
        """A silent partition: connections stay open, nothing more gets through either way."""
        self.flowing.clear()

    def heal(self):
        self.flowing.set()

    def close(self):
        self.cut()
        self.flowing.set()  # stalled pipes wake to find their sockets shut
        self.listener.close()


def openapi_schema(name: str) -> dict:
    """A component schema of fastds/api/openapi.json as plain JSON Schema ($refs into $defs)."""
    from fastds.api.app import OPENAPI

    schemas = json.dumps(json.loads(OPENAPI.read_text())["components"]["schemas"])
    return {"$defs": json.loads(schemas.replace("#/components/schemas/", "#/$defs/")), "$ref": f"#/$defs/{name}"}
