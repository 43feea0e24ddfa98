"""The API process: serves fastds/api/ on FASTDS_API_LISTEN (docs/architecture.md §6).

Owns composing the management interface: the listening socket (bound before READY, so a
taken port halts fastds like a taken SIP port), the store connection for writes, the
shared-memory view for reads, the control client that asks the prober for state
changes and reloads, and a clean stop on SIGTERM. It never writes shared memory.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket

import uvloop
from aiohttp import web

from fastds.api.app import Api
from fastds.api.history import SAMPLE_INTERVAL_S
from fastds.api.snapshot import SnapshotReader
from fastds.config import Settings
from fastds.errors import FastdsError
from fastds.net.bind import bind_tcp
from fastds.procs import EXIT_BOOT_FAILURE
from fastds.procs.control import ControlClient
from fastds.shm.layout import ShmView
from fastds.store import open_store

log = logging.getLogger("fastds.api")
SHUTDOWN_GRACE_S = 2.0


async def serve(settings: Settings, view: ShmView, listener: socket.socket, ready_fd: int,
                control_address: str) -> None:
    loop = asyncio.get_running_loop()
    store = open_store(settings.db_url)
    control = ControlClient(control_address)
    api = Api(SnapshotReader(view), store, control.request, settings.api_token, view.layout.capacity,
              settings.drain_idle_s, settings.drain_timeout_s, settings.api_open_paths)
    # requests still open at SIGTERM get SHUTDOWN_GRACE_S, within the master's stop grace
    runner = web.AppRunner(api.application(), access_log=None, shutdown_timeout=SHUTDOWN_GRACE_S)
    await runner.setup()
    await web.SockSite(runner, listener).start()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)  # SIGINT (Ctrl-C) is the master's: it drains first
    loop.add_signal_handler(signal.SIGHUP, lambda: None)  # the master asks the prober directly
    sampler = asyncio.create_task(sample_forever(api))
    os.write(ready_fd, b"A")
    log.info("API listening on http://%s:%d/ (panel, /api/v1, /mi, /metrics)%s", *settings.api_listen,
             "" if settings.api_token else " without a token")
    await stop.wait()
    sampler.cancel()
    await runner.cleanup()
    control.close()
    await store.close()


async def sample_forever(api: Api) -> None:
    """The panel's history: a sample every SAMPLE_INTERVAL_S, whoever looks. A failing sample
    never ends the history; it is logged once, and again only after a sample has worked."""
    failing = False
    while True:
        try:
            await api.sample()
            failing = False
        except Exception:  # noqa: BLE001 - whatever it was, the next sample is tried
            if not failing:
                log.exception("panel history: sample failed (said once until one works again)")
            failing = True
        await asyncio.sleep(SAMPLE_INTERVAL_S)


def main(settings: Settings, region, ready_fd: int, control_address: str) -> int:
    try:
        view = ShmView(region)
        listener = bind_tcp(*settings.api_listen)
    except FastdsError as exc:
        log.error("API cannot start: %s", exc)
        return EXIT_BOOT_FAILURE
    except OSError as exc:
        log.error("API cannot start: %s", exc.strerror)
        return EXIT_BOOT_FAILURE
    uvloop.run(serve(settings, view, listener, ready_fd, control_address))
    return 0
