"""The prober process: loads destinations, probes them, owns their state (docs/architecture.md §1).

Owns the IO around its sans-IO core (fastds/dispatch/probing.py and health.py): the store
(sets, dialplan rules and the address table loaded and published; SIGHUP reloads; states
written back every FLUSH_S), host-name resolution, the probe socket and connections, the
workers' failure reports and the API's requests, the core's actions applied to shared memory
(the only writer of topology and states), a log line and an E_DISPATCHER_STATUS event per
state change it makes (fastds/procs/events.py), and with FASTDS_CLUSTER_URL the node's part
in the cluster (fastds/procs/cluster_link.py).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import time
from collections.abc import Callable, Iterable
from typing import Any

import uvloop
from redis.exceptions import RedisError

from fastds.config import Settings, node_id
from fastds.dispatch.cluster import ClusterState, StateRecord, probe_owner
from fastds.dispatch.dns import DnsTable, Question, questions_of, targets_of
from fastds.dispatch.events import DEFAULT_EXPIRE_S, Subscriptions, UnknownEvent, status_params
from fastds.dispatch.health import FailureDismissed, Health, ProbeFailed, StateChange
from fastds.dispatch.histogram import PROBE_RTT_BOUNDS_S, Histogram
from fastds.dispatch.probing import ProbeConfig, ProbeRtt, ProbeSend, Probing
from fastds.dispatch.routes import Router
from fastds.dispatch.rules import SelectionRule
from fastds.dispatch.sets import build_sets, tls_name_at
from fastds.dispatch.state import DestinationState
from fastds.dispatch.status_report import StatusReport
from fastds.dispatch.trust import address_rules
from fastds.errors import FastdsError, MissingTable, RowNotFound, StoreError, TableVersionMismatch
from fastds.net.bind import bind_udp
from fastds.net.egress import EgressPolicy
from fastds.net.pump import sent_by
from fastds.procs import EXIT_BOOT_FAILURE, reports
from fastds.procs.cluster_link import ClusterLink
from fastds.procs.control import ControlServer
from fastds.procs.events import EventSender
from fastds.procs.resolver import LookupFailed, Resolver
from fastds.procs.streams import stream_endpoint
from fastds.shm.layout import ShmWriter, slots
from fastds.sip import BranchFactory
from fastds.store import Store, open_store

log = logging.getLogger("fastds.prober")
FLUSH_S = 2.0


class Prober:
    def __init__(self, settings: Settings, writer: ShmWriter, store: Store, secret: bytes, sent_by: bytes,
                 send: Callable[[bytes, tuple[str, int]], None]):
        """sent_by: host:port of the probe socket; send(data, addr): a datagram out of it."""
        self.settings = settings
        self.writer = writer
        self.store = store
        self.send = send
        health = Health(settings.probing_threshold, settings.probing_mode, settings.ping_reply_codes,
                        settings.ping_interval_s, confirm=settings.confirm_failures)
        config = ProbeConfig(method=settings.ping_method.encode(), from_uri=settings.ping_from.encode(),
                             t1=settings.t1_ms / 1000, t2=settings.t2_ms / 1000, timeout=settings.fr_timeout_ms / 1000,
                             sent_by=sent_by, call_id_prefix=b"probe-%d" % os.getpid())
        egress = EgressPolicy(settings.egress_allow).allows
        self.probing = Probing(health, config, BranchFactory(secret, "probe"), egress)
        self.subscriptions = Subscriptions()  # MI event_subscribe's
        self.events = EventSender(settings.event_webhooks, egress)
        self.health = health
        self.cluster: ClusterState | None = None  # set by join_cluster() when FASTDS_CLUSTER_URL is
        self.link: ClusterLink | None = None
        self._cluster_states: dict[int, int] = {}  # the cluster's states when this node joined
        self._store_failing = False
        self.status_report = StatusReport()
        # destinations given by name (workers do no DNS): their answers, re-asked as they expire
        self.dns = DnsTable(settings.dns_ttl_min_s, settings.dns_ttl_max_s)
        self.dns_questions: dict[int, Question] = {}  # row id -> its question, as the last load found them
        self.resolver = Resolver(settings.dns_servers)
        self.probe_rtts: dict[int, Histogram] = {}  # destination id -> its answered probes' round trips
        # operators' requests, reloads and write-backs, one at a time in the order received
        self._serial = asyncio.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._armed_at: float | None = None

    # -- the one timer ----------------------------------------------------------------------

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Arm the timer from now on (before: unit tests drive the prober without a loop)."""
        self._loop = loop
        self._rearm()

    def _rearm(self) -> None:
        """Keep one call_at armed for the core's next deadline, moved only when it comes earlier."""
        deadline = self.probing.next_deadline()
        if self._loop is None or deadline is None or (self._armed_at is not None and self._armed_at <= deadline):
            return
        if self._timer is not None:
            self._timer.cancel()
        self._armed_at = deadline
        self._timer = self._loop.call_at(deadline, self._fire)

    def _fire(self) -> None:
        armed_at, self._armed_at, self._timer = self._armed_at, None, None
        self.apply(self.probing.timer(max(armed_at, self._loop.time())))  # what is due, even on an early wake-up

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._loop = None

    # -- actions and datagrams ---------------------------------------------------------------

    def apply(self, actions: list) -> None:
        for action in actions:
            if type(action) is ProbeSend:
                self.send(action.data, action.addr)
            elif type(action) is ProbeRtt:
                self.writer.set_rtt(action.slot, action.rtt_ms)
                rtts = self.probe_rtts.get(action.dest_id)
                if rtts is None:
                    rtts = self.probe_rtts[action.dest_id] = Histogram(PROBE_RTT_BOUNDS_S)
                rtts.observe(action.rtt_ms / 1000)
            elif type(action) is FailureDismissed or type(action) is ProbeFailed:
                log.info("%s", action.log_line())
            else:  # a StateChange this node made
                self.writer.set_state(action.slot, action.new)
                self._made_here(action)
        self._rearm()

    def _made_here(self, change: StateChange) -> None:
        """A change of this node's (a probe, a failure, an operator, a reload): logged,
        reported, announced (E_DISPATCHER_STATUS: by this node only, never by the others
        that apply it) and sent to the cluster."""
        self._report(change)
        params = status_params(change)
        if params is not None:
            now = time.monotonic()
            self.events.send(params, self.subscriptions.targets(now), now)
        if self.cluster is not None:
            self.link.publish(self.cluster.local(change.destination.id, int(change.new), int(time.time() * 1000),
                                                 change.reason))

    # -- the cluster (fastds/procs/cluster_link.py) ----------------------------------------

    async def join_cluster(self, node_id: str, about: dict[str, Any]) -> None:
        """Before the first reload: claim the node id, take the cluster's current states."""
        self.cluster = ClusterState(node_id)
        self.health.probes_here = self.cluster.probes
        self.link = ClusterLink(self.settings.cluster_url, self.settings.cluster_name,
                                self.settings.cluster_heartbeat_ms / 1000, self.cluster, about,
                                self.on_cluster_record, self.on_cluster_reload, self._rearm_now,
                                lambda: self.writer.draining_since() > 0)
        self._cluster_states = await self.link.join()
        self._publish_cluster()

    def _publish_cluster(self) -> None:
        self.writer.set_cluster("degraded" if self.cluster.degraded else "ok", len(self.cluster.live))

    def on_cluster_record(self, record: StateRecord) -> None:
        """Another node's change: applied here, logged naming it, written back by it."""
        change = self.health.apply_remote(record.dest_id, record.state, f"{record.reason}; from node {record.origin}")
        if change is not None:
            self.writer.set_state(change.slot, change.new)
            self._report(change)
        self._rearm()

    async def on_cluster_reload(self, inherit: bool) -> None:
        try:
            await self.reload(self._loop.time() if self._loop else 0.0, inherit)
        except (FastdsError, OSError) as exc:
            log.error("reload asked by the cluster failed, keeping generation %d: %s", self.writer.generation, exc)

    def _rearm_now(self) -> None:
        """The live nodes changed (or the cluster degraded): who probes what moved."""
        self._publish_cluster()
        if self._timer is not None:
            self._timer.cancel()
        self._timer, self._armed_at = None, None
        self._rearm()

    def cluster_status(self) -> dict[str, Any]:
        if self.cluster is None:
            return {"enabled": False}
        probes: dict[str, list[int]] = {}
        for dest_id in self.health.tracked:
            owner = self.cluster.node_id if self.cluster.degraded else probe_owner(dest_id, self.cluster.live)
            probes.setdefault(owner, []).append(dest_id)
        return {"enabled": True, "name": self.settings.cluster_name, **self.link.status(), "probes": probes}

    def _report(self, change: StateChange) -> None:
        """Every state change: one log line and one status/report event."""
        log.info("%s", change.log_line())
        self.status_report.state_changed(change, time.time())

    def on_reply(self, data: bytes) -> None:
        self.apply(self.probing.receive(data, self._loop.time()))

    def on_report(self, data: bytes) -> None:
        report = reports.decode(data)
        if report is not None:
            self.apply(self.probing.traffic_failure(*report, now=self._loop.time()))

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
        if not self.health.tracked:  # the cluster's states, as they were when this node joined
            runtime.update(self._cluster_states)
        try:
            await self.store.check_schema()
            schema_problems = []
        except TableVersionMismatch as exc:  # the rows still load; say what the operator must fix
            schema_problems = [str(exc)]
        rows = await self.store.load_destinations()
        dialplan = await self.store.load_dialplan(self.settings.dialplan_id)
        try:
            addresses, address_problems = address_rules(await self.store.load_addresses())
        except MissingTable as exc:
            addresses, address_problems = [], [f"{exc}; trusted are FASTDS_TRUSTED_SOURCES and the destinations"]
        sets, skipped = build_sets(rows, frozenset(listener.transport for listener in self.settings.sip_listen))
        questions = questions_of(sets)
        await self.resolve(self.dns.due(questions.values(), time.monotonic()))
        self.dns.forget_except(questions.values())
        self.dns_questions = questions
        sets, unresolved, resolved_from = self.dns.expand(sets, questions)
        skipped += unresolved
        default = SelectionRule.parse(self.settings.default_set, self.settings.default_alg, self.settings.default_flags)
        problems = schema_problems + [str(row) for row in skipped] + Router(dialplan, default).problems + address_problems
        for problem in problems:
            log.warning("%s", problem)
        states, changes = self.health.load(slots(sets), now, inherit, runtime)
        generation = self.writer.publish(sets, states, dialplan, [rule.as_row() for rule in addresses],
                                         [row.as_json() for row in skipped], resolved_from)
        for change in changes:
            self._made_here(change)
        self.probe_rtts = {dest_id: rtts for dest_id, rtts in self.probe_rtts.items() if dest_id in states}
        self._rearm()  # every destination is due for a probe now
        log.info("published generation %d: %d sets, %d destinations, %d dialplan rules, %d address rules", generation,
                 len(sets), len(states), len(dialplan), len(addresses))
        return generation, problems, len(states), len(skipped)

    async def resolve(self, questions: Iterable[Question]) -> bool:
        """Look the questions up (together); True when a name now makes other destinations.
        A name that fails keeps its last targets; each change is logged once."""
        questions = list(questions)
        results = await asyncio.gather(*(self.resolver.lookup(q) for q in questions), return_exceptions=True)
        changed = False
        now = time.monotonic()
        for question, result in zip(questions, results):
            if isinstance(result, LookupFailed):
                if self.dns.failed(question, str(result), now):
                    changed = True
                    kept = self.dns.answers[question].targets
                    log.warning("DNS: %s does not resolve (%s)%s", question, result,
                                f"; keeping its last {len(kept)} address(es)" if kept else "")
            elif isinstance(result, BaseException):
                raise result
            elif self.dns.answered(question, result[0], result[1], now):
                changed = True
                log.info("DNS: %s resolves to %s (TTL %g s)", question,
                         ", ".join(f"{t.host}:{t.port}" for t in self.dns.answers[question].targets), result[1])
        return changed

    async def refresh_dns(self, now: float) -> None:
        """The names whose answers expired, asked again; a reload (states kept) when one changed."""
        due = self.dns.due(self.dns_questions.values(), time.monotonic())
        if due and await self.resolve(due):
            await self.reload(now, inherit=True)

    async def control(self, request: dict[str, Any], now: float) -> dict[str, Any]:
        """One request from the API process (fastds/procs/control.py) -> its reply.
        Requests that change something are applied one at a time, in the order received."""
        op = request.get("op")
        if op == "ping":
            cluster = "standalone" if self.cluster is None else "degraded" if self.cluster.degraded else "ok"
            return {"ok": True, "generation": self.writer.generation, "pid": os.getpid(), "cluster": cluster,
                    "events": dict(self.events.counters)}
        if op == "metrics":  # what /metrics takes from the prober: event deliveries, probe round trips
            return {"ok": True, "pid": os.getpid(), "events": dict(self.events.counters),
                    "probe_rtt": {str(dest_id): rtts.as_json() for dest_id, rtts in self.probe_rtts.items()}}
        if op in ("event_subscribe", "events_list", "subscribers_list"):
            return self._events_request(op, request)
        if op == "cluster":
            return {"ok": True, **self.cluster_status()}
        if op == "status_report":
            return {"ok": True, "groups": self.status_report.as_json()}
        if op == "unblock":  # MI pike_rm: every worker releases the IP within a second
            self.writer.request_unblock(str(request.get("ip", "")))
            return {"ok": True}
        if op == "set_state":
            async with self._serial:
                return self._set_state(request)
        if op == "reload":
            inherit = bool(request.get("inherit", True))
            try:
                generation, problems = await self.reload(now, inherit=inherit)
            except (FastdsError, OSError) as exc:
                log.error("reload failed, keeping generation %d: %s", self.writer.generation, exc)
                return {"ok": False, "error": str(exc)}
            broadcast = bool(request.get("cluster")) and self.link is not None
            if broadcast:
                try:
                    await self.link.broadcast_reload(inherit)
                except (RedisError, OSError) as exc:
                    return {"ok": False, "error": f"reloaded here, but not sent to the cluster: {exc}"}
            return {"ok": True, "generation": generation, "problems": problems[:50], "cluster": broadcast,
                    "skipped": self.writer.skipped(generation)[:50]}
        return {"ok": False, "error": f"unknown op {op!r}"}

    def _events_request(self, op: str, request: dict[str, Any]) -> dict[str, Any]:
        """MI's event commands (fastds/dispatch/events.py holds the subscriptions)."""
        now = time.monotonic()
        try:
            if op == "event_subscribe":
                self.subscriptions.subscribe(str(request.get("event")), str(request.get("socket")),
                                             int(request.get("expire", DEFAULT_EXPIRE_S)), now)
                return {"ok": True}
            if op == "events_list":
                return {"ok": True, "result": self.subscriptions.events_list()}
            return {"ok": True, "result": self.subscriptions.subscribers_list(now, request.get("event"),
                                                                            request.get("socket"))}
        except ValueError:  # BadSubscription, or an expiry that is not a number
            return {"ok": False, "code": 400, "error": "Bad parameter value"}
        except UnknownEvent:
            return {"ok": False, "code": 404, "error": "Event not published"}
        except LookupError:
            return {"ok": False, "code": 404, "error": "Subscriber does not exist"}

    def _set_state(self, request: dict[str, Any]) -> dict[str, Any]:
        dest_id, code = request.get("destination"), request.get("state")
        if code not in DestinationState._value2member_map_:
            return {"ok": False, "error": "bad state"}
        state = DestinationState(code)
        if not isinstance(dest_id, int) or dest_id not in self.health.tracked:
            return {"ok": False, "error": "destination not found"}
        changes = []
        for target in [dest_id, *targets_of(dest_id, self.health.tracked)]:  # a row named by DNS: all its targets
            if request.get("mi") and state == DestinationState.PROBING:
                change = self.health.mark_probing(target, "MI command")
            else:
                change = self.health.set_state(target, state, "API" if not request.get("mi") else "MI command")
            changes += [change] if change is not None else []
        self.apply(changes)
        return {"ok": True, "state": self.health.tracked[dest_id].state, "changed": bool(changes)}

    async def write_back(self) -> bool:
        """Write the states the store does not hold yet (batched, every FLUSH_S and at stop)."""
        async with self._serial:
            return await self._write_back()

    async def _write_back(self) -> bool:
        """False when the store refused: the states stay unstored and are tried again."""
        for dest_id, state in self.health.unstored():
            if dest_id < 0:  # a DNS target's: runtime only, its row holds the stored state
                self.health.stored(dest_id, state)
                continue
            try:
                await self.store.set_state(dest_id, state)
            except RowNotFound:
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
    try:
        probe_socket = bind_udp(settings.udp_listen[0], 0, reuse_port=False, rcvbuf_bytes=1 << 20)
        report_socket = reports.bind_reports(report_address)

        streams = stream_endpoint(
            settings, loop, 0, None,
            lambda host, port: tls_name_at((tracked.destination for tracked in prober.health.tracked.values()),
                                           host, port))

        def send(data: bytes, addr: tuple) -> None:
            if len(addr) == 3:  # a dial address: a TCP or TLS destination
                streams.send(data, addr)
                streams.flush()
                return
            try:
                probe_socket.sendto(data, addr)
            except OSError:
                pass  # a refused send shows up as a timeout

        prober = Prober(settings, ShmWriter(region), store, secret, sent_by(probe_socket, advertised), send)
        streams.deliver = lambda messages, _peer, _now: [prober.on_reply(data) for data in messages]
        streams.broken = lambda addr, _why: prober.apply(prober.probing.connection_failed(addr))
        control = ControlServer(control_address, lambda request: prober.control(request, loop.time()))
        await store.check_schema()
        if settings.cluster_url:
            await prober.join_cluster(node_id(settings), {"sip": "%s:%d" % settings.udp_listen,
                                                          "api": "%s:%d" % settings.api_listen,
                                                          "pid": os.getppid()})  # the master's
        await prober.reload(loop.time(), inherit=False)
    except (FastdsError, OSError) as exc:
        log.error("prober cannot start: %s", exc)
        await store.close()
        return EXIT_BOOT_FAILURE

    def drain(sock: socket.socket, handler: Callable[[bytes], None]) -> None:
        while True:
            try:
                data = sock.recv(65535)
            except OSError:  # drained (BlockingIOError) or failing: the next readable event tries again
                return
            try:
                handler(data)
            except Exception as exc:  # noqa: BLE001 - one bad datagram: one line, never a traceback
                log.error("datagram dropped, handling failed: %s: %s", type(exc).__name__, exc)

    loop.add_reader(probe_socket.fileno(), drain, probe_socket, prober.on_reply)
    loop.add_reader(report_socket.fileno(), drain, report_socket, prober.on_report)
    control.start(loop)
    prober.start(loop)
    prober.events.start(loop)
    stop = asyncio.Event()
    reloads: set[asyncio.Task] = set()

    def reload_on_sighup() -> None:
        try:
            streams.reload_certificate(settings.tls_cert_file, settings.tls_key_file)
        except ValueError as exc:
            log.error("prober: TLS certificate not reloaded, the old one stays: %s", exc)
        task = loop.create_task(prober.control({"op": "reload", "inherit": True}, loop.time()))
        reloads.add(task)
        task.add_done_callback(reloads.discard)

    loop.add_signal_handler(signal.SIGTERM, stop.set)  # SIGINT (Ctrl-C) is the master's: it drains first
    loop.add_signal_handler(signal.SIGHUP, reload_on_sighup)

    async def write_back_loop() -> None:
        while True:
            await asyncio.sleep(FLUSH_S)
            await prober.write_back()

    async def sweep_loop() -> None:  # the probes' idle connections, the names whose TTL ran out
        while True:
            await asyncio.sleep(1.0)
            streams.sweep()
            try:
                await prober.refresh_dns(loop.time())
            except (FastdsError, OSError) as exc:
                log.error("DNS refresh: reload failed, keeping generation %d: %s", prober.writer.generation, exc)

    writer_task = loop.create_task(write_back_loop())
    sweeper = loop.create_task(sweep_loop())
    if prober.link is not None:
        prober.link.start(loop)
    await stop.wait()
    writer_task.cancel()
    sweeper.cancel()
    streams.close()
    prober.stop()
    if prober.link is not None:
        await prober.link.stop()
    await prober.write_back()
    await prober.events.close()
    await store.close()
    return 0


def main(settings: Settings, region, secret: bytes, advertised: str, report_address: str,
         control_address: str) -> int:
    return uvloop.run(serve(settings, region, secret, advertised, report_address, control_address))
