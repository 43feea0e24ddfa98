"""The prober process: loads destinations, probes them, owns their state (docs/architecture.md §1).

Owns the only writes to the shared table: it loads sets and dialplan rules from the
store and publishes them (SIGHUP = reload, keeping runtime state), sends OPTIONS probes
(FASTDS_PING_*) and measures their round trip, takes workers' traffic failure reports on
a local datagram socket and the API's requests (set a state, reload) on another
(fastds/procs/control.py), applies fastds/dispatch/health.py to all of it, logs every
state change in one line (and keeps it as a status/report event, with the reports of
every load), and writes changed states back to the store in batches.
"""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import itertools
import logging
import os
import signal
import socket
import time
from typing import Any

import orjson
import uvloop

from fastds.config import Settings
from fastds.dispatch.health import Health, StateChange
from fastds.dispatch.routes import Router
from fastds.dispatch.rules import SelectionRule
from fastds.dispatch.sets import DestinationSet, build_sets
from fastds.dispatch.state import DestinationState
from fastds.dispatch.status_report import StatusReport
from fastds.errors import DestinationNotFound, FastdsError, SipParseError, StoreError
from fastds.net.bind import bind_udp
from fastds.net.egress import EgressPolicy
from fastds.net.udp import sent_by
from fastds.procs import EXIT_BOOT_FAILURE
from fastds.procs.control import MAX_DATAGRAM
from fastds.shm.layout import ShmWriter, slots
from fastds.sip import BranchFactory, scan
from fastds.sip.build import build_probe
from fastds.store import Store, open_store

log = logging.getLogger("fastds.prober")
TICK_S = 0.05
FLUSH_S = 2.0


def resolve(sets: dict[int, DestinationSet]) -> tuple[dict[int, DestinationSet], list[str]]:
    """Destination host names resolved once here (workers do no DNS); a name that does
    not resolve skips its row, as OpenSIPS does."""
    problems = []
    resolved = {}
    for set_id, destination_set in sets.items():
        kept = []
        for destination in destination_set.destinations:
            try:
                ipaddress.ip_address(destination.host)
                kept.append(destination)
                continue
            except ValueError:
                pass
            try:
                infos = socket.getaddrinfo(destination.host, destination.port, type=socket.SOCK_DGRAM)
            except OSError as exc:
                problems.append(f"dispatcher row id={destination.id}: could not resolve {destination.host}: "
                                f"{exc.strerror or exc}; row skipped")
                continue
            kept.append(dataclasses.replace(destination, host=infos[0][4][0]))
        resolved[set_id] = DestinationSet(set_id, tuple(kept))
    return resolved, problems


class Probe:
    __slots__ = ("dest_id", "slot", "data", "addr", "sent_at", "interval", "next_send", "deadline")


class Prober:
    def __init__(self, settings: Settings, writer: ShmWriter, store: Store, secret: bytes, advertised: str):
        self.settings = settings
        self.writer = writer
        self.store = store
        self.health = Health(settings.probing_threshold, settings.probing_mode, settings.ping_reply_codes,
                             settings.ping_interval_s)
        self.branches = BranchFactory(secret, "probe")
        self.egress = EgressPolicy(settings.egress_allow)
        self.pending: dict[bytes, Probe] = {}
        self.advertised = advertised
        self.socket: socket.socket | None = None
        self._call_ids = itertools.count(1)
        self._store_failing = False
        self.status_report = StatusReport()
        # operators' requests, reloads and write-backs, one at a time in the order received
        self._serial = asyncio.Lock()

    async def reload(self, now: float, inherit: bool = True) -> tuple[int, list[str]]:
        """Load sets and rules from the store and publish them as a new generation;
        returns it and a line per row or rule skipped. States the store does not hold
        yet are written first, so that a reload without inherit_state reads the
        operator's last change and store and runtime agree afterwards."""
        async with self._serial:
            if not await self._write_back():
                raise StoreError("state changes not yet in the store could not be written; reload refused")
            return await self._reload(now, inherit)

    async def _reload(self, now: float, inherit: bool) -> tuple[int, list[str]]:
        self.status_report.loading(time.time())
        try:
            generation, problems, destinations, discarded = await self._load(now, inherit)
        except BaseException:
            self.status_report.load_failed(time.time())
            raise
        self.status_report.loaded(destinations, discarded, time.time())
        return generation, problems

    async def _load(self, now: float, inherit: bool) -> tuple[int, list[str], int, int]:
        runtime = {}
        if not self.health.tracked and self.writer.generation:  # respawned: keep what the last prober knew
            sets_now, _ = self.writer.sets(self.writer.generation)
            runtime = {d.id: d.state for found in sets_now.values() for d in found.destinations}
        rows = await self.store.load_destinations()
        dialplan = await self.store.load_dialplan(self.settings.dialplan_id)
        sets, problems = build_sets(rows)
        sets, unresolved = resolve(sets)
        discarded = len(problems) + len(unresolved)
        default = SelectionRule.parse(self.settings.default_set, self.settings.default_alg, self.settings.default_flags)
        problems += unresolved + Router(dialplan, default).problems
        for problem in problems:
            log.warning("%s", problem)
        states, changes = self.health.load(slots(sets), now, inherit, runtime)
        generation = self.writer.publish(sets, states, dialplan)
        for change in changes:
            self._report(change)
        log.info("published generation %d: %d sets, %d destinations, %d dialplan rules", generation, len(sets),
                 len(states), len(dialplan))
        return generation, problems, len(states), discarded

    def apply(self, change: StateChange | None) -> None:
        if change is None:
            return
        self.writer.set_state(change.slot, change.new)
        self._report(change)

    def _report(self, change: StateChange) -> None:
        """Every state change: one log line and one status/report event."""
        log.info("%s", change.log_line())
        self.status_report.state_changed(change, time.time())

    def send_probes(self, now: float) -> None:
        settings = self.settings
        for tracked in self.health.due(now):
            destination = tracked.destination
            if not self.egress.allows(destination.host, now):
                self.apply(self.health.probe_result(destination.id, None))
                continue
            probe = Probe()
            branch = self.branches.new()
            probe.dest_id, probe.slot, probe.addr = destination.id, tracked.slot, (destination.host, destination.port)
            probe.data = build_probe(settings.ping_method.encode(), destination.uri.encode(),
                                     sent_by=sent_by(self.socket, self.advertised), branch=branch,
                                     from_uri=settings.ping_from.encode(), from_tag=branch[-12:],
                                     call_id=b"probe-%d-%d@fastds" % (os.getpid(), next(self._call_ids)), cseq=1)
            probe.sent_at = now
            probe.interval = settings.t1_ms / 1000
            probe.next_send = now + probe.interval
            probe.deadline = now + settings.fr_timeout_ms / 1000  # as tm's fr_timeout bounds OpenSIPS probes
            self.pending[branch] = probe
            self._send(probe)

    def _send(self, probe: Probe) -> None:
        try:
            self.socket.sendto(probe.data, probe.addr)
        except OSError:
            pass  # a refused send shows up as a timeout

    def expire(self, now: float) -> None:
        for branch, probe in list(self.pending.items()):
            if now >= probe.deadline:
                del self.pending[branch]
                self.apply(self.health.probe_result(probe.dest_id, None))
            elif now >= probe.next_send:  # UDP retransmission, T1 doubling up to T2
                self._send(probe)
                probe.interval = min(2 * probe.interval, self.settings.t2_ms / 1000)
                probe.next_send = now + probe.interval

    def reply(self, data: bytes, now: float) -> None:
        try:
            message = scan(data)
        except SipParseError:
            return
        probe = self.pending.get(message.branch) if not message.is_request else None
        if probe is None or message.status_code < 200:
            return
        del self.pending[message.branch]
        self.writer.set_rtt(probe.slot, (now - probe.sent_at) * 1000)
        self.apply(self.health.probe_result(probe.dest_id, message.status_code))

    def report(self, data: bytes) -> None:
        """A worker's "DEST_ID REASON" traffic failure."""
        dest_id, _, reason = data.decode("utf-8", "replace").partition(" ")
        if dest_id.isdigit():
            self.apply(self.health.traffic_failure(int(dest_id), reason or "traffic failure"))

    async def control(self, request: dict[str, Any], now: float) -> dict[str, Any]:
        """One request from the API process (fastds/procs/control.py) -> its reply.
        Requests that change something are applied one at a time, in the order received."""
        op = request.get("op")
        if op == "ping":
            return {"ok": True, "generation": self.writer.generation, "pid": os.getpid()}
        if op == "status_report":
            return {"ok": True, "groups": self.status_report.as_json()}
        if op == "set_state":
            async with self._serial:
                return self._set_state(request)
        if op == "reload":
            try:
                generation, problems = await self.reload(now, inherit=bool(request.get("inherit", True)))
            except (FastdsError, OSError) as exc:
                log.error("reload failed, keeping generation %d: %s", self.writer.generation, exc)
                return {"ok": False, "error": str(exc)}
            return {"ok": True, "generation": generation, "problems": problems[:50]}
        return {"ok": False, "error": f"unknown op {op!r}"}

    def _set_state(self, request: dict[str, Any]) -> dict[str, Any]:
        dest_id, code = request.get("destination"), request.get("state")
        if code not in DestinationState._value2member_map_:
            return {"ok": False, "error": "bad state"}
        state = DestinationState(code)
        if not isinstance(dest_id, int) or dest_id not in self.health.tracked:
            return {"ok": False, "error": "destination not found"}
        if request.get("mi") and state == DestinationState.PROBING:
            change = self.health.mark_probing(dest_id, "MI command")
        else:
            change = self.health.set_state(dest_id, state, "API" if not request.get("mi") else "MI command")
        self.apply(change)
        return {"ok": True, "state": self.health.tracked[dest_id].state, "changed": change is not None}

    async def write_back(self) -> bool:
        """Write the states the store does not hold yet (batched, every FLUSH_S and at stop)."""
        async with self._serial:
            return await self._write_back()

    async def _write_back(self) -> bool:
        """False when the store refused: the states stay unstored and are tried again."""
        for dest_id, state in self.health.unstored():
            try:
                await self.store.set_state(dest_id, state)
            except DestinationNotFound:
                pass  # removed from the store meanwhile; the next reload drops it
            except StoreError as exc:
                if not self._store_failing:
                    log.warning("cannot write states to the store, will retry: %s", exc)
                self._store_failing = True
                return False
            self.health.stored(dest_id, state)
        if self._store_failing:
            log.info("store writable again")
        self._store_failing = False
        return True


async def serve(settings: Settings, region, secret: bytes, advertised: str, report_address: str,
                control_address: str) -> int:
    loop = asyncio.get_running_loop()
    store = open_store(settings.db_url)
    writer = ShmWriter(region)
    prober = Prober(settings, writer, store, secret, advertised)
    try:
        await store.check_schema()
        await prober.reload(loop.time(), inherit=False)
        prober.socket = bind_udp(settings.sip_listen[0], 0, reuse_port=False, rcvbuf_bytes=1 << 20)
        reports = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        reports.bind(report_address)
        reports.setblocking(False)
        control = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        control.bind(control_address)
        control.setblocking(False)
    except (FastdsError, OSError) as exc:
        log.error("prober cannot start: %s", exc)
        await store.close()
        return EXIT_BOOT_FAILURE

    def drain(sock, handler):
        while True:
            try:
                data = sock.recv(65535)
            except OSError:  # drained (BlockingIOError) or failing: the next readable event tries again
                return
            try:
                handler(data)
            except Exception as exc:  # noqa: BLE001 - one bad datagram: one line, never a traceback
                log.error("datagram dropped, handling failed: %s: %s", type(exc).__name__, exc)

    loop.add_reader(prober.socket.fileno(), drain, prober.socket, lambda data: prober.reply(data, loop.time()))
    loop.add_reader(reports.fileno(), drain, reports, prober.report)

    async def answer(data: bytes, sender: str) -> None:
        try:
            request = orjson.loads(data)
        except orjson.JSONDecodeError:
            return
        if not isinstance(request, dict):
            return
        reply = await prober.control(request, loop.time())
        try:
            control.sendto(orjson.dumps({"id": request.get("id"), **reply}), sender)
        except OSError as exc:
            log.warning("cannot answer the API's %r request: %s", request.get("op"), exc)

    def on_control() -> None:
        while True:
            try:
                data, sender = control.recvfrom(MAX_DATAGRAM)
            except OSError:
                return
            loop.create_task(answer(data, sender))

    loop.add_reader(control.fileno(), on_control)
    stop = asyncio.Event()
    reload_requested = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    loop.add_signal_handler(signal.SIGHUP, reload_requested.set)

    async def write_back_loop() -> None:
        while True:
            await asyncio.sleep(FLUSH_S)
            await prober.write_back()

    writer_task = loop.create_task(write_back_loop())
    while not stop.is_set():
        now = loop.time()
        if reload_requested.is_set():
            reload_requested.clear()
            loop.create_task(prober.control({"op": "reload", "inherit": True}, now))
        prober.send_probes(now)
        prober.expire(now)
        try:
            await asyncio.wait_for(stop.wait(), TICK_S)
        except asyncio.TimeoutError:
            pass
    writer_task.cancel()
    await prober.write_back()
    await store.close()
    return 0


def main(settings: Settings, region, secret: bytes, advertised: str, report_address: str,
         control_address: str) -> int:
    return uvloop.run(serve(settings, region, secret, advertised, report_address, control_address))
