"""The master process of `fastds run`: supervise only (docs/architecture.md §1).

Owns refusing a SIP address another process holds, the shared memory (mapped before
forking), spawning and respawning the prober, the workers and the API (their sockets bound
once and held, so a respawned worker inherits them), halting when a child fails at boot,
the signals (SIGHUP: reload; SIGTERM / SIGINT: drain, then stop) and sd_notify (READY,
WATCHDOG, STATUS, STOPPING).
"""

from __future__ import annotations

import ctypes
import dataclasses
import logging
import os
import select
import signal
import socket
import time

from setproctitle import setproctitle

from fastds.compiled import stale_message, stale_modules
from fastds.config import Settings, systemd_environment
from fastds.errors import FastdsError
from fastds.net.bind import ensure_free
from fastds.procs import EXIT_BOOT_FAILURE, api, prober, worker
from fastds.procs.control import control_address
from fastds.procs.notify import Notifier
from fastds.procs.reports import report_address
from fastds.procs.secret import load_or_create_secret
from fastds.shm.layout import ShmView, create

log = logging.getLogger("fastds.master")
EXIT_HALTED = 1
BOOT_TIMEOUT_S = 60.0
FIRST_BACKOFF_S = 0.1
MAX_BACKOFF_S = 10.0
HEALTHY_AFTER_S = 10.0  # a child that lived this long starts its back-off afresh
STOP_GRACE_S = 5.0
DRAIN_POLL_S = 0.1
PR_SET_PDEATHSIG = 1  # linux/prctl.h


@dataclasses.dataclass
class Child:
    kind: str  # "prober", "worker" or "api"
    index: int
    pid: int = 0
    started: float = 0.0
    backoff: float = 0.0
    respawn_at: float | None = None

    @property
    def name(self) -> str:
        return f"worker {self.index}" if self.kind == "worker" else self.kind


def advertised_host(settings: Settings) -> str:
    if settings.sip_advertise:
        return settings.sip_advertise
    host = settings.udp_listen[0]
    if host not in ("0.0.0.0", "::"):
        return host
    guess = socket.gethostbyname(socket.gethostname())
    log.warning("FASTDS_SIP_LISTEN is a wildcard: advertising %s (from the host name); set FASTDS_SIP_ADVERTISE", guess)
    return guess


def stop_with_parent(master_pid: int) -> None:
    """In a child: a SIGTERM when the master dies, however it dies (a SIGKILL leaves it no
    time to stop its children): the child then stops as it would when told to
    (PR_SET_PDEATHSIG); one whose master is already gone stops at once."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
        log.warning("cannot ask to be stopped with the master: %s", os.strerror(ctypes.get_errno()))
    if os.getppid() != master_pid:  # it died before the request took hold
        os.kill(os.getpid(), signal.SIGTERM)


def describe_status(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"killed by {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exit status {os.waitstatus_to_exitcode(status)}"


class Master:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.worker_count = settings.workers or os.cpu_count() or 1
        notify_socket, watchdog_usec = systemd_environment()
        self.notifier = Notifier(notify_socket)
        self.watchdog_s = watchdog_usec / 2e6 if watchdog_usec else 0.0
        self.children: dict[int, Child] = {}  # by pid
        self.prober = Child("prober", 0)
        self.worker_sockets: list[worker.WorkerSockets] = []  # bound once, by index; held across respawns
        self.workers = [Child("worker", i) for i in range(self.worker_count)]
        self.api = Child("api", 0)
        self.stopping = False
        self.halt_reason: str | None = None
        self._status = ""

    # -- children ---------------------------------------------------------------------

    def _spawn(self, child: Child) -> None:
        pid = os.fork()
        if pid == 0:  # the child: its own signal handling, nothing of the master's
            code = 1
            try:
                signal.set_wakeup_fd(-1)
                for signum in (signal.SIGCHLD, signal.SIGHUP, signal.SIGTERM):
                    signal.signal(signum, signal.SIG_DFL)
                signal.signal(signal.SIGUSR1, signal.SIG_IGN)  # "drain now" to a worker, harmless before it listens
                signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the master drains
                os.close(self._wakeup_r)
                os.close(self._ready_r)
                for index, sockets in enumerate(self.worker_sockets):  # a worker keeps its own only
                    if child.kind != "worker" or index != child.index:
                        sockets.close()
                stop_with_parent(self.pid)
                setproctitle(f"fastds: {child.name}")  # ps tells the processes apart
                if child.kind == "prober":
                    code = prober.main(self.settings, self.region, self.secret, self.advertised, self.report_address,
                                       self.control_address)
                elif child.kind == "api":
                    code = api.main(self.settings, self.region, self._ready_w, self.control_address)
                else:
                    code = worker.main(self.settings, self.region, child.index, self.secret, self.advertised,
                                       self._ready_w, self.report_address, self.worker_sockets[child.index])
            except BaseException:  # noqa: BLE001 - a child must never return into the master's code
                log.exception("%s crashed", child.name)
            finally:
                logging.shutdown()
                os._exit(code)
        child.pid = pid
        child.started = time.monotonic()
        child.respawn_at = None
        self.children[pid] = child

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            child = self.children.pop(pid, None)
            if child is None:
                continue
            child.pid = 0
            if self.stopping:
                log.info("%s exited (%s)", child.name, describe_status(status))
                continue
            if os.WIFEXITED(status) and os.WEXITSTATUS(status) == EXIT_BOOT_FAILURE:
                self.halt_reason = f"{child.name} failed at boot ({describe_status(status)}); see its error above"
                continue
            lived = time.monotonic() - child.started
            child.backoff = FIRST_BACKOFF_S if lived >= HEALTHY_AFTER_S or not child.backoff else min(
                2 * child.backoff, MAX_BACKOFF_S)
            child.respawn_at = time.monotonic() + child.backoff
            if child.kind == "worker" and child.backoff > FIRST_BACKOFF_S:
                self.worker_sockets[child.index].leave_group()  # its peers go to the others meanwhile
            log.warning("%s (pid %d) died after %.1fs: %s; respawning in %.1fs", child.name, pid, lived,
                        describe_status(status), child.backoff)

    def _respawn_due(self) -> None:
        now = time.monotonic()
        for child in self.all_children:
            if child.pid == 0 and child.respawn_at is not None and child.respawn_at <= now:
                if child.kind == "worker":
                    try:
                        self.worker_sockets[child.index].rejoin_group(self.settings)
                    except OSError as exc:
                        self.halt_reason = f"{child.name} cannot be respawned: {exc}"
                        return
                self._spawn(child)
                log.info("%s respawned as pid %d", child.name, child.pid)

    # -- the loop -------------------------------------------------------------------------

    def _wait(self, timeout: float) -> tuple[list[int], int]:
        """Block up to `timeout` for signals or worker ready bytes; returns both."""
        try:
            readable, _, _ = select.select([self._wakeup_r, self._ready_r], [], [], max(timeout, 0))
        except InterruptedError:
            readable = []
        signums, ready = [], 0
        if self._wakeup_r in readable:
            signums = list(os.read(self._wakeup_r, 512))
        if self._ready_r in readable:
            ready = len(os.read(self._ready_r, 512))
        if signal.SIGCHLD in signums or not readable:
            self._reap()
        return signums, ready

    @property
    def all_children(self) -> list[Child]:
        return [self.prober, *self.workers, self.api]

    def _boot(self) -> int | None:
        """Prober first (it publishes generation 1), then the workers and the API; None
        when booted."""
        view = ShmView(self.region)
        self._spawn(self.prober)
        deadline = time.monotonic() + BOOT_TIMEOUT_S
        while view.generation == 0:
            signums, _ = self._wait(0.05)
            if self.halt_reason or self.prober.pid == 0 or time.monotonic() > deadline:
                return self._halt(self.halt_reason or "the prober did not publish the destinations")
            if signal.SIGTERM in signums or signal.SIGINT in signums:
                return self._stop()
        try:
            self.worker_sockets = [worker.WorkerSockets.bind(self.settings, self.pid, index, self.worker_count)
                                   for index in range(self.worker_count)]
        except (OSError, FastdsError) as exc:
            return self._halt(f"the workers' sockets: {exc}")
        for child in [*self.workers, self.api]:
            self._spawn(child)
        bound = 0
        while bound < self.worker_count + 1:
            signums, ready = self._wait(0.05)
            bound += ready
            if (self.halt_reason or any(child.pid == 0 for child in [*self.workers, self.api])
                    or time.monotonic() > deadline):
                return self._halt(self.halt_reason or "a worker or the API did not bind its sockets")
            if signal.SIGTERM in signums or signal.SIGINT in signums:
                return self._stop()
        return None

    def _update_status(self) -> None:
        view = ShmView(self.region)
        alive = sum(1 for child in self.workers if child.pid)
        status = (f"{alive}/{self.worker_count} workers, prober {'up' if self.prober.pid else 'down'}, "
                  f"API {'up' if self.api.pid else 'down'}, "
                  f"generation {view.generation}, {view.count(view.generation & 1)} destinations")
        if status != self._status:
            self._status = status
            self.notifier.notify(f"STATUS={status}")

    def run(self) -> int:
        settings = self.settings
        setproctitle("fastds: master")
        stale = stale_modules()
        if stale:
            log.error("halting: %s", stale_message(stale))
            return EXIT_HALTED
        try:
            self.secret = load_or_create_secret(settings.secret, settings.state_dir)
        except FastdsError as exc:
            log.error("%s", exc)
            return EXIT_HALTED
        try:
            for listener in settings.sip_listen:
                ensure_free(listener.transport, listener.host, listener.port)
        except OSError as exc:
            log.error("halting: %s (another fastds, or another program, holds it)", exc.strerror)
            return EXIT_HALTED
        self.advertised = advertised_host(settings)
        self.region = create(settings.shm_destinations, self.worker_count, settings.shm_routes_bytes)
        self.pid = os.getpid()
        self.report_address = report_address(self.pid)
        self.control_address = control_address(self.pid)
        self._wakeup_r, wakeup_w = os.pipe()
        self._ready_r, self._ready_w = os.pipe()
        for fd in (self._wakeup_r, wakeup_w, self._ready_r):
            os.set_blocking(fd, False)
        signal.set_wakeup_fd(wakeup_w)
        for signum in (signal.SIGCHLD, signal.SIGHUP, signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: None)  # only enqueue: the wakeup fd carries the number
        code = self._boot()
        if code is not None:
            return code
        self._update_status()
        self.notifier.notify("READY=1", f"STATUS={self._status}")
        log.info("fastds ready: %d workers on %s:%d, prober up, API on %s:%d", self.worker_count,
                 *settings.udp_listen, *settings.api_listen)
        next_watchdog = 0.0
        while True:
            now = time.monotonic()
            pending = [child.respawn_at for child in self.all_children if child.respawn_at is not None]
            timeout = min([1.0] + [at - now for at in pending] + ([next_watchdog - now] if self.watchdog_s else []))
            signums, _ = self._wait(timeout)
            if self.halt_reason:
                return self._halt(self.halt_reason)
            if signal.SIGTERM in signums or signal.SIGINT in signums:
                return self._stop()
            if signal.SIGHUP in signums and self.prober.pid:
                log.info("SIGHUP: reloading destinations and routes" + (" and the TLS certificate" if
                                                                        settings.tls_listen else ""))
                os.kill(self.prober.pid, signal.SIGHUP)
                if settings.tls_listen:  # each worker reloads its TLS listener's certificate
                    for worker in self.workers:
                        if worker.pid:
                            os.kill(worker.pid, signal.SIGHUP)
            self._respawn_due()
            self._update_status()
            if self.watchdog_s and time.monotonic() >= next_watchdog:
                if all(child.pid for child in self.all_children):
                    self.notifier.notify("WATCHDOG=1")
                next_watchdog = time.monotonic() + self.watchdog_s

    # -- the end -----------------------------------------------------------------------------

    def _terminate(self, children: list[Child], grace_s: float) -> None:
        for child in children:
            if child.pid:
                os.kill(child.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        while any(child.pid for child in children) and time.monotonic() < deadline:
            self._wait(0.05)
        for child in children:
            if child.pid:
                log.warning("%s did not stop in time; killing it", child.name)
                os.kill(child.pid, signal.SIGKILL)
        while any(child.pid for child in children):
            self._wait(0.05)

    def _stop(self) -> int:
        self.stopping = True
        self.notifier.notify("STOPPING=1")
        self._drain()
        self._terminate([self.api], STOP_GRACE_S)
        self._terminate(self.workers, worker.FINISH_S + STOP_GRACE_S)
        self._terminate([self.prober], STOP_GRACE_S)
        log.info("stopped")
        return 0

    def _drain(self) -> None:
        """Every child keeps running (one that dies is not respawned: the node is stopping)
        while the workers refuse new INVITEs (503, Retry-After: the upstream fails over to
        another node) and route the rest, and /health says draining, until no in-dialog request
        came for FASTDS_DRAIN_IDLE_S with no transaction waiting, or FASTDS_DRAIN_TIMEOUT_S, or
        every worker has stopped. Read from the workers' counters rows (published every second)."""
        view, settings = ShmView(self.region), self.settings
        view.set_draining(time.time())
        for child in self.workers:  # told now, not at their next second's look at the mark
            if child.pid:
                os.kill(child.pid, signal.SIGUSR1)
        self.notifier.notify("STATUS=draining")
        log.info("draining: new INVITEs get 503; stopping once no in-dialog request came for %d s and no transaction "
                 "is open, at the latest in %d s", settings.drain_idle_s, settings.drain_timeout_s)
        started = last_activity = time.monotonic()
        routed = None
        while True:
            signums, _ = self._wait(DRAIN_POLL_S)
            if signal.SIGTERM in signums or signal.SIGINT in signums:
                log.warning("a second stop signal: stopping now, without waiting for the drain")
                return
            if not any(child.pid for child in self.workers):  # all stopped (a signal to the whole group)
                log.warning("the workers have stopped: the drain ends")
                return
            now = time.monotonic()
            rows = [view.worker_counters(index) for index in range(self.worker_count)]
            now_routed = sum(row["in_dialog_forwarded"] for row in rows)
            if now_routed != routed:
                routed, last_activity = now_routed, now
            waiting = any(row["drain_waiting"] for row in rows)
            # a row says what waits once its worker drains (told by SIGUSR1, else it sees the mark within a second)
            seen = all(row["draining"] for row in rows) or now - started >= 2 * worker.COUNTERS_EVERY_S
            if seen and not waiting and now - last_activity >= settings.drain_idle_s:
                log.info("drained: no in-dialog request for %d s and no transaction open (%.1f s)", settings.drain_idle_s,
                         now - started)
                return
            if now - started >= settings.drain_timeout_s:
                log.warning("drain timeout (%d s): stopping with %s", settings.drain_timeout_s,
                            "transactions still open" if waiting else "in-dialog requests still coming")
                return

    def _halt(self, reason: str) -> int:
        log.error("halting: %s", reason)
        self.stopping = True
        self._terminate(self.all_children, STOP_GRACE_S)
        return EXIT_HALTED


def run(settings: Settings) -> int:
    return Master(settings).run()
