"""/mi: OpenSIPS MI over JSON-RPC 2.0, so opensips-cli and the control panel drive fastds.

Owns the commands ds_list, ds_set_state, ds_reload (OpenSIPS modules/dispatcher), the
status/report commands sr_* (shaped by fastds/api/mi_sr.py), the permissions and pike
commands (fastds/api/mi_edge.py), the core and statistics ones (fastds/api/mi_core.py), and
`which`, which opensips-cli calls before anything else, with the result and error shapes
of OpenSIPS 3.4 (mi/mi.c, mi/mi_core.c): parameter sets
("recipes") matched by name, or by count for positional arrays (two matches = "Ambiguous
call"), "OK" results, MI errors as {"code", "message"} and JSON-RPC errors with a
"data" detail. HTTP belongs to fastds/api/app.py; this module maps a request body to
(HTTP status, reply body or None for a notification).
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from fastds.api import mi_sr
from fastds.api.mi_core import CoreCommands
from fastds.api.mi_edge import EdgeCommands
from fastds.api.mi_params import (
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    PARSE_ERROR,
    PARTITION,
    MiError,
    bool_like_param,
    int_param,
    match_recipe,
    string_param,
)
from fastds.api.snapshot import Snapshot
from fastds.dispatch.state import DestinationState
from fastds.errors import FastdsError

MI_STATE_LETTERS = {"0": DestinationState.INACTIVE, "i": DestinationState.INACTIVE, "1": DestinationState.ACTIVE,
                    "a": DestinationState.ACTIVE, "2": DestinationState.PROBING, "p": DestinationState.PROBING}
class MiHandler:
    """The commands. `snapshot()` reads shared memory; `control(op, **fields)` asks the
    prober (fastds/procs/control.py) and returns its reply."""

    def __init__(self, snapshot: Callable[[], Snapshot], control: Callable[..., Awaitable[dict[str, Any]]]):
        self.snapshot = snapshot
        self.control = control
        self.commands = {
            "ds_list": ([(), ("partition",), ("full",), ("full", "partition")], self.ds_list),
            "ds_set_state": ([("state", "group", "address")], self.ds_set_state),
            "ds_reload": ([(), ("inherit_state",), ("partition",), ("partition", "inherit_state"), ("cluster",),
                           ("inherit_state", "cluster")], self.ds_reload),
            "which": ([(), ("command",)], self.which),  # opensips-cli asks it first, to list the commands
            **{name: (recipes, functools.partial(self.status_report, mi_sr.COMMANDS[name]))
               for name, recipes in mi_sr.RECIPES.items()},
            **EdgeCommands(snapshot, self._ask).commands,
            **CoreCommands(snapshot, control).commands,
        }

    async def handle(self, body: bytes) -> tuple[int, bytes | None]:
        """(HTTP status, reply) for a POSTed body; reply None = notification, no body."""
        if not body.strip():
            return 400, None
        try:
            request = orjson.loads(body)
        except orjson.JSONDecodeError:
            return 200, self._reply(None, error=MiError(*PARSE_ERROR))
        request_id = request.get("id") if isinstance(request, dict) else None
        try:
            result = await self._call(request)
        except MiError as exc:
            notification = isinstance(request, dict) and "id" not in request
            if notification and exc.code not in (PARSE_ERROR[0], INVALID_REQUEST[0]):
                return 202, None
            return 200, self._reply(request_id, error=exc)
        if "id" not in request:
            return 202, None
        return 200, self._reply(request_id, result=result)

    @staticmethod
    def _reply(request_id: Any, *, result: Any = None, error: MiError | None = None) -> bytes:
        if error is not None:
            return orjson.dumps({"jsonrpc": "2.0", "error": error.as_json(), "id": request_id})
        return orjson.dumps({"jsonrpc": "2.0", "result": result, "id": request_id})

    async def _call(self, request: Any) -> Any:
        if (not isinstance(request, dict) or request.get("jsonrpc") != "2.0"
                or not isinstance(request.get("method"), str)
                or not isinstance(request.get("id", 0), (int, float, str, type(None)))
                or isinstance(request.get("id"), bool)
                or ("params" in request and not isinstance(request["params"], (list, dict)))):
            raise MiError(*INVALID_REQUEST)
        command = self.commands.get(request["method"])
        if command is None:
            raise MiError(*METHOD_NOT_FOUND)
        recipes, function = command
        return await function(match_recipe(recipes, request.get("params") or None))

    @staticmethod
    def _check_partition(params: dict[str, Any], code: int) -> None:
        if "partition" in params and string_param(params, "partition") != PARTITION:
            raise MiError(code, "ERROR Unknown partition")

    async def ds_list(self, params: dict[str, Any]) -> dict[str, Any]:
        full = int_param(params, "full") if "full" in params else 0
        self._check_partition(params, 500)
        sets = []
        for set_id, members in self.snapshot().sets.items():
            destinations = []
            for live in members:
                d = live.destination
                item: dict[str, Any] = {"URI": d.uri, "state": live.state.mi_name,
                                        "first_hit_counter": live.picks}
                if d.socket:
                    item["socket"] = d.socket
                if d.attrs:
                    item["attr"] = d.attrs
                if full:
                    item["weight"] = d.weight
                    item["priority"] = d.priority
                    if d.description:
                        item["description"] = d.description
                item["resolved_addresses"] = [f"{d.host}:{d.port}"]
                destinations.append(item)
            sets.append({"id": set_id, "Destinations": destinations})
        partition: dict[str, Any] = {"name": PARTITION}
        if sets:
            partition["SETS"] = sets
        return {"PARTITIONS": [partition]}

    async def ds_set_state(self, params: dict[str, Any]) -> str:
        state_text = string_param(params, "state")
        if not state_text:
            raise MiError(500, "Bad state value")
        # OpenSIPS reads the first character: 0/i inactive, 1/a active, 2/p probing
        state = MI_STATE_LETTERS.get(state_text[0].lower())
        if state is None:
            raise MiError(500, "Bad state value")
        group, partition = string_param(params, "group"), PARTITION
        if ":" in group:
            partition, _, group = group.partition(":")
            if not partition or not group:
                raise MiError(500, "bad group format")
        if partition != PARTITION:
            raise MiError(404, "ERROR Unknown partition")
        if not group.isdigit():
            raise MiError(500, "bad group value")
        live = self.snapshot().find(int(group), string_param(params, "address"))
        if live is None:
            raise MiError(404, "destination not found")
        reply = await self._ask("set_state", destination=live.destination.id, state=int(state), mi=True)
        if not reply.get("ok"):
            raise MiError(404, "destination not found")
        return "OK"

    async def ds_reload(self, params: dict[str, Any]) -> str:
        inherit = bool_like_param(params, "inherit_state") if "inherit_state" in params else True
        self._check_partition(params, 500)
        cluster = bool_like_param(params, "cluster") if "cluster" in params else False  # fastds's: every node reloads
        reply = await self._ask("reload", inherit=inherit, cluster=cluster)
        if not reply.get("ok"):
            raise MiError(500, "ERROR Reloading data")
        return "OK"

    async def status_report(self, command: Callable[..., Any], params: dict[str, Any]) -> Any:
        """sr_* commands over the prober's groups (dispatcher) and core (fastds/api/mi_sr.py)."""
        params = {name: string_param(params, name) for name in params}
        reply = await self._ask("status_report")
        if not reply.get("ok"):
            raise MiError(500, f"ERROR {reply.get('error')}")
        try:
            return command([*reply["groups"], mi_sr.core_group(self.snapshot())], params)
        except mi_sr.SrNotFound as exc:
            raise MiError(404, str(exc)) from None

    async def which(self, params: dict[str, Any]) -> list:
        """OpenSIPS core `which`: the command names, or one command's parameter sets."""
        if "command" not in params:
            return sorted(self.commands)
        command = self.commands.get(string_param(params, "command"))
        if command is None:
            raise MiError(404, "unknown MI command")
        return [list(recipe) for recipe in command[0]]

    async def _ask(self, op: str, **fields: Any) -> dict[str, Any]:
        try:
            return await self.control(op, **fields)
        except FastdsError as exc:
            raise MiError(500, f"ERROR {exc}") from None

