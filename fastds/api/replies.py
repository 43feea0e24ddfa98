"""JSON answers of the management API, one way for every route module.

Owns the body encoding (orjson), the shape of an error answer ({"error": message, ...}),
reading a request's JSON body (a FieldError naming it when it is not JSON) and a row id from
a path ({id}: a positive integer, else a 400 naming it).
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from fastds.dispatch.state import DestinationState
from fastds.errors import FieldError


def json_response(body: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


def destination_json(row: dict[str, Any]) -> dict[str, Any]:
    """A dispatcher row as every /api/v1 answer shows a destination (as /api/v1/sets does):
    the state by name, the weight a number. The store keeps OpenSIPS's column types (state
    0/1/2, weight text) and MI shows those, as OpenSIPS does; input takes either."""
    shown = dict(row)
    try:
        shown["state"] = DestinationState(int(row["state"])).label
    except (KeyError, TypeError, ValueError):
        pass  # a code OpenSIPS would not write stays as it is
    weight = str(row.get("weight", "")).strip()
    if weight.isdigit():
        shown["weight"] = int(weight)
    return shown


def error(status: int, message: str, **extra: Any) -> web.Response:
    return json_response({"error": message, **extra}, status)


async def read_body(request: web.Request, required: bool = True) -> Any:
    """The request's JSON body ({} when empty and not required); FieldError otherwise."""
    data = await request.read()
    if not data.strip():
        if required:
            raise FieldError("body", "", "a JSON object")
        return {}
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise FieldError("body", data[:80].decode("utf-8", "replace"), f"valid JSON ({exc})") from None


def row_id(request: web.Request, noun: str) -> int:
    """The {id} of the path; FieldError unless it is a positive integer."""
    text = request.match_info["id"]
    if not text.isdigit():
        raise FieldError("id", text, f"{noun} id (a positive integer)")
    return int(text)
