"""The JSON API of the edge's defences: the address table (trusted sources) and the blocked IPs.

Owns /api/v1/addresses (list, add, show, change, remove rows of the OpenSIPS permissions
`address` table, validated by fastds/api/validate.py, reloaded after a write as the
destinations are) and /api/v1/blocked (the IPs the workers' flood limits block now,
from shared memory; DELETE /api/v1/blocked/{ip} releases one, as MI pike_rm). The
plumbing (token, errors as JSON) and the reload after a write are fastds/api/app.py's.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from fastds.api.replies import error, json_response, read_body, row_id
from fastds.api.snapshot import Snapshot
from fastds.api.validate import address_fields
from fastds.errors import FieldError
from fastds.store import Store


class EdgeRoutes:
    def __init__(self, store: Store, snapshot: Callable[[], Snapshot], control: Callable[..., Awaitable[dict]],
                 apply: Callable[[web.Request], Awaitable[dict[str, Any]]]):
        """apply(request): reload after a write unless ?reload=0 (fastds/api/app.py's), what happened."""
        self.store, self.snapshot, self.control, self.apply = store, snapshot, control, apply

    async def list_addresses(self, request: web.Request) -> web.Response:
        return json_response({"addresses": await self.store.load_addresses(),
                      "published": self.snapshot().addresses})

    async def get_address(self, request: web.Request) -> web.Response:
        address_id = row_id(request, "an address row")
        row = await self.store.get_address(address_id)
        if row is None:
            return error(404, f"no address with id {address_id}")
        return json_response(row)

    async def add_address(self, request: web.Request) -> web.Response:
        row = address_fields(await read_body(request))
        address_id = await self.store.add_address(row)
        return json_response({"id": address_id, **row, **await self.apply(request)}, 201)

    async def update_address(self, request: web.Request) -> web.Response:
        address_id = row_id(request, "an address row")
        body = await read_body(request)
        current = await self.store.get_address(address_id)
        if current is None:
            return error(404, f"no address with id {address_id}")
        row = address_fields(body, current)
        await self.store.update_address(address_id, row)
        return json_response({"id": address_id, **row, **await self.apply(request)})

    async def remove_address(self, request: web.Request) -> web.Response:
        address_id = row_id(request, "an address row")
        await self.store.remove_address(address_id)  # RowNotFound: 404
        return json_response({"id": address_id, "removed": True, **await self.apply(request)})

    async def blocked(self, request: web.Request) -> web.Response:
        snapshot = self.snapshot()
        return json_response({"blocked": [b.as_json() for b in snapshot.blocked], "total": snapshot.blocked_total})

    async def unblock(self, request: web.Request) -> web.Response:
        text = request.match_info["ip"]
        try:
            ip = str(ipaddress.ip_address(text))
        except ValueError:
            raise FieldError("ip", text, "an IPv4 or IPv6 address") from None
        if all(b.ip != ip for b in self.snapshot().blocked):
            return error(404, f"{ip} is not blocked")
        await self.control("unblock", ip=ip)
        return json_response({"ip": ip, "released": True, "note": "every worker releases it within a second"})

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/api/v1/addresses", self.list_addresses),
            web.post("/api/v1/addresses", self.add_address),
            web.get("/api/v1/addresses/{id}", self.get_address),
            web.put("/api/v1/addresses/{id}", self.update_address),
            web.delete("/api/v1/addresses/{id}", self.remove_address),
            web.get("/api/v1/blocked", self.blocked),
            web.delete("/api/v1/blocked/{ip}", self.unblock),
        ]
