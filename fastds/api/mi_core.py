"""OpenSIPS's core and statistics MI commands, over fastds's processes and counters.

Owns version, uptime, ps (OpenSIPS 3.4 mi/mi_core.c shapes: {"Server"}, {"Now", "Up
since", "Up time"}, {"Processes": [{"ID", "PID", "Type"}]}, IDs in the order of the
pkmem:N- statistics); event_subscribe, events_list, subscribers_list (evi/event_interface.c,
answered by the prober, which holds the subscriptions); and get_statistics, list_statistics,
reset_statistics (statistics.c: "group:name" keys, "incremental" or "non-incremental",
"Statistics Not Found" 404; events:delivered/failed/dropped are the prober's).
A reset applies to what MI shows (opensips-cp's Statistics Monitor): the API keeps the
value at the reset and subtracts it; counters stay cumulative in shared memory, in
/metrics (Prometheus counters must not go back) and in /api/v1/stats. Only incremental
statistics reset, as in OpenSIPS: gauges, memory figures and the generation do not.
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Awaitable, Callable
from typing import Any

from fastds import __version__
from fastds.api.memory import MemoryStatistics
from fastds.api.metrics import WORKER_GAUGES
from fastds.api.mi_params import INVALID_PARAMS, MiError, bad_type, int_param, string_param
from fastds.api.snapshot import Snapshot
from fastds.dispatch.events import DEFAULT_EXPIRE_S
from fastds.dispatch.state import DestinationState
from fastds.errors import FastdsError

STATISTICS_RECIPE = [("statistics",)]
EVENT_COUNTERS = ("delivered", "failed", "dropped")  # of E_DISPATCHER_STATUS, fastds/procs/events.py
NON_INCREMENTAL = {"dispatcher:destinations", "dispatcher:generation",
                   *(f"dispatcher:{state.label}_destinations" for state in DestinationState),
                   *(f"fastds:{name}" for name in WORKER_GAUGES)}


def statistics(snapshot: Snapshot) -> dict[str, int]:
    """The statistics get_statistics serves, as "group:name" (OpenSIPS's dispatcher
    exports none; fastds adds its own under "dispatcher:" and "fastds:")."""
    destinations = snapshot.destinations
    stats = {
        "dispatcher:destinations": len(destinations),
        **{f"dispatcher:{state.label}_destinations": sum(1 for live in destinations if live.state == state)
           for state in DestinationState},
        "dispatcher:picks": sum(live.picks for live in destinations),
        "dispatcher:failovers": sum(live.failovers for live in destinations),
        "dispatcher:generation": snapshot.generation,
    }
    stats.update({f"fastds:{name}": value for name, value in snapshot.totals().items()})
    return stats


def _incremental(name: str) -> bool:
    return name not in NON_INCREMENTAL and not name.startswith(("shmem:", "pkmem:"))


def _names(params: dict[str, Any]) -> list[str]:
    names = params["statistics"]
    if not isinstance(names, list):
        raise bad_type("statistics")
    if not all(isinstance(name, str) for name in names):
        raise MiError(*INVALID_PARAMS, "Bad type for array item in parameter 'statistics'")
    return names


def _select(available: dict[str, Any], names: list[str], allow_all: bool = True) -> dict[str, Any]:
    """OpenSIPS's lookup: "all", "group:" for a group, else one statistic by name, with
    or without its group; 404 when nothing matched."""
    found: dict[str, Any] = {}
    for name in names:
        if name == "all" and allow_all:
            found.update(available)
        elif len(name) > 1 and name.endswith(":"):
            found.update({key: value for key, value in available.items() if key.startswith(name)})
        else:
            found.update({key: value for key, value in available.items()
                          if key == name or key.partition(":")[2] == name})
    if not found:
        raise MiError(404, "Statistics Not Found")
    return found


def _started_at(pid: int) -> float | None:
    """When process `pid` started, as a Unix time (Linux /proc), or None."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            ticks = int(stat.read().rpartition(")")[2].split()[19])  # field 22, starttime
        with open("/proc/stat") as system:
            boot = next(int(line.split()[1]) for line in system if line.startswith("btime "))
    except (OSError, ValueError, IndexError, StopIteration):
        return None
    return boot + ticks / os.sysconf("SC_CLK_TCK")


class CoreCommands:
    def __init__(self, snapshot: Callable[[], Snapshot], control: Callable[..., Awaitable[dict[str, Any]]]):
        self.snapshot = snapshot
        self.control = control
        self.memory = MemoryStatistics()
        self._reset_at: dict[str, int] = {}  # statistic -> its value when MI reset it
        self._started_at = _started_at(os.getppid()) or time.time()  # the master's start: the node's
        self.commands = {
            "version": ([()], self.version),
            "uptime": ([()], self.uptime),
            "ps": ([()], self.ps),
            "get_statistics": (STATISTICS_RECIPE, self.get_statistics),
            "list_statistics": ([(), ("statistics",)], self.list_statistics),
            "reset_statistics": (STATISTICS_RECIPE, self.reset_statistics),
            "event_subscribe": ([("event", "socket"), ("event", "socket", "expire")], self.event_subscribe),
            "events_list": ([()], self.events_list),
            "subscribers_list": ([(), ("event",), ("event", "socket")], self.subscribers_list),
        }

    async def version(self, params: dict[str, Any]) -> dict[str, str]:
        return {"Server": f"fastds ({__version__} ({platform.machine()}/{platform.system().lower()}))"}

    async def uptime(self, params: dict[str, Any]) -> dict[str, str]:
        now = time.time()
        return {"Now": time.ctime(now), "Up since": time.ctime(self._started_at),
                "Up time": f"{int(now - self._started_at)} [sec]"}

    async def ps(self, params: dict[str, Any]) -> dict[str, list]:
        snapshot = self.snapshot()
        types = ["attendant", "prober (store, probes, states)", "HTTP management (API, MI, metrics)",
                 *(f"SIP worker {index}" for index in range(len(snapshot.workers)))]
        pids = self._pids(snapshot, await self._prober())
        return {"Processes": [{"ID": number, "PID": pid, "Type": kind}
                              for number, (pid, kind) in enumerate(zip(pids, types)) if pid]}

    async def _prober(self) -> dict[str, Any]:
        """The prober's ping reply ({} when it does not answer): its pid, its event counters."""
        try:
            return await self.control("ping", timeout_s=2.0)
        except FastdsError:
            return {}

    @staticmethod
    def _pids(snapshot: Snapshot, prober: dict[str, Any]) -> list[int | None]:
        """The processes in pkmem order: master, prober, API, workers (None when down)."""
        return [os.getppid(), prober.get("pid"), os.getpid(), *(row["pid"] or None for row in snapshot.workers)]

    async def _available(self) -> dict[str, int]:
        snapshot, prober = self.snapshot(), await self._prober()
        events = {f"events:{name}": prober.get("events", {}).get(name, 0) for name in EVENT_COUNTERS}
        return {**statistics(snapshot), **events, **self.memory.collect(snapshot, self._pids(snapshot, prober))}

    async def get_statistics(self, params: dict[str, Any]) -> dict[str, int]:
        found = _select(await self._available(), _names(params))
        return {name: max(0, value - self._reset_at.get(name, 0)) for name, value in found.items()}

    async def list_statistics(self, params: dict[str, Any]) -> dict[str, str]:
        available = await self._available()
        found = _select(available, _names(params), allow_all=False) if "statistics" in params else available
        return {name: "incremental" if _incremental(name) else "non-incremental" for name in found}

    async def _events(self, op: str, **fields: Any) -> Any:
        try:
            reply = await self.control(op, **fields)
        except FastdsError as exc:
            raise MiError(500, f"ERROR {exc}") from None
        if not reply.get("ok"):
            raise MiError(reply.get("code", 500), reply.get("error", "ERROR"))
        return reply.get("result", "OK")

    async def event_subscribe(self, params: dict[str, Any]) -> str:
        """udp:HOST:PORT subscribers (OpenSIPS event_datagram's JSON-RPC); expire 0 unsubscribes."""
        expire = int_param(params, "expire") if "expire" in params else DEFAULT_EXPIRE_S
        if expire < 0:
            raise MiError(*INVALID_PARAMS, "Negative expire value")
        return await self._events("event_subscribe", event=string_param(params, "event"),
                                  socket=string_param(params, "socket"), expire=expire)

    async def events_list(self, params: dict[str, Any]) -> dict:
        return await self._events("events_list")

    async def subscribers_list(self, params: dict[str, Any]) -> dict:
        return await self._events("subscribers_list", **{name: string_param(params, name) for name in params})

    async def reset_statistics(self, params: dict[str, Any]) -> str:
        """Only statistics named one by one, as OpenSIPS (no "all", no "group:")."""
        available = await self._available()
        found = [key for name in _names(params) for key in available if key == name or key.partition(":")[2] == name]
        if not found:
            raise MiError(404, "Statistics Not Found")
        self._reset_at.update({name: available[name] for name in found if _incremental(name)})
        return "OK"
