"""JSON answers of the management API, one way for every route module.

Owns the body encoding (orjson) and the shape of an error answer: {"error": message, ...}.
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web


def json_response(body: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


def error(status: int, message: str, **extra: Any) -> web.Response:
    return json_response({"error": message, **extra}, status)
