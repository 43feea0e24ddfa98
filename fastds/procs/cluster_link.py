"""A prober's link to the cluster through Redis (FASTDS_CLUSTER_URL; docs/architecture.md §10).

Owns the keys under `fastds:<FASTDS_CLUSTER_NAME>:`, with redis-py's asyncio client:

    node:<id>   this node's heartbeat (JSON: id, version, SIP and API addresses, the master's
                pid, started-at, beat-at, draining), renewed every FASTDS_CLUSTER_HEARTBEAT_MS, expiring after three
    states      hash, destination id -> the winning StateRecord (the current states)
    changes     stream of records and reload requests, trimmed to about STREAM_LENGTH

A record is published by one Lua script that writes both only when it wins (the rule of
fastds/dispatch/cluster.py); a node that (re)connects publishes what it kept, reads the
states, then follows the stream. Redis unreachable: degraded, retried with back-off.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from fastds import __version__
from fastds.dispatch.cluster import ClusterState, StateRecord
from fastds.errors import FastdsError

log = logging.getLogger("fastds.cluster")
STREAM_LENGTH = 10_000
RETRY_FIRST_S = 0.25
RETRY_MAX_S = 1.0  # after Redis returns, nodes converge within about this plus one read
READ_BLOCK_MS = 1000
PUBLISH = """
local current = redis.call('HGET', KEYS[1], ARGV[1])
if current then
  local held = cjson.decode(current)
  local at = tonumber(ARGV[3])
  if held.t > at or (held.t == at and held.o >= ARGV[4]) then return current end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[5], '*', 'r', ARGV[2])
return false
"""


class DuplicateNode(FastdsError):
    """Another live node of the cluster has this FASTDS_NODE_ID."""


class ClusterLink:
    def __init__(self, url: str, name: str, heartbeat_s: float, cluster: ClusterState, about: dict[str, Any],
                 on_record: Callable[[StateRecord], None], on_reload: Callable[[bool], Awaitable[None]],
                 on_members: Callable[[], None], draining: Callable[[], bool] = lambda: False):
        """about: what the heartbeat tells of this node (sip, api, pid: the master's, which an
        operator signals); on_record: a winning record from another node, to apply;
        on_reload(inherit): a reload another node broadcast; on_members: the live nodes (or
        degraded) changed; draining(): the node is draining (said in every heartbeat)."""
        self.cluster = cluster
        self.heartbeat_s = heartbeat_s
        self.about = {**about, "id": cluster.node_id, "version": __version__, "started_at": round(time.time(), 3)}
        self._prefix = f"fastds:{name}:"
        self._redis = aioredis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0)
        self._publish = self._redis.register_script(PUBLISH)
        self._on_record, self._on_reload, self._on_members = on_record, on_reload, on_members
        self._draining = draining
        self._stream_at = "0-0"
        self._tasks: list[asyncio.Task] = []
        self._to_send = asyncio.Event()  # set by publish(): the sender task sends, in order
        self.nodes: dict[str, dict[str, Any]] = {}  # live node id -> its heartbeat
        self.last_error = ""

    def key(self, name: str) -> str:
        return self._prefix + name

    # -- start ----------------------------------------------------------------------------------

    async def join(self) -> dict[int, int]:
        """Claim the node id and read the current states (destination id -> state), before
        the first table is published; {} when Redis cannot be reached (degraded)."""
        try:
            # the claim is this node's first heartbeat: another node listing it before its
            # first _beat() must see when it beat, as for every later one
            self.about["beat_at"] = round(time.time(), 3)
            claimed = await self._redis.set(self.key(f"node:{self.cluster.node_id}"), orjson.dumps(self.about),
                                            nx=True, px=int(3000 * self.heartbeat_s))
            if not claimed:
                held = orjson.loads(await self._redis.get(self.key(f"node:{self.cluster.node_id}")) or b"{}")
                raise DuplicateNode(f"FASTDS_NODE_ID={self.cluster.node_id!r} is held by another live node of cluster "
                                    f"{self._prefix[7:-1]!r} (pid {held.get('pid')}, SIP {held.get('sip')}); "
                                    "every node needs its own id")
            await self._resync()
            log.info("cluster %s: joined as node %s", self._prefix[7:-1], self.cluster.node_id)
        except (RedisError, OSError) as exc:
            self._went_degraded(exc)
        return {dest_id: record.state for dest_id, record in self.cluster.latest.items()}

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._tasks = [loop.create_task(self._heartbeats()), loop.create_task(self._follow()),
                       loop.create_task(self._sender())]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        try:
            await self._redis.delete(self.key(f"node:{self.cluster.node_id}"))  # others take over at once
        except (RedisError, OSError):
            pass
        await self._redis.aclose()

    # -- publishing -----------------------------------------------------------------------------

    def publish(self, record: StateRecord) -> None:
        """A change this node made (already in cluster.unpublished): sent by the sender
        task, one at a time and in order; kept while degraded."""
        self._to_send.set()

    async def _sender(self) -> None:
        while True:
            await self._to_send.wait()
            self._to_send.clear()
            if self.cluster.degraded:
                continue  # the heartbeat that finds Redis back sends them
            try:
                await self._send_unpublished_or_raise()
            except (RedisError, OSError) as exc:
                self._went_degraded(exc)

    async def _send_unpublished_or_raise(self) -> None:
        for record in list(self.cluster.unpublished):
            held = await self._publish(keys=[self.key("states"), self.key("changes")],
                                       args=[record.dest_id, record.encode(), record.at_ms, record.origin, STREAM_LENGTH])
            self.cluster.published([record])
            if held is not None:  # a later change from another node is there: it describes it now
                winner = StateRecord.decode(held)
                if winner is not None and self.cluster.remote(winner):
                    self._on_record(winner)

    async def broadcast_reload(self, inherit: bool) -> None:
        """MI ds_reload with `cluster`: every other node reloads too."""
        await self._redis.xadd(self.key("changes"), {"reload": b"1" if inherit else b"0",
                                                     "o": self.cluster.node_id.encode()},
                               maxlen=STREAM_LENGTH, approximate=True)

    # -- following ------------------------------------------------------------------------------

    async def _resync(self) -> None:
        """Where the stream stands, then every current state (records later than that point
        come again from the stream: equal records change nothing)."""
        newest = await self._redis.xrevrange(self.key("changes"), count=1)
        self._stream_at = newest[0][0].decode() if newest else "0-0"
        for data in (await self._redis.hgetall(self.key("states"))).values():
            record = StateRecord.decode(data)
            if record is not None and self.cluster.remote(record):
                self._on_record(record)

    async def _follow(self) -> None:
        while True:
            if self.cluster.degraded:
                await asyncio.sleep(self.heartbeat_s)
                continue
            try:
                batches = await self._redis.xread({self.key("changes"): self._stream_at}, count=500,
                                                  block=READ_BLOCK_MS)
            except (RedisError, OSError) as exc:
                self._went_degraded(exc)
                continue
            for _, entries in batches:
                for entry_id, fields in entries:
                    self._stream_at = entry_id.decode()
                    await self._entry(fields)

    async def _entry(self, fields: dict[bytes, bytes]) -> None:
        if b"reload" in fields:
            if fields.get(b"o", b"").decode() != self.cluster.node_id:
                await self._on_reload(fields[b"reload"] == b"1")
            return
        record = StateRecord.decode(fields.get(b"r", b""))
        if record is not None and self.cluster.remote(record):
            self._on_record(record)

    # -- membership and outages -----------------------------------------------------------------

    async def _heartbeats(self) -> None:
        retry = RETRY_FIRST_S
        while True:
            try:
                await self._beat()
                retry = RETRY_FIRST_S
                await asyncio.sleep(self.heartbeat_s)
            except (RedisError, OSError) as exc:
                self._went_degraded(exc)
                await asyncio.sleep(retry)
                retry = min(2 * retry, RETRY_MAX_S)

    async def _beat(self) -> None:
        self.about["beat_at"] = round(time.time(), 3)
        self.about["draining"] = self._draining()
        await self._redis.set(self.key(f"node:{self.cluster.node_id}"), orjson.dumps(self.about),
                              px=int(3000 * self.heartbeat_s))
        if self.cluster.degraded:  # back: what was made meanwhile first, then the cluster's states
            await self._send_unpublished_or_raise()
            await self._resync()
            self.cluster.degraded = False
            self.last_error = ""  # status shows a current error only
            log.info("cluster %s: Redis reachable again, states converged; probing shared again", self._prefix[7:-1])
        nodes = {}
        async for key in self._redis.scan_iter(match=self.key("node:*"), count=100):
            data = await self._redis.get(key)
            if data:
                nodes[key.decode().rsplit(":", 1)[1]] = orjson.loads(data)
        changed = frozenset(nodes) | {self.cluster.node_id} != self.cluster.live
        self.nodes = nodes
        self.cluster.live = frozenset(nodes) | {self.cluster.node_id}
        if changed:
            log.info("cluster %s: live nodes %s", self._prefix[7:-1], ", ".join(sorted(self.cluster.live)))
            self._on_members()

    def _went_degraded(self, exc: Exception) -> None:
        self.last_error = f"{type(exc).__name__}: {exc}"
        if not self.cluster.degraded:
            self.cluster.degraded = True
            log.warning("cluster %s degraded: Redis unreachable (%s); routing on this node's states and probing "
                        "every destination here until it returns", self._prefix[7:-1], self.last_error)
            self._on_members()

    def status(self) -> dict[str, Any]:
        return {"node": self.cluster.node_id, "degraded": self.cluster.degraded, "error": self.last_error or None,
                "nodes": sorted(self.nodes.values(), key=lambda about: about.get("id", ""))}
