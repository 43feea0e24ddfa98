"""What `fastds check` verifies beyond the variables' syntax, one line per check.

Owns the environment checks: no compiled module is older than its source
(fastds/compiled.py), the store opens with the tables and versions fastds speaks,
and every SIP listener (udp, tcp, tls) and the API address can be bound -- tried and released at once, so
nothing is kept. An address held by the fastds that runs on this configuration (its API
answers) is reported as such, not as a failure; held by anything else, it is a failure
naming the address and the variable.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
from collections.abc import Callable

from fastds.compiled import stale_message, stale_modules
from fastds.config import Settings, masked_db_url
from fastds.errors import FastdsError
from fastds.net.bind import bind_tcp, ensure_free


@dataclasses.dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str

    def line(self) -> str:
        return f"{'ok  ' if self.ok else 'FAIL'} {self.name}: {self.detail}"


async def _store_check(url: str) -> Check:
    from fastds.store import open_store

    try:
        store = open_store(url)
    except FastdsError as exc:
        return Check("store", False, str(exc))
    try:
        await store.check_schema()
        return Check("store", True, f"{store.name}: tables and versions as fastds speaks them")
    except FastdsError as exc:
        return Check("store", False, f"{exc} (FASTDS_DB_URL={masked_db_url(url)})")
    finally:
        await store.close()


def _bind_check(name: str, variable: str, bind: Callable[[], None], running_fastds: Callable[[], str | None]) -> Check:
    try:
        bind()
    except (OSError, FastdsError) as exc:
        holder = running_fastds()
        if holder is not None:
            return Check(name, True, f"held by the running fastds ({holder})")
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        return Check(name, False, f"{why}; another program holds it (change {variable} or stop that program)")
    return Check(name, True, "free")


def _compiled_check() -> Check:
    stale = stale_modules()
    return Check("compiled", not stale, stale_message(stale) if stale else "every compiled module matches its source")


def environment_checks(settings: Settings, running_fastds: Callable[[], str | None]) -> list[Check]:
    """running_fastds(): a description of the fastds answering on FASTDS_API_LISTEN, or None."""
    api_host, api_port = settings.api_listen
    sip_checks = [
        _bind_check(f"SIP {listener.transport} {listener.host}:{listener.port}", "FASTDS_SIP_LISTEN",
                    functools.partial(ensure_free, listener.transport, listener.host, listener.port), running_fastds)
        for listener in settings.sip_listen]
    return [
        _compiled_check(),
        asyncio.run(_store_check(settings.db_url)),
        *sip_checks,
        _bind_check(f"API tcp {api_host}:{api_port}", "FASTDS_API_LISTEN", lambda: bind_tcp(api_host, api_port).close(),
                    running_fastds),
    ]
