"""The management HTTP application: JSON API, /mi, /metrics and the web panel (docs/architecture.md §6).

Owns the routes, the bearer-token check, and how failures become answers: a bad body is
400 naming the field, the value and what was expected (fastds/api/validate.py) with
nothing written; a store that cannot be reached is 503 naming it; a write either reaches
the store or is an error. Reads come from shared memory (fastds/api/snapshot.py); state
changes and reloads are asked of the prober (`control`), never written here. After a
write the destinations are reloaded (inheriting runtime state) unless `?reload=0`.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
import signal
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from fastds.api import metrics
from fastds.api.edge import EdgeRoutes
from fastds.api.history import SAMPLE_INTERVAL_S, History
from fastds.api.mi import MiHandler
from fastds.api.mi_core import statistics
from fastds.api.processes import ProcessUsage, processes
from fastds.api.replies import destination_json, error, json_response, read_body, row_id
from fastds.api.snapshot import Snapshot
from fastds.api.validate import destination_fields, state_number
from fastds.dispatch.state import DestinationState
from fastds.errors import FastdsError, FieldError, RowNotFound, StoreError
from fastds.store import Store

PANEL = Path(__file__).with_name("panel.html")
STATIC = Path(__file__).with_name("static")  # the panel's chart library (uPlot, MIT): public, served without the token
STATIC_TYPES = {"uPlot.iife.min.js": "text/javascript", "uPlot.min.css": "text/css", "uPlot.LICENSE": "text/plain"}
OPENAPI = Path(__file__).with_name("openapi.json")  # the /api/v1 routes described (tests/unit/test_openapi.py)
HEALTH_STORE_TIMEOUT_S = 2.0
log = logging.getLogger("fastds.api")
Control = Callable[..., Awaitable[dict[str, Any]]]


class Api:
    def __init__(self, snapshot: Callable[[], Snapshot], store: Store, control: Control, token: str,
                 capacity: int, drain_idle_s: int = 10, drain_timeout_s: int = 60, open_paths: tuple[str, ...] = ()):
        """drain_*: FASTDS_DRAIN_IDLE_S and _TIMEOUT_S, told to who asks for a drain; open_paths:
        FASTDS_API_OPEN_PATHS, read without the token."""
        self.open_paths = frozenset(open_paths)
        self.drain_idle_s, self.drain_timeout_s = drain_idle_s, drain_timeout_s
        self.snapshot = snapshot
        self.store = store
        self.control = control
        self.token = token
        self.capacity = capacity
        self.mi = MiHandler(snapshot, control)
        self.metrics = metrics.MetricsPage(snapshot)
        self.history = History()
        self._store_ok = True  # as the last health check found it

    async def sample(self) -> None:
        """One sample of the panel's history (the API process calls it every SAMPLE_INTERVAL_S)."""
        snapshot = self.snapshot()
        self.history.sample(snapshot, self._processes(snapshot, await self._prober("ping")), time.time())

    @staticmethod
    def _processes(snapshot: Snapshot, prober: dict[str, Any] | None) -> list[ProcessUsage]:
        """The node's processes' CPU and RSS: the workers' pids from their counter rows, the
        prober's from its answer (None: it did not answer, left out)."""
        return processes([row["pid"] for row in snapshot.workers], prober and prober.get("pid"))

    async def _prober(self, op: str) -> dict[str, Any] | None:
        """The prober's answer to a read-only `op`, or None when it does not answer within 1 s."""
        try:
            return await self.control(op, timeout_s=1.0)
        except FastdsError:
            return None

    # -- plumbing ------------------------------------------------------------------------

    @web.middleware
    async def guard(self, request: web.Request, handler) -> web.StreamResponse:
        """Bearer token (when set; FASTDS_API_OPEN_PATHS read without it), then failures as JSON answers."""
        public = request.path in self.open_paths or request.path.startswith("/static/")
        if self.token and not (request.method in ("GET", "HEAD") and public):
            scheme, _, given = request.headers.get("Authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), self.token.encode()):
                headers = {"WWW-Authenticate": 'Bearer realm="fastds"'}
                if request.path == "/":  # the panel asks for the token, then sends it with each request
                    return web.Response(body=PANEL.read_bytes(), status=401, content_type="text/html",
                                        headers=headers)
                return web.Response(body=orjson.dumps({"error": "missing or wrong bearer token"}), status=401,
                                    content_type="application/json", headers=headers)
        try:
            return await handler(request)
        except FieldError as exc:
            return json_response(exc.as_json(), 400)
        except RowNotFound as exc:  # not there, or removed by someone else between our read and write
            return error(404, str(exc))
        except StoreError as exc:
            return error(503, f"the store cannot be reached, nothing was changed: {exc}")
        except FastdsError as exc:  # the prober did not answer
            return error(503, str(exc))
        except web.HTTPNotFound:
            return error(404, f"no such endpoint: {request.method} {request.path}")
        except web.HTTPMethodNotAllowed as exc:
            allowed = ", ".join(sorted(exc.allowed_methods))
            response = error(405, f"{request.method} is not allowed on {request.path}; use {allowed}")
            response.headers["Allow"] = allowed
            return response

    async def apply(self, request: web.Request) -> dict[str, Any]:
        """Reload after a write unless ?reload=0: what happened, for the response."""
        if request.query.get("reload", "1") in ("0", "no", "false"):
            return {"applied": False, "note": "not reloaded (?reload=0): POST /api/v1/reload to apply"}
        try:
            reply = await self.control("reload", inherit=True)
        except FastdsError as exc:
            return {"applied": False, "reload_error": str(exc)}
        if not reply.get("ok"):
            return {"applied": False, "reload_error": reply.get("error")}
        return {"applied": True, "generation": reply["generation"], "problems": reply["problems"]}

    @staticmethod
    def duplicate(row: dict[str, Any], rows: list[dict[str, Any]], own_id: int | None = None) -> web.Response | None:
        """409 when another of the store's `rows` has the same set and URI."""
        for other in rows:
            if (other["id"] != own_id and str(other["setid"]) == str(row["setid"])
                    and str(other["destination"]).strip().lower() == row["destination"].lower()):
                return error(409, f"set {row['setid']} already has {row['destination']} (id {other['id']}); "
                                  "nothing was written", field="destination", value=row["destination"],
                             expected="a destination not yet in this set")
        return None

    # -- /api/v1 ---------------------------------------------------------------------------

    async def get_sets(self, request: web.Request) -> web.Response:
        snapshot = self.snapshot()
        return json_response({"generation": snapshot.generation, "sets": [
            {"id": set_id, "destinations": [{**live.as_json(), "dns": snapshot.dns.get(live.destination.id)}
                                            for live in members]}
            for set_id, members in snapshot.sets.items()], "skipped": snapshot.skipped})

    async def list_destinations(self, request: web.Request) -> web.Response:
        rows = sorted(await self.store.load_destinations(), key=lambda row: (row["setid"], row["id"]))
        return json_response({"destinations": [destination_json(row) for row in rows]})

    async def get_destination(self, request: web.Request) -> web.Response:
        dest_id = row_id(request, "a destination")
        row = await self.store.get_destination(dest_id)
        if row is None:
            return error(404, f"no destination with id {dest_id}")
        return json_response(destination_json(row))

    async def add_destination(self, request: web.Request) -> web.Response:
        row = destination_fields(await read_body(request))
        rows = await self.store.load_destinations()
        if len(rows) >= self.capacity:
            return error(409, f"the shared table holds {self.capacity} destinations (FASTDS_SHM_DESTINATIONS) "
                              "and the store has that many; nothing was written")
        conflict = self.duplicate(row, rows)
        if conflict is not None:
            return conflict
        dest_id = await self.store.add_destination(row)
        return json_response({**destination_json({"id": dest_id, **row}), **await self.apply(request)}, 201)

    async def update_destination(self, request: web.Request) -> web.Response:
        dest_id = row_id(request, "a destination")
        body = await read_body(request)
        current = await self.store.get_destination(dest_id)
        if current is None:
            return error(404, f"no destination with id {dest_id}")
        row = destination_fields(body, current)
        conflict = self.duplicate(row, await self.store.load_destinations(), dest_id)
        if conflict is not None:
            return conflict
        await self.store.update_destination(dest_id, row)
        return json_response({**destination_json({"id": dest_id, **row}), **await self.apply(request)})

    async def remove_destination(self, request: web.Request) -> web.Response:
        dest_id = row_id(request, "a destination")
        if await self.store.get_destination(dest_id) is None:
            return error(404, f"no destination with id {dest_id}")
        await self.store.remove_destination(dest_id)
        return json_response({"id": dest_id, "removed": True, **await self.apply(request)})

    async def set_state(self, request: web.Request) -> web.Response:
        """The live state (enable / disable / probing); the prober writes it back to the store."""
        dest_id = row_id(request, "a destination")
        body = await read_body(request)
        if not isinstance(body, dict) or set(body) != {"state"}:
            raise FieldError("body", body, 'exactly {"state": "active" | "inactive" | "probing"}')
        state = state_number("state", body["state"])
        if self.snapshot().by_id(dest_id) is None:
            return error(404, f"destination id {dest_id} is not loaded (not in the store, or not reloaded yet)")
        reply = await self.control("set_state", destination=dest_id, state=int(state), mi=False)
        if not reply.get("ok"):
            return error(404, f"destination id {dest_id}: {reply.get('error')}")
        return json_response({"id": dest_id, "state": DestinationState(reply["state"]).label, "changed": reply["changed"]})

    async def cluster(self, request: web.Request) -> web.Response:
        """The nodes of the cluster, their heartbeats, and which destinations each probes."""
        reply = await self.control("cluster")
        return json_response({key: value for key, value in reply.items() if key != "ok"})

    async def reload(self, request: web.Request) -> web.Response:
        body = await read_body(request, required=False)
        unknown = set(body) - {"inherit_state"} if isinstance(body, dict) else {"body"}
        if unknown:
            field = sorted(unknown)[0]
            raise FieldError(field, body.get(field) if isinstance(body, dict) else body,
                             'an object with only "inherit_state": true | false')
        inherit = body.get("inherit_state", True)
        if not isinstance(inherit, bool):
            raise FieldError("inherit_state", inherit, "true or false")
        reply = await self.control("reload", inherit=inherit, cluster=request.query.get("cluster") in ("1", "yes", "true"))
        if not reply.get("ok"):
            return error(500, f"reload failed, the previous destinations stay in use: {reply.get('error')}")
        return json_response({"generation": reply["generation"], "problems": reply["problems"],
                              "skipped": reply.get("skipped", []), "cluster": reply.get("cluster", False)})

    async def stats(self, request: web.Request) -> web.Response:
        snapshot = self.snapshot()
        return json_response({"generation": snapshot.generation,
                              "workers": [{"worker": i, **row} for i, row in enumerate(snapshot.workers)],
                              "totals": snapshot.totals(), "statistics": statistics(snapshot)})

    async def health(self, request: web.Request) -> web.Response:
        """200 while fastds can route (a table is published, a destination is active), else 503."""
        snapshot = self.snapshot()
        destinations = snapshot.destinations
        active = sum(1 for live in destinations if live.state == DestinationState.ACTIVE)
        checks: dict[str, str] = {"destinations": f"{active} of {len(destinations)} active"}
        try:
            cluster = (await self.control("ping", timeout_s=2.0)).get("cluster", "standalone")
            checks["prober"] = "ok"
            if cluster != "standalone":
                checks["cluster"] = cluster if cluster == "ok" else "cluster degraded: Redis unreachable, routing alone"
        except FastdsError as exc:
            checks["prober"] = str(exc)
        checks["store"] = await self._store_check()
        routable = snapshot.generation > 0 and active > 0
        healthy = checks["prober"] == checks["store"] == checks.get("cluster", "ok") == "ok"
        status = "down" if not routable else "ok" if healthy else "degraded"
        if snapshot.draining_since:  # stopping: an L4 balancer must take the node out (503), calls still end here
            status = "draining"
            checks["drain"] = (f"draining for {max(0.0, time.time() - snapshot.draining_since):.0f} s: new INVITEs "
                               "get 503, in-dialog requests are routed")
        return json_response({"status": status, "generation": snapshot.generation, "checks": checks},
                             200 if routable and status != "draining" else 503)

    async def drain(self, request: web.Request) -> web.Response:
        """Drain and stop the node, as SIGTERM does (systemctl stop): the master is told once."""
        await read_body(request, required=False)
        snapshot = self.snapshot()
        if not snapshot.draining_since:
            os.kill(os.getppid(), signal.SIGTERM)
        return json_response({"draining": True, "already": bool(snapshot.draining_since),
                              "idle_s": self.drain_idle_s, "timeout_s": self.drain_timeout_s}, 202)

    async def _store_check(self) -> str:
        """"ok", or why not, within HEALTH_STORE_TIMEOUT_S whatever the store does (an L4
        balancer must not pull a node that routes because its database hangs); a change
        either way is logged once."""
        try:
            await asyncio.wait_for(self.store.check_schema(), HEALTH_STORE_TIMEOUT_S)
            verdict = "ok"
        except StoreError as exc:
            verdict = str(exc)
        except asyncio.TimeoutError:
            verdict = f"store not answering: {self.store.name} gave no reply within {HEALTH_STORE_TIMEOUT_S:g} s"
        if (verdict == "ok") != self._store_ok:
            self._store_ok = verdict == "ok"
            if self._store_ok:
                log.info("store %s answers again", self.store.name)
            else:
                log.warning("store check failed: %s", verdict)
        return verdict

    # -- /mi, /metrics, / ---------------------------------------------------------------------

    async def mi_post(self, request: web.Request) -> web.Response:
        status, reply = await self.mi.handle(await request.read())
        if reply is None:
            return web.Response(status=status)
        return web.Response(body=reply, status=status, content_type="application/json")

    async def mi_other(self, request: web.Request) -> web.Response:
        return web.Response(status=405, headers={"Allow": "POST"}, text="MI requests are JSON-RPC over POST\n")

    async def get_metrics(self, request: web.Request) -> web.Response:
        prober = await self._prober("metrics")
        return web.Response(body=self.metrics.page(prober, self._processes(self.snapshot(), prober)),
                            headers={"Content-Type": metrics.CONTENT_TYPE})

    async def get_history(self, request: web.Request) -> web.Response:
        """The panel's samples after ?since= (Unix seconds; all 15 minutes without it) and per
        destination its state history and last minute's replies by class and timeouts."""
        try:
            since = float(request.query.get("since", "0"))
        except ValueError:
            raise FieldError("since", request.query["since"], "Unix seconds (a number)") from None
        return json_response({"interval_s": SAMPLE_INTERVAL_S, "samples": self.history.since(since),
                              "destinations": self.history.destinations_json()})

    async def openapi(self, request: web.Request) -> web.Response:
        return web.Response(body=OPENAPI.read_bytes(), content_type="application/json")

    async def panel(self, request: web.Request) -> web.Response:
        return web.Response(body=PANEL.read_bytes(), content_type="text/html")

    async def static(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in STATIC_TYPES:
            return error(404, f"no such file: /static/{name}")
        return web.Response(body=(STATIC / name).read_bytes(), content_type=STATIC_TYPES[name],
                            headers={"Cache-Control": "max-age=86400"})

    def application(self) -> web.Application:
        app = web.Application(middlewares=[self.guard])
        app.add_routes([
            web.get("/", self.panel),
            web.get("/static/{name}", self.static),
            web.get("/api/v1/sets", self.get_sets),
            web.get("/api/v1/destinations", self.list_destinations),
            web.post("/api/v1/destinations", self.add_destination),
            web.get("/api/v1/destinations/{id}", self.get_destination),
            web.put("/api/v1/destinations/{id}", self.update_destination),
            web.delete("/api/v1/destinations/{id}", self.remove_destination),
            web.put("/api/v1/destinations/{id}/state", self.set_state),
            web.post("/api/v1/reload", self.reload),
            web.post("/api/v1/drain", self.drain),
            web.get("/api/v1/stats", self.stats),
            web.get("/api/v1/health", self.health),
            web.get("/api/v1/cluster", self.cluster),
            web.get("/api/v1/history", self.get_history),
            web.get("/api/v1/openapi.json", self.openapi),
            web.get("/metrics", self.get_metrics),
            *EdgeRoutes(self.store, self.snapshot, self.control, self.apply).routes(),
        ])
        for path in ("/mi", "/mi/"):
            app.router.add_route("POST", path, self.mi_post)
            app.router.add_route("*", path, self.mi_other)
        return app
